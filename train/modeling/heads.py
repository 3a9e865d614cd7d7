"""What every tagger carries besides its encoder: label maps, thresholds, context and loss settings, and the loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.utils import ModelOutput

from train.data.scheme import LabelScheme


@dataclass
class TaggerOutput(ModelOutput):
    loss: torch.Tensor | None = None
    topic_logits: torch.Tensor | None = None
    speaker_logits: torch.Tensor | None = None


@dataclass(frozen=True)
class HeadConfig:
    """The head settings shared by every encoder, written into the model config as flat keys."""

    scheme: LabelScheme
    encoder_name_or_path: str
    use_context: bool = True
    max_length: int = 128
    classifier_dropout: float = 0.1
    topic_loss_weight: float = 1.0
    speaker_loss_weight: float = 1.0
    topic_pos_weight: tuple[float, ...] | None = None
    speaker_class_weight: tuple[float, ...] | None = None
    lexical_weight: float = 0.0

    def model_config(self) -> dict:
        s = self.scheme
        return dict(
            topics=list(s.topics), speakers=list(s.speakers), id2label=dict(enumerate(s.speakers)),
            label2id=s.speaker2id, topic_thresholds=[0.5] * len(s.topics), use_context=self.use_context,
            max_seq_length=self.max_length, classifier_dropout=self.classifier_dropout,
            topic_loss_weight=self.topic_loss_weight, speaker_loss_weight=self.speaker_loss_weight,
            topic_pos_weight=list(self.topic_pos_weight) if self.topic_pos_weight else None,
            speaker_class_weight=list(self.speaker_class_weight) if self.speaker_class_weight else None,
            encoder_name_or_path=self.encoder_name_or_path, lexical_weight=self.lexical_weight)


ABSENT_LOGIT = -30.0  # a label the training split never showed: probability ~0


def softmax_rows(classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted scikit-learn logistic regression as softmax rows over all `n_classes` (absent ones ~0).

    A two-class regression has one row of logits z; softmax([-z/2, z/2]) is sigmoid(z)."""
    if len(classes) == 2:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_classes, coef.shape[1]), dtype=np.float64)
    bias = np.full(n_classes, ABSENT_LOGIT)
    weight[classes], bias[classes] = coef, intercept
    return weight, bias


HEAD_MODULES = ("topic_head", "speaker_head")


def is_head_parameter(name: str) -> bool:
    return name.split(".", 1)[0] in HEAD_MODULES


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
