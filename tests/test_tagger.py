"""ReportTagger and `sectioncls tag`: offsets, batching, bad input, outputs, exit codes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import subprocess
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from sectioncls import ReportTagger
from sectioncls.cli import main
from sectioncls.render import report_html
from sectioncls.runtime import CpuInfo, Int8Evidence, choose_runtime
from sectioncls.tagger import CheckpointError
from sectioncls.training import TrainConfig, train
from test_training import _UNITS, ls_task

ROOT = Path(__file__).resolve().parents[1]
REPORTS = sorted((ROOT / "examples" / "reports").glob("*.txt"))


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tagger")
    tasks = [
        ls_task(i + 1, f"doc{i % 2}", i, t, p, c, m) for i, (t, c, m, p) in enumerate(_UNITS * 4)
    ]
    export = tmp / "export.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    cfg = TrainConfig(
        base_model=str(tiny_bert_dir),
        annotations=[str(export)],
        output_dir=str(tmp / "model"),
        epochs=1,
        batch_size=8,
        max_seq_length=48,
        context=["section", "heading_path"],
    )
    train(cfg, progress=False)
    return tmp / "model"


@pytest.fixture(scope="module")
def tiny_max_model(tiny_model, tmp_path_factory) -> Path:
    """The same training run with the default config's max-pooled metric head."""
    tmp = tmp_path_factory.mktemp("tagger-max")
    cfg = TrainConfig.from_yaml(tiny_model / "training_config.yaml")
    cfg = dataclasses.replace(cfg, metric_pooling="max", output_dir=str(tmp / "model"))
    train(cfg, progress=False)
    return tmp / "model"


@pytest.fixture(scope="module")
def tagger(tiny_model) -> ReportTagger:
    # Pinned: "auto" would pick per machine, and these tests compare against plain float32.
    return ReportTagger.from_pretrained(tiny_model, backend="torch", dtype="float32")


def test_offsets_index_the_input_and_fields_are_complete(tagger):
    text = REPORTS[0].read_text("utf-8")
    report = tagger.tag(text, doc_id="000")
    assert report.units
    for u in report.units:
        assert text[u.start : u.end] == u.text
        assert set(u.scores) == {"achievement", "problem", "plan", "other"}
        assert abs(sum(u.scores.values()) - 1) < 1e-3
        assert u.category == max(u.scores, key=u.scores.get)
        assert 0 <= u.metric_score <= 1
        for q in u.metrics:
            assert text[q.start : q.end] == q.text
    df = report.to_dataframe()
    assert len(df) == len(report.units) and "score_problem" in df.columns
    assert report.to_dict()["units"][0]["doc_id"] == "000"


def test_part_is_the_predicted_category_of_the_top_heading(tagger):
    report = tagger.tag(REPORTS[3].read_text("utf-8"))
    top = min(u.level for u in report.units if u.kind == "heading" and u.level)
    part = None
    for u in report.units:
        if u.kind == "heading" and u.level == top:
            part = u.category
        assert u.part == (None if u.kind == "meta" else part)
    assert set(report.summary()) <= {"opening", *tagger.categories}


def test_batch_and_one_by_one_agree(tagger):
    texts = [p.read_text("utf-8") for p in REPORTS]
    many = tagger.tag_many(texts, doc_ids=[p.stem for p in REPORTS], batch_size=7)
    for text, batched in zip(texts, many, strict=True):
        single = tagger.tag(text, batch_size=1)
        assert [u.category for u in single.units] == [u.category for u in batched.units]
        assert [u.metric for u in single.units] == [u.metric for u in batched.units]
        for a, b in zip(single.units, batched.units, strict=True):
            assert a.scores == pytest.approx(b.scores, abs=1e-3)


