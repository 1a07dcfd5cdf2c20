"""The one loader for every base: embedded names, local directories and hub names all
go through `resolve_base`, so training and tagging code never special-cases them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import DEFAULT_BASE, EMBEDDED_BASES, base_dir, read_base_info
from .common import _BUILD_HINT, BASE_DIR_ENV, BaseModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.isabs(name) or name.endswith(os.sep)


def resolve_base(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a base-model choice into what `from_pretrained` takes.

    Embedded names resolve to their built directory, existing directories are used as they
    are, and anything else is passed through as a Hugging Face hub name (which then needs a
    cache or network).
    """
    name = os.fspath(name_or_path)
    if name in EMBEDDED_BASES:
        path = base_dir(name)
        if read_base_info(path) is None:
            state = "is incomplete" if path.exists() else "is not built"
            raise BaseModelError(
                f"The embedded base '{name}' {state} at {path}; {_BUILD_HINT}"
                f"{' --full' if not EMBEDDED_BASES[name].prune else ''}"
                f" (set {BASE_DIR_ENV} if it was built elsewhere)."
            )
        return str(path)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise BaseModelError(
                f"{path} is not a model directory (no config.json); point to a directory saved "
                f"with `save_pretrained`, or use an embedded base ({', '.join(EMBEDDED_BASES)})."
            )
        return str(path)
    if _looks_like_path(name):
        raise BaseModelError(
            f"Base model directory {path} does not exist; check the path or use an embedded "
            f"base ({', '.join(EMBEDDED_BASES)})."
        )
    return name


def _load_hint(name: str, resolved: str) -> str:
    if resolved == name and not Path(name).exists():
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        return (
            f"'{name}' is treated as a Hugging Face hub name and is not available "
            f"{'in the local cache (HF_HUB_OFFLINE is set)' if offline else 'offline'}; "
            "download it once where a hub is reachable and pass its local directory, set "
            f"HF_HUB_OFFLINE=1 to use only the cache, or use the embedded base "
            f"'{DEFAULT_BASE}' ({_BUILD_HINT})."
        )
    return f"the directory {resolved} looks damaged; rebuild it ({_BUILD_HINT} --force)."


def _auto_load(what: str, auto_name: str, name_or_path: str | os.PathLike[str], **kwargs: Any):
    """Resolve any base (embedded name, directory or hub name) and load it with the given
    transformers Auto class; every failure becomes a BaseModelError that says what to do."""
    import transformers

    name = os.fspath(name_or_path)
    resolved = resolve_base(name)
    try:
        return getattr(transformers, auto_name).from_pretrained(resolved, **kwargs)
    except Exception as exc:
        raise BaseModelError(
            f"Cannot load the {what} of base model '{name}': {exc}. {_load_hint(name, resolved)}"
        ) from exc


def load_tokenizer(name_or_path: str | os.PathLike[str], **kwargs: Any) -> PreTrainedTokenizerBase:
    """AutoTokenizer for any base (embedded name, directory or hub name), with clear errors."""
    return _auto_load("tokenizer", "AutoTokenizer", name_or_path, **kwargs)


def load_encoder_config(name_or_path: str | os.PathLike[str], **kwargs: Any) -> PretrainedConfig:
    """AutoConfig for any base, with clear errors; BERT-family checkpoints such as
    hfl/chinese-roberta-wwm-ext declare model_type 'bert', so Auto picks the Bert classes."""
    return _auto_load("config", "AutoConfig", name_or_path, **kwargs)
