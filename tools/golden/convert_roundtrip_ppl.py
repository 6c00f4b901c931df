#!/usr/bin/env python3
"""llama.cpp's perplexity on the SmolLM2 round trip made by slm, the reference of
`crates/slm-convert/tests/convert_roundtrip.rs` (real_smollm2_q4_1_round_trip_slow).

The F32 file is made by slm from the real SmolLM2-135M-Instruct Q4_1 (tools/material.py):
    slm export-hf SmolLM2-135M-Instruct.Q4_1.gguf WORK/hf
    slm convert WORK/hf -o WORK/back-f32.gguf --outtype f32
(the folder must be named `hf`: general.name comes from it, and the test checks the file's sha256).
This script runs llama.cpp's `llama-perplexity -f botchan.txt -c 512 --chunks 20 -b 512 -t 2` on it
(llama.cpp 0c1e57098, built from the llama-cpp-python 0.3.36 sdist; never committed), or parses a
saved log of that run (`--log`), and writes the running perplexity after 3 and 20 chunks with the
file's sha256 to crates/slm-convert/tests/fixtures/smollm2-roundtrip-ppl-llamacpp.json.

Usage: convert_roundtrip_ppl.py WORK/back-f32.gguf [--llama-perplexity PATH | --log FILE]
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/slm-convert/tests/fixtures/smollm2-roundtrip-ppl-llamacpp.json"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--llama-perplexity", default="llama-perplexity")
    ap.add_argument("--log", type=Path, help="a saved llama-perplexity log of the same command")
    default_mat = os.environ.get("SLM_MATERIAL", str(Path.home() / ".cache/slm-material"))
    ap.add_argument("--material", type=Path, default=Path(default_mat))
    args = ap.parse_args()
    if args.log:
        text = args.log.read_text()
    else:
        cmd = [args.llama_perplexity, "-m", str(args.gguf), "-f", str(args.material / "botchan.txt"),
               "-c", "512", "--chunks", "20", "-b", "512", "-t", "2"]
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    running = {int(i): float(v) for i, v in re.findall(r"\[(\d+)\]([0-9.]+)", text)}
    final = float(re.search(r"Final estimate: PPL = ([0-9.]+)", text).group(1))
    h = hashlib.sha256()
    with open(args.gguf, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    doc = {
        "meta": {
            "what": "llama-perplexity on slm's export-hf + convert --outtype f32 of SmolLM2-135M-Instruct Q4_1",
            "command": "llama-perplexity -f botchan.txt -c 512 --chunks 20 -b 512 -t 2",
            "llama.cpp": "0c1e57098 (llama-cpp-python 0.3.36 sdist)",
            "script": "tools/golden/convert_roundtrip_ppl.py",
        },
        "gguf_sha256": h.hexdigest(),
        "ppl_3_chunks": running[3],
        "ppl_20_chunks": final,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(doc)


if __name__ == "__main__":
    main()
