"""The checkpoint's errors on its held-out sentences, which the coverage estimates correct for."""

from __future__ import annotations

import numpy as np

from train.coverage.estimates import HeldOutErrors, held_out_errors
from train.evaluation.scoring import LabelledData, check_scheme, predict, split_data
from train.modeling.checkpoint import Checkpoint

HELD_OUT_SPLITS = ("validation", "test")


def _concatenate(parts: list[LabelledData]) -> LabelledData:
    first = parts[0]
    return LabelledData(
        name="+".join(p.name for p in parts), source=" and ".join(p.source for p in parts), scheme=first.scheme,
        ids=[i for p in parts for i in p.ids], articles=[a for p in parts for a in p.articles],
        outlets=[o for p in parts for o in p.outlets], texts=[t for p in parts for t in p.texts],
        contexts=[c for p in parts for c in p.contexts],
        topic_gold=np.concatenate([p.topic_gold for p in parts]),
        speaker_gold=np.concatenate([p.speaker_gold for p in parts]))


def checkpoint_errors(checkpoint: Checkpoint) -> HeldOutErrors:
    """Errors on the validation and test splits pooled: every labelled sentence the weights never trained on.

    Pooling doubles the sentences the rates rest on; the price is a slight optimism,
    since the topic thresholds were tuned on the validation split.
    """
    data = _concatenate([split_data(checkpoint.train_config.data, split, checkpoint.data_fingerprint, checkpoint.path)
                         for split in HELD_OUT_SPLITS])
    check_scheme(checkpoint, data)
    predictions, _ = predict(checkpoint, data)
    return held_out_errors(f"{checkpoint.path}: {data.source}", predictions.topic_probs, predictions.topic_pred,
                           data.topic_gold, predictions.speaker_probs, data.speaker_gold)
