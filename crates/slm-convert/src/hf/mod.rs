//! Hugging Face safetensors -> GGUF.
