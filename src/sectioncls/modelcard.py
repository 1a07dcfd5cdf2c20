"""The model card written into every checkpoint: what it is, what it was trained on, how well
it does on reports it never saw, how to use it, and what it was built with.

As in SetFit and SpanMarker, the card is rendered from one data object (`ModelCardData`) that
training fills as it goes (`ModelCardData.from_training`) and that is saved beside the card
(`model_card.json`), so a card can be rebuilt, compared or tested without re-training.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from . import __version__

__all__ = ["ModelCardData", "library_versions", "render_model_card", "results_table"]

# The libraries whose versions decide what a checkpoint computes and can be loaded with.
_LIBRARIES = ("sectioncls", "torch", "transformers", "tokenizers", "datasets", "accelerate")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shaped a training run (absent ones skipped)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = __version__ if name == "sectioncls" else metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    from .runtime import cpu_info

    return f"{cpu_info().describe()} ({torch.get_num_threads()} threads)"


def _fmt(mean: float, std: float | None = None) -> str:
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def results_table(cv: dict[str, Any]) -> str:
    """Markdown table of cross-validated figures, one row per system (model and baselines)."""
    lines = [
        "| system | category macro-F1 | category accuracy | metric F1 | ECE |",
        "|---|---|---|---|---|",
    ]
    for name, s in cv.get("systems", {}).items():
        lines.append(
            f"| {name} | {_fmt(s['category_macro_f1']['mean'], s['category_macro_f1']['std'])} "
            f"| {_fmt(s['category_accuracy']['mean'], s['category_accuracy']['std'])} "
            f"| {_fmt(s['metric_f1']['mean'], s['metric_f1']['std'])} "
            f"| {_fmt(s['category_ece']['mean']) if 'category_ece' in s else '–'} |"
        )
    return "\n".join(lines)


def pooled_table(results: dict[str, Any]) -> str:
    """Markdown table of the figures over all units pooled, one row per system, with each
    category's F1: a class that is rare per report (problem, plan) shows here, not in a mean."""
    systems = {n: s["pooled"] for n, s in results.get("systems", {}).items() if "pooled" in s}
    if not systems:
        return ""
    cats = list(results.get("categories") or next(iter(systems.values()))["per_class"])
    lines = [
        "| system | macro-F1 | accuracy | "
        + " | ".join(f"{c} F1" for c in cats)
        + " | metric F1 | units |",
        "|---|---|---|" + "---|" * len(cats) + "---|---|",
    ]
    for name, p in systems.items():
        per = p.get("per_class", {})
        units = sum(per[c]["support"] for c in cats if c in per)
        cm = p.get("confusion_matrix") or []
        predicted = [sum(col) for col in zip(*cm, strict=True)] if cm else [1] * len(cats)
        # A class neither in the labels nor predicted has no F1 (not 0): "–".
        f1 = [
            f"{per[c]['f1']:.3f}" if c in per and (per[c]["support"] or predicted[i]) else "–"
            for i, c in enumerate(cats)
        ]
        lines.append(
            f"| {name} | {p['category_macro_f1']:.3f} | {p['category_accuracy']:.3f} | "
            + " | ".join(f1)
            + f" | {p['metric_f1']:.3f} | {units} |"
        )
    return "\n".join(lines)


