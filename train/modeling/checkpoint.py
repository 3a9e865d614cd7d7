"""The run directory: a self-contained checkpoint that prediction and evaluation load by path alone.

    models/<run>/
      config.json          tagger config: checkpoint_format, the encoder's config, pooling, topics, speakers,
                           topic_thresholds, use_context, max_seq_length
      model.safetensors    weights
      tokenizer.json ...   tokenizer
      train_config.yaml    the resolved training config
      encoder.json         which encoder the run used, why (requested, or a fallback), and its provenance
      metrics.json         validation and test metrics, per label (and cross-validation when run)
      dataset.json         fingerprint and split sizes of the data it was trained on
      README.md            model card
      logs/                TensorBoard

A directory is only ever renamed into place once complete, so a directory that
lacks one of REQUIRED_FILES was not written by this tool (or was damaged).

Format 1 (before the encoder registry) stored a BERT tagger as `model_type: bert` with `bert.*` weights and
`model.encoder: bert` in its train config; such runs are migrated on read, so every run in models/ still
predicts, evaluates and reports.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from train.atomic import write_file_atomically
from train.config import Config, config_from_dict, read_yaml
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.modeling.encoders import LOADERS
from train.modeling.heads import HeadConfig
from train.modeling.lexical import LexicalModel
from train.modeling.transformer import NewsTaggerConfig, TransformerForNewsTagging

REQUIRED_FILES = ("config.json", "model.safetensors", "train_config.yaml", "metrics.json")
LATEST = "latest"
CHECKPOINT_FORMAT = 2
ENCODER_FILE = "encoder.json"
# config.json keys a format-1 BERT run carries for its heads; every other key is the encoder's own config.
HEAD_KEYS = tuple(HeadConfig(LabelScheme((), ()), "").model_config())


class CheckpointError(UserError):
    """A path that is not a complete checkpoint of this tool."""


@dataclass(frozen=True)
class Checkpoint:
    """A run directory opened and validated once: everything a reader needs to trust it.

    Prediction, evaluation and reports take this object, so they score with the
    run's own thresholds, labels and data config rather than today's defaults.
    """
    path: Path
    scheme: LabelScheme
    thresholds: tuple[float, ...]
    use_context: bool
    model_config: dict
    train_config: Config
    data_fingerprint: str | None
    metrics: dict
    format: int
    encoder_record: dict

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        path = check_checkpoint(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        checkpoint_format = int(config.get("checkpoint_format", 1))
        if checkpoint_format > CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {checkpoint_format} is newer than this tool reads "
                                  f"({CHECKPOINT_FORMAT}); update the tool")
        try:
            metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}/metrics.json: not valid JSON ({e.msg}); the run directory is damaged")
        dataset = path / "dataset.json"
        fingerprint = json.loads(dataset.read_text(encoding="utf-8")).get("fingerprint") if dataset.is_file() else None
        raw_train_config = read_yaml(path / "train_config.yaml")
        if checkpoint_format == 1:
            raw_train_config = migrate_train_config(raw_train_config)
        encoder_file = path / ENCODER_FILE
        encoder_record = json.loads(encoder_file.read_text(encoding="utf-8")) if encoder_file.is_file() else {}
        return cls(path=path, scheme=LabelScheme(tuple(config["topics"]), tuple(config["speakers"])),
                   thresholds=tuple(config["topic_thresholds"]), use_context=bool(config.get("use_context")),
                   model_config=config, train_config=config_from_dict(raw_train_config, path / "train_config.yaml"),
                   data_fingerprint=fingerprint, metrics=metrics if isinstance(metrics, dict) else {},
                   format=checkpoint_format, encoder_record=encoder_record)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def encoder(self) -> str:
        return str(self.model_config.get("encoder_name_or_path", self.model_config.get("_name_or_path", "?")))

    @property
    def random_weights(self) -> bool:
        return self.train_config.model.random_init

    @property
    def cross_validation(self) -> dict | None:
        cv = self.metrics.get("cv")
        return cv if isinstance(cv, dict) and isinstance(cv.get("summary"), dict) else None

    @property
    def supports_int8(self) -> bool:
        return self.format == 1 or LOADERS[self.model_config["model_type"]].supports_int8

    def load(self, device: str | torch.device = "cpu"):
        """(model in eval mode, tokenizer), by the model type in config.json."""
        if self.format == 1 and self.model_config.get("model_type") == "bert":
            model = migrate_bert_tagger(self.path, self.model_config)
            tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        else:
            loader = LOADERS.get(self.model_config.get("model_type"))
            if loader is None:
                raise CheckpointError(f"{self.path}/config.json: model_type {self.model_config.get('model_type')!r} "
                                      f"is not one this tool writes ({', '.join(LOADERS)})")
            model = loader.model_class.from_pretrained(self.path, local_files_only=True)
            tokenizer = loader.load_tokenizer(self.path)
        model.lexical = LexicalModel.load(self.path)
        return model.to(device).eval(), tokenizer


def migrate_train_config(raw: dict) -> dict:
    """A format-1 train config in today's terms: `encoder: bert` is the transformer encoder, read at [CLS]."""
    model = dict(raw.get("model") or {})
    if model.get("encoder") == "bert":
        model["encoder"] = "transformer"
        model.setdefault("pooling", "cls")
    return {**raw, "model": model}


