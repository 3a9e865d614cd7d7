"""The run directory: a self-contained checkpoint that prediction and evaluation load by path alone.

    models/<run>/
      config.json          encoder config + topics, speakers, topic_thresholds, use_context, max_seq_length
      model.safetensors    weights
      tokenizer.json ...   tokenizer
      train_config.yaml    the resolved training config
      metrics.json         validation and test metrics, per label (and cross-validation when run)
      dataset.json         fingerprint and split sizes of the data it was trained on
      README.md            model card
      logs/                TensorBoard

A directory is only ever renamed into place once complete, so a directory that
lacks one of REQUIRED_FILES was not written by this tool (or was damaged).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from train.atomic import write_file_atomically
from train.config import Config, load_config
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.modeling.bert import BertForNewsTagging
from train.modeling.navec import MODEL_TYPE as NAVEC_MODEL_TYPE
from train.modeling.navec import NavecForNewsTagging, NavecTokenizer

REQUIRED_FILES = ("config.json", "model.safetensors", "train_config.yaml", "metrics.json")
LATEST = "latest"


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

    @classmethod
    def open(cls, path: str | Path) -> Checkpoint:
        path = check_checkpoint(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        try:
            metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}/metrics.json: not valid JSON ({e.msg}); the run directory is damaged")
        dataset = path / "dataset.json"
        fingerprint = json.loads(dataset.read_text(encoding="utf-8")).get("fingerprint") if dataset.is_file() else None
        return cls(path=path, scheme=LabelScheme(tuple(config["topics"]), tuple(config["speakers"])),
                   thresholds=tuple(config["topic_thresholds"]), use_context=bool(config.get("use_context")),
                   model_config=config, train_config=load_config(path / "train_config.yaml"),
                   data_fingerprint=fingerprint, metrics=metrics if isinstance(metrics, dict) else {})

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

    def load(self, device: str | torch.device = "cpu"):
        """(model in eval mode, tokenizer), by the model type in config.json."""
        if self.model_config.get("model_type") == NAVEC_MODEL_TYPE:
            model = NavecForNewsTagging.from_pretrained(self.path, local_files_only=True)
            tokenizer = NavecTokenizer.from_pretrained(self.path)
        else:
            model = BertForNewsTagging.from_pretrained(self.path, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        return model.to(device).eval(), tokenizer


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
