//! F3 `gguf_structured`: an `arbitrary`-derived GGUF description (metadata of every value type,
//! tensors of every ggml type and shape, an alignment) -> `GgufBuilder` -> bytes -> parse ->
//! compare: what the writer accepts, the reader must give back exactly.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use slm_gguf::{Array, GgmlType, GgufBuilder, GgufFile, Value};

#[derive(Arbitrary, Debug)]
enum V {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    U64(u64),
    I64(i64),
    F64(f64),
    AU8(Vec<u8>),
    AI8(Vec<i8>),
    AU16(Vec<u16>),
    AI16(Vec<i16>),
    AU32(Vec<u32>),
    AI32(Vec<i32>),
    AF32(Vec<f32>),
    ABool(Vec<bool>),
    AStr(Vec<String>),
    AU64(Vec<u64>),
    AI64(Vec<i64>),
    AF64(Vec<f64>),
}

impl V {
    fn value(self) -> Value {
        match self {
            V::U8(x) => Value::U8(x),
            V::I8(x) => Value::I8(x),
            V::U16(x) => Value::U16(x),
            V::I16(x) => Value::I16(x),
            V::U32(x) => Value::U32(x),
            V::I32(x) => Value::I32(x),
            V::F32(x) => Value::F32(x),
            V::Bool(x) => Value::Bool(x),
            V::Str(x) => Value::String(x),
            V::U64(x) => Value::U64(x),
            V::I64(x) => Value::I64(x),
            V::F64(x) => Value::F64(x),
            V::AU8(x) => Value::Array(Array::U8(x)),
            V::AI8(x) => Value::Array(Array::I8(x)),
            V::AU16(x) => Value::Array(Array::U16(x)),
            V::AI16(x) => Value::Array(Array::I16(x)),
            V::AU32(x) => Value::Array(Array::U32(x)),
            V::AI32(x) => Value::Array(Array::I32(x)),
            V::AF32(x) => Value::Array(Array::F32(x)),
            V::ABool(x) => Value::Array(Array::Bool(x)),
            V::AStr(x) => Value::Array(Array::String(x)),
            V::AU64(x) => Value::Array(Array::U64(x)),
            V::AI64(x) => Value::Array(Array::I64(x)),
            V::AF64(x) => Value::Array(Array::F64(x)),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct T {
    name: String,
    dims: Vec<u8>,
    ty: u8,
    seed: u8,
}

#[derive(Arbitrary, Debug)]
struct Ast {
    alignment_log2: Option<u8>,
    kvs: Vec<(String, V)>,
    tensors: Vec<T>,
}

fuzz_target!(|ast: Ast| {
    let mut b = GgufBuilder::new();
    let mut want_kv = Vec::new();
    if let Some(p) = ast.alignment_log2 {
        let v = Value::U32(1 << (p % 21));
        if b.kv("general.alignment", v.clone()).is_ok() {
            want_kv.push(("general.alignment".to_string(), v));
        }
    }
    for (k, v) in ast.kvs {
        let v = v.value();
        if b.kv(&k, v.clone()).is_ok() {
            want_kv.push((k, v));
        }
    }
    let types: Vec<GgmlType> = GgmlType::all().collect();
    let mut want_t = Vec::new();
    for t in ast.tensors.into_iter().take(64) {
        let ty = types[usize::from(t.ty) % types.len()];
        let mut dims: Vec<u64> = t
            .dims
            .iter()
            .take(4)
            .map(|&d| u64::from(d % 8) + 1)
            .collect();
        if let Some(d0) = dims.first_mut() {
            *d0 *= ty.block_size();
        }
        if b.tensor(&t.name, &dims, ty).is_ok() {
            let n: u64 = dims.iter().product();
            let len = (n / ty.block_size() * ty.type_size()) as usize;
            let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(t.seed)).collect();
            want_t.push((t.name, dims, ty, data));
        }
    }
    let mut w = b.write_header(Vec::new()).expect("header");
    for t in &want_t {
        w.write_tensor(&t.3).expect("declared size");
    }
    let f = GgufFile::from_vec(w.finish().expect("finish")).expect("slm reads what it wrote");
    assert_eq!(format!("{:?}", f.metadata()), format!("{want_kv:?}"));
    assert_eq!(f.tensors().len(), want_t.len());
    for (got, want) in f.tensors().iter().zip(&want_t) {
        assert_eq!((&got.name, &got.dims, got.ty), (&want.0, &want.1, want.2));
        assert_eq!(f.tensor_data(got), &want.3[..]);
        assert_eq!(got.offset % f.alignment, 0);
    }
});
