"""The tagging model: one BERT-family encoder, a 4-way category head and a metric head.

It is a `PreTrainedModel` so that `save_pretrained`/`from_pretrained`, the HF `Trainer`
(checkpoints, resume, `accelerate launch`) and safetensors all work unchanged. The encoder's
own config is stored inside ours, so a saved tagger needs no hub access to be rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .inputs import CONTEXT_FIELDS as _CONTEXT_REGISTRY
from .inputs import LEGACY_SEPARATOR, InputSpec

__all__ = [
    "CHECKPOINT_FILES",
    "CHECKPOINT_FORMAT",
    "DEFAULT_CONTEXT",
    "SectionClsConfig",
    "SectionClsModel",
    "SectionClsOutput",
    "joint_loss",
    "tokenize_units",
    "write_checkpoint_marker",
]

# The files of a complete checkpoint; `sectioncls.json` is written last and marks it complete.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json", "sectioncls.json")
# The checkpoint format this version writes, and reads back to format 1. 2: the context fields
# `title` and `headings` (a version that knows only format 1 cannot build their input). 3: the
# `part` field and `context_separator` (an older version would join the fields with " | ").
CHECKPOINT_FORMAT = 3

DEFAULT_CONTEXT = ("heading_path",)
# How the metric head reads the encoder: `mean` scores the mean-pooled unit like the category
# head; `max` scores every token and takes the highest, since a metric is a property of one span
# ("三个小区", "95.3%") and a mean over a long sentence dilutes it.
METRIC_POOLING = ("mean", "max")
CONTEXT_FIELDS = tuple(_CONTEXT_REGISTRY)


def tokenize_units(
    tokenizer,
    units,
    inputs: InputSpec,
    drop: Callable[[str], bool] | None = None,
):
    """Tokenise many units in one call (fast tokenizers batch in Rust): the unit first, its
    context second; the longer of the two is cut first when the pair is too long."""
    pairs = [inputs.text(u, drop) for u in units]
    seconds = [b for _, b in pairs]
    return tokenizer(
        [a for a, _ in pairs],
        seconds if any(seconds) else None,
        truncation="longest_first",
        max_length=inputs.max_seq_length,
    )


def write_checkpoint_marker(directory: Path, categories: list[str]) -> None:
    """Write `sectioncls.json` last: its presence is what makes a checkpoint complete."""
    marker = {
        "format": CHECKPOINT_FORMAT,
        "library": "sectioncls",
        "categories": list(categories),
        "files": sorted(p.name for p in directory.iterdir()),
    }
    (directory / "sectioncls.json").write_text(json.dumps(marker, indent=1), "utf-8")


def joint_loss(
    category_logits: torch.Tensor,
    metric_logits: torch.Tensor,
    labels: torch.Tensor,
    metric_labels: torch.Tensor | None,
    class_weights: torch.Tensor | None = None,
    metric_weight: float = 1.0,
    metric_pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy on the category plus binary cross-entropy on the metric flag."""
    weight = None if class_weights is None else class_weights.to(category_logits)
    loss = nn.functional.cross_entropy(category_logits, labels, weight=weight)
    if metric_labels is not None:
        pos = None if metric_pos_weight is None else metric_pos_weight.to(metric_logits)
        loss = loss + metric_weight * nn.functional.binary_cross_entropy_with_logits(
            metric_logits, metric_labels.to(metric_logits.dtype), pos_weight=pos
        )
    return loss


