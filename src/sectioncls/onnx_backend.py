"""ONNX Runtime backend for the tagger: export a checkpoint once, then run it on CPU.

The exported graph is rewritten into ONNX Runtime's fused transformer operators (Attention,
SkipLayerNormalization, BiasGelu) by onnxscript's maintained fusion rules, checked against the
unfused graph, and only then kept; quantised to int8, the fused attention becomes QAttention.
Whether this beats torch depends on the CPU: `scripts/bench_tagger.py` measures speed and
agreement side by side. The graphs live next to the weights, in `<checkpoint>/onnx/`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .textio import atomic_path

__all__ = [
    "INT8_RECIPE",
    "ONNX_DIR",
    "OnnxRunner",
    "export_onnx",
    "fuse_for_ort",
    "onnx_path",
    "quantize_int8",
]

ONNX_DIR = "onnx"
# Named for the fused graphs and the int8 recipe: a graph written by an older recipe (model.onnx
# unfused, model_ort_int8.onnx one scale per matrix) is written again, not silently reused.
_FILES = {False: "model_ort.onnx", True: "model_ort_int8_per_channel.onnx"}
# What the int8 graph quantises: the matrix products, as torch's dynamic int8 does. The
# embedding tables (Gather) cost no compute, so quantising them only adds error.
_INT8_OPS = ["MatMul", "Attention"]
# Recorded with the cross-validation that scores this graph: evidence gathered on another
# recipe is evidence for another graph (`tagger.int8_evidence`).
INT8_RECIPE = "7-bit weights, one scale per output channel, MatMul and Attention"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INSTALL = "install the ONNX extra: pip install 'sectioncls[onnx]'"


def onnx_path(checkpoint: str | os.PathLike[str], quantize: bool = False) -> Path:
    """Where the float (or int8) graph of a checkpoint lives."""
    return Path(checkpoint) / ONNX_DIR / _FILES[quantize]


class _Probabilities(torch.nn.Module):
    """The exported graph ends in probabilities, so both backends post-process nothing."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model.probabilities(input_ids, attention_mask, token_type_ids)


def _require() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"the ONNX backend needs {exc.name}: {_INSTALL}") from exc


def _example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # A padded example: traced with an all-ones mask, the exporter may specialise the
    # attention mask away and the graph then gives wrong answers on padded batches. Varied
    # ids (all below 100, inside any vocabulary) make it a real check of a fused graph.
    ids = torch.arange(32, dtype=torch.long).reshape(2, 16) * 7 % 97 + 1
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    return ids, mask, torch.zeros_like(ids)


def _outputs(path: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feed.items() if k in names})


def fuse_for_ort(path: str | os.PathLike[str], *, atol: float = 1e-4) -> dict[str, int]:
    """Rewrite an exported graph in place into ONNX Runtime's fused operators; return the counts.

    ONNX Runtime fuses only a few patterns of a torch.export graph by itself; onnxscript's
    rules turn each layer's attention into one `Attention` op (and the residual layer norms and
    GELUs into theirs), which is what lets the int8 quantiser emit `QAttention`. The fused
    graph must give the unfused graph's outputs on a padded batch within `atol`; if the rules
    do not apply to an encoder or the check fails, the graph is left as exported (empty dict).
    """
    import onnx_ir as ir
    import onnxscript.optimizer
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    path = Path(path)
    fused = path.with_name(path.name + ".fused")
    try:
        model, counts = optimize_for_ort(ir.load(path))
        # Fold the packed Q/K/V weights into initialisers (they are larger than the default
        # folding limits), so the fused graph carries constants the quantiser can read.
        onnxscript.optimizer.optimize(model, input_size_limit=1 << 26, output_size_limit=1 << 26)
        for node in model.graph:
            sizes = node.attributes.get("qkv_hidden_sizes")
            # Equal Q/K/V sizes are Attention's default; spelled out they stop the int8
            # quantiser from producing QAttention.
            if node.op_type == "Attention" and sizes is not None and len(set(sizes.value)) == 1:
                del node.attributes["qkv_hidden_sizes"]
        ir.save(model, fused)
        feed = {k: v.numpy() for k, v in zip(_INPUTS, _example(), strict=True)}
        before, after = _outputs(path, feed), _outputs(fused, feed)
        same = all(np.allclose(a, b, atol=atol) for a, b in zip(before, after, strict=True))
    except Exception as exc:  # a rule that does not fit this encoder: keep the graph as exported
        warnings.warn(f"ONNX graph left unfused ({type(exc).__name__}: {exc})", stacklevel=2)
        same = False
    else:
        if not same:
            warnings.warn("ONNX graph left unfused: the fusion changed its outputs", stacklevel=2)
    if same:
        os.replace(fused, path)
    fused.unlink(missing_ok=True)
    if not same:
        return {}
    return {k: v for k, v in counts.items() if v}


