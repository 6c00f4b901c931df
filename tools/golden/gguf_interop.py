#!/usr/bin/env python3
"""Reference side of slm-gguf's interoperability tests, using the PyPI `gguf` package (pinned).

    gguf_interop.py write OUTDIR    write reference files with gguf.GGUFWriter into OUTDIR
                                    (every value type, arrays of every element type incl. strings
                                    and bools, plain and quantized tensors with odd shapes,
                                    custom general.alignment); prints the file names, one a line.
    gguf_interop.py dump FILE...    read each FILE with gguf.GGUFReader and print one JSON object
                                    per line, in the canonical form slm's test builds too:
        {"version", "alignment", "data_offset",
         "kv": [[key, type, value], ...]              (file order; arrays: ["array", [sub, [items]]])
         "tensors": [{"name", "type", "dims" (ggml order), "n_elements", "n_bytes",
                      "offset" (relative to the data section), "sha256"}, ...]}
    Integers are JSON integers, floats the lowercase hex of their little-endian bytes (exact,
    NaN-safe), bools JSON booleans, strings JSON strings.
    gguf_interop.py sizes           print {type name: [id, block size, type size]} of gguf's table.

Used by crates/slm-gguf/tests/interop.rs and tests/real_models.rs.
"""
import hashlib
import json
import os
import sys
from importlib.metadata import version

PINNED = {"gguf": "0.19.0"}
for pkg, want in PINNED.items():
    have = version(pkg)
    if have != want:
        sys.exit(f"gguf_interop.py needs {pkg}=={want}, found {have}")

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf import GGUFReader, GGUFValueType as VT, GGMLQuantizationType as QT  # noqa: E402

TYPE_NAMES = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
    VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
    VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64",
}
FLOAT_DTYPES = {VT.FLOAT32: "<f4", VT.FLOAT64: "<f8"}


def enc_scalar(vt, part):
    if vt == VT.STRING:
        return str(part.tobytes(), encoding="utf-8")
    if vt in FLOAT_DTYPES:
        return np.asarray(part, dtype=FLOAT_DTYPES[vt]).reshape(-1)[:1].tobytes().hex()
    if vt == VT.BOOL:
        return bool(part[0])
    return int(part[0])


def enc_field(field):
    vt = field.types[0]
    if vt == VT.ARRAY:
        sub = field.types[-1] if len(field.types) > 1 else None
        if sub is None:  # an empty array: gguf records no element type in `types`
            sub_id = int(field.parts[3][0])  # [key len, key, value type, element type, count]
            sub = VT(sub_id)
        items = [enc_scalar(sub, field.parts[i]) for i in field.data]
        return ["array", [TYPE_NAMES[sub], items]]
    return [TYPE_NAMES[vt], enc_scalar(vt, field.parts[-1])]


def dump(path):
    r = GGUFReader(path)
    kv = []
    for name, field in r.fields.items():
        if name in ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"):
            continue
        t, v = enc_field(field)
        kv.append([name, t, v])
    tensors = []
    for t in r.tensors:
        start = int(t.data_offset)
        data = r.data[start:start + int(t.n_bytes)]
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "offset": start - int(r.data_offset),
            "sha256": hashlib.sha256(memoryview(np.ascontiguousarray(data))).hexdigest(),
        })
    return {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "kv": kv,
        "tensors": tensors,
    }


