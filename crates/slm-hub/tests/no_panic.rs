//! Cheap stand-ins for fuzz targets F7/F8 (reliability guide 2.1): 20,000 random and mutated
//! inputs through `Digest::parse`, `ModelName::parse`, the remote file-name check, the manifest
//! parser and the zip reader. Each must return, never panic; accepted names must round-trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use slm_hub::{validate_remote_file_name, Digest, Manifest, ModelName};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[u8] = b"sha256:0123456789abcdefABCDEF/\\.:-_ \0\n%gguf@#?~\x7f\xc3\xa9";

fn random_string(rng: &mut Rng, seeds: &[&str]) -> String {
    let mut b: Vec<u8> = seeds[rng.below(seeds.len())].as_bytes().to_vec();
    for _ in 0..rng.below(6) {
        let c = ALPHABET[rng.below(ALPHABET.len())];
        match rng.below(3) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = c;
            }
            1 if !b.is_empty() => {
                b.remove(rng.below(b.len()));
            }
            _ => b.insert(rng.below(b.len() + 1), c),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn parsers_never_panic_and_accepted_names_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let hex = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    let digest_seed = format!("sha256:{hex}");
    let seeds = [
        digest_seed.as_str(),
        "gemma3:270m",
        "hf.co/org/repo:Q4_K_M",
        "localhost:5000/library/x:v1",
        "model-Q4_K_M.gguf",
        "a/b/c.gguf",
        "",
    ];
    for _ in 0..20_000 {
        let s = random_string(&mut rng, &seeds);
        if let Ok(d) = Digest::parse(&s) {
            assert_eq!(d.to_string(), s, "digest accepted in a non-canonical form");
        }
        if let Ok(n) = ModelName::parse(&s) {
            let again = ModelName::parse(&n.to_string()).unwrap();
            assert_eq!(again, n);
            let rel = n.manifest_rel_path();
            assert!(rel.is_relative());
            assert!(
                rel.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
                "{s:?} -> {rel:?}"
            );
        }
        let _ = validate_remote_file_name(&s);
    }
}

#[test]
fn manifest_and_zip_readers_never_panic() {
    let mut rng = Rng(0x5eed_0000_0000_0002);
    let d = Digest::of_bytes(b"x");
    let good = Manifest::single_model(d, 1, Some("f.gguf".into()), "t".into()).to_json();
    for _ in 0..5_000 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        b.truncate(rng.below(b.len() + 1));
        let _ = Manifest::from_json(&b, "fuzz");
    }
    // A real zip from Python, then truncated and bit-flipped.
    let dir = tempfile::tempdir().unwrap();
    let zpath = dir.path().join("w.whl");
    let st = std::process::Command::new("python3")
        .args(["-c", "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\nz.writestr('p/data/part01.bin', b'GGUF'*5000)\nz.close()", zpath.to_str().unwrap()])
        .status()
        .expect("python3 is needed");
    assert!(st.success());
    let zip = std::fs::read(&zpath).unwrap();
    let mut ok = 0;
    for i in 0..2_000 {
        let mut b = zip.clone();
        if i > 0 {
            for _ in 0..1 + rng.below(4) {
                let j = rng.below(b.len());
                b[j] ^= 1 << rng.below(8);
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len()));
            }
        }
        let p = dir.path().join("m.whl");
        std::fs::File::create(&p).unwrap().write_all(&b).unwrap();
        let mut f = std::fs::File::open(&p).unwrap();
        if let Ok(m) = slm_hub::zip::find_member(&mut f, "p/data/part01.bin", "w") {
            if let Ok(mut r) = slm_hub::zip::open_member(&mut f, &m, "w") {
                let mut out = Vec::new();
                if std::io::Read::read_to_end(&mut r, &mut out).is_ok() {
                    assert_eq!(
                        out,
                        b"GGUF".repeat(5000),
                        "a corrupted member passed its CRC check"
                    );
                    ok += 1;
                }
            }
        }
    }
    assert!(ok >= 1, "the unmodified zip must read back");
}
