"""Leave-one-report-out cross-validation of the tagger against two baselines, on the same folds.

Units of one report share headings and phrasing, so the only honest test is a report the model
never saw. Each fold trains on the other reports and scores the held-out one; figures are
reported as mean ± std over folds and seeds, with every error written out with its context.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import leave_one_report_out
from .inputs import unit_records
from .perturb import PERTURBATIONS, perturb_report
from .quantities import extract_quantities
from .segment import segment
from .textio import atomic_write

__all__ = [
    "AS_WRITTEN",
    "BASELINES",
    "Fold",
    "System",
    "SystemRun",
    "cross_validate",
    "group_folds",
    "real_folds",
    "rule_baseline",
    "score_tagger",
    "tfidf_baseline",
    "transfer_fold",
    "write_report",
]

SUMMARY_KEYS = ("category_macro_f1", "category_accuracy", "metric_f1", "category_ece")


def _baseline_text(row: dict[str, Any]) -> str:
    return f"{row['text']} | {row['heading_path']}"


@dataclass(slots=True)
class Fold:
    """One train/test split: the model trains once and is scored on every test set (the
    held-out report as written, and perturbed copies of it)."""

    name: str
    train: Any  # datasets.Dataset
    tests: dict[str, Any]


@dataclass(slots=True)
class SystemRun:
    """What one system returns for a fold: (category probs, metric probs) per test set."""

    predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    train_seconds: float | None = None
    # Further systems read off the same trained model (an ablation that costs no training):
    # display-name suffix -> predictions per test set.
    variants: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    # The linear chain the model reads a report with (Transitions.to_dict()), kept beside the
    # predictions so that reading in order can be studied offline from the units-alone output.
    transitions: dict[str, Any] | None = None


def tfidf_baseline(train, tests, categories: list[str], seed: int) -> SystemRun:
    """Character 1–3-gram TF-IDF + logistic regression, one model per answer; input: the unit
    and its heading path."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=1, sublinear_tf=True)
    x_train = vec.fit_transform([_baseline_text(r) for r in train])
    y_cat = np.asarray(train["category"])
    clf = LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0, random_state=seed)
    clf.fit(x_train, y_cat)
    y_metric = np.asarray(train["metric"])
    mclf = None
    if len(set(y_metric.tolist())) > 1:
        mclf = LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0, random_state=seed)
        mclf.fit(x_train, y_metric)
    out = {}
    for name, test in tests.items():
        x_test = vec.transform([_baseline_text(r) for r in test])
        p_cat = np.zeros((len(test), len(categories)))
        p_cat[:, clf.classes_] = clf.predict_proba(x_test)
        if mclf is None:
            p_metric = np.full(len(test), float(y_metric[0]))
        else:
            p_metric = mclf.predict_proba(x_test)[:, 1]
        out[name] = (p_cat, p_metric)
    return SystemRun(out)


def rule_baseline(train, tests, categories: list[str], seed: int) -> SystemRun:
    """The segmenter's section (from the top-level headings' keywords) as the category, `other`
    outside any section; metric = the unit contains a number with a unit."""
    index = {c: i for i, c in enumerate(categories)}
    out = {}
    for name, test in tests.items():
        p_cat = np.zeros((len(test), len(categories)))
        p_metric = np.zeros(len(test))
        for i, row in enumerate(test):
            section = row["section"] if row["section"] in index else "other"
            p_cat[i, index[section]] = 1.0
            p_metric[i] = 1.0 if extract_quantities(row["text"]) else 0.0
        out[name] = (p_cat, p_metric)
    return SystemRun(out)


@dataclass(frozen=True, slots=True)
class System:
    """A system under evaluation: its display name, how it runs on a fold, and what it is.

    `trained` marks the fine-tuned model: it is rerun for every seed and its errors are the
    ones written out; the baselines are deterministic given the fold."""

    name: str
    run: Callable[..., SystemRun]
    trained: bool = False


