"""Fast checks of the Label Studio helpers that need no server: task data, predictions,
the tagger adapter, environment and error paths of server.py, the CLI wiring."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from sectioncls.inputs import record_defaults
from sectioncls.schema import LabelSchema
from sectioncls.segment import Unit
from sectioncls.studio import StudioError, server
from sectioncls.studio.client import (
    StudioClient,
    TaggerPredictor,
    default_export_path,
    prediction_for,
    task_data,
)

SCHEMA = LabelSchema.default()


def _units() -> list[Unit]:
    h = Unit(0, 0, 7, "二、存在问题", "heading", 1, (), "problem")
    s = Unit(1, 8, 20, "队伍素质有待进一步提高。", "sentence", None, ("二、存在问题",), "problem")
    m = Unit(2, 21, 25, "相关文章", "meta", None, ("二、存在问题",), None)
    return [h, s, m]


def test_task_data_carries_context_and_offsets() -> None:
    rows = task_data(_units(), "r1")
    assert [r["unit_index"] for r in rows] == [0, 1, 2]
    # an empty context field is shown as （无）, and read back as empty for the model
    assert rows[0]["prev_text"] == "（无）" and rows[0]["next_text"] == "队伍素质有待进一步提高。"
    assert rows[1]["prev_text"] == "二、存在问题" and rows[2]["next_text"] == "（无）"
    assert record_defaults(rows[0])["prev_text"] == "" and rows[0]["heading_path"] == "（无）"
    assert rows[1]["header"] == "r1 · 第 2/3 个单元"
    assert rows[1]["heading_path"] == "二、存在问题" and rows[1]["section"] == "problem"
    assert (rows[1]["start"], rows[1]["end"], rows[1]["kind"]) == (8, 20, "sentence")
    assert rows[2]["unit_key"] == "r1#2" and rows[2]["section"] is None
    json.dumps(rows)  # task data must be JSON


def test_prediction_score_and_uncertainty() -> None:
    pred = {
        "category": "plan",
        "scores": {"achievement": 0.1, "problem": 0.1, "plan": 0.7, "other": 0.1},
        "metric": True,
        "metric_score": 0.9,
    }
    result, score, unc = prediction_for(pred, SCHEMA)
    # the suggestion is text in the read-only model box, never the annotator's own controls
    assert result == [
        {
            "from_name": "model_suggestion",
            "to_name": "text",
            "type": "textarea",
            "value": {"text": ["计划/打算（按 3）· 含量化指标：是 · 把握 0.70"]},
        }
    ]
    assert score == pytest.approx(0.7) and unc == pytest.approx(0.3)
    # metric "no" with P(yes) = 0.45 is the least confident answer here
    result, score, unc = prediction_for({**pred, "metric": False, "metric_score": 0.45}, SCHEMA)
    assert result[0]["value"]["text"] == ["计划/打算（按 3）· 含量化指标：否 · 把握 0.55"]
    assert score == pytest.approx(0.55) and unc == pytest.approx(0.45)


class _FakeTagger:
    categories = ("achievement", "problem", "plan", "other")
    metric_threshold = 0.5
    name = ""

    def predict_units(self, units):
        assert units[0]["text"] == "二、存在问题"
        p = np.array([[0.1, 0.7, 0.1, 0.1], [0.2, 0.6, 0.1, 0.1], [0, 0, 0.05, 0.95]])
        return p.astype(np.float32), np.array([0.1, 0.8, 0.0], np.float32)


def test_tagger_adapter_fits_the_predictor_protocol() -> None:
    pred = TaggerPredictor(_FakeTagger(), model_version="m1")
    out = pred.predict_units(_units())
    assert [o["category"] for o in out] == ["problem", "problem", "other"]
    assert [o["metric"] for o in out] == [False, True, False]
    assert out[1]["metric_score"] == pytest.approx(0.8)
    assert pred.model_version == "m1"
    assert TaggerPredictor(_FakeTagger()).model_version == "sectioncls"


def test_export_path_is_safe() -> None:
    assert default_export_path("reports 2024/v1") == Path("annotations/reports_2024_v1.json")


def test_connect_without_server_says_how_to_start(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(StudioError, match="sectioncls studio serve"):
        StudioClient.connect(home=tmp_path)


def test_server_env_is_clean() -> None:
    base = {"HOST": "0.0.0.0", "PORT": "1", "DEBUG": "1", "USERNAME": "u", "PASSWORD": "p",
            "LABEL_STUDIO_HOST": "x", "PATH": "/bin"}  # fmt: skip
    env = server.server_env("/tmp/d", username="a@b.c", password="pw", token="t" * 20, base=base)
    for k in ("HOST", "PORT", "DEBUG", "USERNAME", "PASSWORD", "LABEL_STUDIO_HOST"):
        assert k not in env
    assert env["PATH"] == "/bin"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"] == "true"
    assert env["LABEL_STUDIO_COLLECT_ANALYTICS"] == "false"
    assert env["LABEL_STUDIO_USER_TOKEN"] == "t" * 20
    assert env["fflag_feat_utc_210_prediction_validation_15082025"] == "true"


def test_missing_venv_says_make_studio_env(tmp_path: Path) -> None:
    with pytest.raises(StudioError, match="make studio-env"):
        server.start(home=tmp_path, venv=tmp_path / "no-venv", port=server.free_port())
    assert server.read_state(tmp_path) is None


def test_port_in_use_is_detected() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert server.port_in_use(port)
    assert not server.port_in_use(server.free_port())


def test_stop_and_status_without_a_server(tmp_path: Path) -> None:
    assert server.stop(tmp_path) is None
    st = server.status(tmp_path)
    assert st.state is None and not st.alive
    (tmp_path / server.STATE_FILE).write_text("{broken", encoding="utf-8")
    with pytest.raises(StudioError, match="damaged"):
        server.status(tmp_path)


def test_cli_registers_studio_commands() -> None:
    from sectioncls.studio.cli import register_cli

    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["studio", "push", "a.txt", "b", "--project", "p"])
    assert args.paths == ["a.txt", "b"] and args.project == "p" and callable(args.func)
    for cmd in (["serve"], ["stop"], ["status"], ["pull", "--project", "p"],
                ["agreement", "x.json"], ["install"]):  # fmt: skip
        assert callable(parser.parse_args(["studio", *cmd]).func)


def test_plan_push_is_the_diff_against_the_server_without_io():
    from sectioncls.studio.client import PreparedReport, plan_push

    def row(i, text):
        return {"doc_id": "d", "unit_index": i, "text": text, "unit_key": f"d#{i}"}

    pred = {"model_version": "m1", "score": 0.9, "result": [{"x": 1}]}
    existing = [
        {"id": 1, "data": row(0, "同"), "total_annotations": 0,
         "predictions": [{"id": 11, "model_version": "m1", "result": [{"x": 1}]}]},
        {"id": 2, "data": row(1, "旧"), "total_annotations": 0, "predictions": []},
        {"id": 3, "data": row(2, "已标"), "total_annotations": 1, "predictions": []},
        {"id": 4, "data": row(9, "消失"), "total_annotations": 0},
        {"id": 5, "data": {"doc_id": "other", "unit_index": 0, "text": "别的报告"}},
    ]  # fmt: skip
    wanted = PreparedReport(
        "d",
        [row(0, "同"), row(1, "新"), row(2, "改了"), row(3, "新增")],
        [pred, pred, pred, pred],
    )
    plan = plan_push([wanted], existing)
    assert [t["data"]["unit_index"] for t in plan.new_tasks] == [3]
    assert plan.new_tasks[0]["predictions"] == [pred]
    assert [tid for tid, _ in plan.updates] == [2]  # unlabelled and changed: updated in place
    assert plan.unchanged == 2  # the same unit, and the annotated one whose text is kept
    assert plan.stale == ["d#2"] and plan.orphaned == ["d#9"]  # other reports are not touched
    # Unit 0 already has this model's identical prediction; unit 1 gets one; the stale unit
    # is never predicted onto.
    assert [p["task"] for p in plan.new_predictions] == [2]
    assert plan.replaced_predictions == []
