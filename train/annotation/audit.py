"""`make audit`: likely label errors, found by cleanlab from out-of-fold probabilities.

Every labelled sentence gets probabilities from a model that never saw its
article (folds grouped by article, so a sentence's neighbours cannot vouch for
it). cleanlab's `find_label_issues` then flags the labels those probabilities
contradict: multi-label for topics, multi-class for the speaker. The TF-IDF
baseline is the model: it fits in a fraction of a second, so the audit runs on
a laptop after every batch of labels.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from cleanlab.filter import find_label_issues
from cleanlab.multilabel_classification.rank import get_label_quality_scores as multilabel_quality
from cleanlab.rank import get_label_quality_scores as multiclass_quality
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from train.annotation.label_studio import SPEAKER, TOPICS, choice_result
from train.atomic import write_file_atomically
from train.data.scheme import LabelScheme
from train.errors import UserError
from train.modeling.baseline import THRESHOLD, train_baseline
from train.modeling.outputs import HeadLabels, HeadProbabilities

MAX_FOLDS = 5


@dataclass
class Suspect:
    where: str  # path:line of the annotation
    article: str
    index: int
    text: str
    context: str
    outlet: str
    field: str  # "topics" or "speaker"
    label: list[str] | str
    suggested: list[str] | str
    quality: float  # cleanlab's label quality score: lower is more likely wrong


def out_of_fold_probabilities(texts: list[str], gold: HeadLabels, groups: list[str], n_speakers: int,
                              n_folds: int = MAX_FOLDS) -> HeadProbabilities:
    """Both heads' probabilities for every sentence from a baseline trained on the other articles."""
    n_groups = len(set(groups))
    if n_groups < 2:
        raise UserError(f"the audit needs labelled sentences from at least two articles; found {n_groups}")
    probabilities = HeadProbabilities.zeros(len(texts), gold.topics.shape[1], n_speakers)
    # The fits are small: BLAS threads only contend with each other (one thread here is 10-20x faster).
    with threadpool_limits(1):
        for train, held_out in GroupKFold(n_splits=min(n_folds, n_groups)).split(texts, groups=groups):
            model = train_baseline([texts[i] for i in train], gold.rows(train), n_speakers)
            probabilities.put(held_out, model.predict_probabilities([texts[i] for i in held_out]))
    return probabilities


def find_suspects(examples: list[dict], probabilities: HeadProbabilities, scheme: LabelScheme) -> list[Suspect]:
    """The labels cleanlab flags, most likely wrong first."""
    topic_labels = [[scheme.topics.index(t) for t in ex["topics"]] for ex in examples]
    speaker_labels = np.array([scheme.speakers.index(ex["speaker"]) for ex in examples])
    suspects = []
    with warnings.catch_warnings():
        # Classes without examples in a small set make cleanlab warn; the flagged issues are still right.
        warnings.simplefilter("ignore")
        topic_issues = find_label_issues(topic_labels, probabilities.topics, multi_label=True)
        topic_quality = multilabel_quality(topic_labels, probabilities.topics)
        speaker_issues = find_label_issues(speaker_labels, probabilities.speaker)
        speaker_quality = multiclass_quality(speaker_labels, probabilities.speaker)
    for i in np.flatnonzero(topic_issues):
        suggested = [t for t, p in zip(scheme.topics, probabilities.topics[i]) if p >= THRESHOLD]
        suspects.append(_suspect(examples[i], TOPICS, examples[i]["topics"], suggested, topic_quality[i]))
    for i in np.flatnonzero(speaker_issues):
        suggested = scheme.speakers[int(probabilities.speaker[i].argmax())]
        suspects.append(_suspect(examples[i], SPEAKER, examples[i]["speaker"], suggested, speaker_quality[i]))
    return sorted(suspects, key=lambda s: (s.quality, s.where))


def _suspect(example: dict, field: str, label, suggested, quality: float) -> Suspect:
    return Suspect(example["where"], example["article"], example["index"], example["text"], example["context"],
                   example["outlet"], field, label, suggested, round(float(quality), 4))


def audit_markdown(suspects: list[Suspect], n_sentences: int) -> str:
    lines = [f"# Label audit: {len(suspects)} suspect labels among {n_sentences} sentences", "",
             "Most likely wrong first. Fix the line in its file, or re-review `tasks.json` in Label Studio.", "",
             "| where | field | label | suggested | quality | sentence |", "|---|---|---|---|---|---|"]
    for s in suspects:
        text = s.text.replace("|", "\\|")
        lines.append(f"| `{s.where}` | {s.field} | {show(s.label)} | {show(s.suggested)} | {s.quality:.3f} "
                     f"| {text} |")
    return "\n".join(lines) + "\n"


def show(value) -> str:
    return ", ".join(value) or "(none)" if isinstance(value, list) else value


def review_tasks(suspects: list[Suspect], examples_by_where: dict[str, dict]) -> list[dict]:
    """One Label Studio task per suspect sentence, pre-filled with its current gold labels to correct."""
    tasks = {}
    for s in suspects:
        if s.where not in tasks:
            example = examples_by_where[s.where]
            tasks[s.where] = {
                "data": {"text": s.text, "context": s.context, "article": s.article, "index": s.index,
                         "outlet": s.outlet, "where": s.where, "audit": ""},
                "predictions": [{"model_version": "current gold label", "result": [
                    *([choice_result(TOPICS, example["topics"])] if example["topics"] else []),
                    choice_result(SPEAKER, [example["speaker"]])]}],
            }
        note = f"{s.field}: {show(s.label)} -> {show(s.suggested)}?"
        tasks[s.where]["data"]["audit"] = "; ".join(filter(None, [tasks[s.where]["data"]["audit"], note]))
    return list(tasks.values())


def run_audit(examples: list[dict], scheme: LabelScheme, out_dir: Path) -> list[Suspect]:
    """Audit labelled examples (dicts with where, article, index, text, context, outlet, topics, speaker)."""
    texts = [ex["text"] for ex in examples]
    probabilities = out_of_fold_probabilities(texts, HeadLabels.of_records(examples, scheme),
                                              [ex["article"] for ex in examples], len(scheme.speakers))
    suspects = find_suspects(examples, probabilities, scheme)
    by_where = {ex["where"]: ex for ex in examples}
    outputs = {
        "audit.md": audit_markdown(suspects, len(examples)),
        "audit.jsonl": "".join(json.dumps(asdict(s), ensure_ascii=False) + "\n" for s in suspects),
        "tasks.json": json.dumps(review_tasks(suspects, by_where), ensure_ascii=False, indent=1) + "\n",
    }
    for name, text in outputs.items():
        write_file_atomically(out_dir / name, lambda path, text=text: path.write_text(text, encoding="utf-8"))
    return suspects
