//! `quantize_file` on a tiny synthetic model (no material needed): the output layout as
//! llama.cpp writes it (metadata order, tensor order, trimmed dims), the data equal to
//! slm-quant's row quantizer, thread-count independence and the refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slm_convert::quantize::{quantize_file, FileType, QuantizeOptions};
use slm_gguf::{GgmlType, GgufBuilder, GgufFile, Value};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("qsyn-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// (name, ggml dims)
const TENSORS: &[(&str, &[u64])] = &[
    ("blk.10.attn_q.weight", &[256, 32]),
    ("token_embd.weight", &[256, 16]),
    ("blk.2.attn_q.weight", &[256, 32]),
    ("blk.0.attn_norm.weight", &[256, 1]),
    ("blk.0.attn_q.weight", &[256, 32]),
    ("blk.0.attn_v.weight", &[256, 8]),
    ("output_norm.weight", &[256]),
];

fn values(seed: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0) * 0.5)
        .collect()
}

fn write_source(path: &Path) {
    let mut b = GgufBuilder::new();
    b.kv("general.architecture", Value::String("llama".into()))
        .unwrap();
    b.kv("general.file_type", Value::U32(0)).unwrap();
    b.kv("general.quantization_version", Value::U32(2)).unwrap();
    b.kv("split.count", Value::U16(1)).unwrap();
    b.kv("llama.block_count", Value::U32(11)).unwrap();
    b.kv("llama.attention.head_count", Value::U32(4)).unwrap();
    b.kv("llama.attention.head_count_kv", Value::U32(1))
        .unwrap();
    b.kv("general.name", Value::String("tiny".into())).unwrap();
    for (name, dims) in TENSORS {
        b.tensor(name, dims, GgmlType::F32).unwrap();
    }
    let f = std::fs::File::create(path).unwrap();
    let mut w = b.write_header(std::io::BufWriter::new(f)).unwrap();
    for (i, (_, dims)) in TENSORS.iter().enumerate() {
        let n = dims.iter().product::<u64>() as usize;
        let bytes: Vec<u8> = values(i, n).iter().flat_map(|v| v.to_le_bytes()).collect();
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn quantize_synthetic_layout_data_and_threads() {
    let dir = Dir::new("layout");
    let src = dir.path("src.gguf");
    write_source(&src);
    let out = dir.path("q8.gguf");
    let mut opts = QuantizeOptions::new(FileType::Q8_0);
    opts.threads = 1;
    let r = quantize_file(&src, &out, &opts).unwrap();
    assert_eq!(r.n_tensors, TENSORS.len());
    assert!(!dir.path("q8.gguf.part").exists());

    let f = GgufFile::open(&out).unwrap();
    let keys: Vec<&str> = f.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "general.architecture",
            "llama.block_count",
            "llama.attention.head_count",
            "llama.attention.head_count_kv",
            "general.name",
            "general.quantization_version",
            "general.file_type",
        ]
    );
    assert_eq!(f.get_u64("general.file_type"), Some(7));
    let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "output_norm.weight",
            "token_embd.weight",
            "blk.0.attn_norm.weight",
            "blk.0.attn_q.weight",
            "blk.0.attn_v.weight",
            "blk.2.attn_q.weight",
            "blk.10.attn_q.weight",
        ]
    );
    let norm = f.tensor_info("blk.0.attn_norm.weight").unwrap();
    assert_eq!((norm.dims.clone(), norm.ty), (vec![256], GgmlType::F32));
    // GQA 4 with Q8_0: attn_v stays Q8_0, tied token embeddings stay Q8_0.
    for t in f.tensors() {
        let want = if t.dims.len() == 1 {
            GgmlType::F32
        } else {
            GgmlType::Q8_0
        };
        assert_eq!(t.ty, want, "{}", t.name);
    }
    let (_, data) = f.tensor("blk.2.attn_q.weight").unwrap();
    let x = values(2, 256 * 32);
    let mut want = vec![0u8; data.len()];
    slm_quant::quantize_rows(GgmlType::Q8_0, &x, 256, &mut want, None).unwrap();
    assert_eq!(data, &want[..]);

    // kv_overrides: a key set again moves to the end (gguf_set_val_*), like llama-quantize's
    // quantize.imatrix.* keys.
    let imp = slm_convert::imatrix::Importance {
        tensors: BTreeMap::from([("a".to_string(), vec![1.0])]),
        datasets: vec!["botchan.txt".into()],
        chunk_count: 4,
    };
    let mut opts = QuantizeOptions::new(FileType::Q8_0);
    opts.kv_overrides = slm_convert::quantize::imatrix_metadata("im.gguf", &imp);
    opts.kv_overrides
        .push(("general.name".into(), Value::String("renamed".into())));
    quantize_file(&src, &out, &opts).unwrap();
    let f = GgufFile::open(&out).unwrap();
    let keys: Vec<&str> = f.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys[4..],
        [
            "general.quantization_version",
            "general.file_type",
            "quantize.imatrix.file",
            "quantize.imatrix.dataset",
            "quantize.imatrix.entries_count",
            "quantize.imatrix.chunks_count",
            "general.name",
        ]
    );
    assert_eq!(f.get_u64("quantize.imatrix.chunks_count"), Some(4));
    assert_eq!(f.get_str("general.name"), Some("renamed"));

    // The thread count does not change a byte (Q4_K_M: several types and a schedule).
    let mut opts = QuantizeOptions::new(FileType::Q4_K_M);
    let mut files = Vec::new();
    for threads in [1, 3] {
        opts.threads = threads;
        let p = dir.path(&format!("q4km-{threads}.gguf"));
        quantize_file(&src, &p, &opts).unwrap();
        files.push(std::fs::read(&p).unwrap());
    }
    assert_eq!(files[0], files[1]);
}

