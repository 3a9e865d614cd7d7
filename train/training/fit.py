"""`make train`: fine-tune the encoder with a topics head and a speaker head.

The run is written into `models/<run>.partial/` and renamed to `models/<run>/`
only when complete, so a killed run never leaves a directory that looks like a
finished checkpoint; `make train RESUME=1` continues the newest partial run from
its last epoch checkpoint. Works unchanged under `accelerate launch`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from datasets import DatasetDict
from transformers import EarlyStoppingCallback, EvalPrediction, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PredictionOutput

from train.config import Config, ConfigError, save_config
from train.data.build import SPLITS, build_dataset
from train.data.scheme import LabelScheme, load_scheme
from train.evaluation.metrics import headline, score_predictions, tune_thresholds
from train.modeling.bert import init_model, load_tokenizer, resolve_local_files_only
from train.modeling.card import write_model_card
from train.modeling.checkpoint import publish, write_json
from train.modeling.inference import encode, pad_batch
from train.modeling.navec import init_navec_model, navec_path

LABEL_COLUMNS = ["topic_labels", "speaker_labels"]
# Caps keep a label seen once in training from dominating the loss.
MAX_POS_WEIGHT = 10.0
MAX_CLASS_WEIGHT = 10.0


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict


def topic_pos_weights(topic_labels: np.ndarray) -> list[float]:
    """negatives/positives per topic from the training split, capped; 1.0 for a topic never seen."""
    positives = topic_labels.sum(axis=0)
    negatives = len(topic_labels) - positives
    return [float(min(n / p, MAX_POS_WEIGHT)) if p else 1.0 for p, n in zip(positives, negatives)]


def speaker_class_weights(speaker_labels: np.ndarray, n_classes: int) -> list[float]:
    """Inverse-frequency ('balanced') weights, capped; 1.0 for a class never seen."""
    counts = np.bincount(speaker_labels, minlength=n_classes)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = len(speaker_labels) / (present.sum() * counts[present])
    return [float(min(w, MAX_CLASS_WEIGHT)) for w in weights]


def tokenize(dataset: DatasetDict, tokenizer, use_context: bool, max_length: int) -> DatasetDict:
    def encode_batch(batch):
        encoded = encode(tokenizer, batch["text"], batch["context"] if use_context else None, max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        encoded["topic_labels"] = batch["topic_labels"]
        encoded["speaker_labels"] = batch["speaker_label"]
        return encoded

    return dataset.map(encode_batch, batched=True, remove_columns=dataset["train"].column_names,
                       desc="tokenizing")


class TaggingCollator:
    """Dynamic padding to the longest sentence of each batch; `length` only serves the sampler."""

    def __init__(self, tokenizer):
        self.pad_token_id = tokenizer.pad_token_id

    def __call__(self, features):
        return pad_batch([{k: v for k, v in f.items() if k != "length"} for f in features], self.pad_token_id)


def compute_metrics(prediction: EvalPrediction, scheme: LabelScheme) -> dict:
    """Headline metrics at the untuned 0.5 topic threshold; `combined` selects the best epoch."""
    topic_probs, topic_gold, speaker_probs, speaker_gold = to_probabilities(prediction)
    return headline(score_predictions(topic_probs, topic_gold, speaker_probs, speaker_gold, list(scheme.topics),
                                      list(scheme.speakers), [0.5] * len(scheme.topics)))


def to_probabilities(prediction: EvalPrediction | PredictionOutput) -> tuple[np.ndarray, ...]:
    """(topic probabilities, topic gold, speaker probabilities, speaker gold) from the Trainer's logits."""
    topic_logits, speaker_logits = prediction.predictions
    topic_gold, speaker_gold = prediction.label_ids
    topic_probs = torch.sigmoid(torch.from_numpy(topic_logits).float()).numpy()
    speaker_probs = torch.softmax(torch.from_numpy(speaker_logits).float(), dim=-1).numpy()
    return topic_probs, topic_gold, speaker_probs, speaker_gold


def run_directories(config: Config) -> tuple[Path, Path]:
    """(final run dir, staging dir). With train.resume, the staging dir of the newest partial run."""
    output_dir = Path(config.train.output_dir)
    if config.train.resume and not config.train.run_name:
        partial = sorted(output_dir.glob("*.partial"), key=lambda p: p.stat().st_mtime)
        if not partial:
            raise ConfigError(f"{output_dir}: no interrupted run to resume (no *.partial directory)")
        staging = partial[-1]
        return staging.with_suffix(""), staging
    name = config.train.run_name or f"{Path(config.model.name_or_path).name}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Under `accelerate launch` each process reads its own clock; all must write to the main one's directory.
    name = broadcast_object_list([name])[0]
    run_dir = output_dir / name
    return run_dir, run_dir.with_name(run_dir.name + ".partial")


def mixed_precision(config: Config) -> dict:
    if not torch.cuda.is_available() or config.train.mixed_precision == "no":
        return {}
    if config.train.mixed_precision == "bf16" and torch.cuda.is_bf16_supported():
        return {"bf16": True}
    return {"fp16": True}


