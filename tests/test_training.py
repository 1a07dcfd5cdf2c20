"""Training end to end on a tiny random BERT: run, round trip, resume, config errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sectioncls import ReportTagger
from sectioncls.data import AnnotationError
from sectioncls.errors import SectionClsError
from sectioncls.inputs import InputSpec
from sectioncls.modeling import SectionClsConfig, SectionClsModel
from sectioncls.schema import LabelSchema
from sectioncls.training import (
    CHECKPOINT_FILES,
    ConfigError,
    TrainConfig,
    build_model,
    metric_pos_weight,
    train,
)

ROOT = Path(__file__).resolve().parents[1]

_UNITS = [
    ("一、工作开展情况", "achievement", 0, ""),
    ("全年办理法律援助案件1535件。", "achievement", 1, "一、工作开展情况"),
    ("组织开展普法活动。", "achievement", 0, "一、工作开展情况"),
    ("二、存在问题", "problem", 0, ""),
    ("基层力量仍然不足。", "problem", 0, "二、存在问题"),
    ("三、工作打算", "plan", 0, ""),
    ("力争调解成功率保持在98%以上。", "plan", 1, "三、工作打算"),
    ("相关文章", "other", 0, ""),
]


def ls_task(
    task_id: int, doc_id: str, index: int, text: str, path: str, category: str, metric: int
) -> dict:
    result = [
        {
            "from_name": "category",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [category]},
        }
    ]
    if metric:
        result.append(
            {
                "from_name": "metric",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["yes"]},
            }
        )
    return {
        "id": task_id,
        "data": {
            "text": text,
            "doc_id": doc_id,
            "unit_index": index,
            "heading_path": path,
            "prev_text": "",
            "next_text": "",
            "kind": "sentence",
            "section": None,
        },
        "annotations": [
            {
                "id": task_id,
                "result": result,
                "was_cancelled": False,
                "ground_truth": False,
                "completed_by": 1,
                "lead_time": 2.0,
            }
        ],
    }


@pytest.fixture
def export_file(tmp_path) -> Path:
    tasks = []
    for d in range(3):
        for i, (text, cat, metric, path) in enumerate(_UNITS * 2):
            tasks.append(ls_task(len(tasks) + 1, f"doc{d}", i, text, path, cat, metric))
    p = tmp_path / "export.json"
    p.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    return p


def tiny_config(tiny_bert_dir, export_file, out, **kw) -> TrainConfig:
    return TrainConfig(
        base_model=str(tiny_bert_dir),
        annotations=[str(export_file)],
        output_dir=str(out),
        epochs=kw.pop("epochs", 2),
        batch_size=8,
        max_seq_length=32,
        learning_rate=1e-3,
        logging_steps=1000,
        **kw,
    )


def test_train_end_to_end_and_round_trip(tiny_bert_dir, export_file, tmp_path):
    out = tmp_path / "model"
    cfg = tiny_config(
        tiny_bert_dir,
        export_file,
        out,
        dev_reports=["doc2"],
        context=["heading_path", "prev_text"],
        metric_weighting="balanced",
    )
    result, _ = train(cfg, progress=False)
    assert result.n_train == 32 and result.n_dev == 16
    for name in (*CHECKPOINT_FILES, "README.md", "model_card.json", "metrics.json",
                 "training_config.yaml"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not Path(f"{out}.work").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"category_macro_f1", "metric_f1", "per_class"} <= set(metrics["dev"])
    card = (out / "README.md").read_text("utf-8")
    assert "category macro-F1" in card and "doc2" in card
    # The card is rendered from its saved data: the same text again, with the versions.
    from sectioncls.modelcard import ModelCardData, render_model_card

    data = ModelCardData.from_dict(json.loads((out / "model_card.json").read_text("utf-8")))
    assert render_model_card(data) == card
    assert data.versions["transformers"] and "## Framework versions" in card

    model = SectionClsModel.from_pretrained(out).eval()
    assert model.config.categories == ["achievement", "problem", "plan", "other"]
    # The category order of the training reports rides along (dev units do not count).
    transitions = model.config.transitions
    assert transitions["documents"] == 2 and transitions["weight"] == 1.0
    assert all(abs(sum(row) - 1) < 1e-4 for row in transitions["matrix"])
    assert model.config.context == ["heading_path", "prev_text"]
    model2 = SectionClsModel.from_pretrained(out).eval()
    x = torch.randint(5, 50, (2, 9))
    assert torch.equal(model(x).category_logits, model2(x).category_logits)


def test_training_refuses_the_held_out_export(tiny_bert_dir, export_file, tmp_path):
    tasks = json.loads(Path(export_file).read_text("utf-8"))
    for t in tasks:
        t["data"]["split"] = "heldout"
    held = tmp_path / "heldout.json"
    held.write_text(json.dumps(tasks, ensure_ascii=False), "utf-8")
    with pytest.raises(AnnotationError, match="kept out of training"):
        train(tiny_config(tiny_bert_dir, held, tmp_path / "model"), progress=False)
    assert not (tmp_path / "model").exists()


def test_resume_continues_from_last_checkpoint(tiny_bert_dir, export_file, tmp_path):
    out = tmp_path / "model"
    cfg = tiny_config(tiny_bert_dir, export_file, out, epochs=1)
    _, trainer = train(cfg, progress=False, save=False)  # leaves <out>.work/checkpoint-*
    work = Path(f"{out}.work")
    assert list(work.glob("checkpoint-*"))
    first_steps = trainer.state.global_step
    cfg2 = tiny_config(tiny_bert_dir, export_file, out, epochs=2, resume=True)
    _, trainer2 = train(cfg2, progress=False)
    assert trainer2.state.global_step == 2 * first_steps
    assert (out / "sectioncls.json").is_file()


def test_max_metric_pooling_round_trips_and_ignores_padding(tiny_bert_dir, export_file, tmp_path):
    out = tmp_path / "model"
    train(tiny_config(tiny_bert_dir, export_file, out, metric_pooling="max"), progress=False)
    model = SectionClsModel.from_pretrained(out).eval()
    assert model.config.metric_pooling == "max"
    ids = torch.randint(5, 50, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], 1).long()
    alone, batched = model(ids), model(padded, attention_mask=mask)
    # Padding must never be the token with the highest metric score.
    assert torch.allclose(alone.metric_logits, batched.metric_logits, atol=1e-5)
    assert torch.allclose(alone.category_logits, batched.category_logits, atol=1e-5)


def test_context_segment_carries_kind_section_and_numbers():
    # Page chrome must look different from report text to the model: its kind rides along.
    chrome = {"text": "关注 · 广州政府网", "kind": "meta", "section": None}
    legacy = InputSpec(("kind", "section", "quantities"))
    assert legacy.text(chrome) == (
        "关注 · 广州政府网",
        "页面信息",
    )
    unit = {"text": "办理案件39728件。", "kind": "sentence", "section": "achievement"}
    assert legacy.text(unit) == (
        "办理案件39728件。",
        "句子 | achievement | 数:39728件",
    )
    # The compact form: the part in Chinese, one-piece separators (checkpoints record theirs).
    assert InputSpec(("kind", "part", "quantities"), separator="|").text(unit) == (
        "办理案件39728件。",
        "句子|成效|数:39728件",
    )


def test_metric_pos_weight_follows_the_weighting_mode():
    labels = [1, 0, 0, 0, 0, 1, 0, 0]  # 2 positives, 6 negatives
    assert metric_pos_weight(labels, "none") is None
    assert float(metric_pos_weight(labels, "balanced")) == pytest.approx(3.0)
    assert float(metric_pos_weight(labels, "sqrt")) == pytest.approx(3.0**0.5)


def test_context_separator_is_checked_and_recorded(tiny_bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="context_separator"):
        TrainConfig(context_separator=";")
    assert TrainConfig().context_separator == "|"
    schema = LabelSchema.default()
    _, model = build_model(TrainConfig(base_model=str(tiny_bert_dir)), schema)
    assert model.config.context_separator == "|"
    assert model.config.inputs == TrainConfig(base_model=str(tiny_bert_dir)).inputs
    # A config written before the key (every checkpoint of format 2) joined with " | ".
    assert SectionClsConfig().context_separator == " | "
    assert SectionClsConfig().inputs.separator == " | "
    with pytest.raises(ValueError, match="separator"):
        InputSpec(("kind",), separator=";")
    with pytest.raises(ValueError, match="unknown context field"):
        InputSpec(("kind", "nope"))


def test_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("epochs: 2\nlearnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"run\.yaml.*unknown key.*learnig_rate"):
        TrainConfig.from_yaml(p)


def test_config_rejects_bad_values(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("context: [heading_path, weather]\n")
    with pytest.raises(ConfigError, match=r"run\.yaml.*context.*weather"):
        TrainConfig.from_yaml(p)
    with pytest.raises(ConfigError, match="class_weighting"):
        TrainConfig(class_weighting="loud")
    with pytest.raises(ConfigError, match="metric_pooling"):
        TrainConfig(metric_pooling="median")


def test_cli_overrides_yaml(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("epochs: 2\nseed: 1\n")
    cfg = TrainConfig.from_yaml(p, epochs=5, seed=None)
    assert (cfg.epochs, cfg.seed) == (5, 1)


def test_shipped_configs_are_valid():
    for p in sorted((ROOT / "configs").glob("train*.yaml")):
        TrainConfig.from_yaml(p)


def test_missing_annotations_is_a_clear_error(tiny_bert_dir, tmp_path):
    cfg = TrainConfig(
        base_model=str(tiny_bert_dir),
        annotations=[str(tmp_path / "none*.json")],
        output_dir=str(tmp_path / "m"),
    )
    with pytest.raises(AnnotationError, match="no annotation export matches"):
        train(cfg, progress=False)


def test_label_not_in_schema_is_a_clear_error(tiny_bert_dir, tmp_path):
    tasks = [
        ls_task(7, "d", 0, "文本。", "", "achievement", 0),
        ls_task(8, "d", 1, "文本。", "", "weather", 0),
    ]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(tasks, ensure_ascii=False))
    cfg = TrainConfig(
        base_model=str(tiny_bert_dir), annotations=[str(p)], output_dir=str(tmp_path / "m")
    )
    with pytest.raises(AnnotationError, match=r"weather.*8"):
        train(cfg, progress=False)


def test_cli_train_puts_cross_validation_into_the_model_card(tiny_bert_dir, export_file, tmp_path):
    from sectioncls.cli import main

    out = tmp_path / "model"
    row = {"mean": 0.9, "std": 0.01}
    figures = {k: row for k in ("category_macro_f1", "category_accuracy", "metric_f1")}
    cv = tmp_path / "results.json"
    cv.write_text(json.dumps({"systems": {"fine-tuned tagger": figures}, "seeds": [1]}), "utf-8")
    args = ["train", "--base-model", str(tiny_bert_dir), "--annotations", str(export_file)]
    args += ["--output-dir", str(out), "--epochs", "1", "--max-seq-length", "32", "--quiet"]
    assert main([*args, "--cv-results", str(tmp_path / "missing.json")]) == 2
    assert not out.exists()
    # Results of a model that read units alone do not describe one that reads in order.
    old = {"systems": {"fine-tuned tagger": figures}, "config": {"context_dropout": 0.25}}
    (tmp_path / "old.json").write_text(json.dumps(old), "utf-8")
    assert main([*args, "--cv-results", str(tmp_path / "old.json")]) == 2
    # Results measured on other annotations do not describe this model either.
    other = {"systems": {"fine-tuned tagger": figures}, "data": {"units": 9, "fingerprint": "0"}}
    (tmp_path / "other.json").write_text(json.dumps(other), "utf-8")
    assert main([*args, "--cv-results", str(tmp_path / "other.json")]) == 2
    assert not out.exists()
    from sectioncls.data import load_dataset

    _, build = load_dataset(export_file)
    same = {"units": len(build.rows), "fingerprint": build.fingerprint()}
    cv.write_text(json.dumps({**json.loads(cv.read_text("utf-8")), "data": same}), "utf-8")
    assert main([*args, "--cv-results", str(cv)]) == 0
    card = (out / "README.md").read_text("utf-8")
    assert "Leave-one-real-report-out" in card and "| fine-tuned tagger | 0.900 ± 0.010" in card
    assert f"fingerprint `{same['fingerprint']}`" in card


def test_cli_evaluate_records_the_annotations_it_measured(export_file, tmp_path):
    from sectioncls.cli import main
    from sectioncls.data import load_dataset

    out = tmp_path / "eval"
    args = ["evaluate", "--annotations", str(export_file), "--baselines-only", "--reports", ""]
    assert main([*args, "--quiet", "-o", str(out)]) == 0
    data = json.loads((out / "results.json").read_text("utf-8"))["data"]
    _, build = load_dataset(export_file)
    assert data == {"units": len(build.rows), "fingerprint": build.fingerprint()}


def test_context_dropout_blanks_place_fields_only_in_training(tiny_bert_dir):
    from sectioncls.base import load_tokenizer
    from sectioncls.training import ContextCollator

    tok = load_tokenizer(str(tiny_bert_dir))
    row = {"text": "全年办结案件12件。", "kind": "sentence", "heading_path": "一、工作情况",
           "section": "", "title": "某局2024年工作总结", "prev_text": "", "next_text": "",
           "category": 0, "metric": 1}  # fmt: skip
    spec = InputSpec(("kind", "title", "headings", "quantities"), 64)
    never = ContextCollator(tok, spec, dropout=0.0)([row] * 4)
    always = ContextCollator(tok, spec, dropout=0.999)([row] * 4)
    assert never["input_ids"].shape[1] > always["input_ids"].shape[1]
    assert never["labels"].tolist() == [0] * 4 and never["metric_labels"].tolist() == [1.0] * 4
    some = ContextCollator(tok, spec, dropout=0.5, seed=1)([row] * 64)
    widths = some["attention_mask"].sum(1).unique()
    assert len(widths) > 1  # drawn per unit
    with pytest.raises(ConfigError, match="context_dropout"):
        TrainConfig(context_dropout=1.0)


def test_train_with_context_dropout_and_title(tiny_bert_dir, export_file, tmp_path):
    out = tmp_path / "model"
    cfg = tiny_config(
        tiny_bert_dir, export_file, out, context=["kind", "title", "headings"], context_dropout=0.3
    )
    result, _ = train(cfg, progress=False)
    assert result.n_train == 48
    assert SectionClsModel.from_pretrained(out).config.context == ["kind", "title", "headings"]


def test_dataclass_defaults_are_the_shipped_default_config():
    """A config built in Python trains the same model as `make model`."""
    import dataclasses

    shipped = TrainConfig.from_yaml(ROOT / "configs" / "train-default.yaml")
    assert shipped == TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name  # every flag of `sectioncls train -h` says what


def test_train_help_lists_help_and_choices(capsys):
    from sectioncls.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert "chance to blank each place field (default: 0.25)" in out
    assert "one of none, sqrt, balanced" in out


def test_predictions_keep_the_dataset_order(tiny_bert_dir, export_file, tmp_path):
    """Length-grouped batches are for training only: `predict` must return rows in order."""
    from sectioncls.training import encode_dataset, predict_dataset

    cfg = tiny_config(tiny_bert_dir, export_file, tmp_path / "m", epochs=1, eval_batch_size=4)
    _, trainer = train(cfg, progress=False, save=False)
    from datasets import Dataset

    rows = [
        {**{k: "" for k in ("heading_path", "section", "title", "prev_text", "next_text")},
         "text": "办结案件" * n + "。", "kind": "sentence", "category": 0, "metric": 0}
        for n in (1, 9, 2, 8, 3, 7, 4, 6, 5, 10, 1, 9)
    ]  # fmt: skip
    spec = dataclasses.replace(cfg.inputs, max_seq_length=32)
    encoded = encode_dataset(Dataset.from_list(rows), trainer.processing_class, spec)
    p_cat, _ = predict_dataset(trainer, encoded)
    model = trainer.model.eval()
    for i, row in enumerate(encoded):
        with torch.no_grad():
            ids = torch.tensor([row["input_ids"]])
            logits = model(ids, token_type_ids=torch.tensor([row["token_type_ids"]]))
        assert torch.softmax(logits.category_logits, -1)[0].numpy() == pytest.approx(
            p_cat[i], abs=1e-5
        )


def test_real_units_are_repeated_written_ones_not():
    from datasets import Dataset

    from sectioncls.training import oversample_real

    ds = Dataset.from_list([{"text": "a", "source": "real"}, {"text": "b", "source": "synthetic"}])
    assert sorted(oversample_real(ds, 3)["text"]) == ["a", "a", "a", "b"]
    assert len(oversample_real(ds, 1)) == 2
    with pytest.raises(ConfigError, match="real_oversampling"):
        TrainConfig(real_oversampling=0)


def test_init_from_continues_a_trained_tagger(tiny_bert_dir, export_file, tmp_path):
    first = tmp_path / "first"
    train(tiny_config(tiny_bert_dir, export_file, first, epochs=1), progress=False)
    again = tiny_config(tiny_bert_dir, export_file, tmp_path / "second", epochs=1)
    again = dataclasses.replace(again, init_from=str(first))
    result, _ = train(again, progress=False)
    assert (tmp_path / "second" / "sectioncls.json").is_file() and result.n_train
    import yaml

    from sectioncls.schema import LabelSchema

    reordered = LabelSchema.default().to_dict()
    reordered["categories"] = reordered["categories"][::-1]  # same labels, other class ids
    other = tmp_path / "labels.yaml"
    other.write_text(yaml.safe_dump(reordered, allow_unicode=True), "utf-8")
    with pytest.raises(ConfigError, match="categories"):
        train(dataclasses.replace(again, schema=str(other)), progress=False)


def test_distillation_loss_is_zero_when_the_student_matches_the_teacher():
    from sectioncls.training import distillation_loss

    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 3.0, -2.0]])
    metric = torch.tensor([4.0, -3.0])
    # the teacher gives probabilities, as a tagger does
    probs, p_metric = logits.softmax(-1), metric.sigmoid()
    same = distillation_loss(logits, metric, probs, p_metric, temperature=2.0, metric_weight=0.0)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    other = distillation_loss(logits, metric, probs.flip(-1), p_metric, 2.0, metric_weight=0.0)
    assert other.item() > 0.1


def test_student_distilled_from_a_trained_teacher(tiny_bert_dir, export_file, tmp_path):
    """A smaller student starts from the teacher's lower layers and heads and learns its soft
    labels; the checkpoint round-trips with its own layer count."""
    teacher = tmp_path / "teacher"
    train(tiny_config(tiny_bert_dir, export_file, teacher, epochs=1), progress=False)
    student_cfg = tiny_config(
        tiny_bert_dir,
        export_file,
        tmp_path / "student",
        epochs=1,
        init_from=str(teacher),
        distill_from=str(teacher),
        encoder_layers=1,
    )
    train(student_cfg, progress=False)
    student = ReportTagger.from_pretrained(tmp_path / "student")
    assert student.model.encoder.config.num_hidden_layers == 1
    tagged = student.tag("一、工作情况\n办结案件120件。\n二、存在问题\n人员不足。")
    assert len(tagged.units) == 4
    with pytest.raises(ConfigError, match="distill_weight"):
        dataclasses.replace(student_cfg, distill_weight=1.5).validate()
    with pytest.raises(SectionClsError, match="not_there"):
        train(dataclasses.replace(student_cfg, distill_from=str(tmp_path / "not_there")))
