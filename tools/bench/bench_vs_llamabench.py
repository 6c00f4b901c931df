#!/usr/bin/env python3
"""`slm bench` and llama.cpp's `llama-bench` side by side: same models, sizes, threads, repetitions.

Both tools run the same tests (ppN: one N-token prompt of random ids; tgN: N tokens generated one
at a time; ppN+tgM: both), each with a warm-up run and --reps timed repetitions, and both print
JSON with llama-bench's field names (n_prompt, n_gen, n_threads, avg_ts, stddev_ts). The two tools
are run model by model, one right after the other, and the ratio slm / llama.cpp of the mean
tokens/s is printed per test.

Run on a quiet machine only: ggml's threads spin, and any other busy process collapses both
tools' numbers in different ways.

    python3 tools/bench/bench_vs_llamabench.py MODEL.gguf [MODEL2.gguf ...] -p 512 -n 128 \\
        -pg 512,128 -t 2 -r 5

llama-bench comes from the llama.cpp in the llama-cpp-python 0.3.36 sdist (built with cmake);
point --llama-bench (or $LLAMA_BENCH) at it.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache" / "slm-material"))
DEFAULT_LLAMA_BENCH = os.environ.get("LLAMA_BENCH", "/work/llama-build/bin/llama-bench")


def run_json(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def sizes_args(args):
    a = ["-p", args.p, "-n", args.n, "-t", args.t, "-r", str(args.reps)]
    for pg in args.pg:
        a += ["-pg", pg]
    if args.batch:
        a += ["-b", str(args.batch)]
    return a


def key(row):
    return (int(row["n_threads"]), int(row["n_prompt"]), int(row["n_gen"]))


def test_name(p, n):
    if n == 0:
        return f"pp{p}"
    if p == 0:
        return f"tg{n}"
    return f"pp{p}+tg{n}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=[str(MATERIAL / "gemma-3-270m-q4_k_m.gguf")])
    ap.add_argument("-p", default="512", help="prompt sizes, comma-separated")
    ap.add_argument("-n", default="128", help="generation sizes, comma-separated")
    ap.add_argument("-pg", action="append", default=[], help="PROMPT,GEN pair (repeatable)")
    ap.add_argument("-t", default="2", help="thread counts, comma-separated")
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-b", "--batch", type=int, default=None)
    ap.add_argument("--slm", default=str(ROOT / "target" / "release" / "slm"))
    ap.add_argument("--llama-bench", default=DEFAULT_LLAMA_BENCH)
    ap.add_argument("--json", action="store_true", help="print the matched rows as JSON")
    args = ap.parse_args()

    for tool in (args.slm, args.llama_bench):
        if not Path(tool).exists():
            sys.exit(f"{tool} not found (build slm with `cargo build --release`; llama-bench from llama.cpp)")

    rows = []
    for model in args.models:
        if not Path(model).exists():
            sys.exit(f"model {model} not found")
        ours = run_json([args.slm, "bench", model, *sizes_args(args), "-o", "json"])
        theirs = run_json([args.llama_bench, "-m", model, *sizes_args(args), "-o", "json"])
        by_key = {key(r): r for r in theirs}
        for r in ours:
            t = by_key.get(key(r))
            if t is None:
                sys.exit(f"llama-bench has no row for {key(r)} of {model}")
            rows.append({
                "model": Path(model).name,
                "test": test_name(int(r["n_prompt"]), int(r["n_gen"])),
                "threads": int(r["n_threads"]),
                "slm_ts": r["avg_ts"], "slm_sd": r["stddev_ts"],
                "llama_ts": t["avg_ts"], "llama_sd": t["stddev_ts"],
                "ratio": r["avg_ts"] / t["avg_ts"],
                "slm_peak_rss_mib": (r.get("peak_rss_bytes") or 0) / 2**20,
                "model_size_slm": r["model_size"], "model_size_llama": t["model_size"],
                "params_slm": r["model_n_params"], "params_llama": t["model_n_params"],
            })

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    w = max([len(r["model"]) for r in rows] + [5])
    print(f"| {'model':<{w}} | {'test':>12} | {'threads':>7} | {'slm t/s':>17} | {'llama.cpp t/s':>17} | {'slm/llama':>9} |")
    print(f"| {'-' * (w - 1)}- | {'-' * 11}: | {'-' * 6}: | {'-' * 16}: | {'-' * 16}: | {'-' * 8}: |")
    for r in rows:
        ours = f"{r['slm_ts']:.2f} ± {r['slm_sd']:.2f}"
        theirs = f"{r['llama_ts']:.2f} ± {r['llama_sd']:.2f}"
        print(f"| {r['model']:<{w}} | {r['test']:>12} | {r['threads']:>7} | {ours:>17} | {theirs:>17} | {r['ratio']:>9.2f} |")
    for r in rows:
        if (r["params_slm"], r["model_size_slm"]) != (r["params_llama"], r["model_size_llama"]):
            print(f"note: {r['model']}: slm counts {r['params_slm']} parameters in {r['model_size_slm']} bytes, "
                  f"llama.cpp {r['params_llama']} in {r['model_size_llama']}")


if __name__ == "__main__":
    main()
