"""Fine-tuning: a validated run config, the HF `Trainer` extended for our two heads, and an
atomically written checkpoint with its model card.

Runs unchanged under `accelerate launch` (several GPUs or nodes): the `Trainer` does the
distribution; only the main process writes the final checkpoint.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .data import AnnotationError, ExportMapping, load_dataset
from .errors import SectionClsError
from .inputs import (
    COMPACT_SEPARATOR,
    LEGACY_SEPARATOR,
    RECORD_FIELDS,
    InputSpec,
)
from .metrics import classification_figures, sigmoid, softmax
from .modeling import (
    CHECKPOINT_FILES,
    CONTEXT_FIELDS,
    METRIC_POOLING,
    SectionClsConfig,
    SectionClsModel,
    joint_loss,
    tokenize_units,
    write_checkpoint_marker,
)
from .schema import LabelSchema
from .sequence import fit_transitions, reading_order
from .textio import atomic_directory

__all__ = [
    "CHECKPOINT_FILES",
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "encode_dataset",
    "predict_dataset",
    "save_checkpoint",
    "train",
]

CLASS_WEIGHTING = ("none", "sqrt", "balanced")


class ConfigError(SectionClsError, ValueError):
    """A run config that cannot be used; the message names the file and the key."""


def _opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text (and allowed values), shown by `sectioncls train -h`."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={**meta, "yaml_only": True})
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """One training run. Every field can come from YAML and be overridden on the command line.

    The defaults are the shipped default run (configs/train-default.yaml; a test keeps the two
    equal), so a config built in Python trains the same model as `make model`."""

    base_model: str = _opt("me5-small-zh", "embedded base, or any BERT-family name or path")
    # Adapting a trained tagger to new annotations (active learning, a new kind of report):
    # start from its encoder and heads instead of a fresh model on `base_model`.
    init_from: str | None = _opt(None, "continue from a trained sectioncls checkpoint")
    # Distillation: a smaller model (fewer `encoder_layers`) also learns the trained teacher's
    # soft labels, which carry what the teacher learned about near misses (a result worded
    # like a plan), so it loses less than the same small model trained on hard labels alone.
    distill_from: str | None = _opt(None, "a trained sectioncls checkpoint to distil from")
    distill_weight: float = _opt(0.5, "share of the loss that follows the teacher (0..1)")
    distill_temperature: float = _opt(2.0, "softmax temperature of the teacher's soft labels")
    annotations: list[str] = _opt(  # noqa: RUF009 (_opt returns a dataclasses.field)
        ["annotations/reports.json", "annotations/synthetic.json"],
        "Label Studio JSON exports (globs allowed)",
    )
    schema: str | None = _opt(None, "a labels.yaml; default: the packaged schema")
    # Exports of Label Studio projects made elsewhere: export path -> how to read it (data
    # fields, control names, choice values; sectioncls.data.ExportMapping). YAML only.
    mappings: dict[str, dict[str, Any]] = _opt(  # noqa: RUF009
        {}, "export path -> ExportMapping fields, for projects made elsewhere (YAML only)"
    )
    context: list[str] = _opt(  # noqa: RUF009
        ["kind", "title", "part", "headings", "position", "quantities"],
        "fields of the second segment, in order",
        tuple(CONTEXT_FIELDS),
    )
    # "|" is one word piece where " | " (the first checkpoints') is two: ~6 fewer tokens a unit.
    context_separator: str = _opt(
        COMPACT_SEPARATOR,
        "what joins the context fields",
        (COMPACT_SEPARATOR, LEGACY_SEPARATOR),
    )
    # Training only: blank each place field (title, headings, section, neighbours) of a unit
    # with this probability, so the unit is still read by its own words when its place is
    # missing or misleading in a new report.
    context_dropout: float = _opt(0.25, "training only: chance to blank each place field")
    # Written reports outnumber real ones 5 to 1, and their plans and results are worded more
    # plainly than real reports word theirs; repeating the real units keeps real wording weighty.
    real_oversampling: int = _opt(4, "repeat units of real reports N times in training")
    # Inference reads a report in order: the category transitions of the training reports
    # weigh in beside each unit's own probabilities (`sectioncls.sequence`); 0 reads every unit
    # alone.
    sequence_weight: float = _opt(
        1.0, "weight of the learned category order along a report at inference (0: off)"
    )
    max_seq_length: int = _opt(128, "tokens per unit with its context (8..512)")
    encoder_layers: int | None = _opt(6, "keep only the first N encoder layers (faster)")
    epochs: float = _opt(3.0, "training epochs")
    learning_rate: float = _opt(5e-5, "encoder learning rate")
    head_learning_rate: float | None = _opt(1e-3, "learning rate of the two new heads")
    batch_size: int = _opt(16, "training batch size per device")
    eval_batch_size: int = _opt(64, "evaluation batch size per device")
    weight_decay: float = _opt(0.01, "AdamW weight decay")
    warmup_ratio: float = _opt(0.1, "share of steps with a rising learning rate")
    seed: int = _opt(42, "seed for initialisation, shuffling and context dropout")
    class_weighting: str = _opt("sqrt", "category loss weights", CLASS_WEIGHTING)
    metric_weighting: str = _opt("sqrt", "BCE pos_weight for metric positives", CLASS_WEIGHTING)
    metric_loss_weight: float = _opt(1.0, "weight of the metric loss beside the category loss")
    metric_pooling: str = _opt(
        "max", "metric head: mean-pooled unit, or the highest-scoring token", METRIC_POOLING
    )
    dev_reports: list[str] = _opt([], "doc ids held out as a dev split")  # noqa: RUF009
    early_stopping_patience: int | None = _opt(2, "epochs without dev gain before stopping")
    freeze_embeddings: bool = _opt(False, "keep the word embeddings fixed")
    output_dir: str = _opt("checkpoints/sectioncls-default", "where the checkpoint is written")
    logging_steps: int = _opt(10, "log the loss every N steps")
    resume: bool = _opt(False, "continue from the last checkpoint in <output_dir>.work/")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def inputs(self) -> InputSpec:
        """What the model will read about a unit (written into the checkpoint's config)."""
        return InputSpec.of(self)

    def validate(self, source: str = "config") -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{source}: `{key}` {why}")

        if isinstance(self.annotations, str):
            self.annotations = [self.annotations]
        if isinstance(self.context, str):
            self.context = [self.context]
        if isinstance(self.dev_reports, str):
            self.dev_reports = [self.dev_reports]
        for c in self.context:
            if c not in CONTEXT_FIELDS:
                raise bad("context", f"has {c!r}; choose from {list(CONTEXT_FIELDS)}")
        for name in ("class_weighting", "metric_weighting"):
            if getattr(self, name) not in CLASS_WEIGHTING:
                raise bad(name, f"must be one of {list(CLASS_WEIGHTING)}")
        if self.metric_pooling not in METRIC_POOLING:
            raise bad("metric_pooling", f"must be one of {list(METRIC_POOLING)}")
        if self.context_separator not in (COMPACT_SEPARATOR, LEGACY_SEPARATOR):
            raise bad("context_separator", f"must be {COMPACT_SEPARATOR!r} or {LEGACY_SEPARATOR!r}")
        positive = ("max_seq_length", "epochs", "learning_rate", "batch_size", "eval_batch_size")
        if self.head_learning_rate is not None and self.head_learning_rate <= 0:
            raise bad("head_learning_rate", "must be > 0 (or null for learning_rate)")
        for key in positive:
            if not getattr(self, key) > 0:
                raise bad(key, "must be > 0")
        if not 8 <= self.max_seq_length <= 512:
            raise bad("max_seq_length", "must be between 8 and 512")
        if self.real_oversampling < 1:
            raise bad("real_oversampling", "must be >= 1")
        if self.encoder_layers is not None and self.encoder_layers < 1:
            raise bad("encoder_layers", "must be >= 1 (or null for all layers)")
        if not 0 <= self.context_dropout < 1:
            raise bad("context_dropout", "must be in [0, 1)")
        if self.sequence_weight < 0:
            raise bad("sequence_weight", "must be >= 0")
        if not 0 <= self.distill_weight <= 1:
            raise bad("distill_weight", "must be in [0, 1]")
        if not self.distill_temperature > 0:
            raise bad("distill_temperature", "must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise bad("warmup_ratio", "must be in [0, 1)")
        if not self.annotations:
            raise bad("annotations", "is empty: name at least one Label Studio export")
        if not isinstance(self.mappings, dict):
            raise bad("mappings", "must map export paths to mapping settings")
        for path, m in self.mappings.items():
            if not isinstance(m, dict):
                raise bad(f"mappings.{path}", "must be a mapping of ExportMapping fields")
            ExportMapping.from_dict(m, f"{source}: mappings.{path}")

    def export_mappings(self) -> dict[str, ExportMapping]:
        return {path: ExportMapping.from_dict(m) for path, m in self.mappings.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: expected a mapping of settings, got {type(data).__name__}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed: {sorted(names)}")
        try:
            cfg = cls(**data)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("config:", f"{source}:", 1)) from None
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text("utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of settings")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, str(p))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def annotation_files(self) -> list[str]:
        files: list[str] = []
        for pattern in self.annotations:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            files.extend(m for m in matches if not Path(m).name.startswith("."))
        if not files:
            raise AnnotationError(
                f"no annotation export matches {self.annotations}; pull one with "
                "`sectioncls studio pull` or point `annotations` at a Label Studio JSON export"
            )
        return files

    def load_schema(self) -> LabelSchema:
        return LabelSchema.from_yaml(self.schema) if self.schema else LabelSchema.default()


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any]
    train_seconds: float
    n_train: int
    n_dev: int