MODEL = "fine-tuned tagger"  # display name of the fine-tuned model in tables
UNITS_ALONE = ", units alone"  # the same model without reading the report in order
# The same model with int8 dynamic quantisation (torch, CPU), read in order as the tagger reads:
# what `quantize=True` (and `auto` on a CPU without native bf16) gives up, fold by fold.
INT8 = ", int8"
# The same weights through ONNX Runtime's int8 graph (fused, QAttention), scored where the onnx
# extra is installed: the other int8 that `auto` may take, so it needs its own evidence.
INT8_ORT = ", int8 (ONNX Runtime)"
BASELINES: tuple[System, ...] = (
    System("TF-IDF char n-gram + LR", tfidf_baseline),
    System("section rule + number regex", rule_baseline),
)


def _model_system(
    cfg, progress: bool, keep: dict[str, Any] | None = None, int8: bool = False
) -> Callable:
    """The fine-tuned model, trained on the fold. With `keep`, its checkpoint is saved there
    (key "teacher") for a student distilled from it on the same fold. With `int8`, the same
    weights quantised to int8 are scored too (on the CPU, whatever trained the model)."""

    def run(train_ds, tests, categories, seed) -> SystemRun:
        import shutil
        import tempfile

        from datasets import DatasetDict

        from .sequence import Transitions, smooth_groups
        from .training import encode_dataset, predict_dataset, save_checkpoint, train

        fold_cfg = dataclasses.replace(cfg, seed=seed, dev_reports=[], resume=False)
        result, trainer = train(
            fold_cfg, progress=progress, save=False, dataset=DatasetDict({"train": train_ds})
        )
        tokenizer = trainer.processing_class
        chain = getattr(trainer.model.config, "transitions", None)
        transitions = Transitions.from_dict(chain)
        out, alone = {}, {}
        for name, test in tests.items():
            encoded = encode_dataset(test, tokenizer, fold_cfg.inputs)
            p_cat, p_metric = predict_dataset(trainer, encoded)
            # Scored as the tagger tags: each report read in order (sectioncls.sequence).
            smoothed = smooth_groups(p_cat, test["doc_id"], test["unit_index"], transitions)
            out[name] = (smoothed, p_metric)
            alone[name] = (p_cat, p_metric)
        quantized = _int8_predictions(trainer.model, tokenizer, tests, transitions) if int8 else {}
        if keep is not None:
            teacher = Path(tempfile.mkdtemp(prefix="sectioncls-teacher-")) / "model"
            schema = fold_cfg.load_schema()
            save_checkpoint(trainer.model, tokenizer, schema, fold_cfg, result.metrics, teacher)
            keep["teacher"] = teacher
        shutil.rmtree(Path(trainer.args.output_dir), ignore_errors=True)
        variants = {UNITS_ALONE: alone} if transitions is not None else {}
        variants.update(quantized)
        kept = chain if transitions is not None else None  # as the checkpoint stores it
        return SystemRun(out, result.train_seconds, variants, kept)

    return run


def _int8_predictions(model, tokenizer, tests: dict[str, Any], transitions) -> dict[str, Any]:
    """Each test set read by the int8 copies of `model`, as `ReportTagger(quantize=True)` reads:
    torch's dynamic int8 (key INT8) and, with the onnx extra, ONNX Runtime's (INT8_ORT)."""
    import copy
    import tempfile

    from .runtime import onnx_installed
    from .sequence import smooth_groups
    from .tagger import ReportTagger

    def read(tagger: ReportTagger) -> dict[str, Any]:
        out = {}
        for name, test in tests.items():
            p_cat, p_metric = tagger.predict_units(list(test), batch_size=64)
            groups = smooth_groups(p_cat, test["doc_id"], test["unit_index"], transitions)
            out[name] = (groups, p_metric)
        return out

    float_model = copy.deepcopy(model).to("cpu").float()
    variants = {INT8: read(ReportTagger(copy.deepcopy(float_model), tokenizer).quantize())}
    if onnx_installed():
        with tempfile.TemporaryDirectory(prefix="sectioncls-onnx-") as tmp:
            tagger = ReportTagger(float_model, tokenizer).use_onnx(tmp, quantize=True)
            variants[INT8_ORT] = read(tagger)
    return variants


