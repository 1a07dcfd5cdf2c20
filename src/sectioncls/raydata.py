"""Tag a corpus on Ray Data: past one machine on an existing engine, not a home-made one.

The plan is the one Ray Data documents for batch inference: a dataset of file paths, a
`map_batches` stage with a callable class (each actor loads the checkpoint once and tags the
reports of every batch it gets, through the same `ReportTagger` as everywhere else), and a
Parquet or JSONL writer. Ray schedules the actors over the cores and nodes of the cluster and
streams blocks through the stages, so memory is bounded by blocks in flight, not by the corpus.

A file that cannot be read fails alone: its row carries the error, the driver reports it and
writes the rest. Paths must be readable from every node (a shared file system, or a local
cluster); the output directory likewise.

Needs the `ray` extra: `pip install 'sectioncls[ray]'`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SectionClsError

__all__ = ["RayRunResult", "RayTagError", "tag_with_ray"]

OUTPUT_FORMATS = ("parquet", "jsonl")


class RayTagError(SectionClsError):
    """Ray is missing or the run cannot start; the message says what to do."""


@dataclass
class RayRunResult:
    """What a Ray run wrote, and which files failed (path, reason)."""

    output: Path
    reports: int
    units: int
    failed: list[tuple[str, str]] = field(default_factory=list)


class _TagBatch:
    """The Ray actor's work: load the checkpoint once, then tag each batch of file paths."""

    def __init__(self, model: str, batch_size: int, backend: str, dtype: str) -> None:
        from .tagger import ReportTagger

        self.tagger = ReportTagger.from_pretrained(model, backend=backend, dtype=dtype)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from .render import csv_columns, csv_rows
        from .textio import ReportDecodeError, doc_id_from_path, read_document

        texts, ids, rows = [], [], []
        for path in batch["path"]:
            try:
                texts.append(read_document(path))
                ids.append(doc_id_from_path(path))
            except ReportDecodeError as exc:
                rows.append({"doc_id": str(path), "error": str(exc)})
        for report in self.tagger.tag_many(texts, doc_ids=ids, batch_size=self.batch_size):
            rows.extend({**row, "error": ""} for row in csv_rows(report))
        # The columns of `tag --format csv`, plus the error; equal lengths make one block.
        columns = [*csv_columns(self.tagger.categories), "error"]
        return {key: [r.get(key) for r in rows] for key in columns}


def tag_with_ray(
    paths: Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    output_format: str = "parquet",
    workers: int = 2,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    reports_per_batch: int = 16,
    batch_size: int = 16,
    backend: str = "auto",
    dtype: str = "auto",
    address: str | None = None,
) -> RayRunResult:
    """Tag `paths` with the checkpoint `model` on Ray Data and write `output` (a directory).

    `address=None` starts a local Ray (or joins the one named by RAY_ADDRESS); "auto" joins
    the running cluster. Each of `workers` actors holds one copy of the model.
    """
    if output_format not in OUTPUT_FORMATS:
        raise RayTagError(f"output_format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    try:
        import ray
    except ImportError:
        raise RayTagError(
            "tagging on Ray needs the ray extra: pip install 'sectioncls[ray]'"
        ) from None
    from .tagger import check_checkpoint

    model_dir = str(check_checkpoint(model).resolve())  # fail here, not in every actor
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise RayTagError(f"{out}: exists and is not empty; Ray writes a directory of files, "
                          "give a new one.")  # fmt: skip
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():  # left by a run that failed while writing: ours to remove
        import shutil

        shutil.rmtree(tmp)
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        items = [{"path": str(Path(p).resolve())} for p in paths]
        ds = ray.data.from_items(items).map_batches(
            _TagBatch,
            fn_constructor_kwargs={
                "model": model_dir,
                "batch_size": batch_size,
                "backend": backend,
                "dtype": dtype,
            },
            batch_size=reports_per_batch,
            concurrency=workers,
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
        )
        ds = ds.materialize()  # one pass over the corpus; errors and units split below
        failed_rows = ds.filter(lambda r: bool(r["error"])).take_all()
        units = ds.filter(lambda r: not r["error"]).drop_columns(["error"])
        if output_format == "parquet":
            units.write_parquet(str(tmp))
        else:
            units.write_json(str(tmp))
        n_units = units.count()
        n_reports = len(units.unique("doc_id"))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)  # the directory appears whole, or not at all
    finally:
        if started:
            ray.shutdown()
    failed = [(r["doc_id"], r["error"]) for r in failed_rows]
    return RayRunResult(out, n_reports, n_units, failed)
