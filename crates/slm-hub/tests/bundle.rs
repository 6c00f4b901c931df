//! `slm export` / `slm import bundle.tar`: our tar read back by Python's `tarfile` (the reference),
//! a Python-written bundle imported, and hostile bundles (traversal names, symlink members,
//! tampered blobs, blobs no manifest names) refused with nothing published.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::process::Command;

use slm_hub::bundle::{export, import, is_bundle};
use slm_hub::{Digest, HubError, Manifest, ModelName, Store};

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stored(store: &Store, name: &str, data: &[u8]) -> ModelName {
    let (d, n) = store.put_blob(Cursor::new(data), None, None).unwrap();
    let name = ModelName::parse(name).unwrap();
    store
        .write_manifest(&name, &Manifest::single_model(d, n, None, "t".into()))
        .unwrap();
    name
}

#[test]
fn export_is_a_tar_python_reads_and_import_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let m1 = stored(&a, "one:1", b"GGUF model one");
    let m2 = stored(&a, "two:1", b"GGUF model one"); // same blob: stored once in the bundle
    let m3 = stored(
        &a,
        "hf.co/org/three:Q4_K_M",
        b"GGUF model three, a bit longer",
    );
    let tar = dir.path().join("b.tar");
    export(
        &a,
        &[m1.clone(), m2.clone(), m3.clone()],
        std::fs::File::create(&tar).unwrap(),
    )
    .unwrap();
    assert!(is_bundle(&tar));
    let listing = python(
        "import tarfile,sys\nfor m in tarfile.open(sys.argv[1]): print(m.name, m.size, m.isfile())",
        &[tar.to_str().unwrap()],
    );
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert!(lines[0].starts_with("slm-bundle.json "));
    let d1 = Digest::of_bytes(b"GGUF model one");
    assert!(
        lines.contains(&format!("blobs/{} 14 True", d1.file_name()).as_str()),
        "{listing}"
    );
    let b = Store::open(dir.path().join("b")).unwrap();
    let names = import(&b, std::fs::File::open(&tar).unwrap()).unwrap();
    assert_eq!(names.len(), 3);
    for n in [&m1, &m2, &m3] {
        b.verify(n).unwrap();
        assert_eq!(b.read_manifest(n).unwrap(), a.read_manifest(n).unwrap());
    }
}

#[test]
fn python_written_bundle_imports_and_hostile_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = b"GGUF from python".to_vec();
    let d = Digest::of_bytes(&data);
    let m = Manifest::single_model(d, data.len() as u64, None, "py".into());
    let index = serde_json::json!({"models": {"py:1": m}}).to_string();
    let make = |tar: &str, members: &str| {
        let script = format!(
            "import tarfile,io,sys\nt=tarfile.open(sys.argv[1],'w',format=tarfile.USTAR_FORMAT)\n\
             def add(n,b):\n  i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i,io.BytesIO(b))\n{members}\nt.close()"
        );
        python(
            &script,
            &[
                &dir.path().join(tar).to_string_lossy(),
                &index,
                &d.file_name(),
            ],
        );
        dir.path().join(tar)
    };
    let good = make("good.tar", "add('slm-bundle.json',sys.argv[2].encode())\nadd('blobs/'+sys.argv[3],b'GGUF from python')");
    let s = Store::open(dir.path().join("s")).unwrap();
    let names = import(&s, std::fs::File::open(&good).unwrap()).unwrap();
    assert_eq!(names[0].to_string(), "py:1");
    s.verify(&names[0]).unwrap();
    let cases = [
        ("tampered.tar", "add('slm-bundle.json',sys.argv[2].encode())\nadd('blobs/'+sys.argv[3],b'GGUF from pythoN')"),
        ("traversal.tar", "add('slm-bundle.json',sys.argv[2].encode())\nadd('../../evil',b'x')"),
        ("order.tar", "add('blobs/'+sys.argv[3],b'GGUF from python')\nadd('slm-bundle.json',sys.argv[2].encode())"),
        ("extra.tar", "add('slm-bundle.json',sys.argv[2].encode())\nadd('blobs/sha256-'+'0'*64,b'')"),
        (
            "symlink.tar",
            "add('slm-bundle.json',sys.argv[2].encode())\ni=tarfile.TarInfo('blobs/'+sys.argv[3]); i.type=tarfile.SYMTYPE; i.linkname='/etc/passwd'; t.addfile(i)",
        ),
        ("noblob.tar", "add('slm-bundle.json',sys.argv[2].encode())"),
    ];
    for (file, members) in cases {
        let tar = make(file, members);
        let fresh = Store::open(dir.path().join(format!("s-{file}"))).unwrap();
        let err = import(&fresh, std::fs::File::open(&tar).unwrap()).unwrap_err();
        assert!(
            matches!(
                err,
                HubError::DigestMismatch { .. }
                    | HubError::BadArchive { .. }
                    | HubError::MissingBlob { .. }
            ),
            "{file}: {err}"
        );
        assert!(
            fresh.list().unwrap().is_empty(),
            "{file}: a manifest was written"
        );
        assert!(
            !fresh.has_blob(&d, None).unwrap() || file == "noblob.tar",
            "{file}"
        );
    }
}
