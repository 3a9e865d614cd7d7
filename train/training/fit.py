"""`make train`: fine-tune the encoder with a topics head and a speaker head.

The run is written into `models/<run>.partial/` and renamed to `models/<run>/`
only when complete, so a killed run never leaves a directory that looks like a
finished checkpoint; `make train RESUME=1` continues the newest partial run from
its last epoch checkpoint. Works unchanged under `accelerate launch`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from datasets import DatasetDict
from torch.utils.data import SequentialSampler
from transformers import EarlyStoppingCallback, EvalPrediction, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import PredictionOutput

from train.config import Config, ConfigError, save_config
from train.data.build import SPLITS, build_dataset
from train.data.scheme import LabelScheme, load_scheme
from train.evaluation.metrics import Scores, score_predictions, tune_thresholds
from train.modeling.baseline import train_baseline
from train.modeling.checkpoint import CHECKPOINT_FORMAT, ENCODER_FILE, publish, write_json
from train.modeling.encoders import encoder_spec
from train.modeling.heads import HeadConfig, is_head_parameter
from train.modeling.inference import encode, pad_batch, probabilities
from train.modeling.lexical import LexicalModel
from train.modeling.outputs import HeadLabels, HeadProbabilities
from train.training.card import write_model_card
from train.training.encoder_choice import EncoderChoice, choose_encoder
from train.training.probe import fit_probe

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ["topic_labels", "speaker_labels"]
# Caps keep a label seen once in training from dominating the loss.
MAX_POS_WEIGHT = 10.0
MAX_CLASS_WEIGHT = 10.0


@dataclass
class TrainResult:
    run_dir: Path
    scores: dict[str, Scores]  # validation and test
    metrics: dict  # what the run's metrics.json holds
    encoder: EncoderChoice


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
    predicted, gold = to_probabilities(prediction)
    return score_predictions(predicted, gold, scheme.topics, scheme.speakers, [0.5] * len(scheme.topics)).headline()


def to_probabilities(prediction: EvalPrediction | PredictionOutput) -> tuple[HeadProbabilities, HeadLabels]:
    """(probabilities, gold labels) from the Trainer's logits and label ids."""
    topic_logits, speaker_logits = prediction.predictions
    topic_gold, speaker_gold = prediction.label_ids
    return probabilities(torch.from_numpy(topic_logits), torch.from_numpy(speaker_logits)), \
        HeadLabels(topic_gold, speaker_gold)


def run_directories(config: Config) -> tuple[Path, Path]:
    """(final run dir, staging dir). With train.resume, the staging dir of the newest partial run.

    A new run claims its staging directory with an exclusive mkdir, so two runs started in the same
    second get different names instead of sharing (and losing) one directory.
    """
    output_dir = Path(config.train.output_dir)
    if config.train.resume and not config.train.run_name:
        partial = sorted(output_dir.glob("*.partial"), key=lambda p: p.stat().st_mtime)
        if not partial:
            raise ConfigError(f"{output_dir}: no interrupted run to resume (no *.partial directory)")
        staging = partial[-1]
        return staging.with_suffix(""), staging
    if config.train.run_name:
        run_dir = output_dir / config.train.run_name
        staging = run_dir.with_name(run_dir.name + ".partial")
        if not config.train.resume and (run_dir.exists() or staging.exists()):
            raise ConfigError(f"{run_dir if run_dir.exists() else staging} already exists: choose another "
                              "train.run_name" + ("" if run_dir.exists() else ", or continue it with train.resume=true"))
        return run_dir, staging
    # Under `accelerate launch` only the main process claims a name; the others write to its directory.
    name = claim_run_name(output_dir, f"{Path(config.model.name_or_path).name}-{time.strftime('%Y%m%d-%H%M%S')}") \
        if PartialState().is_main_process else None
    run_dir = output_dir / broadcast_object_list([name])[0]
    return run_dir, run_dir.with_name(run_dir.name + ".partial")


