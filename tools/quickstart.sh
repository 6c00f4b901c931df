#!/usr/bin/env bash
# Build slm and run its main job on the default model (Gemma 3 270M, fetched and verified once):
# show what the model is and needs, then generate a continuation.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 tools/material.py gemma3-270m >/dev/null
cargo build --release --quiet --bin slm
MODEL="${SLM_MATERIAL:-$HOME/.cache/slm-material}/gemma-3-270m-q4_k_m.gguf"
./target/release/slm show "$MODEL"
echo
./target/release/slm run "$MODEL" "${1:-Once upon a time}" --raw -n 64 --temp 0
