"""Inference: apply a trained checkpoint to reports and return their units with tags and numbers.

Speed comes from doing the work once for everything: all units of all reports are tokenised in
one call, sorted by length so that batches carry little padding, and run under
`torch.inference_mode`. On CPUs, ONNX Runtime (`backend="onnx"`) and int8 dynamic
quantisation are faster; their agreement with the float model is measured in
scripts/bench_tagger.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import SectionClsError
from .inputs import InputSpec, unit_records
from .modeling import (
    CHECKPOINT_FILES,
    CHECKPOINT_FORMAT,
    SectionClsModel,
    tokenize_units,
    write_checkpoint_marker,
)
from .onnx_backend import OnnxRunner, export_onnx, onnx_path
from .quantities import Quantity, extract_quantities
from .runtime import AUTO, Int8Evidence, Runtime, choose_runtime
from .segment import Unit, segment, top_level
from .sequence import Transitions, smooth
from .textio import atomic_directory

__all__ = [
    "DEFAULT_MODEL_DIR",
    "CheckpointError",
    "ReportTagger",
    "TaggedReport",
    "TaggedUnit",
    "check_checkpoint",
    "load_checkpoint",
]

DEFAULT_MODEL_DIR = "checkpoints/sectioncls-default"
_MAKE_ONE = "train one with `make demo` or `sectioncls train --config configs/train-default.yaml`"


class CheckpointError(SectionClsError, FileNotFoundError):
    """A model directory that is missing or incomplete; the message says how to make one."""


def check_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Refuse a missing or half-written checkpoint before any weights are read."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no model here; {_MAKE_ONE}.")
    if not p.is_dir():
        raise CheckpointError(f"{p}: is a file, not a model directory; {_MAKE_ONE}.")
    missing = [f for f in CHECKPOINT_FILES if not (p / f).is_file()]
    if missing:
        raise CheckpointError(
            f"{p}: incomplete checkpoint (missing {', '.join(missing)}); it was not written by "
            f"a finished training run. Delete it and {_MAKE_ONE}."
        )
    try:
        marker = json.loads((p / "sectioncls.json").read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{p}/sectioncls.json is corrupt; {_MAKE_ONE}.") from None
    if marker.get("library") != "sectioncls":
        raise CheckpointError(f"{p}: not a sectioncls checkpoint; {_MAKE_ONE}.")
    fmt = marker.get("format")
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{p}: checkpoint format {fmt!r}, written by a newer sectioncls than this one "
            f"({__version__}, reads formats up to {CHECKPOINT_FORMAT}); upgrade sectioncls, "
            f"or {_MAKE_ONE}."
        )
    return p


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SectionClsModel, Any]:
    """The model and tokenizer of a checked checkpoint (for tagging, or to train on from it)."""
    from transformers import AutoTokenizer

    p = check_checkpoint(path)
    try:
        model = SectionClsModel.from_pretrained(p)
        # Hand over the encoder's config: AutoTokenizer must not guess from ours.
        tokenizer = AutoTokenizer.from_pretrained(p, config=model.config.encoder_config())
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: cannot be loaded ({exc}); {_MAKE_ONE}.") from exc
    return model, tokenizer


@dataclass(slots=True)
class TaggedUnit:
    """A unit of a report with its category, scores and metric."""

    index: int
    start: int
    end: int
    text: str
    kind: str
    level: int | None
    heading_path: tuple[str, ...]
    section: str | None
    category: str
    scores: dict[str, float]
    metric: bool
    metric_score: float
    metrics: list[Quantity] = field(default_factory=list)
    # The part of the report the unit belongs to, inferred: the predicted category of its
    # governing top-level heading (None before the first one). `section` is the segmenter's
    # keyword guess from the same heading.
    part: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        d["metrics"] = [q.to_dict() for q in self.metrics]
        return d


@dataclass(slots=True)
class TaggedReport:
    """A tagged report: its text and units, with the views analysts ask for."""

    doc_id: str
    text: str
    units: list[TaggedUnit]
    model: str = ""

    def by_category(self, category: str) -> list[TaggedUnit]:
        return [u for u in self.units if u.category == category]

    def metric_units(self) -> list[TaggedUnit]:
        return [u for u in self.units if u.metric]

    def summary(self) -> dict[str, dict[str, int]]:
        """Units per category within each part of the report (as the model read the top-level
        headings; 'opening' before the first one)."""
        out: dict[str, dict[str, int]] = {}
        for u in self.units:
            row = out.setdefault(u.part or "opening", {})
            row[u.category] = row.get(u.category, 0) + 1
            row["metric"] = row.get("metric", 0) + int(u.metric)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "model": self.model,
            "n_units": len(self.units),
            "units": [{"doc_id": self.doc_id, **u.to_dict()} for u in self.units],
        }

    def to_dataframe(self):
        """One row per unit (pandas), heading path joined, metrics as a list of dicts."""
        import pandas as pd

        rows = []
        for u in self.units:
            d = u.to_dict()
            d["heading_path"] = " › ".join(u.heading_path)
            scores = d.pop("scores")
            d.update({f"score_{k}": v for k, v in scores.items()})
            rows.append({"doc_id": self.doc_id, **d})
        return pd.DataFrame(rows)


class ReportTagger:
    """Segments reports and tags their units with a fine-tuned `SectionClsModel`."""

    def __init__(
        self,
        model: SectionClsModel,
        tokenizer,
        *,
        name: str = "",
        metric_threshold: float = 0.5,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.categories: list[str] = list(model.config.categories)
        # What the model reads about a unit, exactly as it was trained (`sectioncls.inputs`).
        self.inputs: InputSpec = InputSpec.of(model.config)
        self.metric_threshold = metric_threshold
        self.name = name
        self.quantized = False
        self.backend = "torch"
        self.dtype = "float32"
        self._runner: OnnxRunner | None = None
        self.runtime = Runtime("torch", "float32", False, "cpu", "constructed directly")
        # Reports are read in order (`sectioncls.sequence`); None reads every unit alone.
        self.transitions: Transitions | None = Transitions.from_dict(
            getattr(model.config, "transitions", None)
        )

    @property
    def category_labels(self) -> dict[str, str]:
        """Category value -> the name annotators see (the schema's name_zh), from the
        checkpoint's schema; the value itself where the checkpoint has none."""
        schema = getattr(self.model.config, "schema", None) or {}
        names = {c.get("value"): c.get("name_zh") for c in schema.get("categories", [])}
        return {c: names.get(c) or c for c in self.categories}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.name!r}, categories={self.categories}, "
            f"runtime={self.runtime.describe()!r})"
        )

    # ---------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] = DEFAULT_MODEL_DIR,
        *,
        device: str | None = None,
        quantize: bool = False,
        num_threads: int | None = None,
        backend: str = AUTO,
        dtype: str = AUTO,
    ) -> ReportTagger:
        """Load a checkpoint written by training (or by `save_pretrained`).

        By default the tagger runs on the GPU when torch sees one (`device=None`, as in
        SetFit), else on the CPU. With `backend="auto"`, `dtype="auto"` the fastest path that
        gives the float model's labels on this machine is taken (`sectioncls.runtime`):
        bfloat16 where the CPU has native bf16, else ONNX Runtime float32 when it is
        installed, else torch float32 (float32 on GPUs too, measured faster there for this
        small encoder); `tagger.runtime.reason` says which and why.
        `backend="onnx"` exports the graph into `<path>/onnx/` when it is missing; `quantize`
        picks int8. On a CPU without native bf16, `auto` takes an int8 (ONNX Runtime's, else
        torch's) only when the checkpoint's own cross-validation scored that int8 within 0.005
        of float32 (`sectioncls.runtime`).
        """
        auto_backend = backend == AUTO
        weigh = dtype == AUTO
        evidence = {
            "int8": int8_evidence(path) if weigh else None,
            "onnx_int8": int8_evidence(path, "onnx") if weigh else None,
        }
        choice = choose_runtime(backend, dtype, quantize=quantize, device=device, **evidence)
        if num_threads:
            torch.set_num_threads(num_threads)
        model, tokenizer = load_checkpoint(path)
        p = Path(path)
        if choice.device != "cpu":
            model.to(choice.device)
        tagger = cls(model, tokenizer, name=str(p))
        if choice.dtype != "float32":
            # The precisions are `sectioncls.runtime.DTYPES`, named as torch names them.
            tagger.model.to(getattr(torch, choice.dtype))
            tagger.dtype = choice.dtype
        if choice.backend == "onnx":
            try:
                tagger.use_onnx(p, quantize=choice.quantize, num_threads=num_threads)
            except CheckpointError:
                if not auto_backend:
                    raise
                # Chosen, not asked for: a read-only checkpoint without a graph runs on torch,
                # as chosen where ONNX Runtime is missing (torch int8 only on its own evidence).
                fallback = choose_runtime(
                    AUTO, dtype, quantize=quantize, device=device, onnx_available=False, **evidence
                )
                choice = replace(
                    fallback,
                    reason=fallback.reason + "; no ONNX graph and the checkpoint is read-only",
                )
        if choice.backend == "torch" and choice.quantize:
            tagger.quantize()
        tagger.runtime = choice
        return tagger

    def use_onnx(
        self,
        checkpoint: str | os.PathLike[str],
        *,
        quantize: bool = False,
        num_threads: int | None = None,
    ) -> ReportTagger:
        """Switch to ONNX Runtime, exporting `<checkpoint>/onnx/` first if it is missing."""
        path = onnx_path(checkpoint, quantize)
        if not path.is_file():
            if self.quantized:
                raise ValueError("export the float model: load it without quantize first")
            try:
                export_onnx(self.model, checkpoint, quantize=quantize)
            except PermissionError as exc:
                raise CheckpointError(
                    f"{checkpoint}: cannot write the ONNX graph ({exc}); export it where you "
                    "can write: `sectioncls export-onnx --model DIR` on a copy of the checkpoint."
                ) from exc
        self._runner = OnnxRunner(path, num_threads=num_threads)
        self.backend = "onnx"
        self.quantized = quantize
        return self

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write this tagger as a checkpoint directory (atomically), loadable by from_pretrained."""
        import shutil

        if (self.quantized and self.backend == "torch") or self.dtype != "float32":
            raise ValueError(
                "a quantised or bfloat16 tagger cannot be saved; save the float32 model instead"
            )
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            src = Path(self.name) if self.name else None
            for extra in ("README.md", "model_card.json", "metrics.json", "training_config.yaml"):
                if src and (src / extra).is_file():
                    shutil.copy2(src / extra, tmp / extra)
            write_checkpoint_marker(tmp, self.categories)
        return Path(path)

    def quantize(self) -> ReportTagger:
        """int8 dynamic quantisation of the Linear layers: faster on CPU, slightly different.

        Weights get one scale per output channel, not one per matrix: at the same speed it
        moved the probabilities a third as far from float32 (largest change 0.06, not 0.20, on
        the example reports)."""
        import warnings

        # torch.ao's eager quantisation warns that it moves to torchao; it is still the int8
        # that the cross-validation scores, and `auto` may take it, so users see no noise.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")
            warnings.filterwarnings("ignore", message="torch.quantize_per_tensor")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            self.model = quantize_dynamic(
                self.model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
        self.quantized = True
        return self

    # ---------------------------------------------------------------- inference
    def predict_units(
        self,
        units: Sequence[dict[str, Any]],
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Category probabilities (n, k) and metric probabilities (n,) for unit dicts that carry
        `text` and the context fields (heading_path, prev_text, next_text, section)."""
        n = len(units)
        if n == 0:
            return np.zeros((0, len(self.categories)), np.float32), np.zeros(0, np.float32)
        enc = tokenize_units(self.tokenizer, units, self.inputs)
        ids = enc["input_ids"]
        types = enc.get("token_type_ids")
        order = np.argsort([len(x) for x in ids], kind="stable")[::-1]
        pad_id = self.tokenizer.pad_token_id or 0
        p_cat = np.zeros((n, len(self.categories)), np.float32)
        p_metric = np.zeros(n, np.float32)
        run = self._runner or self._run_torch
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            width = len(ids[idx[0]])
            input_ids = np.full((len(idx), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            token_types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                seq = ids[i]
                input_ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
                if types is not None:
                    token_types[row, : len(seq)] = types[i]
            p_cat[idx], p_metric[idx] = run(input_ids, mask, token_types)
            if progress:
                progress(len(idx))
        return p_cat, p_metric

    def describe_order(self) -> str:
        """How reports are read, for `tag -v`: in order (and from how many reports the order
        was learnt), or unit by unit."""
        t = self.transitions
        if t is None or t.weight <= 0:
            return "each unit alone (the checkpoint has no category transitions)"
        docs = t.counts.get("documents")
        learnt = f" learnt from {docs} reports" if docs else ""
        return f"in order (category transitions{learnt}, weight {t.weight:g})"

    def in_order(self, p_cat: np.ndarray) -> np.ndarray:
        """One report's category probabilities (units in reading order) after reading the
        report in order: an uncertain unit follows its neighbours, a confident one stays."""
        return smooth(p_cat, self.transitions)

    def _run_torch(
        self, input_ids: np.ndarray, mask: np.ndarray, token_types: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            probs, metric = self.model.probabilities(
                torch.from_numpy(input_ids).to(device),
                torch.from_numpy(mask).to(device),
                torch.from_numpy(token_types).to(device),
            )
            return probs.cpu().numpy(), metric.cpu().numpy().reshape(-1)

    def tag(self, text: str, doc_id: str = "report", batch_size: int = 16) -> TaggedReport:
        return self.tag_many([text], doc_ids=[doc_id], batch_size=batch_size)[0]

    def tag_many(
        self,
        texts: Iterable[str],
        *,
        doc_ids: Sequence[str] | None = None,
        batch_size: int = 16,
        progress: Callable[[int], None] | None = None,
    ) -> list[TaggedReport]:
        """Tag many reports at once: units of all reports share batches."""
        texts = list(texts)
        ids = list(doc_ids) if doc_ids is not None else [f"report{i}" for i in range(len(texts))]
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} doc_ids")
        segmented = [segment(t) for t in texts]
        flat: list[dict[str, Any]] = []
        for units in segmented:
            flat.extend(unit_inputs(units))
        p_cat, p_metric = self.predict_units(flat, batch_size=batch_size, progress=progress)
        reports, k = [], 0
        for doc_id, text, units in zip(ids, texts, segmented, strict=True):
            probs = self.in_order(p_cat[k : k + len(units)])
            tagged = [
                self._tagged_unit(u, probs[i], float(p_metric[k + i])) for i, u in enumerate(units)
            ]
            k += len(units)
            _infer_parts(tagged)
            reports.append(TaggedReport(doc_id=doc_id, text=text, units=tagged, model=self.name))
        return reports

    def _tagged_unit(self, u: Unit, probs: np.ndarray, metric_score: float) -> TaggedUnit:
        metric = metric_score >= self.metric_threshold
        return TaggedUnit(
            **{f.name: getattr(u, f.name) for f in fields(Unit)},
            category=self.categories[int(probs.argmax())],
            scores={c: round(float(p), 4) for c, p in zip(self.categories, probs, strict=True)},
            metric=metric,
            metric_score=round(metric_score, 4),
            metrics=extract_quantities(u.text, offset=u.start) if metric else [],
        )


def checkpoint_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's `metrics.json` (training reports, cross-validation), {} when unreadable:
    what it holds is evidence for choices, never required to load the model."""
    try:
        metrics = json.loads((Path(path) / "metrics.json").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def int8_evidence(path: str | os.PathLike[str], backend: str = "torch") -> Int8Evidence | None:
    """The checkpoint's cross-validated float32 and int8 figures for `backend`'s int8 (torch or
    onnx; `metrics.json`, written when it was trained with `--cv-results` from `sectioncls
    evaluate --int8`), or None. ONNX Runtime's figures count only when they were scored on the
    int8 recipe this version writes: another recipe is another graph, with other labels."""
    from .evaluation import INT8, INT8_ORT, MODEL
    from .onnx_backend import INT8_RECIPE

    cv = checkpoint_metrics(path).get("cv")
    if backend == "onnx":
        kernels = cv.get("int8_kernels") if isinstance(cv, dict) else None
        if not isinstance(kernels, dict) or kernels.get("onnx_int8") != INT8_RECIPE:
            return None
    return Int8Evidence.from_cv(cv, MODEL, MODEL + (INT8_ORT if backend == "onnx" else INT8))


def _infer_parts(units: Sequence[TaggedUnit]) -> None:
    """Give every unit the predicted category of its governing top-level heading."""
    top = top_level(units)
    part: str | None = None
    for u in units:
        if u.kind == "heading" and u.level == top:
            part = u.category
        u.part = None if u.kind == "meta" else part


def unit_inputs(units: Sequence[Unit]) -> list[dict[str, Any]]:
    """Unit dicts with the context fields the model reads (as Label Studio tasks carry them)."""
    return unit_records(units)
