"""Row outputs that grow as reports finish, so that a long run keeps what it has done.

A run over 100,000 reports must neither hold them all in memory nor lose them all when it is
stopped at report 99,999. `ChunkedFile` appends each finished chunk of reports to a working
file beside the output (`.NAME.part`), flushes it to disk, and then records the committed
length in a small commit log (`.NAME.part.json`, replaced atomically). Whatever lies past
the committed length was being written when the run stopped and is cut off on resume. The
output itself appears under its own name only when the run is complete (one rename), so a
reader never sees a half-written file there.

`resume=True` continues an interrupted run (from the working file and its log) or extends a
finished output with reports it does not hold yet; `done` lists the doc ids to skip.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import SectionClsError

__all__ = ["RESUMABLE_FORMATS", "ChunkedFile", "OutputError", "format_rows"]

RESUMABLE_FORMATS = ("jsonl", "csv")


class OutputError(SectionClsError):
    """An output that cannot be continued or written; the message names the file and the fix."""


def format_rows(
    rows: Iterable[dict[str, Any]], fmt: str, fields: Sequence[str] = (), header: bool = False
) -> str:
    """Rows as JSON lines, or as CSV lines in `fields` order (with the header line when asked):
    the one text form every streamed and whole-file row output uses."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    if header:
        w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ChunkedFile:
    """A JSONL or CSV output written chunk by chunk, committed after each chunk.

    Use as a context manager: `finish()` runs on a clean exit; on an error or interruption
    the working file and its log stay for `resume=True`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: str,
        *,
        resume: bool = False,
        csv_fields: Iterable[str] = (),
    ) -> None:
        if fmt not in RESUMABLE_FORMATS:
            raise OutputError(f"chunked output is for {RESUMABLE_FORMATS}, not {fmt!r}")
        self.path = Path(path)
        self.fmt = fmt
        self.fields = list(csv_fields)
        self.part = self.path.with_name(f".{self.path.name}.part")
        self.log = self.path.with_name(f".{self.path.name}.part.json")
        self.done: set[str] = set()
        self.rows_before = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        elif self.part.exists():
            raise OutputError(
                f"{self.part} holds the reports an interrupted run finished; continue it with "
                f"--resume, or delete {self.part} and {self.log} to start again."
            )
        else:
            self._start(b"")
        self._fh = open(self.part, "ab")  # noqa: SIM115 - closed in finish()/close()

    # ------------------------------------------------------------------ setup
    def _start(self, content: bytes) -> None:
        with open(self.part, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        self._commit(len(content))

    def _commit(self, size: int) -> None:
        tmp = self.log.with_name(self.log.name + ".tmp")
        tmp.write_text(json.dumps({"format": self.fmt, "bytes": size}), "utf-8")
        os.replace(tmp, self.log)
        self.committed = size

    def _resume(self) -> None:
        if self.part.exists():
            try:
                log = json.loads(self.log.read_text("utf-8"))
                size, fmt = int(log["bytes"]), log["format"]
            except (OSError, ValueError, KeyError, TypeError):
                raise OutputError(
                    f"{self.log}: the commit log of the interrupted run is missing or broken, "
                    f"so it is unknown how much of {self.part} is complete; delete both and "
                    "start again without --resume."
                ) from None
            if fmt != self.fmt:
                raise OutputError(
                    f"{self.part} was written as {fmt}, not {self.fmt}; resume with "
                    f"--format {fmt}, or delete it and {self.log}."
                )
            if self.part.stat().st_size < size:
                raise OutputError(
                    f"{self.part} is shorter than its commit log says ({size} bytes): the file "
                    "was truncated after the run; delete it and its log and start again."
                )
            with open(self.part, "r+b") as fh:  # drop a chunk that was being written
                fh.truncate(size)
            content = self.part.read_bytes()
            self._read_done(content, self.part)
            self.committed = size
        elif self.path.exists():  # a finished output: extend a copy, swap it in at the end
            content = self.path.read_bytes()
            if content and not content.endswith(b"\n"):
                raise OutputError(
                    f"{self.path} ends in the middle of a line: it is truncated or was not "
                    "written by `sectioncls tag`; --resume cannot tell which reports are "
                    "complete. Write to a new file, or delete this one."
                )
            self._read_done(content, self.path)
            self._start(content)
        else:
            self._start(b"")

    def _read_done(self, content: bytes, source: Path) -> None:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise OutputError(
                f"{source} is not UTF-8 text; it is not a sectioncls output."
            ) from None
        try:
            if self.fmt == "jsonl":
                ids = [json.loads(line)["doc_id"] for line in text.splitlines() if line.strip()]
            else:
                reader = csv.DictReader(io.StringIO(text, newline=""))
                if text and (reader.fieldnames or []) != self.fields:
                    raise ValueError("other columns")
                ids = [row["doc_id"] for row in reader]
        except (ValueError, KeyError, TypeError):
            raise OutputError(
                f"{source} is not a `sectioncls tag --format {self.fmt}` output (a row without "
                "doc_id, or other columns); write to a new file instead of --resume."
            ) from None
        self.done = set(ids)
        self.rows_before = len(ids)

    # ------------------------------------------------------------------ writing
    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append one chunk (all rows of finished reports) and commit it."""
        body = format_rows(rows, self.fmt, self.fields, header=self.committed == 0)
        data = body.encode("utf-8")
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._commit(self.committed + len(data))

    def finish(self) -> Path:
        """The run is complete: the working file becomes the output, the log goes."""
        if self.committed == 0 and self.fmt == "csv":
            self.write_rows([])  # a header, so an empty result is still a valid CSV
        self._fh.close()
        os.replace(self.part, self.path)
        _fsync_dir(self.path.parent)
        self.log.unlink(missing_ok=True)
        return self.path

    def close(self) -> None:
        """Stop without finishing: what is committed stays for --resume."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> ChunkedFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()