def claim_run_name(output_dir: Path, base: str) -> str:
    """`base`, or `base-2`, `base-3`...: the first name whose staging directory this process creates itself."""
    output_dir.mkdir(parents=True, exist_ok=True)
    name, attempt = base, 1
    while True:
        if not (output_dir / name).exists():
            try:
                os.mkdir(output_dir / f"{name}.partial")
                return name
            except FileExistsError:
                pass
        attempt += 1
        name = f"{base}-{attempt}"


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The newest Trainer checkpoint that was completely written; incomplete ones are removed.

    The Trainer writes the weights first and trainer_state.json last, so a kill while saving
    leaves a folder without one of them, which it then refuses to resume from.
    """
    found = sorted(checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    complete = [p for p in found if (p / "model.safetensors").is_file() and (p / "trainer_state.json").is_file()]
    for incomplete in set(found) - set(complete):
        logger.warning("%s was not completely written (interrupted while saving); removing it", incomplete)
        shutil.rmtree(incomplete, ignore_errors=True)
    return complete[-1] if complete else None


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
        # Progress bars in a redirected log are a stream of carriage returns and escape codes.
        disable_tqdm=not sys.stderr.isatty(),
        report_to=["tensorboard"],
        seed=t.seed,
        data_seed=t.seed,
        **mixed_precision(config),
    )


def head_config(config: Config, scheme: LabelScheme, train_split) -> HeadConfig:
    """The heads' settings, with loss weights from the training split."""
    m, t = config.model, config.train
    return HeadConfig(
        scheme=scheme, encoder_name_or_path=encoder_spec(m.encoder).recorded_name(m), use_context=m.use_context,
        max_length=m.max_length, classifier_dropout=m.classifier_dropout, topic_loss_weight=t.topic_loss_weight,
        speaker_loss_weight=t.speaker_loss_weight, lexical_weight=m.lexical_weight,
        topic_pos_weight=tuple(topic_pos_weights(np.array(train_split["topic_labels"])))
        if t.topic_pos_weight else None,
        speaker_class_weight=tuple(speaker_class_weights(np.array(train_split["speaker_label"]), len(scheme.speakers)))
        if t.speaker_class_weight else None)


def new_tagger(config: Config, scheme: LabelScheme, train_split):
    """(fresh model, tokenizer) for config.model.encoder; token embeddings frozen when the recipe says so."""
    model, tokenizer = encoder_spec(config.model.encoder).build(config.model, head_config(config, scheme, train_split))
    model.config.checkpoint_format = CHECKPOINT_FORMAT
    model.lexical = None
    if config.train.freeze_embeddings and hasattr(model, "encoder"):
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    return model, tokenizer


class TaggingTrainer(Trainer):
    """The Trainer with its own learning rate for the two new heads (the encoder keeps `learning_rate`)."""

    def __init__(self, *args, head_learning_rate: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(model))
            groups = []
            for head in (False, True):
                for decays in (True, False):
                    params = [p for n, p in model.named_parameters()
                              if p.requires_grad and is_head_parameter(n) == head and (n in decay) == decays]
                    if params:
                        groups.append({"params": params, "weight_decay": self.args.weight_decay if decays else 0.0,
                                       **({"lr": self.head_learning_rate} if head else {})})
            optimizer_class, options = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_class(groups, **options)
        return self.optimizer

    def _get_eval_sampler(self, eval_dataset):
        # The Trainer groups evaluation batches by length too, which returns predictions shuffled; callers
        # pair them with the split's rows, so keep the dataset's order (padding costs little at evaluation).
        if self.args.world_size > 1:
            return super()._get_eval_sampler(eval_dataset)
        return SequentialSampler(eval_dataset)


@dataclass
class FitResult:
    trainer: Trainer
    scores: dict[str, Scores]  # validation and test, topics at the tuned thresholds
    thresholds: list[float]  # per topic, tuned on validation
    training: dict  # seconds, epochs run, best validation score, processes, training sentences
    probabilities: dict[str, HeadProbabilities]  # validation and test
    topics: tuple[str, ...]

    @property
    def metrics(self) -> dict:
        """metrics.json's content."""
        return {**{split: scores.to_dict() for split, scores in self.scores.items()},
                "topic_thresholds": dict(zip(self.topics, self.thresholds)), "training": self.training}


