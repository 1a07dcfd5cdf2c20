"""How the committed exports were made: reports and readers' worksheets through a real Label
Studio.

- `--set real` (annotations/reports.json): the four example reports in examples/reports,
  worksheets in annotations/worksheets/;
- `--set synthetic` (annotations/synthetic.json): the written reports in
  annotations/synthetic/reports, worksheets in annotations/synthetic/worksheets/, every task
  marked `source: synthetic` so that no reported real figure can include them;
- `--set heldout` (annotations/heldout.json): written reports that no model trains on
  (annotations/heldout/), marked `source: synthetic` and `split: heldout`, for scoring each
  new model on reports it never saw.

1. push the reports (one task per unit) into the project;
2. enter each annotator's decisions through the annotation API — annotator 1 (the token's user)
   labelled every unit, annotator 2 (a second user) re-labelled a random 15% blind to the first,
   and where they disagree an adjudicator's decision is marked ground truth
   (`*.adjudicated.jsonl`); the decisions are the readers' own, kept in the worksheets as they
   wrote them;
3. pull the project's snapshot export.

Needs a running server (`sectioncls studio serve`). Tasks are matched on doc id + unit index and
the unit text is checked, so a worksheet that no longer fits the segmenter is an error.
Run: .venv/bin/python scripts/build_dataset.py --set real|synthetic|heldout
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from sectioncls.data import parse_result
from sectioncls.studio.client import StudioClient, StudioError
from sectioncls.textio import doc_id_from_path, read_report

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    # name: (project, reports folder, worksheets folder, export, extra task data)
    "real": (
        "reports",
        "examples/reports",
        "annotations/worksheets",
        "annotations/reports.json",
        {},
    ),
    "synthetic": (
        "synthetic",
        "annotations/synthetic/reports",
        "annotations/synthetic/worksheets",
        "annotations/synthetic.json",
        {"source": "synthetic"},
    ),
    # Written too, but never trained on: each new model is scored on it (`sectioncls score`).
    "heldout": (
        "heldout-written",
        "annotations/heldout/reports",
        "annotations/heldout/worksheets",
        "annotations/heldout.json",
        {"source": "synthetic", "split": "heldout"},
    ),
}


def read_worksheet(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def second_user(client: StudioClient, username: str) -> int:
    """The id of the second annotator's account, created on first use."""
    for user in client.ls.users.list():
        if user.username == username:
            return int(user.id)
    user = client.ls.users.create(username=username, email=f"{username}@sectioncls.local")
    return int(user.id)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=list(SETS), default="real")
    args = ap.parse_args()
    project, report_dir, sheet_dir, output, extra = SETS[args.set]
    worksheets = ROOT / sheet_dir

    client = StudioClient.connect()
    client.check()
    reports = sorted((ROOT / report_dir).glob("*.txt"))
    result = client.push(
        [(doc_id_from_path(p), read_report(p)) for p in reports], project, extra_data=extra
    )
    print(f"pushed {len(reports)} reports: {result}", file=sys.stderr)

    pid = client.require_project(project)
    tasks = {
        (t["data"]["doc_id"], int(t["data"]["unit_index"])): t
        for t in client.tasks(pid, with_annotations=True)
    }
    annotator2 = second_user(client, "annotator2")
    me = int(client.ls.users.whoami().id)
    first = [p for p in sorted(worksheets.glob("*.jsonl")) if p.stem.count(".") == 0]
    first += sorted(worksheets.glob("*.annotator1.jsonl"))
    sheets = [(p, None, False) for p in first]
    sheets += [(p, annotator2, False) for p in sorted(worksheets.glob("*.annotator2.jsonl"))]
    adjudicated = sorted(worksheets.glob("*.adjudicated.jsonl"))
    if adjudicated:  # disagreements of the two passes, decided by a third reader
        sheets += [(p, second_user(client, "adjudicator"), True) for p in adjudicated]
    metric_name = client.schema.metric.name
    revised = 0
    for path, user, ground_truth in sheets:
        rows = read_worksheet(path)
        for row in tqdm(rows, desc=path.name, unit="unit", file=sys.stderr):
            key = (row["doc_id"], int(row["unit_index"]))
            task = tasks.get(key)
            if task is None:
                raise StudioError(f"{path}: no task for {key}; re-push the reports")
            if task["data"]["text"] != row["text"]:
                raise StudioError(
                    f"{path}: unit {key} text differs from the task; the "
                    "segmenter changed since this worksheet was written"
                )
            mine = [
                a
                for a in task.get("annotations") or []
                if a.get("completed_by") == (user or me) and not a.get("was_cancelled")
            ]
            if mine:  # idempotent: this annotator's label is there; a revised one is updated
                category, metric, _ = parse_result(mine[-1].get("result"), metric_name)
                if (category, metric) != (row["category"], int(bool(row["metric"]))):
                    client.relabel(int(mine[-1]["id"]), row["category"], bool(row["metric"]))
                    revised += 1
                continue
            client.annotate(
                task["id"],
                row["category"],
                bool(row["metric"]),
                completed_by=user,
                ground_truth=ground_truth,
            )
    if revised:
        print(f"updated {revised} annotation(s) whose worksheet label was revised", file=sys.stderr)
    pulled = client.pull(project, ROOT / output)
    print(f"wrote {pulled.path}: {pulled.n_tasks} tasks, {pulled.n_annotations} annotations")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
