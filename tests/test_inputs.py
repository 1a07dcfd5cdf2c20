"""One definition of what the model reads: the Label Studio path (task data → export → dataset
row) and the inference path (text → segment → tagger inputs) must give the same model input."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectioncls.data import build_rows, load_annotations
from sectioncls.inputs import CONTEXT_FIELDS, PLACE_FIELDS, model_text, unit_records
from sectioncls.segment import segment
from sectioncls.studio.client import task_data
from sectioncls.tagger import unit_inputs
from sectioncls.textio import doc_id_from_path, read_report

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "examples" / "reports").glob("*.txt"))
ALL_FIELDS = list(CONTEXT_FIELDS)


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.name[:3])
def test_task_data_and_tagger_inputs_give_the_same_model_input(path):
    text = read_report(path)
    units = segment(text)
    doc_id = doc_id_from_path(path)
    tasks = [
        {"id": i, "data": d, "annotations": []} for i, d in enumerate(task_data(units, doc_id))
    ]
    for t in tasks:  # as if labelled: the row is built from the task data alone
        t["annotations"] = [
            {"id": 1, "completed_by": 1, "was_cancelled": False, "ground_truth": False,
             "result": [{"from_name": "category", "to_name": "text", "type": "choices",
                         "value": {"choices": ["other"]}}]}
        ]  # fmt: skip
    rows = build_rows(tasks).rows
    inference = unit_inputs(units)
    assert len(rows) == len(inference) == len(units)
    for row, inp in zip(rows, inference, strict=True):
        assert model_text(row, ALL_FIELDS) == model_text(inp, ALL_FIELDS)


def test_committed_exports_carry_todays_model_input():
    """The exports were built from the current segmenter: retraining reads what tagging reads."""
    rows = {
        (r["doc_id"], r["unit_index"]): r
        for r in build_rows(load_annotations(ROOT / "annotations" / "reports.json")).rows
    }
    for path in REPORTS:
        units = segment(read_report(path))
        for u, inp in zip(units, unit_inputs(units), strict=True):
            row = rows[(doc_id_from_path(path), u.index)]
            assert model_text(row, ALL_FIELDS) == model_text(inp, ALL_FIELDS), (path.name, u.index)


def test_title_and_headings_are_words_not_labels():
    text = "青川县教育局2025年工作要点\n一、总体要求\n（一）目标。\n全面提升办学质量。\n"
    recs = unit_records(segment(text))
    body = recs[-1]
    assert body["title"] == "青川县教育局2025年工作要点"
    first, second = model_text(body, ["kind", "title", "headings"])
    assert first == "全面提升办学质量。"
    assert second == "句子 | 题:青川县教育局2025年工作要点 | 纲:一、总体要求 › （一）目标。"
    assert recs[0]["title"] == ""  # the title line does not repeat itself as context


def test_drop_blanks_only_the_named_fields():
    rec = {"text": "全年办结案件12件。", "kind": "sentence", "title": "某局2024年工作总结",
           "heading_path": "一、工作情况"}  # fmt: skip
    ctx = ["kind", "title", "headings", "quantities"]
    _, kept = model_text(rec, ctx, drop=lambda name: name in PLACE_FIELDS)
    assert kept == "句子 | 数:12件"
    assert set(PLACE_FIELDS) >= {"title", "headings", "section", "heading_path"}
    assert "kind" not in PLACE_FIELDS and "quantities" not in PLACE_FIELDS
