"""File boundary: decode report files and write outputs atomically.

Reports arrive as UTF-8 (with or without BOM) or GB18030/GBK; anything else is an error that
names the file, because silently mis-decoded text would poison every offset downstream.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import SectionClsError

__all__ = [
    "ReportDecodeError",
    "atomic_directory",
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "decode_report",
    "doc_id_from_path",
    "read_document",
    "read_report",
]

DOCUMENT_SUFFIXES = (".txt", ".md", ".docx", ".pdf", ".html", ".htm")

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


class ReportDecodeError(SectionClsError, ValueError):
    """A report file that cannot be read as text; the message names the file and the fix."""


def _looks_binary(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return True
    sample = data[:8192]
    ctrl = sum(1 for b in sample if b < 0x20 and b not in (0x09, 0x0A, 0x0D, 0x0C))
    return ctrl > max(4, len(sample) // 100)


def decode_report(data: bytes, name: str = "<bytes>") -> str:
    """Decode report bytes: BOM first, then strict UTF-8, then GB18030 (a superset of GBK)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ReportDecodeError(
                    f"{name}: starts with a {codec} byte-order mark but is not valid {codec} "
                    f"({exc.reason} at byte {exc.start}); re-save it as UTF-8."
                ) from None
    if _looks_binary(data):
        raise ReportDecodeError(
            f"{name}: looks like binary data, not a text report; convert it to a UTF-8 "
            ".txt file (for .docx/.pdf install the 'docs' extra)."
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ReportDecodeError(
            f"{name}: is neither UTF-8 nor GBK/GB18030 text (invalid byte at {exc.start}); "
            "re-save it as UTF-8."
        ) from None
    # GB18030 decodes almost any byte soup; insist that the result is mostly CJK/ASCII text.
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or ch.isascii())
    if text and cjk / len(text) < 0.6:
        raise ReportDecodeError(
            f"{name}: decodes neither as UTF-8 nor as sensible GBK text; re-save it as UTF-8."
        )
    return text


def read_report(path: str | os.PathLike[str]) -> str:
    """Read a report file as text, with a clear error for empty, binary or mis-encoded files."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ReportDecodeError(f"{p}: no such file.") from None
    except IsADirectoryError:
        raise ReportDecodeError(f"{p}: is a directory, not a report file.") from None
    text = decode_report(data, str(p))
    if not text.strip():
        raise ReportDecodeError(f"{p}: is empty (no text to segment).")
    return text


def read_document(path: str | os.PathLike[str]) -> str:
    """Text of a .txt/.md report, or extracted from .docx/.pdf (the 'docs' extra) or from a
    web page (.html/.htm, the 'html' extra)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".docx", ".pdf", ".html", ".htm"):
        return read_report(p)
    if not p.is_file():
        raise ReportDecodeError(f"{p}: no such file.")
    extra = "html" if suffix in (".html", ".htm") else "docs"
    try:
        if suffix == ".docx":
            import docx  # python-docx

            try:
                text = "\n".join(par.text for par in docx.Document(str(p)).paragraphs)
            except Exception as exc:  # python-docx raises several unrelated types
                raise ReportDecodeError(f"{p}: not a readable .docx file ({exc}).") from None
        elif suffix == ".pdf":
            import pypdf

            try:
                text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(p).pages)
            except Exception as exc:  # pypdf raises several unrelated types
                raise ReportDecodeError(f"{p}: not a readable .pdf file ({exc}).") from None
        else:
            text = html_main_text(p.read_bytes(), source=str(p))
    except ImportError:
        raise ReportDecodeError(
            f"{p}: reading {suffix} files needs the '{extra}' extra: "
            f"pip install 'sectioncls[{extra}]'."
        ) from None
    if not text.strip():
        raise ReportDecodeError(f"{p}: has no extractable text (a scanned PDF needs OCR first).")
    return text


def html_main_text(page: bytes | str, *, source: str = "page") -> str:
    """The report in a web page: its title and main text, one paragraph or heading a line.

    Most reports are published as pages of a government site, wrapped in navigation,
    breadcrumbs, share buttons, related links and footers. trafilatura (a maintained
    main-content extractor) keeps the article and drops that chrome; it decodes the page by
    its declared or detected charset (GBK pages are common). The title comes from the page's
    metadata when the main text does not start with it, since the model reads the title.
    """
    import trafilatura

    text = trafilatura.extract(
        page,
        output_format="txt",
        include_tables=True,
        include_comments=False,
        include_links=False,
        include_images=False,
        deduplicate=False,
    )
    # An index page or a script-filled shell still yields a few link lines: a report has
    # sentences.
    if not text or len(_SENTENCE_CJK.findall(text)) < 20:
        raise ReportDecodeError(
            f"{source}: no main text found in this web page (an index page, a page that "
            "loads its text by script, or an error page); save the report's own page or its "
            "text as .txt."
        )
    meta = trafilatura.extract_metadata(page)
    title = (meta.title or "").strip() if meta else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if title and title not in lines[0] and lines[0] not in title:
        lines.insert(0, title)
    return "\n".join(lines) + "\n"


_SENTENCE_CJK = re.compile(r"[\u4e00-\u9fff](?=[^\n]*[。；！？;])")
_DOC_ID_BAD = re.compile(r"[^\w.-]+", re.UNICODE)


def doc_id_from_path(path: str | os.PathLike[str]) -> str:
    """A stable report id: the file name without its extension, unsafe characters replaced."""
    stem = Path(path).name
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return _DOC_ID_BAD.sub("_", stem).strip("_") or "report"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp file beside `path` for writers that want a file name (exporters); it is renamed
    into place only on success and removed on failure."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared outputs unreadable
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Write to a temp file beside `path` and rename it into place only on success."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temp directory beside `path`, then swap it into place only on success.

    A reader never sees a half-written model directory, and a failure leaves the previous
    one intact."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
