//! F3-style round trip: bytes -> parse; anything that parses is re-written with slm's
//! `GgufBuilder`, parsed again, and must come back identical (every key, value, tensor and byte).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slm_gguf::{GgufBuilder, GgufFile};

fuzz_target!(|data: &[u8]| {
    let Ok(a) = GgufFile::from_vec(data.to_vec()) else {
        return;
    };
    let mut b = GgufBuilder::new();
    for (k, v) in a.metadata() {
        b.kv(k, v.clone()).expect("a parsed key is writable");
    }
    for t in a.tensors() {
        b.tensor(&t.name, &t.dims, t.ty)
            .expect("a parsed tensor is declarable");
    }
    let mut w = b.write_header(Vec::new()).expect("header");
    for t in a.tensors() {
        w.write_tensor(a.tensor_data(t)).expect("tensor data");
    }
    let out = w.finish().expect("finish");
    let c = GgufFile::from_vec(out).expect("slm's own output parses");
    assert_eq!(format!("{:?}", a.metadata()), format!("{:?}", c.metadata()));
    assert_eq!(a.alignment, c.alignment);
    assert_eq!(a.tensors().len(), c.tensors().len());
    for (x, y) in a.tensors().iter().zip(c.tensors()) {
        assert_eq!(
            (&x.name, &x.dims, x.ty, x.n_bytes),
            (&y.name, &y.dims, y.ty, y.n_bytes)
        );
        assert_eq!(a.tensor_data(x), c.tensor_data(y));
    }
});
