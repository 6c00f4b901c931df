#!/usr/bin/env python3
"""Drive `slm serve` (started with an empty model list over a temp SLM_HOME store) with the real
`ollama` client (pinned in tools/requirements.txt): store admin (copy, create, delete, pull from a
local registry speaking the real v2 protocol), models loaded on demand, /api/ps, keep_alive.

    python3 tools/golden/serve_models.py admin BASE STORED_NAME SMOL_GGUF
    python3 tools/golden/serve_models.py lru BASE GEMMA_NAME SMOL_NAME

Exits non-zero on the first failed check.
"""
import datetime
import hashlib
import http.server
import json
import sys
import threading
import time
import urllib.request

import ollama

mode, base = sys.argv[1], sys.argv[2]
cl = ollama.Client(host=base)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {name}")


def names():
    return [m.model for m in cl.list().models]


def loaded():
    return {m.model: m for m in cl.ps().models}


def metrics():
    with urllib.request.urlopen(f"{base}/metrics") as r:
        return r.read().decode()


def status_of(fn):
    try:
        fn()
        return 200
    except ollama.ResponseError as e:
        return e.status_code


def registry(blobs, manifests):
    """A minimal registry: GET /v2/NS/NAME/manifests/TAG and /v2/NS/NAME/blobs/DIGEST."""

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            parts = self.path.split("/")
            if "manifests" in parts:
                body = manifests.get(self.path)
                ctype = "application/vnd.docker.distribution.manifest.v2+json"
            elif "blobs" in parts:
                body = blobs.get(parts[-1])
                ctype = "application/octet-stream"
            else:
                body = None
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 1 << 20):
                self.wfile.write(body[i:i + (1 << 20)])

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


