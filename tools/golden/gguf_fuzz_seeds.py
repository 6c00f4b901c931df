#!/usr/bin/env python3
"""Write the small seed corpus of slm's GGUF fuzz targets (fuzz/corpus/<target>/seed-*.gguf) with
PyPI `gguf` 0.19.0's GGUFWriter. Each seed is a valid GGUF under 2 KiB; libFuzzer mutates them.

    python3 tools/golden/gguf_fuzz_seeds.py [REPO_ROOT]
"""
import os
import sys
from importlib.metadata import version

if version("gguf") != "0.19.0":
    sys.exit(f"needs gguf==0.19.0, found {version('gguf')}")

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf import GGUFValueType as VT, GGMLQuantizationType as QT  # noqa: E402

TARGETS = ["gguf_header", "gguf_full", "gguf_roundtrip"]


def seed_minimal(w, rng):
    w.add_uint32("testarch.context_length", 128)


def seed_scalars(w, rng):
    w.add_uint8("a", 1); w.add_int8("b", -1); w.add_uint16("c", 2); w.add_int16("d", -2)
    w.add_uint32("e", 3); w.add_int32("f", -3); w.add_float32("g", 0.5); w.add_bool("h", True)
    w.add_uint64("i", 4); w.add_int64("j", -4); w.add_float64("k", 0.25); w.add_string("l", "m")
    w.add_tensor("t", np.arange(4, dtype=np.float32))


def seed_arrays(w, rng):
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "▁b", "<0x0A>"])
    w.add_key_value("tokenizer.ggml.scores", [0.0, -1.0, -2.5, 3.0, 1.0], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_key_value("tokenizer.ggml.token_type", [3, 3, 1, 1, 6], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("flags", [True, False], VT.ARRAY, sub_type=VT.BOOL)
    w.add_key_value("u64s", [1, 2**63], VT.ARRAY, sub_type=VT.UINT64)


def seed_tensors(w, rng):
    w.add_custom_alignment(16)
    w.add_tensor("token_embd.weight", rng.standard_normal((3, 4)).astype(np.float16))
    w.add_tensor("blk.0.attn_q.weight", rng.integers(0, 255, (2, 18), dtype=np.uint8), raw_dtype=QT.Q4_0)
    w.add_tensor("blk.0.ffn.weight", rng.integers(0, 255, (1, 144), dtype=np.uint8), raw_dtype=QT.Q4_K)
    w.add_tensor("i32.4d", np.arange(6, dtype=np.int32).reshape(1, 2, 1, 3))


def seed_align1(w, rng):
    w.add_custom_alignment(1)
    w.add_tensor("a", np.arange(3, dtype=np.int8))
    w.add_tensor("b", np.arange(5, dtype=np.int16))


SEEDS = {
    "minimal": seed_minimal,
    "scalars": seed_scalars,
    "arrays": seed_arrays,
    "tensors": seed_tensors,
    "align1": seed_align1,
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
    for target in TARGETS:
        out = os.path.join(root, "fuzz", "corpus", target)
        os.makedirs(out, exist_ok=True)
        for name, fill in SEEDS.items():
            path = os.path.join(out, f"seed-{name}.gguf")
            w = gguf.GGUFWriter(path, "testarch")
            fill(w, np.random.default_rng(7))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            assert os.path.getsize(path) <= 2048, (path, os.path.getsize(path))
            print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