def _student_system(
    student_cfg, progress: bool, keep: dict[str, Any], int8: bool = False
) -> Callable:
    """A student distilled from the fold's own teacher (never from a model that saw the
    held-out report). `distill_from` becomes that teacher, and so does `init_from` when the
    config starts the student from its teacher (init_from equal to distill_from). With `int8`
    the student is scored quantised too: int8 is its fastest path on a CPU without bf16."""

    def run(train_ds, tests, categories, seed) -> SystemRun:
        import shutil

        teacher = keep.pop("teacher", None)
        if teacher is None:
            raise RuntimeError("the student runs after the fine-tuned model of its fold")
        from_teacher = student_cfg.init_from and student_cfg.init_from == student_cfg.distill_from
        fold_cfg = dataclasses.replace(
            student_cfg,
            distill_from=str(teacher),
            init_from=str(teacher) if from_teacher else student_cfg.init_from,
        )
        try:
            return _model_system(fold_cfg, progress, int8=int8)(train_ds, tests, categories, seed)
        finally:
            shutil.rmtree(teacher.parent, ignore_errors=True)

    return run


STUDENT = "distilled student"  # display name (prefix) of a student distilled in every fold


def student_name(student_cfg) -> str:
    """Display name of the distilled student in tables."""
    layers = student_cfg.encoder_layers
    if not layers:
        return STUDENT
    return f"{STUDENT} ({layers} layer{'s' if layers > 1 else ''})"


# ----------------------------------------------------------------------------- folds
AS_WRITTEN = "as written"


def _rows_dataset(rows: list[dict[str, Any]], like):
    from datasets import Dataset

    return Dataset.from_list(rows, features=like.features)


def perturbed_tests(test_ds, text: str, seed: int = 0) -> dict[str, Any]:
    """The held-out report perturbed (see `sectioncls.perturb`), gold labels carried over."""
    gold = {int(r["unit_index"]): r for r in test_ds}
    units = segment(text)
    if [u.index for u in units] != sorted(gold) or any(
        gold[u.index]["text"] != u.text for u in units
    ):
        return {}  # the export does not fit the segmenter's units of this text: nothing to carry
    categories = [test_ds.features["category"].int2str(gold[u.index]["category"]) for u in units]
    out = {}
    for name in PERTURBATIONS:
        p = perturb_report(text, categories, name, seed=seed)
        if p is None:
            continue
        rows = []
        for u, rec, src in zip(p.units, unit_records(p.units), p.source_index, strict=True):
            if src is None:
                continue
            g = gold[src]
            rows.append({**g, **rec, "unit_index": u.index, "section": u.section or ""})
        if rows:
            out[name] = _rows_dataset(rows, test_ds)
    return out


def real_folds(
    dataset,
    texts: dict[str, str] | None = None,
    held_out: Sequence[str] | None = None,
) -> list[Fold]:
    """Leave-one-report-out over the real reports; written reports always train. With the
    reports' texts, each fold also scores perturbed copies of its held-out report."""
    real = dataset.filter(lambda r: r["source"] == "real")
    written = dataset.filter(lambda r: r["source"] != "real")
    reports = sorted(set(real["doc_id"]))
    if held_out:
        reports = [d for d in reports if any(d.startswith(h) for h in held_out)]
        if not reports:
            raise ValueError(f"no real report matches held_out={list(held_out)}")
    elif len(reports) < 2:
        raise ValueError(f"leave-one-report-out needs at least 2 real reports, found {reports}")
    from datasets import concatenate_datasets

    folds = []
    for doc in reports:
        train = concatenate_datasets([real.filter(lambda r, d=doc: r["doc_id"] != d), written])
        test = real.filter(lambda r, d=doc: r["doc_id"] == d)
        tests = {AS_WRITTEN: test}
        if texts and doc in texts:
            tests.update(perturbed_tests(test, texts[doc]))
        folds.append(Fold(doc, train, tests))
    return folds


