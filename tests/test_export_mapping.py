"""Exports of Label Studio projects made elsewhere, read through a mapping in the run config:
other data fields, other control names and choice values, no report id or unit order."""

from __future__ import annotations

import json

import pytest
import yaml

from sectioncls.data import AnnotationError, ExportMapping, load_dataset
from sectioncls.training import ConfigError, TrainConfig, train

MAPPING = {
    "text": "sentence",
    "doc_id": None,
    "unit_index": None,
    "category_control": "label",
    "metric_control": "quant",
    "metric_yes": "有",
    "values": {"成效": "achievement", "问题": "problem", "计划": "plan", "其他": "other"},
}
UNITS = [("一、主要成效", "成效", False), ("全年办结案件120件。", "成效", True),
         ("基层力量不足。", "问题", False), ("明年将新建站点5个。", "计划", True),
         ("相关链接", "其他", False)]  # fmt: skip


def _their_export(path, units=UNITS, first_id=100):
    tasks = []
    for k, (text, label, metric) in enumerate(units):
        result = [{"from_name": "label", "to_name": "t", "type": "choices",
                   "value": {"choices": [label]}}]  # fmt: skip
        if metric:
            result.append({"from_name": "quant", "to_name": "t", "type": "choices",
                           "value": {"choices": ["有"]}})  # fmt: skip
        # Task ids out of file order: the order comes from the ids.
        tid = first_id + (len(units) - k) * 7
        ann = {"id": tid, "result": result, "completed_by": 3}
        tasks.append({"id": tid, "data": {"sentence": text}, "annotations": [ann]})
    path.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    return path


def test_an_export_with_other_names_reads_through_the_mapping(tmp_path):
    export = _their_export(tmp_path / "their-project.json")
    ds, _ = load_dataset([export], mappings={str(export): ExportMapping.from_dict(MAPPING)})
    rows = ds["train"]
    assert set(rows["doc_id"]) == {"their-project"}  # one report, named after the file
    order = [rows[i]["text"] for i in sorted(range(len(rows)), key=lambda i: rows[i]["unit_index"])]
    assert order == [u[0] for u in reversed(UNITS)]  # by task id
    names = rows.features["category"].names
    got = {r["text"]: (names[r["category"]], r["metric"]) for r in rows}
    assert got["全年办结案件120件。"] == ("achievement", 1)
    assert got["明年将新建站点5个。"] == ("plan", 1) and got["相关链接"] == ("other", 0)


def test_values_the_mapping_does_not_cover_are_named_with_their_tasks(tmp_path):
    export = _their_export(tmp_path / "x.json", [*UNITS, ("存在隐患。", "风险", False)])
    with pytest.raises(AnnotationError, match=r"风险.*10[0-9]"):
        load_dataset([export], mappings={str(export): ExportMapping.from_dict(MAPPING)})
    with pytest.raises(AnnotationError, match="mappings"):
        load_dataset([export])  # without the mapping: the fields are missing, and it says how
    with pytest.raises(AnnotationError, match="no data field 'body'"):
        load_dataset([export], mappings={str(export): ExportMapping(text="body")})


def test_run_config_carries_mappings_and_checks_them(tmp_path, tiny_bert_dir):
    export = _their_export(tmp_path / "their.json", UNITS * 3)
    cfg_path = tmp_path / "run.yaml"
    run = {"base_model": str(tiny_bert_dir), "annotations": [str(export)],
           "mappings": {str(export): MAPPING}, "output_dir": str(tmp_path / "model"),
           "epochs": 1, "max_seq_length": 32, "context": ["kind"], "batch_size": 8}  # fmt: skip
    cfg_path.write_text(yaml.safe_dump(run, allow_unicode=True), "utf-8")
    result, _ = train(TrainConfig.from_yaml(cfg_path), progress=False)
    assert result.n_train == 15
    run["mappings"] = {str(export): {"txt": "sentence"}}
    cfg_path.write_text(yaml.safe_dump(run, allow_unicode=True), "utf-8")
    with pytest.raises((ConfigError, AnnotationError), match="txt"):
        TrainConfig.from_yaml(cfg_path)
