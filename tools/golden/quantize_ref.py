#!/usr/bin/env python3
"""References for `slm quantize`: what llama.cpp's own quantizer (`llama_model_quantize`
through llama-cpp-python 0.3.36, llama.cpp vendored in its sdist) writes, as sha256 digests and
per-tensor type tables. Writes two small JSON fixtures under
crates/slm-convert/tests/fixtures/quantize/:

real.json   The real SmolLM2-135M-Instruct Q4_1 (from $SLM_MATERIAL) requantized by llama.cpp to
            F32 (`--allow-requantize`): the F32 source. Its sha256, then for each mix the
            sha256/size of llama.cpp's output from that F32 source and the type it chose for
            every tensor (names listed once, in llama.cpp's output order). Rows of 576 are not a
            multiple of 256, so the K/TQ/IQ fallbacks are exercised. Some mixes are also made with
            a synthetic importance matrix (`imatrix_value` below; passed through
            `llama_model_quantize_params.imatrix`), which slm's test recomputes exactly.
policy.json Type tables only, for synthetic models (a few layer counts, GQA ratios, tied or
            separate output) built here as tiny F16 GGUFs with gguf-py and quantized by
            llama.cpp to every mix: the layer schedules of the _M mixes, GQA rules, fallbacks.

Pinned: llama-cpp-python==0.3.36 (built from source), gguf==0.19.0, numpy.
Usage: python3 tools/golden/quantize_ref.py [--threads N] [--only real|policy] [--tmpdir DIR]
"""

import argparse
import ctypes
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf
import llama_cpp

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/slm-convert/tests/fixtures/quantize"
MATERIAL = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache/slm-material"))
SOURCE = MATERIAL / "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# llama.h's llama_ftype ids.
FTYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
    "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
    "Q5_K_M": 17, "Q6_K": 18, "IQ2_XXS": 19, "IQ2_XS": 20, "Q2_K_S": 21, "IQ3_XS": 22,
    "IQ3_XXS": 23, "IQ1_S": 24, "IQ4_NL": 25, "IQ3_S": 26, "IQ3_M": 27, "IQ2_S": 28,
    "IQ2_M": 29, "IQ4_XS": 30, "IQ1_M": 31, "BF16": 32, "TQ1_0": 36, "TQ2_0": 37,
}
# Mixes whose bytes are checked on the real model (without and with an imatrix).
REAL_PLAIN = ["Q8_0", "Q6_K", "Q5_1", "Q5_0", "Q5_K_M", "Q5_K_S", "Q4_1", "Q4_0", "Q4_K_M",
              "Q4_K_S", "IQ4_NL", "IQ4_XS", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "TQ2_0",
              "TQ1_0", "F16", "BF16"]
