#!/usr/bin/env python3
"""Reference for `slm imatrix`: llama.cpp's own `llama-imatrix` on the real SmolLM2-135M-Instruct
Q4_1 ($SLM_MATERIAL) with botchan.txt, and a small JSON summary of its GGUF imatrix for the Rust
test (crates/slm-cli/tests/imatrix_cli.rs):

    per weight: count (rows summed), the sum of all in_sum2 values, and in_sum2 at a fixed set of
    sampled columns plus the 4 largest columns; file metadata (chunk_count, chunk_size, datasets).

With --f32, the same on the F32 dequantization of that model (`llama-quantize --allow-requantize
... F32`, which slm's test rebuilds bit-exactly in memory), written for
crates/slm-model/tests/imatrix_real.rs: F32 weights mean no activation quantization in either
engine's matmul, so the two imatrices agree far more tightly than on Q4_1.

llama.cpp: llama-imatrix built from the llama-cpp-python==0.3.36 sdist (vendored llama.cpp), CPU.
Pinned: gguf==0.19.0, numpy. The llama.cpp build is not part of the project: pass its bin folder.

Usage: python3 tools/golden/imatrix_ref.py --llama-bin /work/llama-build/bin [--chunks 4]
       python3 tools/golden/imatrix_ref.py --f32 --chunks 2
       python3 tools/golden/imatrix_ref.py --compare A.gguf B.gguf   (max rel diff of two files)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/slm-cli/tests/fixtures/imatrix/smollm2_botchan.json"
OUT_F32 = ROOT / "crates/slm-model/tests/fixtures/imatrix/smollm2_f32_botchan.json"
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache/slm-material"))
MODEL = MATERIAL / "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = MATERIAL / "botchan.txt"
SAMPLED = [0, 1, 7, 63, 100, 255, 300, 511, 575]


def load(path):
    """name -> (in_sum2 (n_mat, ne0) float64, counts (n_mat,)), and the metadata."""
    r = gguf.GGUFReader(str(path))
    sums, counts = {}, {}
    for t in r.tensors:
        data = np.array(t.data, dtype=np.float64).reshape(-1)
        if t.name.endswith(".in_sum2"):
            sums[t.name[: -len(".in_sum2")]] = data
        elif t.name.endswith(".counts"):
            counts[t.name[: -len(".counts")]] = data
    meta = {}
    for key in ("imatrix.chunk_count", "imatrix.chunk_size"):
        f = r.fields[key]
        meta[key] = int(f.parts[f.data[0]][0])
    f = r.fields["imatrix.datasets"]
    meta["imatrix.datasets"] = [bytes(f.parts[i]).decode() for i in f.data]
    f = r.fields["general.type"]
    meta["general.type"] = bytes(f.parts[f.data[0]]).decode()
    return {k: (sums[k], counts[k]) for k in sums}, meta


def summarize(entries):
    out = {}
    for name in sorted(entries):
        s, c = entries[name]
        top = np.argsort(-s)[:4]
        cols = sorted(set(i for i in SAMPLED if i < len(s)) | set(int(i) for i in top))
        out[name] = {
            "ne0": len(s),
            "count": int(c[0]),
            "sum": float(s.sum()),
            "columns": {str(i): float(s[i]) for i in cols},
        }
    return out


def compare(a, b):
    ea, _ = load(a)
    eb, _ = load(b)
    assert sorted(ea) == sorted(eb), (sorted(set(ea) ^ set(eb)))
    worst, worst_name = 0.0, None
    rels = []
    for k in ea:
        sa, ca = ea[k]
        sb, cb = eb[k]
        assert (ca == cb).all(), (k, ca, cb)
        # relative to the tensor's mean column value, so near-zero columns do not dominate
        rel = np.abs(sa - sb) / np.maximum(np.abs(sb), 1e-3 * np.abs(sb).mean())
        rels.append(rel)
        if rel.max() > worst:
            worst, worst_name = float(rel.max()), k
    allrel = np.concatenate(rels)
    print(f"{len(ea)} tensors, {allrel.size} columns: max rel diff {worst:.3e} ({worst_name}), "
          f"p99 {np.percentile(allrel, 99):.3e}, median {np.median(allrel):.3e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", default="/work/llama-build/bin")
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="also keep llama.cpp's imatrix GGUF at this path")
    ap.add_argument("--compare", nargs=2, metavar=("OURS", "LLAMA"))
    ap.add_argument("--f32", action="store_true", help="run on the F32 dequantization")
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    with tempfile.TemporaryDirectory() as d:
        out = Path(args.keep) if args.keep else Path(d) / "imatrix.gguf"
        model = MODEL
        if args.f32:
            model = Path(d) / "smollm2-f32.gguf"
            subprocess.run([str(Path(args.llama_bin) / "llama-quantize"), "--allow-requantize",
                            str(MODEL), str(model), "F32", str(args.threads)],
                           capture_output=True, check=True)
        cmd = [str(Path(args.llama_bin) / "llama-imatrix"), "-m", str(model), "-f", str(TEXT),
               "-o", str(out), "-c", "512", "-b", "512", "--chunks", str(args.chunks),
               "-t", str(args.threads)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(p.stdout + p.stderr)
        ppl = None
        for line in (p.stdout + p.stderr).splitlines():
            if line.startswith("Final estimate: PPL ="):
                ppl = float(line.split("=")[1].split("+/-")[0])
        entries, meta = load(out)
    out_path = OUT_F32 if args.f32 else OUT
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fixture = {
        "generator": "tools/golden/imatrix_ref.py (llama-imatrix, llama.cpp from llama-cpp-python 0.3.36)",
        "command": ("llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf f32.gguf F32; "
                    "llama-imatrix -m f32.gguf" if args.f32 else
                    "llama-imatrix -m SmolLM2-135M-Instruct.Q4_1.gguf") + " -f botchan.txt -c 512 -b 512 "
                   f"--chunks {args.chunks} -t {args.threads}",
        "chunks": args.chunks,
        "ctx": 512,
        "ppl": ppl,
        "chunk_count": meta["imatrix.chunk_count"],
        "chunk_size": meta["imatrix.chunk_size"],
        "n_datasets": len(meta["imatrix.datasets"]),
        "general_type": meta["general.type"],
        "tensors": summarize(entries),
    }
    out_path.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out_path} ({len(entries)} tensors, ppl {ppl})")


if __name__ == "__main__":
    main()
