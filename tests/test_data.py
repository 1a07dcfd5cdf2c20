"""Label Studio exports → labels → datasets, with synthetic exports (fast, no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sectioncls.data import (
    AnnotationError,
    agreement,
    build_rows,
    leave_one_report_out,
    load_annotations,
    load_dataset,
    split_by_report,
    to_dataset,
)
from sectioncls.schema import LabelSchema

SCHEMA = LabelSchema.default()
CAT = SCHEMA.category2id
_ids = iter(range(1000, 100000))


def ann(
    category: str | None,
    metric: bool = False,
    *,
    who: int = 1,
    gt: bool = False,
    cancelled: bool = False,
    t: int = 0,
) -> dict[str, Any]:
    result: list[dict[str, Any]] = []
    if category is not None:
        result.append(
            {"from_name": "category", "to_name": "text", "type": "choices",
             "value": {"choices": [category]}}
        )  # fmt: skip
    if metric:
        result.append(
            {"from_name": "metric", "to_name": "text", "type": "choices",
             "value": {"choices": ["yes"]}}
        )  # fmt: skip
    return {
        "id": next(_ids),
        "completed_by": who,
        "result": [] if cancelled else result,
        "was_cancelled": cancelled,
        "ground_truth": gt,
        "updated_at": f"2024-05-01T10:00:{t:02d}Z",
        "lead_time": 3.0,
    }


def task(tid: int, idx: int, *anns: dict[str, Any], doc: str = "r1", text: str = "") -> dict:
    return {
        "id": tid,
        "data": {
            "text": text or f"{doc} unit {idx}",
            "doc_id": doc,
            "unit_index": idx,
            "kind": "sentence",
            "heading_path": "一、2022年工作开展情况",
            "section": "achievement",
            "prev_text": "",
            "next_text": "",
            "start": 0,
            "end": 5,
        },
        "annotations": list(anns),
    }


def write(tmp_path: Path, name: str, tasks: list[dict]) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return p


# ----------------------------------------------------------------------------- policy
def test_single_annotation_becomes_a_row() -> None:
    res = build_rows([task(1, 0, ann("plan", metric=True))], SCHEMA)
    assert len(res.rows) == 1
    row = res.rows[0]
    assert row["category"] == CAT["plan"] and row["metric"] == 1
    assert row["label_source"] == "single" and row["n_annotations"] == 1
    assert row["heading_path"] == "一、2022年工作开展情况" and row["doc_id"] == "r1"


def test_skipped_empty_and_unannotated_are_ignored_and_counted() -> None:
    res = build_rows(
        [
            task(1, 0, ann("plan", cancelled=True)),
            task(2, 1, ann(None)),  # empty result
            task(3, 2),  # never annotated
            task(4, 3, ann("plan", cancelled=True, who=1), ann("problem", who=2)),
        ],
        SCHEMA,
    )
    assert [r["unit_index"] for r in res.rows] == [3]
    assert res.rows[0]["category"] == CAT["problem"]
    assert res.n_unannotated == 3 and res.n_cancelled == 2 and res.n_empty == 1
    assert "1 labelled units from 4 tasks" in res.summary()


def test_fingerprint_follows_the_labels_not_the_export() -> None:
    tasks = [task(1, 0, ann("plan", metric=True)), task(2, 1, ann("achievement"))]
    again = [task(9, 1, ann("achievement", who=3)), task(8, 0, ann("plan", metric=True, who=3))]
    changed = [task(1, 0, ann("plan")), task(2, 1, ann("achievement"))]
    fp = build_rows(tasks, SCHEMA).fingerprint()
    assert build_rows(again, SCHEMA).fingerprint() == fp  # other ids, order, annotator
    assert build_rows(changed, SCHEMA).fingerprint() != fp  # one metric label differs


def test_majority_wins_and_ground_truth_beats_majority() -> None:
    maj = task(1, 0, ann("plan", who=1), ann("plan", who=2), ann("achievement", True, who=3))
    gt = task(2, 1, ann("plan", who=1), ann("plan", who=2), ann("other", who=3, gt=True))
    rows = {r["unit_index"]: r for r in build_rows([maj, gt], SCHEMA).rows}
    assert rows[0]["category"] == CAT["plan"] and rows[0]["label_source"] == "majority"
    assert rows[0]["metric"] == 0  # 2 of 3 said no
    assert rows[1]["category"] == CAT["other"] and rows[1]["label_source"] == "ground_truth"


def test_ties_are_skipped_and_reported_or_raise() -> None:
    tasks = [
        task(7, 0, ann("plan", who=1), ann("achievement", who=2)),
        task(8, 1, ann("plan", True, who=1), ann("plan", False, who=2)),
        task(9, 2, ann("plan", who=1)),
    ]
    res = build_rows(tasks, SCHEMA)
    assert [r["unit_index"] for r in res.rows] == [2]
    assert [(t.task_ids, t.field) for t in res.ties] == [((7,), "category"), ((8,), "metric")]
    assert res.ties[0].votes == {"achievement": 1, "plan": 1}
    with pytest.raises(AnnotationError, match=r"task\(s\) \[7\] category.*ground truth"):
        build_rows(tasks, SCHEMA, on_tie="raise")


def test_one_annotator_counts_once_latest_wins() -> None:
    t = task(1, 0, ann("plan", who=5, t=1), ann("achievement", who=5, t=9))
    res = build_rows([t], SCHEMA)
    assert not res.ties and res.rows[0]["category"] == CAT["achievement"]


def test_unknown_labels_name_the_tasks() -> None:
    tasks = [task(11, 0, ann("plan")), task(12, 1, ann("achievment")), task(13, 2, ann("bogus"))]
    with pytest.raises(AnnotationError, match=r"'achievment'.*\[12\].*categories: \['achievement'"):
        build_rows(tasks, SCHEMA)
    bad_metric = task(14, 0, ann("plan"))
    bad_metric["annotations"][0]["result"].append(
        {"from_name": "metric", "type": "choices", "value": {"choices": ["maybe"]}}
    )
    with pytest.raises(AnnotationError, match=r"metric choice 'maybe' in task\(s\) \[14\]"):
        build_rows([bad_metric], SCHEMA)


def test_same_unit_in_two_exports_is_merged(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", [task(1, 0, ann("plan", who=1)), task(2, 1, ann("other", who=1))])
    b = write(
        tmp_path, "b.json", [task(50, 0, ann("plan", who=2)), task(51, 1, ann("plan", who=2))]
    )
    res = build_rows(load_annotations([a, b]), SCHEMA)
    assert [r["unit_index"] for r in res.rows] == [0]
    assert res.rows[0]["n_annotations"] == 2 and res.rows[0]["label_source"] == "majority"
    assert res.ties[0].task_ids == (2, 51)
    c = write(tmp_path, "c.json", [task(60, 0, ann("plan", who=3), text="re-segmented text")])
    with pytest.raises(AnnotationError, match=r"different text in task 1.*task 60"):
        build_rows(load_annotations([a, c]), SCHEMA)


def test_held_out_exports_are_refused_for_training_only(tmp_path: Path) -> None:
    """Reports kept to score models on must never reach a training set by a config edit."""
    t = task(1, 0, ann("plan", who=1))
    t["data"]["split"] = "heldout"
    held = write(tmp_path, "heldout.json", [t])
    assert len(load_annotations([held])) == 1  # scoring reads it
    with pytest.raises(AnnotationError, match=r"heldout\.json: holds reports kept out of"):
        load_annotations([held], for_training=True)
    with pytest.raises(AnnotationError, match="sectioncls score"):
        load_dataset([held], SCHEMA, for_training=True)


# ----------------------------------------------------------------------------- loading
def test_load_annotations_errors(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"not found.*studio pull"):
        load_annotations(tmp_path / "missing.json")
    with pytest.raises(AnnotationError, match="no export files"):
        load_annotations([])
    p = tmp_path / "x.json"
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        load_annotations(p)
    p.write_text('{"projects": []}', encoding="utf-8")
    with pytest.raises(AnnotationError, match="not a Label Studio JSON export"):
        load_annotations(p)
    p.write_text('[{"text": "a", "category": "plan"}]', encoding="utf-8")
    with pytest.raises(AnnotationError, match="JSON-MIN"):
        load_annotations(p)
    p.write_text('[{"id": 1, "data": {"text": "a"}, "annotations": []}]', encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"lacks data field\(s\) \['doc_id', 'unit_index'\]"):
        load_annotations(p)
    with pytest.raises(AnnotationError, match="directory"):
        load_annotations(tmp_path)


# ----------------------------------------------------------------------------- datasets
def _three_reports(tmp_path: Path) -> Path:
    tasks = []
    tid = 0
    for doc in ("r1", "r2", "r3"):
        for i, cat in enumerate(("achievement", "problem", "plan", "other")):
            tid += 1
            tasks.append(task(tid, i, ann(cat, metric=i == 0), doc=doc))
    return write(tmp_path, "three.json", tasks)


def test_dataset_features_follow_the_schema(tmp_path: Path) -> None:
    ds, res = load_dataset(_three_reports(tmp_path), SCHEMA)
    train = ds["train"]
    assert len(train) == 12 and res.n_tasks == 12
    assert train.features["category"].names == list(SCHEMA.categories)
    assert train.features["metric"].names == ["no", "yes"]
    assert sorted(set(train["metric"])) == [0, 1]
    assert train[0]["section"] == "achievement"
    empty = to_dataset(build_rows([], SCHEMA), SCHEMA)
    assert len(empty) == 0 and empty.features["category"].num_classes == 4


def test_report_level_splits(tmp_path: Path) -> None:
    ds, _ = load_dataset(_three_reports(tmp_path), SCHEMA, dev_reports=["r2"])
    assert set(ds["dev"]["doc_id"]) == {"r2"} and set(ds["train"]["doc_id"]) == {"r1", "r3"}
    three = split_by_report(ds, dev_reports=["r1"], test_reports=["r3"])
    assert {k: set(v["doc_id"]) for k, v in three.items()} == {
        "train": {"r2"}, "dev": {"r1"}, "test": {"r3"},
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"\['nope'\] have no labelled units"):
        split_by_report(ds, dev_reports=["nope"])
    folds = list(leave_one_report_out(ds))
    assert [d for d, _ in folds] == ["r1", "r2", "r3"]
    for doc, split in folds:
        assert set(split["dev"]["doc_id"]) == {doc} and doc not in set(split["train"]["doc_id"])
        assert len(split["train"]) + len(split["dev"]) == 12


# ----------------------------------------------------------------------------- agreement
def test_agreement_between_two_exports(tmp_path: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    cats_a = ["achievement", "achievement", "problem", "plan", "other", "plan"]
    cats_b = ["achievement", "problem", "problem", "plan", "other", "achievement"]
    met_a = [1, 0, 0, 1, 0, 0]
    met_b = [1, 0, 1, 1, 0, 0]
    pairs_a = enumerate(zip(cats_a, met_a, strict=True))
    tasks_a = [task(i, i, ann(c, bool(m), who=1)) for i, (c, m) in pairs_a]
    a = write(tmp_path, "a.json", [*tasks_a, task(99, 99)])
    b = write(tmp_path, "b.json",
              [task(100 + i, i, ann(c, bool(m), who=2))
               for i, (c, m) in enumerate(zip(cats_b, met_b, strict=True))])  # fmt: skip
    res = agreement(a, b, SCHEMA)
    assert res.n_shared == 6
    assert res.category_kappa == pytest.approx(cohen_kappa_score(cats_a, cats_b))
    assert res.metric_kappa == pytest.approx(cohen_kappa_score(met_a, met_b))
    assert res.category_agreement == pytest.approx(4 / 6)
    assert [(r["unit_index"], r["category_a"], r["category_b"]) for r in res.disagreements] == [
        (1, "achievement", "problem"), (2, "problem", "problem"), (5, "plan", "achievement"),
    ]  # fmt: skip
    assert res.disagreements[1]["metric_a"] == 0 and res.disagreements[1]["metric_b"] == 1
    assert res.disagreements[0]["text"] == "r1 unit 1"


def test_agreement_within_one_export(tmp_path: Path) -> None:
    tasks = [
        task(1, 0, ann("plan", who=1), ann("plan", who=2)),
        task(2, 1, ann("other", who=1), ann("achievement", who=2)),
        task(3, 2, ann("problem", who=1)),
    ]
    res = agreement(write(tmp_path, "one.json", tasks), schema=SCHEMA)
    assert (res.annotator_a, res.annotator_b, res.n_shared) == ("annotator 1", "annotator 2", 2)
    assert len(res.disagreements) == 1 and res.metric_kappa is None  # all "no": undefined
    with pytest.raises(AnnotationError, match="needs two annotators"):
        agreement(write(tmp_path, "solo.json", [task(1, 0, ann("plan"))]), schema=SCHEMA)
