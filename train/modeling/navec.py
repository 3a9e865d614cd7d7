"""An offline tagger with pretrained Russian knowledge: frozen navec word vectors and a small CNN.

navec (https://github.com/natasha/navec) news embeddings ship inside the `natasha` wheel: 250K
lowercase words x 300 dimensions, product-quantized (each vector is 100 sub-vectors of 3, each one
of 256 centroids). The checkpoint keeps that quantized table as two frozen buffers (26 MB) and the
vocabulary beside the weights, so it loads and predicts without natasha installed.

Sentence and previous sentence go through the same encoder (embeddings -> two convolutions over
word trigrams -> attention pooling and max pooling); the two vectors are concatenated and fed to
the topics and speaker heads of the BERT tagger, with the same losses, class weights and
thresholds. Convolutions rather than a recurrent layer: every position is computed at once, which
on a CPU is several times faster than a GRU's step-by-step loop, and max pooling keeps the
keyword evidence that topics mostly rest on.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from razdel import tokenize as razdel_tokenize
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from train.data.scheme import LabelScheme
from train.modeling.heads import HeadConfig, TaggerOutput, tagging_loss
from train.modeling.hub import ModelLoadError

MODEL_TYPE = "navec-tagger"
DEFAULT_NAVEC = "navec_news_v1_1B_250K_300d_100q"
VOCAB_FILE = "navec_vocab.txt"
UNK, PAD, NUMBER = "<unk>", "<pad>", "<num>"
# navec has no punctuation or numbers, yet quotes, colons and dashes mark reported speech.
# These tokens get trainable vectors of their own instead of all collapsing into <unk>.
EXTRA_TOKENS = (NUMBER, "«", "»", '"', "„", "“", "”", ":", "—", "–", "-", ",", ".", "?", "!", "(", ")", ";", "…")
_NUMBER = re.compile(r"^[\d.,]+$")


class NavecTaggerConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, navec_vocab_size: int = 0, extra_vocab_size: int = len(EXTRA_TOKENS), embedding_dim: int = 300,
                 subvectors: int = 100, centroids: int = 256, hidden_size: int = 128, **head_config):
        """navec's table shape and the CNN width; the rest is `HeadConfig.model_config()`, shared by every encoder."""
        super().__init__(**head_config)
        self.navec_vocab_size = navec_vocab_size
        self.extra_vocab_size = extra_vocab_size
        self.embedding_dim = embedding_dim
        self.subvectors = subvectors
        self.centroids = centroids
        self.hidden_size = hidden_size


