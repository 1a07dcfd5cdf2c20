"""The model card written into every checkpoint: what it is, what it was trained on, how well
it does on reports it never saw, and how to use it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import __version__

__all__ = ["render_model_card", "results_table"]


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


def render_model_card(cfg, schema, metrics: dict[str, Any], dataset=None) -> str:
    cats = list(schema.categories)
    counts = ""
    if dataset is not None:
        rows = []
        for split, ds in dataset.items():
            c = Counter(ds["category"])
            m = sum(ds["metric"])
            rows.append(
                f"| {split} | {len(set(ds['doc_id']))} | {len(ds)} | "
                + " | ".join(str(c.get(i, 0)) for i in range(len(cats)))
                + f" | {m} |"
            )
        counts = (
            "| split | reports | units | " + " | ".join(cats) + " | metric=yes |\n"
            "|---|---|---|" + "---|" * len(cats) + "---|\n" + "\n".join(rows)
        )
    eval_part = "No held-out evaluation was run with this training run."
    if "cv" in metrics:
        eval_part = (
            "Leave-one-real-report-out cross-validation (mean ± std over folds and seeds; each "
            "fold trains on the other real reports and the written ones, and is scored on the "
            "held-out real report):\n\n" + results_table(metrics["cv"])
        )
        for name, systems in (metrics["cv"].get("tests") or {}).items():
            if name != "as written":
                eval_part += f"\n\nThe held-out reports, {name}:\n\n"
                eval_part += results_table({"systems": systems})
    elif "dev" in metrics:
        d = metrics["dev"]
        eval_part = (
            f"Held-out dev reports {metrics.get('dev_reports')}: category macro-F1 "
            f"{d['category_macro_f1']:.3f}, accuracy {d['category_accuracy']:.3f}, metric F1 "
            f"{d['metric_f1']:.3f}, ECE {d['category_ece']:.3f} (n = {d['n']})."
        )
    return f"""---
library_name: sectioncls
base_model: {cfg.base_model}
language: zh
tags: [text-classification, chinese, government-reports]
---

# sectioncls tagger

Tags every unit of a Chinese annual work report (heading, sentence or enumerated item) as one of
{", ".join(f"`{c}`" for c in cats)} and says whether it carries a **metric** (a quantified fact or
target). Built with sectioncls {__version__} on the base encoder `{cfg.base_model}`
(context: {", ".join(cfg.context) or "none"}; max {cfg.max_seq_length} tokens; metric head:
{cfg.metric_pooling}-pooled tokens).

## Use

```python
from sectioncls import ReportTagger

tagger = ReportTagger.from_pretrained("path/to/this/directory")
report = tagger.tag(open("report.txt", encoding="utf-8").read())
report.by_category("problem")
```

or `sectioncls tag reports/ --model path/to/this/directory --format html -o out/`.

## Evaluation

{eval_part}

## Training data

Label Studio exports: {", ".join(f"`{a}`" for a in cfg.annotations)}.

{counts}

## Training

{cfg.epochs:g} epochs, learning rate {cfg.learning_rate:g}, batch size {cfg.batch_size}, seed
{cfg.seed}, class weighting `{cfg.class_weighting}`, context dropout {cfg.context_dropout:g};
took {metrics.get("train_seconds", "?")} s.
The full run config is in `training_config.yaml`.

## Limitations

The real annotated reports are four, all by justice bureaus; most training units come from
reports written for the project (`source: synthetic`), in the register of official reports
but not real. Figures on written text say how consistently the model learned them, not how it
does on real reports: only the leave-one-real-report-out figures above are real. Issuers and
document kinds unlike both sets will phrase things differently; check the per-class figures
before relying on a class.
"""
