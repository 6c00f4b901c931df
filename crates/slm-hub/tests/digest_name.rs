//! Digest, model-name and remote-file-name validation (reliability guide 2.3: >= 30 digest,
//! >= 25 name and >= 20 file-name cases). Accepted digests are checked against Python's hashlib.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use slm_hub::{validate_remote_file_name, Digest, HubError, ModelName};

const GOOD: &str = "sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
const HEX: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

#[test]
fn digest_cases() {
    let ok = [
        GOOD.to_string(),
        format!("sha256:{}", "0".repeat(64)),
        format!("sha256:{}", "f".repeat(64)),
        format!("sha256:{}", "0123456789abcdef".repeat(4)),
    ];
    for s in &ok {
        let d = Digest::parse(s).unwrap_or_else(|e| panic!("{s} rejected: {e}"));
        assert_eq!(&d.to_string(), s, "canonical round trip");
        assert_eq!(d.file_name(), format!("sha256-{}", &s[7..]));
        assert_eq!(Digest::from_file_name(&d.file_name()), Some(d));
    }
    let bad: Vec<String> = vec![
        String::new(),
        "sha256:".into(),
        HEX.into(),                                // no prefix
        format!("sha256-{HEX}"),                   // file-name form is not a digest string
        format!("SHA256:{HEX}"),                   // upper-case algorithm
        format!("sha256:{}", HEX.to_uppercase()),  // upper-case hex
        format!("sha512:{HEX}{HEX}"),              // other algorithm
        format!("sha256:{}", &HEX[..63]),          // 63 digits
        format!("sha256:{HEX}0"),                  // 65 digits
        format!("sha256:{}", &HEX[..32]),          // 32 digits
        format!(" sha256:{HEX}"),                  // leading space
        format!("sha256:{HEX} "),                  // trailing space
        format!("sha256:{HEX}\n"),                 // trailing newline
        format!("sha256: {}", &HEX[..63]),         // inner space
        format!("sha256:{}g", &HEX[..63]),         // non-hex letter
        format!("sha256:{}\0", &HEX[..63]),        // NUL
        format!("sha256:../../{}", &HEX[..58]),    // traversal, right length
        format!("sha256:{}/x", &HEX[..62]),        // slash
        format!("sha256:{}\\x", &HEX[..62]),       // backslash
        format!("sha256:{}é", &HEX[..62]),         // multi-byte char, 64 bytes
        format!("sha256:{}", "0".repeat(1 << 16)), // huge
        format!("sha256::{}", &HEX[..63]),         // double colon
        format!("sha256:0x{}", &HEX[..62]),        // 0x prefix
        format!("sha256:{}", "-".repeat(64)),      // dashes
        format!("sha256:{HEX}#frag"),              // URL fragment
        format!("sha256:{HEX}?q"),                 // query
        "sha256:%2e%2e%2fetc%2fpasswd".into(),     // percent encoding
        format!("md5:{}", &HEX[..32]),             // md5
        format!("sha256:{}", "０".repeat(64)),     // full-width digits
        format!("sha256\0:{HEX}"),                 // NUL in prefix
    ];
    assert!(bad.len() >= 30, "only {} bad cases", bad.len());
    for s in &bad {
        match Digest::parse(s) {
            Err(HubError::InvalidDigest { .. }) => {}
            other => panic!("{s:?} gave {other:?}, want InvalidDigest"),
        }
    }
}

#[test]
fn digest_of_bytes_matches_hashlib() {
    let data = b"slm content-addressed store test vector";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            std::str::from_utf8(data).unwrap(),
        ])
        .output()
        .expect("python3 is needed for this test");
    assert!(out.status.success());
    let want = String::from_utf8(out.stdout).unwrap();
    assert_eq!(Digest::of_bytes(data).hex(), want.trim());
}

