"""Does margin sampling beat random sampling here? A simulation of the labelling loop on labelled data.

The project's own labelled sentences play every part: a held-out quarter is the
test set, a small random seed set starts the loop, the rest is the unlabelled
pool, and the gold labels are the annotator. Each round the model (the TF-IDF
baseline, so that hundreds of rounds take a minute on a laptop) is refit on the
labels so far and picks the next batch. Both strategies obey the same diversity
rules as `make suggest`, so the curves differ only in how sentences are ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupShuffleSplit
from threadpoolctl import threadpool_limits

from train.annotation.sampling import Candidate, DiversityRules, normalized_text, select, uncertainty
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.evaluation.metrics import score_predictions
from train.modeling.baseline import THRESHOLD, train_baseline
from train.modeling.outputs import HeadLabels
from train.training.cv import mean_sd

STRATEGIES = ("random", "margin")
METRICS = ("combined", "topic_macro_f1", "speaker_macro_f1")


@dataclass
class SimulationSettings:
    budgets: tuple[int, ...] = (25, 50, 100, 200)
    seed_size: int = 10
    batch_size: int = 5
    test_fraction: float = 0.25
    per_article: int = 3
    seeds: tuple[int, ...] = tuple(range(10))


def _scores(model, texts, gold: HeadLabels, scheme: LabelScheme) -> dict[str, float]:
    scores = score_predictions(model.predict_probabilities(texts), gold, scheme.topics, scheme.speakers,
                               [THRESHOLD] * len(scheme.topics)).headline()
    return {metric: scores[metric] for metric in METRICS}


def simulate_run(examples: list[dict], scheme: LabelScheme, strategy: str, seed: int,
                 settings: SimulationSettings) -> dict[int, dict[str, float]]:
    """Test scores at each budget that the pool can reach, for one strategy and one random seed."""
    texts = [ex["text"] for ex in examples]
    gold = HeadLabels.of_records(examples, scheme)
    # The same boilerplate on two pages must not sit on both sides of the split.
    groups = [normalized_text(t) for t in texts]
    split = GroupShuffleSplit(n_splits=1, test_size=settings.test_fraction, random_state=seed)
    pool_rows, test_rows = next(split.split(texts, groups=groups))
    test_texts = [texts[i] for i in test_rows]
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(pool_rows, size=min(settings.seed_size, len(pool_rows)), replace=False))
    pool = [i for i in pool_rows if i not in set(labelled)]
    results: dict[int, dict[str, float]] = {}
    while True:
        model = train_baseline([texts[i] for i in labelled], gold.rows(labelled), len(scheme.speakers))
        if len(labelled) in settings.budgets:
            results[len(labelled)] = _scores(model, test_texts, gold.rows(test_rows), scheme)
        if len(labelled) >= max(settings.budgets) or not pool:
            return results
        if strategy == "margin":
            ranking = uncertainty(model.predict_probabilities([texts[i] for i in pool]),
                                  np.full(len(scheme.topics), THRESHOLD))
        else:
            ranking = rng.random(len(pool))
        candidates = [Candidate(examples[i]["article"], i, texts[i], float(score)) for i, score in zip(pool, ranking)]
        rules = DiversityRules(per_article=settings.per_article, labelled={groups[i] for i in labelled})
        chosen = select(candidates, settings.batch_size, rules)
        if len(chosen) < settings.batch_size:  # few articles left: the cap spreads a batch, it must not starve it
            rules = DiversityRules(per_article=settings.batch_size,
                                   labelled=rules.labelled | {normalized_text(c.text) for c in chosen})
            taken = {c.index for c in chosen}
            chosen += select([c for c in candidates if c.index not in taken], settings.batch_size - len(chosen), rules)
        batch = [c.index for c in chosen]
        if not batch:  # only near-duplicates of labelled sentences are left
            return results
        labelled += batch
        pool = [i for i in pool if i not in set(batch)]


def learning_curves(examples: list[dict], scheme: LabelScheme, settings: SimulationSettings) -> dict:
    """Every strategy's scores per budget over the seeds: the runs and their mean, sd and median."""
    unreachable = [b for b in settings.budgets
                   if b < settings.seed_size or (b - settings.seed_size) % settings.batch_size]
    if unreachable:
        raise UserError(f"budgets {unreachable} cannot be reached from a seed set of {settings.seed_size} in batches "
                        f"of {settings.batch_size}; use seed set + a multiple of the batch size")
    if len(examples) < settings.seed_size * 2:
        raise UserError(f"{len(examples)} labelled sentences are too few to simulate; label at least "
                        f"{settings.seed_size * 2}")
    # The fits are tiny: BLAS threads only contend with each other (one thread here is 10-20x faster).
    with threadpool_limits(1):
        runs = {strategy: [simulate_run(examples, scheme, strategy, seed, settings) for seed in settings.seeds]
                for strategy in STRATEGIES}
    curves = {}
    for strategy, per_seed in runs.items():
        curves[strategy] = {}
        for budget in settings.budgets:
            reached = [run[budget] for run in per_seed if budget in run]
            if reached:
                curves[strategy][budget] = {metric: {**mean_sd([r[metric] for r in reached]),
                                                     "median": float(np.median([r[metric] for r in reached])),
                                                     "n": len(reached)} for metric in METRICS}
    return {"n_sentences": len(examples), "settings": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in vars(settings).items()},
            "curves": curves, "runs": runs}


def format_curves(result: dict, metric: str = "combined") -> str:
    """A Markdown table: one row per budget, mean ± sd (median) per strategy, and margin's gain over random."""
    settings = result["settings"]
    lines = [f"{result['n_sentences']} labelled sentences; test {settings['test_fraction']:.0%}, seed set "
             f"{settings['seed_size']}, batches of {settings['batch_size']}, {len(settings['seeds'])} seeds; "
             f"{metric}, mean ± sd (median)", "",
             "| labels | random | margin | margin − random |", "|---|---|---|---|"]
    for budget in settings["budgets"]:
        cells = []
        for strategy in STRATEGIES:
            stats = result["curves"][strategy].get(budget, {}).get(metric)
            cell = f"{stats['mean']:.3f} ± {stats['sd']:.3f} ({stats['median']:.3f})" if stats else "pool too small"
            if stats and stats["n"] < len(settings["seeds"]):
                cell += f" [{stats['n']} seeds reached it]"
            cells.append(cell)
        gain = "—"
        if all(budget in result["curves"][s] for s in STRATEGIES):
            means = [result["curves"][s][budget][metric]["mean"] for s in STRATEGIES]
            gain = f"{means[1] - means[0]:+.3f}"
        lines.append(f"| {budget} | {cells[0]} | {cells[1]} | {gain} |")
    return "\n".join(lines)
