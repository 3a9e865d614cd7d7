"""`make cv`: k folds x several seeds on the whole labelled set, mean ± sd of every metric.

With a few dozen sentences one test split swings by whole points on a single
sentence; the spread over folds and seeds is the honest number. Each fold is the
test set once; the next fold is its validation set (early stopping and topic
thresholds); the rest is training data. Results are attached to a trained run
(default: models/latest): `cv.json`, the `cv` key of `metrics.json`, and the
model card.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from datasets import DatasetDict, concatenate_datasets

from train.config import Config, ConfigError
from train.data.build import SPLITS, build_dataset
from train.data.scheme import LabelScheme, load_scheme
from train.evaluation.metrics import HEADLINE_METRICS, headline
from train.modeling.card import write_model_card
from train.modeling.checkpoint import write_json
from train.training.fit import fit

logger = logging.getLogger(__name__)


def mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def fold_splits(everything, fold: int, n_folds: int) -> DatasetDict:
    validation_fold = (fold + 1) % n_folds
    return DatasetDict({
        "train": everything.filter(lambda row: row["fold"] not in (fold, validation_fold)),
        "validation": everything.filter(lambda row: row["fold"] == validation_fold),
        "test": everything.filter(lambda row: row["fold"] == fold),
    })


def cross_validate(config: Config, scheme: LabelScheme | None = None) -> dict:
    """Every (setting, seed, fold) run's test metrics, their mean ± sd, and the paired context effect."""
    build = build_dataset(config.data)
    scheme = scheme or load_scheme(config.data.labels)
    everything = concatenate_datasets([build.dataset[split] for split in SPLITS])
    n_folds = config.cv.n_folds
    if n_folds != config.data.n_folds:
        raise ConfigError(f"cv.n_folds={n_folds} but the dataset was built with data.n_folds={config.data.n_folds}; "
                          "set both to the same value")
    settings = {"context" if config.model.use_context else "no_context": config.model.use_context}
    if config.cv.compare_context:
        settings = {"context": True, "no_context": False}
    runs = []
    total = len(settings) * len(config.cv.seeds) * n_folds
    splits = [fold_splits(everything, fold, n_folds) for fold in range(n_folds)]
    with tempfile.TemporaryDirectory(prefix="cv-") as work:
        for setting, use_context in settings.items():
            for seed in config.cv.seeds:
                for fold in range(n_folds):
                    run_number = len(runs) + 1
                    logger.info("cv run %d/%d: %s, seed %d, fold %d/%d: training", run_number, total, setting, seed,
                                fold + 1, n_folds)
                    started = time.perf_counter()
                    run_config = dataclasses.replace(
                        config, model=dataclasses.replace(config.model, use_context=use_context),
                        train=dataclasses.replace(config.train, seed=seed, resume=False))
                    work_dir = Path(work) / f"{setting}-{seed}-{fold}"
                    result = fit(run_config, splits[fold], scheme, work_dir)
                    runs.append({"setting": setting, "seed": seed, "fold": fold, **headline(result.metrics["test"])})
                    logger.info("cv run %d/%d done in %.0f s: test combined %.3f", run_number, total,
                                time.perf_counter() - started, runs[-1]["combined"])
    summary = {setting: {name: mean_sd([r[name] for r in runs if r["setting"] == setting])
                         for name in HEADLINE_METRICS} for setting in settings}
    cv = {"n_folds": n_folds, "seeds": list(config.cv.seeds), "n_sentences": len(everything),
          "dataset_fingerprint": build.fingerprint, "summary": summary, "runs": runs}
    if len(settings) == 2:
        by_key = {(r["setting"], r["seed"], r["fold"]): r for r in runs}
        pairs = [(by_key[("context", seed, fold)], by_key[("no_context", seed, fold)])
                 for seed in config.cv.seeds for fold in range(n_folds)]
        cv["context_effect"] = {"n_pairs": len(pairs), **{
            name: mean_sd([with_context[name] - without[name] for with_context, without in pairs])
            for name in HEADLINE_METRICS}}
    return cv


def attach_to_run(run_dir: Path, cv: dict, config: Config, scheme: LabelScheme) -> None:
    write_json(run_dir / "cv.json", cv)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    metrics["cv"] = {k: v for k, v in cv.items() if k != "runs"}
    write_json(run_dir / "metrics.json", metrics)
    dataset = json.loads((run_dir / "dataset.json").read_text(encoding="utf-8"))
    write_model_card(run_dir, config, metrics, scheme, dataset["label_table"], dataset.get("fingerprint", ""))


def format_summary(cv: dict) -> str:
    lines = [f"{cv['n_folds']} folds x {len(cv['seeds'])} seeds, {cv['n_sentences']} sentences (mean ± sd)"]
    for setting, summary in cv["summary"].items():
        lines.append(f"  {setting:<11}" + "  ".join(f"{name} {m['mean']:.3f}±{m['sd']:.3f}"
                                                    for name, m in summary.items()))
    if "context_effect" in cv:
        effect = cv["context_effect"]["speaker_macro_f1"]
        lines.append(f"  context effect on speaker macro-F1: {effect['mean']:+.3f} ± {effect['sd']:.3f}")
    return "\n".join(lines)
