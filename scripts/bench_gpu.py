"""The tagger on a GPU: float32 against bfloat16 on the GPU, with CPU float32 as the baseline.

Tags every unit of the example reports with `tag_many` (batch 64) on each path, repeats the
GPU runs to time them, and prints units/s and each path's agreement with CPU float32, beside
the GPU's name and the host's `cpu:` line. The `auto` choice on GPUs (float32) comes from this
script's run on an H200 (docs/results/gpu-tagging-h200.json).

.venv/bin/python scripts/bench_gpu.py --model checkpoints/sectioncls-default [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "checkpoints/sectioncls-default"))
    ap.add_argument("--reports", default=str(ROOT / "examples/reports"))
    ap.add_argument("--repeats", type=int, default=8, help="timed passes on the GPU")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    import torch

    from sectioncls import ReportTagger
    from sectioncls.runtime import cpu_info
    from sectioncls.textio import read_report

    if not torch.cuda.is_available():
        print("no GPU: torch sees no CUDA device; use scripts/bench_tagger.py", file=sys.stderr)
        return 2
    texts = [read_report(p) for p in sorted(Path(args.reports).glob("*.txt"))]
    paths = [
        ("cpu float32 (baseline)", {"device": "cpu", "backend": "torch", "dtype": "float32"}, 1),
        ("auto", {}, args.repeats),
        ("cuda float32", {"device": "cuda", "dtype": "float32"}, args.repeats),
        ("cuda bfloat16", {"device": "cuda", "dtype": "bfloat16"}, args.repeats),
    ]
    figures: dict[str, dict] = {
        "gpu": torch.cuda.get_device_name(0),
        "cpu": cpu_info().describe(),
        "torch": torch.__version__,
    }
    labels: dict[str, list] = {}
    for name, kwargs, repeats in paths:
        tagger = ReportTagger.from_pretrained(args.model, **kwargs)
        tagger.tag_many(texts[:1], batch_size=64)  # warm-up: kernels, allocator
        start = time.perf_counter()
        for _ in range(repeats):
            out = tagger.tag_many(texts, batch_size=64)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / repeats
        units = [u for report in out for u in report.units]
        labels[name] = [(u.category, u.metric) for u in units]
        figures[name] = {
            "runtime": tagger.runtime.describe(),
            "units": len(units),
            "units_per_s": round(len(units) / seconds, 1),
        }
    base = labels["cpu float32 (baseline)"]
    print(f"gpu: {figures['gpu']}\n{figures['cpu']}\ntorch {figures['torch']}\n")
    print("| path | runtime | units/s | × CPU float32 | agreement (category / metric) |")
    print("|---|---|---|---|---|")
    for name, _, _ in paths:
        fig = figures[name]
        cat = sum(a[0] == b[0] for a, b in zip(base, labels[name], strict=True)) / len(base)
        met = sum(a[1] == b[1] for a, b in zip(base, labels[name], strict=True)) / len(base)
        fig["agreement"] = {"category": cat, "metric": met}
        ratio = fig["units_per_s"] / figures["cpu float32 (baseline)"]["units_per_s"]
        print(
            f"| {name} | {fig['runtime']} | {fig['units_per_s']} | {ratio:.1f} | "
            f"{cat:.1%} / {met:.1%} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, ensure_ascii=False), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