# ------------------------------------------------------------------------------ data
def encode_dataset(dataset, tokenizer, inputs: InputSpec):
    """Tokenise units with their context as a second segment; keeps labels when present."""

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        rows = [{k: batch[k][i] for k in batch} for i in range(len(batch["text"]))]
        out = dict(tokenize_units(tokenizer, rows, inputs))
        if "category" in batch:
            out["labels"] = list(batch["category"])
        if "metric" in batch:
            out["metric_labels"] = [float(m) for m in batch["metric"]]
        return out

    keep = {"input_ids", "attention_mask", "token_type_ids", "labels", "metric_labels"}
    encoded = dataset.map(encode, batched=True, desc="Tokenising")
    return encoded.remove_columns([c for c in encoded.column_names if c not in keep])


class ContextCollator:
    """Pads pre-tokenised rows, or tokenises raw rows per batch with context dropout.

    Dropout must be drawn anew every epoch (a fixed blanking would only be another fixed
    context), so the training split stays raw and is tokenised here; dev and test splits come
    pre-tokenised and are only padded."""

    def __init__(self, tokenizer, inputs: InputSpec, dropout: float = 0.0, seed: int = 42) -> None:
        from transformers import DataCollatorWithPadding

        self.tokenizer = tokenizer
        self.inputs = inputs
        self.dropout = dropout
        self.place = inputs.place_fields
        self.rng = np.random.default_rng(seed)
        self.pad = DataCollatorWithPadding(tokenizer)

    def _drop(self, name: str) -> bool:
        return name in self.place and bool(self.rng.random() < self.dropout)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if "input_ids" in features[0]:
            return self.pad(features)
        enc = tokenize_units(
            self.tokenizer, features, self.inputs, drop=self._drop if self.dropout > 0 else None
        )
        rows = [{k: enc[k][i] for k in enc} for i in range(len(features))]
        for row, f in zip(rows, features, strict=True):
            row["labels"] = int(f["category"])
            row["metric_labels"] = float(f["metric"])
        batch = self.pad(rows)
        if TEACHER_COLUMNS[0] in features[0]:
            for name in TEACHER_COLUMNS:
                batch[name] = torch.tensor([f[name] for f in features], dtype=torch.float32)
        return batch