if mode == "admin":
    stored, smol_path = sys.argv[3], sys.argv[4]
    check("list shows the stored model", stored in names(), names())
    check("nothing loaded before a request", loaded() == {}, loaded())

    # copy / create / delete against the store.
    check("copy", cl.copy(stored, "g3copy:x").status == "success")
    check("copy listed", "g3copy:x" in names(), names())
    check("copy of a missing model is 404", status_of(lambda: cl.copy("nope:x", "y:z")) == 404)
    r = cl.create(model="pirate:x", from_=stored, system="You are a pirate.",
                  parameters={"num_predict": 3, "temperature": 0.0, "stop": ["\n\n"]})
    check("create", r.status == "success", r)
    sh = cl.show("pirate:x")
    check("created model shows its system prompt", "You are a pirate." in (sh.modelfile or ""), sh.modelfile)
    check("created model shows its parameters", "num_predict 3" in (sh.parameters or ""), sh.parameters)
    g = cl.generate(model="pirate:x", prompt="Say hello.")
    check("created model's num_predict applies", g.eval_count <= 3, g.eval_count)
    check("create with an unknown parameter is 400",
          status_of(lambda: cl.create(model="bad:x", from_=stored, parameters={"frobnicate": 1})) == 400)
    check("create from a file path is refused",
          status_of(lambda: cl.create(model="bad:x", from_=smol_path)) in (400, 404))
    check("delete", cl.delete("g3copy:x").status == "success")
    check("deleted model gone", "g3copy:x" not in names(), names())
    check("delete again is 404", status_of(lambda: cl.delete("g3copy:x")) == 404)

    # pull from a registry on loopback, with NDJSON progress.
    data = open(smol_path, "rb").read()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    system = b"You are terse."
    sys_digest = "sha256:" + hashlib.sha256(system).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": len(data)},
            {"mediaType": "application/vnd.ollama.image.system", "digest": sys_digest, "size": len(system)},
        ],
    }).encode()
    srv = registry({digest: data, sys_digest: system}, {"/v2/library/smol/manifests/v1": manifest})
    ref = f"127.0.0.1:{srv.server_address[1]}/library/smol:v1"
    lines = list(cl.pull(ref, stream=True))
    statuses = [l.status for l in lines]
    check("pull streams status lines ending in success", statuses[0] == "pulling manifest"
          and statuses[-1] == "success", statuses)
    blob = [l for l in lines if l.digest == digest]
    check("pull reports the model blob's digest and total", blob and all(l.total == len(data) for l in blob), blob[:3])
    check("pull progress reaches the total", blob[-1].completed == len(data), blob[-1])
    check("pulled model listed", ref in names(), names())
    check("pull of a missing tag is an error",
          status_of(lambda: cl.pull(f"127.0.0.1:{srv.server_address[1]}/library/smol:nope")) >= 400)
    again = list(cl.pull(ref, stream=True))
    check("second pull is already complete", again[-1].status == "success", again)
    sh = cl.show(ref)
    check("pulled system layer applies", "You are terse." in (sh.modelfile or ""), sh.modelfile)

    # Two models loaded on demand.
    a = cl.generate(model=stored, prompt="Hi", options={"num_predict": 2, "temperature": 0})
    b = cl.generate(model=ref, prompt="Hi", options={"num_predict": 2, "temperature": 0})
    check("both generated", a.eval_count >= 1 and b.eval_count >= 1, (a, b))
    ps = loaded()
    check("ps shows both models", stored in ps and ref in ps, list(ps))
    now = datetime.datetime.now(datetime.timezone.utc)
    for name in (stored, ref):
        m = ps[name]
        left = (m.expires_at - now).total_seconds()
        check(f"ps {name}: size and expires_at ~5m", m.size > 0 and 200 < left < 400, (m.size, left))
    check("ps size is weights + KV", ps[stored].size > 200_000_000, ps[stored].size)
    met = metrics()
    check("metrics: both models loaded", f'slm_model_loaded{{model="{stored}"}} 1' in met
          and f'slm_model_loaded{{model="{ref}"}} 1' in met, met)

    # keep_alive: a duration, then 0 = unload now.
    cl.generate(model=ref, prompt="Hi", options={"num_predict": 1}, keep_alive="2s")
    left = (loaded()[ref].expires_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    check("keep_alive 2s sets expires_at", -1 < left < 4, left)
    time.sleep(3.5)
    check("idle model unloaded after its keep_alive", ref not in loaded(), list(loaded()))
    r = cl.generate(model=stored, keep_alive=0)
    check("keep_alive 0 answers unload", r.done_reason == "unload", r)
    check("keep_alive 0 unloads now", stored not in loaded(), list(loaded()))
    r = cl.generate(model=stored, keep_alive=-1)
    check("load request with keep_alive -1", r.done_reason == "load", r)
    left = (loaded()[stored].expires_at - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    check("keep_alive -1 keeps it for ever", left > 10 * 365 * 86400, left)
    check("bad keep_alive is 400", status_of(lambda: cl.generate(model=stored, prompt="x", keep_alive="5x")) == 400)
    check("unknown model is 404", status_of(lambda: cl.generate(model="nope:x", prompt="x")) == 404)

elif mode == "lru":
    first, second = sys.argv[3], sys.argv[4]
    cl.generate(model=first, prompt="Hi", options={"num_predict": 1})
    check("first loaded", list(loaded()) == [first], list(loaded()))
    cl.generate(model=second, prompt="Hi", options={"num_predict": 1})
    check("budget evicts the least recently used", list(loaded()) == [second], list(loaded()))
    # A model with a request in flight is never evicted: the other load is refused (503).
    done = threading.Event()
    out = {}

    def long_stream():
        n = 0
        for part in cl.generate(model=second, prompt="Count from one to one thousand.",
                                options={"num_predict": 200, "temperature": 0}, stream=True):
            n += 1
            if n == 2:
                done.set()
            out["last"] = part
        done.set()

    t = threading.Thread(target=long_stream)
    t.start()
    done.wait(60)
    code = status_of(lambda: cl.generate(model=first, prompt="Hi", options={"num_predict": 1}))
    check("busy model not evicted: 503", code == 503, code)
    check("busy model still loaded", second in loaded(), list(loaded()))
    t.join()
    check("in-flight stream completed", out["last"].done, out.get("last"))
    cl.generate(model=first, prompt="Hi", options={"num_predict": 1})
    check("once idle it is evicted", list(loaded()) == [first], list(loaded()))
else:
    sys.exit(f"unknown mode {mode}")
print("all checks passed")
