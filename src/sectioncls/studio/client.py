"""Push report units to Label Studio as tasks, pull annotations back, post annotations.

Built on `label-studio-sdk` 2.x. One task per unit, keyed by (doc_id, unit_index): pushing the
same report again updates changed tasks instead of duplicating them. A task that already has
annotations is never rewritten (that would silently re-attach its labels to other text); if its
unit changed it is reported in `PushResult.stale` so someone re-checks it.

Optional pre-annotations come from a `Predictor` (the tagger). They are stored as Label Studio
predictions with `model_version` and `score`, and an `uncertainty` value is written into the
task data so annotators can sort the Data Manager on it (Community Edition has no active
learning of its own). Predictions are suggestions only: an annotation is what a person accepted
or corrected after reading (see docs/annotation-guidelines.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sectioncls.inputs import field_text, record_defaults, unit_records
from sectioncls.schema import (
    CATEGORY_CONTROL,
    EMPTY_FIELD,
    METRIC_CHOICE,
    MODEL_SUGGESTION_CONTROL,
    LabelSchema,
)
from sectioncls.studio import StudioError
from sectioncls.textio import atomic_write, doc_id_from_path, read_report

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from sectioncls.segment import Unit

__all__ = [
    "Predictor",
    "PullResult",
    "PushResult",
    "StudioClient",
    "TaggerPredictor",
    "annotate",
    "default_export_path",
    "label_config",
    "pull",
    "push",
    "task_data",
]

ReportInput = str | os.PathLike[str] | tuple[str, str]
# Task data fields that define a unit; a task is "changed" when one of them differs.
UNIT_FIELDS = (
    "text", "doc_id", "unit_index", "kind", "heading_path", "section", "title",
    "prev_text", "next_text", "start", "end",
)  # fmt: skip
# Context fields the view shows: an empty one is shown as EMPTY_FIELD, not as a blank gap.
SHOWN_FIELDS = ("title", "heading_path", "prev_text", "next_text")
# Task data for people only (header, sort keys): rewritten freely, even on annotated tasks.
DISPLAY_FIELDS = ("uncertainty", "unit_key", "header")
# The project's Data Manager tab: least confident first, so "Label All Tasks" (which serves
# the tab's order; Label Studio's own uncertainty sampling applies only outside the Data
# Manager) and the list agree. The model's input fields are hidden: `section` reads like a label.
QUEUE_TAB = "按模型把握排序（低→高）"
HIDDEN_COLUMNS = [
    "tasks:inner_id", "tasks:data.section", "tasks:data.kind", "tasks:data.position",
    "tasks:data.start", "tasks:data.end", "tasks:data.unit_key", "tasks:data.title",
    "tasks:data.prev_text", "tasks:data.next_text", "tasks:data.heading_path",
    "tasks:annotations_results", "tasks:annotations_ids", "tasks:predictions_results",
    "tasks:predictions_model_versions", "tasks:file_upload", "tasks:storage_filename",
    "tasks:updated_by", "tasks:avg_lead_time", "tasks:draft_exists",
]  # fmt: skip


@runtime_checkable
class Predictor(Protocol):
    """What `push(..., predictions=...)` needs from a model.

    `predict_units` returns one dict per unit: {"category": str, "scores": {category: prob},
    "metric": bool, "metric_score": P(metric = yes)}."""

    model_version: str

    def predict_units(self, units: Sequence[Unit]) -> list[dict[str, Any]]: ...


class TaggerPredictor:
    """Adapts `sectioncls.tagger.ReportTagger` (arrays over unit dicts) to `Predictor`."""

    def __init__(self, tagger: Any, model_version: str | None = None) -> None:
        self.tagger = tagger
        self.model_version = model_version or _model_version(getattr(tagger, "name", ""))
        self.categories = list(tagger.categories)

    def predict_units(self, units: Sequence[Unit]) -> list[dict[str, Any]]:
        from sectioncls.tagger import unit_inputs

        return self.predict_rows(unit_inputs(units), in_order=True)

    def predict_rows(
        self, rows: Sequence[Mapping[str, Any]], in_order: bool = False
    ) -> list[dict[str, Any]]:
        """Predictions for unit rows that carry the model's input fields (task data does; its
        placeholders for empty fields are read as empty). `in_order`: the rows are one whole
        report in reading order, read as such (`ReportTagger.in_order`); tasks that reach the
        ML backend are any subset of any reports, so they are read one by one."""
        p_cat, p_metric = self.tagger.predict_units([{**r, **record_defaults(r)} for r in rows])
        if in_order and hasattr(self.tagger, "in_order"):
            p_cat = self.tagger.in_order(p_cat)
        cats = list(self.tagger.categories)
        threshold = float(getattr(self.tagger, "metric_threshold", 0.5))
        out = []
        for probs, pm in zip(p_cat, p_metric, strict=True):
            scores = {c: round(float(p), 4) for c, p in zip(cats, probs, strict=True)}
            out.append(
                {
                    "category": max(scores, key=lambda c: scores[c]),
                    "scores": scores,
                    "metric": float(pm) >= threshold,
                    "metric_score": round(float(pm), 4),
                }
            )
        return out


def _model_version(name: str) -> str:
    """Checkpoint folder name + weights date, so a retrained model gets a new version."""
    p = Path(name) if name else None
    if p is None:
        return "sectioncls"
    stamp = ""
    for w in ("model.safetensors", "pytorch_model.bin"):
        if (p / w).exists():
            stamp = time.strftime("@%Y%m%d-%H%M%S", time.localtime((p / w).stat().st_mtime))
            break
    return f"{p.name}{stamp}"


@dataclass(slots=True)
class PushResult:
    project_id: int
    project_title: str
    url: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    predictions: int = 0
    stale: list[str] = field(default_factory=list)  # "doc#i": annotated but the unit changed
    orphaned: list[str] = field(default_factory=list)  # tasks whose unit no longer exists


@dataclass(slots=True)
class PreparedReport:
    """A report's tasks as they should be: one data row per unit, and its prediction."""

    doc_id: str
    rows: list[dict[str, Any]]
    predictions: list[dict[str, Any] | None]


