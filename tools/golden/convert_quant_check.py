#!/usr/bin/env python3
"""Check slm convert's F16 and Q8_0 outputs against llama.cpp's converter rules, using the PyPI
`gguf` package (llama.cpp's gguf-py, pinned in tools/requirements.txt) on llama.cpp's own F32
conversion of the same model:

  - 1-D tensors and *_norm.weight: F32, bytes equal to llama.cpp's F32 tensor;
  - other weights: gguf.quants.quantize(f32, F16 / Q8_0) bytes (Q8_0 falls back to F16 when a
    row is not a multiple of 32, as convert_hf_to_gguf.py does);
  - the same tensor names, order and dims; general.file_type 1 (F16) and 7 (Q8_0).

Usage: convert_quant_check.py LLAMACPP_F32.gguf SLM_F16.gguf SLM_Q8_0.gguf
Exit status 0 when everything matches; the first mismatch is printed otherwise.
"""

import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T


def tensors(path):
    r = gguf.GGUFReader(path)
    return r, [(t.name, t.tensor_type, [int(x) for x in t.shape], np.asarray(t.data)) for t in r.tensors]


def check(ref_path, path, qtype, file_type):
    _, ref = tensors(ref_path)
    r, ours = tensors(path)
    ft = int(r.fields["general.file_type"].parts[-1][0])
    if ft != file_type:
        sys.exit(f"{path}: general.file_type {ft}, expected {file_type}")
    if [t[0] for t in ref] != [t[0] for t in ours]:
        sys.exit(f"{path}: tensor names/order differ")
    for (name, _, shape, data), (_, oty, oshape, odata) in zip(ref, ours):
        if shape != oshape:
            sys.exit(f"{path}: {name} dims {oshape} != {shape}")
        arr = data.reshape(list(reversed(shape)))
        if arr.ndim <= 1 or name.endswith("_norm.weight"):
            want_ty, want = T.F32, arr.tobytes()
        else:
            want_ty = qtype
            if qtype == T.Q8_0 and shape[0] % 32 != 0:
                want_ty = T.F16
            want = gguf.quants.quantize(arr, want_ty).tobytes()
        if oty != want_ty:
            sys.exit(f"{path}: {name} type {oty.name}, expected {want_ty.name}")
        if odata.tobytes() != want:
            sys.exit(f"{path}: {name} bytes differ from gguf.quants.quantize ({want_ty.name})")
    print(f"{path}: {len(ours)} tensors match gguf-py {qtype.name}")


def main():
    ref, f16, q8 = sys.argv[1:4]
    check(ref, f16, T.F16, 1)
    check(ref, q8, T.Q8_0, 7)


if __name__ == "__main__":
    main()
