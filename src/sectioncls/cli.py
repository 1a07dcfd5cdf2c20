"""The `sectioncls` command. It owns all I/O and exit codes; library modules never print.

Exit codes: 0 success, 1 some inputs failed (the rest were still written), 2 usage or
configuration error (nothing written).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import signal
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import __version__
from .errors import SectionClsError
from .inputs import LEGACY_SEPARATOR
from .segment import segment
from .textio import (
    DOCUMENT_SUFFIXES,
    ReportDecodeError,
    atomic_write,
    doc_id_from_path,
    read_document,
    read_report,
)

REPORT_SUFFIXES = (".txt", ".md")
UNIT_FIELDS = (
    "doc_id",
    "index",
    "text",
    "start",
    "end",
    "kind",
    "level",
    "heading_path",
    "section",
)


class CLIError(SectionClsError):
    """A usage or configuration problem: reported in one line, exit code 2."""


def expand_inputs(paths: Iterable[str], suffixes: tuple[str, ...] = REPORT_SUFFIXES) -> list[Path]:
    """Files, folders (searched recursively for `suffixes`) and globs, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        matches = (
            [Path(m) for m in sorted(glob.glob(raw, recursive=True))]
            if glob.has_magic(raw)
            else [Path(raw)]
        )
        if not matches:
            raise CLIError(f"{raw}: no file matches this pattern.")
        for p in matches:
            if p.is_dir():
                found.extend(sorted(f for f in p.rglob("*") if f.suffix.lower() in suffixes))
            else:
                found.append(p)  # a missing file is reported when it is read
    seen: set[Path] = set()
    return [p for p in found if not (p in seen or seen.add(p))]


def _display_width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _clip(s: str, width: int) -> str:
    out, w = [], 0
    for ch in s:
        cw = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if w + cw > width - 1:
            return "".join(out) + "…"
        out.append(ch)
        w += cw
    return "".join(out)


def format_table(rows: list[dict], columns: list[tuple[str, int]]) -> str:
    """A plain-text table that lines up with full-width Chinese characters."""
    lines = []
    header = "  ".join(name.ljust(w) for name, w in columns)
    lines.append(header.rstrip())
    for row in rows:
        cells = []
        for name, w in columns:
            value = row.get(name)
            s = "" if value is None else str(value)
            s = _clip(s, w) if _display_width(s) > w else s
            cells.append(s + " " * (w - _display_width(s)))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _segment_rows(paths: list[Path], errors: list[str]) -> Iterator[dict]:
    for path in paths:
        try:
            text = read_document(path)
        except ReportDecodeError as exc:
            errors.append(str(exc))
            continue
        doc_id = doc_id_from_path(path)
        for unit in segment(text):
            row = {"doc_id": doc_id, **unit.to_dict()}
            yield {k: row[k] for k in UNIT_FIELDS}


def write_rows(rows: list[dict], fmt: str, output: str | None, table_columns) -> None:
    """Render rows as jsonl/json/table to a file (atomically) or to stdout."""
    from .outputs import format_rows

    if fmt == "jsonl":
        body = format_rows(rows, "jsonl")
    elif fmt == "json":
        body = json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    else:
        body = format_table(rows, table_columns)
    if output:
        with atomic_write(output) as fh:
            fh.write(body)
    else:
        sys.stdout.write(body)


SEGMENT_TABLE = [
    ("doc_id", 14),
    ("index", 5),
    ("kind", 8),
    ("level", 5),
    ("section", 11),
    ("text", 70),
]


def cmd_segment(args: argparse.Namespace) -> int:
    errors: list[str] = []
    rows = list(_segment_rows(expand_inputs(args.paths, DOCUMENT_SUFFIXES), errors))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    if not rows:
        print("error: no report could be segmented; nothing written.", file=sys.stderr)
        return 1
    write_rows(rows, args.format, args.output, SEGMENT_TABLE)
    if args.output:
        n_docs = len({r["doc_id"] for r in rows})
        print(f"wrote {len(rows)} units from {n_docs} report(s) to {args.output}", file=sys.stderr)
    return 1 if errors else 0


