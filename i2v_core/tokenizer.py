"""CLIP byte-level BPE tokenizer, torch-free (stdlib, numpy, `regex`).

The vocabulary is SD1.5's (openai/clip-vit-large-patch14, 49,408 tokens), built from the BPE merges
file shipped in `i2v_core/data/` (MIT, OpenAI CLIP via open_clip). Text normalisation follows
transformers' `CLIPTokenizer` (NFC, whitespace runs to one space, lower case; no ftfy, no HTML
unescaping), so ids match it; the numpy runtime and the Android app use the same files.

Prompts longer than the text encoder's 77 positions are truncated with a warning (as diffusers
does), or refused with `truncate=False`.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import logging
import unicodedata
from pathlib import Path

import numpy as np
import regex

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def truncation_warnings_off():
    """Silence the over-long-prompt warning while texts are truncated on purpose (test sets), then
    put the logger's level back, so later callers still see it."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

def check_prompt_lengths(tokenizer, prompts: list[str], *, truncate: bool) -> None:
    """The prompt-length policy of every generating CLI: a prompt over the text encoder's length is
    a `ValueError` unless `truncate` (`--truncate-prompt`; encoding then cuts it with a warning)."""
    if truncate:
        return
    for text in prompts:
        try:
            tokenizer.encode(text, truncate=False)
        except ValueError as err:
            raise ValueError(f"{err}; shorten it or pass --truncate-prompt to cut it with a warning") from None


DATA_DIR = Path(__file__).parent / "data"
BPE_FILE = DATA_DIR / "bpe_simple_vocab_16e6.txt.gz"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
NUM_MERGES = 49152 - 256 - 2  # the merges CLIP keeps from the file
MAX_LENGTH = 77

_SPLIT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
_WHITESPACE = regex.compile(r"\s+")


@functools.lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """Reversible map from the 256 bytes to printable characters (GPT-2 / CLIP byte-level BPE).

    Printable Latin-1 bytes map to themselves; the rest to code points from 256 up, in byte order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table  # insertion order (printable first) is the vocabulary order


def normalize(text: str) -> str:
    """transformers' CLIP normaliser: NFC, whitespace runs -> one space, lower case."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).lower()


class CLIPTokenizer:
    """`encode(text) -> (77,) int64` ids: start token, BPE tokens, end token, padded with end tokens."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        self.merges = merges
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.bos_id, self.eos_id = vocab[BOS], vocab[EOS]
        self.pad_id = self.eos_id
        self._bytes = byte_to_unicode()
        self._cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def from_bpe_file(cls, path: str | Path | None = None) -> "CLIPTokenizer":
        """Build vocabulary and merges from CLIP's `bpe_simple_vocab_16e6.txt.gz` (default: shipped copy)."""
        path = Path(path) if path else BPE_FILE
        lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
        merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
        symbols = list(byte_to_unicode().values())
        symbols += [s + "</w>" for s in symbols]
        symbols += ["".join(pair) for pair in merges]
        symbols += [BOS, EOS]
        return cls({s: i for i, s in enumerate(symbols)}, merges)

    @classmethod
    def from_files(cls, vocab_json: str | Path, merges_txt: str | Path) -> "CLIPTokenizer":
        """Read back `vocab.json` + `merges.txt` (a bundle's copies, or a diffusers `tokenizer/` folder)."""
        vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
        lines = Path(merges_txt).read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        for token in (BOS, EOS):
            if token not in vocab:
                raise ValueError(f"{vocab_json}: expected special token {token!r} in the vocabulary, not found")
        return cls(vocab, merges)

    def bpe(self, word: str) -> list[str]:
        """Merge one pre-token (already byte-mapped) into vocabulary symbols, lowest rank first."""
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = {(a, b) for a, b in zip(parts, parts[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def tokenize(self, text: str) -> list[int]:
        """Ids of `text` without start/end tokens and without truncation."""
        if not isinstance(text, str):
            raise TypeError(f"expected a prompt of type str, got {type(text).__name__}")
        ids = []
        for piece in _SPLIT.findall(normalize(text)):
            if piece in (BOS, EOS):
                ids.append(self.vocab[piece])
                continue
            word = "".join(self._bytes[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[s] for s in self.bpe(word))
        return ids

    def encode(self, text: str, *, max_length: int = MAX_LENGTH, truncate: bool = True) -> np.ndarray:
        """`(max_length,)` int64: start, tokens, end, end-token padding."""
        ids = self.tokenize(text)
        room = max_length - 2
        if len(ids) > room:
            if not truncate:
                raise ValueError(
                    f"prompt is {len(ids)} tokens, the text encoder takes at most {room} "
                    f"({max_length} with start and end tokens)"
                )
            dropped = self.decode(ids[room:])
            logger.warning("prompt is %d tokens, truncated to %d; dropped: %r", len(ids), room, dropped)
            ids = ids[:room]
        out = np.full((max_length,), self.pad_id, dtype=np.int64)
        out[0] = self.bos_id
        out[1 : len(ids) + 1] = ids
        out[len(ids) + 1] = self.eos_id
        return out

    def encode_batch(self, texts: list[str], **kwargs) -> np.ndarray:
        """`(N, max_length)` int64."""
        return np.stack([self.encode(t, **kwargs) for t in texts])

    def decode(self, ids) -> str:
        """Text of `ids` (special tokens dropped), word ends as spaces."""
        inverse = {i: s for s, i in self.vocab.items()}
        to_byte = {c: b for b, c in self._bytes.items()}
        special = {self.bos_id, self.eos_id}
        symbols = "".join(inverse[int(i)] for i in ids if int(i) not in special)
        words = (bytes(to_byte[c] for c in word).decode("utf-8", errors="replace") for word in symbols.split("</w>"))
        return " ".join(w for w in words if w)

    def save_pretrained_files(self, directory: str | Path) -> list[Path]:
        """Write `vocab.json`, `merges.txt`, `special_tokens_map.json`, `tokenizer_config.json`.

        transformers' `CLIPTokenizer.from_pretrained(directory)` and `from_files` read them back.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
        files = {
            "vocab.json": json.dumps(self.vocab, ensure_ascii=False),
            "merges.txt": "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in self.merges) + "\n",
            "special_tokens_map.json": json.dumps(special, indent=2),
            "tokenizer_config.json": json.dumps(
                {**special, "model_max_length": MAX_LENGTH, "tokenizer_class": "CLIPTokenizer"}, indent=2
            ),
        }
        paths = []
        for name, text in files.items():
            path = directory / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        return paths
