"""A report is read in order: its parts are runs of units, not independent sentences.

The encoder tags each unit from its own words and its place (title, headings, position). Where
the place is missing (a report without headings) a measure stated without 了/已 ("推进……实现
互联互转") reads like a plan, although every unit around it is a result. A reader resolves it
from the run it sits in. `smooth` does the same with a linear-chain model: the encoder's
probabilities are the emissions, and how often one category follows another in the annotated
reports (`fit_transitions`, stored in the checkpoint) is the transition matrix; the forward-
backward posteriors replace the unit's probabilities. An uncertain unit follows its run; a
block of another part (problems inside a review) stays a block; a lone sentence of another part
keeps its label only when the encoder is nearly certain of it (odds of a few hundred to one
under the shipped transitions): the price of the order, measured in the README.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Transitions", "fit_transitions", "reading_order", "smooth", "smooth_groups"]


@dataclass(frozen=True)
class Transitions:
    """Start and transition probabilities of the categories along a report, and how strongly
    they count beside the encoder (`weight`, 0 = off)."""

    start: list[float]
    matrix: list[list[float]]
    weight: float = 1.0
    counts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "matrix": self.matrix, "weight": self.weight, **self.counts}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Transitions | None:
        if not data or "matrix" not in data:
            return None
        extra = {k: v for k, v in data.items() if k not in {"start", "matrix", "weight"}}
        return cls(
            start=list(data["start"]),
            matrix=[list(r) for r in data["matrix"]],
            weight=float(data.get("weight", 1.0)),
            counts=extra,
        )


def fit_transitions(
    documents: Iterable[Sequence[int]], n_categories: int, alpha: float = 1.0, weight: float = 1.0
) -> Transitions:
    """Estimate start and transition probabilities from documents given as category-index
    sequences in reading order (add-`alpha` smoothing, so no transition is impossible)."""
    start = np.full(n_categories, alpha, dtype=float)
    trans = np.full((n_categories, n_categories), alpha, dtype=float)
    n_docs = n_pairs = 0
    for seq in documents:
        seq = [int(c) for c in seq]
        if not seq:
            continue
        n_docs += 1
        start[seq[0]] += 1
        for a, b in itertools.pairwise(seq):
            trans[a, b] += 1
            n_pairs += 1
    start /= start.sum()
    trans /= trans.sum(axis=1, keepdims=True)
    return Transitions(
        start=[round(float(x), 6) for x in start],
        matrix=[[round(float(x), 6) for x in row] for row in trans],
        weight=weight,
        counts={"documents": n_docs, "pairs": n_pairs},
    )


def smooth(probs: np.ndarray, transitions: Transitions | None) -> np.ndarray:
    """Posterior category probabilities of one report's units, in reading order (n, k)."""
    probs = np.asarray(probs, dtype=np.float64)
    if transitions is None or transitions.weight <= 0 or len(probs) < 2:
        return probs.astype(np.float32)
    k = probs.shape[1]
    if len(transitions.start) != k or np.shape(transitions.matrix) != (k, k):
        raise ValueError(
            f"the checkpoint's transitions are for {len(transitions.start)} categories, the "
            f"model has {k}: retrain, or set tagger.transitions = None"
        )
    w = transitions.weight
    start = np.asarray(transitions.start, dtype=np.float64) ** w
    trans = np.asarray(transitions.matrix, dtype=np.float64) ** w
    emit = np.clip(probs, 1e-9, 1.0)
    n, k = emit.shape
    fwd = np.empty((n, k))
    fwd[0] = start * emit[0]
    fwd[0] /= fwd[0].sum()
    for t in range(1, n):
        fwd[t] = (fwd[t - 1] @ trans) * emit[t]
        fwd[t] /= fwd[t].sum()
    bwd = np.ones((n, k))
    for t in range(n - 2, -1, -1):
        bwd[t] = trans @ (emit[t + 1] * bwd[t + 1])
        bwd[t] /= bwd[t].sum()
    post = fwd * bwd
    post /= post.sum(axis=1, keepdims=True)
    return post.astype(np.float32)


def reading_order(doc_ids: Sequence[str], order: Sequence[int]) -> list[list[int]]:
    """The row indices of each document of a flat batch of units (any row order), in reading
    order: rows grouped by `doc_ids`, sorted by `order` (the unit index)."""
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(doc_ids):
        groups.setdefault(d, []).append(i)
    for rows in groups.values():
        rows.sort(key=lambda i: order[i])
    return list(groups.values())


def smooth_groups(
    probs: np.ndarray,
    doc_ids: Sequence[str],
    order: Sequence[int],
    transitions: Transitions | None,
) -> np.ndarray:
    """`smooth` applied to each document of a flat batch of units (`reading_order`)."""
    probs = np.asarray(probs, dtype=np.float32)
    if transitions is None or transitions.weight <= 0:
        return probs
    out = probs.copy()
    for rows in reading_order(doc_ids, order):
        out[rows] = smooth(probs[rows], transitions)
    return out