def write_file(path, alignment, seed):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "testarch")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    # Every scalar type, with edge values.
    w.add_uint8("t.u8", 255)
    w.add_int8("t.i8", -128)
    w.add_uint16("t.u16", 65535)
    w.add_int16("t.i16", -32768)
    w.add_uint32("t.u32", 2**32 - 1)
    w.add_int32("t.i32", -(2**31))
    w.add_float32("t.f32", 1.5)
    w.add_float32("t.f32.nan", float("nan"))
    w.add_float32("t.f32.neg_inf", float("-inf"))
    w.add_float32("t.f32.neg_zero", -0.0)
    w.add_float32("t.f32.subnormal", 1e-45)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float64("t.f64", 3.141592653589793)
    w.add_float64("t.f64.tiny", 5e-324)
    w.add_bool("t.bool.true", True)
    w.add_bool("t.bool.false", False)
    w.add_string("t.string", "héllo ✓ 日本語 🦀 \"quoted\" \\ \n\t")
    w.add_key_value("t.string.empty", "", VT.STRING)
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}")
    # Arrays of every element type.
    w.add_key_value("a.u8", [0, 1, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("a.i8", [-128, 0, 127], VT.ARRAY, sub_type=VT.INT8)
    w.add_key_value("a.u16", [0, 65535], VT.ARRAY, sub_type=VT.UINT16)
    w.add_key_value("a.i16", [-32768, 32767, -1], VT.ARRAY, sub_type=VT.INT16)
    w.add_key_value("a.u32", [0, 2**32 - 1, 7], VT.ARRAY, sub_type=VT.UINT32)
    w.add_key_value("a.i32", [-(2**31), 2**31 - 1], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("a.f32", [0.1, -2.5, float("inf"), 1e-40], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_key_value("a.u64", [0, 2**64 - 1], VT.ARRAY, sub_type=VT.UINT64)
    w.add_key_value("a.i64", [-(2**63), 2**63 - 1, 0], VT.ARRAY, sub_type=VT.INT64)
    w.add_key_value("a.f64", [1e300, -1e-300, 0.5], VT.ARRAY, sub_type=VT.FLOAT64)
    w.add_key_value("a.bool", [True, False, True, True], VT.ARRAY, sub_type=VT.BOOL)
    w.add_key_value("a.string", ["", "a", "日本", "<0x0A>", "Ġthe", "x" * 300], VT.ARRAY,
                    sub_type=VT.STRING)
    w.add_key_value("a.f32.long", [float(x) for x in rng.standard_normal(1000).astype(np.float32)],
                    VT.ARRAY, sub_type=VT.FLOAT32)

    # Plain tensors, numpy shapes (ggml dims are the reverse), odd sizes, 1 to 4 dims.
    w.add_tensor("f32.odd", rng.standard_normal((3, 5, 7)).astype(np.float32))
    w.add_tensor("f32.4d", rng.standard_normal((2, 1, 3, 4)).astype(np.float32))
    w.add_tensor("f32.scalar", np.array([42.0], dtype=np.float32))
    w.add_tensor("f16.vec", rng.standard_normal(13).astype(np.float16))
    w.add_tensor("f64.mat", rng.standard_normal((2, 3)))
    w.add_tensor("i8.vec", rng.integers(-128, 127, 5, dtype=np.int8))
    w.add_tensor("i16.mat", rng.integers(-9999, 9999, (4, 3), dtype=np.int16))
    w.add_tensor("i32.4d", rng.integers(-(2**31), 2**31 - 1, (1, 1, 1, 9), dtype=np.int32))
    w.add_tensor("i64.mat", rng.integers(-(2**62), 2**62, (2, 2), dtype=np.int64))
    w.add_tensor("bf16.mat", rng.integers(0, 255, (2, 22), dtype=np.uint8), raw_dtype=QT.BF16)
    # Quantized tensors: random block bytes, shape given in bytes per row.
    for i, qt in enumerate(QT):
        if qt in (QT.F32, QT.F16, QT.BF16, QT.F64, QT.I8, QT.I16, QT.I32, QT.I64,
                  QT.NVFP4, QT.Q1_0,  # newer than slm's type table
                  QT.Q8_1):  # gguf-py's size for Q8_1 (40) is stale: ggml's block is 36 bytes
            continue
        _, type_size = gguf.GGML_QUANT_SIZES[qt]
        shape = [(1, 1), (3, 2), (2, 3, 1), (1, 2, 1, 2)][i % 4]
        byte_shape = (*shape[:-1], shape[-1] * type_size)
        w.add_tensor(f"blk.{i}.{qt.name.lower()}.weight",
                     rng.integers(0, 255, byte_shape, dtype=np.uint8), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "write" and len(sys.argv) == 3:
        out = sys.argv[2]
        os.makedirs(out, exist_ok=True)
        for name, alignment, seed in [("gguf_default_align.gguf", None, 1),
                                      ("gguf_align_64.gguf", 64, 2),
                                      ("gguf_align_1.gguf", 1, 3),
                                      ("gguf_align_4096.gguf", 4096, 4)]:
            path = os.path.join(out, name)
            write_file(path, alignment, seed)
            print(path)
    elif cmd == "dump" and len(sys.argv) >= 3:
        for path in sys.argv[2:]:
            print(json.dumps(dump(path), ensure_ascii=False))
    elif cmd == "sizes":
        print(json.dumps({qt.name: [int(qt), *gguf.GGML_QUANT_SIZES[qt]] for qt in QT}))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
