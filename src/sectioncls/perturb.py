"""Perturbed copies of an annotated report: does the tagger read units, or an outline?

A model that has learned "the category is the part the top-level heading names" scores well
on reports with the usual headings and falls apart on the others. Each perturbation edits
the report's text the way other issuers write, re-segments it, and carries the gold labels
over to the units that are still there, so the same held-out report is scored as written
and as others would have written it.

The reworded headings come from `HELD_OUT_HEADINGS`, wordings kept out of the written
training corpus (a test checks that none of its reports uses them).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from .segment import Unit, outline_marker, segment, top_level

__all__ = ["HELD_OUT_HEADINGS", "PERTURBATIONS", "Perturbed", "perturb_report"]

# Common phrasings of the three parts, never used as a heading in annotations/synthetic.
HELD_OUT_HEADINGS: dict[str, tuple[str, ...]] = {
    "achievement": (
        "过去一年的主要工作",
        "重点任务落实情况",
        "工作推进的总体情况",
        "一年来的做法与成效",
        "年度履职情况回顾",
        "主要工作及亮点",
    ),
    "problem": (
        "工作中存在的薄弱环节",
        "面临的突出矛盾和挑战",
        "还需改进的几个方面",
        "当前工作中的短板",
        "存在的困难和不足",
        "需要正视的问题",
    ),
    "plan": (
        "下一阶段的工作安排",
        "明年工作的思路和举措",
        "今后一个时期的重点任务",
        "下步工作打算",
        "新一年的工作设想",
        "接下来的努力方向",
    ),
}

PERTURBATIONS = {
    "reworded headings": "top-level headings replaced by held-out wordings of the same part",
    "headings removed": "every outline heading deleted (the title stays)",
    "opening alone": "only what precedes the first top-level heading",
    "problem part inside achievement part": (
        "the problem part's units moved into the achievement part, its heading deleted"
    ),
}
_TERMINATORS = "。！？!?"


@dataclass(frozen=True, slots=True)
class Perturbed:
    """A perturbed report: its text, its units, and for each unit the index of the original
    unit whose gold label it carries (None: no gold, left out of scoring)."""

    name: str
    text: str
    units: list[Unit]
    source_index: list[int | None]


def _top_headings(units: Sequence[Unit]) -> list[Unit]:
    top = top_level(units)
    if top is None:
        return []
    return [u for u in units if u.kind == "heading" and u.level == top]


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _align(old: Sequence[Unit], new: Sequence[Unit], renamed: dict[str, int]) -> list[int | None]:
    """Match each new unit to the original with the same text (in order), or to the original
    whose heading was reworded into it."""
    queues: dict[str, deque[int]] = defaultdict(deque)
    for u in old:
        queues[u.text].append(u.index)
    out: list[int | None] = []
    for u in new:
        if u.text in renamed:
            out.append(renamed[u.text])
        elif queues[u.text]:
            out.append(queues[u.text].popleft())
        else:
            out.append(None)
    return out


def perturb_report(
    text: str, categories: Sequence[str], name: str, seed: int = 0
) -> Perturbed | None:
    """One perturbation of a report whose units carry the gold `categories` (in unit order).
    None when the report has nothing to perturb (no outline, no problem part)."""
    units = segment(text)
    if len(units) != len(categories):
        raise ValueError(f"{len(categories)} labels for {len(units)} units")
    tops = _top_headings(units)
    if not tops:
        return None
    renamed: dict[str, int] = {}
    if name == "reworded headings":
        edits = []
        used: dict[str, int] = defaultdict(int)
        for u in tops:
            gold = categories[u.index]
            if gold not in HELD_OUT_HEADINGS:
                continue
            options = HELD_OUT_HEADINGS[gold]
            wording = options[(seed + used[gold]) % len(options)]
            used[gold] += 1
            end = "。" if u.text[-1] in _TERMINATORS else ""
            new = outline_marker(u.text) + wording + end
            edits.append((u.start, u.end, new))
            renamed[new] = u.index
        new_text = _apply(text, edits)
    elif name == "headings removed":
        drop = [u for u in units if u.kind == "heading" and u.level]
        new_text = _apply(text, [(u.start, u.end, "") for u in drop])
    elif name == "opening alone":
        new_text = text[: tops[0].start]
    elif name == "problem part inside achievement part":
        new_text = _move_problem_part(text, units, tops, categories)
        if new_text is None:
            return None
    else:
        raise ValueError(f"unknown perturbation {name!r}; choose from {list(PERTURBATIONS)}")
    new_units = segment(new_text)
    return Perturbed(name, new_text, new_units, _align(units, new_units, renamed))


def _move_problem_part(
    text: str, units: Sequence[Unit], tops: Sequence[Unit], categories: Sequence[str]
) -> str | None:
    problem = next((u for u in tops if categories[u.index] == "problem"), None)
    review = next((u for u in tops if categories[u.index] == "achievement"), None)
    if problem is None or review is None or review.start > problem.start:
        return None
    after = [u for u in tops if u.start > problem.start]
    body_start = problem.end
    body_end = after[0].start if after else len(text)
    body = text[body_start:body_end].strip()
    if not body:
        return None
    # Into the middle of the review part: before its second subheading, or at its end.
    review_end = next(u.start for u in tops if u.start > review.start)
    subs = [
        u
        for u in units
        if u.kind == "heading" and u.level and u.level > review.level
        and review.start < u.start < review_end
    ]  # fmt: skip
    at = subs[1].start if len(subs) > 1 else review_end
    edits = [(problem.start, body_end, ""), (at, at, body + "\n")]
    return _apply(text, edits)