def test_reports_are_read_in_order(tagger):
    """`tag` scores are the forward-backward posteriors of the unit probabilities under the
    checkpoint's transitions; without transitions they are the units' own probabilities."""
    import copy

    from sectioncls.inputs import unit_records
    from sectioncls.segment import segment
    from sectioncls.sequence import smooth

    text = REPORTS[0].read_text("utf-8")
    assert tagger.transitions is not None and tagger.transitions.counts["documents"] == 2
    assert tagger.describe_order().startswith("in order")
    p_cat, _ = tagger.predict_units(unit_records(segment(text)))
    scores = np.array([list(u.scores.values()) for u in tagger.tag(text).units])
    assert scores == pytest.approx(smooth(p_cat, tagger.transitions), abs=1e-3)
    alone = copy.copy(tagger)
    alone.transitions = None
    assert alone.describe_order().startswith("each unit alone")
    scores = np.array([list(u.scores.values()) for u in alone.tag(text).units])
    assert scores == pytest.approx(p_cat, abs=1e-3)


def test_empty_and_huge_inputs(tagger):
    assert tagger.tag("").units == []
    huge = "全年办理案件12件,调解成功率95%" * 3000 + "。"
    report = tagger.tag(huge)
    assert len(report.units) == 1 and report.units[0].end == len(huge)


def test_save_pretrained_round_trip(tagger, tmp_path):
    out = tagger.save_pretrained(tmp_path / "copy")
    again = ReportTagger.from_pretrained(out, backend="torch", dtype="float32")
    text = REPORTS[1].read_text("utf-8")
    assert [u.scores for u in again.tag(text).units] == [u.scores for u in tagger.tag(text).units]


def test_missing_and_half_written_checkpoints(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match=r"no model here.*make demo"):
        ReportTagger.from_pretrained(tmp_path / "nothing")
    half = tmp_path / "half"
    shutil.copytree(tiny_model, half)
    (half / "sectioncls.json").unlink()
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint.*sectioncls\.json"):
        ReportTagger.from_pretrained(half)


def test_checkpoint_format_is_checked(tiny_model, tmp_path):
    from sectioncls.errors import SectionClsError

    newer = tmp_path / "newer"
    shutil.copytree(tiny_model, newer)
    marker = json.loads((newer / "sectioncls.json").read_text("utf-8"))
    assert marker["format"] == 3
    (newer / "sectioncls.json").write_text(json.dumps({**marker, "format": 99}), "utf-8")
    with pytest.raises(CheckpointError, match=r"format 99, written by a newer sectioncls"):
        ReportTagger.from_pretrained(newer)
    old = tmp_path / "old"  # format 1 (before the title/headings fields) still loads
    shutil.copytree(tiny_model, old)
    (old / "sectioncls.json").write_text(json.dumps({**marker, "format": 1}), "utf-8")
    ReportTagger.from_pretrained(old)
    assert issubclass(CheckpointError, SectionClsError)
    assert main(["tag", str(REPORTS[0]), "-m", str(newer), "--quiet"]) == 2


def _read_only_copy(model: Path, dest: Path, monkeypatch) -> Path:
    """A copy of `model` without its ONNX graphs, where no graph can be written."""

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    shutil.copytree(model, dest, ignore=shutil.ignore_patterns("onnx"))
    monkeypatch.setattr("sectioncls.tagger.export_onnx", refuse)
    return dest


def test_quantized_tagger_runs(tiny_model):
    q = ReportTagger.from_pretrained(tiny_model, quantize=True, backend="torch")
    report = q.tag(REPORTS[3].read_text("utf-8"))
    assert report.units and q.quantized and q.runtime.quantize