def transfer_fold(dataset) -> list[Fold]:
    """Trained on the written corpus only, scored on every real report."""
    real = dataset.filter(lambda r: r["source"] == "real")
    written = dataset.filter(lambda r: r["source"] != "real")
    if not len(real) or not len(written):
        raise ValueError("transfer needs both real and written (source: synthetic) units")
    return [Fold("written → real", written, {AS_WRITTEN: real})]


def group_folds(dataset, groups: dict[str, str]) -> list[Fold]:
    """Leave-one-group-out over written reports (e.g. one document kind at a time): the
    group's reports are scored by a model trained on everything else, real reports included."""
    by_group: dict[str, set[str]] = {}
    for doc in set(dataset.filter(lambda r: r["source"] != "real")["doc_id"]):
        if doc in groups:
            by_group.setdefault(groups[doc], set()).add(doc)
    folds = []
    for group, docs in sorted(by_group.items()):
        train = dataset.filter(lambda r, ds=docs: r["doc_id"] not in ds)
        test = dataset.filter(lambda r, ds=docs: r["doc_id"] in ds)
        folds.append(Fold(group, train, {AS_WRITTEN: test}))
    if not folds:
        raise ValueError("no written report is named in the groups file")
    return folds


def leave_one_report_out_folds(dataset) -> list[Fold]:
    """Plain leave-one-report-out over every report (the data has no written part)."""
    return [
        Fold(doc, split["train"], {AS_WRITTEN: split["dev"]})
        for doc, split in leave_one_report_out(dataset)
    ]


# ----------------------------------------------------------------------------- running
class Scorer:
    """Figures through the project's `evaluate` module (sectioncls_metrics, loaded by path, no
    hub): the module a user loads for their own predictions is the one the tables come from."""

    def __init__(self, categories: Sequence[str]) -> None:
        from .metrics import load_metrics

        self.module = load_metrics()
        self.categories = list(categories)

    def __call__(self, y_cat, p_cat, y_metric, p_metric) -> dict[str, Any]:
        p_cat = np.asarray(p_cat, dtype=float)
        return self.module.compute(
            predictions=p_cat.argmax(axis=1).tolist(),
            references=[int(y) for y in y_cat],
            metric_predictions=(np.asarray(p_metric, dtype=float) >= 0.5).astype(int).tolist(),
            metric_references=[int(y) for y in y_metric],
            probabilities=p_cat.tolist(),
            categories=self.categories,
            details=True,
        )


