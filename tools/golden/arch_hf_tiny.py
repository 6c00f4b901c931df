#!/usr/bin/env python3
"""Reference logits per architecture from Hugging Face `transformers` on tiny random-weight
models, converted to GGUF by llama.cpp's own `convert_hf_to_gguf.py`; the outputs are the
committed fixtures of `crates/slm-model/tests/arch_tiny.rs`.

For each of llama (with Llama 3 RoPE scaling), qwen2 (q/k/v biases), qwen3 (QK-norm, head_dim
!= n_embd/n_head) and phi3 (fused QKV and gate/up, partial rotary as Phi-4-mini, LongRoPE):
  1. build the HF model from a small config with the real structure (GQA, biases, norms, RoPE
     scaling), seed-fixed random weights scaled so logits spread over several nats (norm weights
     around 1, biases non-zero), and save it as safetensors + config.json + a tiny
     SentencePiece tokenizer (trained here on botchan.txt, 320 pieces);
  2. record transformers' float32 logits (eager attention) at every position of a few prompts
     given as token ids;
  3. convert the folder with llama.cpp's converter (`--outtype f32`), taken at run time from the
     llama-cpp-python 0.3.36 source archive (downloaded from PyPI and sha256-checked like
     `tools/material.py` does, or `--sdist PATH`); the converter itself is never committed.
Writes `crates/slm-model/tests/fixtures/arch/tiny-<arch>.gguf` and `tiny-<arch>-logits.json`,
and the HF folders themselves (config.json, model.safetensors, tokenizer_config.json) to
`crates/slm-convert/tests/fixtures/hf/hf-<arch>/` with their shared tokenizer.model once in
`crates/slm-convert/tests/fixtures/hf/tokenizer.model`, the inputs of
slm's own converter in `crates/slm-convert/tests/convert_tiny.rs`. `--out DIR` writes the
GGUF/logits fixtures to DIR instead (to check that a rerun reproduces the committed bytes).

Pinned: torch==2.9.1 (CPU), transformers==4.57.1, safetensors==0.6.2, tokenizers==0.22.1,
sentencepiece==0.2.1, numpy; llama.cpp 0c1e57098 (llama-cpp-python 0.3.36 sdist).
Usage: python3 tools/golden/arch_hf_tiny.py [--sdist llama_cpp_python-0.3.36.tar.gz] [--arch llama ...]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/slm-model/tests/fixtures/arch"
HF_OUT = ROOT / "crates/slm-convert/tests/fixtures/hf"
HF_FILES = ["config.json", "model.safetensors", "tokenizer_config.json"]
VOCAB = 320
PROMPTS = [
    [1, 45, 200, 7, 310, 99, 3, 150, 150, 42, 17],
    [1, 300, 12, 250, 61, 8, 190, 77, 5, 260, 33, 101, 44, 2, 319, 90, 66, 128, 27],
]


def configs():
    """The tiny HF configs, one per architecture (transformers class name, kwargs)."""
    common = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return {
        "llama": (
            "LlamaForCausalLM",
            "LlamaConfig",
            dict(
                common,
                max_position_embeddings=256,
                rope_theta=10000.0,
                rope_scaling={
                    "rope_type": "llama3",
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 32,
                },
                tie_word_embeddings=True,
            ),
        ),
        "qwen2": (
            "Qwen2ForCausalLM",
            "Qwen2Config",
            dict(
                common,
                max_position_embeddings=512,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=False,
                use_sliding_window=False,
            ),
        ),
        "qwen3": (
            "Qwen3ForCausalLM",
            "Qwen3Config",
            dict(
                common,
                head_dim=32,
                max_position_embeddings=512,
                rope_theta=1000000.0,
                rms_norm_eps=1e-6,
                tie_word_embeddings=True,
                attention_bias=False,
            ),
        ),
        "phi3": (
            "Phi3ForCausalLM",
            "Phi3Config",
            dict(
                common,
                num_attention_heads=4,
                num_key_value_heads=2,
                partial_rotary_factor=0.75,
                max_position_embeddings=4096,
                original_max_position_embeddings=64,
                rope_theta=10000.0,
                rope_scaling={
                    "type": "longrope",
                    # head_dim 16 * 0.75 = 12 rotated dims: 6 factors each.
                    "short_factor": [1.0, 1.3, 1.9, 2.7, 4.2, 6.0],
                    "long_factor": [1.1, 2.0, 4.0, 9.0, 17.0, 30.0],
                },
                sliding_window=2047,
                tie_word_embeddings=False,
            ),
        ),
    }


def randomize(model, torch, seed):
    """Weights that make every part of the model matter: matrices ~ N(0, 1/fan_in) (2x for the
    output head), embeddings ~ N(0, 1), norm weights 1 + N(0, 0.2), biases ~ N(0, 0.5)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_(0.5 * r)
            elif "embed_tokens" in name:
                p.copy_(r)
            elif "lm_head" in name:
                p.copy_(2.0 * r / math.sqrt(p.shape[1]))
            else:
                p.copy_(r / math.sqrt(p.shape[1]))