def training_arguments(config: Config, checkpoints: Path) -> TrainingArguments:
    t = config.train
    return TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="combined",
        greater_is_better=True,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        length_column_name="length",
        label_names=LABEL_COLUMNS,
        remove_unused_columns=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        # Under `accelerate launch` on a machine without GPUs this selects gloo DDP across the processes.
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,
        logging_steps=t.logging_steps,
        report_to=["tensorboard"],
        seed=t.seed,
        data_seed=t.seed,
        **mixed_precision(config),
    )


def check_encoder_available(config: Config) -> None:
    """Raise at once, before anything is written, when the encoder cannot be loaded."""
    if config.model.encoder == "navec":
        navec_path(config.model.name_or_path)
    else:
        resolve_local_files_only(config.model.name_or_path)


def new_tagger(config: Config, scheme: LabelScheme, train_split):
    """(fresh model, tokenizer) for config.model.encoder, with loss weights from the training split."""
    m, t = config.model, config.train
    heads = dict(
        use_context=m.use_context, max_length=m.max_length, classifier_dropout=m.classifier_dropout,
        topic_loss_weight=t.topic_loss_weight, speaker_loss_weight=t.speaker_loss_weight,
        topic_pos_weight=topic_pos_weights(np.array(train_split["topic_labels"])) if t.topic_pos_weight else None,
        speaker_class_weight=speaker_class_weights(np.array(train_split["speaker_label"]), len(scheme.speakers))
        if t.speaker_class_weight else None)
    if m.encoder == "navec":
        return init_navec_model(m.name_or_path, scheme, hidden_size=m.hidden_size, **heads)
    return init_model(m.name_or_path, scheme, random_init=m.random_init, **heads), load_tokenizer(m.name_or_path)


@dataclass
class FitResult:
    trainer: Trainer
    metrics: dict


def fit(config: Config, raw: DatasetDict, scheme: LabelScheme, work_dir: Path, resume: bool = False,
        callbacks: list[TrainerCallback] = ()) -> FitResult:
    """Train on raw["train"], select and tune thresholds on raw["validation"], score raw["test"]."""
    set_seed(config.train.seed)
    model, tokenizer = new_tagger(config, scheme, raw["train"])
    data = tokenize(raw, tokenizer, config.model.use_context, config.model.max_length)

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(work_dir / "logs")
    trainer = Trainer(
        model=model, args=training_arguments(config, work_dir / "checkpoints"),
        data_collator=TaggingCollator(tokenizer), train_dataset=data["train"], eval_dataset=data["validation"],
        processing_class=tokenizer, compute_metrics=lambda p: compute_metrics(p, scheme),
        callbacks=[EarlyStoppingCallback(config.train.early_stopping_patience), *callbacks],
    )
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - started

    val_topic, val_topic_gold, val_speaker, val_speaker_gold = to_probabilities(trainer.predict(data["validation"]))
    thresholds = tune_thresholds(val_topic, val_topic_gold, floor=config.train.threshold_floor)
    trainer.model.config.topic_thresholds = thresholds
    test_topic, test_topic_gold, test_speaker, test_speaker_gold = to_probabilities(trainer.predict(data["test"]))
    metrics = {
        split: score_predictions(topic, topic_gold, speaker, speaker_gold, list(scheme.topics),
                                 list(scheme.speakers), thresholds)
        for split, (topic, topic_gold, speaker, speaker_gold) in {
            "validation": (val_topic, val_topic_gold, val_speaker, val_speaker_gold),
            "test": (test_topic, test_topic_gold, test_speaker, test_speaker_gold)}.items()
    }
    metrics["topic_thresholds"] = dict(zip(scheme.topics, thresholds))
    metrics["training"] = {"seconds": round(train_seconds, 1), "epochs_run": trainer.state.epoch,
                           "best_validation_combined": trainer.state.best_metric,
                           "processes": trainer.args.world_size, "train_sentences": len(raw["train"])}
    return FitResult(trainer, metrics)


def train(config: Config, callbacks: list[TrainerCallback] = ()) -> TrainResult:
    """Fine-tune on the built dataset and publish a self-contained run directory."""
    check_encoder_available(config)
    build = build_dataset(config.data)
    scheme = load_scheme(config.data.labels)
    run_dir, staging = run_directories(config)
    resume = config.train.resume and any((staging / "checkpoints").glob("checkpoint-*"))
    if PartialState().is_main_process:
        staging.mkdir(parents=True, exist_ok=True)
    result = fit(config, build.dataset, scheme, staging, resume=resume, callbacks=callbacks)
    trainer = result.trainer
    if trainer.is_world_process_zero():
        trainer.save_model(str(staging))
        save_config(config, staging / "train_config.yaml")
        write_json(staging / "dataset.json", {"fingerprint": build.fingerprint, "label_table": build.table,
                                               "sizes": {split: len(build.dataset[split]) for split in SPLITS}})
        write_json(staging / "metrics.json", result.metrics)
        write_model_card(staging, config, result.metrics, scheme, build.table)
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        publish(staging, run_dir)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(run_dir, result.metrics)
