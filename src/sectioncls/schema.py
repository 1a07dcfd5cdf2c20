"""The label schema: category values, their Chinese names, hotkeys and the metric flag.

One YAML file (configs/labels.yaml, copied into the package as resources/labels.yaml) is the
single source of truth, so the Label Studio config, the dataset's ClassLabel and a trained
checkpoint's id mapping can never drift apart. Checkpoints store `to_dict()` and restore it with
`from_dict()`, so a model keeps the ids it was trained with even if the YAML changes later.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import yaml

from .errors import SectionClsError

__all__ = [
    "CATEGORY_CONTROL",
    "EMPTY_FIELD",
    "HEADING_SEP",
    "METRIC_CHOICE",
    "MODEL_SUGGESTION_CONTROL",
    "Category",
    "LabelSchema",
    "MetricFlag",
    "SchemaError",
]

# The stored value of the single metric checkbox; an annotation without it means metric = no.
METRIC_CHOICE = "yes"
# The name of the category control in the Label Studio config (`from_name` in results).
CATEGORY_CONTROL = "category"
# The read-only text box that shows the model's suggestion (filled by predictions, never by a
# person): the annotator's own answer stays in CATEGORY_CONTROL and the metric control. A
# text box, not a second set of choices: Label Studio gives read-only choices hotkeys of
# their own, and pressing one changed the "suggestion".
MODEL_SUGGESTION_CONTROL = "model_suggestion"
# Shown for an empty context field (no heading above, first unit): a blank gap looks like a
# page that failed to load. `sectioncls.inputs.record_defaults` reads it back as "".
EMPTY_FIELD = "（无）"
# How a unit's heading path is joined into one string for annotators and for the model.
HEADING_SEP = " › "

_VALUE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HOTKEY_RE = re.compile(r"^[0-9a-z]$")


class SchemaError(SectionClsError, ValueError):
    """A label schema that cannot be used; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Category:
    """One category: `value` is stored in annotations, `name_zh` is what annotators see."""

    value: str
    name_zh: str
    description: str
    hotkey: str
    # The annotator's tooltip, in the annotators' language (default: the description).
    hint: str = ""

    @property
    def tooltip(self) -> str:
        return self.hint or self.description


@dataclass(frozen=True, slots=True)
class MetricFlag:
    """The yes/no metric flag, shown as one checkbox (checked = yes)."""

    name: str
    name_zh: str
    hotkey: str
    description_yes: str
    description_no: str
    # Tooltips for annotators: when to tick it and when not (defaults: the descriptions).
    hint_yes: str = ""
    hint_no: str = ""

    @property
    def tooltip_yes(self) -> str:
        return self.hint_yes or self.description_yes

    @property
    def tooltip_no(self) -> str:
        return self.hint_no or self.description_no


