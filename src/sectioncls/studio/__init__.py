"""Label Studio integration: run a local server (`server`), push units / pull annotations
(`client`), and the `sectioncls studio ...` commands (`cli`).

Submodules are imported on demand: the client needs `label-studio-sdk` (the `studio` extra),
the server helpers need nothing beyond the standard library.
"""

from __future__ import annotations

from sectioncls.errors import SectionClsError

__all__ = ["StudioError"]


class StudioError(SectionClsError, RuntimeError):
    """Anything that stops a Label Studio step; the message says what to do about it."""