@dataclass
class ModelCardData:
    """Everything the card says, as data: filled during training, saved with the checkpoint."""

    base_model: str
    categories: list[str]
    context: list[str]
    max_seq_length: int
    metric_pooling: str
    annotations: list[str]
    # split -> {"reports", "units", "<category>"…, "metric"}
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    train_seconds: float | None = None
    cv: dict[str, Any] | None = None  # `sectioncls evaluate`'s results (systems, tests)
    dev: dict[str, Any] | None = None  # figures on held-out dev reports of this run
    dev_reports: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=library_versions)
    hardware: str = ""
    trained_on: str = field(default_factory=lambda: _dt.date.today().isoformat())

    @classmethod
    def from_training(
        cls, cfg, schema, metrics: dict[str, Any], dataset=None, *, hardware: str | None = None
    ) -> ModelCardData:
        cats = list(schema.categories)
        splits: dict[str, dict[str, int]] = {}
        for split, ds in (dataset or {}).items():
            c = Counter(ds["category"])
            splits[split] = {
                "reports": len(set(ds["doc_id"])),
                "units": len(ds),
                **{name: c.get(i, 0) for i, name in enumerate(cats)},
                "metric": int(sum(ds["metric"])),
            }
        hyper = {
            k: getattr(cfg, k)
            for k in (
                "epochs",
                "learning_rate",
                "head_learning_rate",
                "batch_size",
                "seed",
                "class_weighting",
                "context_dropout",
                "real_oversampling",
                "sequence_weight",
                "encoder_layers",
            )
            if hasattr(cfg, k)
        }
        return cls(
            base_model=cfg.base_model,
            categories=cats,
            context=list(cfg.context),
            max_seq_length=cfg.max_seq_length,
            metric_pooling=cfg.metric_pooling,
            annotations=list(cfg.annotations),
            splits=splits,
            hyperparameters=hyper,
            train_seconds=metrics.get("train_seconds"),
            cv=metrics.get("cv"),
            dev=metrics.get("dev"),
            dev_reports=list(metrics.get("dev_reports") or []),
            hardware=_hardware() if hardware is None else hardware,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCardData:
        return cls(**data)


def _evaluation(card: ModelCardData) -> str:
    if card.cv:
        seeds = ", ".join(str(s) for s in card.cv.get("seeds") or [])
        over = f"folds and seeds ({seeds})" if seeds else "folds and seeds"
        text = (
            f"Leave-one-real-report-out cross-validation (mean ± std over {over}; each "
            "fold trains on the other real reports and the written ones, and is scored on the "
            "held-out real report):\n\n" + results_table(card.cv)
        )
        data = card.cv.get("data")
        if data:
            text += (
                f"\n\nMeasured on the annotations this model trained on ({data['units']} "
                f"labelled units, fingerprint `{data['fingerprint']}`)."
            )
        for name, systems in (card.cv.get("tests") or {}).items():
            if name != "as written":
                text += f"\n\nThe held-out reports, {name}:\n\n"
                text += results_table({"systems": systems})
        return text
    if card.dev:
        d = card.dev
        return (
            f"Held-out dev reports {card.dev_reports}: category macro-F1 "
            f"{d['category_macro_f1']:.3f}, accuracy {d['category_accuracy']:.3f}, metric F1 "
            f"{d['metric_f1']:.3f}, ECE {d['category_ece']:.3f} (n = {d['n']})."
        )
    return "No held-out evaluation was run with this training run."


def _splits_table(card: ModelCardData) -> str:
    if not card.splits:
        return ""
    cats = card.categories
    head = "| split | reports | units | " + " | ".join(cats) + " | metric=yes |\n"
    rule = "|---|---|---|" + "---|" * len(cats) + "---|\n"
    rows = [
        f"| {split} | {s['reports']} | {s['units']} | "
        + " | ".join(str(s.get(c, 0)) for c in cats)
        + f" | {s['metric']} |"
        for split, s in card.splits.items()
    ]
    return head + rule + "\n".join(rows)


def render_model_card(card: ModelCardData) -> str:
    """The README.md of a checkpoint (Hugging Face model-card layout with YAML front matter)."""
    h = card.hyperparameters
    versions = "\n".join(f"- {name}: {v}" for name, v in card.versions.items())
    seconds = "?" if card.train_seconds is None else f"{card.train_seconds:g}"
    training = (
        f"{h.get('epochs', '?'):g} epochs, learning rate {h.get('learning_rate', '?'):g}, batch "
        f"size {h.get('batch_size', '?')}, seed {h.get('seed', '?')}, class weighting "
        f"`{h.get('class_weighting', '?')}`, context dropout {h.get('context_dropout', 0):g}, "
        f"report order weight {h.get('sequence_weight', 0):g} (0: every unit read alone); "
        f"took {seconds} s on {card.hardware or 'unrecorded hardware'} ({card.trained_on})."
    )
    return f"""---
library_name: sectioncls
base_model: {card.base_model}
language: zh
tags: [text-classification, chinese, government-reports]
---

# sectioncls tagger

Tags every unit of a Chinese annual work report (heading, sentence or enumerated item) as one of
{", ".join(f"`{c}`" for c in card.categories)} and says whether it carries a **metric** (a
quantified fact or target). Built with sectioncls {card.versions.get("sectioncls", "?")} on the
base encoder `{card.base_model}` (context: {", ".join(card.context) or "none"}; max
{card.max_seq_length} tokens; metric head: {card.metric_pooling}-pooled tokens).

## Use

```python
from sectioncls import ReportTagger

tagger = ReportTagger.from_pretrained("path/to/this/directory")
report = tagger.tag(open("report.txt", encoding="utf-8").read())
report.by_category("problem")
```

or `sectioncls tag reports/ --model path/to/this/directory --format html -o out/`.

## Evaluation

{_evaluation(card)}

## Training data

Label Studio exports: {", ".join(f"`{a}`" for a in card.annotations)}.

{_splits_table(card)}

## Training

{training}
The full run config is in `training_config.yaml`; this card's data is in `model_card.json`.

## Framework versions

{versions}

## Limitations

The real annotated reports are four, all by justice bureaus; most training units come from
reports written for the project (`source: synthetic`), in the register of official reports
but not real. Figures on written text say how consistently the model learned them, not how it
does on real reports: only the leave-one-real-report-out figures above are real. Issuers and
document kinds unlike both sets will phrase things differently; check the per-class figures
before relying on a class.
"""
