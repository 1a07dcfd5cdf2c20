"""The Unigram tokenizer rebuilt from the pieces and normaliser stored in the weights file."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .common import METASPACE, MODEL_MAX_LENGTH, SPECIAL_TOKENS

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def _normalizer_rules(norm_map: dict[str, str]) -> list[tuple[str, str]]:
    """Where the file's normalisation map differs from plain NFKC (control characters dropped,
    newlines/zero-width spaces turned into spaces), as (character class, replacement) rules."""
    groups: dict[str, list[str]] = {}
    for char, repl in sorted(norm_map.items()):
        if unicodedata.normalize("NFKC", char) != repl:
            groups.setdefault(repl, []).append(char)
    return [("[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]", repl)
            for repl, chars in groups.items()]  # fmt: skip


def build_tokenizer(
    pieces: Sequence[str], scores: Sequence[float], unk_id: int, norm_map: dict[str, str]
) -> Tokenizer:
    """An XLM-R-equivalent Unigram tokenizer (NFKC, collapsed spaces, Metaspace, <s>…</s>).

    Built directly with `tokenizers`, because transformers 5's XLMRobertaTokenizer drops the
    NFKC step and full-width punctuation then tokenises differently from the pretraining.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(pieces, scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    steps = [normalizers.Replace(Regex(cls), repl) for cls, repl in _normalizer_rules(norm_map)]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    index = {p: i for i, p in enumerate(pieces)}
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", index["<s>"]), ("</s>", index["</s>"])],
    )
    tok.add_special_tokens(
        [AddedToken(p, special=True, normalized=False, lstrip=p == "<mask>")
         for p in SPECIAL_TOKENS if p in index]
    )  # fmt: skip
    return tok


def _tokenizer_config(pieces: Sequence[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "model_max_length": MODEL_MAX_LENGTH,
        # e5 was trained with token type 0 everywhere: let the model default to zeros.
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }
    if "<mask>" in pieces:
        config["mask_token"] = "<mask>"
    return config
