"""What the model reads about a unit, defined once.

Three paths must agree exactly, or a model trained on one reads something else at inference:
Label Studio task data (what annotators see and what exports carry), dataset rows built from
those exports, and the tagger's inputs built from freshly segmented text. All three come from
`unit_records` (the fields of every unit of a report) and `model_text` (those fields written
as the encoder's two segments). A new context field is one entry in `CONTEXT_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .schema import EMPTY_FIELD, HEADING_SEP

if TYPE_CHECKING:
    from .segment import Unit

__all__ = [
    "COMPACT_SEPARATOR",
    "CONTEXT_FIELDS",
    "HEADING_SEP",
    "LEGACY_SEPARATOR",
    "PLACE_FIELDS",
    "RECORD_FIELDS",
    "ContextField",
    "InputSpec",
    "field_text",
    "model_text",
    "position_word",
    "record_defaults",
    "unit_records",
]

# The per-unit fields that every task, row and inference input carries (strings or ints).
RECORD_FIELDS = (
    "text",
    "kind",
    "heading_path",
    "section",
    "title",
    "position",
    "prev_text",
    "next_text",
)
_KIND_WORDS = {"heading": "标题", "sentence": "句子", "item": "条目", "meta": "页面信息"}
_TITLE_MAX_LINES = 2
# The title's tail says what the document is (…工作总结, …工作要点, …情况的报告); its head is
# the issuer's name, which the unit's own words do not need, and it rides on every unit.
_TITLE_TAIL_CHARS = 16
# The segmenter's keyword part in Chinese: "achievement" costs the encoder 11 word pieces a unit,
# 成效 one or two, and a Chinese encoder reads its own language better than English labels.
_PART_WORDS = {"achievement": "成效", "problem": "问题", "plan": "计划", "other": "其他"}
# How context fields are joined. " | " was the first; "|" is one word piece where " | " is two,
# so a compact checkpoint reads about 6 fewer tokens a unit. Checkpoints record theirs.
LEGACY_SEPARATOR = " | "
COMPACT_SEPARATOR = "|"


def field_text(value: Any) -> str:
    """A task or row field as the model reads it: missing (None) and the placeholder a Label
    Studio task shows for an empty field are both ""."""
    return "" if value is None or value == EMPTY_FIELD else str(value)


def record_defaults(record: Mapping[str, Any]) -> dict[str, str]:
    """The record fields of a task or row as the model reads them (`field_text`): old exports
    lack `title`, and the model then reads the unit without it, as context dropout trained it
    to."""
    return {k: field_text(record.get(k)) for k in RECORD_FIELDS}


# Where in the report a unit sits, in words. Reviews come first and plans last in almost every
# kind of report, so a unit whose headings are gone (or say nothing) is still placed.
_POSITIONS = ((0.1, "开头"), (0.4, "前部"), (0.7, "中部"), (0.9, "后部"), (1.01, "结尾"))


def position_word(index: int, n_units: int) -> str:
    """The unit's place in its report (开头/前部/中部/后部/结尾), from its index and the count."""
    if n_units <= 1:
        return _POSITIONS[0][1]
    share = index / (n_units - 1)
    return next(word for edge, word in _POSITIONS if share < edge)


def document_title(units: Sequence[Unit]) -> str:
    """The report's title lines (the segmenter's level-0 headings before the outline starts):
    a title that says 工作要点 or 述职报告 tells what every unit below it is likely to be."""
    lines: list[str] = []
    for u in units:
        if u.kind == "heading" and u.level:
            break
        if u.kind == "heading" and u.level == 0:
            lines.append(u.text)
            if len(lines) == _TITLE_MAX_LINES:
                break
    return HEADING_SEP.join(lines)


def unit_records(units: Sequence[Unit]) -> list[dict[str, Any]]:
    """The context fields of every unit of one report, in order (see RECORD_FIELDS)."""
    title = document_title(units)
    out = []
    for i, u in enumerate(units):
        out.append(
            {
                "text": u.text,
                "kind": u.kind,
                "heading_path": HEADING_SEP.join(u.heading_path),
                "section": u.section or "",
                "title": "" if u.kind == "heading" and u.level == 0 else title,
                "position": position_word(i, len(units)),
                "prev_text": units[i - 1].text if i else "",
                "next_text": units[i + 1].text if i + 1 < len(units) else "",
            }
        )
    return out


# ----------------------------------------------------------------------------- context fields
def _quantities(r: Mapping[str, Any]) -> str:
    # The numbers-with-units of the unit, in Arabic digits (三家 and 3家 are the same evidence):
    # the metric head decides which are evidence and which are names or dates.
    from .quantities import arabic_numerals, extract_quantities

    return " ".join(arabic_numerals(q.text) for q in extract_quantities(str(r.get("text") or "")))


