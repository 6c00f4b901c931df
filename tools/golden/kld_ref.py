#!/usr/bin/env python3
"""Reference for the KL-divergence mode of `slm perplexity`: llama.cpp's `llama-perplexity
--kl-divergence` of a Q4_0 SmolLM2-135M against its F32 source, as a small JSON fixture for the
Rust test (crates/slm-model/tests/kld_real.rs):

1. F32 source: the real SmolLM2-135M-Instruct Q4_1 ($SLM_MATERIAL) dequantized by
   `llama-quantize --allow-requantize ... F32` (dequantization is exact: the slm test rebuilds
   the same bytes with slm_quant::dequantize_row).
2. Variant: `llama-quantize --pure F32 -> Q4_0` (every 2-D weight Q4_0; slm's test quantizes
   with slm_quant::quantize_rows and checks the bytes against the checksums recorded here).
3. `llama-perplexity -m F32 -f botchan.txt -c 512 -b 512 --chunks N --kl-divergence-base BASE`,
   then `llama-perplexity -m Q4_0 --kl-divergence-base BASE --kl-divergence` (same flags):
   every figure it prints goes to the fixture.

With --slm PATH (the slm binary) it also checks cross-compatibility of the base files, one way
each: llama.cpp reading slm's base file and slm reading llama.cpp's (figures printed, not saved).

llama.cpp: built from the llama-cpp-python==0.3.36 sdist (vendored llama.cpp), CPU, 2 threads.
Pinned: gguf==0.19.0, numpy.
Usage: python3 tools/golden/kld_ref.py --llama-bin /work/llama-build/bin [--chunks 10] [--slm BIN]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/slm-model/tests/fixtures/kld/smollm2_q4_0_vs_f32.json"
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache/slm-material"))
SOURCE = MATERIAL / "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = MATERIAL / "botchan.txt"

NUM = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?)"
PM = NUM + r"\s*±\s*" + NUM
PATTERNS = {
    "ppl": r"Mean PPL\(Q\)\s*:\s*" + PM,
    "ppl_base": r"Mean PPL\(base\)\s*:\s*" + PM,
    "ppl_correlation_pct": r"Cor\(ln\(PPL\(Q\)\), ln\(PPL\(base\)\)\):\s*" + NUM,
    "ln_ppl_ratio": r"Mean ln\(PPL\(Q\)/PPL\(base\)\)\s*:\s*" + PM,
    "ppl_ratio": r"Mean PPL\(Q\)/PPL\(base\)\s*:\s*" + PM,
    "ppl_diff": r"Mean PPL\(Q\)-PPL\(base\)\s*:\s*" + PM,
    "kld": r"Mean\s+KLD:\s*" + PM,
    "kld_max": r"Maximum KLD:\s*" + NUM,
    "kld_99.9": r"99\.9%\s+KLD:\s*" + NUM,
    "kld_99.0": r"99\.0%\s+KLD:\s*" + NUM,
    "kld_95.0": r"95\.0%\s+KLD:\s*" + NUM,
    "kld_90.0": r"90\.0%\s+KLD:\s*" + NUM,
    "kld_median": r"Median\s+KLD:\s*" + NUM,
    "kld_10.0": r"10\.0%\s+KLD:\s*" + NUM,
    "kld_min": r"Minimum KLD:\s*" + NUM,
    "p_diff_pct": r"Mean\s+Δp:\s*" + PM,
    "p_diff_rms_pct": r"RMS Δp\s*:\s*" + PM,
    "same_top_pct": r"Same top p:\s*" + PM,
}


def checksum(data):
    """sum(byte[i] * (i + 1)) mod 2^64 over the tensor's bytes (slm's test computes the same)."""
    b = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    total = 0
    step = 1 << 24
    for s in range(0, b.size, step):
        part = b[s:s + step].astype(np.uint64)
        idx = np.arange(s + 1, s + 1 + part.size, dtype=np.uint64)
        total = (total + int((part * idx).sum(dtype=np.uint64))) % (1 << 64)
    return f"{total:016x}"


def tensors(path):
    r = gguf.GGUFReader(str(path))
    return [(t.name, t.tensor_type.name, checksum(t.data)) for t in r.tensors]


def run(cmd):
    """Run a tool; stdout and stderr together (llama.cpp logs on both)."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{(p.stdout + p.stderr)[-4000:]}")
    return p.stdout + p.stderr


