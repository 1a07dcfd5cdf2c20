"""Throughput of ReportTagger against a per-unit `transformers.pipeline` loop, in one run.

Both use the same checkpoint and the same units (every unit of the example reports, repeated
to fill about 20 seconds); the pipeline baseline is what a user would write first: one
`pipeline("text-classification")` call per unit on the encoder and category head. Also
measures bfloat16, int8 dynamic quantisation and ONNX Runtime (float32 and int8), each with
its agreement with the float model; the ONNX graphs are exported into <model>/onnx/ on first use.
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
from sectioncls.modeling import SectionClsModel, build_inputs
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


def pipeline_loop(tagger: ReportTagger, units: list[dict]) -> list[str]:
    """One pipeline call per unit (the baseline)."""
    from transformers import TextClassificationPipeline

    pipe = TextClassificationPipeline(
        model=_PipelineModel(tagger.model), tokenizer=tagger.tokenizer, device=-1, top_k=None
    )
    labels = []
    for u in tqdm(units, desc="pipeline, per unit", unit="unit", leave=False):
        text, pair = build_inputs(u, tagger.context)
        out = pipe(
            {"text": text, "text_pair": pair} if pair else text,
            truncation=True,
            max_length=tagger.max_seq_length,
        )
        scores = out[0] if out and isinstance(out[0], list) else out  # one input → its list
        labels.append(max(scores, key=lambda d: d["score"])["label"])
    return labels


def cpu_line() -> str:
    """The CPU and whether it has native bf16/int8 dot products: the ratios depend on them."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "cpu: unknown"
    lines = info.splitlines()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), "?")
    flags = set(next((ln for ln in lines if ln.startswith("flags")), "").split())
    native = [f for f in ("avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni") if f in flags]
    return f"cpu: {name}; {', '.join(native) or 'no bf16/VNNI instructions'}"


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


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
    args = ap.parse_args()

    import transformers

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = [p.read_text("utf-8") for p in sorted((ROOT / "examples/reports").glob("*.txt"))]
    texts = texts * args.repeat
    tagger = ReportTagger.from_pretrained(args.model)
    units = [u for t in texts for u in unit_inputs(segment(t))]
    n = len(units)
    print(f"{n} units in {len(texts)} reports; torch threads {torch.get_num_threads()}")
    print(cpu_line())

    tagger.tag_many(texts[:1])  # warm-up
    reports, t_lib = timed(lambda: tagger.tag_many(texts, batch_size=args.batch_size))
    lib_labels = [u.category for r in reports for u in r.units]

    sample = units[: args.baseline_units]
    base_labels, t_base = timed(pipeline_loop, tagger, sample)
    agree_base = np.mean([a == b for a, b in zip(base_labels, lib_labels, strict=False)])

    rate_base = len(sample) / t_base
    rows = [
        ("per-unit pipeline loop (baseline)", len(sample), t_base, rate_base, "—"),
        ("tag_many, torch float32", n, t_lib, n / t_lib, f"{agree_base:.1%} cat vs pipeline"),
    ]
    variants = [
        ("tag_many, torch bfloat16", {"dtype": "bfloat16"}),
        ("tag_many, torch int8 dynamic", {"quantize": True}),
        ("tag_many, ONNX Runtime float32", {"backend": "onnx"}),
        ("tag_many, ONNX Runtime int8", {"backend": "onnx", "quantize": True}),
    ]
    for name, kwargs in variants:
        if args.skip_onnx and kwargs.get("backend") == "onnx":
            continue
        other = ReportTagger.from_pretrained(args.model, **kwargs)  # exports onnx/ if missing
        other.tag_many(texts[:1])  # warm-up
        o_reports, t_o = timed(lambda o=other: o.tag_many(texts, batch_size=args.batch_size))
        pairs = [
            (a, b)
            for r, o in zip(reports, o_reports, strict=True)
            for a, b in zip(r.units, o.units, strict=True)
        ]
        cat = np.mean([a.category == b.category for a, b in pairs])
        met = np.mean([a.metric == b.metric for a, b in pairs])
        rows.append((name, n, t_o, n / t_o, f"{cat:.1%} cat / {met:.1%} metric"))

    print(f"\n{'system':<36}{'units':>7}{'seconds':>9}{'units/s':>9}{'× baseline':>12}  agreement")
    for name, k, t, rate, agree in rows:
        print(f"{name:<36}{k:>7}{t:>9.2f}{rate:>9.1f}{rate / rate_base:>12.1f}  {agree}")
    print(
        "\nagreement: torch float32 vs the pipeline's labels on the same units; "
        "every other row vs torch float32."
    )


if __name__ == "__main__":
    main()
