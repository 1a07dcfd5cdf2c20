"""The committed data: real and written text kept apart, the written corpus free of the
held-out headings, and every export in step with the segmenter."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from sectioncls.perturb import HELD_OUT_HEADINGS
from sectioncls.segment import outline_marker, segment
from sectioncls.textio import read_report

ROOT = Path(__file__).resolve().parents[1]
SYN = ROOT / "annotations" / "synthetic"


def _tasks(name: str) -> list[dict]:
    return json.loads((ROOT / "annotations" / name).read_text("utf-8"))


def _norm(s: str) -> str:
    return re.sub(r"[\d\s。．.、，,：:（）()年度]", "", s)


@pytest.fixture(scope="module")
def synthetic() -> list[dict]:
    return _tasks("synthetic.json")


def test_written_and_real_text_are_marked_apart(synthetic):
    assert {t["data"].get("source") for t in synthetic} == {"synthetic"}
    assert {t["data"].get("source", "real") for t in _tasks("reports.json")} == {"real"}
    real_docs = {p.stem for p in (ROOT / "examples" / "reports").glob("*.txt")}
    assert not real_docs & {t["data"]["doc_id"] for t in synthetic}


def test_written_corpus_never_uses_a_held_out_heading():
    held = {_norm(h) for hs in HELD_OUT_HEADINGS.values() for h in hs}
    for path in sorted((SYN / "reports").glob("*.txt")):
        for u in segment(read_report(path)):
            if u.kind == "heading" and u.level:
                body = _norm(u.text[len(outline_marker(u.text)) :])
                assert body not in held, (path.name, u.text)


def test_exports_fit_the_segmenter(synthetic):
    by_doc: dict[str, dict[int, str]] = {}
    for t in synthetic:
        by_doc.setdefault(t["data"]["doc_id"], {})[int(t["data"]["unit_index"])] = t["data"]["text"]
    assert len(by_doc) == len(list((SYN / "reports").glob("*.txt")))
    for doc, texts in by_doc.items():
        units = segment(read_report(SYN / "reports" / f"{doc}.txt"))
        assert [u.text for u in units] == [texts[i] for i in range(len(units))], doc


def test_catalog_describes_every_written_report(synthetic):
    rows = list(csv.DictReader((SYN / "catalog.csv").open(encoding="utf-8")))
    units = Counter(t["data"]["doc_id"] for t in synthetic)
    assert {r["doc_id"] for r in rows} == set(units)
    assert all(int(r["units"]) == units[r["doc_id"]] for r in rows)
    assert len({r["kind_group"] for r in rows}) >= 7
    assert sum(units.values()) >= 2500 and len(units) >= 40


def test_second_pass_covers_fifteen_percent(synthetic):
    doubled = [t for t in synthetic if len(t["annotations"]) >= 2]
    assert len(doubled) >= 0.15 * len(synthetic)


def test_held_out_set_is_apart_and_fits_the_segmenter(synthetic):
    """The held-out written reports: marked, disjoint from every training report, in step with
    the segmenter, with their own catalog and second pass."""
    held = _tasks("heldout.json")
    assert {(t["data"].get("source"), t["data"].get("split")) for t in held} == {
        ("synthetic", "heldout")
    }
    docs = {t["data"]["doc_id"] for t in held}
    trained = {t["data"]["doc_id"] for t in synthetic + _tasks("reports.json")}
    assert docs and not docs & trained
    folder = ROOT / "annotations" / "heldout"
    assert docs == {p.stem for p in (folder / "reports").glob("*.txt")}
    by_doc: dict[str, dict[int, str]] = {}
    for t in held:
        by_doc.setdefault(t["data"]["doc_id"], {})[int(t["data"]["unit_index"])] = t["data"]["text"]
    for doc, texts in by_doc.items():
        units = segment(read_report(folder / "reports" / f"{doc}.txt"))
        assert [u.text for u in units] == [texts[i] for i in range(len(units))], doc
    rows = list(csv.DictReader((folder / "catalog.csv").open(encoding="utf-8")))
    assert {r["doc_id"] for r in rows} == docs
    assert sum(len(t["annotations"]) >= 2 for t in held) >= 0.15 * len(held)
