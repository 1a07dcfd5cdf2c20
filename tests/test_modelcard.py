"""The model card as a whole: rendered from its data object, the same text every time.

The golden file is the contract: a change to the card's wording shows up as a diff to review
(regenerate with SECTIONCLS_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sectioncls.metrics import load_metrics
from sectioncls.modelcard import (
    ModelCardData,
    library_versions,
    pooled_table,
    render_model_card,
)

GOLDEN = Path(__file__).resolve().parent / "golden" / "model_card.md"
FIG = {"mean": 0.9, "std": 0.05}


def _card() -> ModelCardData:
    cv = {
        "seeds": [42, 7],
        "systems": {
            "fine-tuned tagger": {
                "category_macro_f1": FIG,
                "category_accuracy": {"mean": 0.98, "std": 0.01},
                "metric_f1": {"mean": 0.96, "std": 0.02},
                "category_ece": {"mean": 0.02, "std": 0.01},
            }
        },
        "tests": {
            "headings removed": {
                "fine-tuned tagger": {
                    "category_macro_f1": {"mean": 0.78, "std": 0.1},
                    "category_accuracy": {"mean": 0.84, "std": 0.02},
                    "metric_f1": {"mean": 0.96, "std": 0.02},
                }
            }
        },
    }
    return ModelCardData(
        base_model="me5-small-zh",
        categories=["achievement", "problem", "plan", "other"],
        context=["kind", "title", "headings"],
        max_seq_length=128,
        metric_pooling="max",
        annotations=["annotations/reports.json", "annotations/synthetic.json"],
        splits={
            "train": {
                "reports": 68,
                "units": 4303,
                "achievement": 2408,
                "problem": 458,
                "plan": 977,
                "other": 478,
                "metric": 1844,
            }
        },
        hyperparameters={
            "epochs": 3,
            "learning_rate": 5e-5,
            "batch_size": 16,
            "seed": 42,
            "class_weighting": "sqrt",
            "context_dropout": 0.25,
            "sequence_weight": 1.0,
        },
        train_seconds=640.5,
        cv=cv,
        versions={"python": "3.11.7", "sectioncls": "0.1.0", "torch": "2.13.0"},
        hardware="cpu: AMD EPYC; AVX2, AVX-512 (2 threads)",
        trained_on="2026-11-25",
    )


def test_card_renders_as_the_golden_file():
    text = render_model_card(_card())
    if os.environ.get("SECTIONCLS_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, "utf-8")
    assert text == GOLDEN.read_text("utf-8")


def test_card_data_round_trips_through_json():
    card = _card()
    again = ModelCardData.from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card and render_model_card(again) == render_model_card(card)


def test_versions_name_the_libraries_that_shape_a_checkpoint():
    v = library_versions()
    assert {"python", "sectioncls", "torch", "transformers"} <= set(v)


def test_pooled_table_has_no_f1_for_a_class_neither_labelled_nor_predicted():
    """A plan-only set has no achievement: its F1 is "–", not a 0 that reads as a failure;
    a class predicted but never labelled keeps its 0."""
    cats = ["achievement", "problem", "plan", "other"]
    figs = load_metrics().compute(
        predictions=[2, 2, 3, 1],
        references=[2, 2, 3, 3],
        metric_predictions=[1, 0, 0, 0],
        metric_references=[1, 0, 0, 0],
        categories=cats,
        details=True,
    )
    table = pooled_table({"categories": cats, "systems": {"m": {"pooled": figs}}})
    assert table.splitlines()[2] == "| m | 0.556 | 0.750 | – | 0.000 | 1.000 | 0.667 | 1.000 | 4 |"
    assert pooled_table({"systems": {}}) == ""
