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
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from train.atomic import write_file_atomically
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.modeling.bert import BertForNewsTagging

REQUIRED_FILES = ("config.json", "model.safetensors", "train_config.yaml", "metrics.json")
LATEST = "latest"


class CheckpointError(UserError):
    """A path that is not a complete checkpoint of this tool."""


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
    path = check_checkpoint(path)
    model = BertForNewsTagging.from_pretrained(path, local_files_only=True).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer


def checkpoint_scheme(path: str | Path) -> LabelScheme:
    config = json.loads((check_checkpoint(path) / "config.json").read_text(encoding="utf-8"))
    return LabelScheme(topics=tuple(config["topics"]), speakers=tuple(config["speakers"]))


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