def cross_validate(
    dataset,
    categories: list[str],
    *,
    cfg=None,
    seeds: tuple[int, ...] = (42,),
    baselines: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_fold: Callable[[list[dict[str, Any]]], None] | None = None,
    on_predictions: Callable[[dict[str, Any]], None] | None = None,
    held_out: Sequence[str] | None = None,
    folds: list[Fold] | None = None,
    student_cfg=None,
    int8: bool = False,
) -> dict[str, Any]:
    """Run every system on every fold (and seed), scoring each fold's test sets. `cfg` (a
    TrainConfig) adds the fine-tuned model; without it only the baselines run. Without
    `folds`, leave-one-report-out over the real reports (written ones always train). `int8`
    also scores each fold's model quantised to int8 (torch dynamic, CPU kernels).
    `on_predictions` receives every scored test set's per-unit probabilities
    (`prediction_record`), for error analysis and offline study without retraining."""
    if folds is None:
        has_source = "source" in dataset.column_names
        if has_source and set(dataset["source"]) != {"real"}:
            folds = real_folds(dataset, held_out=held_out)
        else:
            folds = leave_one_report_out_folds(dataset)
            if held_out:
                folds = [f for f in folds if any(f.name.startswith(h) for h in held_out)]
                if not folds:
                    raise ValueError(f"no report matches held_out={list(held_out)}")
    systems: list[System] = []
    if cfg is not None:
        # With a student, each fold's model is kept for it as its teacher.
        keep: dict[str, Any] | None = {} if student_cfg is not None else None
        systems.append(System(MODEL, _model_system(cfg, progress, keep, int8), trained=True))
        if keep is not None:
            student = _student_system(student_cfg, progress, keep, int8)
            systems.append(System(student_name(student_cfg), student, trained=True))
    if baselines:
        systems.extend(BASELINES)
    # The system whose errors are written out: the model, else the first baseline.
    reported = systems[0]
    score = Scorer(categories)
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    pooled: dict[tuple[str, str], dict[str, list]] = {}
    train_seconds: list[float] = []
    # Seeds outermost: after the first seed there is a complete cross-validation to report.
    for seed in seeds:
        for fold in folds:
            for system in systems:
                if seed != seeds[0] and not system.trained:
                    continue  # the baselines are deterministic given the fold
                t0 = time.perf_counter()
                run = system.run(fold.train, fold.tests, categories, seed)
                if run.train_seconds is not None:
                    train_seconds.append(run.train_seconds)
                outputs = [(system.name, run.predictions, system is reported)]
                outputs += [(system.name + s, p, False) for s, p in run.variants.items()]
                for name, predictions, report_errors in outputs:
                    for test_name, test in fold.tests.items():
                        p_cat, p_metric = predictions[test_name]
                        y_cat, y_metric = list(test["category"]), list(test["metric"])
                        figs = score(y_cat, p_cat, y_metric, p_metric)
                        if on_predictions:
                            on_predictions(
                                prediction_record(
                                    name, fold.name, test_name, seed, test, p_cat, p_metric,
                                    run.transitions,
                                )
                            )  # fmt: skip
                        rows.append(
                            {
                                "system": name,
                                "held_out": fold.name,
                                "test": test_name,
                                "seed": seed,
                                "seconds": round(time.perf_counter() - t0, 1),
                                **figs,
                            }
                        )
                        if log:
                            log(
                                f"{name:<28} {fold.name} [{test_name}] seed {seed}: category "
                                f"macro-F1 {figs['category_macro_f1']:.3f}, metric F1 "
                                f"{figs['metric_f1']:.3f}"
                            )
                        pool = pooled.setdefault(
                            (test_name, name, seed), {"y": [], "p": [], "ym": [], "pm": []}
                        )
                        pool["y"].extend(y_cat)
                        pool["p"].extend(np.asarray(p_cat).tolist())
                        pool["ym"].extend(y_metric)
                        pool["pm"].extend(np.asarray(p_metric).tolist())
                        if report_errors and seed == seeds[0]:
                            errors.extend(
                                _errors(test, categories, p_cat, p_metric, fold.name, test_name)
                            )
                if on_fold:  # long runs: keep what is done so far
                    on_fold(rows)
    by_seed: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for (test_name, name, seed), pool in pooled.items():
        figs = score(pool["y"], np.asarray(pool["p"]), pool["ym"], pool["pm"])
        by_seed.setdefault((test_name, name), {})[str(seed)] = figs
    tests: dict[str, dict[str, Any]] = {}
    for (test_name, name), figs in by_seed.items():
        summary = _summary(rows, name, test_name)
        # The tables pool the first seed's units (as before more seeds were run); every
        # seed's pooled figures are kept for what should not rest on one seed (int8 evidence).
        summary["pooled"] = figs[str(seeds[0])]
        summary["pooled_by_seed"] = figs
        tests.setdefault(test_name, {})[name] = summary
    return {
        "categories": categories,
        "seeds": list(seeds),
        "folds_kind": [f.name for f in folds],
        "systems": tests.get(AS_WRITTEN, {}),
        "tests": tests,
        "folds": rows,
        "errors": errors,
        "train_seconds_mean": float(np.mean(train_seconds)) if train_seconds else None,
    }


