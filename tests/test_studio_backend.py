"""The model in Label Studio: a real `sectioncls studio backend` process connected to a real
Label Studio server, predictions through Label Studio's API, a training run started from Label
Studio, and a broken model directory that leaves the server up with a clear error."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from sectioncls.cli import main
from test_tagger import REPORTS, tiny_model  # noqa: F401 - the shared tiny checkpoint

pytest.importorskip("fastapi")
pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        return json.loads(r.read())


def _start_backend(args: list[str], tmp: Path):
    port = _free_port()
    log = open(tmp / f"backend-{port}.log", "w")  # noqa: SIM115 - closed by the test
    proc = subprocess.Popen(
        [sys.executable, "-m", "sectioncls.cli", "studio", "backend", "--port", str(port), *args],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            return proc, url, _health(url)
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((tmp / f"backend-{port}.log").read_text()) from None
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("backend did not start")


def test_live_model_predicts_and_trains_from_label_studio(
    studio_server,
    tiny_model,  # noqa: F811
    tiny_bert_dir,
    tmp_path,
):
    from sectioncls.studio.client import StudioClient

    url, token = studio_server
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"base_model": str(tiny_bert_dir), "epochs": 1,
                                   "max_seq_length": 32, "context": ["kind"], "batch_size": 8,
                                   "annotations": ["placeholder.json"]}), "utf-8")  # fmt: skip
    conn = ["--url", url, "--token", token]
    proc, backend, health = _start_backend(["--model", str(model), "--config", str(cfg), *conn],
                                           tmp_path)  # fmt: skip
    try:
        assert health["status"] == "UP" and health["model_error"] is None
        version = health["model_version"]
        assert main(["studio", "push", str(REPORTS[3]), "--project", "live", *conn]) == 0
        assert main(["studio", "connect", "--project", "live", "--backend-url", backend,
                     *conn]) == 0  # fmt: skip
        client = StudioClient(url, token)
        pid = client.require_project("live")
        (ml,) = client.ls.ml.list(project=pid)
        # Predictions through Label Studio: it asks the backend for every task.
        client.ls.actions.create(id="retrieve_tasks_predictions", project=pid,
                                 selected_items={"all": True, "excluded": []})  # fmt: skip
        tasks = client.tasks(pid, with_annotations=True)
        got = [p for t in tasks for p in t.get("predictions") or []]
        assert len(got) == len(tasks) and {p["model_version"] for p in got} == {version}
        # Label some units, then start training from Label Studio; the backend keeps serving.
        for t in tasks[:8]:
            client.annotate(int(t["id"]), "achievement", False)
        client.ls.ml.train(id=ml.id)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            h = _health(backend)
            if h["training"]["runs"] >= 1 or h["training"]["state"] == "failed":
                break
            time.sleep(1)
        assert h["training"]["state"] == "idle" and h["training"]["runs"] == 1, h["training"]
        assert h["model_error"] is None
        assert (model / "sectioncls.json").is_file()  # swapped in whole
        assert not list(tmp_path.glob(".model.*"))
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_broken_model_dir_keeps_the_server_up_with_a_clear_error(studio_server, tmp_path):
    url, token = studio_server
    missing = tmp_path / "nothing-here"
    proc, backend, health = _start_backend(["--model", str(missing)], tmp_path)
    try:
        assert health["status"] == "UP" and "no model here" in health["model_error"]
        req = urllib.request.Request(f"{backend}/setup", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert "no model here" in err.value.read().decode()
        conn = ["--url", url, "--token", token]
        assert main(["studio", "push", str(REPORTS[0]), "--project", "broken", *conn]) == 0
        code = main(["studio", "connect", "--project", "broken", "--backend-url", backend, *conn])
        assert code in (0, 2)  # Label Studio may refuse the model, or accept it in error state
        assert _health(backend)["status"] == "UP"  # still serving
    finally:
        proc.terminate()
        proc.wait(10)
