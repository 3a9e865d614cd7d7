"""Any transformers encoder (BERT, XLM-R, ...) with two heads: topics (multi-label) and speaker (one of N).

One forward pass serves both heads. Everything prediction needs besides the weights lives in the model
config: the encoder's own config, the pooling, both label maps, the tuned topic thresholds and whether the
previous sentence is passed as context, so a checkpoint directory is all `from_pretrained` needs.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from train.data.scheme import LabelScheme
from train.modeling.heads import HeadConfig, TaggerOutput, tagging_loss
from train.modeling.hub import ModelLoadError, resolve_local_files_only

MODEL_TYPE = "news-tagger"
POOLINGS = ("cls", "mean")


class NewsTaggerConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, encoder_config: dict | None = None, pooling: str = "cls", normalize: bool = False,
                 **head_config):
        """`encoder_config`: the encoder's own config as a dict (it names its model_type); the rest is
        `HeadConfig.model_config()`."""
        super().__init__(**head_config)
        self.encoder_config = encoder_config or {}
        self.pooling = pooling
        self.normalize = normalize

    def encoder(self) -> PretrainedConfig:
        values = dict(self.encoder_config)
        return AutoConfig.for_model(values.pop("model_type"), **values)


# So that AutoConfig (and AutoTokenizer, which reads config.json) know a run directory's config.
AutoConfig.register(MODEL_TYPE, NewsTaggerConfig)


def bare_encoder(config: PretrainedConfig) -> tuple[type[PreTrainedModel], dict]:
    """The encoder class for `config` and the options that build it without a pooler where it has one: the pooler's weights would get
    no gradient, which DDP rejects under `accelerate launch`."""
    model_class = MODEL_MAPPING[type(config)]
    options = {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(model_class).parameters else {}
    return model_class, options


class TransformerForNewsTagging(PreTrainedModel):
    """Encoder -> pooled vector ([CLS] or mean of the tokens) -> dropout -> topic head and speaker head."""

    config_class = NewsTaggerConfig
    base_model_prefix = "tagger"
    _supports_sdpa = True

    def __init__(self, config: NewsTaggerConfig):
        super().__init__(config)
        model_class, options = bare_encoder(config.encoder())
        self.encoder = model_class(config.encoder(), **options)
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.topic_head = nn.Linear(hidden, len(config.topics))
        self.speaker_head = nn.Linear(hidden, len(config.speakers))
        self.post_init()

    def _init_weights(self, module):
        if module in (self.topic_head, self.speaker_head):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def pooled(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """The vector both heads read: [CLS] or the mean of the last layer's tokens (padding excluded),
        L2-normalised when the config says so."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        if self.config.pooling == "mean":
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        else:
            pooled = hidden[:, 0]
        return nn.functional.normalize(pooled, dim=-1) if self.config.normalize else pooled

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                topic_labels=None, speaker_labels=None, **_) -> TaggerOutput:
        pooled = self.dropout(self.pooled(input_ids, attention_mask, token_type_ids))
        topic_logits, speaker_logits = self.topic_head(pooled), self.speaker_head(pooled)
        loss = tagging_loss(self.config, topic_logits, speaker_logits, topic_labels, speaker_labels)
        return TaggerOutput(loss=loss, topic_logits=topic_logits, speaker_logits=speaker_logits)

    @property
    def scheme(self) -> LabelScheme:
        return LabelScheme(topics=tuple(self.config.topics), speakers=tuple(self.config.speakers))


def load_tokenizer(name_or_path: str):
    local = resolve_local_files_only(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path, local_files_only=local)
    except OSError as e:
        raise ModelLoadError(f"{name_or_path}: no usable tokenizer ({e})") from None


def init_transformer(name_or_path: str, heads: HeadConfig, *, pooling: str = "cls", normalize: bool = False,
                     random_init: bool = False) -> TransformerForNewsTagging:
    """A fresh tagger: the pretrained encoder from `name_or_path` (or random weights of its shape), new heads."""
    local = resolve_local_files_only(name_or_path)
    encoder_config = AutoConfig.from_pretrained(name_or_path, local_files_only=local)
    if type(encoder_config) not in MODEL_MAPPING:
        raise ModelLoadError(f"{name_or_path}: model type {encoder_config.model_type!r} has no transformers "
                             "encoder class; use an encoder such as cointegrated/rubert-tiny2 or xlm-roberta-base")
    config = NewsTaggerConfig(encoder_config=encoder_config.to_dict(), pooling=pooling, normalize=normalize,
                              **heads.model_config())
    model = TransformerForNewsTagging(config)
    if random_init:
        return model
    model_class, options = bare_encoder(encoder_config)
    try:
        model.encoder = model_class.from_pretrained(name_or_path, config=encoder_config, local_files_only=local,
                                                    **options)
    except OSError as e:
        raise ModelLoadError(f"{name_or_path}: no pretrained weights found ({str(e).splitlines()[0]}); "
                             "set model.random_init=true to train from random weights (pipeline tests only)") from None
    return model
