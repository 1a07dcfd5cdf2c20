"""ONNX Runtime int8 recipes side by side: how far each moves the probabilities, and how fast.

Every recipe quantises the same fused float graph of one checkpoint (`<model>/onnx/`) with
ONNX Runtime's dynamic quantiser; each is run on the units of a labelled export next to the
float graph (the baseline) and to torch's int8, the one `auto` took before. It prints mean and
largest |Δp| of the category probabilities, argmax and metric agreement with float32, the
category macro-F1 and metric F1 read in order, and units/s at batch size 16, with the `cpu:`
line. Which recipe the library writes is `sectioncls.onnx_backend.INT8_RECIPE`; a recipe is
only taken by `auto` after `sectioncls evaluate --int8` scores it, this script only screens.
Run: .venv/bin/python scripts/compare_int8_recipes.py --model checkpoints/sectioncls-default
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType

from sectioncls import ReportTagger
from sectioncls.data import load_dataset
from sectioncls.evaluation import Scorer
from sectioncls.onnx_backend import OnnxRunner, export_onnx, onnx_path, quantize_int8
from sectioncls.runtime import cpu_info
from sectioncls.schema import LabelSchema
from sectioncls.sequence import smooth_groups

ROOT = Path(__file__).resolve().parents[1]

# name -> `quantize_int8` overrides of the library's recipe (INT8_RECIPE), which comes first.
RECIPES = {
    "s7 per channel, MatMul+Attention (library)": {},
    "s7 per matrix, all ops (previous)": dict(per_channel=False, op_types_to_quantize=None),
    "s8 per matrix, all ops (saturates on AVX2)": dict(
        reduce_range=False, per_channel=False, op_types_to_quantize=None
    ),
    "u8 per channel, MatMul+Attention": dict(weight_type=QuantType.QUInt8, reduce_range=False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "checkpoints" / "sectioncls-default"))
    ap.add_argument(
        "--annotations",
        default=str(ROOT / "annotations" / "heldout.json"),
        help="a labelled export (default: the held-out written reports, never trained on)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="timed passes; the best is shown")
    args = ap.parse_args()

    tagger = ReportTagger.from_pretrained(args.model, backend="torch", dtype="float32")
    float_path = onnx_path(args.model, False)
    if not float_path.is_file():
        export_onnx(tagger.model, args.model)
    ds = load_dataset(args.annotations)[0]["train"]
    units = list(ds)
    y_cat, y_metric = np.asarray(ds["category"]), np.asarray(ds["metric"])
    cats = list(LabelSchema.default().categories)  # the export's order, as `score` reads it
    cols = [list(tagger.categories).index(c) for c in cats]
    score = Scorer(cats)

    def timed(run) -> tuple[np.ndarray, np.ndarray, float]:
        tagger._runner = run
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            p_cat, p_metric = tagger.predict_units(units, batch_size=16)
            best = min(best, time.perf_counter() - start)
        return p_cat[:, cols], p_metric, len(units) / best

    rows = [("ONNX Runtime float32 (baseline)", *timed(OnnxRunner(float_path)))]
    torch_int8 = ReportTagger.from_pretrained(args.model, backend="torch", dtype="float32")
    torch_int8.quantize()
    rows.append(("torch int8, per channel (Linear)", *timed(torch_int8._run_torch)))
    with tempfile.TemporaryDirectory(prefix="sectioncls-recipes-") as tmp:
        for i, (name, kw) in enumerate(RECIPES.items()):
            graph = Path(tmp) / f"r{i}.onnx"
            quantize_int8(float_path, graph, **kw)
            rows.append((name, *timed(OnnxRunner(graph))))

    ref_cat, ref_metric = rows[0][1], rows[0][2]
    print(f"{len(units)} units of {args.annotations}; {cpu_info().describe()}")
    print("| recipe | mean abs dp | max abs dp | argmax / metric agreement | "
          "macro-F1 / metric F1 in order | units/s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, p_cat, p_metric, speed in rows:
        dp = np.abs(p_cat - ref_cat)
        agree = (p_cat.argmax(1) == ref_cat.argmax(1)).mean()
        agree_m = ((p_metric >= 0.5) == (ref_metric >= 0.5)).mean()
        ordered = smooth_groups(p_cat, ds["doc_id"], ds["unit_index"], tagger.transitions)
        figs = score(y_cat, ordered, y_metric, p_metric)
        print(
            f"| {name} | {dp.mean():.4f} | {dp.max():.3f} | {agree:.1%} / {agree_m:.1%} | "
            f"{figs['category_macro_f1']:.3f} / {figs['metric_f1']:.3f} | {speed:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
