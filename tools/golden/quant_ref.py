#!/usr/bin/env python3
"""Reference quantization results for slm-quant's bit-exactness tests.

Pinned references: PyPI gguf==0.19.0 (llama.cpp's gguf-py: numpy ports that match ggml's C code)
and libgguf==0.2.2 (a C implementation of ggml's quantizers, byte-identical to llama.cpp's for
every type it has, except IQ1_M on rows with exactly tied choices; see
crates/slm-quant/tests/data/ggml_ref/README.md).

Usage (called by crates/slm-quant/tests/formats_*.rs):
  quant_ref.py dequant  TYPE N_PER_ROW IN OUT            IN: raw block bytes, OUT: f32 values (gguf)
  quant_ref.py cdequant TYPE N_PER_ROW IN OUT            the same through libgguf's C code
  quant_ref.py quant    TYPE N_PER_ROW IN OUT [IMATRIX]  IN: f32 rows, OUT: bytes (libgguf)
  quant_ref.py pyquant  TYPE N_PER_ROW IN OUT            IN: f32 rows, OUT: bytes (gguf numpy)
  quant_ref.py batch    JOBS                             JOBS: a text file, one job a line, each
                                                          line the arguments of one call above
All binary files are little-endian, without headers.
"""
import sys
from importlib.metadata import version

import numpy as np

PINNED = {"gguf": "0.19.0", "libgguf": "0.2.2"}


def check_versions(*names):
    for name in names:
        have = version(name)
        if have != PINNED[name]:
            sys.exit(f"quant_ref.py: need {name}=={PINNED[name]}, found {have}")


def qtype(mod, name):
    return getattr(mod.GGMLQuantizationType, name)


def main(argv):
    op = argv[1]
    if op == "batch":
        with open(argv[2]) as f:
            for line in f:
                if line.strip():
                    main([argv[0]] + line.split())
        return
    tname, n_per_row, src, dst = argv[2], int(argv[3]), argv[4], argv[5]
    if op == "dequant":
        check_versions("gguf")
        import gguf

        ty = qtype(gguf, tname)
        block, size = gguf.GGML_QUANT_SIZES[ty]
        raw = np.fromfile(src, dtype=np.uint8)
        row_bytes = n_per_row // block * size
        data = raw.reshape(-1, row_bytes)
        if tname == "F32":
            vals = data.view(np.float32)
        elif tname == "F16":
            vals = data.view(np.float16).astype(np.float32)
        else:
            vals = gguf.quants.dequantize(data, ty)
        np.ascontiguousarray(vals, dtype=np.float32).tofile(dst)
    elif op == "cdequant":
        check_versions("libgguf")
        import libgguf

        ty = qtype(libgguf, tname)
        raw = np.fromfile(src, dtype=np.uint8)
        row_bytes = libgguf.row_size(ty, n_per_row)
        vals = libgguf.dequantize_rows(raw.reshape(-1, row_bytes), ty, n_per_row)
        np.ascontiguousarray(vals, dtype=np.float32).tofile(dst)
    elif op == "pyquant":
        check_versions("gguf")
        import gguf

        x = np.fromfile(src, dtype=np.float32).reshape(-1, n_per_row)
        q = gguf.quants.quantize(x, qtype(gguf, tname))
        np.ascontiguousarray(q).view(np.uint8).tofile(dst)
    elif op == "quant":
        check_versions("libgguf")
        import libgguf

        x = np.fromfile(src, dtype=np.float32).reshape(-1, n_per_row)
        imatrix = None
        if len(argv) > 6:
            imatrix = np.fromfile(argv[6], dtype=np.float32)
        q = libgguf.quantize_rows(x, qtype(libgguf, tname), imatrix=imatrix)
        np.ascontiguousarray(q).view(np.uint8).tofile(dst)
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main(sys.argv)
