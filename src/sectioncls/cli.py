"""The `sectioncls` command. It owns all I/O and exit codes; library modules never print.

Exit codes: 0 success, 1 some inputs failed (the rest were still written), 2 usage or
configuration error (nothing written).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import __version__
from .segment import segment
from .textio import ReportDecodeError, atomic_write, doc_id_from_path, read_report

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


class CLIError(Exception):
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
            text = read_report(path)
        except ReportDecodeError as exc:
            errors.append(str(exc))
            continue
        doc_id = doc_id_from_path(path)
        for unit in segment(text):
            row = {"doc_id": doc_id, **unit.to_dict()}
            yield {k: row[k] for k in UNIT_FIELDS}


def write_rows(rows: list[dict], fmt: str, output: str | None, table_columns) -> None:
    """Render rows as jsonl/json/table to a file (atomically) or to stdout."""
    if fmt == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
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
    rows = list(_segment_rows(expand_inputs(args.paths), errors))
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

    for register in _registrars():
        register(sub)
    return parser


def _registrars():
    """Subcommands that live beside their modules (imported lazily: no heavy imports here)."""
    import importlib

    regs = []
    for mod in ("sectioncls.base_model", "sectioncls.studio.cli"):  # TEMP guard until both land
        try:
            regs.append(importlib.import_module(mod).register_cli)
        except (ImportError, AttributeError):
            pass
    return regs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sectioncls ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
