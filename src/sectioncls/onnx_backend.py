"""ONNX Runtime backend for the tagger: export a checkpoint once, then run it faster on CPU.

On 2 CPU cores ONNX Runtime's fused attention and GEMM kernels run the same encoder about twice
as fast as eager PyTorch with identical predictions (`scripts/bench_tagger.py` measures both
speed and agreement). The exported graphs live next to the weights, in `<checkpoint>/onnx/`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .textio import atomic_path

__all__ = ["ONNX_DIR", "OnnxRunner", "export_onnx", "onnx_path"]

ONNX_DIR = "onnx"
_FILES = {False: "model.onnx", True: "model_int8.onnx"}
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


def export_onnx(
    model: torch.nn.Module, checkpoint: str | os.PathLike[str], *, quantize: bool = False
) -> Path:
    """Export `model` (a float `SectionClsModel`) into `<checkpoint>/onnx/`, atomically.

    With `quantize`, the float graph is also written and then quantised to int8 weights by
    ONNX Runtime's dynamic quantiser. Returns the path of the requested graph.
    """
    _require()
    target = onnx_path(checkpoint, quantize)
    float_path = onnx_path(checkpoint, False)
    if not float_path.is_file():
        # A padded example: traced with an all-ones mask, the exporter may specialise the
        # attention mask away and the graph then gives wrong answers on padded batches.
        ids = torch.full((2, 16), 5, dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[1, 9:] = 0
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
        wrapped = _Probabilities(model.eval())
        with (
            atomic_path(float_path) as tmp,
            torch.inference_mode(False),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter, not ours
            torch.onnx.export(
                wrapped,
                (ids, mask, torch.zeros_like(ids)),
                str(tmp),
                dynamo=True,
                external_data=False,
                input_names=list(_INPUTS),
                output_names=["category_probs", "metric_probs"],
                dynamic_shapes=tuple({0: batch, 1: seq} for _ in _INPUTS),
                verbose=False,
            )
    if quantize and not target.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with atomic_path(target) as tmp:
            quantize_dynamic(str(float_path), str(tmp), weight_type=QuantType.QInt8)
    return target


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