class SectionClsConfig(PretrainedConfig):
    """Our config: the encoder's config, the label schema and how inputs are built."""

    model_type = "sectioncls"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        categories: list[str] | tuple[str, ...] = ("achievement", "problem", "plan", "other"),
        schema: dict[str, Any] | None = None,
        context: list[str] | tuple[str, ...] = DEFAULT_CONTEXT,
        max_seq_length: int = 128,
        classifier_dropout: float = 0.1,
        base_model: str | None = None,
        metric_pooling: str = "mean",
        transitions: dict[str, Any] | None = None,
        context_separator: str = LEGACY_SEPARATOR,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if metric_pooling not in METRIC_POOLING:
            raise ValueError(f"metric_pooling must be one of {METRIC_POOLING}")
        self.metric_pooling = metric_pooling
        self.encoder = dict(encoder or {})
        self.categories = list(categories)
        self.schema = schema
        # Checked as the tagger will read it; checkpoints from before `context_separator`
        # joined their fields with " | ", and they still do.
        inputs = InputSpec(tuple(context), int(max_seq_length), str(context_separator))
        self.context = list(inputs.context)
        self.context_separator = inputs.separator
        self.max_seq_length = inputs.max_seq_length
        self.classifier_dropout = float(classifier_dropout)
        self.base_model = base_model
        # How categories follow each other along a report (`sectioncls.sequence`), fitted on
        # the training reports; None for a checkpoint that reads every unit alone.
        self.transitions = transitions
        self.id2label = dict(enumerate(self.categories))
        self.label2id = {c: i for i, c in enumerate(self.categories)}

    @property
    def inputs(self) -> InputSpec:
        """What the model reads about a unit, as it was trained to."""
        return InputSpec.of(self)

    def encoder_config(self) -> PretrainedConfig:
        enc = dict(self.encoder)
        model_type = enc.pop("model_type", "bert")
        return AutoConfig.for_model(model_type, **enc)


@dataclass
class SectionClsOutput(ModelOutput):
    loss: torch.Tensor | None = None
    category_logits: torch.Tensor | None = None
    metric_logits: torch.Tensor | None = None


class SectionClsModel(PreTrainedModel):
    """Encoder + mean-pooled representation + two heads (softmax category, sigmoid metric)."""

    config_class = SectionClsConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["BertLayer"]

    def __init__(self, config: SectionClsConfig, encoder: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        self.encoder = (
            encoder
            if encoder is not None
            else AutoModel.from_config(config.encoder_config(), add_pooling_layer=False)
        )
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.category_head = nn.Linear(hidden, len(config.categories))
        self.metric_head = nn.Linear(hidden, 1)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self.category_head or module is self.metric_head:
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_encoder(
        cls, encoder_name_or_path: str, config: SectionClsConfig, **kwargs: Any
    ) -> SectionClsModel:
        """Start a new tagger from pretrained encoder weights (the start of fine-tuning)."""
        encoder = AutoModel.from_pretrained(encoder_name_or_path, add_pooling_layer=False, **kwargs)
        enc_cfg = encoder.config.to_dict()
        for key in (
            "architectures",
            "transformers_version",
            "_name_or_path",
            "torch_dtype",
            "dtype",
        ):
            enc_cfg.pop(key, None)
        config.encoder = enc_cfg
        config.base_model = encoder_name_or_path
        return cls(config, encoder=encoder)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        metric_labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SectionClsOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        enc_kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.encoder.config, "type_vocab_size", 2) > 1:
            enc_kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**enc_kwargs).last_hidden_state
        # Mean pooling over real tokens: the embedded e5 encoder was trained that way.
        # Summed in float32: a bfloat16 sum over 100+ tokens would lose the small differences.
        mask = attention_mask.unsqueeze(-1).float()
        pooled = ((hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)).to(hidden.dtype)
        pooled = self.dropout(pooled)
        category_logits = self.category_head(pooled)
        if self.config.metric_pooling == "max":
            token_logits = self.metric_head(self.dropout(hidden)).squeeze(-1).float()
            token_logits = token_logits.masked_fill(attention_mask == 0, -1e4)
            metric_logits = token_logits.max(dim=1).values.to(hidden.dtype)
        else:
            metric_logits = self.metric_head(pooled).squeeze(-1)
        loss = None
        if labels is not None:
            loss = joint_loss(category_logits, metric_logits, labels, metric_labels)
        return SectionClsOutput(
            loss=loss, category_logits=category_logits, metric_logits=metric_logits
        )

    def probabilities(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Category probabilities (n, k) and metric probabilities (n,): what inference reads,
        in one place for the torch path and the exported ONNX graph."""
        out = self(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        return torch.softmax(out.category_logits.float(), -1), torch.sigmoid(
            out.metric_logits.float()
        )