def score_tagger(
    tagger,
    dataset,
    categories: list[str],
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """A trained tagger (`ReportTagger`) scored on labelled reports, shaped as
    `cross_validate`'s results so that `write_report` writes the same files.

    Each report is read in order, as `tag` reads it; the same units read alone and the section
    rule are scored beside it. Each report is one row ("held_out"), so the summary's mean ± std
    is over reports and `pooled` is over all units. Nothing is trained here: whether these
    reports are held out is the caller's to check (the checkpoint's `train_reports`)."""
    from .sequence import smooth_groups

    names = list(tagger.categories)
    if sorted(names) != sorted(categories):
        raise ValueError(f"the model's categories {names} are not the export's {list(categories)}")
    cols = [names.index(c) for c in categories]  # model column order -> the export's
    p_cat, p_metric = tagger.predict_units(list(dataset), batch_size=batch_size, progress=progress)
    p_cat = p_cat[:, cols]
    order = smooth_groups(p_cat, dataset["doc_id"], dataset["unit_index"], tagger.transitions)
    runs = {MODEL: (order, p_metric)}
    if tagger.transitions is not None and tagger.transitions.weight > 0:
        runs[MODEL + UNITS_ALONE] = (p_cat, p_metric)
    rule = BASELINES[1]  # the section rule: needs no training
    runs[rule.name] = rule.run(None, {AS_WRITTEN: dataset}, categories, 0).predictions[AS_WRITTEN]
    score = Scorer(categories)
    docs = np.asarray(dataset["doc_id"])
    by_doc = {doc: np.flatnonzero(docs == doc) for doc in sorted(set(docs.tolist()))}
    y_cat, y_metric = np.asarray(dataset["category"]), np.asarray(dataset["metric"])
    rows: list[dict[str, Any]] = []
    systems: dict[str, Any] = {}
    for name, (pc, pm) in runs.items():
        pc, pm = np.asarray(pc), np.asarray(pm)
        for doc, at in by_doc.items():
            figs = score(y_cat[at], pc[at], y_metric[at], pm[at])
            rows.append({"system": name, "held_out": doc, "test": AS_WRITTEN, **figs})
        systems[name] = _summary(rows, name, AS_WRITTEN)
        systems[name]["pooled"] = score(y_cat, pc, y_metric, pm)
    return {
        "categories": categories,
        "seeds": [],
        "folds_kind": list(by_doc),
        "systems": systems,
        "tests": {AS_WRITTEN: systems},
        "folds": rows,
        "errors": _errors(dataset, categories, order, p_metric, "", AS_WRITTEN),
        "train_seconds_mean": None,
    }


def _summary(rows: list[dict[str, Any]], name: str, test_name: str) -> dict[str, Any]:
    """Mean and spread over the folds (and seeds) of one system on one test."""
    picked = [r for r in rows if r["system"] == name and r["test"] == test_name]
    out: dict[str, Any] = {
        key: {
            "mean": float(np.mean([r[key] for r in picked])),
            "std": float(np.std([r[key] for r in picked])),
        }
        for key in SUMMARY_KEYS
    }
    out["n_folds"] = len({r["held_out"] for r in picked})
    return out


# Results that must agree for two runs to be one cross-validation with more seeds.
_SAME_RUN = ("categories", "folds_kind", "config", "data", "student_config")
# int8 kernels that belong to ONNX Runtime's int8 system, recorded only by a run that scored it.
_ORT_KERNELS = ("onnxruntime", "onnx_int8")


def _kernels_differ(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Torch's int8 kernels (CPU, caps) must be the same in both runs; ONNX Runtime's only
    where both runs scored its int8, since a run without the onnx extra has no such system
    and the merged figures of that system are then those of the runs that have it."""
    a, b = a or {}, b or {}
    torch_keys = (set(a) | set(b)) - set(_ORT_KERNELS)
    if any(a.get(k) != b.get(k) for k in torch_keys):
        return True
    return any(a[k] != b[k] for k in _ORT_KERNELS if k in a and k in b)


def merge_results(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Runs of one cross-validation with different seeds, as one run with all the seeds.

    Training on the CPU is deterministic given the seed, so `--seeds 42` then `--seeds 7` is
    `--seeds 42 7` in two sittings: the result is what that run writes (baselines from the
    first run only, as they are not rerun per seed; tables pooled over the first seed; errors
    of the first seed; every seed's pooled figures in `pooled_by_seed`). A system that only
    the first run scored (ONNX Runtime's int8, where a later run lacked the onnx extra) keeps
    only the first run's seeds, and `Int8Evidence` compares it on those seeds alone."""
    if len(runs) < 2:
        raise ValueError("merge needs at least two results")
    first = runs[0]
    for run in runs[1:]:
        differ = [k for k in _SAME_RUN if run.get(k) != first.get(k)]
        if _kernels_differ(first.get("int8_kernels"), run.get("int8_kernels")):
            differ.append("int8_kernels")
        if differ:
            raise ValueError(f"not runs of one cross-validation: {', '.join(differ)} differ")
    seeds = [s for run in runs for s in run["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed appears twice: {seeds}")
    trained = (MODEL, STUDENT)
    rows = list(first["folds"])
    for run in runs[1:]:
        rows += [r for r in run["folds"] if r["system"].startswith(trained)]
    tests: dict[str, dict[str, Any]] = {}
    for test_name, systems in first["tests"].items():
        for name, summary in systems.items():
            merged = _summary(rows, name, test_name)
            merged["pooled"] = summary["pooled"]
            by_seed: dict[str, Any] = {}
            for run in runs if name.startswith(trained) else runs[:1]:
                other = run["tests"].get(test_name, {}).get(name)
                if other is None:
                    continue
                by_seed.update(
                    other.get("pooled_by_seed") or {str(run["seeds"][0]): other["pooled"]}
                )
            merged["pooled_by_seed"] = by_seed
            tests.setdefault(test_name, {})[name] = merged
    seconds = [
        (run["train_seconds_mean"], sum(1 for r in run["folds"] if r["system"] == MODEL))
        for run in runs
        if run.get("train_seconds_mean")
    ]
    weight = sum(n for _, n in seconds)
    out = {k: first[k] for k in first if k not in {"seeds", "systems", "tests", "folds"}}
    return {
        **out,
        "seeds": seeds,
        "systems": tests.get(AS_WRITTEN, {}),
        "tests": tests,
        "folds": rows,
        "train_seconds_mean": sum(t * n for t, n in seconds) / weight if weight else None,
    }


def prediction_record(
    system: str,
    held_out: str,
    test_name: str,
    seed: int,
    test_ds,
    p_cat,
    p_metric,
    transitions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One scored test set as plain JSON: its units (document, index, gold labels) and the
    system's probabilities, rounded to 5 decimals. Reading in order can be re-done from a
    units-alone record and `transitions` (`sectioncls.sequence.smooth_groups`)."""
    return {
        "system": system,
        "held_out": held_out,
        "test": test_name,
        "seed": seed,
        "doc_id": list(test_ds["doc_id"]),
        "unit_index": [int(i) for i in test_ds["unit_index"]],
        "category": [int(c) for c in test_ds["category"]],
        "metric": [int(m) for m in test_ds["metric"]],
        "p_category": np.round(np.asarray(p_cat, dtype=np.float64), 5).tolist(),
        "p_metric": np.round(np.asarray(p_metric, dtype=np.float64), 5).tolist(),
        "transitions": transitions,
    }


def _errors(test_ds, categories, p_cat, p_metric, held_out, test_name) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(test_ds):
        pred = categories[int(np.argmax(p_cat[i]))]
        gold = categories[row["category"]]
        pred_m = int(p_metric[i] >= 0.5)
        if pred != gold or pred_m != row["metric"]:
            out.append(
                {
                    "held_out": held_out or row["doc_id"],  # scoring a model: the report
                    "test": test_name,
                    "unit_index": row["unit_index"],
                    "text": row["text"],
                    "heading_path": row["heading_path"],
                    "prev_text": row["prev_text"],
                    "next_text": row["next_text"],
                    "gold_category": gold,
                    "pred_category": pred,
                    "category_score": round(float(np.max(p_cat[i])), 3),
                    "gold_metric": row["metric"],
                    "pred_metric": pred_m,
                    "metric_score": round(float(p_metric[i]), 3),
                }
            )
    return out


def write_report(
    results: dict[str, Any],
    out_dir: str | Path,
    predictions: Sequence[dict[str, Any]] | None = None,
) -> list[Path]:
    """results.json, results.md (the table), confusion matrices (txt + png), errors.csv, and
    with `predictions` (`prediction_record`s) predictions.jsonl.gz, one test set a line."""
    import gzip

    from .modelcard import pooled_table, results_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if predictions:
        # mtime=0: the same predictions give the same bytes, so a rerun shows no diff.
        path = out / "predictions.jsonl.gz"
        with atomic_write(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            for record in predictions:
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                fh.write((line + "\n").encode("utf-8"))
        written.append(path)
    with atomic_write(out / "results.json") as fh:
        json.dump(results, fh, ensure_ascii=False, indent=1)
    written.append(out / "results.json")
    cats = results["categories"]
    lines = [results_table(results), ""]
    pooled = pooled_table(results)
    if pooled:
        title = "All units pooled" + (" (the first seed)" if results.get("seeds") else "")
        lines += [title, "", pooled, ""]
    for test_name, systems in (results.get("tests") or {}).items():
        if test_name == AS_WRITTEN:
            continue
        lines += [f"Perturbed held-out reports: {test_name}", ""]
        lines += [results_table({"systems": systems}), ""]
    for name, s in results["systems"].items():
        cm = s["pooled"]["confusion_matrix"]
        lines.append(f"Confusion matrix, {name} (rows gold, columns predicted; all folds pooled)")
        lines.append("")
        lines.append("| gold \\ pred | " + " | ".join(cats) + " |")
        lines.append("|---|" + "---|" * len(cats))
        for c, row in zip(cats, cm, strict=True):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
        per = s["pooled"]["per_class"]
        lines.append("| class | precision | recall | F1 | support |")
        lines.append("|---|---|---|---|---|")
        for c in cats:
            p = per[c]
            lines.append(
                f"| {c} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} "
                f"| {p['support']} |"
            )
        lines.append("")
    with atomic_write(out / "results.md") as fh:
        fh.write("\n".join(lines) + "\n")
    written.append(out / "results.md")
    with atomic_write(out / "errors.csv", newline="") as fh:
        fields = [
            "held_out",
            "test",
            "unit_index",
            "gold_category",
            "pred_category",
            "category_score",
            "gold_metric",
            "pred_metric",
            "metric_score",
            "text",
            "heading_path",
            "prev_text",
            "next_text",
        ]
        w = csv.DictWriter(fh, fieldnames=fields, restval=AS_WRITTEN)
        w.writeheader()
        w.writerows(results["errors"])
    written.append(out / "errors.csv")
    written.extend(_confusion_png(results, out))
    return written


def _confusion_png(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = results["categories"]
    names = list(results["systems"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        cm = np.asarray(results["systems"][name]["pooled"]["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(cats)), cats, rotation=30)
        ax.set_yticks(range(len(cats)), cats)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(name, fontsize=9)
        for i in range(len(cats)):
            for j in range(len(cats)):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black",
                    fontsize=8,
                )
    fig.tight_layout()
    path = out / "confusion_matrix.png"
    tmp = out / ".confusion_matrix.png.tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)
    return [path]
