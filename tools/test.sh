#!/usr/bin/env bash
# The whole test suite: reference packages, real test material (cached), the fuzz targets' build,
# and every workspace test. Safe to re-run; downloads are skipped when already verified.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -r tools/requirements.txt
python3 tools/material.py
if [ -f fuzz/Cargo.toml ]; then
  cargo build --manifest-path fuzz/Cargo.toml --quiet
fi
cargo test --workspace "$@"