def test_onnx_backend_agrees_with_torch(tiny_model, tagger, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    onnx = ReportTagger.from_pretrained(model, backend="onnx")
    graph = model / "onnx" / "model_ort.onnx"
    assert onnx.backend == "onnx" and graph.is_file()
    assert not list(graph.parent.glob("*.tmp"))  # written atomically
    texts = [p.read_text("utf-8") for p in REPORTS]
    for a, b in zip(tagger.tag_many(texts), onnx.tag_many(texts), strict=True):
        assert [u.category for u in a.units] == [u.category for u in b.units]
        assert [u.metric for u in a.units] == [u.metric for u in b.units]
        for ua, ub in zip(a.units, b.units, strict=True):
            assert ua.scores == pytest.approx(ub.scores, abs=1e-3)
    # The graph is reused, not exported again; int8 is a second graph beside it.
    mtime = graph.stat().st_mtime_ns
    q = ReportTagger.from_pretrained(model, backend="onnx", quantize=True)
    assert graph.stat().st_mtime_ns == mtime
    assert (model / "onnx" / "model_ort_int8_per_channel.onnx").is_file()
    assert q.quantized and q.tag(texts[3]).units


def test_onnx_graph_is_fused_and_checked(tiny_model, tmp_path):
    # The exported graph carries ONNX Runtime's fused operators, one Attention per layer, and
    # its int8 copy quantises that attention (QAttention), which is where int8 gains most.
    onnx_lib = pytest.importorskip("onnx")
    from sectioncls.onnx_backend import onnx_path

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model, ignore=shutil.ignore_patterns("onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fusion that falls back warns; here it must not
        ReportTagger.from_pretrained(model, backend="onnx", quantize=True)

    def ops(quantize: bool) -> dict[str, int]:
        graph = onnx_lib.load(str(onnx_path(model, quantize))).graph
        return Counter(n.op_type for n in graph.node)

    layers = ReportTagger.from_pretrained(model).model.encoder.config.num_hidden_layers
    assert ops(False)["Attention"] == layers and ops(False)["SkipLayerNormalization"] > 0
    assert ops(True)["QAttention"] == layers
    # One weight scale per output channel, and the embedding tables left in float32.
    quantized = onnx_lib.load(str(onnx_path(model, True))).graph
    scales = {i.name: list(i.dims) for i in quantized.initializer}
    hidden = ReportTagger.from_pretrained(model).model.encoder.config.hidden_size
    for node in quantized.node:
        if node.op_type == "QAttention":
            assert scales[node.input[4]] == [3 * hidden]  # weight_scale, one per Q/K/V column
    assert ops(True)["DequantizeLinear"] == 0


def test_onnx_fusion_that_fails_keeps_the_exported_graph(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from sectioncls.onnx_backend import fuse_for_ort, onnx_path

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    ReportTagger.from_pretrained(model, backend="onnx")
    graph = onnx_path(model)
    before = graph.read_bytes()

    def broken(model, *args, **kwargs):
        raise RuntimeError("no pattern fits")

    monkeypatch.setattr("onnxscript.rewriter.ort_fusions.optimize_for_ort", broken)
    with pytest.warns(UserWarning, match="left unfused.*no pattern fits"):
        assert fuse_for_ort(graph) == {}
    assert graph.read_bytes() == before and not list(graph.parent.glob("*.fused"))


def test_max_metric_pooling_batches_and_exports_like_torch(tiny_max_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_max_model, model)
    torch_tagger = ReportTagger.from_pretrained(model, backend="torch", dtype="float32")
    assert torch_tagger.model.config.metric_pooling == "max"
    texts = [p.read_text("utf-8") for p in REPORTS]
    many = torch_tagger.tag_many(texts, batch_size=7)
    onnx = ReportTagger.from_pretrained(model, backend="onnx").tag_many(texts)
    for text, a, b in zip(texts, many, onnx, strict=True):
        single = torch_tagger.tag(text, batch_size=1)
        for us, ua, ub in zip(single.units, a.units, b.units, strict=True):
            assert us.metric_score == pytest.approx(ua.metric_score, abs=1e-3)
            assert ua.metric_score == pytest.approx(ub.metric_score, abs=1e-3)
            assert us.category == ua.category == ub.category


def test_bfloat16_tagger(tiny_model, tagger):
    bf16 = ReportTagger.from_pretrained(tiny_model, dtype="bfloat16")
    assert bf16.dtype == "bfloat16"
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    text = REPORTS[2].read_text("utf-8")
    a, b = tagger.tag(text), bf16.tag(text)
    assert [u.text for u in a.units] == [u.text for u in b.units]
    for ua, ub in zip(a.units, b.units, strict=True):
        assert ub.scores == pytest.approx(ua.scores, abs=0.05)  # bf16 keeps ~3 digits
        assert ub.category == max(ub.scores, key=ub.scores.get)
    with pytest.raises(ValueError, match="float32"):
        bf16.save_pretrained(tiny_model.parent / "bf16-copy")
    assert not (tiny_model.parent / "bf16-copy").exists()
    with pytest.raises(ValueError, match="dtype"):
        ReportTagger.from_pretrained(tiny_model, dtype="bfloat16", quantize=True)
    with pytest.raises(ValueError, match="dtype"):
        ReportTagger.from_pretrained(tiny_model, dtype="float16")


def test_auto_takes_the_fastest_exact_path_and_says_why(tiny_model, tmp_path, monkeypatch):
    from sectioncls.runtime import cpu_info

    auto = ReportTagger.from_pretrained(tiny_model)
    expect = choose_runtime()
    assert (auto.runtime.backend, auto.runtime.dtype) == (expect.backend, expect.dtype)
    assert not auto.runtime.quantize and auto.runtime.reason
    assert auto.runtime.describe() in repr(auto) and str(tiny_model) in repr(auto)
    if cpu_info().native_bf16:
        assert auto.dtype == "bfloat16"

    # A checkpoint where no ONNX graph can be written: "auto" falls back to torch instead of
    # failing, an explicit backend="onnx" keeps the clear error.
    copy = _read_only_copy(tiny_model, tmp_path / "ro", monkeypatch)
    fallback = ReportTagger.from_pretrained(copy, dtype="float32")
    assert fallback.runtime.backend == "torch" and fallback.tag("一、总体情况").units
    if expect.backend == "onnx" or choose_runtime(dtype="float32").backend == "onnx":
        assert "read-only" in fallback.runtime.reason
        with pytest.raises(CheckpointError, match="export-onnx"):
            ReportTagger.from_pretrained(copy, backend="onnx")


def test_runtime_choice_per_machine():
    avx2 = CpuInfo("AMD EPYC", frozenset({"avx2", "fma"}))
    bf16 = CpuInfo("AMD EPYC", frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}))
    amx = CpuInfo("Intel Xeon", frozenset({"avx2", "avx512f", "amx_bf16"}))
    assert bf16.describe() == "cpu: AMD EPYC; AVX2, AVX-512, AVX512-BF16, AVX512-VNNI"
    pick = choose_runtime(cpu=avx2, onnx_available=True)
    assert (pick.backend, pick.dtype) == ("onnx", "float32") and "no native bf16" in pick.reason
    pick = choose_runtime(cpu=avx2, onnx_available=False)
    assert (pick.backend, pick.dtype) == ("torch", "float32")
    for cpu in (bf16, amx):
        pick = choose_runtime(cpu=cpu, onnx_available=True)
        assert (pick.backend, pick.dtype) == ("torch", "bfloat16")
    # Explicit requests are kept; bf16 without native support says it will be slow.
    assert "slower" in choose_runtime(dtype="bfloat16", cpu=avx2).reason
    assert choose_runtime("torch", cpu=bf16).dtype == "bfloat16"
    assert choose_runtime("onnx", cpu=bf16, onnx_available=True).dtype == "float32"
    # int8 only when asked: torch's, ONNX Runtime's only on its own cross-validated evidence.
    q = choose_runtime(quantize=True, cpu=bf16, onnx_available=True)
    assert (q.backend, q.quantize) == ("torch", True)
    evidence = Int8Evidence(0.99, 0.99, 0.98, 0.98)
    q = choose_runtime(quantize=True, cpu=bf16, onnx_available=True, onnx_int8=evidence)
    assert (q.backend, q.quantize) == ("onnx", True)
    # GPUs: float32, measured faster than bf16 for this small encoder on an H200.
    gpu = choose_runtime(device="cuda", cuda_bf16=True, cpu=avx2)
    assert (gpu.backend, gpu.dtype, gpu.device) == ("torch", "float32", "cuda")
    assert "H200" in gpu.reason
    assert choose_runtime(device="cuda", dtype="bfloat16", cpu=avx2).dtype == "bfloat16"
    with pytest.raises(ValueError, match="CPU"):
        choose_runtime("onnx", device="cuda", onnx_available=True)
    # No device named: the GPU when there is one, except for what runs on the CPU only.
    seen = choose_runtime(cpu=avx2, cuda_available=True, cuda_bf16=True)
    assert (seen.device, seen.dtype) == ("cuda", "float32")
    assert choose_runtime(cpu=avx2, cuda_available=False, onnx_available=False).device == "cpu"
    onnx = choose_runtime("onnx", cpu=avx2, cuda_available=True, onnx_available=True)
    assert onnx.device == "cpu"
    assert choose_runtime(quantize=True, cpu=avx2, cuda_available=True).device == "cpu"
    with pytest.raises(ImportError, match="sectioncls\\[onnx\\]"):
        choose_runtime("onnx", onnx_available=False)


def _cv_with_int8(macro: float, int8_macro: float, metric: float, int8_metric: float) -> dict:
    def pooled(m: float, f: float) -> dict:
        return {"pooled": {"category_macro_f1": m, "metric_f1": f}}

    return {"systems": {"fine-tuned tagger": pooled(macro, metric),
                        "fine-tuned tagger, int8": pooled(int8_macro, int8_metric)}}  # fmt: skip


def test_int8_is_auto_only_without_bf16_and_with_cross_validated_evidence():
    from sectioncls.runtime import INT8_TOLERANCE, Int8Evidence

    avx2 = CpuInfo("AMD EPYC", frozenset({"avx2", "fma"}))
    bf16 = CpuInfo("AMD EPYC", frozenset({"avx2", "avx512f", "avx512_bf16"}))
    names = ("fine-tuned tagger", "fine-tuned tagger, int8")
    close = Int8Evidence.from_cv(_cv_with_int8(0.992, 0.990, 0.983, 0.980), *names)
    far = Int8Evidence.from_cv(_cv_with_int8(0.992, 0.980, 0.983, 0.983), *names)
    assert close is not None and close.holds and far is not None and not far.holds
    assert INT8_TOLERANCE == 0.005
    assert Int8Evidence.from_cv({"systems": {}}, *names) is None  # trained without --int8
    pick = choose_runtime(cpu=avx2, onnx_available=True, int8=close)
    assert (pick.backend, pick.quantize) == ("torch", True)
    assert "0.990 vs 0.992" in pick.reason and "cross-validation" in pick.reason
    assert not choose_runtime(cpu=avx2, onnx_available=True, int8=far).quantize
    assert choose_runtime(cpu=bf16, int8=close).dtype == "bfloat16"  # exact and faster there
    assert not choose_runtime(cpu=avx2, dtype="float32", int8=close).quantize  # asked exact
    assert not choose_runtime("onnx", cpu=avx2, onnx_available=True, int8=close).quantize
    # With several seeds the evidence is their mean: one unit either way is not a verdict.
    two = _cv_with_int8(0.995, 0.989, 0.990, 0.987)
    per_seed = {
        names[0]: {"42": (0.995, 0.990), "7": (0.995, 0.987)},
        names[1]: {"42": (0.989, 0.987), "7": (0.995, 0.990)},
    }
    for name, seeds in per_seed.items():
        two["systems"][name]["pooled_by_seed"] = {
            k: {"category_macro_f1": m, "metric_f1": f} for k, (m, f) in seeds.items()
        }
    mean = Int8Evidence.from_cv(two, *names)
    assert mean is not None and mean.seeds == 2 and mean.holds
    assert mean.int8_macro_f1 == pytest.approx(0.992) and "mean of 2 seeds" in mean.describe()


def test_auto_reads_the_checkpoints_int8_evidence(tiny_model, tmp_path, monkeypatch):
    avx2 = CpuInfo("AMD EPYC", frozenset({"avx2", "fma"}))
    monkeypatch.setattr("sectioncls.runtime.cpu_info", lambda: avx2)
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    (model / "metrics.json").write_text(
        json.dumps({"cv": _cv_with_int8(0.99, 0.99, 0.98, 0.979)}), "utf-8"
    )
    tagger = ReportTagger.from_pretrained(model, device="cpu")
    assert tagger.quantized and tagger.runtime.quantize and "int8" in repr(tagger)
    assert tagger.tag("一、总体情况\n全年办结案件12件。").units
    exact = ReportTagger.from_pretrained(model, device="cpu", dtype="float32")
    assert not exact.quantized
    (model / "metrics.json").write_text("{not json", "utf-8")  # no evidence: float32
    assert not ReportTagger.from_pretrained(model, device="cpu").quantized


def test_auto_prefers_onnx_int8_only_on_its_own_evidence(tiny_model, tmp_path, monkeypatch):
    # ONNX Runtime's int8 (fused, QAttention) is the faster int8, but its labels are not
    # torch's: `auto` takes it only where the cross-validation scored it, and a read-only
    # checkpoint that cannot hold its graph falls back to what torch's own evidence allows.
    pytest.importorskip("onnxruntime")
    from sectioncls.onnx_backend import INT8_RECIPE

    avx2 = CpuInfo("AMD EPYC", frozenset({"avx2", "fma"}))
    monkeypatch.setattr("sectioncls.runtime.cpu_info", lambda: avx2)
    cv = _cv_with_int8(0.99, 0.99, 0.98, 0.979)
    cv["systems"]["fine-tuned tagger, int8 (ONNX Runtime)"] = cv["systems"].pop(
        "fine-tuned tagger, int8"
    )
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model, ignore=shutil.ignore_patterns("onnx"))
    # Figures scored on another int8 recipe are figures of another graph: not evidence.
    cv["int8_kernels"] = {"onnx_int8": "7-bit weights, one scale per matrix"}
    (model / "metrics.json").write_text(json.dumps({"cv": cv}), "utf-8")
    assert not ReportTagger.from_pretrained(model, device="cpu").quantized
    cv["int8_kernels"] = {"onnx_int8": INT8_RECIPE}
    (model / "metrics.json").write_text(json.dumps({"cv": cv}), "utf-8")
    tagger = ReportTagger.from_pretrained(model, device="cpu")
    assert (tagger.backend, tagger.quantized) == ("onnx", True)
    assert "ONNX Runtime int8 scored within" in tagger.runtime.reason
    assert (model / "onnx" / "model_ort_int8_per_channel.onnx").is_file()

    readonly = _read_only_copy(model, tmp_path / "ro", monkeypatch)
    fallback = ReportTagger.from_pretrained(readonly, device="cpu")
    assert fallback.runtime.backend == "torch" and not fallback.runtime.quantize
    assert "read-only" in fallback.runtime.reason


