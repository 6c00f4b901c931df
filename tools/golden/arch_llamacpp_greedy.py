#!/usr/bin/env python3
"""Greedy continuations from llama.cpp itself (through llama-cpp-python 0.3.36, built from its
source archive) for the real Llama-family models of the test material, written as small JSON
fixtures that `crates/slm-model/tests/arch_real.rs` reproduces.

For every prompt: the prompt ids as llama.cpp tokenizes them (`add_special=True`: BOS only where
the model's `tokenizer.ggml.add_bos_token` asks for it, `parse_special=True`), 32 greedy
tokens, and at every step the top-2 (id, log-probability) of llama.cpp's own logits (log-softmax
in float64). A test treats a different pick as a tie only where llama.cpp's top-2 gap is small.

Pinned: llama-cpp-python==0.3.36 (vendors llama.cpp 0c1e57098), numpy.
Usage:
    pip install /work/wheels/llama_cpp_python-0.3.36-*.whl
    python3 tools/golden/arch_llamacpp_greedy.py [--material DIR] [--out DIR]
"""

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np

MODELS = {
    "smollm2-135m-q4_1": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen2.5-coder-0.5b-q4_k_m": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
}
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
]
N_PREDICT = 32


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def greedy(llm, prompt_ids):
    llm.reset()
    llm.eval(prompt_ids)
    ids, top2 = [], []
    for _ in range(N_PREDICT):
        lp = log_softmax(llm.scores[llm.n_tokens - 1])
        order = np.argsort(-lp, kind="stable")[:2]
        top2.append([[int(i), float(lp[i])] for i in order])
        nxt = int(order[0])
        ids.append(nxt)
        if len(ids) < N_PREDICT:
            llm.eval([nxt])
    return ids, top2


def main():
    import llama_cpp

    ap = argparse.ArgumentParser()
    default_mat = os.environ.get("SLM_MATERIAL", str(Path.home() / ".cache/slm-material"))
    ap.add_argument("--material", default=default_mat)
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parents[2] / "crates/slm-model/tests/fixtures/arch"),
    )
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, fname in MODELS.items():
        path = Path(args.material) / fname
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=256,
            n_batch=256,
            n_threads=2,
            logits_all=True,
            verbose=False,
        )
        results = []
        for prompt in PROMPTS:
            prompt_ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
            ids, top2 = greedy(llm, prompt_ids)
            text = llm.detokenize(ids).decode("utf-8", errors="replace")
            results.append(
                {
                    "prompt": prompt,
                    "prompt_ids": prompt_ids,
                    "generated_ids": ids,
                    "generated_text": text,
                    "top2_logprobs_per_step": top2,
                }
            )
            print(key, repr(prompt), "->", repr(text))
        doc = {
            "meta": {
                "model": f"{fname} (sha256 {sha256(path)[:16]}...)",
                "engine": f"llama.cpp via llama-cpp-python {llama_cpp.__version__} (CPU), "
                "Llama(n_ctx=256, n_batch=256, n_threads=2, logits_all=True), prompt in one eval, then one token "
                "per eval; log-softmax of llama.cpp's logits in float64",
                "script": "tools/golden/arch_llamacpp_greedy.py",
            },
            "results": results,
        }
        with open(out_dir / f"{key}-greedy-llamacpp.json", "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
