"""A BERT encoder with two heads: topics (multi-label) and speaker (one of N).

One forward pass serves both heads. Everything prediction needs besides the
weights lives in the model config: both label maps, the tuned topic
thresholds and whether the previous sentence is passed as context, so a
checkpoint directory is all `from_pretrained` needs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer, BertConfig, BertModel, BertPreTrainedModel
from transformers.utils import ModelOutput

from train.data.scheme import LabelScheme
from train.errors import UserError


class ModelLoadError(UserError):
    """A model id or path that can be neither found locally nor downloaded."""


@dataclass
class TaggerOutput(ModelOutput):
    loss: torch.Tensor | None = None
    topic_logits: torch.Tensor | None = None
    speaker_logits: torch.Tensor | None = None


def tagging_loss(config, topic_logits, speaker_logits, topic_labels=None, speaker_labels=None) -> torch.Tensor | None:
    """Weighted BCE on topics plus cross-entropy on the speaker; None without labels (prediction)."""
    if topic_labels is None or speaker_labels is None:
        return None
    pos_weight = getattr(config, "topic_pos_weight", None)
    class_weight = getattr(config, "speaker_class_weight", None)
    topic_loss = nn.functional.binary_cross_entropy_with_logits(
        topic_logits, topic_labels.to(topic_logits.dtype),
        pos_weight=torch.tensor(pos_weight, device=topic_logits.device) if pos_weight else None)
    speaker_loss = nn.functional.cross_entropy(
        speaker_logits, speaker_labels,
        weight=torch.tensor(class_weight, device=speaker_logits.device) if class_weight else None)
    return config.topic_loss_weight * topic_loss + config.speaker_loss_weight * speaker_loss


class BertForNewsTagging(BertPreTrainedModel):
    """[CLS] representation -> dropout -> a topic head (sigmoid/BCE) and a speaker head (softmax/CE)."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        # No pooler: its weights would get no gradient, which DDP rejects under `accelerate launch`.
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = getattr(config, "classifier_dropout", None)
        self.dropout = nn.Dropout(dropout if dropout is not None else config.hidden_dropout_prob)
        self.topic_head = nn.Linear(config.hidden_size, len(config.topics))
        self.speaker_head = nn.Linear(config.hidden_size, len(config.speakers))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                topic_labels=None, speaker_labels=None, **_) -> TaggerOutput:
        cls = self.dropout(self.encode_cls(input_ids, attention_mask, token_type_ids))
        topic_logits = self.topic_head(cls)
        speaker_logits = self.speaker_head(cls)
        loss = tagging_loss(self.config, topic_logits, speaker_logits, topic_labels, speaker_labels)
        return TaggerOutput(loss=loss, topic_logits=topic_logits, speaker_logits=speaker_logits)

    def encode_cls(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """The encoder's [CLS] vector, computing only the [CLS] position in the last layer.

        Both heads read [CLS] alone, so the last layer's other outputs would be thrown
        away: it needs keys and values for every token but a query, attention output and
        feed-forward for one. That is about a quarter of rubert-tiny2's compute; the
        result equals `self.bert(...).last_hidden_state[:, 0]`.
        """
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, device=input_ids.device)
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        *layers, last = self.bert.encoder.layer
        for layer in layers:
            hidden = layer(hidden, attention_mask=additive_mask)
        attention = last.attention.self
        batch, heads, head_size = hidden.shape[0], attention.num_attention_heads, attention.attention_head_size
        query = attention.query(hidden[:, :1]).view(batch, 1, heads, head_size).transpose(1, 2)
        key = attention.key(hidden).view(batch, -1, heads, head_size).transpose(1, 2)
        value = attention.value(hidden).view(batch, -1, heads, head_size).transpose(1, 2)
        context = nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=additive_mask, scale=attention.scaling,
            dropout_p=attention.dropout.p if self.training else 0.0)
        attended = last.attention.output(context.transpose(1, 2).reshape(batch, 1, -1), hidden[:, :1])
        return last.output(last.intermediate(attended), attended)[:, 0]

    @property
    def scheme(self) -> LabelScheme:
        return LabelScheme(topics=tuple(self.config.topics), speakers=tuple(self.config.speakers))


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(name_or_path: str) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE", "")
    return ModelLoadError(
        f"model {name_or_path!r} is not in the local Hugging Face cache and cannot be downloaded "
        f"(HF_HUB_OFFLINE={offline or 'unset'}; Hub reachable: no). Fix: download it once where the Hub is "
        f"reachable (`hf download {name_or_path}`), or point the config at a local copy "
        f"(ARGS=\"model.name_or_path=/path/to/model\"). For a real model without any download (navec "
        f"word vectors shipped in the natasha package + a small CNN): make train CONFIG=configs/offline.yaml")