def _headings(r: Mapping[str, Any]) -> str:
    # The governing top-level heading and the nearest one, in words: the part of the report is
    # read from how its heading is phrased, not looked up in a keyword list.
    path = [p for p in str(r.get("heading_path") or "").split(HEADING_SEP) if p]
    if len(path) > 2:
        path = [path[0], path[-1]]
    return HEADING_SEP.join(path)


@dataclass(frozen=True, slots=True)
class ContextField:
    """How one context field is written into the model's second segment."""

    prefix: str
    write: Callable[[Mapping[str, Any]], str]
    place: bool  # describes where the unit sits (may be missing or misleading in a new report)
    help: str


def _field(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda r: str(r.get(name) or "")


def _title(r: Mapping[str, Any]) -> str:
    first = str(r.get("title") or "").split(HEADING_SEP)[0]
    return first[-_TITLE_TAIL_CHARS:]


CONTEXT_FIELDS: dict[str, ContextField] = {
    "kind": ContextField(
        "",
        lambda r: _KIND_WORDS.get(str(r.get("kind") or ""), ""),
        False,
        "the segmenter's unit kind in words (标题/句子/条目/页面信息)",
    ),
    "title": ContextField("题:", _title, True, "the end of the report's title (its kind)"),
    "headings": ContextField(
        "纲:", _headings, True, "the governing top-level heading and the nearest heading"
    ),
    "section": ContextField("", _field("section"), True, "the segmenter's keyword part (rule)"),
    "part": ContextField(
        "",
        lambda r: _PART_WORDS.get(str(r.get("section") or ""), ""),
        True,
        "the segmenter's keyword part in Chinese (成效/问题/计划): `section`, fewer tokens",
    ),
    "heading_path": ContextField("", _field("heading_path"), True, "every governing heading"),
    "position": ContextField("位:", _field("position"), True, "the unit's place in the report"),
    "quantities": ContextField(
        "数:", _quantities, False, "the numbers with units in the unit, Arabic digits"
    ),
    "prev_text": ContextField("上文:", _field("prev_text"), True, "the previous unit"),
    "next_text": ContextField("下文:", _field("next_text"), True, "the next unit"),
}
PLACE_FIELDS = tuple(k for k, f in CONTEXT_FIELDS.items() if f.place)


def model_text(
    record: Mapping[str, Any],
    context: Sequence[str],
    drop: Callable[[str], bool] | None = None,
    sep: str = LEGACY_SEPARATOR,
) -> tuple[str, str]:
    """The (first, second) segment for one unit: the unit itself, then its context fields.

    Context decides the hard cases (the same "一是强化政治建设。" is an achievement under a
    review heading and a plan under a plan heading), so it rides along as a second segment
    that truncation cuts first. `drop(name)` blanks a field (context dropout in training);
    `sep` joins the fields (a checkpoint's `context_separator`)."""
    parts = []
    for name in context:
        spec = CONTEXT_FIELDS[name]
        if drop is not None and drop(name):
            continue
        value = spec.write(record)
        if value:
            parts.append(spec.prefix + value)
    return str(record.get("text") or ""), sep.join(parts)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """How a unit becomes the encoder's input: the context fields of the second segment, the
    separator that joins them, and the length the pair is cut to.

    The three always travel together, from the training config into the checkpoint's config
    and back out to the tagger, the evaluation and the benchmarks; one object means no caller
    can pair one model's fields with another's separator. `InputSpec.of` reads any config that
    has the three attributes; a checkpoint from before `context_separator` reads " | "."""

    context: tuple[str, ...]
    max_seq_length: int = 128
    separator: str = LEGACY_SEPARATOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "context", tuple(self.context))
        unknown = [c for c in self.context if c not in CONTEXT_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown context field(s) {unknown}; choose from {tuple(CONTEXT_FIELDS)}"
            )
        if self.separator not in (COMPACT_SEPARATOR, LEGACY_SEPARATOR):
            raise ValueError(
                f"separator must be {COMPACT_SEPARATOR!r} or {LEGACY_SEPARATOR!r}, "
                f"not {self.separator!r}"
            )

    @classmethod
    def of(cls, config: Any) -> InputSpec:
        """From a `TrainConfig` or a checkpoint's `SectionClsConfig`."""
        return cls(
            tuple(config.context),
            int(config.max_seq_length),
            getattr(config, "context_separator", LEGACY_SEPARATOR),
        )

    @property
    def place_fields(self) -> frozenset[str]:
        """The fields that context dropout may blank: the unit's place, not its own words."""
        return frozenset(c for c in self.context if c in PLACE_FIELDS)

    def text(
        self, record: Mapping[str, Any], drop: Callable[[str], bool] | None = None
    ) -> tuple[str, str]:
        """The (first, second) segment of one unit (`model_text` with this spec)."""
        return model_text(record, self.context, drop, self.separator)
