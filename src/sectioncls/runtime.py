"""The execution path for inference, chosen for the machine it runs on.

The fastest exact path depends on the processor, not on taste: bfloat16 halves the matrix work
where the hardware has native bf16 dot products (AVX512-BF16 or AMX on x86, bf16-capable GPUs),
and is several times *slower* than float32 where PyTorch has to emulate it (6.6x slower on an
AVX2-only EPYC, issue #12). ONNX Runtime float32 gave the same labels as torch float32 and was
faster on both AMD EPYCs measured (1.06x on AVX2 only, 1.5x with AVX-512; 0.85x on an Intel
Xeon with AMX, where bf16 is taken first). int8 is faster still
but changes a few labels, so `auto` takes it only where the float model has no fast exact path
(a CPU without native bf16) *and* the checkpoint's own leave-one-report-out cross-validation
scored that int8 copy within `INT8_TOLERANCE` of float32 (`Int8Evidence`, from the model card's
`metrics.json`): ONNX Runtime's fused int8 where it has that evidence, else torch's.
`quantize=True` asks for int8 anywhere, `dtype="float32"` refuses it.

`choose_runtime` turns `backend="auto"` / `dtype="auto"` into a concrete choice with the reason,
which the tagger keeps (`ReportTagger.runtime`, its repr, `sectioncls tag -v`, the bench).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AUTO",
    "INT8_TOLERANCE",
    "CpuInfo",
    "Int8Evidence",
    "Runtime",
    "choose_runtime",
    "cpu_info",
]

AUTO = "auto"
BACKENDS = ("torch", "onnx")
DTYPES = ("float32", "bfloat16")
# Instruction sets that decide the speed ratios, in the order the `cpu:` line names them.
_FEATURES = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX512-BF16",
    "amx_bf16": "AMX-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
}
_NATIVE_BF16 = ("avx512_bf16", "amx_bf16")
# Issue #12: a faster path may replace the float model if its macro-F1 stays within 0.005.
INT8_TOLERANCE = 0.005


@dataclass(frozen=True)
class CpuInfo:
    """The processor's name and the instruction-set flags that matter for inference speed."""

    name: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> str | None:
        """The flag that gives native bf16 dot products, or None."""
        return next((f for f in _NATIVE_BF16 if f in self.flags), None)

    def describe(self) -> str:
        """One `cpu:` line for logs and benchmark tables: every speed figure names its CPU."""
        found = [label for flag, label in _FEATURES.items() if flag in self.flags]
        return f"cpu: {self.name}; {', '.join(found) or 'no AVX2'}"


# oneDNN (PyTorch's CPU matmul library) can be capped below what the CPU has, e.g. to
# reproduce an older machine's speed: ONEDNN_MAX_CPU_ISA=AVX2 leaves no native bf16.
_ISA_CAPS = {
    "SSE41": ("avx", "avx512", "amx", "vnni"),
    "AVX": ("avx2", "avx512", "amx", "vnni"),
    "AVX2": ("avx512", "amx", "avx_vnni"),
    "AVX2_VNNI": ("avx512", "amx"),
    "AVX2_VNNI_2": ("avx512", "amx"),
    "AVX512_CORE": ("avx512_bf16", "avx512_vnni", "amx"),
    "AVX512_CORE_VNNI": ("avx512_bf16", "amx"),
    "AVX512_CORE_BF16": ("amx",),
}


# What caps each of PyTorch's CPU kernel libraries (ATen's own loops, MKL, oneDNN, FBGEMM's int8)
# below the processor: with all four at AVX2, an AVX-512 machine runs torch's AVX2 code paths
# (not ONNX Runtime's, which has no such switch). `make bench-avx2` sets them.
CAP_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "FBGEMM_ENABLE_INSTRUCTIONS",
)


def _capped(flags: frozenset[str]) -> frozenset[str]:
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    dropped = _ISA_CAPS.get(cap, ())
    return frozenset(f for f in flags if not f.startswith(dropped)) if dropped else flags


