"""Batched inference shared by training (threshold tuning), evaluation and prediction."""

from __future__ import annotations

import numpy as np
import torch


def encode(tokenizer, texts: list[str], contexts: list[str] | None, max_length: int, **kwargs):
    """Tokenize sentences, with the previous sentence as the second segment when contexts are given.

    The context is truncated first: the sentence itself is what is being tagged.
    """
    if contexts is None:
        return tokenizer(texts, truncation=True, max_length=max_length, **kwargs)
    return tokenizer(texts, contexts, truncation="only_second", max_length=max_length, **kwargs)


@torch.inference_mode()
def predict_probabilities(model, tokenizer, texts: list[str], contexts: list[str] | None = None,
                          batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(topic probabilities, speaker probabilities) in input order.

    Sentences are sorted by length so each batch pads to its own longest member,
    then the results are put back in input order.
    """
    config = model.config
    if not config.use_context:
        contexts = None
    elif contexts is None:
        contexts = [""] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(contexts[i]) if contexts else 0))
    topic_probs = np.zeros((len(texts), len(config.topics)), dtype=np.float32)
    speaker_probs = np.zeros((len(texts), len(config.speakers)), dtype=np.float32)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        encoded = encode(tokenizer, [texts[i] for i in batch], [contexts[i] for i in batch] if contexts else None,
                         config.max_seq_length, padding=True, return_tensors="pt").to(device)
        output = model(**encoded)
        topic_probs[batch] = torch.sigmoid(output.topic_logits.float()).cpu().numpy()
        speaker_probs[batch] = torch.softmax(output.speaker_logits.float(), dim=-1).cpu().numpy()
    return topic_probs, speaker_probs
