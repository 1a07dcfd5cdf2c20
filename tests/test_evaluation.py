"""Cross-validation, baselines and figures (fast: baselines and a tiny model)."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sectioncls.data import load_dataset
from sectioncls.evaluation import cross_validate, merge_results, write_report
from sectioncls.metrics import classification_figures, expected_calibration_error
from sectioncls.runtime import onnx_installed
from sectioncls.training import TrainConfig
from test_training import _UNITS, ls_task

CATS = ["achievement", "problem", "plan", "other"]


@pytest.fixture
def dataset(tmp_path):
    tasks = []
    for d in range(3):
        for i, (text, cat, metric, path) in enumerate(_UNITS):
            t = ls_task(len(tasks) + 1, f"doc{d}", i, text, path, cat, metric)
            t["data"]["section"] = {"一": "achievement", "二": "problem", "三": "plan"}.get(
                (path or text)[:1]
            )
            tasks.append(t)
    p = tmp_path / "export.json"
    p.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    ds, _ = load_dataset(p)
    return ds["train"]


def test_figures_perfect_and_ece():
    y = [0, 1, 2, 3]
    p = np.eye(4)
    figs = classification_figures(CATS, y, p, [1, 0, 1, 0], np.array([0.9, 0.1, 0.8, 0.2]))
    assert figs["category_macro_f1"] == 1.0 and figs["metric_f1"] == 1.0
    assert figs["confusion_matrix"] == np.eye(4, dtype=int).tolist()
    assert expected_calibration_error(p, np.array(y)) == pytest.approx(0.0)
    assert expected_calibration_error(np.full((4, 4), 0.25), np.array(y)) == pytest.approx(0.0)


def test_baselines_cross_validation_and_report_files(dataset, tmp_path):
    results = cross_validate(dataset, CATS, progress=False)
    folds = results["folds"]
    assert {f["held_out"] for f in folds} == {"doc0", "doc1", "doc2"}
    rule = results["systems"]["section rule + number regex"]
    assert rule["metric_f1"]["mean"] == 1.0  # every metric unit here has a number with a unit
    written = write_report(results, tmp_path / "eval")
    assert {p.name for p in written} == {
        "results.json",
        "results.md",
        "errors.csv",
        "confusion_matrix.png",
    }
    assert (tmp_path / "eval" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((tmp_path / "eval" / "errors.csv").open(encoding="utf-8")))
    assert all(
        r["gold_category"] != r["pred_category"] or r["gold_metric"] != r["pred_metric"]
        for r in rows
    )
    assert "| system |" in (tmp_path / "eval" / "results.md").read_text("utf-8")


def test_runs_with_other_seeds_merge_into_one_cross_validation(dataset, tiny_bert_dir, tmp_path):
    """`--seeds 1` then `--seeds 2` gives what `--seeds 1 2` gives: deterministic training on
    the CPU, baselines from the first run only, every seed's pooled figures kept."""
    cfg = _tiny_config(tiny_bert_dir, tmp_path)
    kw = {"cfg": cfg, "progress": False, "held_out": ["doc1"]}
    both = cross_validate(dataset, CATS, seeds=(1, 2), **kw)
    one, two = (cross_validate(dataset, CATS, seeds=(s,), **kw) for s in (1, 2))
    merged = merge_results([one, two])
    assert merged["seeds"] == [1, 2]

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(merged["folds"]) == strip(both["folds"])
    for test, systems in both["tests"].items():
        for name, summary in systems.items():
            got = merged["tests"][test][name]
            assert got["pooled_by_seed"] == summary["pooled_by_seed"]
            assert got["pooled"] == summary["pooled"]
            assert got["category_macro_f1"] == summary["category_macro_f1"]
    with pytest.raises(ValueError, match="appears twice"):
        merge_results([both, both])
    with pytest.raises(ValueError, match="differ"):
        merge_results([both, {**both, "seeds": [9], "categories": ["x"]}])
    # Torch's int8 kernels must match; ONNX Runtime's only where both runs scored its int8.
    ort = {"cpu": "x", "onnxruntime": "1.32.0", "onnx_int8": "7-bit, per channel"}
    merge_results([{**one, "int8_kernels": ort}, {**two, "int8_kernels": {"cpu": "x"}}])
    for other in ({"cpu": "y"}, {**ort, "onnx_int8": "7-bit, per matrix"}):
        with pytest.raises(ValueError, match="int8_kernels differ"):
            merge_results([{**one, "int8_kernels": ort}, {**two, "int8_kernels": other}])