def fit(config: Config, raw: DatasetDict, scheme: LabelScheme, work_dir: Path, resume_from: Path | None = None,
        callbacks: list[TrainerCallback] = ()) -> FitResult:
    """Train on raw["train"], select and tune thresholds on raw["validation"], score raw["test"]."""
    set_seed(config.train.seed)
    model, tokenizer = new_tagger(config, scheme, raw["train"])
    data = tokenize(raw, tokenizer, config.model.use_context, config.model.max_length)

    os.environ["TENSORBOARD_LOGGING_DIR"] = str(work_dir / "logs")
    trainer = TaggingTrainer(
        model=model, args=training_arguments(config, work_dir / "checkpoints"),
        head_learning_rate=config.train.head_learning_rate,
        data_collator=TaggingCollator(tokenizer), train_dataset=data["train"], eval_dataset=data["validation"],
        processing_class=tokenizer, compute_metrics=lambda p: compute_metrics(p, scheme),
        callbacks=[EarlyStoppingCallback(config.train.early_stopping_patience), *callbacks],
    )
    started = time.perf_counter()
    recipe = config.train.recipe
    if recipe in ("probe", "probe+fine-tune"):
        fit_probe(model, data["train"], tokenizer.pad_token_id, topic_c=config.train.probe_topic_c,
                  speaker_c=config.train.probe_speaker_c)
    if recipe in ("fine-tune", "probe+fine-tune"):
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    lexical = None
    if config.model.lexical_weight > 0:
        train_split = raw["train"]
        lexical = LexicalModel.from_baseline(train_baseline(
            train_split["text"], HeadLabels.of_split(train_split), len(scheme.speakers)), len(scheme.speakers))
    train_seconds = time.perf_counter() - started

    def split_probabilities(split: str) -> tuple[HeadProbabilities, HeadLabels]:
        """(probabilities averaged with the lexical model's, gold labels) of a split."""
        predicted, gold = to_probabilities(trainer.predict(data[split]))
        if lexical is not None:
            predicted = predicted.blend(lexical.predict_probabilities(raw[split]["text"]), config.model.lexical_weight)
        return predicted, gold

    validation = split_probabilities("validation")
    thresholds = tune_thresholds(validation[0].topics, validation[1].topics, floor=config.train.threshold_floor)
    trainer.model.config.topic_thresholds = thresholds
    trainer.model.lexical = lexical
    splits = {"validation": validation, "test": split_probabilities("test")}
    scores = {split: score_predictions(predicted, gold, scheme.topics, scheme.speakers, thresholds)
              for split, (predicted, gold) in splits.items()}
    training = {"seconds": round(train_seconds, 1), "epochs_run": trainer.state.epoch,
                "best_validation_combined": trainer.state.best_metric, "processes": trainer.args.world_size,
                "train_sentences": len(raw["train"])}
    return FitResult(trainer, scores, thresholds, training,
                     {split: predicted for split, (predicted, _) in splits.items()}, tuple(scheme.topics))


def resume_point(staging: Path) -> Path | None:
    """The checkpoint to resume from, said in the log: the last complete one, or none (start over)."""
    checkpoint = last_complete_checkpoint(staging / "checkpoints") if PartialState().is_main_process else None
    checkpoint = broadcast_object_list([checkpoint])[0]
    if checkpoint:
        logger.warning("resuming %s from %s", staging, checkpoint.name)
    else:
        logger.warning("%s holds no complete checkpoint to resume from; starting the run over", staging)
    return checkpoint


def train(config: Config, callbacks: list[TrainerCallback] = ()) -> TrainResult:
    """Fine-tune on the built dataset and publish a self-contained run directory."""
    config, choice = choose_encoder(config)
    build = build_dataset(config.data)
    scheme = load_scheme(config.data.labels)
    run_dir, staging = run_directories(config)
    resume_from = resume_point(staging) if config.train.resume else None
    if PartialState().is_main_process:
        staging.mkdir(parents=True, exist_ok=True)
    result = fit(config, build.dataset, scheme, staging, resume_from=resume_from, callbacks=callbacks)
    trainer = result.trainer
    if trainer.is_world_process_zero():
        trainer.save_model(str(staging))
        if trainer.model.lexical is not None:
            trainer.model.lexical.save(staging)
        (staging / "model.safetensors").chmod(0o644)  # safetensors writes it private; the run is meant to be read
        save_config(config, staging / "train_config.yaml")
        write_json(staging / "dataset.json", {"fingerprint": build.fingerprint, "label_table": build.table,
                                               "sizes": {split: len(build.dataset[split]) for split in SPLITS}})
        write_json(staging / "metrics.json", result.metrics)
        write_json(staging / ENCODER_FILE, choice.to_dict())
        write_model_card(staging, config, result.metrics, scheme, build.table, build.fingerprint, choice.to_dict())
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        publish(staging, run_dir)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(run_dir, result.scores, result.metrics, choice)
