"""The torch-free CLIP tokenizer matches transformers' CLIPTokenizer built from the same files."""

import logging
import subprocess
import sys

import numpy as np
import pytest

from i2v_core.tokenizer import CLIPTokenizer, truncation_warnings_off

TEXTS = [
    "a photo of a cat",
    "A RED Ball rolls to the right!!",
    "it's fine, we'll see; they're here and I'm sure you'd agree",
    "café, naïve résumé, Ångström, Smørrebrød",
    "東京の夜景 and 서울",
    "🐱 a cat emoji 🎉🎉",
    "  lots   of\tspace\n\nand newlines ",
    "&amp; html entities &lt;b&gt; stay literal",
    "state-of-the-art 3.14159 x2 1,000,000 4k 60fps",
    "",
    "portrait of a woman, highly detailed, 8k, trending on artstation, (masterpiece:1.2)",
    "camera pans left, slow motion, cinematic lighting",
    "UPPER lower MiXeD",
    "a dog's tail wags; the dogs' owners watch",
    "https://example.com/path?q=1&r=2",
    "email me at someone@example.org",
    "C++ and C# and F# code",
    "snake_case and kebab-case and CamelCase",
    "quotes: \"double\" 'single' `back`",
    "punctuation!?!?... --- ;;; :::",
    "numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000",
    "Ünïcödé àccents éverywhere",
    "Привет мир",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "tab\tseparated\tvalues",
    "a\u00a0non-breaking space",
    "e\u0301 combining accent (NFC)",
    "ﬁ ligature and ½ fraction",
    "repeated repeated repeated words words",
    " ".join(["a red ball rolls to the right over the green grass"] * 12),
]


@pytest.fixture(scope="module")
def tok():
    return CLIPTokenizer.from_bpe_file()


@pytest.fixture(scope="module")
def hf(tok, tmp_path_factory):
    from transformers import CLIPTokenizer as HFTokenizer

    d = tmp_path_factory.mktemp("tokenizer")
    tok.save_pretrained_files(d)
    return HFTokenizer.from_pretrained(d)


def test_vocabulary(tok):
    assert tok.vocab_size == 49408
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (49406, 49407, 49407)
    assert tok.encode("a photo of a cat")[:7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_transformers(tok, hf, text, caplog):
    ours = tok.encode(text)
    theirs = hf(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert ours.shape == (77,) and ours.dtype == np.int64
    assert ours.tolist() == theirs


def test_truncation_warns_and_strict_refuses(tok, caplog):
    long_text = TEXTS[-1]
    with caplog.at_level(logging.WARNING, logger="i2v_core.tokenizer"):
        ids = tok.encode(long_text)
    assert ids[-1] == tok.eos_id and len(tok.tokenize(long_text)) > 75
    assert any("truncated to 75" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match=r"prompt is \d+ tokens, the text encoder takes at most 75 \(77 with start and end tokens\)"):
        tok.encode(long_text, truncate=False)


def test_quiet_truncation_is_scoped(tok, caplog):
    """Silencing the warning for a test set must not silence it for later callers (it once did)."""
    with caplog.at_level(logging.WARNING):
        with truncation_warnings_off():
            tok.encode(TEXTS[-1])
        assert not caplog.records
        tok.encode(TEXTS[-1])
    assert any("truncated to 75" in r.getMessage() for r in caplog.records)


def test_non_string_is_refused(tok):
    with pytest.raises(TypeError, match="expected a prompt of type str, got int"):
        tok.encode(42)


def test_files_round_trip_and_batch(tok, tmp_path):
    paths = tok.save_pretrained_files(tmp_path)
    assert {p.name for p in paths} == {"vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"}
    again = CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert np.array_equal(again.encode_batch(TEXTS[:5]), tok.encode_batch(TEXTS[:5]))
    assert tok.encode_batch(TEXTS[:3]).shape == (3, 77)
    assert tok.decode(tok.encode("a red ball rolls")) == "a red ball rolls"


def test_import_is_torch_free():
    code = "import sys, i2v_core.tokenizer, i2v_core.stages, i2v_core.media, i2v_core.colour; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
