//! F1 `gguf_header`: bytes -> parse the header, metadata and tensor infos (no tensor data).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = slm_gguf::Gguf::parse(data) {
        // Every accessor must be total on a parsed header.
        for (k, v) in g.metadata() {
            // The very entry (not `==`: a NaN value is not equal to itself).
            assert!(g.get(k).is_some_and(|got| std::ptr::eq(got, v)), "{k:?}");
        }
        for t in g.tensors() {
            assert_eq!(g.tensor_info(&t.name), Some(t));
        }
        let _ = g.architecture();
    }
});