@functools.cache
def cpu_info() -> CpuInfo:
    """Read /proc/cpuinfo where there is one; elsewhere the platform's name and no flags.
    Instruction sets that ONEDNN_MAX_CPU_ISA caps away count as absent."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return CpuInfo(platform.processor() or platform.machine() or "unknown", frozenset())
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1] for ln in lines if ln.startswith("flags")), "")
    name = name or platform.machine() or "unknown"
    caps = [f"{k}={os.environ[k]}" for k in CAP_VARIABLES if os.environ.get(k)]
    if caps:
        name += f" (capped by {' '.join(caps)})"
    return CpuInfo(name, _capped(frozenset(flags.split())))


@dataclass(frozen=True)
class Runtime:
    """A concrete execution path and why it was taken."""

    backend: str
    dtype: str
    quantize: bool
    device: str
    reason: str

    def describe(self) -> str:
        what = f"{self.backend} {'int8' if self.quantize else self.dtype} on {self.device}"
        return f"{what} ({self.reason})"


@dataclass(frozen=True)
class Int8Evidence:
    """A checkpoint's cross-validated figures, float32 beside its int8 copy (pooled over the
    held-out real reports, as written, averaged over the seeds the cross-validation ran):
    what `auto` needs before it trades labels for speed. One unit of a held-out report moves
    macro-F1 by about the tolerance, so one seed alone is a coin toss at the margin."""

    macro_f1: float
    int8_macro_f1: float
    metric_f1: float
    int8_metric_f1: float
    seeds: int = 1

    @classmethod
    def from_cv(cls, cv: dict | None, model: str, int8: str) -> Int8Evidence | None:
        """From `sectioncls evaluate --int8` results (as the model card keeps them)."""
        systems = (cv or {}).get("systems") or {}
        try:
            f, q = systems[model], systems[int8]
            f_seeds = f.get("pooled_by_seed") or {"": f["pooled"]}
            q_seeds = q.get("pooled_by_seed") or {"": q["pooled"]}
            common = [s for s in f_seeds if s in q_seeds]
            if not common:
                return None

            def mean(figs: dict, key: str) -> float:
                return sum(float(figs[s][key]) for s in common) / len(common)

            return cls(
                mean(f_seeds, "category_macro_f1"),
                mean(q_seeds, "category_macro_f1"),
                mean(f_seeds, "metric_f1"),
                mean(q_seeds, "metric_f1"),
                len(common),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    @property
    def holds(self) -> bool:
        return (
            self.macro_f1 - self.int8_macro_f1 <= INT8_TOLERANCE
            and self.metric_f1 - self.int8_metric_f1 <= INT8_TOLERANCE
        )

    def describe(self) -> str:
        over = f" (mean of {self.seeds} seeds)" if self.seeds > 1 else ""
        return (
            f"macro-F1 {self.int8_macro_f1:.3f} vs {self.macro_f1:.3f}, "
            f"metric F1 {self.int8_metric_f1:.3f} vs {self.metric_f1:.3f}{over}"
        )


def onnx_installed() -> bool:
    """Whether the onnx extra (ONNX Runtime) is installed."""
    return importlib.util.find_spec("onnxruntime") is not None


def choose_runtime(
    backend: str = AUTO,
    dtype: str = AUTO,
    *,
    quantize: bool = False,
    device: str | None = None,
    cpu: CpuInfo | None = None,
    onnx_available: bool | None = None,
    cuda_bf16: bool | None = None,
    cuda_available: bool | None = None,
    int8: Int8Evidence | None = None,
    onnx_int8: Int8Evidence | None = None,
) -> Runtime:
    """Resolve "auto" for this machine; explicit values are kept (and checked for clashes).

    `device` None or "auto" means the GPU when torch sees one (as SetFit and
    sentence-transformers do), unless ONNX Runtime or int8 is asked for: both run on the CPU.
    `cpu`, `onnx_available`, `cuda_bf16` and `cuda_available` default to what this machine
    has; tests pass them. `int8` and `onnx_int8` are the checkpoint's cross-validated figures
    for torch's and ONNX Runtime's int8, if any.
    """
    if backend not in (AUTO, *BACKENDS):
        raise ValueError(f"backend must be one of {(AUTO, *BACKENDS)}, not {backend!r}")
    if dtype not in (AUTO, *DTYPES):
        raise ValueError(f"dtype must be one of {(AUTO, *DTYPES)}, not {dtype!r}")
    if device in (None, AUTO):
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available()
        device = "cuda" if cuda_available and backend != "onnx" and not quantize else "cpu"
    on_gpu = not device.startswith("cpu")
    if on_gpu and backend == "onnx":
        raise ValueError("backend='onnx' runs on the CPU; leave device unset or use backend torch")
    if dtype == "bfloat16" and (quantize or backend == "onnx"):
        raise ValueError("dtype='bfloat16' is for the torch backend without quantize")
    cpu = cpu or cpu_info()
    onnx_ok = onnx_installed() if onnx_available is None else onnx_available
    if backend == "onnx" and not onnx_ok:
        raise ImportError("backend='onnx' needs ONNX Runtime: pip install 'sectioncls[onnx]'")

    if on_gpu:
        if cuda_bf16 is None:
            import torch

            cuda_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        if dtype == AUTO:
            # Measured (docs/results/gpu-tagging-h200.json): on an H200 the 6-layer tagger
            # ran float32 at 3,013 units/s and bfloat16 at 1,251, the same labels both ways. A
            # model this small is bound by kernel launches, not by matrix throughput, so bf16
            # only adds casts; ask for it (dtype="bfloat16") with a large base model.
            dtype = "float32"
            why = (
                "float32 was 2.4x faster than bf16 on an H200 for this small encoder"
                if cuda_bf16
                else "no native bf16 on it"
            )
        else:
            why = f"dtype {dtype} as asked"
        return Runtime("torch", dtype, quantize, device, why)

    if quantize:
        if backend == AUTO:
            # ONNX Runtime's fused int8 is the faster one, but its labels are not torch's (its
            # first recipe lost metric F1, README, Speed): it is taken only on its own evidence.
            ort_evidence = onnx_int8 is not None and onnx_int8.holds
            backend = "onnx" if onnx_ok and ort_evidence else "torch"
            why = (
                "int8 as asked; ONNX Runtime's, cross-validated for this checkpoint and faster"
                if backend == "onnx"
                else "int8 as asked; torch's (ONNX Runtime's needs this checkpoint's evidence)"
            )
        else:
            why = f"int8 on {backend} as asked"
        return Runtime(backend, "float32", True, device, why)

    native = cpu.native_bf16
    if dtype == AUTO:
        if backend in (AUTO, "torch") and native:
            return Runtime(
                "torch", "bfloat16", False, device, f"the CPU has native bf16 ({native})"
            )
        dtype = "float32"
        if backend in (AUTO, "onnx") and onnx_ok and onnx_int8 is not None and onnx_int8.holds:
            # The fused graph's int8 (QAttention) was the fastest int8 measured: 141-158
            # units/s against torch int8's 134-137 on an Intel Xeon (README, Speed).
            return Runtime(
                "onnx",
                "float32",
                True,
                device,
                f"no native bf16 on this CPU; ONNX Runtime int8 scored within {INT8_TOLERANCE} "
                f"of float32 in this checkpoint's cross-validation ({onnx_int8.describe()})",
            )
        if backend in (AUTO, "torch") and int8 is not None and int8.holds:
            # Without evidence for ONNX Runtime's int8 (cross-validations before it was
            # scored), torch's: it beat the unfused ONNX int8 on the AVX2-only EPYC (130.8 vs
            # 121.3 units/s).
            return Runtime(
                "torch",
                "float32",
                True,
                device,
                f"no native bf16 on this CPU; int8 scored within {INT8_TOLERANCE} of float32 "
                f"in this checkpoint's cross-validation ({int8.describe()})",
            )
        if backend == AUTO:
            if onnx_ok:
                return Runtime(
                    "onnx",
                    "float32",
                    False,
                    device,
                    "no native bf16 on this CPU; ONNX Runtime float32 gave torch's labels, faster",
                )
            return Runtime(
                "torch", "float32", False, device, "no native bf16; ONNX Runtime not installed"
            )
        return Runtime(backend, dtype, False, device, f"backend {backend} as asked")
    if backend == AUTO:
        backend = "torch" if dtype == "bfloat16" or not onnx_ok else "onnx"
    why = f"{backend} {dtype} as asked"
    if dtype == "bfloat16" and not native:
        why += "; this CPU has no native bf16, so it is emulated and slower than float32"
    return Runtime(backend, dtype, False, device, why)