def migrate_bert_tagger(path: Path, old_config: dict) -> TransformerForNewsTagging:
    """A format-1 BERT tagger (`bert.*` weights, heads and BERT settings in one flat config) as today's tagger."""
    encoder_config = {k: v for k, v in old_config.items() if k not in HEAD_KEYS and k != "architectures"}
    config = NewsTaggerConfig(encoder_config=encoder_config, pooling="cls",
                              **{k: old_config[k] for k in HEAD_KEYS if k in old_config})
    model = TransformerForNewsTagging(config)
    state = {("encoder." + k.removeprefix("bert.") if k.startswith("bert.") else k): v
             for k, v in load_file(path / "model.safetensors").items()}
    model.load_state_dict(state, strict=True)
    return model


def open_checkpoint(model: str | Path | None, models_dir: str | Path = "models") -> Checkpoint:
    """The given checkpoint, or the latest successful run when none is given, opened once."""
    return Checkpoint.open(resolve_model_path(model, models_dir))


def check_checkpoint(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint directory; train one with `make train`")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {', '.join(missing)}; "
                              "use a directory written by `make train` (see models/latest)")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if not config.get("topics") or not config.get("speakers") or "topic_thresholds" not in config:
        raise CheckpointError(f"{path}/config.json: no topic/speaker label maps; not a checkpoint of this tool")
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, tokenizer) from a checkpoint directory."""
    return Checkpoint.open(path).load(device)


def resolve_model_path(model: str | Path | None, models_dir: str | Path = "models") -> Path:
    """The given checkpoint, or the latest successful run when none is given."""
    if model:
        return check_checkpoint(model)
    latest = Path(models_dir) / LATEST
    if not latest.exists():
        raise CheckpointError(f"{latest}: no trained run yet; run `make train` or pass --model models/<run>")
    return check_checkpoint(latest.resolve())


def mark_latest(run_dir: Path) -> None:
    """Point models/latest at run_dir, atomically (a relative symlink, so the folder can be moved)."""
    link = run_dir.parent / LATEST
    temporary = run_dir.parent / f".{LATEST}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(run_dir.name)
    os.replace(temporary, link)


def publish(staging: Path, run_dir: Path) -> Path:
    """Move a finished staging directory into place as run_dir and mark it latest."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.replace(staging, run_dir)
    mark_latest(run_dir)
    return run_dir


def write_json(path: Path, payload: dict) -> None:
    def default(value):
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"not JSON serialisable: {type(value)}")
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=default) + "\n"
    write_file_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
