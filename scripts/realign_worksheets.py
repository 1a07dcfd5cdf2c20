"""Carry worksheet labels over to the segmenter's current units after it changed.

A unit with the same text keeps its label. A unit that the new segmenter cut out of an old
one (a run-in heading now split from its sentence) or merged from several old ones with the
same label takes that label, and is printed with a `realigned` note so that a reader checks
it; anything else is printed as unresolved and the worksheet is left as it was.
Run: .venv/bin/python scripts/realign_worksheets.py annotations/synthetic [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sectioncls.segment import segment


def realign(report: str, rows: list[dict]) -> tuple[list[dict], list[str], list[str]]:
    units = segment(report)
    by_text: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_text.setdefault(r["text"], []).append(i)
    out, carried, unresolved = [], [], []
    for u in units:
        label = None
        if by_text.get(u.text):
            label = dict(rows[by_text[u.text].pop(0)])
        else:
            parents = [r for r in rows if u.text in r["text"]]
            parts = [r for r in rows if r["text"] in u.text]
            if len(parents) == 1:
                label = {**parents[0], "note": f"realigned: cut from “{parents[0]['text'][:30]}”"}
            elif parts and len({(r["category"], bool(r["metric"])) for r in parts}) == 1:
                label = {**parts[0], "note": f"realigned: merged from {len(parts)} units"}
                label["metric"] = any(bool(r["metric"]) for r in parts)
        if label is None:
            unresolved.append(f"#{u.index} {u.text[:60]}")
            continue
        if "realigned" in str(label.get("note", "")):
            carried.append(f"#{u.index} {label['category']} {label['metric']} {u.text[:60]}")
        label["unit_index"] = u.index
        label["text"] = u.text
        out.append(label)
    return out, carried, unresolved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="folder with reports/ and worksheets/")
    ap.add_argument("--write", action="store_true", help="rewrite the worksheets that changed")
    args = ap.parse_args()
    root = Path(args.root)
    failed = 0
    for sheet in sorted((root / "worksheets").glob("*.jsonl")):
        if "." in sheet.stem:  # second passes and adjudications follow the first pass
            continue
        rows = [json.loads(line) for line in sheet.read_text("utf-8").splitlines() if line]
        report = (root / "reports" / f"{rows[0]['doc_id']}.txt").read_text("utf-8")
        new, carried, unresolved = realign(report, rows)
        same = [r["text"] for r in rows] == [r["text"] for r in new]
        if same and not unresolved:
            continue
        print(f"{sheet.name}: {len(rows)} → {len(new)} units")
        for line in carried:
            print(f"  carried  {line}")
        for line in unresolved:
            print(f"  UNRESOLVED {line}")
        if unresolved:
            failed += 1
        elif args.write:
            sheet.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in new), "utf-8"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