def parse(out):
    res = {}
    for key, pat in PATTERNS.items():
        m = re.search(pat, out)
        if not m:
            sys.exit(f"no {key} in llama-perplexity output:\n{out[-3000:]}")
        vals = [float(g) for g in m.groups()]
        res[key] = vals if len(vals) > 1 else vals[0]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", default="/work/llama-build/bin")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slm", help="slm binary: also check base-file cross-compatibility")
    ap.add_argument("--keep", help="keep the F32/Q4_0/base files in this folder")
    args = ap.parse_args()
    bin_ = Path(args.llama_bin)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.keep) if args.keep else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        f32, q40, base = d / "smollm2-f32.gguf", d / "smollm2-q4_0.gguf", d / "base-llama.kld"
        run([bin_ / "llama-quantize", "--allow-requantize", SOURCE, f32, "F32", args.threads])
        run([bin_ / "llama-quantize", "--pure", f32, q40, "Q4_0", args.threads])
        flags = ["-f", TEXT, "-c", 512, "-b", 512, "--chunks", args.chunks, "-t", args.threads]
        out_base = run([bin_ / "llama-perplexity", "-m", f32, *flags, "--kl-divergence-base", base])
        m = re.search(r"Final estimate: PPL = " + NUM + r" \+/- " + NUM, out_base)
        ppl_f32 = [float(m.group(1)), float(m.group(2))] if m else None
        out = run([bin_ / "llama-perplexity", "-m", q40, *flags, "--kl-divergence-base", base,
                   "--kl-divergence"])
        fixture = {
            "generator": "tools/golden/kld_ref.py (llama-quantize, llama-perplexity; llama.cpp from "
                         "llama-cpp-python 0.3.36)",
            "commands": [
                "llama-quantize --allow-requantize SmolLM2-135M-Instruct.Q4_1.gguf f32.gguf F32",
                "llama-quantize --pure f32.gguf q4_0.gguf Q4_0",
                f"llama-perplexity -m f32.gguf -f botchan.txt -c 512 -b 512 --chunks {args.chunks} "
                f"-t {args.threads} --kl-divergence-base base.kld",
                f"llama-perplexity -m q4_0.gguf -f botchan.txt -c 512 -b 512 --chunks {args.chunks} "
                f"-t {args.threads} --kl-divergence-base base.kld --kl-divergence",
            ],
            "chunks": args.chunks,
            "ctx": 512,
            "ppl_f32": ppl_f32,
            "llama_cpp": parse(out),
            "f32_tensors": tensors(f32),
            "q4_0_tensors": tensors(q40),
        }
        if args.slm:
            ours = d / "base-slm.kld"
            run([args.slm, "perplexity", f32, *flags, "--save-logits", ours])
            cross_llama = parse(run([bin_ / "llama-perplexity", "-m", q40, *flags,
                                     "--kl-divergence-base", ours, "--kl-divergence"]))
            p = subprocess.run([str(c) for c in [args.slm, "perplexity", q40, "-t", args.threads,
                                "-b", 512, "--kl-divergence", base, "--json"]],
                               capture_output=True, text=True, check=True)
            cross_slm = json.loads(p.stdout)
            print("llama.cpp reading slm's base file:", json.dumps(cross_llama))
            print("slm reading llama.cpp's base file: kld", cross_slm["kld"],
                  "same_top", cross_slm["same_top"], "ppl", cross_slm["ppl"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}: {json.dumps(fixture['llama_cpp'])}")


if __name__ == "__main__":
    main()
