//! F2 `gguf_full`: bytes -> full validation (offsets, bounds, overlap against the buffer), then
//! read every metadata value and take a view of every tensor's bytes, checking the invariants the
//! reader promises.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = slm_gguf::GgufFile::from_vec(data.to_vec()) else {
        return;
    };
    let len = file.file_len();
    assert!(file.data_offset <= len || file.tensors().is_empty());
    assert_eq!(file.alignment.count_ones(), 1);
    for (k, v) in file.metadata() {
        assert!(!k.is_empty());
        let _ = (v.as_u64(), v.as_i64(), v.as_f64(), v.as_str(), v.as_bool());
        if let Some(a) = v.as_array() {
            let _ = (a.len(), a.to_i64s(), a.as_strings(), a.as_f32s());
        }
    }
    let mut total = 0u64;
    for t in file.tensors() {
        assert!((1..=4).contains(&t.dims.len()));
        assert_eq!(t.dims.iter().product::<u64>(), t.n_elements);
        assert_eq!(
            t.ty.row_bytes(t.dims[0])
                .map(|r| r * (t.n_elements / t.dims[0])),
            Some(t.n_bytes)
        );
        assert_eq!(t.offset % file.alignment, 0);
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.n_bytes, "{}", t.name);
        total += t.n_bytes;
        let (info, view) = file.tensor(&t.name).expect("tensor by name");
        assert_eq!(info, t);
        assert_eq!(view.len(), bytes.len());
    }
    // Tensors do not overlap, so their sizes sum to at most the data section.
    assert!(total <= file.data_len);
});
