"""`make recipes`: fine-tuning recipes compared by leave-event-out cross-validation, the measure that predicts
how a model does on coverage of an event it has never seen.

Every recipe is a list of `key=value` overrides on configs/cpu.yaml. Each event family is held out once (the
next family validates: early stopping and topic thresholds), as in `make cv`; beside each fine-tuned recipe
the same folds score the TF-IDF baseline and the average of the two models' probabilities (thresholds
re-tuned on the validation family), which is what `model.lexical_weight=0.5` does inside a run, so that
combining them is judged by the same measure.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from datasets import concatenate_datasets

from train.config import DEFAULT_CONFIG, load_config
from train.data.build import SPLITS, build_dataset
from train.data.scheme import load_scheme
from train.evaluation.metrics import score_predictions, tune_thresholds
from train.modeling.baseline import train_baseline
from train.modeling.outputs import HeadLabels, HeadProbabilities
from train.training.cv import SEED_FAMILY, fold_plan, mean_sd
from train.training.fit import fit

logger = logging.getLogger(__name__)

# Each recipe without the lexical model; the benchmark scores it alone and averaged with TF-IDF.
E5 = ["model.encoder=embedded-e5", "model.lexical_weight=0"]
PROBE = [*E5, "train.recipe=probe"]
RECIPES: dict[str, list[str]] = {
    "navec CNN (configs/offline.yaml)": ["--config", "configs/offline.yaml"],
    "e5 probe: mean pooling, L2-normalised, logistic regressions C=4": PROBE,
    "e5 probe, C=16": [*PROBE, "train.probe_topic_c=16", "train.probe_speaker_c=16"],
    "e5 probe, [CLS] pooling": [*PROBE, "model.pooling=cls"],
    "e5 probe, mean pooling not normalised": [*PROBE, "model.normalize=false"],
    "e5 probe, previous sentence as second segment": [*PROBE, "model.use_context=true"],
    "e5 probe then fine-tune (LP-FT): encoder 5e-5, heads 2e-3, 1 epoch, frozen token embeddings (the default)":
        E5,
}
METRICS = ("topic_micro_f1", "topic_macro_f1", "speaker_macro_f1", "speaker_accuracy")


@dataclass
class RecipeResult:
    name: str
    overrides: list[str]
    per_family: dict[str, dict[str, float]]  # family -> headline metrics
    seconds: float

    def summary(self) -> dict[str, dict[str, float]]:
        return {m: mean_sd([scores[m] for scores in self.per_family.values()]) for m in METRICS}


def _score(probabilities: HeadProbabilities, split, scheme, thresholds) -> dict[str, float]:
    return score_predictions(probabilities, HeadLabels.of_split(split), scheme.topics, scheme.speakers,
                             thresholds).headline()


def _tfidf(splits, n_speakers: int) -> dict[str, HeadProbabilities]:
    baseline = train_baseline(splits["train"]["text"], HeadLabels.of_split(splits["train"]), n_speakers)
    return {name: baseline.predict_probabilities(splits[name]["text"]) for name in ("validation", "test")}


def _average(a: dict[str, HeadProbabilities], b: dict[str, HeadProbabilities]) -> dict[str, HeadProbabilities]:
    return {name: a[name].mean(b[name]) for name in a}


def run_recipes(names: list[str] | None = None, seed: int = 42) -> list[RecipeResult]:
    """Each recipe's leave-event-out scores, alone and averaged with TF-IDF, and TF-IDF's own (once)."""
    results: dict[str, RecipeResult] = {}
    baselines: dict[str, dict[str, HeadProbabilities]] = {}  # per held-out family: the same for every recipe
    for name in names or list(RECIPES):
        overrides = RECIPES[name]
        config_path = overrides[1] if overrides[:1] == ["--config"] else DEFAULT_CONFIG
        config = load_config(config_path, [o for o in overrides if "=" in o] + [f"train.seed={seed}",
                                                                                   "cv.schemes=[events]"])
        scheme = load_scheme(config.data.labels)
        build = build_dataset(config.data)
        everything = concatenate_datasets([build.dataset[split] for split in SPLITS])
        started = time.perf_counter()
        fine_tuned, tfidf, blend = {}, {}, {}
        with tempfile.TemporaryDirectory(prefix="recipes-") as work:
            for _, family, splits in fold_plan(everything, config):
                logger.info("%s: holding out %s", name, family)
                result = fit(config, splits, scheme, Path(work) / family)
                fine_tuned[family] = result.scores["test"].headline()
                if family not in baselines:
                    baselines[family] = _tfidf(splits, len(scheme.speakers))
                baseline = baselines[family]
                tfidf[family] = _score(baseline["test"], splits["test"], scheme, [0.5] * len(scheme.topics))
                combined = _average(result.probabilities, baseline)
                thresholds = tune_thresholds(combined["validation"].topics,
                                             HeadLabels.of_split(splits["validation"]).topics,
                                             floor=config.train.threshold_floor)
                blend[family] = _score(combined["test"], splits["test"], scheme, thresholds)
        seconds = time.perf_counter() - started
        results[name] = RecipeResult(name, overrides, fine_tuned, seconds)
        if "tfidf" not in results:
            results["tfidf"] = RecipeResult("TF-IDF + logistic regression (the baseline)", [], tfidf, 0.0)
        results[f"{name} + TF-IDF"] = RecipeResult(f"{name}, averaged with TF-IDF (model.lexical_weight=0.5)",
                                                    overrides, blend, seconds)
        logger.info("%s: %s", name, format_recipes([results[name], results[f"{name} + TF-IDF"]]))
    return list(results.values())


def format_recipes(results: list[RecipeResult]) -> str:
    lines = [f"leave-event-out ({len(results[0].per_family)} event families; mean ± sd over them), "
             f"and the held-out seed pages ({SEED_FAMILY}) alone", ""]
    header = f"{'recipe':<92} " + " ".join(f"{m:>17}" for m in METRICS) + "   seed pages topic/speaker"
    lines.append(header)
    for r in results:
        summary = r.summary()
        seed = r.per_family.get(SEED_FAMILY, {})
        lines.append(f"{r.name[:92]:<92} " + " ".join(f"{summary[m]['mean']:.3f} ± {summary[m]['sd']:.3f}"
                                                       for m in METRICS)
                     + f"   {seed.get('topic_micro_f1', float('nan')):.3f} / {seed.get('speaker_macro_f1', float('nan')):.3f}")
    return "\n".join(lines)


def as_json(results: list[RecipeResult]) -> list[dict]:
    return [{**dataclasses.asdict(r), "summary": r.summary()} for r in results]