def test_held_out_keeps_only_those_folds(dataset):
    results = cross_validate(dataset, CATS, progress=False, held_out=["doc1"])
    assert {f["held_out"] for f in results["folds"]} == {"doc1"}
    with pytest.raises(ValueError, match="held_out"):
        cross_validate(dataset, CATS, progress=False, held_out=["nope"])


def _tiny_config(tiny_bert_dir, tmp_path) -> TrainConfig:
    return TrainConfig(
        base_model=str(tiny_bert_dir),
        output_dir=str(tmp_path / "m"),
        epochs=1,
        batch_size=8,
        max_seq_length=32,
        annotations=["unused.json"],
    )


def test_model_in_cross_validation(dataset, tiny_bert_dir, tmp_path):
    cfg = _tiny_config(tiny_bert_dir, tmp_path)
    results = cross_validate(dataset, CATS, cfg=cfg, seeds=(1, 2), baselines=False, progress=False)
    model_folds = [f for f in results["folds"] if f["system"] == "fine-tuned tagger"]
    assert len(model_folds) == 6  # 3 reports x 2 seeds
    assert results["train_seconds_mean"] > 0
    assert not (tmp_path / "m.work").exists()


def test_predictions_are_kept_and_reading_in_order_can_be_redone(dataset, tiny_bert_dir, tmp_path):
    """Every scored test set's probabilities are written, with the fold's transitions, so
    the order's weight can be studied without retraining (scripts/sequence_weight.py)."""
    import gzip

    from sectioncls.sequence import Transitions, smooth_groups

    records: list[dict] = []
    cfg = _tiny_config(tiny_bert_dir, tmp_path)
    results = cross_validate(
        dataset, CATS, cfg=cfg, progress=False, held_out=["doc1"], on_predictions=records.append
    )
    assert {(r["system"], r["test"]) for r in records} == {
        (f["system"], f["test"]) for f in results["folds"]
    }
    written = write_report(results, tmp_path / "eval", records)
    assert tmp_path / "eval" / "predictions.jsonl.gz" in written
    with gzip.open(tmp_path / "eval" / "predictions.jsonl.gz", "rt", encoding="utf-8") as fh:
        kept = [json.loads(line) for line in fh]
    assert kept == json.loads(json.dumps(records))
    by = {(r["system"], r["test"]): r for r in kept}
    alone = by[("fine-tuned tagger, units alone", "as written")]
    in_order = by[("fine-tuned tagger", "as written")]
    assert alone["unit_index"] == in_order["unit_index"] and alone["doc_id"] == ["doc1"] * len(
        alone["doc_id"]
    )
    again = smooth_groups(
        np.asarray(alone["p_category"], dtype=np.float32),
        alone["doc_id"],
        alone["unit_index"],
        Transitions.from_dict(alone["transitions"]),
    )
    np.testing.assert_allclose(again, in_order["p_category"], atol=1e-4)
    assert by[("section rule + number regex", "as written")]["transitions"] is None
    # The study script reads the file and reproduces the evaluation at the config's weight.
    script = Path(__file__).resolve().parents[1] / "scripts" / "sequence_weight.py"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "eval" / "predictions.jsonl.gz"),
         "--weights", "0", "1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    row = next(line for line in out.splitlines() if line.startswith("| as written |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == cells[4]  # weight 1 == the evaluation's own figure


def test_int8_is_scored_beside_the_float_model(dataset, tiny_bert_dir, tmp_path):
    """Every trained model, the student too, is also scored quantised: int8 is the fast path
    on a CPU without bf16, so its accuracy is measured beside the float model's."""
    cfg = _tiny_config(tiny_bert_dir, tmp_path)
    student = dataclasses.replace(
        cfg, output_dir=str(tmp_path / "s"), encoder_layers=1, distill_from="teacher"
    )
    results = cross_validate(
        dataset, CATS, cfg=cfg, student_cfg=student, baselines=False, progress=False,
        held_out=["doc1"], int8=True,
    )  # fmt: skip
    systems = {f["system"] for f in results["folds"]}
    models = {"fine-tuned tagger", "distilled student (1 layer)"}
    # Both int8 paths that `auto` may take: torch's and, with the onnx extra, ONNX Runtime's.
    int8 = (", int8", ", int8 (ONNX Runtime)") if onnx_installed() else (", int8",)
    assert systems == {m + v for m in models for v in ("", ", units alone", *int8)}
    for m in models:
        for v in int8:
            assert results["systems"][m + v]["pooled"]["n"] > 0


