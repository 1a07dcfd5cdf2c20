"""sectioncls: cut Chinese annual work reports into units and tag them.

Heavy modules (torch, transformers) load on first use, so `import sectioncls` and the
segmenter stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["ReportTagger", "TaggedReport", "TaggedUnit", "Unit", "__version__", "segment"]

_LAZY = {
    "ReportTagger": "sectioncls.tagger",
    "TaggedReport": "sectioncls.tagger",
    "TaggedUnit": "sectioncls.tagger",
    "Unit": "sectioncls.segment",
    "segment": "sectioncls.segment",
}

if TYPE_CHECKING:
    from .segment import Unit, segment
    from .tagger import ReportTagger, TaggedReport, TaggedUnit


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sectioncls' has no attribute {name!r}")