class QuantizedEmbedding(nn.Module):
    """navec's product-quantized table, frozen, followed by a few trainable extra tokens.

    Ids below `navec_vocab_size` are navec words: vector = concatenation over sub-spaces s of
    codes[s, indexes[id, s]]. Ids above are EXTRA_TOKENS, looked up in a small trainable table.
    """

    def __init__(self, config: NavecTaggerConfig):
        super().__init__()
        self.navec_vocab_size = config.navec_vocab_size
        self.register_buffer("indexes", torch.zeros(config.navec_vocab_size, config.subvectors, dtype=torch.uint8))
        self.register_buffer("codes", torch.zeros(config.subvectors, config.centroids,
                                                  config.embedding_dim // config.subvectors))
        self.extra = nn.Embedding(config.extra_vocab_size, config.embedding_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        is_extra = ids >= self.navec_vocab_size
        navec_ids = ids.masked_fill(is_extra, 0)
        centroid_ids = self.indexes[navec_ids].long()  # (..., subvectors)
        subspaces = torch.arange(self.codes.shape[0], device=ids.device)
        vectors = self.codes[subspaces, centroid_ids].flatten(-2)  # (..., embedding_dim)
        extra = self.extra((ids - self.navec_vocab_size).clamp(min=0))
        return torch.where(is_extra[..., None], extra, vectors)


class NavecForNewsTagging(PreTrainedModel):
    """navec vectors -> CNN -> attention + max pooling, for the sentence and (optionally) the previous one -> heads."""

    config_class = NavecTaggerConfig
    base_model_prefix = "navec_tagger"

    def __init__(self, config: NavecTaggerConfig):
        super().__init__(config)
        self.embeddings = QuantizedEmbedding(config)
        width = 2 * config.hidden_size
        self.convolutions = nn.ModuleList([nn.Conv1d(config.embedding_dim, width, kernel_size=3, padding=1),
                                           nn.Conv1d(width, width, kernel_size=3, padding=1)])
        self.attention = nn.Linear(width, 1)
        self.dropout = nn.Dropout(config.classifier_dropout)
        features = 2 * width * (2 if config.use_context else 1)
        self.topic_head = nn.Linear(features, len(config.topics))
        self.speaker_head = nn.Linear(features, len(config.speakers))
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.1)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One vector (4 x hidden_size: attention-pooled and max-pooled) per text.

        Padding is zeroed before each convolution, so a text scores the same whatever it is batched with.
        """
        mask = _ones_if_none(attention_mask, input_ids).bool()
        keep = mask.unsqueeze(1).to(self.attention.weight.dtype)  # (batch, 1, length)
        states = self.dropout(self.embeddings(input_ids)).transpose(1, 2) * keep
        for layer, convolution in enumerate(self.convolutions):
            activated = torch.relu(convolution(states)) * keep
            states = activated + states if layer else activated  # residual once the widths match
        states = states.transpose(1, 2)  # (batch, length, width)
        lowest = torch.finfo(states.dtype).min
        scores = self.attention(states).squeeze(-1).masked_fill(~mask, lowest)
        attended = (torch.softmax(scores, dim=-1).unsqueeze(-1) * states).sum(dim=1)
        strongest = states.masked_fill(~mask.unsqueeze(-1), lowest).amax(dim=1)
        return torch.cat([attended, strongest], dim=-1)

    def forward(self, input_ids=None, attention_mask=None, context_input_ids=None, context_attention_mask=None,
                topic_labels=None, speaker_labels=None, **_) -> TaggerOutput:
        if self.config.use_context:
            if context_input_ids is None:
                raise ValueError("this model reads the previous sentence: pass context_input_ids "
                                 "(NavecTokenizer(texts, contexts) makes them)")
            # One encoder pass over sentences and contexts together.
            width = max(input_ids.shape[1], context_input_ids.shape[1])
            ids = torch.cat([_pad_to(input_ids, width, self.config.pad_token_id),
                             _pad_to(context_input_ids, width, self.config.pad_token_id)])
            mask = torch.cat([_pad_to(_ones_if_none(attention_mask, input_ids), width, 0),
                              _pad_to(_ones_if_none(context_attention_mask, context_input_ids), width, 0)])
            sentence, context = self.encode_text(ids, mask).chunk(2)
            features = torch.cat([sentence, context], dim=-1)
        else:
            features = self.encode_text(input_ids, attention_mask)
        features = self.dropout(features)
        topic_logits, speaker_logits = self.topic_head(features), self.speaker_head(features)
        loss = tagging_loss(self.config, topic_logits, speaker_logits, topic_labels, speaker_labels)
        return TaggerOutput(loss=loss, topic_logits=topic_logits, speaker_logits=speaker_logits)

    @property
    def scheme(self) -> LabelScheme:
        return LabelScheme(topics=tuple(self.config.topics), speakers=tuple(self.config.speakers))


def _ones_if_none(attention_mask: torch.Tensor | None, input_ids: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(input_ids) if attention_mask is None else attention_mask


def _pad_to(tensor: torch.Tensor, width: int, fill: int) -> torch.Tensor:
    return nn.functional.pad(tensor, (0, width - tensor.shape[1]), value=fill)


class NavecTokenizer:
    """razdel tokens -> lowercased navec ids; the context is encoded as inputs of its own.

    Same calling convention as the BERT tokenizers for what the pipeline needs:
    `tokenizer(texts, contexts, max_length=...)`, `pad_token_id`, `save_pretrained`, `from_pretrained`.
    """

    encodes_context_separately = True
    model_input_names = ["input_ids", "attention_mask", "context_input_ids", "context_attention_mask"]

    def __init__(self, words: list[str]):
        self.words = words
        self.word_ids = {word: i for i, word in enumerate(words)}
        missing = [token for token in (UNK, PAD, *EXTRA_TOKENS) if token not in self.word_ids]
        if missing:
            raise ModelLoadError(f"navec vocabulary lacks {', '.join(missing)}; not a vocabulary written by this tool")
        self.unk_token_id = self.word_ids[UNK]
        self.pad_token_id = self.word_ids[PAD]
        self.number_id = self.word_ids[NUMBER]

    def __len__(self) -> int:
        return len(self.words)

    def token_ids(self, text: str, max_length: int) -> list[int]:
        ids = [self._id(token.text) for token in razdel_tokenize(text)][:max_length]
        return ids or [self.pad_token_id]  # an empty text (the first sentence's context) is one <pad>

    def _id(self, token: str) -> int:
        word = token.lower()
        if word in self.word_ids:
            return self.word_ids[word]
        return self.number_id if _NUMBER.match(word) else self.unk_token_id

    def __call__(self, texts: list[str], contexts: list[str] | None = None, max_length: int = 128,
                 **_) -> dict[str, list[list[int]]]:
        # Each context is another sentence's text: tokenize every distinct text once (razdel is the cost).
        cache: dict[str, list[int]] = {}
        encoded = self._encode(texts, max_length, "", cache)
        if contexts is not None:
            encoded.update(self._encode(contexts, max_length, "context_", cache))
        return encoded

    def _encode(self, texts: list[str], max_length: int, prefix: str,
                cache: dict[str, list[int]]) -> dict[str, list[list[int]]]:
        ids = [cache[text] if text in cache else cache.setdefault(text, self.token_ids(text, max_length))
               for text in texts]
        return {f"{prefix}input_ids": ids, f"{prefix}attention_mask": [[1] * len(row) for row in ids]}

    def save_pretrained(self, directory: str | Path, **_) -> tuple[str]:
        path = Path(directory) / VOCAB_FILE
        path.write_text("\n".join(self.words) + "\n", encoding="utf-8")
        return (str(path),)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **_) -> NavecTokenizer:
        path = Path(directory) / VOCAB_FILE
        if not path.is_file():
            raise ModelLoadError(f"{path}: navec vocabulary not found; the checkpoint is incomplete")
        return cls(path.read_text(encoding="utf-8").splitlines())


def navec_path(name_or_path: str) -> Path:
    """A navec .tar file: the path itself, or one of the embeddings shipped in natasha's data folder."""
    if Path(name_or_path).is_file():
        return Path(name_or_path)
    try:
        import natasha
    except ImportError:
        raise ModelLoadError(f"{name_or_path}: not a file, and the natasha package that ships navec embeddings "
                             "is not installed; fix: pip install natasha (or `make venv`)") from None
    folder = Path(natasha.__file__).parent / "data/emb"
    path = folder / f"{Path(name_or_path).name}.tar"
    if not path.is_file():
        shipped = ", ".join(p.stem for p in sorted(folder.glob("*.tar"))) or "none"
        raise ModelLoadError(f"{name_or_path}: no such navec file, nor in {folder} (shipped there: {shipped}); "
                             f"set model.name_or_path to a navec .tar file or to {DEFAULT_NAVEC}")
    return path


def init_navec_model(name_or_path: str, heads: HeadConfig,
                     hidden_size: int = 128) -> tuple[NavecForNewsTagging, NavecTokenizer]:
    """A fresh tagger on navec vectors (copied into the model) and its tokenizer."""
    from navec import Navec

    navec = Navec.load(navec_path(name_or_path))
    words = list(navec.vocab.words)
    config = NavecTaggerConfig(
        navec_vocab_size=len(words), embedding_dim=int(navec.pq.dim), subvectors=int(navec.pq.qdim),
        centroids=int(navec.pq.centroids), hidden_size=hidden_size, pad_token_id=navec.vocab.pad_id,
        **heads.model_config())
    model = NavecForNewsTagging(config)
    with torch.no_grad():
        model.embeddings.indexes.copy_(torch.from_numpy(navec.pq.indexes.copy()))
        model.embeddings.codes.copy_(torch.from_numpy(navec.pq.codes.copy()))
    return model, NavecTokenizer(words + list(EXTRA_TOKENS))