#[test]
fn name_cases() {
    let ok = [
        ("gemma3:270m", "gemma3", "270m", "gemma3/270m"),
        ("gemma3", "gemma3", "latest", "gemma3/latest"),
        (
            "qwen2.5-coder:1.5b-q4_k_m",
            "qwen2.5-coder",
            "1.5b-q4_k_m",
            "qwen2.5-coder/1.5b-q4_k_m",
        ),
        (
            "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
            "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF",
            "Q4_K_M",
            "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF/Q4_K_M",
        ),
        (
            "localhost:5000/library/tiny:v1",
            "localhost:5000/library/tiny",
            "v1",
            "localhost%3A5000/library/tiny/v1",
        ),
        (
            "registry.ollama.ai/library/llama3.2:1b",
            "registry.ollama.ai/library/llama3.2",
            "1b",
            "registry.ollama.ai/library/llama3.2/1b",
        ),
        ("a:_x", "a", "_x", "a/_x"),
    ];
    for (s, repo, tag, rel) in ok {
        let n = ModelName::parse(s).unwrap_or_else(|e| panic!("{s} rejected: {e}"));
        assert_eq!(n.repository(), repo);
        assert_eq!(n.tag(), tag);
        assert_eq!(n.manifest_rel_path().to_str().unwrap(), rel);
        let comps: Vec<String> = rel.split('/').map(String::from).collect();
        assert_eq!(ModelName::from_rel_components(&comps).unwrap(), n);
    }
    let bad: Vec<String> = vec![
        String::new(),
        "../etc/passwd".into(),
        "..".into(),
        ".".into(),
        "a/../b".into(),
        "a/./b".into(),
        "/etc/passwd".into(),
        "a//b".into(),
        "a/".into(),
        "a:".into(),
        "a:..".into(),
        "a:../../x".into(),
        "a\0b".into(),
        "a\nb".into(),
        "a\x1bb".into(),
        "a b".into(),
        "a\\b".into(),
        "C:\\Windows\\x".into(),
        "x".repeat(300),
        format!("{}:t", "y".repeat(81)),
        "a/b/c/d/e".into(),
        ".hidden".into(),
        "-flag".into(),
        "name.".into(),
        "con".into(),
        "nul.gguf:x".into(),
        "a%2f..".into(),
        "ǅemma".into(),
        "a:b:c".into(),
        "host:99999999/a/b".into(),
        "host:/a".into(),
        "a:-x".into(),
    ];
    assert!(bad.len() >= 25);
    for s in &bad {
        match ModelName::parse(s) {
            Err(HubError::InvalidName { .. }) => {}
            other => panic!("{s:?} gave {other:?}, want InvalidName"),
        }
    }
}

#[test]
fn remote_file_name_cases() {
    for ok in [
        "model.gguf",
        "Q4_K_M/model-00001-of-00002.gguf",
        "a b.gguf",
        "data/part01.bin",
    ] {
        validate_remote_file_name(ok).unwrap_or_else(|e| panic!("{ok} rejected: {e}"));
    }
    let bad: Vec<String> = vec![
        String::new(),
        "/abs.gguf".into(),
        "../x.gguf".into(),
        "a/../../x.gguf".into(),
        "./x.gguf".into(),
        "a//b.gguf".into(),
        "a/".into(),
        "a\\b.gguf".into(),
        "C:x.gguf".into(),
        "x\0.gguf".into(),
        "x\n.gguf".into(),
        "x\r.gguf".into(),
        "x\x7f.gguf".into(),
        "x%2e%2e.gguf".into(),
        "x?.gguf".into(),
        "x#.gguf".into(),
        " x.gguf".into(),
        "x.gguf ".into(),
        "x.".into(),
        "a/b/c/d/e/f/g/h/i.gguf".into(),
        "y".repeat(600),
    ];
    assert!(bad.len() >= 20);
    for s in &bad {
        match validate_remote_file_name(s) {
            Err(HubError::InvalidFileName { .. }) => {}
            other => panic!("{s:?} gave {other:?}, want InvalidFileName"),
        }
    }
}
