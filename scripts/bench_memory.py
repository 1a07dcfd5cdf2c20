"""Peak memory of `sectioncls tag` against the size of the corpus, beside the all-in-memory way.

Copies of a short example report (its first --lines lines) make corpora of 10, 100 and 1,000
reports. Each size is tagged in a fresh process in two ways, and the peak RSS of that process
is read from the kernel (getrusage of the child):

- `sectioncls tag DIR -o units.jsonl`: reads, tags and writes chunk by chunk (the CLI);
- baseline: read every report, `tag_many` over all of them, then write (what the CLI did before
  streaming, and what a script that calls the library on a whole corpus does).

Run: .venv/bin/python scripts/bench_memory.py --model checkpoints/sectioncls-default
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sectioncls.runtime import cpu_info

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

_ALL_AT_ONCE = """
import json, sys
from pathlib import Path
from sectioncls import ReportTagger
folder, model, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
paths = sorted(folder.glob("*.txt"))
texts = [p.read_text("utf-8") for p in paths]
tagger = ReportTagger.from_pretrained(model)
reports = tagger.tag_many(texts, doc_ids=[p.stem for p in paths])
with open(out, "w", encoding="utf-8") as fh:
    for r in reports:
        for u in r.to_dict()["units"]:
            fh.write(json.dumps(u, ensure_ascii=False) + "\\n")
"""


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) of `cmd` run as the only child of a fresh process, and its wall time."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="checkpoints/sectioncls-default")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--lines", type=int, default=20, help="lines of the example kept per copy")
    ap.add_argument("--report", default="examples/reports/000_9ab697e020cfd5b9.txt")
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()

    text = "\n".join((ROOT / args.report).read_text("utf-8").splitlines()[: args.lines]) + "\n"
    print(cpu_info().describe())
    print(f"each report: the first {args.lines} lines of {Path(args.report).name}")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="sectioncls-mem-"))
    try:
        for n in args.sizes:
            corpus = tmp / f"corpus{n}"
            corpus.mkdir()
            for i in range(n):
                (corpus / f"r{i:06d}.txt").write_text(text, "utf-8")
            cli = [sys.executable, "-m", "sectioncls.cli", "tag", str(corpus), "-m", args.model]
            out = tmp / f"stream{n}.jsonl"
            rss, secs = peak_rss_mb([*cli, "-o", str(out), "--quiet"])
            units = sum(1 for _ in out.open(encoding="utf-8"))
            base = (None, None)
            if not args.skip_baseline:
                b_out = tmp / f"all{n}.jsonl"
                base = peak_rss_mb(
                    [sys.executable, "-c", _ALL_AT_ONCE, str(corpus), args.model, str(b_out)]
                )
            rows.append((n, units, rss, secs, *base))
            print(f"  {n} reports done", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    first = rows[0][2]
    print(
        f"\n{'reports':>8}{'units':>9}{'tag (streaming) MB':>21}{'vs 10':>8}{'s':>7}"
        f"{'all in memory MB':>19}{'s':>7}"
    )
    for n, units, rss, secs, b_rss, b_secs in rows:
        base = f"{b_rss:>19.0f}{b_secs:>7.0f}" if b_rss else f"{'—':>19}{'—':>7}"
        print(f"{n:>8}{units:>9}{rss:>21.0f}{rss / first - 1:>+8.1%}{secs:>7.0f}{base}")


if __name__ == "__main__":
    main()