@dataclass(frozen=True, slots=True)
class LabelSchema:
    """Validated label schema; the order of `category_specs` fixes the class ids."""

    category_specs: tuple[Category, ...]
    metric: MetricFlag
    version: int = 1
    source: str = field(default="<dict>", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    # ----------------------------------------------------------------- accessors
    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.category_specs)

    @property
    def category2id(self) -> dict[str, int]:
        return {c.value: i for i, c in enumerate(self.category_specs)}

    @property
    def id2category(self) -> dict[int, str]:
        return dict(enumerate(self.categories))

    @property
    def num_categories(self) -> int:
        return len(self.category_specs)

    def category(self, value: str) -> Category:
        for c in self.category_specs:
            if c.value == value:
                return c
        raise KeyError(f"unknown category {value!r}; expected one of {list(self.categories)}")

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> LabelSchema:
        """Build from the YAML structure (or a checkpoint's stored `to_dict()`)."""
        if not isinstance(data, dict):
            raise SchemaError(f"{source}: expected a mapping at the top level, got {_tn(data)}")
        _no_unknown(data, {"version", "categories", "metric"}, source, "top level")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise SchemaError(f"{source}: 'version' must be an integer, got {version!r}")
        cats = data.get("categories")
        if not isinstance(cats, list) or not cats:
            raise SchemaError(f"{source}: 'categories' must be a non-empty list")
        specs = []
        for i, raw in enumerate(cats):
            where = f"categories[{i}]"
            if not isinstance(raw, dict):
                raise SchemaError(f"{source}: {where} must be a mapping, got {_tn(raw)}")
            _no_unknown(raw, {"value", "name_zh", "description", "hotkey", "hint"}, source, where)
            specs.append(
                Category(
                    value=_req_str(raw, "value", source, where),
                    name_zh=_req_str(raw, "name_zh", source, where),
                    description=_req_str(raw, "description", source, where),
                    hotkey=_req_str(raw, "hotkey", source, where),
                    hint=_opt_str(raw, "hint", source, where),
                )
            )
        m = data.get("metric")
        if not isinstance(m, dict):
            raise SchemaError(f"{source}: 'metric' must be a mapping")
        keys = {"name", "name_zh", "hotkey", "description_yes", "description_no"}
        optional = {"hint_yes", "hint_no"}
        _no_unknown(m, keys | optional, source, "metric")
        metric = MetricFlag(
            **{k: _req_str(m, k, source, "metric") for k in sorted(keys)},
            **{k: _opt_str(m, k, source, "metric") for k in sorted(optional)},
        )
        return cls(category_specs=tuple(specs), metric=metric, version=version, source=source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> LabelSchema:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SchemaError(f"{p}: label schema file not found") from None
        return cls.from_yaml_text(text, str(p))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<yaml>") -> LabelSchema:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"{source}: not valid YAML: {exc}") from None
        return cls.from_dict(data, source)

    @classmethod
    def default(cls) -> LabelSchema:
        """The schema shipped inside the package (works from an installed wheel)."""
        res = resources.files("sectioncls").joinpath("resources/labels.yaml")
        return cls.from_yaml_text(
            res.read_text(encoding="utf-8"), "sectioncls:resources/labels.yaml"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints (JSON-safe); `from_dict(to_dict())` round-trips."""
        return {
            "version": self.version,
            "categories": [
                {
                    "value": c.value,
                    "name_zh": c.name_zh,
                    "description": c.description,
                    "hotkey": c.hotkey,
                    **({"hint": c.hint} if c.hint else {}),
                }
                for c in self.category_specs
            ],
            "metric": {
                "name": self.metric.name,
                "name_zh": self.metric.name_zh,
                "hotkey": self.metric.hotkey,
                "description_yes": self.metric.description_yes,
                "description_no": self.metric.description_no,
                **({"hint_yes": self.metric.hint_yes} if self.metric.hint_yes else {}),
                **({"hint_no": self.metric.hint_no} if self.metric.hint_no else {}),
            },
        }

    # ----------------------------------------------------------------- Label Studio
    def label_studio_config(self) -> str:
        """The Label Studio labeling config (XML), deterministic so the committed copy can be
        compared byte for byte. Chinese names are shown (`html`), English values are stored.

        Why it looks the way it does (each point was an annotator tripping in a real browser):
        the model's suggestion is text in a read-only box (`model_suggestion`), filled by
        predictions, so it is visibly the model's, with its confidence, and the annotator's
        `category` starts empty: pressing a hotkey chooses (it would clear a pre-selected
        choice), and nothing is accepted without a keypress. Styles are inline (LS ignores
        class rules on View), every tooltip is Chinese, and the header names the document."""
        q = quoteattr
        box = "padding:6px 10px;margin:6px 0;border-radius:4px"
        lines = [
            "<!-- Generated by sectioncls.schema.LabelSchema.label_studio_config() from",
            "     configs/labels.yaml; do not edit by hand (a test keeps them in sync). -->",
            "<View>",
            '  <Header value="$header" size="5"/>',
            f'  <View style="color:#555;font-size:13px;line-height:1.6;{box};background:#f6f6f6">',
            '    <Header value="文件标题" size="6"/>',
            '    <Text name="title" value="$title"/>',
            '    <Header value="所在章节" size="6"/>',
            '    <Text name="heading_path" value="$heading_path"/>',
            '    <Header value="上文" size="6"/>',
            '    <Text name="prev_text" value="$prev_text"/>',
            "  </View>",
            '  <Header value="本单元（请标注）" size="5"/>',
            '  <View style="font-size:18px;line-height:1.7;padding:6px 10px;'
            'border-left:4px solid #1f6feb;background:#f3f8ff">',
            '    <Text name="text" value="$text"/>',
            "  </View>",
            '  <View style="color:#555;font-size:13px;line-height:1.6;padding:0 10px">',
            '    <Header value="下文" size="6"/>',
            '    <Text name="next_text" value="$next_text"/>',
            "  </View>",
            f'  <View style="{box};background:#fff8e1;border:1px dashed #e0a800">',
            '    <Header value="模型建议（仅供参考：读完本单元再自己选择类别）" size="6"/>',
            f'    <TextArea name="{MODEL_SUGGESTION_CONTROL}" toName="text" readonly="true" '
            'rows="1" maxSubmissions="1"/>',
            "  </View>",
            '  <Header value="类别（必选，按数字键选择）" size="5"/>',
            f'  <Choices name="{CATEGORY_CONTROL}" toName="text" choice="single-radio" '
            'required="true" requiredMessage="请先选择一个类别（按数字键或点击），再提交" '
            'showInline="true">',
        ]
        for c in self.category_specs:
            lines.append(
                f"    <Choice value={q(c.value)} html={q(escape(c.name_zh))} "
                f"hint={q(c.tooltip)} hotkey={q(c.hotkey)}/>"
            )
        m = self.metric
        metric_hint = f"算：{m.tooltip_yes} 不算：{m.tooltip_no}"
        lines += [
            "  </Choices>",
            f'  <Choices name={q(m.name)} toName="text" choice="multiple" showInline="true">',
            f"    <Choice value={q(METRIC_CHOICE)} html={q(escape(m.name_zh))} "
            f"hint={q(metric_hint)} hotkey={q(m.hotkey)}/>",
            "  </Choices>",
            "</View>",
            "",
        ]
        return "\n".join(lines)

    def instructions_html(self) -> str:
        """The project's labelling instructions (shown by Label Studio before labelling and
        under its info button): the categories with hotkeys and tooltips, the metric rule in
        both directions, and how to treat the model's suggestion."""
        rows = "".join(
            f"<li><b>{escape(c.name_zh)}</b>（按 {escape(c.hotkey)}）：{escape(c.tooltip)}</li>"
            for c in self.category_specs
        )
        m = self.metric
        return (
            "<h3>如何标注</h3>"
            "<p>每个任务是报告中的一个单元（标题、句子或条目）。先读文件标题、所在章节和上下文，"
            "再判断本单元本身说的是什么，按数字键选择类别，需要时勾选量化指标，然后提交"
            "（Ctrl+Enter）。</p>"
            f"<h4>类别（必选一个）</h4><ul>{rows}</ul>"
            f"<h4>{escape(m.name_zh)}（按 {escape(m.hotkey)}，可不选）</h4>"
            f"<p>算：{escape(m.tooltip_yes)}</p>"
            f"<p>不算：{escape(m.tooltip_no)}</p>"
            "<h4>模型建议</h4><p>黄色框里是模型的建议和把握程度，只供参考，不算你的答案：你的答案是你"
            "按数字键选的类别。"
            "把握低的单元排在队列前面，请特别仔细地读。</p>"
        )


# --------------------------------------------------------------------- validation helpers
def _tn(x: object) -> str:
    return type(x).__name__


def _no_unknown(d: dict, allowed: set[str], source: str, where: str) -> None:
    extra = sorted(str(k) for k in d if k not in allowed)
    if extra:
        hint = ""
        if any(k in ("True", "False") for k in extra):
            hint = " (bare yes/no keys are booleans in YAML; use description_yes/description_no)"
        raise SchemaError(
            f"{source}: unknown key(s) {extra} in {where}; allowed: {sorted(allowed)}{hint}"
        )


def _opt_str(d: dict, key: str, source: str, where: str) -> str:
    return _req_str(d, key, source, where) if d.get(key) is not None else ""


def _req_str(d: dict, key: str, source: str, where: str) -> str:
    v = d.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and key == "hotkey":
        v = str(v)
    if not isinstance(v, str) or not v.strip():
        raise SchemaError(f"{source}: {where}.{key} must be a non-empty string, got {v!r}")
    return v.strip()


def _validate(s: LabelSchema) -> None:
    src = s.source
    if not s.category_specs:
        raise SchemaError(f"{src}: at least one category is required")
    seen: set[str] = set()
    for c in s.category_specs:
        if not _VALUE_RE.match(c.value):
            raise SchemaError(
                f"{src}: category value {c.value!r} must be lower-case ASCII "
                "([a-z][a-z0-9_]*): it is stored in annotations and checkpoints"
            )
        if c.value in seen:
            raise SchemaError(f"{src}: duplicate category value {c.value!r}")
        seen.add(c.value)
    if len(s.category_specs) < 2:
        raise SchemaError(f"{src}: a classifier needs at least two categories")
    if not _VALUE_RE.match(s.metric.name):
        raise SchemaError(f"{src}: metric.name {s.metric.name!r} must be lower-case ASCII")
    taken = {
        CATEGORY_CONTROL,
        MODEL_SUGGESTION_CONTROL,
        "text",
        "title",
        "heading_path",
        "prev_text",
        "next_text",
    }
    if s.metric.name in seen or s.metric.name in taken:
        raise SchemaError(f"{src}: metric.name {s.metric.name!r} clashes with another name")
    hotkeys = [c.hotkey for c in s.category_specs] + [s.metric.hotkey]
    for h in hotkeys:
        if not _HOTKEY_RE.match(h):
            raise SchemaError(f"{src}: hotkey {h!r} must be one digit or lower-case letter")
    dup = sorted({h for h in hotkeys if hotkeys.count(h) > 1})
    if dup:
        raise SchemaError(f"{src}: hotkey(s) {dup} used more than once")