@dataclass(slots=True)
class PushPlan:
    """What a push changes on the server, worked out before anything is written."""

    new_tasks: list[dict[str, Any]] = field(default_factory=list)
    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    new_predictions: list[dict[str, Any]] = field(default_factory=list)
    replaced_predictions: list[int] = field(default_factory=list)
    unchanged: int = 0
    stale: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)


def plan_push(prepared: Sequence[PreparedReport], existing: Sequence[dict[str, Any]]) -> PushPlan:
    """Diff the wanted tasks against the server's (no I/O).

    A unit is matched by doc id and unit index. New units become tasks; changed unlabelled
    ones are updated in place; a changed unit that already has annotations keeps its text and
    is listed as stale for someone to re-check (never predicted onto); units that vanished
    from a re-pushed report are listed as orphaned. A prediction replaces the same model
    version's old one only when its result differs."""
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for t in existing:
        d = t.get("data") or {}
        if "doc_id" in d and "unit_index" in d:
            by_key[(str(d["doc_id"]), int(d["unit_index"]))] = t
    plan = PushPlan()
    current: set[tuple[str, int]] = set()
    pushed = {r.doc_id for r in prepared}
    for report in prepared:
        for row, item in zip(report.rows, report.predictions, strict=True):
            key = (report.doc_id, int(row["unit_index"]))
            current.add(key)
            old = by_key.get(key)
            if old is None:
                plan.new_tasks.append({"data": row, **({"predictions": [item]} if item else {})})
                continue
            old_data = old.get("data") or {}
            # compared as the model reads them: （无） shown for an empty field is no change
            changed = any(
                field_text(old_data.get(k)) != field_text(row.get(k)) for k in UNIT_FIELDS
            )
            stale = changed and (old.get("total_annotations") or 0) > 0
            if stale:
                plan.stale.append(f"{report.doc_id}#{key[1]}")
                changed = False  # keep the annotated text; someone must re-check it
                keep = {k: row[k] for k in DISPLAY_FIELDS if k in row}
                row = {**old_data, **keep}
            shown = DISPLAY_FIELDS if stale else (*DISPLAY_FIELDS, *SHOWN_FIELDS)
            data_changed = changed or any(old_data.get(k) != row.get(k) for k in shown)
            if data_changed:
                plan.updates.append((int(old["id"]), {**old_data, **row}))
            else:
                plan.unchanged += 1
            if item is not None and not stale:  # never predict new text onto old
                same = [
                    p for p in (old.get("predictions") or [])
                    if isinstance(p, dict) and p.get("model_version") == item["model_version"]
                ]  # fmt: skip
                if len(same) == 1 and same[0].get("result") == item["result"]:
                    continue
                plan.replaced_predictions.extend(
                    int(p["id"]) for p in same if p.get("id") is not None
                )
                plan.new_predictions.append({"task": int(old["id"]), **item})
    plan.orphaned = sorted(f"{d}#{i}" for d, i in by_key if d in pushed and (d, i) not in current)
    return plan


