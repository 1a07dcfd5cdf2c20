"""Leave-one-report-out cross-validation of the tagger against two baselines, on the same folds.

Units of one report share headings and phrasing, so the only honest test is a report the model
never saw. Each fold trains on the other reports and scores the held-out one; figures are
reported as mean ± std over folds and seeds, with every error written out with its context.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import leave_one_report_out
from .metrics import classification_figures
from .quantities import extract_quantities
from .textio import atomic_write

__all__ = [
    "BASELINES",
    "cross_validate",
    "rule_baseline",
    "tfidf_baseline",
    "write_report",
]

SUMMARY_KEYS = ("category_macro_f1", "category_accuracy", "metric_f1", "category_ece")


def _baseline_text(row: dict[str, Any]) -> str:
    return f"{row['text']} | {row['heading_path']}"


def tfidf_baseline(train, test, categories: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Character 1–3-gram TF-IDF + logistic regression, one model per answer; same input as
    the tagger (unit + heading path)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=1, sublinear_tf=True)
    x_train = vec.fit_transform([_baseline_text(r) for r in train])
    x_test = vec.transform([_baseline_text(r) for r in test])
    y_cat = np.asarray(train["category"])
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0, random_state=seed)
    clf.fit(x_train, y_cat)
    p_cat = np.zeros((len(test), len(categories)))
    p_cat[:, clf.classes_] = clf.predict_proba(x_test)
    y_metric = np.asarray(train["metric"])
    if len(set(y_metric.tolist())) < 2:
        p_metric = np.full(len(test), float(y_metric[0]))
    else:
        mclf = LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0, random_state=seed)
        mclf.fit(x_train, y_metric)
        p_metric = mclf.predict_proba(x_test)[:, 1]
    return p_cat, p_metric


def rule_baseline(train, test, categories: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The segmenter's section (from the top-level headings) as the category, `other` outside
    any section; metric = the unit contains a number with a unit."""
    index = {c: i for i, c in enumerate(categories)}
    p_cat = np.zeros((len(test), len(categories)))
    p_metric = np.zeros(len(test))
    for i, row in enumerate(test):
        section = row["section"] if row["section"] in index else "other"
        p_cat[i, index[section]] = 1.0
        p_metric[i] = 1.0 if extract_quantities(row["text"]) else 0.0
    return p_cat, p_metric


BASELINES: dict[str, Callable] = {
    "TF-IDF char n-gram + LR": tfidf_baseline,
    "section rule + number regex": rule_baseline,
}


def _model_system(cfg, progress: bool) -> Callable:
    from .training import encode_dataset, predict_dataset, train

    def run(train_ds, test_ds, categories, seed):
        fold_cfg = dataclasses.replace(cfg, seed=seed, dev_reports=[], resume=False)
        from datasets import DatasetDict

        result, trainer = train(
            fold_cfg, progress=progress, save=False, dataset=DatasetDict({"train": train_ds})
        )
        tokenizer = trainer.processing_class
        encoded = encode_dataset(test_ds, tokenizer, fold_cfg.context, fold_cfg.max_seq_length)
        p_cat, p_metric = predict_dataset(trainer, encoded)
        import shutil

        shutil.rmtree(Path(trainer.args.output_dir), ignore_errors=True)
        return p_cat, p_metric, result.train_seconds

    return run


