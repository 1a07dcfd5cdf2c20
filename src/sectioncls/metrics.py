"""Evaluation figures shared by training, cross-validation and the model card.

Plain scikit-learn and numpy: nothing is fetched from a hub (`evaluate.load("f1")` would be).
The same figures are packaged as a local `evaluate` module (`METRICS_MODULE`, loaded by path
with `load_metrics()`), which training's `compute_metrics` uses and users can load for their
own predictions.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

__all__ = [
    "METRICS_MODULE",
    "classification_figures",
    "expected_calibration_error",
    "load_metrics",
    "sigmoid",
    "softmax",
]

# The local `evaluate` module (a directory whose script has its name), loaded by path only.
METRICS_MODULE = str(Path(__file__).parent / "resources" / "metrics" / "sectioncls_metrics")


def load_metrics():
    """The project's metrics as an `evaluate` module, from the package: no hub is asked."""
    import evaluate

    return evaluate.load(METRICS_MODULE)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE of the top-class probability: how far confidence is from accuracy, bin-weighted."""
    if len(labels) == 0:
        return float("nan")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def classification_figures(
    categories: Sequence[str],
    y_cat: Sequence[int],
    p_cat: np.ndarray,
    y_metric: Sequence[int],
    p_metric: np.ndarray,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """All figures for one evaluation: category accuracy / macro-F1 / per-class P-R-F1 with
    support / confusion matrix / ECE, and metric F1 (positive class) / precision / recall.

    `p_cat` is an (n, k) probability matrix (or one-hot for rule baselines), `p_metric` the
    probability (or 0/1) of metric = yes.
    """
    y_cat = np.asarray(y_cat, dtype=int)
    y_metric = np.asarray(y_metric, dtype=int)
    p_cat = np.asarray(p_cat, dtype=float)
    pred_cat = p_cat.argmax(axis=1)
    pred_metric = (np.asarray(p_metric, dtype=float) >= threshold).astype(int)
    labels = list(range(len(categories)))
    prec, rec, f1, support = precision_recall_fscore_support(
        y_cat, pred_cat, labels=labels, zero_division=0
    )
    # Macro-F1 over the classes present in gold or predictions: a class absent from a held-out
    # report and never predicted there says nothing about the model.
    present = sorted(set(y_cat.tolist()) | set(pred_cat.tolist()))
    m_prec, m_rec, m_f1, _ = precision_recall_fscore_support(
        y_metric, pred_metric, labels=[1], zero_division=0
    )
    return {
        "n": len(y_cat),
        "category_accuracy": float(accuracy_score(y_cat, pred_cat)) if len(y_cat) else 0.0,
        "category_macro_f1": float(
            f1_score(y_cat, pred_cat, labels=present, average="macro", zero_division=0)
        ),
        "category_ece": expected_calibration_error(p_cat, y_cat),
        "per_class": {
            c: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(categories)
        },
        "confusion_matrix": confusion_matrix(y_cat, pred_cat, labels=labels).tolist(),
        "metric_f1": float(m_f1[0]),
        "metric_precision": float(m_prec[0]),
        "metric_recall": float(m_rec[0]),
        "metric_accuracy": float(accuracy_score(y_metric, pred_metric)) if len(y_metric) else 0.0,
    }
