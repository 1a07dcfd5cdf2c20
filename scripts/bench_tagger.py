"""Throughput of ReportTagger against a per-unit `transformers.pipeline` loop, in one run.

Both use the same checkpoint and the same units (every unit of the example reports, repeated
to fill about 20 seconds); the pipeline baseline is what a user would write first: one
`pipeline("text-classification")` call per unit on the encoder and category head. Also
measures bfloat16, int8 dynamic quantisation and ONNX Runtime (float32 and int8), each with
its agreement with the float model; the ONNX graphs are exported into <model>/onnx/ on first use
(fused; `--onnx-unfused` adds the graphs as exported, the fusion's baseline).
Run: .venv/bin/python scripts/bench_tagger.py --model checkpoints/sectioncls-default
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sectioncls import ReportTagger
from sectioncls.modeling import SectionClsModel
from sectioncls.runtime import cpu_info
from sectioncls.segment import segment
from sectioncls.tagger import unit_inputs

ROOT = Path(__file__).resolve().parents[1]


class _PipelineModel(torch.nn.Module):
    """The category head exposed as a sequence classifier, so `pipeline` can drive it."""

    def __init__(self, model: SectionClsModel) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config

    @property
    def device(self) -> torch.device:
        return self.inner.device

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    def can_generate(self) -> bool:
        return False

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kw):
        from transformers.modeling_outputs import SequenceClassifierOutput

        out = self.inner(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return SequenceClassifierOutput(logits=out.category_logits)


def _pipeline(tagger: ReportTagger):
    from transformers import TextClassificationPipeline

    return TextClassificationPipeline(
        model=_PipelineModel(tagger.model), tokenizer=tagger.tokenizer, device=-1, top_k=None
    )


def _inputs(tagger: ReportTagger, units: list[dict]) -> list:
    pairs = [tagger.inputs.text(u) for u in units]
    return [{"text": t, "text_pair": p} if p else t for t, p in pairs]


def _best(scores) -> str:
    scores = scores[0] if scores and isinstance(scores[0], list) else scores
    return max(scores, key=lambda d: d["score"])["label"]


def pipeline_loop(tagger: ReportTagger, units: list[dict]) -> list[str]:
    """One pipeline call per unit (the baseline)."""
    pipe = _pipeline(tagger)
    labels = []
    for x in tqdm(_inputs(tagger, units), desc="pipeline, per unit", unit="unit", leave=False):
        labels.append(_best(pipe(x, truncation=True, max_length=tagger.inputs.max_seq_length)))
    return labels


def pipeline_batched(tagger: ReportTagger, units: list[dict], batch_size: int) -> list[str]:
    """`pipeline(units, batch_size=16)`: what a competent user writes first."""
    pipe = _pipeline(tagger)
    out = pipe(
        _inputs(tagger, units),
        batch_size=batch_size,
        truncation=True,
        max_length=tagger.inputs.max_seq_length,
    )
    return [_best(scores) for scores in out]


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _what(tagger: ReportTagger) -> str:
    rt = tagger.runtime
    return f"{rt.backend} {'int8' if rt.quantize else rt.dtype}"


def _unfused_rows(model: str, texts: list[str], reports, batch_size: int) -> list[tuple]:
    """ONNX Runtime on the graph as torch exports it: the baseline of the fusion."""
    import tempfile

    from sectioncls.onnx_backend import export_onnx

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quantize in (False, True):
            other = ReportTagger.from_pretrained(model, backend="torch", dtype="float32")
            export_onnx(other.model, tmp, quantize=quantize, fuse=False)
            other.use_onnx(tmp, quantize=quantize)
            name = f"ONNX Runtime {'int8' if quantize else 'float32'}, unfused graph"
            rows.append(_row(name, other, texts, reports, batch_size))
    return rows


def _row(name: str, other: ReportTagger, texts: list[str], reports, batch_size: int) -> tuple:
    """Time `other` over the texts (after a warm-up) and its agreement with `reports`."""
    other.tag_many(texts[:1])  # warm-up
    o_reports, t_o = timed(lambda: other.tag_many(texts, batch_size=batch_size))
    pairs = [
        (a, b)
        for r, o in zip(reports, o_reports, strict=True)
        for a, b in zip(r.units, o.units, strict=True)
    ]
    cat = np.mean([a.category == b.category for a, b in pairs])
    met = np.mean([a.metric == b.metric for a, b in pairs])
    n = len(pairs)
    return (name, n, t_o, n / t_o, f"{cat:.1%} cat / {met:.1%} metric")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="checkpoints/sectioncls-default")
    ap.add_argument("--repeat", type=int, default=1, help="copies of the example reports")
    ap.add_argument(
        "--baseline-units",
        type=int,
        default=200,
        help="units run through the slow pipeline loop (its rate is per unit)",
    )
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-onnx", action="store_true", help="without the ONNX extra")
    ap.add_argument(
        "--onnx-unfused",
        action="store_true",
        help="also time ONNX Runtime on the graph as exported, before fusion (exported into a "
        "temporary folder), to show what the fusion gives",
    )
    ap.add_argument(
        "--student",
        help="a smaller checkpoint (configs/train-student.yaml) timed beside the model, its "
        "agreement measured against the model's torch float32 labels",
    )
    args = ap.parse_args()

    import transformers

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = [p.read_text("utf-8") for p in sorted((ROOT / "examples/reports").glob("*.txt"))]
    texts = texts * args.repeat
    tagger = ReportTagger.from_pretrained(args.model, backend="torch", dtype="float32")
    units = [u for t in texts for u in unit_inputs(segment(t))]
    n = len(units)
    print(f"{n} units in {len(texts)} reports; torch threads {torch.get_num_threads()}")
    print(cpu_info().describe())

    tagger.tag_many(texts[:1])  # warm-up
    reports, t_lib = timed(lambda: tagger.tag_many(texts, batch_size=args.batch_size))
    lib_labels = [u.category for r in reports for u in r.units]

    sample = units[: args.baseline_units]
    base_labels, t_base = timed(pipeline_loop, tagger, sample)
    agree_base = np.mean([a == b for a, b in zip(base_labels, lib_labels, strict=False)])

    batched, t_batched = timed(pipeline_batched, tagger, units, args.batch_size)
    agree_batched = np.mean([a == b for a, b in zip(batched, lib_labels, strict=True)])

    rate_base = len(sample) / t_base
    rows = [
        ("per-unit pipeline loop (baseline)", len(sample), t_base, rate_base, "—"),
        (
            f"pipeline(units, batch_size={args.batch_size})",
            n,
            t_batched,
            n / t_batched,
            f"{agree_batched:.1%} cat",
        ),
        ("tag_many, torch float32", n, t_lib, n / t_lib, f"{agree_base:.1%} cat vs pipeline"),
    ]
    auto = ReportTagger.from_pretrained(args.model)
    print(f"auto: {auto.runtime.describe()}")
    variants = [
        (f"tag_many, auto ({_what(auto)})", {}),
        ("tag_many, torch bfloat16", {"dtype": "bfloat16"}),
        ("tag_many, torch int8 dynamic", {"quantize": True, "backend": "torch"}),
        ("tag_many, ONNX Runtime float32", {"backend": "onnx", "dtype": "float32"}),
        ("tag_many, ONNX Runtime int8", {"backend": "onnx", "quantize": True}),
    ]
    variants = [(args.model, name, kw) for name, kw in variants]
    if args.student:
        student_auto = ReportTagger.from_pretrained(args.student)
        layers = student_auto.model.encoder.config.num_hidden_layers
        print(f"student auto: {student_auto.runtime.describe()}")
        tag = f"student ({layers} layers)"
        variants += [
            (args.student, f"{tag}, auto ({_what(student_auto)})", {}),
            (args.student, f"{tag}, torch float32", {"backend": "torch", "dtype": "float32"}),
            (args.student, f"{tag}, torch int8", {"backend": "torch", "quantize": True}),
            (args.student, f"{tag}, ONNX float32", {"backend": "onnx", "dtype": "float32"}),
        ]
    for model, name, kwargs in variants:
        backend = kwargs.get("backend", auto.runtime.backend)
        if args.skip_onnx and backend == "onnx":
            continue
        other = ReportTagger.from_pretrained(model, **kwargs)  # exports onnx/ if missing
        rows.append(_row(name, other, texts, reports, args.batch_size))
    if args.onnx_unfused and not args.skip_onnx:
        rows += _unfused_rows(args.model, texts, reports, args.batch_size)

    print(f"\n{'system':<38}{'units':>7}{'seconds':>9}{'units/s':>9}{'× baseline':>12}  agreement")
    for name, k, t, rate, agree in rows:
        print(f"{name:<38}{k:>7}{t:>9.2f}{rate:>9.1f}{rate / rate_base:>12.1f}  {agree}")
    print(
        "\nagreement: torch float32 vs the pipeline's labels on the same units; "
        "every other row (the student's too) vs the model's torch float32."
    )


if __name__ == "__main__":
    main()