#[test]
fn quantize_synthetic_refusals_and_options() {
    let dir = Dir::new("refuse");
    let src = dir.path("src.gguf");
    write_source(&src);
    let q8 = dir.path("q8.gguf");
    quantize_file(&src, &q8, &QuantizeOptions::new(FileType::Q8_0)).unwrap();

    // Requantizing needs the flag, and says why.
    let out = dir.path("q4.gguf");
    let err = quantize_file(&q8, &out, &QuantizeOptions::new(FileType::Q4_0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already quantized") && err.contains("--allow-requantize"));
    assert!(!out.exists());
    let mut opts = QuantizeOptions::new(FileType::Q4_0);
    opts.allow_requantize = true;
    quantize_file(&q8, &out, &opts).unwrap();

    // Writing over the input is refused.
    let err = quantize_file(&src, &src, &QuantizeOptions::new(FileType::Q4_0)).unwrap_err();
    assert!(err.to_string().contains("is the input"), "{err}");

    // IQ2_XXS needs an importance matrix of the right size.
    let iq = dir.path("iq2.gguf");
    let err = quantize_file(&src, &iq, &QuantizeOptions::new(FileType::IQ2_XXS)).unwrap_err();
    assert!(err.to_string().contains("importance matrix"), "{err}");
    let mut opts = QuantizeOptions::new(FileType::IQ2_XXS);
    let mut im = BTreeMap::new();
    for (name, dims) in TENSORS.iter().filter(|(_, d)| d.len() == 2 && d[1] > 1) {
        im.insert(name.to_string(), vec![1.0f32; dims[0] as usize]);
    }
    let mut bad = im.clone();
    bad.insert("blk.0.attn_q.weight".into(), vec![1.0; 128]);
    opts.imatrix = Some(bad);
    let err = quantize_file(&src, &iq, &opts).unwrap_err();
    assert!(err.to_string().contains("imatrix size 128"), "{err}");
    opts.imatrix = Some(im);
    let r = quantize_file(&src, &iq, &opts).unwrap();
    assert!(r.type_counts.iter().any(|(t, _)| *t == GgmlType::IQ2_XXS));

    // --tensor-type overrides; a bad pattern is an error, not a panic.
    let mut opts = QuantizeOptions::new(FileType::Q4_0);
    opts.tensor_types = vec![(r"blk\.(0|2)\.attn_q".into(), GgmlType::Q5_1)];
    opts.token_embedding_type = Some(GgmlType::F16);
    let r = quantize_file(&src, &out, &opts).unwrap();
    let ty = |n: &str| r.tensors.iter().find(|t| t.name == n).unwrap().dst_type;
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q5_1);
    assert_eq!(ty("blk.2.attn_q.weight"), GgmlType::Q5_1);
    assert_eq!(ty("blk.10.attn_q.weight"), GgmlType::Q4_0);
    assert_eq!(ty("token_embd.weight"), GgmlType::F16);
    opts.tensor_types = vec![("attn_q(".into(), GgmlType::Q5_1)];
    assert!(quantize_file(&src, &out, &opts).is_err());
}
