"""The project's metrics as a local `evaluate` module: loaded by path with no hub, the same
figures as `classification_figures`."""

from __future__ import annotations

import numpy as np
import pytest

from sectioncls.metrics import METRICS_MODULE, classification_figures, load_metrics

pytest.importorskip("evaluate")
CATS = ["achievement", "problem", "plan", "other"]


def test_module_loads_offline_and_agrees_with_the_project_figures(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    module = load_metrics()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    gold = rng.integers(0, 4, 200)
    m_gold = rng.integers(0, 2, 200)
    m_pred = np.where(rng.random(200) < 0.8, m_gold, 1 - m_gold)
    got = module.compute(
        predictions=probs.argmax(1).tolist(),
        references=gold.tolist(),
        metric_predictions=m_pred.tolist(),
        metric_references=m_gold.tolist(),
        probabilities=probs.tolist(),
        categories=CATS,
    )
    want = classification_figures(CATS, gold, probs, m_gold, m_pred)
    for key in ("category_macro_f1", "category_accuracy", "metric_f1", "category_ece"):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    for c in CATS:
        assert got[f"f1_{c}"] == pytest.approx(want["per_class"][c]["f1"])


def test_module_works_with_categories_only_as_a_user_would_call_it():
    import evaluate

    module = evaluate.load(METRICS_MODULE)
    out = module.compute(predictions=[0, 0, 2], references=[0, 1, 2])
    assert out["category_accuracy"] == pytest.approx(2 / 3)
    assert "metric_f1" not in out and "category_ece" not in out