def test_student_distilled_from_each_folds_teacher(dataset, tiny_bert_dir, tmp_path):
    """The student learns from its own fold's teacher, never from a model that saw the
    held-out report; the teachers are deleted once their student is trained."""
    import glob
    import tempfile

    teacher = _tiny_config(tiny_bert_dir, tmp_path)
    student = dataclasses.replace(
        teacher,
        output_dir=str(tmp_path / "s"),
        encoder_layers=1,
        distill_from="teacher",
        init_from="teacher",
    )
    before = set(glob.glob(f"{tempfile.gettempdir()}/sectioncls-teacher-*"))
    results = cross_validate(
        dataset, CATS, cfg=teacher, student_cfg=student, baselines=False, progress=False
    )
    systems = {f["system"] for f in results["folds"]}
    # Each trained model is also scored reading every unit alone, at no extra training.
    models = {"fine-tuned tagger", "distilled student (1 layer)"}
    assert systems == models | {m + ", units alone" for m in models}
    assert len(results["folds"]) == 12
    assert set(results["systems"]) == systems
    assert set(glob.glob(f"{tempfile.gettempdir()}/sectioncls-teacher-*")) == before


@pytest.fixture
def mixed(dataset):
    """doc0–doc2 real; w1–w3 written (source: synthetic), two of them of kind "plan-only"."""
    from datasets import concatenate_datasets

    written = []
    for i, doc in enumerate(("doc0", "doc1", "doc2")):
        part = dataset.filter(lambda r, d=doc: r["doc_id"] == d)
        part = part.map(lambda r, n=i: {"doc_id": f"w{n + 1}", "source": "synthetic"})
        written.append(part)
    return concatenate_datasets([dataset, *written])


def test_written_reports_always_train_and_are_never_held_out(mixed):
    results = cross_validate(mixed, CATS, progress=False)
    assert {f["held_out"] for f in results["folds"]} == {"doc0", "doc1", "doc2"}
    from sectioncls.evaluation import real_folds

    for fold in real_folds(mixed):
        assert {"w1", "w2", "w3"} <= set(fold.train["doc_id"])
        assert set(fold.tests["as written"]["source"]) == {"real"}


def test_perturbed_copies_are_scored_beside_the_report(dataset):
    from sectioncls.evaluation import real_folds

    text = "\n".join(u[0] for u in _UNITS) + "\n"
    folds = real_folds(dataset, {"doc0": text, "doc1": "不是这份报告\n"})
    tests = {f.name: set(f.tests) for f in folds}
    assert {"reworded headings", "headings removed"} <= tests["doc0"]
    assert tests["doc1"] == {"as written"}  # text and export disagree: nothing is carried
    results = cross_validate(dataset, CATS, progress=False, folds=folds)
    rule = results["tests"]["headings removed"]["section rule + number regex"]
    assert rule["n_folds"] == 1
    assert results["tests"]["reworded headings"]["section rule + number regex"]["pooled"]["n"] > 0


def test_transfer_and_kind_folds(mixed):
    from sectioncls.evaluation import group_folds, transfer_fold

    (fold,) = transfer_fold(mixed)
    assert set(fold.train["source"]) == {"synthetic"}
    assert set(fold.tests["as written"]["source"]) == {"real"}
    folds = group_folds(mixed, {"w1": "plan-only", "w2": "plan-only", "w3": "summary"})
    assert [f.name for f in folds] == ["plan-only", "summary"]
    assert set(folds[0].tests["as written"]["doc_id"]) == {"w1", "w2"}
    assert "w1" not in set(folds[0].train["doc_id"]) and "doc0" in set(folds[0].train["doc_id"])
    with pytest.raises(ValueError, match="transfer needs"):
        transfer_fold(mixed.filter(lambda r: r["source"] == "real"))