def export_onnx(
    model: torch.nn.Module,
    checkpoint: str | os.PathLike[str],
    *,
    quantize: bool = False,
    fuse: bool = True,
) -> Path:
    """Export `model` (a float `SectionClsModel`) into `<checkpoint>/onnx/`, atomically.

    The float graph is fused for ONNX Runtime (`fuse_for_ort`; `fuse=False` keeps the graph as
    exported, for comparisons). With `quantize`, it is also
    written and then quantised by ONNX Runtime's dynamic quantiser (7-bit weights, one scale per
    output channel, in the matrix products only). Returns
    the path of the requested graph.
    """
    _require()
    target = onnx_path(checkpoint, quantize)
    float_path = onnx_path(checkpoint, False)
    if not float_path.is_file():
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
        wrapped = _Probabilities(model.eval())
        with atomic_path(float_path) as tmp:
            with torch.inference_mode(False), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not ours
                torch.onnx.export(
                    wrapped,
                    _example(),
                    str(tmp),
                    dynamo=True,
                    external_data=False,
                    input_names=list(_INPUTS),
                    output_names=["category_probs", "metric_probs"],
                    dynamic_shapes=tuple({0: batch, 1: seq} for _ in _INPUTS),
                    verbose=False,
                )
            if fuse:
                fuse_for_ort(tmp)
    if quantize and not target.is_file():
        with atomic_path(target) as tmp:
            quantize_int8(float_path, tmp)
    return target


def quantize_int8(
    float_path: str | os.PathLike[str], target: str | os.PathLike[str], **overrides: Any
) -> None:
    """Write the float graph at `float_path`, quantised to int8 by ONNX Runtime's dynamic
    quantiser, to `target`: by this version's recipe (`INT8_RECIPE`), or by another one with
    `overrides` (`quantize_dynamic`'s keywords), which only comparisons of recipes ask for."""
    _require()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options: dict[str, Any] = dict(
        weight_type=QuantType.QInt8,
        # 7-bit weights: on AVX2 without VNNI, ONNX Runtime's u8s8 kernels sum pairs in 16 bits
        # and can saturate; with reduced range they cannot, so the labels are the same on every
        # x86 CPU and the evidence from one CPU holds on all.
        reduce_range=True,
        # One scale per output channel, as torch's int8 has: at the same speed it moved the
        # probabilities a sixth as far from float32 as one scale per matrix (mean 0.0009
        # against 0.0051 on the held-out written set; scripts/compare_int8_recipes.py). u8
        # weights (8-bit, cannot saturate) were as close but ran at float32's speed.
        per_channel=True,
        op_types_to_quantize=_INT8_OPS,
        # The fused operators are outside ONNX's type inference: their outputs are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    options.update(overrides)
    quantize_dynamic(str(float_path), str(target), **options)


class OnnxRunner:
    """Runs an exported graph on padded numpy batches; returns (category probs, metric probs)."""

    def __init__(self, path: str | os.PathLike[str], num_threads: int | None = None) -> None:
        _require()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        feed = dict(zip(_INPUTS, (input_ids, attention_mask, token_type_ids), strict=True))
        probs, metric = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return probs.astype(np.float32), metric.astype(np.float32).reshape(-1)
