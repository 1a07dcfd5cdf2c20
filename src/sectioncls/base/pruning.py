"""Vocabulary pruning: keep the pieces Chinese report text needs."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .common import METASPACE, SPECIAL_TOKENS

if TYPE_CHECKING:
    from tokenizers import Tokenizer


# Reports write abbreviations in capitals (GDP, PM2.5, 5G, AAAA级); lowercase Latin words
# would keep another 80k pieces, so those rely on the corpus instead.
_ZH_ASCII = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" + METASPACE)
# e5 was trained with these prefixes; keep their pieces so they can still be used.
_E5_PREFIXES = ("query: ", "passage: ")


@functools.cache
def _is_zh_char(c: str) -> bool:
    """Characters of Chinese report text after NFKC: CJK ideographs and symbols, digits,
    capital letters, punctuation and BMP symbols (not lowercase Latin, not emoji)."""
    o = ord(c)
    if (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x20000 <= o <= 0x3134F  # extensions B-G
        or 0x3000 <= o <= 0x303F  # CJK symbols and punctuation (incl. 〇, 々, 《》)
        or c in _ZH_ASCII
    ):
        return True
    cat = unicodedata.category(c)
    return cat[0] == "P" or (cat[0] == "S" and o < 0x10000)


_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")


def corpus_sentences(texts: Iterable[str]) -> list[str]:
    """Non-empty lines and sentences (cut after 。！？；) of texts, the granularity the tagger
    sees; used to prune the vocabulary and to check that pruning changes nothing."""
    out: list[str] = []
    for text in texts:
        for line in text.splitlines():
            out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def _kept_pieces(pieces: Sequence[str], full: Tokenizer, corpus: Sequence[str]) -> list[int]:
    """Ids to keep, in original order, so that Chinese text tokenises exactly as before.

    Every piece made only of Chinese-text characters (CJK, digits, capitals, punctuation) is
    kept, so every Unigram lattice over such text is unchanged: segmentation is identical on
    any such text, not only on the corpus. Lowercase Latin pieces are kept only when the full
    tokenizer's Viterbi segmentation of the corpus (whole texts, lines and sentences) or of
    the e5 prefixes uses them; single ASCII characters are kept as a fallback.
    """
    keep = set()
    for i, p in enumerate(pieces):
        body = p[1:] if p.startswith(METASPACE) and len(p) > 1 else p
        if (
            p in SPECIAL_TOKENS
            or all(_is_zh_char(c) for c in p)
            or (len(body) == 1 and body.isascii() and body.isprintable())
        ):
            keep.add(i)
    segments = [*_E5_PREFIXES, *corpus, *corpus_sentences(corpus)]
    for enc in full.encode_batch(segments, add_special_tokens=False):
        keep.update(enc.ids)
    return sorted(keep)


def _corpus_digest(corpus: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in corpus:
        h.update(hashlib.sha256(text.encode("utf-8")).digest())
    return h.hexdigest()