def test_runtime_prefers_evidenced_onnx_int8_over_torch_int8():
    from sectioncls.runtime import Int8Evidence

    avx2 = CpuInfo("AMD EPYC", frozenset({"avx2", "fma"}))
    close, far = Int8Evidence(0.99, 0.99, 0.98, 0.98), Int8Evidence(0.99, 0.95, 0.98, 0.98)
    both = choose_runtime(cpu=avx2, onnx_available=True, int8=close, onnx_int8=close)
    assert (both.backend, both.quantize) == ("onnx", True)
    only_torch = choose_runtime(cpu=avx2, onnx_available=True, int8=close, onnx_int8=far)
    assert (only_torch.backend, only_torch.quantize) == ("torch", True)
    no_ort = choose_runtime(cpu=avx2, onnx_available=False, int8=far, onnx_int8=close)
    assert (no_ort.backend, no_ort.quantize) == ("torch", False)
    asked_torch = choose_runtime("torch", cpu=avx2, onnx_available=True, onnx_int8=close)
    assert not asked_torch.quantize


def test_a_onednn_cap_takes_native_bf16_away(monkeypatch):
    from sectioncls.runtime import _capped

    flags = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"})
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert _capped(flags) == {"avx2"}
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert CpuInfo("x", _capped(flags)).native_bf16 == "avx512_bf16"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert _capped(flags) == flags


