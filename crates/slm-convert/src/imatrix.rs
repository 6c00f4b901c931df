//! Importance-matrix files: llama.cpp's GGUF imatrix format (and its legacy `.dat`), read and written.