REAL_IMATRIX = ["Q4_0", "Q4_K_M", "IQ4_XS", "Q2_K_S", "IQ3_XXS"]
# Policy-only mixes (IQ mixes get an all-ones imatrix where one is needed).
POLICY_MIXES = [m for m in FTYPES if m not in ("F32",)]
NEEDS_IMATRIX = {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M", "Q2_K_S", "IQ3_XXS", "IQ3_XS"}
# Mixes whose rules look at whether an imatrix is given: checked both ways.
IMATRIX_MATTERS = {"Q4_0", "Q5_0", "IQ4_NL", "IQ4_XS"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def imatrix_value(layer, j):
    """The synthetic importance of column j of a weight in layer `layer` (-1 outside blocks):
    exact in f32, the same formula as the Rust test."""
    return 0.25 + ((j * 7 + (layer + 1) * 3) % 16) * 0.125


def layer_of(name):
    if name.startswith("blk."):
        digits = name[4:].split(".", 1)[0]
        if digits.isdigit():
            return int(digits)
    return -1


def make_imatrix(path, fill=None):
    """llama_model_imatrix_data for every 2-D+ weight of the GGUF at `path`."""
    r = gguf.GGUFReader(path)
    keep, entries = [], []
    for t in r.tensors:
        shape = [int(x) for x in t.shape]
        if len(shape) < 2 or not t.name.endswith("weight"):
            continue
        ne0 = shape[0]
        n_mat = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        if fill is None:
            layer = layer_of(t.name)
            row = np.array([imatrix_value(layer, j) for j in range(ne0)], dtype=np.float32)
        else:
            row = np.full(ne0, fill, dtype=np.float32)
        data = np.ascontiguousarray(np.tile(row, n_mat))
        keep.append(data)
        name = t.name.encode()
        keep.append(name)
        entries.append((name, data))
    arr = (llama_cpp.llama_model_imatrix_data * (len(entries) + 1))()
    for i, (name, data) in enumerate(entries):
        arr[i].name = name
        arr[i].data = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        arr[i].size = data.size
    arr[len(entries)].name = None
    return arr, keep


def quantize(src, dst, ftype, threads, allow_requantize=False, imatrix=None):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[ftype]
    p.nthread = threads
    p.allow_requantize = allow_requantize
    if imatrix is not None:
        p.imatrix = ctypes.cast(imatrix, ctypes.POINTER(llama_cpp.llama_model_imatrix_data))
    # llama.cpp logs every tensor on stderr: keep it in a file, shown only on failure.
    log = tempfile.TemporaryFile()
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    if rc != 0:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise RuntimeError(f"llama_model_quantize {src} -> {ftype} failed ({rc})")


def tensor_types(path):
    r = gguf.GGUFReader(path)
    return [(t.name, t.tensor_type.name) for t in r.tensors]


def tensor_digests(path):
    """The first 8 hex digits of each tensor's data sha256, in file order."""
    r = gguf.GGUFReader(path)
    return " ".join(hashlib.sha256(t.data.tobytes()).hexdigest()[:8] for t in r.tensors)


def real(tmp, threads):
    if sha256(SOURCE) != SOURCE_SHA256:
        sys.exit(f"{SOURCE}: wrong sha256 (run tools/material.py)")
    f32 = tmp / "smollm2-f32.gguf"
    quantize(SOURCE, f32, "F32", threads, allow_requantize=True)
    out = {"source": SOURCE.name, "source_sha256": SOURCE_SHA256,
           "f32_sha256": sha256(f32), "f32_size": f32.stat().st_size,
           "imatrix": "0.25 + ((j*7 + (layer+1)*3) % 16) * 0.125, layer -1 outside blk.N",
           "names": None, "mixes": []}
    imatrix, keep = make_imatrix(f32)
    runs = [(m, False) for m in REAL_PLAIN] + [(m, True) for m in REAL_IMATRIX]
    for mix, with_im in runs:
        dst = tmp / f"out-{mix}.gguf"
        quantize(f32, dst, mix, threads, imatrix=imatrix if with_im else None)
        types = tensor_types(dst)
        names = [n for n, _ in types]
        if out["names"] is None:
            out["names"] = " ".join(names)
        assert out["names"] == " ".join(names), "tensor order differs between mixes"
        out["mixes"].append({"type": mix, "imatrix": with_im, "sha256": sha256(dst),
                             "size": dst.stat().st_size, "types": " ".join(t for _, t in types),
                             "tensor_sha256": tensor_digests(dst)})
        print(f"{mix:8s} imatrix={with_im!s:5s} {dst.stat().st_size:>11,d} B", flush=True)
        dst.unlink()
    del keep
    return out


# (label, n_layer, n_head, n_head_kv, tied, n_embd, n_ff)
POLICY_MODELS = [
    ("l32-gqa1-untied", 32, 8, 8, False, 256, 512),
    ("l12-gqa4-tied", 12, 8, 2, True, 256, 256),
    ("l30-gqa3-tied-576", 30, 9, 3, True, 576, 256),
    ("l7-gqa2-untied", 7, 4, 2, False, 256, 256),
]


def make_policy_model(path, n_layer, n_head, n_head_kv, tied, n_embd, n_ff):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(n_layer)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_file_type(1)
    n_vocab = 256
    kv = n_embd // n_head * n_head_kv
    rng = np.random.default_rng(1)

    def t(name, shape):  # shape in numpy order (rows, cols)
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float16 if len(shape) > 1 else np.float32))

    t("token_embd.weight", (n_vocab, n_embd))
    t("output_norm.weight", (n_embd,))
    if not tied:
        t("output.weight", (n_vocab, n_embd))
    for i in range(n_layer):
        t(f"blk.{i}.attn_norm.weight", (n_embd,))
        t(f"blk.{i}.attn_q.weight", (n_embd, n_embd))
        t(f"blk.{i}.attn_k.weight", (kv, n_embd))
        t(f"blk.{i}.attn_v.weight", (kv, n_embd))
        t(f"blk.{i}.attn_output.weight", (n_embd, n_embd))
        t(f"blk.{i}.ffn_norm.weight", (n_embd,))
        t(f"blk.{i}.ffn_gate.weight", (n_ff, n_embd))
        t(f"blk.{i}.ffn_up.weight", (n_ff, n_embd))
        t(f"blk.{i}.ffn_down.weight", (n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def policy(tmp, threads):
    models = []
    for label, n_layer, n_head, n_head_kv, tied, n_embd, n_ff in POLICY_MODELS:
        src = tmp / f"policy-{label}.gguf"
        make_policy_model(src, n_layer, n_head, n_head_kv, tied, n_embd, n_ff)
        r = gguf.GGUFReader(src)
        tensors = [[t.name, [int(x) for x in t.shape], t.tensor_type.name] for t in r.tensors]
        ones, keep = make_imatrix(src, fill=1.0)
        mixes = []
        for mix in POLICY_MIXES:
            if mix in NEEDS_IMATRIX:
                variants = [True]
            elif mix in IMATRIX_MATTERS:
                variants = [False, True]
            else:
                variants = [False]
            for with_im in variants:
                dst = tmp / "policy-out.gguf"
                quantize(src, dst, mix, threads, imatrix=ones if with_im else None)
                types = tensor_types(dst)
                mixes.append({"type": mix, "imatrix": with_im,
                              "names": " ".join(n for n, _ in types),
                              "types": " ".join(t for _, t in types)})
                dst.unlink()
        del keep
        # The output order is the same for every mix: store it once.
        order = mixes[0]["names"]  # one string, space-separated
        assert all(m["names"] == order for m in mixes)
        for m in mixes:
            del m["names"]
        models.append({"label": label, "arch": "llama", "n_layer": n_layer, "n_head": n_head,
                       "n_head_kv": n_head_kv, "n_expert": 0, "tensors": tensors,
                       "order": order, "mixes": mixes})
        print(f"policy {label}: {len(mixes)} mixes", flush=True)
    return {"models": models}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["real", "policy"])
    ap.add_argument("--tmpdir", help="scratch folder (needs ~1 GB; default: the system's)")
    args = ap.parse_args()
    llama_cpp.llama_backend_init()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qref-", dir=args.tmpdir) as d:
        tmp = Path(d)
        if args.only in (None, "policy"):
            (OUT / "policy.json").write_text(json.dumps(policy(tmp, args.threads), separators=(",", ":")) + "\n")
        if args.only in (None, "real"):
            (OUT / "real.json").write_text(json.dumps(real(tmp, args.threads), indent=1) + "\n")


if __name__ == "__main__":
    main()