def oversample_real(ds, times: int):
    """The training rows with every unit of a real report repeated `times` times."""
    if times <= 1 or "source" not in ds.column_names:
        return ds
    from datasets import concatenate_datasets

    real = ds.filter(lambda r: r["source"] == "real")
    return concatenate_datasets([ds, *[real] * (times - 1)]) if len(real) else ds


def class_weights(labels: list[int], n_classes: int, mode: str) -> torch.Tensor | None:
    """Loss weights that keep rare classes (problem, other) from being ignored."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes).astype(float)
    counts = np.maximum(counts, 1.0)
    w = counts.sum() / (n_classes * counts)
    if mode == "sqrt":
        w = np.sqrt(w)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def metric_pos_weight(metric_labels: list[int], mode: str) -> torch.Tensor | None:
    """The same weighting for the metric flag (BCE pos_weight = positive / negative class
    weight): positives are about a quarter of the units, and missed metric units (recall) were
    the tagger's main metric error in cross-validation."""
    w = class_weights(metric_labels, 2, mode)
    return None if w is None else w[1] / w[0]


# ------------------------------------------------------------------------- distillation
TEACHER_COLUMNS = ("teacher_category_probs", "teacher_metric_prob")


def distillation_loss(
    category_logits: torch.Tensor,
    metric_logits: torch.Tensor,
    teacher_category: torch.Tensor,
    teacher_metric: torch.Tensor,
    temperature: float,
    metric_weight: float = 1.0,
) -> torch.Tensor:
    """KL to the teacher's tempered category distribution (scaled by T², as in Hinton et al.,
    so its gradients keep their size) plus BCE to the teacher's metric probability.

    The teacher gives probabilities: log p is its logits less a per-unit constant, which the
    tempered softmax ignores, so softmax(log p / T) is the teacher's tempered distribution."""
    t = temperature
    teacher_log = torch.log(teacher_category.to(category_logits).clamp_min(1e-30))
    kl = nn.functional.kl_div(
        nn.functional.log_softmax(category_logits / t, dim=-1),
        nn.functional.log_softmax(teacher_log / t, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    target = teacher_metric.to(metric_logits)
    bce = nn.functional.binary_cross_entropy_with_logits(metric_logits, target)
    return kl * t * t + metric_weight * bce


def teacher_probabilities(
    teacher_dir: str | os.PathLike[str], rows, categories: list[str], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's category probabilities (n, k) and metric probabilities (n,) for training
    rows, read by the teacher as a tagger reads (its own tokenizer and context, which may
    differ from the student's; float32), in full context: the student learns what the teacher
    says about the unit in its place."""
    from .tagger import ReportTagger

    teacher = ReportTagger.from_pretrained(teacher_dir, backend="torch", dtype="float32")
    if list(teacher.categories) != list(categories):
        raise ConfigError(
            f"distill_from {teacher_dir}: the teacher's categories "
            f"{list(teacher.categories)} are not the schema's {list(categories)}"
        )
    return teacher.predict_units(list(rows), batch_size=batch_size)


# ------------------------------------------------------------------------------ trainer
def _trainer_classes():
    """Import the Trainer lazily: it pulls in accelerate, which not every caller needs."""
    from transformers import Trainer

    class SectionClsTrainer(Trainer):
        """The HF Trainer with a class-weighted joint loss for the two heads."""

        def __init__(
            self,
            *args: Any,
            class_weights: torch.Tensor | None = None,
            metric_loss_weight: float = 1.0,
            metric_pos_weight: torch.Tensor | None = None,
            distill_weight: float = 0.0,
            distill_temperature: float = 2.0,
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.distill_weight = distill_weight
            self.distill_temperature = distill_temperature
            self.class_weights = class_weights
            self.metric_loss_weight = metric_loss_weight
            self.metric_pos_weight = metric_pos_weight

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            metric_labels = inputs.pop("metric_labels", None)
            teacher = [inputs.pop(name, None) for name in TEACHER_COLUMNS]
            outputs = model(**inputs)
            loss = joint_loss(
                outputs.category_logits,
                outputs.metric_logits,
                labels,
                metric_labels,
                self.class_weights,
                self.metric_loss_weight,
                self.metric_pos_weight,
            )
            if teacher[0] is not None and self.distill_weight > 0:
                soft = distillation_loss(
                    outputs.category_logits,
                    outputs.metric_logits,
                    teacher[0],
                    teacher[1],
                    self.distill_temperature,
                    self.metric_loss_weight,
                )
                loss = (1 - self.distill_weight) * loss + self.distill_weight * soft
            return (loss, outputs) if return_outputs else loss

        def _get_eval_sampler(self, eval_dataset):
            # `group_by_length` would also reorder evaluation by length, and `predict` would
            # return predictions out of the dataset's order: evaluation stays sequential.
            from torch.utils.data import SequentialSampler

            if eval_dataset is None or self.args.world_size > 1:
                return None
            return SequentialSampler(eval_dataset)

    return SectionClsTrainer


def _compute_metrics_fn(categories: list[str]) -> Callable[[Any], dict[str, float]]:
    """Dev-set figures through the project's local `evaluate` module (loaded by path)."""
    from .metrics import load_metrics

    module = load_metrics()

    def compute(eval_pred) -> dict[str, float]:
        cat_logits, metric_logits = eval_pred.predictions[:2]
        y_cat, y_metric = eval_pred.label_ids
        probs = softmax(cat_logits)
        figs = module.compute(
            predictions=probs.argmax(axis=1).tolist(),
            references=np.asarray(y_cat, dtype=int).tolist(),
            metric_predictions=(sigmoid(metric_logits).reshape(-1) >= 0.5).astype(int).tolist(),
            metric_references=np.asarray(y_metric, dtype=int).reshape(-1).tolist(),
            probabilities=probs.tolist(),
            categories=categories,
        )
        return {
            "category_accuracy": figs["category_accuracy"],
            "category_macro_f1": figs["category_macro_f1"],
            "metric_f1": figs["metric_f1"],
            "category_ece": figs["category_ece"],
            "score": (figs["category_macro_f1"] + figs["metric_f1"]) / 2,
        }

    return compute


def _training_args(cfg: TrainConfig, work_dir: Path, has_dev: bool, progress: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=has_dev,
        metric_for_best_model="score" if has_dev else None,
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        label_names=["labels", "metric_labels"],
        report_to="none",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        remove_unused_columns=False,  # the collator reads the raw text columns
        train_sampling_strategy="group_by_length",
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def _optimizer(model: SectionClsModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with two learning rates: a gentle one for the pretrained encoder and a larger one
    for the freshly initialised heads (they otherwise lag far behind in a few epochs)."""
    head_lr = cfg.head_learning_rate or cfg.learning_rate
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = cfg.learning_rate if name.startswith("encoder.") else head_lr
        decay = 0.0 if p.ndim < 2 or "LayerNorm" in name else cfg.weight_decay
        groups.setdefault((lr, decay), []).append(p)
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
        lr=cfg.learning_rate,
    )


def build_model(cfg: TrainConfig, schema: LabelSchema):
    """Tokenizer + a fresh tagger on top of the configured base encoder (or the trained tagger
    named by `init_from`, whose categories must be the schema's)."""
    from .base import load_tokenizer, resolve_base

    if cfg.init_from:
        tokenizer, model = _model_from_checkpoint(cfg, schema)
        return tokenizer, _keep_layers(model, cfg.encoder_layers)

    base_path = resolve_base(cfg.base_model)
    tokenizer = load_tokenizer(cfg.base_model)
    config = SectionClsConfig(
        categories=list(schema.categories),
        schema=schema.to_dict(),
        context=cfg.context,
        context_separator=cfg.context_separator,
        max_seq_length=cfg.max_seq_length,
        metric_pooling=cfg.metric_pooling,
    )
    model = SectionClsModel.from_encoder(base_path, config)
    model.config.base_model = cfg.base_model
    model = _keep_layers(model, cfg.encoder_layers)
    if cfg.freeze_embeddings:
        for p in model.encoder.embeddings.word_embeddings.parameters():
            p.requires_grad = False
    return tokenizer, model


def _keep_layers(model: SectionClsModel, layers: int | None) -> SectionClsModel:
    """Keep the first `layers` encoder layers (a faster model, or a student started from a
    trained teacher's lower layers and heads)."""
    if layers is not None and layers < model.encoder.config.num_hidden_layers:
        model.encoder.encoder.layer = model.encoder.encoder.layer[:layers]
        model.encoder.config.num_hidden_layers = layers
        model.config.encoder["num_hidden_layers"] = layers
    return model


def _model_from_checkpoint(cfg: TrainConfig, schema: LabelSchema):
    from .tagger import load_checkpoint

    model, tokenizer = load_checkpoint(cfg.init_from)  # type: ignore[arg-type]
    if list(model.config.categories) != list(schema.categories):
        raise ConfigError(
            f"init_from {cfg.init_from}: the model's categories {list(model.config.categories)} "
            f"are not the schema's {list(schema.categories)}; train from base_model instead"
        )
    model.config.context = list(cfg.context)
    model.config.context_separator = cfg.context_separator
    model.config.max_seq_length = cfg.max_seq_length
    return tokenizer, model


def train(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    save: bool = True,
    dataset=None,
    extra_metrics: dict[str, Any] | None = None,
) -> tuple[TrainResult, Any]:
    """Train one model. Returns the result and the `Trainer` (for predictions in CV)."""
    from transformers import EarlyStoppingCallback, set_seed

    set_seed(cfg.seed)
    schema = cfg.load_schema()
    if dataset is None:
        dataset, _ = load_dataset(
            cfg.annotation_files(),
            schema,
            dev_reports=cfg.dev_reports or None,
            mappings=cfg.export_mappings(),
            for_training=True,
        )
    if len(dataset["train"]) == 0:
        raise AnnotationError("the training split has no labelled units")
    tokenizer, model = build_model(cfg, schema)
    model.config.transitions = report_transitions(
        dataset["train"], schema.num_categories, cfg.sequence_weight
    )
    # Raw rows: the collator tokenises them per batch, with fresh context dropout each epoch.
    # Their full-context token counts let the sampler batch similar lengths (less padding).
    train_ds = oversample_real(dataset["train"], cfg.real_oversampling)
    train_ds = train_ds.select_columns([*RECORD_FIELDS, "category", "metric"])
    lengths = tokenize_units(tokenizer, train_ds, cfg.inputs)["input_ids"]
    train_ds = train_ds.add_column("length", [len(x) for x in lengths])
    if cfg.distill_from:
        t_cat, t_met = teacher_probabilities(
            cfg.distill_from, train_ds, list(schema.categories), cfg.eval_batch_size
        )
        train_ds = train_ds.add_column(TEACHER_COLUMNS[0], t_cat.tolist())
        train_ds = train_ds.add_column(TEACHER_COLUMNS[1], t_met.tolist())
    has_dev = "dev" in dataset and len(dataset["dev"]) > 0
    dev_ds = encode_dataset(dataset["dev"], tokenizer, cfg.inputs) if has_dev else None
    work_dir = Path(f"{cfg.output_dir.rstrip('/')}.work")
    callbacks = []
    if has_dev and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer_cls = _trainer_classes()
    args = _training_args(cfg, work_dir, has_dev, progress)
    trainer = trainer_cls(
        optimizers=(_optimizer(model, cfg), None),
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        processing_class=tokenizer,
        data_collator=ContextCollator(tokenizer, cfg.inputs, cfg.context_dropout, cfg.seed),
        compute_metrics=_compute_metrics_fn(list(schema.categories)) if has_dev else None,
        callbacks=callbacks,
        class_weights=class_weights(
            train_ds["category"], schema.num_categories, cfg.class_weighting
        ),
        metric_loss_weight=cfg.metric_loss_weight,
        metric_pos_weight=metric_pos_weight(train_ds["metric"], cfg.metric_weighting),
        distill_weight=cfg.distill_weight if cfg.distill_from else 0.0,
        distill_temperature=cfg.distill_temperature,
    )
    resume = cfg.resume and any(work_dir.glob("checkpoint-*"))
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {"train_seconds": round(seconds, 1)}
    if has_dev:
        metrics["dev"] = evaluate_split(trainer, dev_ds, list(schema.categories))
        metrics["dev_reports"] = sorted(set(dataset["dev"]["doc_id"]))
    metrics["train_reports"] = sorted(set(dataset["train"]["doc_id"]))
    metrics["n_train"] = len(dataset["train"])  # units, each counted once
    if extra_metrics:
        metrics.update(extra_metrics)
    out = Path(cfg.output_dir)
    if save and trainer.is_world_process_zero():
        save_checkpoint(trainer.model, tokenizer, schema, cfg, metrics, out, dataset=dataset)
        shutil.rmtree(work_dir, ignore_errors=True)
    n_train = len(dataset["train"])
    result = TrainResult(out, metrics, seconds, n_train, len(dev_ds) if dev_ds else 0)
    return result, trainer


def report_transitions(ds, n_categories: int, weight: float) -> dict[str, Any] | None:
    """How categories follow each other in the training reports (each unit once, as
    `load_dataset` keys rows, in its report's order), stored in the checkpoint for
    `sectioncls.sequence.smooth`."""
    if weight <= 0 or "doc_id" not in ds.column_names or "unit_index" not in ds.column_names:
        return None
    cats = ds["category"]
    seqs = [[cats[i] for i in rows] for rows in reading_order(ds["doc_id"], ds["unit_index"])]
    return fit_transitions(seqs, n_categories, weight=weight).to_dict()


def predict_dataset(trainer, encoded) -> tuple[np.ndarray, np.ndarray]:
    """Category probabilities (n, k) and metric probabilities (n,) for an encoded split."""
    out = trainer.predict(encoded)
    cat_logits, metric_logits = out.predictions[:2]
    return softmax(cat_logits), sigmoid(metric_logits)


def evaluate_split(trainer, encoded, categories: list[str]) -> dict[str, Any]:
    p_cat, p_metric = predict_dataset(trainer, encoded)
    return classification_figures(
        categories,
        encoded["labels"],
        p_cat,
        [int(x) for x in encoded["metric_labels"]],
        p_metric,
    )


# ------------------------------------------------------------------------------ checkpoint
def save_checkpoint(
    model: SectionClsModel,
    tokenizer,
    schema: LabelSchema,
    cfg: TrainConfig,
    metrics: dict[str, Any],
    output_dir: str | os.PathLike[str],
    dataset=None,
) -> Path:
    """Write the whole checkpoint into a temp dir, then swap it into place: a reader never
    sees a half-written model, and a failed save leaves the previous one intact."""
    from .modelcard import ModelCardData, render_model_card

    card = ModelCardData.from_training(cfg, schema, metrics, dataset)
    with atomic_directory(output_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "training_config.yaml").write_text(
            yaml.safe_dump(cfg.to_dict(), allow_unicode=True, sort_keys=False), "utf-8"
        )
        (tmp / "metrics.json").write_text(
            json.dumps(metrics, ensure_ascii=False, indent=1), "utf-8"
        )
        (tmp / "model_card.json").write_text(
            json.dumps(card.to_dict(), ensure_ascii=False, indent=1), "utf-8"
        )
        (tmp / "README.md").write_text(render_model_card(card), "utf-8")
        write_checkpoint_marker(tmp, list(schema.categories))
    return Path(output_dir)