def resolve_local_files_only(name_or_path: str) -> bool:
    """True when the model must come from disk or cache; raise at once when it cannot come from anywhere.

    transformers retries an unreachable Hub for most of a minute before failing; a
    quick cache look-up and a 3-second connection probe tell the user in seconds.
    """
    if Path(name_or_path).is_dir():
        return True
    try:
        AutoConfig.from_pretrained(name_or_path, local_files_only=True)
        return True
    except OSError:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or not _hub_reachable():
        raise _unavailable(name_or_path)
    return False


def load_tokenizer(name_or_path: str):
    local = resolve_local_files_only(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
    except OSError as e:
        raise ModelLoadError(f"{name_or_path}: no usable tokenizer ({e})") from None


def head_config(scheme: LabelScheme, encoder_name_or_path: str, *, use_context: bool, max_length: int,
                classifier_dropout: float = 0.1, topic_loss_weight: float = 1.0, speaker_loss_weight: float = 1.0,
                topic_pos_weight: list[float] | None = None, speaker_class_weight: list[float] | None = None) -> dict:
    """What every tagger's config carries besides its encoder: label maps, thresholds, context, loss settings."""
    return dict(
        topics=list(scheme.topics), speakers=list(scheme.speakers),
        id2label=dict(enumerate(scheme.speakers)), label2id=scheme.speaker2id,
        topic_thresholds=[0.5] * len(scheme.topics), use_context=use_context, max_seq_length=max_length,
        classifier_dropout=classifier_dropout, topic_loss_weight=topic_loss_weight,
        speaker_loss_weight=speaker_loss_weight, topic_pos_weight=topic_pos_weight,
        speaker_class_weight=speaker_class_weight, encoder_name_or_path=encoder_name_or_path,
    )


def init_model(name_or_path: str, scheme: LabelScheme, *, random_init: bool = False, use_context: bool = False,
               max_length: int = 128,
               classifier_dropout: float = 0.1, topic_loss_weight: float = 1.0, speaker_loss_weight: float = 1.0,
               topic_pos_weight: list[float] | None = None,
               speaker_class_weight: list[float] | None = None) -> BertForNewsTagging:
    """A fresh tagger: pretrained encoder weights from `name_or_path` (or random ones), new heads."""
    local = resolve_local_files_only(name_or_path)
    heads = head_config(scheme, name_or_path, use_context=use_context, max_length=max_length,
                        classifier_dropout=classifier_dropout, topic_loss_weight=topic_loss_weight,
                        speaker_loss_weight=speaker_loss_weight, topic_pos_weight=topic_pos_weight,
                        speaker_class_weight=speaker_class_weight)
    config = AutoConfig.from_pretrained(name_or_path, local_files_only=local)
    if config.model_type != "bert":
        raise ModelLoadError(f"{name_or_path}: model type {config.model_type!r} is not supported; "
                             "use a BERT-family encoder such as cointegrated/rubert-tiny2")
    config.update(heads)
    if random_init:
        return BertForNewsTagging(config)
    try:
        return BertForNewsTagging.from_pretrained(name_or_path, config=config, local_files_only=local)
    except OSError as e:
        raise ModelLoadError(f"{name_or_path}: no pretrained weights found ({str(e).splitlines()[0]}); "
                             "set model.random_init=true to train from random weights (pipeline tests only)") from None
