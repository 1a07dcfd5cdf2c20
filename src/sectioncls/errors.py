"""The one base of every error the library raises on purpose.

Each error says which file, key or task is wrong and how to fix it; a caller that wants to
report all of them in one line (the CLI does) catches `SectionClsError`. Each subclass also
keeps the built-in type it always had (ValueError, FileNotFoundError…), so existing
`except ValueError` code goes on working.
"""

from __future__ import annotations

__all__ = ["SectionClsError"]


class SectionClsError(Exception):
    """A problem with the user's input, files, settings or server, explained in the message."""