def test_unknown_backend_is_refused(tiny_model):
    with pytest.raises(ValueError, match="backend"):
        ReportTagger.from_pretrained(tiny_model, backend="tensorrt")


# ----------------------------------------------------------------------------- CLI


def test_cli_jsonl_fields(tiny_model, capsys):
    assert main(["tag", str(REPORTS[3]), "-m", str(tiny_model), "--quiet"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {
        "doc_id",
        "index",
        "start",
        "end",
        "text",
        "kind",
        "level",
        "heading_path",
        "section",
        "part",
        "category",
        "scores",
        "metric",
        "metric_score",
        "metrics",
    } == set(rows[0])


def test_cli_one_bad_file_is_skipped_others_written(tiny_model, tmp_path, capsys):
    bad = tmp_path / "binary.txt"
    bad.write_bytes(bytes(range(256)) * 10)
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("一、工作情况\n全年办理案件12件。\n".encode("gbk"))
    out = tmp_path / "out.csv"
    code = main(
        [
            "tag",
            str(bad),
            str(gbk),
            "-m",
            str(tiny_model),
            "--format",
            "csv",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert code == 1
    assert "binary.txt" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
    assert [r["text"] for r in rows] == ["一、工作情况", "全年办理案件12件。"]


def test_cli_export_onnx_and_tag_with_it(tiny_model, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    assert main(["export-onnx", "--model", str(model)]) == 0
    assert capsys.readouterr().out.strip() == str(model / "onnx" / "model_ort.onnx")
    out = tmp_path / "tags.jsonl"
    args = [str(REPORTS[3]), "--model", str(model), "--backend", "onnx", "-o", str(out)]
    assert main(["tag", *args, "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert rows and {"category", "scores", "metric"} <= rows[0].keys()


def test_cli_bfloat16_and_refused_combination(tiny_model, tmp_path, capsys):
    out = tmp_path / "bf16.jsonl"
    args = ["tag", str(REPORTS[3]), "-m", str(tiny_model), "-o", str(out), "--quiet"]
    assert main([*args, "--dtype", "bfloat16"]) == 0
    assert [json.loads(line)["category"] for line in out.read_text("utf-8").splitlines()]
    out.unlink()
    assert main([*args, "--dtype", "bfloat16", "--quantize"]) == 2
    assert "dtype" in capsys.readouterr().err and not out.exists()


def test_cli_missing_model_exit_code_and_no_output(tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    assert main(["tag", str(REPORTS[0]), "-m", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert "make demo" in capsys.readouterr().err
    assert not out.exists()


def _score_export(tmp_path: Path, docs: list[str]) -> Path:
    tasks = [
        ls_task(len(docs) * i + k + 1, doc, i, t, p, c, m)
        for k, doc in enumerate(docs)
        for i, (t, c, m, p) in enumerate(_UNITS)
    ]
    export = tmp_path / "labelled.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    return export


def test_cli_score_leaves_out_reports_the_model_trained_on(tiny_model, tmp_path, capsys):
    """`score` is a held-out figure: reports in the checkpoint's training data are left out
    (doc0 trained tiny_model), unless asked for, and then the output says so."""
    export = _score_export(tmp_path, ["doc0", "new1", "new2"])
    out = tmp_path / "scored"
    assert main(["score", str(export), "-m", str(tiny_model), "-o", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "left out 1 report(s) the model trained on (doc0)" in captured.err
    assert "| fine-tuned tagger |" in captured.out and "not a held-out" not in captured.out
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert results["folds_kind"] == ["new1", "new2"]
    assert results["data"]["units"] == 2 * len(_UNITS)
    assert results["seen_in_training"] == []
    assert {"results.md", "errors.csv", "results.json"} <= {p.name for p in out.iterdir()}
    pooled = results["systems"]["fine-tuned tagger"]["pooled"]
    # The pooled accuracy and the errors file describe the same predictions.
    wrong = sum(e["gold_category"] != e["pred_category"] for e in results["errors"])
    assert wrong == round((1 - pooled["category_accuracy"]) * 2 * len(_UNITS))
    assert {e["held_out"] for e in results["errors"]} <= {"new1", "new2"}
    # The section rule is scored on the same units, beside the model.
    assert "section rule + number regex" in results["systems"]
    assert "All units pooled" in (out / "results.md").read_text("utf-8")

    assert main(["score", str(export), "-m", str(tiny_model), "--include-seen", "--quiet"]) == 0
    assert "not a held-out figure: the model trained on 1 of these" in capsys.readouterr().out


def test_cli_score_refuses_a_score_on_training_reports_and_bad_inputs(tiny_model, tmp_path, capsys):
    export = _score_export(tmp_path, ["doc0", "doc1"])
    out = tmp_path / "scored"
    assert main(["score", str(export), "-m", str(tiny_model), "-o", str(out)]) == 2
    assert "trained on every report selected" in capsys.readouterr().err
    assert not out.exists()
    assert main(["score", str(export), "-m", str(tiny_model), "--reports", "w9"]) == 2
    assert "matches --reports w9" in capsys.readouterr().err
    assert main(["score", str(export), "-m", str(tmp_path / "none"), "-o", str(out)]) == 2
    assert not out.exists()
    empty = tmp_path / "empty.json"
    empty.write_text("", "utf-8")
    assert main(["score", str(empty), "-m", str(tiny_model), "-o", str(out)]) == 2
    assert str(empty) in capsys.readouterr().err
    assert not out.exists()


def test_cli_shards_split_the_files(tiny_model, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"s{i}.jsonl"
        assert (
            main(
                [
                    "tag",
                    str(ROOT / "examples" / "reports"),
                    "-m",
                    str(tiny_model),
                    "--shard",
                    f"{i}/2",
                    "-o",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        outs.append({json.loads(x)["doc_id"] for x in out.read_text("utf-8").splitlines()})
    assert not outs[0] & outs[1] and len(outs[0] | outs[1]) == 4
    assert main(["tag", str(REPORTS[0]), "-m", str(tiny_model), "--shard", "2/2"]) == 2


def test_cli_html_folder(tiny_model, tmp_path):
    out = tmp_path / "html"
    assert (
        main(
            [
                "tag",
                str(ROOT / "examples" / "reports"),
                "-m",
                str(tiny_model),
                "--format",
                "html",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p.stem}.html" for p in REPORTS] + ["index.html"]
    )


# ----------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_html_renders_in_a_real_browser(tagger, tmp_path):
    text = REPORTS[0].read_text("utf-8")
    report = tagger.tag(text, doc_id="000_9ab697e020cfd5b9")
    page = tmp_path / "report.html"
    page.write_text(report_html(report, tagger.categories), "utf-8")
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"]
    png = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={png}", page.as_uri()], check=True, capture_output=True, timeout=120
    )
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    assert dom.count('class="u cat-') == len(report.units)
    assert 'id="summary"' in dom and 'class="cat-filter"' in dom
    assert "一、2022年工作开展情况" in dom


@pytest.mark.integration
def test_studio_push_with_tagger_predictions(studio_server, tiny_model):
    """`sectioncls studio push --predictions MODEL_DIR` pre-annotates with the real tagger."""
    from sectioncls.studio.client import StudioClient

    url, token = studio_server
    args = ["--url", url, "--token", token]
    code = main(
        [
            "studio",
            "push",
            str(REPORTS[3]),
            "--project",
            "with-predictions",
            "--predictions",
            str(tiny_model),
            *args,
        ]
    )
    assert code == 0
    client = StudioClient(url, token)
    tasks = client.tasks(client.require_project("with-predictions"), with_annotations=True)
    assert len(tasks) == len(
        ReportTagger.from_pretrained(tiny_model).tag(REPORTS[3].read_text("utf-8")).units
    )
    for task in tasks:
        assert 0.0 <= task["data"]["uncertainty"] <= 1.0
        (pred,) = task["predictions"]
        assert pred["model_version"] and 0.0 <= pred["score"] <= 1.0
        # the suggestion: the category's Chinese name, its hotkey, the metric and confidence
        (said,) = [r["value"]["text"][0] for r in pred["result"]]
        assert said.split("（按")[0] in {"成效/举措", "问题/不足", "计划/打算", "其他"}
