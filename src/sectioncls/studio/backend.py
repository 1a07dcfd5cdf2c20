"""A live sectioncls model in Label Studio: the ML backend protocol on FastAPI.

Label Studio talks to a connected model over four endpoints: `/health` (is it up), `/setup`
(which model version; an error here is what Label Studio's model page shows), `/predict` (the
prediction for each task as it opens, or for all tasks on request) and `/webhook` (annotation
events, and "start training" from the model page). The reference `label-studio-ml` package on
PyPI pins Flask 1.1, which clashes with this project, so the same endpoints are served here by
FastAPI and uvicorn, bound to 127.0.0.1.

Training started from Label Studio (or by every N new annotations) runs in a background
thread on the project's current export and writes the new checkpoint atomically over the old
one (`atomic_directory`); the model is swapped in only when that finished, and predictions keep
coming from the old one meanwhile. A missing or broken model directory does not stop the
server: `/health` says so and `/setup` and `/predict` answer with the error and the fix.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Module level, not inside create_app: FastAPI resolves the (postponed) annotations of the
# endpoints from this module's globals. This module is imported only to serve a model.
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sectioncls.errors import SectionClsError

__all__ = ["ModelHolder", "TrainingRunner", "create_app"]


class ModelHolder:
    """The tagger being served, its version, and the error if it cannot be loaded."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self._lock = threading.Lock()
        self.predictor: Any = None
        self.schema: Any = None
        self.error: str | None = None
        self.reload()

    def reload(self) -> None:
        """Load (again) from the model directory; on failure keep serving the previous model."""
        from sectioncls.schema import LabelSchema
        from sectioncls.studio.client import TaggerPredictor
        from sectioncls.tagger import ReportTagger

        try:
            tagger = ReportTagger.from_pretrained(self.model_dir)
            stored = getattr(tagger.model.config, "schema", None)
            schema = LabelSchema.from_dict(stored) if stored else LabelSchema.default()
        except (SectionClsError, OSError, ValueError) as exc:
            with self._lock:
                self.error = str(exc)
            return
        with self._lock:
            self.predictor = TaggerPredictor(tagger)
            self.schema = schema
            self.error = None

    @property
    def model_version(self) -> str | None:
        return self.predictor.model_version if self.predictor is not None else None

    def predict(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One Label Studio prediction per task, from the task data the push wrote."""
        from sectioncls.studio.client import prediction_for

        with self._lock:
            predictor, schema = self.predictor, self.schema
        if predictor is None:
            raise SectionClsError(self.error or f"{self.model_dir}: no model loaded")
        rows = [t.get("data") or {} for t in tasks]
        missing = [t.get("id") for t, r in zip(tasks, rows, strict=True) if "text" not in r]
        if missing:
            raise SectionClsError(
                f"task(s) {missing[:10]} have no `text` field: push reports with "
                "`sectioncls studio push` (or map your fields) before connecting the model"
            )
        out = []
        for pred in predictor.predict_rows(rows):
            result, score, _ = prediction_for(pred, schema)
            out.append({"result": result, "score": score, "model_version": predictor.model_version})
        return out


class TrainingRunner:
    """Runs one training at a time in the background and swaps the model in when it is done."""

    def __init__(
        self,
        holder: ModelHolder,
        config: str | Path | None,
        export: Callable[[int], list[dict[str, Any]]] | None,
        train_every: int = 0,
    ) -> None:
        self.holder = holder
        self.config = config
        self.export = export
        self.train_every = train_every
        self.new_annotations = 0
        self.state = "idle"  # idle | training | failed
        self.message = ""
        self.runs = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, project_id: int) -> bool:
        """Start a training run on the project's export; False if one is already running."""
        if self.config is None or self.export is None:
            self.state, self.message = "failed", "training needs --config and a Label Studio server"
            return False
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self.state, self.message = "training", f"project {project_id}"
            self._thread = threading.Thread(target=self._run, args=(project_id,), daemon=True)
            self._thread.start()
        return True

    def annotation_event(self, project_id: int) -> bool:
        """Count a new or changed annotation; start training after every `train_every`."""
        self.new_annotations += 1
        due = self.train_every and self.new_annotations >= self.train_every
        if due and self.start(project_id):
            self.new_annotations = 0
            return True
        return False

    def _run(self, project_id: int) -> None:
        from sectioncls.training import TrainConfig, train

        try:
            tasks = self.export(project_id)  # type: ignore[misc]
            with tempfile.TemporaryDirectory(prefix="sectioncls-backend-") as tmp:
                export = Path(tmp) / f"project-{project_id}.json"
                export.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
                cfg = TrainConfig.from_yaml(
                    self.config,  # type: ignore[arg-type]
                    annotations=[str(export)],
                    output_dir=str(self.holder.model_dir),
                    dev_reports=[],
                )
                train(cfg, progress=False)  # written to a temp dir, swapped in when complete
            self.holder.reload()
            self.runs += 1
            self.state, self.message = "idle", f"trained on project {project_id}"
        except Exception as exc:  # report any failure on /health; the old model keeps serving
            self.state, self.message = "failed", f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def _project_id(body: dict[str, Any]) -> int | None:
    project = body.get("project")
    if isinstance(project, dict):
        project = project.get("id")
    if isinstance(project, str):  # "/predict" sends "12.1700000000"
        project = project.split(".")[0]
    try:
        return int(project) if project is not None else None
    except (TypeError, ValueError):
        return None


def create_app(holder: ModelHolder, runner: TrainingRunner):
    """The FastAPI application Label Studio connects to."""
    app = FastAPI(title="sectioncls ML backend")
    started = time.time()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"status": "ERROR", "error": message})

    @app.get("/health")
    @app.get("/")
    def health() -> dict[str, Any]:
        return {
            "status": "UP",  # the server is up even when the model is not: see model_error
            "model_class": "sectioncls.ReportTagger",
            "model_dir": str(holder.model_dir),
            "model_version": holder.model_version,
            "model_error": holder.error,
            "training": {"state": runner.state, "message": runner.message, "runs": runner.runs},
            "uptime_s": round(time.time() - started, 1),
        }

    @app.post("/setup")
    async def setup(request: Request):
        if holder.predictor is None:
            return error(422, holder.error or "no model loaded")
        return {"model_version": holder.model_version}

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.json()
        tasks = body.get("tasks") or []
        try:
            results = holder.predict(tasks)
        except SectionClsError as exc:
            return error(422, str(exc))
        return {"results": results, "model_version": holder.model_version}

    @app.post("/webhook")
    async def webhook(request: Request):
        body = await request.json()
        action = str(body.get("action") or "")
        pid = _project_id(body)
        if pid is None:
            return error(400, f"webhook {action!r} without a project id")
        if action == "START_TRAINING":
            started_now = runner.start(pid)
        elif action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"):
            started_now = runner.annotation_event(pid)
        else:
            return {"status": "ignored", "action": action}
        return {"status": "ok", "training_started": started_now, "state": runner.state}

    @app.post("/train")
    async def train_endpoint(request: Request):
        body = await request.json()
        pid = _project_id(body)
        if pid is None:
            return error(400, "train without a project id")
        return {"status": "ok", "training_started": runner.start(pid), "state": runner.state}

    return app
