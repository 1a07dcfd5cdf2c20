"""Label Studio JSON exports → training data, report-level splits, annotator agreement.

Policy for a task with several annotations (documented here because it decides the labels):

1. Only *valid* annotations count: not `was_cancelled` (skipped), with a non-empty `result`
   that contains a category choice. If one annotator (`completed_by`) left several, only their
   latest counts, so re-submitting does not double a vote.
2. If any valid annotation is marked `ground_truth`, it wins (the latest one if several).
3. Otherwise `category` and `metric` are each decided by majority vote.
4. A tie (e.g. one annotator says `plan`, another `achievement`) is *not* broken by chance:
   with `on_tie="skip"` (default) the unit is left out of the dataset and listed in
   `BuildResult.ties` so someone can adjudicate it (mark a ground truth in Label Studio);
   `on_tie="raise"` raises `AnnotationError` naming the tasks instead.

Tasks without a valid annotation are skipped and counted. A label that is not in the schema is an
error naming the task ids: silently dropping it would hide a config/schema mismatch.
Rows are keyed by (doc_id, unit_index); the same unit in several export files (e.g. one project
per annotator) has its annotations merged before the policy above is applied.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sectioncls.errors import SectionClsError
from sectioncls.inputs import RECORD_FIELDS, position_word, record_defaults
from sectioncls.schema import CATEGORY_CONTROL, METRIC_CHOICE, LabelSchema

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict, Features

__all__ = [
    "HELD_OUT",
    "AgreementResult",
    "AnnotationError",
    "BuildResult",
    "Label",
    "Tie",
    "agreement",
    "build_rows",
    "features",
    "leave_one_report_out",
    "load_annotations",
    "load_dataset",
    "resolve_task",
    "split_by_report",
    "to_dataset",
]

PathLike = str | os.PathLike[str]
TieMode = Literal["skip", "raise"]


class AnnotationError(SectionClsError, ValueError):
    """An export that cannot be turned into labels; the message says which file/tasks and why."""


@dataclass(frozen=True, slots=True)
class Label:
    """One annotator's (or the resolved) answer for a unit."""

    category: str
    metric: int  # 0/1
    source: str = "single"  # "ground_truth" | "majority" | "single"


@dataclass(frozen=True, slots=True)
class Tie:
    """A unit whose annotations disagree with no majority; needs adjudication."""

    task_ids: tuple[int, ...]
    doc_id: str
    unit_index: int
    text: str
    field: str  # "category" or "metric"
    votes: dict[str, int]


