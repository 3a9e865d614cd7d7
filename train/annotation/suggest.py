"""`make suggest`: tag unlabelled articles and pick the sentences whose labels would teach the model most.

Writes three files for the same sentences, best first: Label Studio tasks with
the model's labels as pre-annotations, the labelling interface, and the same
sentences pre-filled in the annotation format for labelling in a text editor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.annotation.label_studio import SPEAKER, TOPICS, choice_result, labeling_config, source_results
from train.annotation.sampling import Candidate, DiversityRules, normalized_text, select, uncertainty
from train.atomic import write_file_atomically
from train.data.annotations import parse_lines
from train.data.segment import article_contexts
from train.errors import UsageError
from train.modeling.outputs import HeadProbabilities
from train.modeling.tagger import Tagger
from train.prediction.readers import Article, Problems, check_inputs, read_articles
from train.prediction.run import chunk_articles

OUTPUT_FILES = ("tasks.json", "labeling_config.xml", "suggestions.jsonl")
CHUNK_SENTENCES = 2048


@dataclass
class SuggestResult:
    articles: int
    sentences: int
    chosen: list[dict]
    problems: Problems
    files: list[Path]


def labelled_texts(annotations_dir: Path) -> set[str]:
    """Normalized texts of every labelled sentence, so that the same sentence is not suggested again."""
    texts = set()
    for path in sorted(annotations_dir.glob("*.jsonl")):
        for _, record, json_error in parse_lines(path):
            # A broken line is `make data`'s to report; here it only cannot exclude a sentence.
            if not json_error and isinstance(record, dict) and isinstance(record.get("text"), str):
                texts.add(normalized_text(record["text"]))
    return texts


def _tagged_sentences(tagger: Tagger, articles: Iterator[Article]) -> Iterator[dict]:
    """Every sentence of every article with its article's metadata, its context and the model's output."""
    for chunk in chunk_articles(articles, CHUNK_SENTENCES):
        tagged_chunk = tagger.tag_sentences([s for _, s in chunk], dates=[a.metadata.get("date") for a, _ in chunk])
        for (article, sentences), tagged in zip(chunk, tagged_chunk):
            for sentence, context in zip(tagged, article_contexts(sentences)):
                yield {"article": article.id, "outlet": article.metadata.get("outlet"),
                       "date": article.metadata.get("date"), "context": context, **sentence}


def _confidences(sentence: dict, tagger: Tagger) -> tuple[float, float]:
    """(topic confidence, speaker confidence): the weakest topic decision's probability, the speaker's."""
    probs = np.array([sentence["topic_scores"][t] for t in tagger.topics])
    decided = np.where(probs >= tagger.thresholds, probs, 1.0 - probs)
    return float(decided.min()), float(sentence["speaker_scores"][sentence["speaker"]])


def label_studio_task(sentence: dict, model_version: str, score: float, topic_confidence: float,
                      speaker_confidence: float) -> dict:
    """A task whose data is the sentence and whose prediction is the model's labels (pre-annotation).

    The prediction score is the model's certainty, so Label Studio's "prediction score" order shows the
    sentences to label first at the top.
    """
    data = {key: sentence[key] for key in ("text", "context", "article", "index")}
    data["outlet"] = sentence.get("outlet") or ""
    if sentence.get("date"):
        data["date"] = sentence["date"]
    result = [choice_result(SPEAKER, [sentence["speaker"]], speaker_confidence)]
    if sentence["topics"]:
        result.insert(0, choice_result(TOPICS, sentence["topics"], topic_confidence))
    if "quote" in sentence:  # the tagger's sources, for the annotator to correct
        result.extend(source_results(sentence["sources"], sentence["quote"]))
    return {"data": data, "predictions": [{"model_version": model_version, "score": round(1.0 - score, 4),
                                           "result": result}]}


def annotation_line(sentence: dict) -> dict:
    record = {key: sentence[key] for key in ("article", "index", "text", "context", "topics", "speaker")}
    record.update({key: sentence[key] for key in ("outlet", "date") if sentence.get(key)})
    record.update({key: sentence[key] for key in ("sources", "quote") if key in sentence})
    return record


def random_sample(n_sentences: int, n: int, seed: int) -> list[int]:
    """`n` sentence positions drawn uniformly without replacement, in reading order.

    No diversity rules: a calibration sample for `make coverage LABELLED=` must give every
    sentence the same chance, boilerplate and repeats included, or its error rates are biased.
    """
    return sorted(np.random.default_rng(seed).permutation(n_sentences)[:n].tolist())


# uncertainty: what teaches the model most; random: an unbiased sample of the coverage, to measure its error rates.
STRATEGIES = ("uncertainty", "random")


def suggest(tagger: Tagger, inputs: list[str], n: int, out_dir: Path, labels_path: Path, annotations_dir: Path,
            model_version: str, per_article: int = 3, overwrite: bool = False,
            report: Callable[[str], None] = print, strategy: str = "uncertainty", seed: int = 0) -> SuggestResult:
    if n < 1:
        raise UsageError(f"N={n}: ask for at least one sentence")
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy}: choose one of {', '.join(STRATEGIES)}")
    check_inputs(inputs)
    existing = [out_dir / name for name in OUTPUT_FILES if (out_dir / name).exists()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]} already exists; choose another OUT=<dir>, or pass --force to replace it")
    problems = Problems(report)
    article_ids: set[str] = set()
    sentences, candidates = [], []
    for sentence in _tagged_sentences(tagger, read_articles(inputs, problems)):
        article_ids.add(sentence["article"])
        sentences.append(sentence)
    if sentences:
        probabilities = HeadProbabilities(
            np.array([[s["topic_scores"][t] for t in tagger.topics] for s in sentences]),
            np.array([[s["speaker_scores"][p] for p in tagger.speakers] for s in sentences]))
        scores = uncertainty(probabilities, tagger.thresholds)
        candidates = [Candidate(s["article"], i, s["text"], float(score))
                      for i, (s, score) in enumerate(zip(sentences, scores))]
    if strategy == "random":
        chosen = [{**sentences[i], "uncertainty": candidates[i].score} for i in random_sample(len(sentences), n, seed)]
    else:
        rules = DiversityRules(per_article=per_article, labelled=labelled_texts(annotations_dir))
        chosen = [{**sentences[c.index], "uncertainty": c.score} for c in select(candidates, n, rules)]

    tasks = [label_studio_task(s, model_version, s["uncertainty"], *_confidences(s, tagger)) for s in chosen]
    contents = {
        "tasks.json": json.dumps(tasks, ensure_ascii=False, indent=1) + "\n",
        "labeling_config.xml": labeling_config(labels_path),
        "suggestions.jsonl": "".join(json.dumps(annotation_line(s), ensure_ascii=False) + "\n" for s in chosen),
    }
    files = []
    for name, text in contents.items():
        write_file_atomically(out_dir / name, lambda path, text=text: path.write_text(text, encoding="utf-8"))
        files.append(out_dir / name)
    return SuggestResult(len(article_ids), len(sentences), chosen, problems, files)
