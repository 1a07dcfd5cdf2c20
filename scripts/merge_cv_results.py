"""One cross-validation from runs of it with different seeds (`evaluation.merge_results`).

A cross-validation takes 46 minutes a seed on 2 CPU cores; running the seeds in separate
sittings and merging them gives what `sectioncls evaluate --seeds 42 7` writes, since CPU
training is deterministic given the seed. The runs must share config, data fingerprint, folds
and int8 kernels; anything else is refused with the key that differs.

Run: .venv/bin/python scripts/merge_cv_results.py RUN1/results.json RUN2/results.json -o DIR
"""

from __future__ import annotations

import argparse
import json
import sys

from sectioncls.evaluation import merge_results, write_report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="results.json of each run, the first seed first")
    ap.add_argument("-o", "--output", required=True, help="directory for the merged report")
    args = ap.parse_args()
    runs = []
    for path in args.results:
        try:
            with open(path, encoding="utf-8") as fh:
                runs.append(json.load(fh))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"error: {path}: cannot read results ({exc})", file=sys.stderr)
            return 2
    try:
        merged = merge_results(runs)
    except (ValueError, KeyError) as exc:
        print(f"error: {', '.join(args.results)}: {exc}", file=sys.stderr)
        return 2
    written = write_report(merged, args.output)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
