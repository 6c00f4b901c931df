#!/usr/bin/env python3
"""Side-by-side speed of slm and llama.cpp on the same model, prompt and threads.

llama.cpp runs through llama-cpp-python (pip install llama-cpp-python==0.3.36, which builds
llama.cpp from source on this machine). Both do greedy decoding of the same prompt, ignoring
end-of-generation, with the same thread count; each side is run --reps times alternately and
the medians are compared. Prompt time is from submitting the prompt to the first sampled token;
generation time covers the remaining decode steps (tokens/s over n-1 steps), for both.

    python3 tools/bench/vs_llamacpp.py MODEL.gguf --threads 2 --prompt-tokens 64 --gen 128
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache" / "slm-material"))


def llama_once(llm, tokens, n_gen):
    llm.reset()
    t0 = time.perf_counter()
    n = 0
    t_first = None
    for _tok in llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        n += 1
        if t_first is None:
            t_first = time.perf_counter()
        if n == n_gen:
            break
    t_end = time.perf_counter()
    return len(tokens) / (t_first - t0), (n - 1) / (t_end - t_first)


def slm_once(slm, model, text, n_gen, threads, n_ctx):
    out = subprocess.run(
        [slm, "run", model, text, "--raw", "--json", "-n", str(n_gen), "--ignore-eos", "--temp", "0",
         "-t", str(threads), "-c", str(n_ctx)],
        check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    t = r["timings"]
    return t["prompt_tokens_per_second"], t["gen_tokens_per_second"], len(r["prompt_ids"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=str(MATERIAL / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--slm", default=str(ROOT / "target" / "release" / "slm"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import llama_cpp

    n_ctx = 512
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=n_ctx, n_batch=512, n_threads=args.threads,
                          n_threads_batch=args.threads, verbose=False)
    text_src = (MATERIAL / "botchan.txt").read_text()
    ids = llm.tokenize(text_src[:20000].encode(), add_bos=True, special=False)[: args.prompt_tokens]
    text = llm.detokenize(ids[1:]).decode("utf-8", errors="ignore")
    prompt = llm.tokenize(text.encode(), add_bos=True, special=False)

    llama_pp, llama_tg, slm_pp, slm_tg = [], [], [], []
    llama_once(llm, prompt, 8)  # warm-up
    slm_once(args.slm, args.model, text, 8, args.threads, n_ctx)
    for _ in range(args.reps):
        pp, tg = llama_once(llm, prompt, args.gen)
        llama_pp.append(pp)
        llama_tg.append(tg)
        pp, tg, n_prompt_slm = slm_once(args.slm, args.model, text, args.gen, args.threads, n_ctx)
        slm_pp.append(pp)
        slm_tg.append(tg)
    res = {
        "model": os.path.basename(args.model), "threads": args.threads, "gen_tokens": args.gen,
        "prompt_tokens_llama": len(prompt), "prompt_tokens_slm": n_prompt_slm,
        "llama_pp": statistics.median(llama_pp), "llama_tg": statistics.median(llama_tg),
        "slm_pp": statistics.median(slm_pp), "slm_tg": statistics.median(slm_tg),
    }
    res["ratio_pp"] = res["slm_pp"] / res["llama_pp"]
    res["ratio_tg"] = res["slm_tg"] / res["llama_tg"]
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"model {res['model']}, {args.threads} threads, prompt {len(prompt)} tokens "
          f"(slm: {n_prompt_slm}), generate {args.gen}, median of {args.reps}")
    print(f"{'':12}{'llama.cpp':>12}{'slm':>12}{'slm/llama':>12}")
    print(f"{'prompt t/s':12}{res['llama_pp']:12.1f}{res['slm_pp']:12.1f}{res['ratio_pp']:12.2f}")
    print(f"{'gen t/s':12}{res['llama_tg']:12.1f}{res['slm_tg']:12.1f}{res['ratio_tg']:12.2f}")


if __name__ == "__main__":
    sys.exit(main())