def train_tokenizer(work, botchan):
    import sentencepiece as spm

    prefix = work / "spm"
    spm.SentencePieceTrainer.train(
        input=str(botchan),
        model_prefix=str(prefix),
        vocab_size=VOCAB,
        model_type="bpe",
        character_coverage=1.0,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        num_threads=2,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def converter(work, sdist):
    """Extract llama.cpp's converter (+ its `conversion` package and gguf-py) to `work`."""
    if sdist is None:
        sys.path.insert(0, str(ROOT / "tools"))
        from material import pypi_sdist  # noqa: E402

        sdist = pypi_sdist("llama-cpp-python", "0.3.36", work)
    base = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
    with tarfile.open(sdist) as tf:
        members = [
            m
            for m in tf.getmembers()
            if m.name == base + "convert_hf_to_gguf.py"
            or m.name.startswith(base + "conversion/")
            or m.name.startswith(base + "gguf-py/")
        ]
        tf.extractall(work, members=members, filter="data")
    return work / base / "convert_hf_to_gguf.py"


def main():
    import numpy as np
    import torch
    import transformers

    ap = argparse.ArgumentParser()
    ap.add_argument("--sdist", type=Path, help="llama_cpp_python-0.3.36.tar.gz (else from PyPI)")
    ap.add_argument("--arch", nargs="*", default=list(configs()))
    default_mat = os.environ.get("SLM_MATERIAL", str(Path.home() / ".cache/slm-material"))
    ap.add_argument("--material", type=Path, default=Path(default_mat))
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the GGUF/logits fixtures")
    ap.add_argument("--hf-out", type=Path, default=HF_OUT, help="folder for the HF folders")
    args = ap.parse_args()
    out_dir = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    with tempfile.TemporaryDirectory(prefix="slm-arch-") as tmp:
        work = Path(tmp)
        convert = converter(work, args.sdist)
        tok_model = train_tokenizer(work, args.material / "botchan.txt")
        for arch in args.arch:
            seed = list(configs()).index(arch)
            cls_name, cfg_name, kw = configs()[arch]
            cfg = getattr(transformers, cfg_name)(**kw)
            cfg._attn_implementation = "eager"
            torch.manual_seed(seed)
            model = getattr(transformers, cls_name)(cfg).eval()
            randomize(model, torch, 1000 + seed)
            hf_dir = work / f"hf-{arch}"
            model.save_pretrained(hf_dir, safe_serialization=True)
            (hf_dir / "tokenizer.model").write_bytes(tok_model.read_bytes())
            (hf_dir / "tokenizer_config.json").write_text(
                json.dumps(
                    {"add_bos_token": True, "add_eos_token": False, "tokenizer_class": "LlamaTokenizer"}
                )
            )
            cases = []
            with torch.no_grad():
                for ids in PROMPTS:
                    out = model(torch.tensor([ids]), use_cache=False)
                    logits = out.logits[0].to(torch.float32).numpy()
                    cases.append(
                        {
                            "ids": ids,
                            # (len(ids), VOCAB), 6 significant digits
                            "logits": [[float(f"{x:.6g}") for x in row] for row in logits],
                        }
                    )
            keep = args.hf_out / f"hf-{arch}"
            keep.mkdir(parents=True, exist_ok=True)
            for name in HF_FILES:
                (keep / name).write_bytes((hf_dir / name).read_bytes())
            (args.hf_out / "tokenizer.model").write_bytes(tok_model.read_bytes())
            gguf_path = out_dir / f"tiny-{arch}.gguf"
            subprocess.run(
                [sys.executable, str(convert), str(hf_dir), "--outtype", "f32",
                 "--outfile", str(gguf_path)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            spread = float(np.mean([np.std(r) for c in cases for r in c["logits"]]))
            doc = {
                "meta": {
                    "arch": arch,
                    "hf_class": cls_name,
                    "config": {k: v for k, v in kw.items()},
                    "transformers": transformers.__version__,
                    "torch": torch.__version__,
                    "converter": "llama.cpp 0c1e57098 convert_hf_to_gguf.py --outtype f32 "
                    "(llama-cpp-python 0.3.36 sdist)",
                    "script": "tools/golden/arch_hf_tiny.py",
                    "mean_logit_std": spread,
                },
                "cases": cases,
            }
            with open(out_dir / f"tiny-{arch}-logits.json", "w") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.write("\n")
            print(f"{arch}: {gguf_path.stat().st_size} B gguf, mean logit std {spread:.3f}")


if __name__ == "__main__":
    main()
