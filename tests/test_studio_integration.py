"""Against a real Label Studio: push → annotate via the API → pull → dataset, and the ways it
goes wrong (wrong token, server down, labels not in the config, conflicts, re-push)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sectioncls.data import AnnotationError, build_rows, load_annotations, load_dataset
from sectioncls.schema import LabelSchema
from sectioncls.segment import segment
from sectioncls.studio import StudioError, server
from sectioncls.studio.client import StudioClient, annotate, label_config, pull, push

pytest.register_assert_rewrite("studio_fixtures")
pytest_plugins = ["studio_fixtures"]

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
REPORTS = sorted((REPO / "examples" / "reports").glob("*.txt"))
SCHEMA = LabelSchema.default()


def _title(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def client(studio_server) -> StudioClient:
    url, token = studio_server
    return StudioClient(url, token, max_retries=0)


def _by_key(tasks: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(t["data"]["doc_id"], t["data"]["unit_index"]): t for t in tasks}


class FakePredictor:
    """Stands in for the tagger: 'plan' for headings, 'achievement' otherwise."""

    model_version = "fake-1"

    def __init__(self, bad_label: str | None = None) -> None:
        self.bad_label = bad_label

    def predict_units(self, units: Sequence[Any]) -> list[dict[str, Any]]:
        out = []
        for u in units:
            cat = self.bad_label or ("plan" if u.kind == "heading" else "achievement")
            p = 0.55 if u.kind == "heading" else 0.9
            scores = {c: (p if c == cat else (1 - p) / 3) for c in SCHEMA.categories}
            out.append({"category": cat, "scores": scores, "metric": False, "metric_score": 0.2})
        return out


def test_push_annotate_pull_dataset(client: StudioClient, tmp_path: Path) -> None:
    title = _title("main")
    res = push(REPORTS[:2], title, client=client)
    units = {p.stem: segment(p.read_text(encoding="utf-8")) for p in REPORTS[:2]}
    assert res.created == sum(len(u) for u in units.values()) and res.updated == 0
    project = client.ls.projects.get(res.project_id)
    assert project.label_config.strip() == label_config().strip()

    tasks = _by_key(client.tasks(res.project_id))
    doc = REPORTS[0].stem
    u1 = units[doc][1]
    d = tasks[(doc, 1)]["data"]
    assert d["text"] == u1.text and d["prev_text"] == units[doc][0].text
    assert d["next_text"] == units[doc][2].text and (d["start"], d["end"]) == (u1.start, u1.end)
    assert d["heading_path"] == (" › ".join(u1.heading_path) or "（无）") and d["kind"] == u1.kind

    tid = {i: tasks[(doc, i)]["id"] for i in range(6)}
    annotate(title, tid[0], "other", False, lead_time=4.5, client=client)
    client.annotate(tid[1], "achievement", True, lead_time=7)
    client.annotate(tid[2], "plan", False, was_cancelled=True)  # skipped
    # Conflict: two annotators disagree, then an adjudicator's ground truth decides.
    other = client.ls.users.create(username="second", email=f"{uuid.uuid4().hex[:8]}@x.local")
    client.annotate(tid[3], "achievement", False)
    client.annotate(tid[3], "problem", False, completed_by=int(other.id))
    client.annotate(tid[4], "achievement", True)
    client.annotate(tid[4], "plan", True, completed_by=int(other.id))
    client.annotate(tid[4], "plan", True, ground_truth=True, completed_by=int(other.id))
    with pytest.raises(StudioError, match="unknown category 'bogus'"):
        client.annotate(tid[5], "bogus", False)

    out = tmp_path / "export.json"
    pulled = pull(title, out, client=client)
    assert pulled.path == out and pulled.n_tasks == res.created and pulled.n_annotated_tasks == 5
    raw = json.loads(out.read_text(encoding="utf-8"))
    gt = [a for t in raw for a in t["annotations"] if a["ground_truth"]]
    assert len(gt) == 1, "the export must keep ground-truth annotations"
    assert not list(tmp_path.glob(".*.tmp")), "atomic write leaves no temp file"

    ds, build = load_dataset(out)
    rows = {r["unit_index"]: r for r in ds["train"] if r["doc_id"] == doc}
    assert set(rows) == {0, 1, 4}
    assert (rows[0]["category"], rows[0]["metric"]) == (SCHEMA.category2id["other"], 0)
    assert (rows[1]["category"], rows[1]["metric"]) == (SCHEMA.category2id["achievement"], 1)
    assert rows[4]["category"] == SCHEMA.category2id["plan"]
    assert rows[4]["label_source"] == "ground_truth"
    assert [(t.doc_id, t.unit_index, t.field) for t in build.ties] == [(doc, 3, "category")]
    assert build.n_cancelled == 1 and build.n_unannotated == res.created - 4


def test_repush_is_idempotent_and_updates_changed_units(client: StudioClient) -> None:
    title = _title("repush")
    text = REPORTS[0].read_text(encoding="utf-8")
    first = client.push([("rep", text)], title)
    again = client.push([("rep", text)], title)
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    tasks = _by_key(client.tasks(first.project_id))
    assert len(tasks) == first.created

    units = segment(text)
    client.annotate(tasks[("rep", 0)]["id"], "other", False)
    # Edit the first character of the first and the last unit (same length, so no offset
    # moves): the annotated first unit is kept and reported stale; the unannotated last unit
    # and the neighbours whose context changed are updated in place.
    a, z = units[0].start, units[-1].start
    edited = text[:a] + "【" + text[a + 1 : z] + "修" + text[z + 1 :]
    res = client.push([("rep", edited)], title)
    assert (res.created, res.stale, res.orphaned) == (0, ["rep#0"], [])
    assert res.updated == 3  # unit 1 (prev_text), the last but one (next_text), the last
    after = _by_key(client.tasks(first.project_id))
    assert len(after) == first.created
    last = len(units) - 1
    assert after[("rep", last)]["data"]["text"].startswith("修")
    assert after[("rep", last - 1)]["data"]["next_text"].startswith("修")
    assert after[("rep", 0)]["data"]["text"] == units[0].text  # annotated: left alone


def test_a_revised_label_updates_the_annotation_in_place(
    client: StudioClient, tmp_path: Path
) -> None:
    """A reader who revises a decision changes their annotation; the export then carries the
    revision (one annotation, same id and author), not a second opinion of the same reader."""
    title = _title("relabel")
    text = REPORTS[0].read_text(encoding="utf-8")
    res = client.push([("rel", text)], title)
    task = _by_key(client.tasks(res.project_id))[("rel", 0)]
    ann_id = client.annotate(task["id"], "achievement", False)
    client.relabel(ann_id, "plan", True)
    with pytest.raises(StudioError, match="unknown category"):
        client.relabel(ann_id, "bogus", False)
    exported = next(t for t in client.export(res.project_id) if t["data"]["unit_index"] == 0)
    assert [a["id"] for a in exported["annotations"]] == [ann_id]
    rows = build_rows([exported], LabelSchema.default()).rows
    assert (rows[0]["category"], rows[0]["metric"]) == (2, 1)  # plan, metric yes


def test_predictions_attach_with_score_and_uncertainty(client: StudioClient) -> None:
    title = _title("pred")
    res = client.push(REPORTS[3:4], title, predictions=FakePredictor())
    assert res.predictions == res.created
    tasks = client.tasks(res.project_id, with_annotations=True)
    t = next(t for t in tasks if t["data"]["kind"] == "heading")
    assert t["data"]["uncertainty"] == pytest.approx(0.45)
    (pred,) = t["predictions"]
    assert pred["model_version"] == "fake-1" and pred["score"] == pytest.approx(0.55)
    assert pred["result"][0]["from_name"] == "model_suggestion"
    assert pred["result"][0]["value"]["text"][0].startswith("计划/打算（按 3）")
    again = client.push(REPORTS[3:4], title, predictions=FakePredictor())
    assert again.predictions == 0
    tasks = client.tasks(res.project_id, with_annotations=True)
    assert all(len(t["predictions"]) == 1 for t in tasks)


def test_labels_not_in_the_config_are_refused(client: StudioClient, tmp_path: Path) -> None:
    title = _title("badlabel")
    with pytest.raises(StudioError, match=r"categories \['bogus'\] not in the label schema"):
        client.push(REPORTS[3:4], title, predictions=FakePredictor(bad_label="bogus"))
    res = client.push(REPORTS[3:4], title)
    tid = client.tasks(res.project_id)[0]["id"]
    bad = {
        "task": tid, "model_version": "bad", "score": 0.5,
        "result": [{"from_name": "category", "to_name": "text", "type": "choices",
                    "value": {"choices": ["bogus"]}}],
    }  # fmt: skip
    # The server runs with the prediction-validation feature flag: HTTP 400, not stored.
    with pytest.raises(StudioError, match=r"refused the request \(400\)"):
        client.add_predictions(res.project_id, [bad])
    assert client.tasks(res.project_id, with_annotations=True)[0]["predictions"] == []
    # An annotation with a label outside the schema reaches the export: data.py names it.
    client.ls.annotations.create(id=tid, result=bad["result"])
    out = client.pull(title, tmp_path / "bad.json").path
    with pytest.raises(AnnotationError, match=rf"'bogus' in task\(s\) \[{tid}\]"):
        build_rows(load_annotations(out))


def test_wrong_token(studio_server) -> None:
    bad = StudioClient(studio_server.url, "not-the-token", max_retries=0)
    with pytest.raises(StudioError, match=r"401.*check the token"):
        bad.check()


def test_server_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.free_port()}"
    with pytest.raises(StudioError, match=r"connection refused.*sectioncls studio serve"):
        StudioClient(url, "x" * 40, max_retries=0).push(REPORTS[:1], "nowhere")


def test_pull_unknown_project(client: StudioClient, tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="no project titled 'does-not-exist'"):
        client.pull("does-not-exist", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_port_taken_is_refused(studio_server, tmp_path: Path) -> None:
    port = int(studio_server.url.rsplit(":", 1)[1])
    with pytest.raises(StudioError, match=f"port {port} is already in use.*{port + 1}"):
        server.start(home=tmp_path, port=port, venv=REPO / ".venv-studio")
