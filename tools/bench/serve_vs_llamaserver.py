#!/usr/bin/env python3
"""`slm serve` against llama.cpp's `llama-server`: aggregate generated tokens/s and time to first
token with 1, 4, 8 and 16 concurrent streaming clients, same model, same threads, same prompts,
llama-server's -np equal to slm's --slots (and -c = slots x per-sequence context, since
llama-server splits its context among its slots). Prints both and the ratio slm / llama.cpp.

Each client sends --requests streaming /v1/chat/completions requests one after the other
(temperature 0, max_tokens --max-tokens with ignore_eos, stream_options.include_usage); generated tokens are taken
from the final usage chunk (or counted as content chunks when a server sends none). Aggregate
tokens/s = all generated tokens / wall time of the phase; TTFT = request start -> first content.

Run on a quiet machine only. A tiny check that everything works:

    python3 tools/bench/serve_vs_llamaserver.py --tiny

The real run (the lead's):

    python3 tools/bench/serve_vs_llamaserver.py --threads 2 --slots 4 -c 1,4,8,16

llama-server comes from the llama.cpp in the llama-cpp-python 0.3.36 sdist (built with cmake);
point --llama-server (or $LLAMA_SERVER) at it. stdlib only.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache" / "slm-material"))
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works to a child.",
    "List ten uses for a paper clip, with one sentence each.",
    "Describe the water cycle in detail.",
    "Write a poem about autumn in a city.",
    "What are the main causes of inflation? Explain step by step.",
    "Give a recipe for bread and explain each step.",
    "Summarize the plot of a detective novel you invent.",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(port, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.3)
    sys.exit("server did not become healthy")


def one_request(port, model, prompt, max_tokens):
    """One streaming chat request: (ttft_s, generated_tokens, total_s)."""
    body = json.dumps({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        # Both servers generate exactly max_tokens: a short greedy answer that stops at an
        # end-of-turn token would make the servers' workloads differ.
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    })
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    ttft = None
    chunks = 0
    usage = None
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        v = json.loads(data)
        if v.get("usage"):
            usage = v["usage"].get("completion_tokens")
        for ch in v.get("choices") or []:
            if (ch.get("delta") or {}).get("content"):
                chunks += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    c.close()
    total = time.perf_counter() - t0
    return (ttft if ttft is not None else total, usage if usage is not None else chunks, total)


def phase(port, model, clients, requests, max_tokens):
    results, errors = [], []
    lock = threading.Lock()

    def client(k):
        for i in range(requests):
            prompt = PROMPTS[(k * requests + i) % len(PROMPTS)]
            try:
                r = one_request(port, model, prompt, max_tokens)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print(f"  {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
    tokens = sum(r[1] for r in results)
    ttfts = [r[0] for r in results]
    return {
        "clients": clients,
        "requests": len(results),
        "errors": len(errors),
        "tokens": tokens,
        "wall_s": wall,
        "tok_s": tokens / wall if wall > 0 else 0.0,
        "ttft_mean_ms": 1000 * statistics.mean(ttfts) if ttfts else float("nan"),
        "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else float("nan"),
    }


def run_server(name, cmd, port, env, args):
    print(f"$ {' '.join(cmd)}", file=sys.stderr)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    try:
        wait_health(port, proc)
        # Warm-up: one request per slot.
        phase(port, "m", min(args.slots, 4), 1, 8)
        out = []
        for c in args.concurrency:
            r = phase(port, "m", c, args.requests, args.max_tokens)
            print(f"  {name:10} c={c:<3} {r['tok_s']:8.1f} tok/s  TTFT p50 {r['ttft_p50_ms']:8.1f} ms "
                  f"mean {r['ttft_mean_ms']:8.1f} ms  ({r['tokens']} tokens, {r['requests']} requests, "
                  f"{r['errors']} errors, {r['wall_s']:.1f} s)", file=sys.stderr)
            out.append(r)
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(MATERIAL / "gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--slm", default=str(ROOT / "target" / "release" / "slm"))
    ap.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER", "/work/llama-build/bin/llama-server"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=1024, help="context per sequence")
    ap.add_argument("-c", "--concurrency", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=4, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--tiny", action="store_true", help="a quick check that both servers work")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.tiny:
        args.concurrency, args.requests, args.max_tokens, args.slots = "1,2", 1, 8, 2
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    for p in (args.model, args.slm, args.llama_server):
        if not Path(p).exists():
            sys.exit(f"missing {p}")
    env = dict(os.environ)
    results = {}
    home = tempfile.mkdtemp(prefix="slm-bench-home-")
    env["SLM_HOME"] = home
    port = free_port()
    results["slm"] = run_server("slm", [
        args.slm, "serve", args.model, "--alias", "m", "--port", str(port), "-t", str(args.threads),
        "--slots", str(args.slots), "-c", str(args.ctx), "--max-queue", "256",
    ], port, env, args)
    port = free_port()
    results["llama.cpp"] = run_server("llama.cpp", [
        args.llama_server, "-m", args.model, "--port", str(port), "--host", "127.0.0.1",
        "-t", str(args.threads), "-tb", str(args.threads), "-np", str(args.slots),
        "-c", str(args.ctx * args.slots), "--no-webui", "-a", "m",
    ], port, env, args)
    print(f"\nGemma-class model {Path(args.model).name}, threads {args.threads}, slots/-np {args.slots}, "
          f"max_tokens {args.max_tokens}, {args.requests} requests per client")
    print(f"{'clients':>7} | {'slm tok/s':>10} {'llama tok/s':>11} {'ratio':>6} | "
          f"{'slm TTFT ms':>11} {'llama TTFT ms':>13} {'ratio':>6}")
    for a, b in zip(results["slm"], results["llama.cpp"]):
        rt = a["tok_s"] / b["tok_s"] if b["tok_s"] else float("nan")
        rf = a["ttft_p50_ms"] / b["ttft_p50_ms"] if b["ttft_p50_ms"] else float("nan")
        print(f"{a['clients']:>7} | {a['tok_s']:>10.1f} {b['tok_s']:>11.1f} {rt:>6.2f} | "
              f"{a['ttft_p50_ms']:>11.1f} {b['ttft_p50_ms']:>13.1f} {rf:>6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