# ----------------------------------------------------------------------------- train
def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--learning-rate …); given flags override the YAML."""
    import dataclasses

    from .training import TrainConfig

    group = p.add_argument_group("run config (override the YAML; defaults: the shipped default)")
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("yaml_only"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        default = f.default_factory() if callable(f.default_factory) else f.default
        choices = f.metadata.get("choices")
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if choices:
            help_text += f"; one of {', '.join(choices)}"
        if kind == "bool":
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif kind.startswith("list"):
            group.add_argument(
                flag, dest=f.name, nargs="+", default=None, metavar="VALUE", help=help_text
            )
        else:
            conv = {"int": int, "float": float, "int | None": int, "float | None": float}.get(
                kind, str
            )
            group.add_argument(
                flag,
                dest=f.name,
                type=conv,
                default=None,
                metavar=f.name.upper(),
                help=help_text,
            )


def _load_train_config(args: argparse.Namespace):
    import dataclasses

    from .training import TrainConfig

    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    if args.config:
        return TrainConfig.from_yaml(args.config, **overrides)
    return TrainConfig.from_dict(overrides, "command line")


def cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    cfg = _load_train_config(args)
    extra = {"cv": _cv_results(args.cv_results, cfg)} if args.cv_results else None
    print(f"training {cfg.output_dir} from {cfg.base_model} on {cfg.annotations}", file=sys.stderr)
    result, _ = train(cfg, progress=not args.quiet, extra_metrics=extra)
    line = (
        f"wrote {result.output_dir} ({result.n_train} training units, {result.train_seconds:.0f} s)"
    )
    if "dev" in result.metrics:
        d = result.metrics["dev"]
        line += (
            f"; dev category macro-F1 {d['category_macro_f1']:.3f}, metric F1 {d['metric_f1']:.3f}"
        )
    print(line)
    return 0


def _cv_results(path: str, cfg) -> dict:
    """`sectioncls evaluate`'s results.json, for the model card; it must describe this config."""
    try:
        cv = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CLIError(f"{path}: cannot read cross-validation results ({exc})") from exc
    if not isinstance(cv, dict) or "systems" not in cv:
        raise CLIError(f"{path}: not a results.json written by `sectioncls evaluate`")
    ran, now = cv.get("config") or {}, cfg.to_dict()
    keys = (
        "base_model",
        "context",
        "context_separator",
        "max_seq_length",
        "encoder_layers",
        "epochs",
        "learning_rate",
        "head_learning_rate",
        "class_weighting",
        "metric_weighting",
        "metric_pooling",
        "context_dropout",
        "sequence_weight",
        "annotations",
    )
    # Results from before a setting existed ran without it: units were read alone.
    if ran:
        ran = {"sequence_weight": 0.0, "context_separator": LEGACY_SEPARATOR, **ran}
    differ = [k for k in keys if k in ran and ran[k] != now.get(k)]
    if differ:
        raise CLIError(
            f"{path}: cross-validated with other settings ({', '.join(differ)}); "
            "re-run `make eval` or leave out --cv-results"
        )
    if isinstance(cv.get("data"), dict):  # results from before it was recorded carry none
        from .data import load_dataset

        _, build = load_dataset(
            cfg.annotation_files(), cfg.load_schema(), mappings=cfg.export_mappings()
        )
        was, now_fp = cv["data"], build.fingerprint()
        if was.get("fingerprint") != now_fp:
            raise CLIError(
                f"{path}: cross-validated on other annotations ({was.get('units')} units, "
                f"{was.get('fingerprint')}; these have {len(build.rows)}, {now_fp}); "
                "re-run `make eval` or leave out --cv-results"
            )
    keep = ("systems", "seeds", "tests", "data", "int8_kernels")
    return {k: cv[k] for k in keep if k in cv}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .evaluation import cross_validate, write_report
    from .modelcard import results_table

    cfg = _load_train_config(args)
    schema = cfg.load_schema()
    dataset, build = load_dataset(
        cfg.annotation_files(), schema, mappings=cfg.export_mappings(), for_training=True
    )
    print(build.summary(), file=sys.stderr)
    folds = _folds(args, dataset["train"])
    student = None
    if args.student:
        from .training import TrainConfig

        student = TrainConfig.from_yaml(args.student, seed=cfg.seed)
    predictions: list[dict] = []
    results = cross_validate(
        dataset["train"],
        list(schema.categories),
        folds=folds,
        cfg=None if args.baselines_only else cfg,
        seeds=tuple(args.seeds),
        progress=not args.quiet,
        log=lambda m: print(m, file=sys.stderr),
        on_fold=lambda folds: _write_json(Path(args.output) / "folds-partial.json", folds),
        on_predictions=predictions.append,
        held_out=args.held_out,
        student_cfg=student,
        int8=args.int8,
    )
    results["config"] = cfg.to_dict()
    if args.int8:
        from .runtime import cpu_info, onnx_installed

        # int8 products differ with the kernels (AVX2 saturates 16-bit sums, VNNI does not).
        results["int8_kernels"] = {
            "cpu": cpu_info().describe(),
            "FBGEMM_ENABLE_INSTRUCTIONS": os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", ""),
        }
        if onnx_installed():  # its int8 is 7-bit weights: the same sums on AVX2 and VNNI
            from importlib.metadata import version

            from .onnx_backend import INT8_RECIPE

            results["int8_kernels"]["onnxruntime"] = version("onnxruntime")
            results["int8_kernels"]["onnx_int8"] = INT8_RECIPE
    results["data"] = {"units": len(build.rows), "fingerprint": build.fingerprint()}
    if student is not None:
        results["student_config"] = student.to_dict()
    written = write_report(results, args.output, predictions)
    print(results_table(results))
    if results.get("train_seconds_mean"):
        print(f"\nmean training time per fold: {results['train_seconds_mean']:.0f} s")
    print("\nwrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """A trained checkpoint scored on labelled reports it did not train on (by default)."""
    from datasets.utils.logging import disable_progress_bar
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from .data import load_dataset
    from .evaluation import score_tagger, write_report
    from .modelcard import pooled_table
    from .runtime import cpu_info
    from .schema import LabelSchema
    from .tagger import check_checkpoint

    disable_progress_bar()  # one bar over the units is enough
    hf_logging.disable_progress_bar()
    model_dir = check_checkpoint(args.model)
    schema = LabelSchema.from_yaml(args.schema) if args.schema else LabelSchema.default()
    dataset, build = load_dataset(args.annotations, schema)
    print(build.summary(), file=sys.stderr)
    ds = dataset["train"]
    docs = sorted(set(ds["doc_id"]))
    if args.reports:
        docs = [d for d in docs if any(d.startswith(r) for r in args.reports)]
        if not docs:
            raise CLIError(
                f"no report in {', '.join(args.annotations)} matches --reports "
                f"{' '.join(args.reports)}"
            )
    seen = sorted(set(docs) & _train_reports(model_dir))
    if seen and not args.include_seen:
        docs = [d for d in docs if d not in seen]
        print(
            f"left out {len(seen)} report(s) the model trained on ({', '.join(seen[:5])}"
            f"{' …' if len(seen) > 5 else ''}); --include-seen scores them too",
            file=sys.stderr,
        )
        if not docs:
            raise CLIError(
                f"{args.model} trained on every report selected; a score on them says nothing "
                "about new reports (add --include-seen to score them anyway)"
            )
    keep = set(docs)
    ds = ds.filter(lambda r: r["doc_id"] in keep)
    tagger = _load_tagger(
        args.model, quantize=args.quantize, backend=args.backend, dtype=args.dtype, device="auto"
    )
    print(f"{cpu_info().describe()}\nruntime: {tagger.runtime.describe()}", file=sys.stderr)
    bar = tqdm(
        total=len(ds), desc="Scoring units", unit="unit", disable=args.quiet, file=sys.stderr
    )
    try:
        results = score_tagger(
            tagger, ds, list(schema.categories), batch_size=args.batch_size, progress=bar.update
        )
    except ValueError as exc:  # the model and the export disagree on the categories
        raise CLIError(f"{args.model}: {exc}") from exc
    finally:
        bar.close()
    results["model"] = str(args.model)
    results["runtime"] = tagger.runtime.describe()
    results["seen_in_training"] = seen if args.include_seen else []
    results["data"] = {"units": len(ds), "reports": len(docs), "fingerprint": build.fingerprint()}
    written = write_report(results, args.output) if args.output else []
    print(pooled_table(results))
    if results["seen_in_training"]:
        print(f"\nnot a held-out figure: the model trained on {len(seen)} of these reports")
    if written:
        print("\nwrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _train_reports(model_dir: Path) -> set[str]:
    """The reports a checkpoint trained on (`metrics.json`), empty when it does not say."""
    from .tagger import checkpoint_metrics

    reports = checkpoint_metrics(model_dir).get("train_reports")
    return {str(r) for r in reports} if isinstance(reports, list) else set()


def _folds(args: argparse.Namespace, ds):
    """The evaluation design named by --folds (see `sectioncls.evaluation`)."""
    from .evaluation import group_folds, real_folds, transfer_fold

    if args.folds == "real":
        texts = {}
        if args.reports:
            for path in expand_inputs([args.reports]):
                texts[doc_id_from_path(path)] = read_report(path)
        return real_folds(ds, texts, held_out=args.held_out)
    if args.folds == "transfer":
        return transfer_fold(ds)
    if not args.groups:
        raise CLIError("--folds kind needs --groups FILE (a CSV with doc_id and a group column)")

    try:
        with open(args.groups, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise CLIError(f"{args.groups}: cannot read the groups file ({exc})") from exc
    if not rows or "doc_id" not in rows[0] or args.group_column not in rows[0]:
        raise CLIError(f"{args.groups}: needs the columns doc_id and {args.group_column}")
    folds = group_folds(ds, {r["doc_id"]: r[args.group_column] for r in rows})
    if args.held_out:
        folds = [f for f in folds if f.name in args.held_out]
        if not folds:
            raise CLIError(f"no group named {args.held_out} in {args.groups}")
    return folds


def _write_json(path: Path, data) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)


# ----------------------------------------------------------------------------- tag
TAG_TABLE = [
    ("doc_id", 14),
    ("index", 5),
    ("kind", 8),
    ("category", 11),
    ("metric", 6),
    ("text", 64),
]


def _parse_shard(value: str | None) -> tuple[int, int]:
    """`--shard i/n` (0-based), else the launcher's RANK/WORLD_SIZE (accelerate, torchrun)."""
    import os

    if value is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return int(os.environ.get("RANK", "0")), max(world, 1)
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise CLIError(f"--shard {value!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise CLIError(f"--shard {value!r}: need 0 <= i < n")
    return i, n


def _shard_output(output: str | None, shard: tuple[int, int], explicit: bool) -> str | None:
    if output is None or shard[1] == 1 or explicit:
        return output
    p = Path(output)
    return str(p.with_name(f"{p.stem}.shard{shard[0]}of{shard[1]}{p.suffix}"))


def _load_tagger(
    model: str, *, quantize: bool, backend: str, dtype: str = "auto", device: str = "auto"
):
    from .tagger import ReportTagger

    try:
        return ReportTagger.from_pretrained(
            model, quantize=quantize, backend=backend, dtype=dtype, device=device
        )
    except (ImportError, ValueError) as exc:  # the ONNX extra is missing; options that clash
        raise CLIError(str(exc)) from exc


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .onnx_backend import onnx_path

    _load_tagger(args.model, quantize=args.quantize, backend="onnx", dtype="float32")
    print(onnx_path(args.model, args.quantize))
    return 0


class _RowSink:
    """jsonl/csv/json/table rows, streamed to stdout or to a file renamed into place at the
    end; jsonl/csv files go through `ChunkedFile` (committed per chunk, resumable)."""

    def __init__(self, fmt: str, output: str | None, resume: bool, categories) -> None:
        from .outputs import ChunkedFile
        from .render import csv_columns

        self.fmt, self.output, self.rows = fmt, output, 0
        self.fields = csv_columns(categories)  # one score column per category of the model
        self._chunked: ChunkedFile | None = None
        self._atomic = None
        self._first = True
        if output and fmt in ("jsonl", "csv"):
            self._chunked = ChunkedFile(output, fmt, resume=resume, csv_fields=self.fields)
            self.done = self._chunked.done
            self.rows = self._chunked.rows_before
            return
        self.done: set[str] = set()
        if output:
            self._atomic = atomic_write(output, newline="" if fmt == "csv" else None)
            self._fh = self._atomic.__enter__()
        else:
            self._fh = sys.stdout

    def write(self, reports) -> None:
        from .outputs import format_rows
        from .render import csv_rows

        rows = [
            row
            for r in reports
            for row in (csv_rows(r) if self.fmt == "csv" else r.to_dict()["units"])
        ]
        self.rows += len(rows)
        if self._chunked is not None:
            self._chunked.write_rows(rows)
            return
        if self.fmt in ("jsonl", "csv"):
            body = format_rows(rows, self.fmt, self.fields, header=self._first)
        elif self.fmt == "json":
            body = "".join(
                ("[\n" if self._first and i == 0 else ",\n") + json.dumps(r, ensure_ascii=False)
                for i, r in enumerate(rows)
            )
        else:
            body = format_table(rows, TAG_TABLE)
            if not self._first:
                body = body.split("\n", 1)[1]
        if rows or self.fmt in ("csv", "table"):
            self._first = False
        self._fh.write(body)
        self._fh.flush()

    def finish(self) -> str | None:
        if self._chunked is not None:
            return str(self._chunked.finish())
        if self.fmt == "json":
            self._fh.write("[]\n" if self._first else "\n]\n")
        if self._atomic is not None:
            self._atomic.__exit__(None, None, None)
        return self.output

    def abort(self, exc: BaseException | None) -> None:
        """Stop: committed chunks stay for --resume; a plain temp file is removed."""
        if self._chunked is not None:
            self._chunked.close()
        elif self._atomic is not None:
            exc = exc or RuntimeError("no report tagged")
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)

    def discard(self) -> None:
        """Nothing was tagged in a fresh run: leave no file behind."""
        if self._chunked is not None:
            self._chunked.close()
            if self.rows == 0:
                self._chunked.part.unlink(missing_ok=True)
                self._chunked.log.unlink(missing_ok=True)
        else:
            self.abort(None)


class _HtmlSink:
    """A page per report, written as each report finishes, and an index at the end; or one
    page when a single report goes to a .html file."""

    def __init__(self, output: str | None, n_inputs: int, categories, labels) -> None:
        if output is None:
            raise CLIError("--format html needs --output (a .html file or a folder)")
        out = Path(output)
        self.single = out.suffix.lower() == ".html" and n_inputs == 1
        self.out, self.categories, self.labels, self.done = out, categories, labels, set()
        self.index: list[dict] = []
        self.written: list[Path] = []
        self.rows = 0

    def write(self, reports) -> None:
        from .render import index_row, report_html

        for r in reports:
            target = self.out if self.single else self.out / f"{r.doc_id}.html"
            with atomic_write(target) as fh:
                fh.write(report_html(r, self.categories, self.labels))
            self.index.append(index_row(r, target.name))
            self.written.append(target)
            self.rows += len(r.units)

    def finish(self) -> str:
        from .render import index_html

        if not self.single:
            with atomic_write(self.out / "index.html") as fh:
                fh.write(index_html(self.index, self.categories, self.labels))
            self.written.append(self.out / "index.html")
        shown = [str(p) for p in self.written[:3]]
        more = len(self.written) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def abort(self, exc: BaseException | None) -> None:
        """Pages already written are complete files; no index for an unfinished run."""

    def discard(self) -> None:
        pass


def _chunks(paths: list[Path], size: int, skip: set[str], errors: list[str], bar):
    """Read reports lazily, `size` at a time: memory holds one chunk, not the corpus."""
    texts: list[str] = []
    ids: list[str] = []
    for path in paths:
        doc_id = doc_id_from_path(path)
        if doc_id in skip:
            bar.update(1)
            continue
        try:
            texts.append(read_document(path))
            ids.append(doc_id)
        except ReportDecodeError as exc:
            errors.append(str(exc))
            bar.write(f"error: {exc}", file=sys.stderr)
            bar.update(1)
        if len(texts) == size:
            yield texts, ids
            texts, ids = [], []
    if texts:
        yield texts, ids


def cmd_tag(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    from .outputs import RESUMABLE_FORMATS
    from .runtime import cpu_info

    hf_logging.disable_progress_bar()  # one bar over reports is enough
    shard = _parse_shard(args.shard)
    found = expand_inputs(args.paths, DOCUMENT_SUFFIXES)
    if not found:
        raise CLIError(
            f"no reports found in {', '.join(args.paths)} (looked for "
            f"{' '.join(DOCUMENT_SUFFIXES)} files)"
        )
    paths = found[shard[0] :: shard[1]]
    if not paths:
        raise CLIError(f"no input reports in shard {shard[0]}/{shard[1]} ({len(found)} in all)")
    output = _shard_output(args.output, shard, args.shard is not None)
    if args.resume and (output is None or args.format not in RESUMABLE_FORMATS):
        raise CLIError(
            "--resume continues an --output file written as --format jsonl or csv; "
            f"got --format {args.format}" + ("" if output else " to stdout")
        )
    tagger = _load_tagger(
        args.model,
        quantize=args.quantize,
        backend=args.backend,
        dtype=args.dtype,
        device=args.device,
    )
    if args.verbose:
        print(f"{cpu_info().describe()}\nruntime: {tagger.runtime.describe()}", file=sys.stderr)
        print(f"reading: {tagger.describe_order()}", file=sys.stderr)
    sink = (
        _HtmlSink(output, len(paths), tagger.categories, tagger.category_labels)
        if args.format == "html"
        else _RowSink(args.format, output, args.resume, tagger.categories)
    )
    errors: list[str] = []
    tagged = 0
    bar = tqdm(
        total=len(paths), desc="Tagging reports", unit="report", disable=args.quiet, file=sys.stderr
    )
    try:
        # Chunks of reports share batches (speed); each chunk is written when it is done.
        for texts, ids in _chunks(paths, args.chunk_size, sink.done, errors, bar):
            sink.write(tagger.tag_many(texts, doc_ids=ids, batch_size=args.batch_size))
            tagged += len(ids)
            bar.update(len(ids))
    except BaseException as exc:
        bar.close()
        sink.abort(exc)
        if isinstance(exc, KeyboardInterrupt) and output and args.format in RESUMABLE_FORMATS:
            print(
                "interrupted; the finished reports are kept: continue with --resume",
                file=sys.stderr,
            )
            return 130
        raise
    bar.close()
    skipped = len(sink.done)
    if tagged == 0 and skipped == 0:
        sink.discard()
        print("error: no report could be tagged; nothing written.", file=sys.stderr)
        return 1
    written = sink.finish()
    if written:
        note = f" ({skipped} already there)" if skipped else ""
        print(
            f"wrote {sink.rows} units from {tagged + skipped} report(s){note} to {written}",
            file=sys.stderr,
        )
    return 1 if errors else 0


def cmd_tag_ray(args: argparse.Namespace) -> int:
    from .raydata import tag_with_ray

    paths = expand_inputs(args.paths, DOCUMENT_SUFFIXES)
    if not paths:
        raise CLIError("no input reports")
    result = tag_with_ray(
        paths,
        args.model,
        args.output,
        output_format=args.format,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        reports_per_batch=args.chunk_size,
        backend=args.backend,
        dtype=args.dtype,
        address=args.address,
    )
    for _path, reason in result.failed:
        print(f"error: {reason}", file=sys.stderr)
    print(
        f"wrote {result.units} units from {result.reports} report(s) to {result.output}"
        + (f"; {len(result.failed)} file(s) failed" if result.failed else ""),
        file=sys.stderr,
    )
    return 1 if result.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sectioncls",
        description="Segment and tag Chinese annual work reports.",
    )
    parser.add_argument("--version", action="version", version=f"sectioncls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("segment", help="cut reports into units with offsets and heading paths")
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files, folders or globs")
    p.add_argument("--format", choices=("jsonl", "json", "table"), default="jsonl")
    p.add_argument("--output", "-o", help="write here (atomically) instead of stdout")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("train", help="fine-tune a tagger from Label Studio exports")
    p.add_argument("--config", help="a YAML run config (configs/train-default.yaml)")
    p.add_argument(
        "--cv-results",
        metavar="JSON",
        help="results.json of `sectioncls evaluate` with this config: its table goes into the "
        "model card (docs/results/cv-results.json for the default)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="leave-one-report-out cross-validation of the model and baselines"
    )
    p.add_argument("--config", help="the YAML run config whose model is evaluated")
    p.add_argument("--seeds", type=int, nargs="+", default=[42], help="one training run each")
    p.add_argument("--output", "-o", default="outputs/eval", help="folder for the report files")
    p.add_argument("--baselines-only", action="store_true", help="skip the fine-tuned model")
    p.add_argument(
        "--int8",
        action="store_true",
        help="also score each fold's model quantised to int8: torch's (CPU; set "
        "FBGEMM_ENABLE_INSTRUCTIONS=AVX2 for an AVX2-only CPU's arithmetic) and, with the onnx "
        "extra, ONNX Runtime's fused graph",
    )
    p.add_argument(
        "--held-out",
        nargs="+",
        metavar="DOC",
        help="only these folds (doc id prefixes, e.g. 004; group names with --folds kind)",
    )
    p.add_argument(
        "--folds",
        choices=("real", "transfer", "kind"),
        default="real",
        help="real: leave one real report out, written reports always train (default); "
        "transfer: train on written reports only, score the real ones; kind: leave one group "
        "of written reports out (--groups)",
    )
    p.add_argument(
        "--reports",
        default="examples/reports",
        help="the real reports' texts: each fold also scores perturbed copies of its held-out "
        "report ('' to skip)",
    )
    p.add_argument("--groups", help="CSV with doc_id and a group column, for --folds kind")
    p.add_argument("--group-column", default="doc_kind", help="the group column of --groups")
    p.add_argument(
        "--student",
        metavar="CONFIG",
        help="also evaluate a smaller model distilled from each fold's model, with this run "
        "config (its distill_from, and init_from when equal to it, become the fold's model)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "score",
        help="score a trained model on labelled reports it did not train on",
        description="Tag the units of Label Studio exports with a trained checkpoint and score "
        "them against the labels: each report read in order (as `tag` reads), the same units "
        "alone, and the section rule, per report and pooled. Reports the checkpoint trained on "
        "(its metrics.json) are left out unless --include-seen.",
    )
    p.add_argument("annotations", nargs="+", metavar="EXPORT", help="Label Studio JSON exports")
    p.add_argument("--model", "-m", default="checkpoints/sectioncls-default")
    p.add_argument(
        "--reports", nargs="+", metavar="DOC", help="only these reports (doc id prefixes)"
    )
    p.add_argument(
        "--include-seen",
        action="store_true",
        help="also score reports the model trained on (the figures are then not held out)",
    )
    p.add_argument("--output", "-o", help="folder for results.json, results.md, errors.csv …")
    p.add_argument("--schema", help="the label schema YAML of the export (default: the built-in)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="torch")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="float32")
    p.add_argument("--quantize", action="store_true", help="score the int8 model (CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("tag", help="tag reports with a trained model")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files (.txt .md .docx .pdf), folders or globs"
    )
    p.add_argument("--model", "-m", default="checkpoints/sectioncls-default")
    p.add_argument("--format", choices=("jsonl", "json", "csv", "html", "table"), default="jsonl")
    p.add_argument("--output", "-o", help="a file, or a folder for --format html")
    p.add_argument("--batch-size", type=int, default=16, help="16 is fastest on 2 CPU cores")
    p.add_argument(
        "--shard",
        help="i/n: tag only every n-th file starting at i (0-based); "
        "defaults to RANK/WORLD_SIZE under accelerate launch or torchrun",
    )
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="auto (default): the fastest path with the float model's labels on this machine "
        "(-v shows the choice); onnx: ONNX Runtime on CPU (exports <model>/onnx/ on first use)",
    )
    p.add_argument(
        "--quantize", action="store_true", help="int8 (CPU): faster, changes a few labels"
    )
    p.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto (default): bfloat16 where the CPU has native bf16 (AVX512-BF16, AMX), else "
        "float32 (on GPUs too: faster for this small encoder on an H200); forced bfloat16 is "
        "several times slower on CPUs without it",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="auto (default): the GPU when torch sees one (not for --backend onnx or "
        "--quantize, which run on the CPU), else the CPU; or cpu, cuda, cuda:1 …",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run into the same --output (jsonl or csv), or add the "
        "reports a finished output does not hold yet",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=16,
        help="reports tagged together and written as one committed chunk",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="print the CPU and the runtime")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser(
        "tag-ray",
        help="tag a corpus on Ray Data (a local Ray, or a cluster with --address auto)",
        description="Files -> map_batches (one model per worker actor) -> a directory of "
        "Parquet or JSONL files. Paths and output must be readable/writable from every node.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or globs")
    p.add_argument("--model", "-m", default="checkpoints/sectioncls-default")
    p.add_argument("--output", "-o", required=True, help="a new directory for the output files")
    p.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    p.add_argument("--workers", type=int, default=2, help="actors, each with a copy of the model")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--gpus-per-worker", type=float, default=0.0)
    p.add_argument("--chunk-size", type=int, default=16, help="reports per Ray batch")
    p.add_argument("--batch-size", type=int, default=16, help="units per forward pass")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto")
    p.add_argument(
        "--address", help="Ray cluster to join ('auto': the running one); default: a local Ray"
    )
    p.set_defaults(func=cmd_tag_ray)

    p = sub.add_parser(
        "export-onnx", help="export a checkpoint for ONNX Runtime into <model>/onnx/"
    )
    p.add_argument("--model", "-m", default="checkpoints/sectioncls-default")
    p.add_argument("--quantize", action="store_true", help="also write the int8 graph")
    p.set_defaults(func=cmd_export_onnx)

    for register in _registrars():
        register(sub)
    return parser


def _registrars():
    """Subcommands that live beside their modules (imported lazily: no heavy imports here)."""
    from . import base
    from .studio import cli as studio_cli

    return [base.register_cli, studio_cli.register_cli]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SectionClsError as exc:  # every library error names the file or key and the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sectioncls ... | head`: the reader left; end quietly
        # Python flushes stdout again at exit; point it at devnull so that flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # what a program killed by SIGPIPE reports (141)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
