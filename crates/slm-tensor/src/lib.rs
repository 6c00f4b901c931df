//! CPU tensor operations: the persistent thread pool, quantized matrix multiply (decode- and
//! prefill-shaped), and the float ops models are built from (norms, RoPE, softmax, attention).

pub mod matmul;
pub mod ops;
pub mod pool;