@dataclass(slots=True)
class BuildResult:
    """Rows for the dataset plus what was left out and why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    n_tasks: int = 0
    n_unannotated: int = 0  # no valid annotation (none, only skipped, or empty results)
    n_cancelled: int = 0  # skipped/cancelled annotations ignored
    n_empty: int = 0  # annotations with an empty or category-less result ignored
    ties: list[Tie] = field(default_factory=list)

    def fingerprint(self) -> str:
        """A short hash of what training sees (each unit's report, place, text and labels), so
        results can say which annotations they were measured on; re-exports of the same labels
        hash the same."""
        import hashlib

        h = hashlib.sha256()
        for r in self.rows:
            key = (r["doc_id"], r["unit_index"], r["text"], r["category"], bool(r["metric"]))
            h.update(json.dumps(key, ensure_ascii=False).encode("utf-8"))
        return h.hexdigest()[:16]

    def summary(self) -> str:
        return (
            f"{len(self.rows)} labelled units from {self.n_tasks} tasks; skipped: "
            f"{self.n_unannotated} without a valid annotation, {len(self.ties)} ties; ignored "
            f"annotations: {self.n_cancelled} cancelled, {self.n_empty} empty"
        )


# ----------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class ExportMapping:
    """How to read the export of a Label Studio project that sectioncls did not create.

    `text`, `doc_id` and `unit_index` name the task data fields that hold the unit, its report
    and its place; with `doc_id` None every task of the file is one report named after the
    file, with `unit_index` None the order is the task ids'. `category_control` and
    `metric_control` are the `from_name`s of the choices; `values` maps their choice values to
    the schema's categories (unmapped values are kept as they are), `metric_yes` is the choice
    that means "has a metric"."""

    text: str = "text"
    doc_id: str | None = "doc_id"
    unit_index: str | None = "unit_index"
    category_control: str = CATEGORY_CONTROL
    metric_control: str | None = None  # None: the schema's metric name
    metric_yes: str = METRIC_CHOICE
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "mapping") -> ExportMapping:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AnnotationError(
                f"{source}: unknown mapping key(s) {unknown}; use {sorted(known)}"
            )
        return cls(**data)

    def apply(self, tasks: list[dict[str, Any]], source: str, metric_name: str) -> None:
        """Rewrite tasks in place into the form `sectioncls studio push` creates."""
        stem = Path(source).stem
        missing = [t.get("id") for t in tasks if self.text not in (t.get("data") or {})]
        if missing:
            raise AnnotationError(
                f"{source}: task(s) {missing[:10]} have no data field {self.text!r} (the "
                "mapping's `text`); name the field that holds the unit's text"
            )
        by_doc: dict[str, list[dict[str, Any]]] = {}
        for t in tasks:
            d = t["data"]
            doc = str(d.get(self.doc_id, stem)) if self.doc_id else stem
            by_doc.setdefault(doc, []).append(t)
        for doc, group in by_doc.items():
            if self.unit_index is None:
                group.sort(key=lambda t: int(t.get("id") or 0))
            for i, t in enumerate(group):
                d = t["data"]
                index = d.get(self.unit_index, i) if self.unit_index else i
                t["data"] = {**d, "text": d[self.text], "doc_id": doc, "unit_index": int(index)}
                for ann in t.get("annotations") or []:
                    ann["result"] = [self._item(r, metric_name) for r in ann.get("result") or []]

    def _item(self, item: Any, metric_name: str) -> Any:
        if not isinstance(item, dict):
            return item
        value = dict(item.get("value") or {})
        choices = [str(c) for c in value.get("choices") or []]
        if item.get("from_name") == self.category_control:
            value["choices"] = [self.values.get(c, c) for c in choices]
            return {**item, "from_name": CATEGORY_CONTROL, "value": value}
        if item.get("from_name") == (self.metric_control or metric_name):
            value["choices"] = [METRIC_CHOICE if c == self.metric_yes else c for c in choices]
            return {**item, "from_name": metric_name, "value": value}
        return item


HELD_OUT = "heldout"  # `split` of tasks kept for scoring models (annotations/heldout.json)


def load_annotations(
    paths: PathLike | Sequence[PathLike],
    mappings: dict[str, ExportMapping] | None = None,
    metric_name: str = "metric",
    *,
    for_training: bool = False,
) -> list[dict[str, Any]]:
    """Read one or more Label Studio JSON exports into one task list (merged later by unit).
    `mappings` (export path -> ExportMapping) reads exports of projects made elsewhere.
    `for_training` refuses an export of held-out reports (`split: heldout`): a model that has
    seen them can no longer be scored on them."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise AnnotationError("no export files given")
    mapped = {str(Path(k)): v for k, v in (mappings or {}).items()}
    tasks: list[dict[str, Any]] = []
    for path in paths:
        p = Path(path)
        try:
            raw = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AnnotationError(
                f"{p}: export file not found (create it with `sectioncls studio pull`)"
            ) from None
        except IsADirectoryError:
            raise AnnotationError(f"{p}: is a directory, not an export file") from None
        except UnicodeDecodeError:
            raise AnnotationError(f"{p}: not UTF-8 text, so not a Label Studio export") from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        mapping = mapped.get(str(p))
        if mapping is not None and isinstance(data, list):
            mapping.apply(
                [t for t in data if isinstance(t, dict) and isinstance(t.get("data"), dict)],
                str(p),
                metric_name,
            )
        checked = _check_export(data, str(p))
        if for_training and any(t["data"].get("split") == HELD_OUT for t in checked):
            raise AnnotationError(
                f"{p}: holds reports kept out of training (split: {HELD_OUT}) to score models "
                "on reports they never saw; score with it (`sectioncls score`), do not train on it"
            )
        tasks.extend(checked)
    return tasks


def _check_export(data: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "data" in data and "id" in data:
        data = [data]  # a single task
    if not isinstance(data, list):
        raise AnnotationError(
            f"{source}: not a Label Studio JSON export (expected a list of tasks, "
            f"got {type(data).__name__})"
        )
    for i, task in enumerate(data):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            hint = ""
            if isinstance(task, dict) and "text" in task:
                hint = " It looks like a JSON-MIN/CSV-style export; export as JSON instead."
            raise AnnotationError(
                f"{source}: item {i} is not a Label Studio task (no 'data' object).{hint}"
            )
        missing = [k for k in ("doc_id", "unit_index", "text") if k not in task["data"]]
        if missing:
            raise AnnotationError(
                f"{source}: task {task.get('id', i)} lacks data field(s) {missing}; "
                "was this project created by `sectioncls studio push`? For a project made "
                "elsewhere, give a `mappings` entry for this file in the run config"
            )
        anns = task.get("annotations", [])
        if not isinstance(anns, list):
            raise AnnotationError(f"{source}: task {task.get('id', i)} has non-list annotations")
        task.setdefault("_source", source)
    return data


# ----------------------------------------------------------------------------- labels
def parse_result(result: list[Any], metric_name: str) -> tuple[str | None, int, list[str]]:
    """(category or None, metric 0/1, unknown metric choices) from one annotation's result."""
    category: str | None = None
    metric = 0
    bad: list[str] = []
    for item in result or []:
        if not isinstance(item, dict):
            continue
        choices = (item.get("value") or {}).get("choices") or []
        name = item.get("from_name")
        if name == CATEGORY_CONTROL and choices:
            category = str(choices[0])
            if len(choices) > 1:
                bad.append(f"several categories {choices}")
        elif name == metric_name:
            for c in choices:
                if c == METRIC_CHOICE:
                    metric = 1
                else:
                    bad.append(f"metric choice {c!r}")
    return category, metric, bad


def _annotation_order(a: dict[str, Any]) -> tuple[str, int]:
    return (str(a.get("updated_at") or a.get("created_at") or ""), int(a.get("id") or 0))


def task_labels(
    task: dict[str, Any], schema: LabelSchema, counts: BuildResult | None = None
) -> list[tuple[Label, bool, Any]]:
    """Valid (label, is_ground_truth, annotator) triples of a task, latest per annotator.

    Raises AnnotationError for labels not in the schema (caller aggregates task ids)."""
    valid: dict[Any, tuple[tuple[str, int], Label, bool]] = {}
    unknown: list[str] = []
    for i, ann in enumerate(task.get("annotations") or []):
        if ann.get("was_cancelled"):
            if counts is not None:
                counts.n_cancelled += 1
            continue
        category, metric, bad = parse_result(ann.get("result") or [], schema.metric.name)
        unknown.extend(bad)
        if category is None:
            if counts is not None:
                counts.n_empty += 1
            continue
        if category not in schema.category2id:
            unknown.append(f"category {category!r}")
            continue
        who = ann.get("completed_by")
        who = who.get("id") if isinstance(who, dict) else who
        key = who if who is not None else f"anon-{i}"
        order = _annotation_order(ann)
        label = Label(category, metric)
        if key not in valid or order >= valid[key][0]:
            valid[key] = (order, label, bool(ann.get("ground_truth")))
    if unknown:
        raise AnnotationError("; ".join(sorted(set(unknown))))
    return [(lab, gt, who) for who, (_, lab, gt) in valid.items()]


def resolve_task(
    labels: Sequence[tuple[Label, bool, Any]],
) -> tuple[Label | None, tuple[str, dict[str, int]] | None]:
    """Apply the module's policy: (label, None) or (None, (tied field, votes)); (None, None) if
    there is nothing to resolve."""
    if not labels:
        return None, None
    gts = [lab for lab, gt, _ in labels if gt]
    if gts:
        lab = gts[-1]
        return Label(lab.category, lab.metric, "ground_truth"), None
    if len(labels) == 1:
        return Label(labels[0][0].category, labels[0][0].metric, "single"), None
    cat_votes = Counter(lab.category for lab, _, _ in labels)
    met_votes = Counter("yes" if lab.metric else "no" for lab, _, _ in labels)
    for name, votes in (("category", cat_votes), ("metric", met_votes)):
        top = votes.most_common()
        if len(top) > 1 and top[0][1] == top[1][1]:
            return None, (name, dict(sorted(votes.items())))
    category = cat_votes.most_common(1)[0][0]
    metric = 1 if met_votes.most_common(1)[0][0] == "yes" else 0
    return Label(category, metric, "majority"), None


def _merge_by_unit(tasks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge tasks that are the same unit (doc_id, unit_index), e.g. from two projects."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for task in tasks:
        d = task["data"]
        key = (str(d["doc_id"]), int(d["unit_index"]))
        if key not in merged:
            merged[key] = {
                **task,
                "annotations": list(task.get("annotations") or []),
                "_task_ids": [task.get("id")],
            }
            continue
        have = merged[key]
        if have["data"].get("text") != d.get("text"):
            raise AnnotationError(
                f"unit {key[0]}#{key[1]} has different text in task {have.get('id')} "
                f"({have.get('_source')}) and task {task.get('id')} ({task.get('_source')}); "
                "the report was re-segmented between pushes, so these labels do not line up"
            )
        have["annotations"].extend(task.get("annotations") or [])
        have["_task_ids"].append(task.get("id"))
    return list(merged.values())


def build_rows(
    tasks: Iterable[dict[str, Any]],
    schema: LabelSchema | None = None,
    *,
    on_tie: TieMode = "skip",
) -> BuildResult:
    """Resolve every task's labels into dataset rows (see the module docstring for the policy)."""
    schema = schema or LabelSchema.default()
    if on_tie not in ("skip", "raise"):
        raise ValueError(f"on_tie must be 'skip' or 'raise', not {on_tie!r}")
    out = BuildResult()
    unknown: dict[str, list[Any]] = {}
    merged = _merge_by_unit(tasks)
    # Every unit of a report is a task (labelled or not), so the count gives each position.
    n_units: dict[str, int] = {}
    for task in merged:
        d = task["data"]
        doc = str(d["doc_id"])
        n_units[doc] = max(n_units.get(doc, 0), int(d["unit_index"]) + 1)
    for task in merged:
        out.n_tasks += 1
        d = task["data"]
        try:
            labels = task_labels(task, schema, out)
        except AnnotationError as exc:
            unknown.setdefault(str(exc), []).extend(task["_task_ids"])
            continue
        label, tie = resolve_task(labels)
        if tie is not None:
            out.ties.append(
                Tie(
                    tuple(task["_task_ids"]),
                    str(d["doc_id"]),
                    int(d["unit_index"]),
                    str(d.get("text", "")),
                    tie[0],
                    tie[1],
                )
            )
            continue
        if label is None:
            out.n_unannotated += 1
            continue
        # None -> "" everywhere (section too), as the tagger builds its inputs at inference
        row: dict[str, Any] = record_defaults(d)
        row["doc_id"] = str(d["doc_id"])
        if not row["position"]:
            row["position"] = position_word(int(d["unit_index"]), n_units[row["doc_id"]])
        # Written (synthetic) reports train the model but are never a reported real figure.
        row["source"] = str(d.get("source") or "real")
        row["unit_index"] = int(d["unit_index"])
        row["category"] = schema.category2id[label.category]
        row["metric"] = label.metric
        row["label_source"] = label.source
        row["n_annotations"] = len(labels)
        out.rows.append(row)
    if unknown:
        schema_hint = f"schema categories: {list(schema.categories)}"
        parts = [f"{why} in task(s) {sorted(set(ids), key=str)}" for why, ids in unknown.items()]
        raise AnnotationError("labels not in the schema: " + "; ".join(parts) + f" ({schema_hint})")
    if out.ties and on_tie == "raise":
        desc = "; ".join(f"task(s) {list(t.task_ids)} {t.field} {t.votes}" for t in out.ties)
        raise AnnotationError(
            f"{len(out.ties)} unit(s) with tied annotations: {desc}. Adjudicate them by marking "
            "one annotation as ground truth in Label Studio."
        )
    out.rows.sort(key=lambda r: (r["doc_id"], r["unit_index"]))
    return out


# ----------------------------------------------------------------------------- datasets
def features(schema: LabelSchema | None = None) -> Features:
    """The dataset's features; `category` is a ClassLabel in the schema's id order."""
    from datasets import ClassLabel, Features, Value

    schema = schema or LabelSchema.default()
    return Features(
        {
            **{k: Value("string") for k in RECORD_FIELDS},
            "doc_id": Value("string"),
            "source": Value("string"),
            "unit_index": Value("int32"),
            "category": ClassLabel(names=list(schema.categories)),
            "metric": ClassLabel(names=["no", "yes"]),
            "label_source": Value("string"),
            "n_annotations": Value("int32"),
        }
    )


def to_dataset(result: BuildResult, schema: LabelSchema | None = None) -> Dataset:
    from datasets import Dataset

    feats = features(schema)
    cols = {name: [row[name] for row in result.rows] for name in feats}
    return Dataset.from_dict(cols, features=feats)


def load_dataset(
    paths: PathLike | Sequence[PathLike],
    schema: LabelSchema | None = None,
    *,
    on_tie: TieMode = "skip",
    dev_reports: Iterable[str] | None = None,
    mappings: dict[str, ExportMapping] | None = None,
    for_training: bool = False,
) -> tuple[DatasetDict, BuildResult]:
    """Exports → DatasetDict ('train', plus 'dev' when `dev_reports` is given) and the report of
    what was left out. `for_training` refuses held-out exports (`load_annotations`)."""
    from datasets import DatasetDict

    metric_name = (schema or LabelSchema.default()).metric.name
    tasks = load_annotations(paths, mappings, metric_name, for_training=for_training)
    result = build_rows(tasks, schema, on_tie=on_tie)
    ds = to_dataset(result, schema)
    if dev_reports is None:
        return DatasetDict({"train": ds}), result
    return split_by_report(ds, dev_reports=dev_reports), result


def _as_dataset(ds: Dataset | DatasetDict) -> Dataset:
    from datasets import DatasetDict, concatenate_datasets

    if isinstance(ds, DatasetDict):
        return concatenate_datasets(list(ds.values()))
    return ds


def split_by_report(
    ds: Dataset | DatasetDict,
    dev_reports: Iterable[str],
    test_reports: Iterable[str] = (),
) -> DatasetDict:
    """Split by whole reports, never by unit: units of one report share headings and phrasing,
    so a unit-level split would leak the answer into dev."""
    from datasets import DatasetDict

    full = _as_dataset(ds)
    dev, test = set(dev_reports), set(test_reports)
    if not dev:
        raise ValueError("dev_reports is empty")
    if dev & test:
        raise ValueError(f"reports in both dev and test: {sorted(dev & test)}")
    present = set(full["doc_id"])
    missing = sorted((dev | test) - present)
    if missing:
        raise ValueError(f"report(s) {missing} have no labelled units; present: {sorted(present)}")
    out = {
        "train": full.filter(lambda r: r["doc_id"] not in dev and r["doc_id"] not in test),
        "dev": full.filter(lambda r: r["doc_id"] in dev),
    }
    if test:
        out["test"] = full.filter(lambda r: r["doc_id"] in test)
    return DatasetDict(out)


def leave_one_report_out(ds: Dataset | DatasetDict) -> Iterator[tuple[str, DatasetDict]]:
    """Yield (held-out doc_id, DatasetDict(train=other reports, dev=that report)) per report."""
    full = _as_dataset(ds)
    reports = sorted(set(full["doc_id"]))
    if len(reports) < 2:
        raise ValueError(f"leave-one-report-out needs at least 2 reports, found {reports}")
    for doc_id in reports:
        yield doc_id, split_by_report(full, dev_reports=[doc_id])


# ----------------------------------------------------------------------------- agreement
@dataclass(slots=True)
class AgreementResult:
    """Cohen's kappa between two annotators on the units both labelled (None if undefined, e.g.
    both used a single label throughout)."""

    annotator_a: str
    annotator_b: str
    n_shared: int
    category_kappa: float | None
    metric_kappa: float | None
    category_agreement: float  # raw share of identical answers
    metric_agreement: float
    disagreements: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotator_a": self.annotator_a,
            "annotator_b": self.annotator_b,
            "n_shared": self.n_shared,
            "category_kappa": self.category_kappa,
            "metric_kappa": self.metric_kappa,
            "category_agreement": self.category_agreement,
            "metric_agreement": self.metric_agreement,
            "disagreements": self.disagreements,
        }


def _kappa(a: list[Any], b: list[Any], labels: list[Any]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if not a or (len(set(a) | set(b)) < 2):
        return None  # expected agreement is 1: kappa is 0/0
    k = float(cohen_kappa_score(a, b, labels=labels))
    return None if math.isnan(k) else k


def _labels_by_unit(
    tasks: list[dict[str, Any]], schema: LabelSchema
) -> tuple[dict[tuple[str, int], Label], dict[tuple[str, int], dict[str, Any]]]:
    labels, data = {}, {}
    for task in _merge_by_unit(tasks):
        d = task["data"]
        key = (str(d["doc_id"]), int(d["unit_index"]))
        try:
            lab, _ = resolve_task(task_labels(task, schema))
        except AnnotationError as exc:
            raise AnnotationError(f"task(s) {task['_task_ids']}: {exc}") from None
        if lab is not None:
            labels[key] = lab
            data[key] = d
    return labels, data


def _per_annotator(
    tasks: list[dict[str, Any]], schema: LabelSchema
) -> dict[str, dict[tuple[str, int], Label]]:
    by: dict[str, dict[tuple[str, int], Label]] = {}
    for task in _merge_by_unit(tasks):
        d = task["data"]
        key = (str(d["doc_id"]), int(d["unit_index"]))
        try:
            triples = task_labels(task, schema)
        except AnnotationError as exc:
            raise AnnotationError(f"task(s) {task['_task_ids']}: {exc}") from None
        for lab, _, who in triples:
            by.setdefault(str(who), {})[key] = lab
    return by


def agreement(
    export_a: PathLike | list[dict[str, Any]],
    export_b: PathLike | list[dict[str, Any]] | None = None,
    schema: LabelSchema | None = None,
) -> AgreementResult:
    """Cohen's kappa for category and metric between two exports (one annotator each, resolved
    per the module policy), or, with one export, between the two annotators who share the most
    units in it (Label Studio Community has no agreement statistics of its own)."""
    schema = schema or LabelSchema.default()

    def _load(x: PathLike | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return (
            load_annotations(x) if isinstance(x, str | os.PathLike) else _check_export(x, "<tasks>")
        )

    tasks_a = _load(export_a)
    units: dict[tuple[str, int], dict[str, Any]] = {}
    if export_b is not None:
        tasks_b = _load(export_b)
        la, da = _labels_by_unit(tasks_a, schema)
        lb, db = _labels_by_unit(tasks_b, schema)
        units = {**db, **da}
        name_a = str(export_a) if not isinstance(export_a, list) else "A"
        name_b = str(export_b) if not isinstance(export_b, list) else "B"
    else:
        by = _per_annotator(tasks_a, schema)
        units = {
            (str(t["data"]["doc_id"]), int(t["data"]["unit_index"])): t["data"] for t in tasks_a
        }
        names = sorted(by)
        if len(names) < 2:
            raise AnnotationError(
                f"agreement needs two annotators; the export has {len(names)} "
                "(give a second export, or have a second annotator label the same tasks)"
            )
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
        name_a, name_b = max(pairs, key=lambda p: (len(by[p[0]].keys() & by[p[1]].keys()), p))
        la, lb = by[name_a], by[name_b]
        name_a, name_b = f"annotator {name_a}", f"annotator {name_b}"
    shared = sorted(la.keys() & lb.keys())
    if not shared:
        raise AnnotationError(f"{name_a} and {name_b} have no labelled unit in common")
    cats = list(schema.categories)
    ca = [la[k].category for k in shared]
    cb = [lb[k].category for k in shared]
    ma = [la[k].metric for k in shared]
    mb = [lb[k].metric for k in shared]
    rows = []
    for k in shared:
        if la[k].category != lb[k].category or la[k].metric != lb[k].metric:
            d = units.get(k, {})
            rows.append(
                {
                    "doc_id": k[0],
                    "unit_index": k[1],
                    "text": d.get("text", ""),
                    "heading_path": d.get("heading_path", ""),
                    "category_a": la[k].category,
                    "category_b": lb[k].category,
                    "metric_a": la[k].metric,
                    "metric_b": lb[k].metric,
                }
            )
    n = len(shared)
    return AgreementResult(
        annotator_a=name_a,
        annotator_b=name_b,
        n_shared=n,
        category_kappa=_kappa(ca, cb, cats),
        metric_kappa=_kappa(ma, mb, [0, 1]),
        category_agreement=sum(x == y for x, y in zip(ca, cb, strict=True)) / n,
        metric_agreement=sum(x == y for x, y in zip(ma, mb, strict=True)) / n,
        disagreements=rows,
    )
