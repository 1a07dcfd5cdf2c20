"""The label schema: one YAML, its packaged copy, the Label Studio config generated from it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sectioncls.schema import HEADING_SEP, LabelSchema, SchemaError

REPO = Path(__file__).resolve().parents[1]
CONFIG_YAML = REPO / "configs" / "labels.yaml"
PACKAGED_YAML = REPO / "src" / "sectioncls" / "resources" / "labels.yaml"
LS_XML = REPO / "configs" / "label_studio.xml"


def test_packaged_copy_is_byte_identical() -> None:
    assert PACKAGED_YAML.read_bytes() == CONFIG_YAML.read_bytes(), (
        "src/sectioncls/resources/labels.yaml differs from configs/labels.yaml; "
        "copy configs/labels.yaml over it"
    )


def test_default_matches_config_file() -> None:
    assert LabelSchema.default() == LabelSchema.from_yaml(CONFIG_YAML)


def test_categories_and_ids() -> None:
    s = LabelSchema.default()
    assert s.categories == ("achievement", "problem", "plan", "other")
    assert s.category2id == {"achievement": 0, "problem": 1, "plan": 2, "other": 3}
    assert s.id2category == {0: "achievement", 1: "problem", 2: "plan", 3: "other"}
    assert [c.name_zh for c in s.category_specs] == ["成效/举措", "问题/不足", "计划/打算", "其他"]
    assert s.metric.name == "metric"
    assert s.category("plan").hotkey == "3"
    with pytest.raises(KeyError, match="unknown category"):
        s.category("nope")


def test_dict_round_trip_is_json_safe() -> None:
    s = LabelSchema.default()
    d = json.loads(json.dumps(s.to_dict(), ensure_ascii=False))
    assert LabelSchema.from_dict(d) == s


def test_committed_label_studio_config_matches_schema() -> None:
    assert LS_XML.read_text(encoding="utf-8") == LabelSchema.default().label_studio_config(), (
        "configs/label_studio.xml is stale; regenerate it with "
        "python -c 'from sectioncls.schema import LabelSchema; "
        'print(LabelSchema.default().label_studio_config(), end="")\' > configs/label_studio.xml'
    )


def test_label_studio_config_shows_chinese_and_stores_english() -> None:
    root = ET.fromstring(LabelSchema.default().label_studio_config())
    cat = root.find(".//Choices[@name='category']")
    assert cat is not None and cat.get("choice") == "single-radio" and cat.get("toName") == "text"
    choices = cat.findall("Choice")
    assert [c.get("value") for c in choices] == ["achievement", "problem", "plan", "other"]
    assert all(c.get("alias") is None for c in choices)  # alias would replace the stored value
    assert "成效/举措" in (choices[0].get("html") or "")
    assert [c.get("hotkey") for c in choices] == ["1", "2", "3", "4"]
    metric = root.find(".//Choices[@name='metric']")
    assert metric is not None and metric.get("choice") == "multiple"
    assert [c.get("value") for c in metric.findall("Choice")] == ["yes"]
    texts = {t.get("name"): t.get("value") for t in root.iter("Text")}
    assert texts == {
        "title": "$title",
        "heading_path": "$heading_path",
        "prev_text": "$prev_text",
        "text": "$text",
        "next_text": "$next_text",
    }
    assert HEADING_SEP == " › "


BASE = """
version: 1
categories:
  - {value: a, name_zh: 甲, description: d, hotkey: "1"}
  - {value: b, name_zh: 乙, description: d, hotkey: "2"}
metric: {name: metric, name_zh: 数, hotkey: "5", description_yes: y, description_no: n}
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("value: b,", "value: a,", "duplicate category value 'a'"),
        ("value: b,", "value: B c,", "must be lower-case ASCII"),
        ('hotkey: "2"', 'hotkey: "1"', r"hotkey\(s\) \['1'\] used more than once"),
        ('hotkey: "2"', 'hotkey: "F2"', "must be one digit or lower-case letter"),
        ("name_zh: 乙, ", "", r"categories\[1\].name_zh must be a non-empty string"),
        ("description_yes: y", "yes: y", "bare yes/no keys are booleans"),
        ("version: 1", "version: one", "'version' must be an integer"),
        ("metric: {name: metric,", "metric: {name: category,", "clashes"),
        ('  - {value: b, name_zh: 乙, description: d, hotkey: "2"}\n', "", "at least two"),
    ],
)
def test_invalid_schemas_name_the_problem(old: str, new: str, message: str) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    with pytest.raises(SchemaError, match=message):
        LabelSchema.from_yaml_text(text, "bad.yaml")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found"):
        LabelSchema.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [unclosed", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid YAML"):
        LabelSchema.from_yaml(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="expected a mapping"):
        LabelSchema.from_yaml(bad)
    bad.write_text(BASE + "extra: 1\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"unknown key\(s\) \['extra'\]"):
        LabelSchema.from_yaml(bad)


def test_hints_are_optional_round_trip_and_reach_the_view() -> None:
    """Annotators' tooltips (hint, hint_yes, hint_no) are optional; the view and the project
    instructions use them, and a checkpoint's stored schema keeps them."""
    data = LabelSchema.default().to_dict()
    assert data["categories"][0]["hint"].startswith("报告期内")
    again = LabelSchema.from_dict(data)
    assert again == LabelSchema.default()
    bare = {
        **data,
        "categories": [{k: v for k, v in c.items() if k != "hint"} for c in data["categories"]],
        "metric": {k: v for k, v in data["metric"].items() if not k.startswith("hint")},
    }
    plain = LabelSchema.from_dict(bare)
    assert plain.category_specs[0].hint == "" and "hint" not in plain.to_dict()["categories"][0]
    # without a hint the tooltip falls back to the description
    assert plain.category_specs[0].description in plain.label_studio_config()
    view = LabelSchema.default().label_studio_config()
    assert "不算：" in view and 'readonly="true"' in view
    assert "如何标注" in LabelSchema.default().instructions_html()
