"""`make cv`: cross-validation on the whole labelled set, mean ± sd of every metric, in two schemes.

- articles: k folds grouped by article. With a few dozen sentences one test split swings by whole points on
  a single sentence; the spread over folds and seeds is the honest number.
- events: leave-event-out. Each event family (`event_family` in seeds/articles.yaml: the spring 2021 calls
  and summit, the autumn talks and visits, the December drafts, ...) is held out once, so the model is scored
  on an event it has never seen, as it is on new coverage. The family of the seed pages (real coverage of
  the 7 December 2021 call) is also reported on its own: it is the closest proxy to real use.

Each held-out group is the test set once; the next group is its validation set (early stopping and topic
thresholds); the rest is training data. Results are attached to a trained run (default: models/latest):
`cv.json`, the `cv` key of `metrics.json`, and the model card.
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
from train.evaluation.metrics import HEADLINE_METRICS
from train.modeling.checkpoint import ENCODER_FILE, write_json
from train.training.card import write_model_card
from train.training.encoder_choice import choose_encoder
from train.training.fit import fit

logger = logging.getLogger(__name__)

SEED_FAMILY = "call_7_december_2021"  # the seed pages: real coverage of the event the project is measured on


def mean_sd(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def held_out_splits(everything, column: str, groups: list, index: int) -> DatasetDict:
    """Group `index` as test, the next group as validation, the rest as training data."""
    test, validation = groups[index], groups[(index + 1) % len(groups)]
    return DatasetDict({
        "train": everything.filter(lambda row: row[column] not in (test, validation)),
        "validation": everything.filter(lambda row: row[column] == validation),
        "test": everything.filter(lambda row: row[column] == test),
    })


def fold_plan(everything, config: Config) -> list[tuple[str, str, DatasetDict]]:
    """(scheme, held-out group, splits) for every fold of every scheme in cv.schemes."""
    plan = []
    if "articles" in config.cv.schemes:
        folds = list(range(config.cv.n_folds))
        plan += [("articles", f"fold {fold + 1}", held_out_splits(everything, "fold", folds, fold)) for fold in folds]
    if "events" in config.cv.schemes:
        families = sorted(set(everything["event_family"]))
        if "" in families or len(families) < 3:
            raise ConfigError(f"{config.data.seeds}: leave-event-out needs an event_family on every article and at "
                              f"least 3 families (found {len([f for f in families if f])}); add event_family entries "
                              "or set cv.schemes=[articles]")
        plan += [("events", family, held_out_splits(everything, "event_family", families, i))
                 for i, family in enumerate(families)]
    return plan


def cross_validate(config: Config, scheme: LabelScheme | None = None) -> dict:
    """Every (scheme, setting, seed, fold) run's test metrics, their mean ± sd, the held-out seed family on its
    own, and the paired context effect."""
    config, _ = choose_encoder(config)
    build = build_dataset(config.data)
    scheme = scheme or load_scheme(config.data.labels)
    everything = concatenate_datasets([build.dataset[split] for split in SPLITS])
    if config.cv.n_folds != config.data.n_folds:
        raise ConfigError(f"cv.n_folds={config.cv.n_folds} but the dataset was built with data.n_folds="
                          f"{config.data.n_folds}; set both to the same value")
    settings = {"context" if config.model.use_context else "no_context": config.model.use_context}
    if config.cv.compare_context:
        settings = {"context": True, "no_context": False}
    plan = fold_plan(everything, config)
    runs = []
    total = len(settings) * len(config.cv.seeds) * len(plan)
    with tempfile.TemporaryDirectory(prefix="cv-") as work:
        for setting, use_context in settings.items():
            for seed in config.cv.seeds:
                for fold_scheme, held_out, splits in plan:
                    run_number = len(runs) + 1
                    logger.info("cv run %d/%d: %s, %s, seed %d, held out %s: training", run_number, total,
                                fold_scheme, setting, seed, held_out)
                    started = time.perf_counter()
                    run_config = dataclasses.replace(
                        config, model=dataclasses.replace(config.model, use_context=use_context),
                        train=dataclasses.replace(config.train, seed=seed, resume=False))
                    work_dir = Path(work) / f"{setting}-{seed}-{fold_scheme}-{len(runs)}"
                    result = fit(run_config, splits, scheme, work_dir)
                    runs.append({"scheme": fold_scheme, "setting": setting, "seed": seed, "held_out": held_out,
                                 **result.scores["test"].headline()})
                    logger.info("cv run %d/%d done in %.0f s: test combined %.3f", run_number, total,
                                time.perf_counter() - started, runs[-1]["combined"])
    groups = list(dict.fromkeys((r["scheme"], r["setting"]) for r in runs))
    summary = {f"{fold_scheme} · {setting}": {
        name: mean_sd([r[name] for r in runs if (r["scheme"], r["setting"]) == (fold_scheme, setting)])
        for name in HEADLINE_METRICS} for fold_scheme, setting in groups}
    seed_family = sorted({r["held_out"] for r in runs if r["scheme"] == "events" and r["held_out"] == SEED_FAMILY})
    for setting in settings if seed_family else ():
        summary[f"seed pages ({SEED_FAMILY}) · {setting}"] = {
            name: mean_sd([r[name] for r in runs if r["held_out"] == SEED_FAMILY and r["setting"] == setting])
            for name in HEADLINE_METRICS}
    cv = {"n_folds": config.cv.n_folds, "schemes": list(config.cv.schemes), "seeds": list(config.cv.seeds),
          "n_sentences": len(everything), "dataset_fingerprint": build.fingerprint, "summary": summary, "runs": runs}
    if len(settings) == 2:
        by_key = {(r["scheme"], r["setting"], r["seed"], r["held_out"]): r for r in runs}
        pairs = [(by_key[(s, "context", seed, h)], by_key[(s, "no_context", seed, h)])
                 for seed in config.cv.seeds for s, h, _ in plan]
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
    encoder = run_dir / ENCODER_FILE
    write_model_card(run_dir, config, metrics, scheme, dataset["label_table"], dataset.get("fingerprint", ""),
                     json.loads(encoder.read_text(encoding="utf-8")) if encoder.is_file() else None)


def format_summary(cv: dict) -> str:
    lines = [f"{', '.join(cv.get('schemes', ['articles']))} x {len(cv['seeds'])} seeds, {cv['n_sentences']} "
             "sentences (mean ± sd)"]
    for setting, summary in cv["summary"].items():
        lines.append(f"  {setting:<40}" + "  ".join(f"{name} {m['mean']:.3f}±{m['sd']:.3f}"
                                                    for name, m in summary.items()))
    if "context_effect" in cv:
        effect = cv["context_effect"]["speaker_macro_f1"]
        lines.append(f"  context effect on speaker macro-F1: {effect['mean']:+.3f} ± {effect['sd']:.3f}")
    return "\n".join(lines)
