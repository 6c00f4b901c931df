//! GGUF -> GGUF quantization with llama.cpp's per-tensor type policies.
