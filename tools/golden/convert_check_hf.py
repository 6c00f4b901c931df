#!/usr/bin/env python3
"""Check every tensor of a GGUF made by `slm convert --outtype f32` against the Hugging Face
safetensors it came from, with the PyPI `gguf` package (llama.cpp's gguf-py 0.19.0) as the
reference for tensor names (`gguf.get_tensor_name_map`) and numpy for the values:

  - every HF tensor (except rotary inv_freq) maps to a GGUF tensor of the same name gguf-py gives;
  - the GGUF holds the same values (F32, exact): Gemma norms +1 (Gemma3RMSNorm's 1 + w, as
    convert_hf_to_gguf.py stores them), the Gemma embedding cut to the vocabulary;
  - no other tensors, except those llama.cpp generates (rope_freqs, rope_factors_*).

Used for the real EmbeddingGemma-300M (tools/material.py embeddinggemma-300m):
    slm convert ~/.cache/slm-material/embeddinggemma-300m -o eg-f32.gguf --outtype f32
    python3 tools/golden/convert_check_hf.py ~/.cache/slm-material/embeddinggemma-300m eg-f32.gguf
Exit status 0 when every tensor matches.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

DTYPES = {"F32": np.float32, "F16": np.float16}


def safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        if e["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=DTYPES[e["dtype"]]).astype(np.float32)
        yield name, arr.reshape(e["shape"])


def main():
    hf_dir, gguf_path = Path(sys.argv[1]), sys.argv[2]
    r = gguf.GGUFReader(gguf_path)
    arch_name = bytes(r.fields["general.architecture"].parts[-1]).decode()
    arch = next(a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name)
    n_blocks = int(r.fields[f"{arch_name}.block_count"].parts[-1][0])
    tmap = gguf.get_tensor_name_map(arch, n_blocks)
    tensors = {t.name: t for t in r.tensors}
    gemma = arch_name in ("gemma3", "gemma-embedding")
    files = sorted(hf_dir.glob("model*.safetensors"))
    seen = set()
    for f in files:
        for hf_name, arr in safetensors(f):
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                sys.exit(f"{hf_name}: gguf-py has no GGUF name for it")
            t = tensors.get(name)
            if t is None:
                sys.exit(f"{hf_name} -> {name}: missing from {gguf_path}")
            if t.tensor_type != gguf.GGMLQuantizationType.F32:
                sys.exit(f"{name}: {t.tensor_type.name}, expected F32")
            want = arr.astype(np.float32)
            if gemma and hf_name.endswith("norm.weight"):
                want = want + np.float32(1.0)
            got = np.asarray(t.data).reshape(list(reversed([int(x) for x in t.shape])))
            if gemma and name == "token_embd.weight":
                want = want[: got.shape[0]]
            if got.shape != want.shape:
                sys.exit(f"{name}: shape {got.shape}, expected {want.shape}")
            if not np.array_equal(got, want):
                bad = int(np.sum(got != want))
                sys.exit(f"{name}: {bad} values differ from {hf_name}")
            seen.add(name)
    extra = [n for n in tensors if n not in seen and not n.startswith(("rope_freqs", "rope_factors"))]
    if extra:
        sys.exit(f"tensors with no HF source: {extra[:5]}")
    print(f"{gguf_path}: all {len(seen)} tensors equal their HF sources ({arch_name})")


if __name__ == "__main__":
    main()