@dataclass(slots=True)
class PullResult:
    path: Path
    project_id: int
    n_tasks: int
    n_annotations: int
    n_annotated_tasks: int


def label_config(schema: LabelSchema | None = None) -> str:
    """The labeling config the project is created with (same text as configs/label_studio.xml)."""
    return (schema or LabelSchema.default()).label_studio_config()


def default_export_path(project_title: str, root: str | os.PathLike[str] = "annotations") -> Path:
    slug = re.sub(r"[^\w.-]+", "_", project_title, flags=re.UNICODE).strip("_") or "project"
    return Path(root) / f"{slug}.json"


def task_data(units: Sequence[Unit], doc_id: str, **extra: Any) -> list[dict[str, Any]]:
    """Task data for every unit of one report: the model's own input fields (one builder,
    `sectioncls.inputs.unit_records`), offsets and `extra` fields such as `source`."""
    out = []
    records = unit_records(units)
    # The header names the document, not a hash id: its title (or file name) and the unit.
    title = next((r["title"] for r in records if r["title"]), "") or doc_id
    if len(title) > 40:
        title = title[:39] + "…"
    for u, record in zip(units, records, strict=True):
        shown = {k: record[k] or EMPTY_FIELD for k in SHOWN_FIELDS}
        out.append(
            {
                **record,
                **shown,
                "header": f"{title} · 第 {u.index + 1}/{len(units)} 个单元",
                "section": u.section,
                "doc_id": doc_id,
                "unit_index": u.index,
                "start": u.start,
                "end": u.end,
                "unit_key": f"{doc_id}#{u.index}",
                **extra,
            }
        )
    return out


