"""A team's own label schema end to end: five categories through training, tagging (CSV and
HTML), and the Label Studio view of a real server."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from sectioncls import ReportTagger
from sectioncls.cli import main
from sectioncls.render import category_colours
from sectioncls.schema import LabelSchema
from test_tagger import REPORTS
from test_training import _UNITS, ls_task

FIVE = """\
version: 1
categories:
  - {value: achievement, name_zh: 成效/举措, hotkey: "1", description: work done}
  - {value: problem, name_zh: 问题/不足, hotkey: "2", description: shortcomings}
  - {value: risk, name_zh: 风险/隐患, hotkey: "3", description: a risk that may come}
  - {value: plan, name_zh: 计划/打算, hotkey: "4", description: intended work}
  - {value: other, name_zh: 其他, hotkey: "5", description: none of the above}
metric: {name: metric, name_zh: 含量化指标, hotkey: "6", description_yes: a number,
         description_no: no number}
"""
RISK = [("防汛形势依然严峻，存在溃堤隐患。", "risk", 0, "二、存在问题"),
        ("部分老旧小区燃气管道存在安全风险。", "risk", 0, "二、存在问题")]  # fmt: skip


@pytest.fixture(scope="module")
def five(tmp_path_factory, tiny_bert_dir) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("five")
    schema = tmp / "labels.yaml"
    schema.write_text(FIVE, "utf-8")
    units = (_UNITS + RISK) * 4
    tasks = [ls_task(i + 1, f"doc{i % 2}", i, t, p, c, m) for i, (t, c, m, p) in enumerate(units)]
    export = tmp / "export.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    model = tmp / "model"
    args = ["train", "--base-model", str(tiny_bert_dir), "--annotations", str(export),
            "--schema", str(schema), "--output-dir", str(model), "--epochs", "1",
            "--max-seq-length", "32", "--quiet"]  # fmt: skip
    assert main(args) == 0
    return schema, model


def test_the_checkpoint_carries_its_schema_into_csv_and_html(five, tmp_path):
    _, model = five
    tagger = ReportTagger.from_pretrained(model, backend="torch", dtype="float32")
    assert tagger.categories == ["achievement", "problem", "risk", "plan", "other"]
    assert tagger.category_labels["risk"] == "风险/隐患"
    out = tmp_path / "units.csv"
    assert main(["tag", str(REPORTS[3]), "-m", str(model), "--format", "csv", "-o", str(out),
                 "--quiet"]) == 0  # fmt: skip
    header = next(csv.reader(out.open(encoding="utf-8")))
    assert {f"score_{c}" for c in tagger.categories} <= set(header)
    page = tmp_path / "page.html"
    assert main(["tag", str(REPORTS[3]), "-m", str(model), "--format", "html", "-o", str(page),
                 "--quiet"]) == 0  # fmt: skip
    text = page.read_text("utf-8")
    assert "风险/隐患" in text and 'value="risk"' in text
    colours = category_colours(tagger.categories)
    assert len(set(colours.values())) == 5 and colours["risk"] in text


def test_colours_are_distinct_for_many_categories():
    cats = ["achievement", *(f"c{i}" for i in range(7))]
    assert len(set(category_colours(cats).values())) == len(cats)


def test_studio_view_is_generated_from_the_users_schema(five, studio_server, capsys):
    from sectioncls.studio.client import StudioClient

    schema, model = five
    url, token = studio_server
    args = ["--url", url, "--token", token, "--schema", str(schema)]
    code = main(["studio", "push", str(REPORTS[3]), "--project", "five-categories",
                 "--predictions", str(model), *args])  # fmt: skip
    assert code == 0
    client = StudioClient(url, token)
    pid = client.require_project("five-categories")
    view = client.ls.projects.get(pid).label_config
    assert re.search(r'<Choice[^>]*value="risk"', view) and "风险/隐患" in view
    tasks = client.tasks(pid, with_annotations=True)
    # the suggestion names the category in the user's own words, with its hotkey
    said = {t["predictions"][0]["result"][0]["value"]["text"][0] for t in tasks}
    names = {c.name_zh for c in LabelSchema.from_yaml(schema).category_specs}
    assert all(s.split("（按")[0] in names for s in said), said
    # The packaged view refuses a five-category model's predictions: the mismatch is named.
    # (The model's categories are checked, not only what it happened to predict.)
    capsys.readouterr()
    assert main(["studio", "push", str(REPORTS[3]), "--project", "four-only",
                 "--predictions", str(model), "--url", url, "--token", token]) == 2  # fmt: skip
    assert "risk" in capsys.readouterr().err
