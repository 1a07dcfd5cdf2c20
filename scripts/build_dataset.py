"""How annotations/reports.json was made: the four example reports through a real Label Studio.

1. push the reports (one task per unit) into the project;
2. enter each annotator's decisions through the annotation API — annotator 1 (the token's user)
   labelled every unit, annotator 2 (a second user) re-labelled a random 15% blind to the first;
   the decisions are the readers' own, kept in annotations/worksheets/ as they wrote them;
3. pull the project's snapshot export into annotations/<project>.json.

Needs a running server (`sectioncls studio serve`). Tasks are matched on doc id + unit index and
the unit text is checked, so a worksheet that no longer fits the segmenter is an error.
Run: .venv/bin/python scripts/build_dataset.py [--project reports]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from sectioncls.studio.client import StudioClient, StudioError
from sectioncls.textio import doc_id_from_path, read_report

ROOT = Path(__file__).resolve().parents[1]
WORKSHEETS = ROOT / "annotations" / "worksheets"


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
    ap.add_argument("--project", default="reports")
    ap.add_argument("--output", default=None, help="default annotations/<project>.json")
    args = ap.parse_args()

    client = StudioClient.connect()
    client.check()
    reports = sorted((ROOT / "examples" / "reports").glob("*.txt"))
    result = client.push([(doc_id_from_path(p), read_report(p)) for p in reports], args.project)
    print(f"pushed {len(reports)} reports: {result}", file=sys.stderr)

    pid = client.require_project(args.project)
    tasks = {
        (t["data"]["doc_id"], int(t["data"]["unit_index"])): t
        for t in client.tasks(pid, with_annotations=True)
    }
    annotator2 = second_user(client, "annotator2")
    me = int(client.ls.users.whoami().id)
    sheets = [(p, None) for p in sorted(WORKSHEETS.glob("*.annotator1.jsonl"))]
    sheets += [(p, annotator2) for p in sorted(WORKSHEETS.glob("*.annotator2.jsonl"))]
    for path, user in sheets:
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
            done_by = {a.get("completed_by") for a in task.get("annotations") or []}
            if (user or me) in done_by:
                continue  # idempotent: this annotator's label is already there
            client.annotate(task["id"], row["category"], bool(row["metric"]), completed_by=user)
    pulled = client.pull(args.project, args.output)
    print(f"wrote {pulled.path}: {pulled.n_tasks} tasks, {pulled.n_annotations} annotations")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
