"""Batched inference shared by training (threshold tuning), evaluation and prediction."""

from __future__ import annotations

from collections.abc import Callable

import torch

from train.modeling.outputs import HeadProbabilities


def encode(tokenizer, texts: list[str], contexts: list[str] | None, max_length: int, **kwargs):
    """Tokenize sentences, with the previous sentence as the second segment when contexts are given.

    The context is truncated first: the sentence itself is what is being tagged. A tokenizer that
    `encodes_context_separately` (navec) returns the context as inputs of its own instead.
    """
    if getattr(tokenizer, "encodes_context_separately", False):
        return tokenizer(texts, contexts, max_length=max_length, **kwargs)
    if contexts is None:
        return tokenizer(texts, truncation=True, max_length=max_length, **kwargs)
    texts = _fit_pair_budget(tokenizer, texts, max_length)
    return tokenizer(texts, contexts, truncation="only_second", max_length=max_length, **kwargs)


def _fit_pair_budget(tokenizer, texts: list[str], max_length: int) -> list[str]:
    """Cut sentences that leave no room for a context token, so that truncating only the context suffices.

    The tokenizer raises on such a pair instead of truncating the sentence.
    """
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True) - 1
    offsets = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=budget,
                        return_offsets_mapping=True)["offset_mapping"]
    return [text[:spans[-1][1]] if len(spans) == budget else text for text, spans in zip(texts, offsets)]


def probabilities(topic_logits: torch.Tensor, speaker_logits: torch.Tensor) -> HeadProbabilities:
    """Sigmoid per topic, softmax over speakers, in float32 numpy."""
    return HeadProbabilities(torch.sigmoid(topic_logits.float()).cpu().numpy(),
                             torch.softmax(speaker_logits.float(), dim=-1).cpu().numpy())


def pad_batch(features: list[dict], pad_token_id: int, device=None) -> dict[str, torch.Tensor]:
    """Right-pad each sequence input of a batch to its own longest member; labels become tensors as they are.

    What tokenizer.pad does, without its per-call overhead, and for a context with inputs of its own.
    """
    batch = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if key.endswith(("input_ids", "attention_mask", "token_type_ids")):
            fill = pad_token_id if key.endswith("input_ids") else 0
            width = max(len(v) for v in values)
            values = [v + [fill] * (width - len(v)) for v in values]
        batch[key] = torch.tensor(values, device=device)
    return batch


@torch.inference_mode()
def predict_probabilities(model, tokenizer, texts: list[str], contexts: list[str] | None = None,
                          batch_size: int = 64,
                          progress: Callable[[int], object] | None = None) -> HeadProbabilities:
    """Both heads' probabilities in input order; `progress(n)` after each batch of n.

    A model that carries a lexical (TF-IDF) model averages its probabilities with that model's, by the
    weight its config records.

    Everything is tokenized in one call, then sorted by token count so each
    batch pads only to its own longest member; results go back in input order.
    """
    config = model.config
    if not config.use_context:
        contexts = None
    elif contexts is None:
        contexts = [""] * len(texts)
    result = HeadProbabilities.zeros(len(texts), len(config.topics), len(config.speakers))
    if not texts:
        return result
    encoded = encode(tokenizer, texts, contexts, config.max_seq_length)
    features = [{key: values[i] for key, values in encoded.items()} for i in range(len(texts))]
    order = sorted(range(len(texts)), key=lambda i: len(features[i]["input_ids"]))
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        output = model(**pad_batch([features[i] for i in batch], tokenizer.pad_token_id, device))
        result.put(batch, probabilities(output.topic_logits, output.speaker_logits))
        if progress:
            progress(len(batch))
    lexical = getattr(model, "lexical", None)
    if lexical is not None:
        return result.blend(lexical.predict_probabilities(texts), config.lexical_weight)
    return result
