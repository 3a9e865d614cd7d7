"""The probe: both heads fitted as logistic regressions on the frozen encoder's pooled vectors.

Leave-event-out cross-validation (README: recipes) finds this transfers to unseen events better than
fine-tuning on a corpus of this size, at a fraction of the cost on a CPU: one forward pass over the
training split instead of many epochs of backward passes. The regressions use balanced class weights,
like the losses' pos_weight and class weights, and are written into the heads, so the checkpoint is an
ordinary tagger.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from train.modeling.heads import ABSENT_LOGIT, softmax_rows
from train.modeling.inference import pad_batch


@torch.inference_mode()
def pooled_vectors(model, dataset, pad_token_id: int, batch_size: int = 64) -> np.ndarray:
    """The heads' input for every row of a tokenized split, in order."""
    was_training = model.training
    model.eval()
    # One read per column: indexing a datasets row at a time goes back to Arrow for every sentence.
    columns = dataset.select_columns([k for k in dataset.column_names
                                      if k in ("input_ids", "attention_mask", "token_type_ids")]).to_dict()
    order = sorted(range(len(dataset)), key=lambda i: len(columns["input_ids"][i]))
    vectors = np.zeros((len(dataset), model.config.encoder().hidden_size), dtype=np.float32)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batch = pad_batch([{k: values[i] for k, values in columns.items()} for i in rows], pad_token_id, device)
        vectors[rows] = model.pooled(**batch).float().cpu().numpy()
    model.train(was_training)
    return vectors


def fit_probe(model, dataset, pad_token_id: int, topic_c: float, speaker_c: float) -> None:
    """Set both heads to logistic regressions fitted on the frozen encoder's vectors of `dataset`."""
    x = pooled_vectors(model, dataset, pad_token_id)
    topics = np.asarray(dataset["topic_labels"], dtype=int)
    speakers = np.asarray(dataset["speaker_labels"], dtype=int)
    topic_weight = np.zeros((topics.shape[1], x.shape[1]), dtype=np.float32)
    topic_bias = np.full(topics.shape[1], ABSENT_LOGIT, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        for t in range(topics.shape[1]):
            if topics[:, t].min() == topics[:, t].max():  # never (or always) on in training
                topic_bias[t] = -ABSENT_LOGIT if topics[0, t] else ABSENT_LOGIT
                continue
            regression = LogisticRegression(C=topic_c, max_iter=3000, class_weight="balanced").fit(x, topics[:, t])
            topic_weight[t], topic_bias[t] = regression.coef_[0], regression.intercept_[0]
    n_speakers = model.speaker_head.out_features
    classes = np.unique(speakers)
    if len(classes) == 1:
        speaker_weight, speaker_bias = np.zeros((n_speakers, x.shape[1])), np.full(n_speakers, ABSENT_LOGIT)
        speaker_bias[classes[0]] = 0.0
    else:
        regression = LogisticRegression(C=speaker_c, max_iter=3000, class_weight="balanced").fit(x, speakers)
        speaker_weight, speaker_bias = softmax_rows(regression.classes_, regression.coef_, regression.intercept_,
                                                    n_speakers)
    with torch.no_grad():
        for head, weight, bias in ((model.topic_head, topic_weight, topic_bias),
                                   (model.speaker_head, speaker_weight, speaker_bias)):
            head.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)))
            head.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))