def _load_reports(reports: Iterable[ReportInput]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in reports:
        if isinstance(r, tuple):
            doc_id, text = r
        else:
            doc_id, text = doc_id_from_path(r), read_report(r)
        if doc_id in seen:
            raise StudioError(
                f"two reports map to doc_id {doc_id!r}; rename one (the id is the file name)"
            )
        seen.add(doc_id)
        out.append((doc_id, text))
    if not out:
        raise StudioError("no reports given")
    return out


# ----------------------------------------------------------------------------- predictions
def prediction_for(
    pred: Mapping[str, Any], schema: LabelSchema
) -> tuple[list[dict[str, Any]], float, float]:
    """(LS result, score, uncertainty) for one unit's prediction.

    score = confidence of the least confident of the two answers; uncertainty = 1 - score, so
    sorting the Data Manager by uncertainty (descending) shows the most doubtful units first."""
    category = str(pred["category"])
    scores = dict(pred.get("scores") or {})
    p_cat = float(scores.get(category, 1.0))
    metric = bool(pred.get("metric"))
    p_yes = float(pred.get("metric_score", 1.0 if metric else 0.0))
    p_metric = p_yes if metric else 1.0 - p_yes
    score = round(min(p_cat, p_metric), 4)
    # The suggestion is text in the view's read-only box, never the annotator's own answer:
    # what is stored as an annotation is only what a person chose.
    spec = schema.category(category)
    said = "是" if metric else "否"
    text = f"{spec.name_zh}（按 {spec.hotkey}）· {schema.metric.name_zh}：{said} · 把握 {score:.2f}"
    result: list[dict[str, Any]] = [
        {
            "from_name": MODEL_SUGGESTION_CONTROL,
            "to_name": "text",
            "type": "textarea",
            "value": {"text": [text]},
        }
    ]
    return result, score, round(1.0 - score, 4)


# ----------------------------------------------------------------------------- client
class StudioClient:
    """A thin wrapper over the SDK that turns every failure into a StudioError with a fix."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 60.0,
        max_retries: int = 1,
        schema: LabelSchema | None = None,
    ) -> None:
        try:
            from label_studio_sdk import LabelStudio
        except ImportError:
            raise StudioError(
                "label-studio-sdk is not installed; install the project with the 'studio' extra "
                "(pip install -e '.[studio]')"
            ) from None
        self.url = url.rstrip("/")
        self.token = token
        self.schema = schema or LabelSchema.default()
        self.ls: LabelStudio = LabelStudio(
            base_url=self.url, api_key=token, timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        token: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> StudioClient:
        """URL/token from the arguments, else LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY, else the
        state file written by `sectioncls studio serve`."""
        from sectioncls.studio import server

        url = url or os.environ.get("LABEL_STUDIO_URL")
        token = token or os.environ.get("LABEL_STUDIO_API_KEY")
        if not (url and token):
            state = server.read_state(home)
            if state is None:
                raise StudioError(
                    "no Label Studio server known: start one with `sectioncls studio serve`, or "
                    "pass --url/--token (or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)"
                )
            url, token = url or state.url, token or state.token
        return cls(url, token, **kwargs)

    # ------------------------------------------------------------------ error mapping
    @contextlib.contextmanager
    def _api(self, action: str) -> Iterator[None]:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except StudioError:
            raise
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise StudioError(
                f"{action}: cannot connect to Label Studio at {self.url} (connection refused). "
                "Is it running? Start it with `sectioncls studio serve`."
            ) from None
        except httpx.TimeoutException:
            raise StudioError(
                f"{action}: Label Studio at {self.url} did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise StudioError(f"{action}: HTTP error talking to {self.url}: {exc}") from None
        except ApiError as exc:
            code = exc.status_code
            if code == 401:
                msg = (
                    f"Label Studio at {self.url} rejected the API token (401 Unauthorized); "
                    "check the token (`sectioncls studio status` shows the one the server was "
                    "started with, and legacy tokens must be enabled)"
                )
            elif code == 403:
                msg = f"the token's user may not do this (403 Forbidden): {_body(exc)}"
            elif code == 404:
                msg = f"not found (404) at {self.url}: {_body(exc)}"
            elif code is not None and 400 <= code < 500:
                msg = f"Label Studio refused the request ({code}): {_body(exc)}"
            else:
                msg = f"Label Studio failed ({code}): {_body(exc)}"
            raise StudioError(f"{action}: {msg}") from None

    def check(self) -> None:
        """Fail fast with a clear message if the server is down or the token is wrong."""
        with self._api("checking the server"):
            self.ls.projects.list(page_size=1).items  # noqa: B018 (forces the request)

    # ------------------------------------------------------------------ projects
    def find_project(self, title: str) -> int | None:
        with self._api(f"looking up project {title!r}"):
            ids = [
                p.id for p in self.ls.projects.list(title=title, page_size=100) if p.title == title
            ]
        if len(ids) > 1:
            raise StudioError(f"several projects are titled {title!r} (ids {ids}); rename one")
        return int(ids[0]) if ids else None

    def project_titles(self) -> list[str]:
        with self._api("listing projects"):
            return [str(p.title) for p in self.ls.projects.list(page_size=100)]

    def require_project(self, title: str) -> int:
        pid = self.find_project(title)
        if pid is None:
            raise StudioError(
                f"no project titled {title!r} at {self.url}; existing: {self.project_titles()}. "
                "Create it with `sectioncls studio push ... --project NAME`."
            )
        return pid

    def ensure_project(self, title: str) -> int:
        """The project with this title, created with the committed label config if missing, its
        config updated if it differs (Label Studio refuses changes that orphan annotations)."""
        config = label_config(self.schema)
        pid = self.find_project(title)
        # The guidelines in the annotators' language, shown before labelling and under the
        # info button; predictions fill the view's read-only suggestion box.
        settings = {
            "expert_instruction": self.schema.instructions_html(),
            "show_instruction": True,
            "show_collab_predictions": True,
        }
        with self._api(f"creating/updating project {title!r}"):
            if pid is None:
                p = self.ls.projects.create(
                    title=title,
                    label_config=config,
                    description="报告单元标注：类别 + 量化指标（sectioncls）",
                    show_skip_button=True,
                    enable_empty_annotation=False,
                    **settings,
                )
                return int(p.id)
            current = self.ls.projects.get(pid)
            if (current.label_config or "").strip() != config.strip():
                self.ls.projects.update(pid, label_config=config)
            if any(getattr(current, k, None) != v for k, v in settings.items()):
                self.ls.projects.update(pid, **settings)
        return pid

    def ensure_queue_tab(self, project_id: int) -> None:
        """Order the project's Data Manager by the model's confidence, lowest first, in a tab
        of its own (made once; an annotator's own tabs are left alone)."""
        # Plain HTTP: the SDK's view type carries only filters and ordering, not the title
        # and hidden columns the Data Manager reads.
        import httpx

        data = {
            "title": QUEUE_TAB,
            "type": "list",
            "target": "tasks",
            "ordering": ["tasks:predictions_score"],
            "filters": {"conjunction": "and", "items": []},
            "hiddenColumns": {"explore": HIDDEN_COLUMNS, "labeling": HIDDEN_COLUMNS},
        }
        headers = {"Authorization": f"Token {self.token}"}
        with self._api("setting up the Data Manager tab"):
            views = httpx.get(
                f"{self.url}/api/dm/views/", params={"project": project_id}, headers=headers
            )
            views.raise_for_status()
            if any((v.get("data") or {}).get("title") == QUEUE_TAB for v in views.json()):
                return
            made = httpx.post(
                f"{self.url}/api/dm/views/",
                params={"project": project_id},
                json={"project": project_id, "data": data},
                headers=headers,
            )
            made.raise_for_status()

    # ------------------------------------------------------------------ tasks
    def tasks(self, project_id: int, *, with_annotations: bool = False) -> list[dict[str, Any]]:
        """All tasks of a project as plain dicts (id, data, total_annotations, predictions)."""
        out = []
        with self._api("listing tasks"):
            pager = self.ls.tasks.list(
                project=project_id, fields="all" if with_annotations else "task_only",
                page_size=500,
            )  # fmt: skip
            for t in pager:
                out.append(t.model_dump() if hasattr(t, "model_dump") else dict(t))
        return out

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        with self._api(f"importing {len(tasks)} task(s)"):
            resp = self.ls.projects.import_tasks(project_id, request=tasks, return_task_ids=True)
        ids = getattr(resp, "task_ids", None) or []
        return [int(i) for i in ids]

    def _update_tasks(self, updates: list[tuple[int, dict[str, Any]]]) -> None:
        """PATCH task data one task at a time (the API has no bulk update; ~0.2 s each, and
        parallel writes gain little on the SQLite server while risking 'database is locked')."""
        for task_id, data in updates:
            with self._api(f"updating task {task_id}"):
                self.ls.tasks.update(str(task_id), data=data)

    def add_predictions(self, project_id: int, predictions: list[dict[str, Any]]) -> int:
        """Attach predictions ({task, model_version, score, result}) to existing tasks."""
        if not predictions:
            return 0
        with self._api(f"importing {len(predictions)} prediction(s)"):
            resp = self.ls.projects.import_predictions(project_id, request=predictions)
        return int(getattr(resp, "created", len(predictions)) or 0)

    def push(
        self,
        reports: Iterable[ReportInput],
        project_title: str,
        predictions: Predictor | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> PushResult:
        """Segment reports and make the project hold exactly one task per unit; `extra_data`
        goes into every task (e.g. {"source": "synthetic"} for written reports).

        Four steps: segment (and predict) locally, validate, diff against the server's tasks
        (`plan_push`, no I/O), write the difference."""
        docs = _load_reports(reports)
        extra = set(getattr(predictions, "categories", None) or ()) - set(self.schema.categories)
        if predictions is not None and extra:
            raise StudioError(
                f"model {predictions.model_version!r} predicts {sorted(extra)}, which the "
                f"labelling view ({self.schema.source}: {list(self.schema.categories)}) lacks; "
                "push with --schema and the labels.yaml the model was trained with"
            )
        prepared = [
            self._prepare(doc_id, text, predictions, extra_data) for doc_id, text in docs
        ]  # every report is segmented and validated before the server is touched
        self.check()
        pid = self.ensure_project(project_title)
        existing = self.tasks(pid, with_annotations=predictions is not None)
        plan = plan_push(prepared, existing)
        result = PushResult(
            project_id=pid,
            project_title=project_title,
            url=self.url,
            unchanged=plan.unchanged,
            stale=plan.stale,
            orphaned=plan.orphaned,
        )
        self._write_plan(pid, plan, predictions, result)
        return result

    def _prepare(
        self,
        doc_id: str,
        text: str,
        predictions: Predictor | None,
        extra_data: dict[str, Any] | None,
    ) -> PreparedReport:
        """One report's task rows (and predictions) as they should be on the server."""
        from sectioncls.segment import segment

        units = segment(text)
        rows = task_data(units, doc_id, **(extra_data or {}))
        items: list[dict[str, Any] | None] = [None] * len(rows)
        if predictions is not None:
            preds = predictions.predict_units(units)
            self._validate_predictions(preds, units, doc_id, predictions)
            for i, row in enumerate(rows):
                res, score, unc = prediction_for(preds[i], self.schema)
                row["uncertainty"] = unc
                items[i] = {"model_version": predictions.model_version, "score": score,
                            "result": res}  # fmt: skip
        return PreparedReport(doc_id, rows, items)

    def _validate_predictions(
        self, preds: list[dict[str, Any]], units: Sequence[Unit], doc_id: str, predictor: Predictor
    ) -> None:
        if len(preds) != len(units):
            raise StudioError(
                f"predictor returned {len(preds)} predictions for {len(units)} units of {doc_id}"
            )
        bad = {str(p.get("category")) for p in preds} - set(self.schema.categories)
        if bad:
            raise StudioError(
                f"predictor {predictor.model_version!r} returned categories {sorted(bad)} not "
                f"in the label schema {list(self.schema.categories)}"
            )

    def _write_plan(
        self, pid: int, plan: PushPlan, predictions: Predictor | None, result: PushResult
    ) -> None:
        """Apply a plan: updates, new tasks in pages of 1,000, replaced predictions."""
        self._update_tasks(plan.updates)
        result.updated = len(plan.updates)
        for start in range(0, len(plan.new_tasks), 1000):
            self.import_tasks(pid, plan.new_tasks[start : start + 1000])
        result.created = len(plan.new_tasks)
        result.predictions += sum(1 for t in plan.new_tasks if t.get("predictions"))
        for pred_id in plan.replaced_predictions:
            with self._api(f"replacing prediction {pred_id}"):
                self.ls.predictions.delete(pred_id)
        result.predictions += self.add_predictions(pid, plan.new_predictions)
        if predictions is not None:
            # Label Studio's uncertainty sampling (lowest prediction score first) for the label
            # stream outside the Data Manager, and the same order in the Data Manager's tab.
            with self._api("setting the project's model version and sampling"):
                self.ls.projects.update(
                    pid, model_version=predictions.model_version, sampling="Uncertainty sampling"
                )
            self.ensure_queue_tab(pid)

    # ------------------------------------------------------------------ annotations
    def annotate(
        self,
        task_id: int,
        category: str,
        metric: bool,
        *,
        lead_time: float | None = None,
        ground_truth: bool = False,
        was_cancelled: bool = False,
        completed_by: int | None = None,
    ) -> int:
        """Post one annotation for a task; returns its id. It is the token's user's unless
        `completed_by` names another user id (entering a second annotator's labels by hand,
        as Community Edition has no overlap queue). A cancelled (skipped) one has no result."""
        result = [] if was_cancelled else self._result(category, metric)
        kwargs: dict[str, Any] = {"result": result, "ground_truth": ground_truth}
        if lead_time is not None:
            kwargs["lead_time"] = float(lead_time)
        if was_cancelled:
            kwargs["was_cancelled"] = True
        if completed_by is not None:
            kwargs["completed_by"] = int(completed_by)
        with self._api(f"annotating task {task_id}"):
            ann = self.ls.annotations.create(id=int(task_id), **kwargs)
        return int(ann.id)

    def relabel(self, annotation_id: int, category: str, metric: bool) -> None:
        """Change an existing annotation's labels in place (a reader revising a decision): the
        annotation keeps its id and author, and its `updated_at` says when it changed."""
        result = self._result(category, metric)
        with self._api(f"updating annotation {annotation_id}"):
            self.ls.annotations.update(id=int(annotation_id), result=result)

    def _result(self, category: str, metric: bool) -> list[dict[str, Any]]:
        """An annotation's result in this project's label config; unknown categories refused."""
        if category not in self.schema.category2id:
            raise StudioError(
                f"unknown category {category!r}; expected one of {list(self.schema.categories)}"
            )
        result: list[dict[str, Any]] = [
            {"from_name": CATEGORY_CONTROL, "to_name": "text", "type": "choices",
             "value": {"choices": [category]}}
        ]  # fmt: skip
        if metric:
            result.append(
                {"from_name": self.schema.metric.name, "to_name": "text", "type": "choices",
                 "value": {"choices": [METRIC_CHOICE]}}
            )  # fmt: skip
        return result

    # ------------------------------------------------------------------ export
    def connect_model(self, project_id: int, url: str, *, title: str = "sectioncls") -> int:
        """Attach a model server (ML backend) to a project; Label Studio validates it by
        calling its /health and /setup, and its error is passed on."""
        with self._api(f"connecting the model at {url}"):
            for ml in self.ls.ml.list(project=project_id) or []:
                if getattr(ml, "url", None) == url:
                    return int(ml.id)
            ml = self.ls.ml.create(project=project_id, url=url, title=title, is_interactive=False)
        return int(ml.id)

    def export(self, project_id: int, *, timeout: float = 120.0) -> list[dict[str, Any]]:
        """A full JSON snapshot export: every task, with all annotations (usual, ground truth
        and skipped; the default filter would drop ground truth) and full predictions."""
        with self._api("creating an export snapshot"):
            snap = self.ls.projects.exports.create(
                project_id,
                title=f"sectioncls pull {time.strftime('%Y-%m-%d %H:%M:%S')}",
                serialization_options={"predictions": {"only_id": False}},
                annotation_filter_options={"usual": True, "ground_truth": True, "skipped": True},
                task_filter_options={"only_with_annotations": False},
            )
            export_id = int(snap.id)
            deadline = time.monotonic() + timeout
            status = getattr(snap, "status", None)
            while status != "completed":
                if status == "failed":
                    raise StudioError(f"export snapshot {export_id} failed on the server")
                if time.monotonic() > deadline:
                    raise StudioError(f"export snapshot {export_id} not ready after {timeout}s")
                time.sleep(0.3)
                status = self.ls.projects.exports.get(project_id, export_id).status
            raw = b"".join(
                self.ls.projects.exports.download(project_id, export_id, export_type="JSON")
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StudioError(f"the export download is not JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise StudioError(f"the export is not a task list (got {type(data).__name__})")
        return data

    def pull(
        self, project_title: str, out_path: str | os.PathLike[str] | None = None
    ) -> PullResult:
        """Export the project and write it atomically (default annotations/<project>.json)."""
        pid = self.require_project(project_title)
        data = self.export(pid)
        path = Path(out_path) if out_path is not None else default_export_path(project_title)
        with atomic_write(path) as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
            fh.write("\n")
        n_ann = sum(len(t.get("annotations") or []) for t in data)
        n_done = sum(1 for t in data if t.get("annotations"))
        return PullResult(path, pid, len(data), n_ann, n_done)


def _body(exc: Any) -> str:
    body = getattr(exc, "body", None)
    text = json.dumps(body, ensure_ascii=False) if isinstance(body, dict | list) else str(body)
    return text[:800]


# ----------------------------------------------------------------------------- functions
def push(
    reports: Iterable[ReportInput],
    project_title: str,
    predictions: Predictor | None = None,
    *,
    client: StudioClient | None = None,
) -> PushResult:
    return (client or StudioClient.connect()).push(reports, project_title, predictions)


def pull(
    project_title: str,
    out_path: str | os.PathLike[str] | None = None,
    *,
    client: StudioClient | None = None,
) -> PullResult:
    return (client or StudioClient.connect()).pull(project_title, out_path)


def annotate(
    project_title: str,
    task_id: int,
    category: str,
    metric: bool,
    lead_time: float | None = None,
    *,
    ground_truth: bool = False,
    was_cancelled: bool = False,
    client: StudioClient | None = None,
) -> int:
    """Post an annotation to a task of the named project (checked, so a task id from another
    project is an error rather than a silent mislabel)."""
    c = client or StudioClient.connect()
    pid = c.require_project(project_title)
    with c._api(f"reading task {task_id}"):
        task = c.ls.tasks.get(str(task_id))
    if int(getattr(task, "project", pid) or pid) != pid:
        raise StudioError(f"task {task_id} is not in project {project_title!r}")
    return c.annotate(
        task_id, category, metric, lead_time=lead_time, ground_truth=ground_truth,
        was_cancelled=was_cancelled,
    )  # fmt: skip