def cross_validate(
    dataset,
    categories: list[str],
    *,
    cfg=None,
    seeds: tuple[int, ...] = (42,),
    baselines: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_fold: Callable[[list[dict[str, Any]]], None] | None = None,
    held_out: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every system on every leave-one-report-out fold (and seed). `cfg` (a TrainConfig)
    adds the fine-tuned model; without it only the baselines run. `held_out` (doc id
    prefixes) keeps only those folds, for quick ablations."""
    systems: dict[str, Callable] = {}
    if cfg is not None:
        systems["fine-tuned tagger"] = _model_system(cfg, progress)
    if baselines:
        systems.update(BASELINES)
    folds: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    pooled: dict[str, dict[str, list]] = {
        n: {"y": [], "p": [], "ym": [], "pm": []} for n in systems
    }
    train_seconds: list[float] = []
    splits = list(leave_one_report_out(dataset))
    if held_out:
        splits = [(d, sp) for d, sp in splits if any(d.startswith(h) for h in held_out)]
        if not splits:
            raise ValueError(f"no report matches held_out={list(held_out)}")
    # Seeds outermost: after the first seed there is a complete cross-validation to report.
    for seed in seeds:
        for held_out, split in splits:
            train_ds, test_ds = split["train"], split["dev"]
            y_cat = list(test_ds["category"])
            y_metric = list(test_ds["metric"])
            for name, system in systems.items():
                if seed != seeds[0] and name != "fine-tuned tagger":
                    continue  # the baselines are deterministic given the fold
                t0 = time.perf_counter()
                out = system(train_ds, test_ds, categories, seed)
                p_cat, p_metric = out[0], out[1]
                if len(out) > 2:
                    train_seconds.append(out[2])
                figs = classification_figures(categories, y_cat, p_cat, y_metric, p_metric)
                folds.append(
                    {
                        "system": name,
                        "held_out": held_out,
                        "seed": seed,
                        "seconds": round(time.perf_counter() - t0, 1),
                        **figs,
                    }
                )
                if log:
                    log(
                        f"{name:<30} held out {held_out}  seed {seed}: category macro-F1 "
                        f"{figs['category_macro_f1']:.3f}, metric F1 {figs['metric_f1']:.3f}"
                    )
                if on_fold:  # long runs: keep what is done so far
                    on_fold(folds)
                if seed == seeds[0]:
                    pooled[name]["y"].extend(y_cat)
                    pooled[name]["p"].extend(p_cat.tolist())
                    pooled[name]["ym"].extend(y_metric)
                    pooled[name]["pm"].extend(np.asarray(p_metric).tolist())
                    if name == "fine-tuned tagger" or (cfg is None and name == next(iter(systems))):
                        errors.extend(_errors(test_ds, categories, p_cat, p_metric, held_out))
    summary: dict[str, Any] = {}
    for name in systems:
        rows = [f for f in folds if f["system"] == name]
        summary[name] = {
            key: {
                "mean": float(np.mean([r[key] for r in rows])),
                "std": float(np.std([r[key] for r in rows])),
            }
            for key in SUMMARY_KEYS
        }
        pool = pooled[name]
        summary[name]["pooled"] = classification_figures(
            categories, pool["y"], np.asarray(pool["p"]), pool["ym"], np.asarray(pool["pm"])
        )
    return {
        "categories": categories,
        "seeds": list(seeds),
        "systems": summary,
        "folds": folds,
        "errors": errors,
        "train_seconds_mean": float(np.mean(train_seconds)) if train_seconds else None,
    }


def _errors(test_ds, categories, p_cat, p_metric, held_out) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(test_ds):
        pred = categories[int(np.argmax(p_cat[i]))]
        gold = categories[row["category"]]
        pred_m = int(p_metric[i] >= 0.5)
        if pred != gold or pred_m != row["metric"]:
            out.append(
                {
                    "held_out": held_out,
                    "unit_index": row["unit_index"],
                    "text": row["text"],
                    "heading_path": row["heading_path"],
                    "prev_text": row["prev_text"],
                    "next_text": row["next_text"],
                    "gold_category": gold,
                    "pred_category": pred,
                    "category_score": round(float(np.max(p_cat[i])), 3),
                    "gold_metric": row["metric"],
                    "pred_metric": pred_m,
                    "metric_score": round(float(p_metric[i]), 3),
                }
            )
    return out


def write_report(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """results.json, results.md (the table), confusion matrices (txt + png), errors.csv."""
    from .modelcard import results_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with atomic_write(out / "results.json") as fh:
        json.dump(results, fh, ensure_ascii=False, indent=1)
    written.append(out / "results.json")
    cats = results["categories"]
    lines = [results_table(results), ""]
    for name, s in results["systems"].items():
        cm = s["pooled"]["confusion_matrix"]
        lines.append(f"Confusion matrix, {name} (rows gold, columns predicted; all folds pooled)")
        lines.append("")
        lines.append("| gold \\ pred | " + " | ".join(cats) + " |")
        lines.append("|---|" + "---|" * len(cats))
        for c, row in zip(cats, cm, strict=True):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
        per = s["pooled"]["per_class"]
        lines.append("| class | precision | recall | F1 | support |")
        lines.append("|---|---|---|---|---|")
        for c in cats:
            p = per[c]
            lines.append(
                f"| {c} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} "
                f"| {p['support']} |"
            )
        lines.append("")
    with atomic_write(out / "results.md") as fh:
        fh.write("\n".join(lines) + "\n")
    written.append(out / "results.md")
    with atomic_write(out / "errors.csv", newline="") as fh:
        fields = [
            "held_out",
            "unit_index",
            "gold_category",
            "pred_category",
            "category_score",
            "gold_metric",
            "pred_metric",
            "metric_score",
            "text",
            "heading_path",
            "prev_text",
            "next_text",
        ]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(results["errors"])
    written.append(out / "errors.csv")
    written.extend(_confusion_png(results, out))
    return written


def _confusion_png(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = results["categories"]
    names = list(results["systems"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        cm = np.asarray(results["systems"][name]["pooled"]["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(cats)), cats, rotation=30)
        ax.set_yticks(range(len(cats)), cats)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(name, fontsize=9)
        for i in range(len(cats)):
            for j in range(len(cats)):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                    fontsize=8,
                )
    fig.tight_layout()
    path = out / "confusion_matrix.png"
    tmp = out / ".confusion_matrix.png.tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)
    return [path]
