"""`make bench ARGS=--ray`: articles/s of the Ray engine with 1 and 2 actors against the single-process path.

All three tag the same synthetic articles (sentences of the seed pages, a few per article) as a JSONL
input, read, segmented and written as `make predict` does, with a checkpoint of the real rubert-tiny2
architecture and random weights (speed does not depend on the weights). Start-up is measured apart:
loading the Tagger for the single-process path; for Ray, starting the local cluster once, then per job
a one-article job (actors started, each loading its Tagger), which is taken off the job's time.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from train.bench.prediction import DEFAULT_ARCH, ROOT, benchmark_sentences, benchmark_tokenizer, random_tagger
from train.bench.spread import describe, spread
from train.config import DEFAULT_CONFIG, load_config, save_config
from train.data.scheme import load_scheme
from train.modeling.checkpoint import CHECKPOINT_FORMAT, write_json
from train.modeling.tagger import Tagger
from train.prediction.ray_engine import RayOptions, predict_on_ray
from train.prediction.run import predict_files

SENTENCES_PER_ARTICLE = 4


def random_checkpoint(arch: str | Path, directory: Path) -> Path:
    """A loadable checkpoint directory of `arch` with random weights: the actors load it by path."""
    torch.manual_seed(0)
    model = random_tagger(arch, load_scheme(ROOT / "configs/labels.yaml"), use_context=True)
    model.config.checkpoint_format = CHECKPOINT_FORMAT
    model.save_pretrained(directory)
    benchmark_tokenizer(arch).save_pretrained(directory)
    save_config(load_config(ROOT / DEFAULT_CONFIG, [f"model.name_or_path={arch}", "model.pooling=cls"]),
                directory / "train_config.yaml")
    write_json(directory / "metrics.json", {})
    return directory


def write_articles(path: Path, count: int) -> Path:
    sentences = benchmark_sentences(count * SENTENCES_PER_ARTICLE)
    with path.open("w", encoding="utf-8") as file:
        for i in range(count):
            text = " ".join(sentences[i * SENTENCES_PER_ARTICLE:(i + 1) * SENTENCES_PER_ARTICLE])
            file.write(json.dumps({"id": f"bench-{i}", "outlet": f"outlet-{i % 40}", "text": text},
                                  ensure_ascii=False) + "\n")
    return path


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_ray_benchmark(articles: int = 5000, repeats: int = 3, arch: str | Path = DEFAULT_ARCH) -> dict:
    import ray

    from train.prediction.ray_engine import start_ray

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as folder:
        work = Path(folder)
        checkpoint = random_checkpoint(arch, work / "checkpoint")
        inputs, one = [str(write_articles(work / "articles.jsonl", articles))], [str(write_articles(work / "one.jsonl", 1))]
        jobs = iter(range(10**6))

        def out() -> Path:
            return work / f"out-{next(jobs)}"

        cluster_start = _timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                                                logging_level="ERROR"))
        start_ray(RayOptions())  # the engine's own settings (no progress bars) on the cluster just started
        rates: dict[str, list[float]] = {"single process": [], "1 actor": [], "2 actors": []}
        start_up: dict[str, list[float]] = {name: [] for name in rates}
        try:
            for _ in range(repeats):  # in turns, so background load hits every setup alike
                load = _timed(lambda: Tagger.from_pretrained(checkpoint, device="cpu"))
                tagger = Tagger.from_pretrained(checkpoint, device="cpu")
                start_up["single process"].append(load)
                rates["single process"].append(articles / _timed(
                    lambda: predict_files(tagger, inputs, out() / "p.jsonl", report=lambda line: None)))
                for name, actors in (("1 actor", 1), ("2 actors", 2)):
                    options = RayOptions(min_actors=actors, max_actors=actors, cpus_per_actor=1)
                    job_start = _timed(lambda: predict_on_ray(checkpoint, one, out(), "parquet", options))
                    job = _timed(lambda: predict_on_ray(checkpoint, inputs, out(), "parquet", options))
                    start_up[name].append(job_start)
                    rates[name].append(articles / max(job - job_start, 1e-9))
        finally:
            ray.shutdown()
    return {"articles": articles, "sentences_per_article": SENTENCES_PER_ARTICLE, "repeats": repeats,
            "arch": Path(arch).name, "cluster_start_s": cluster_start,
            "articles_per_s": {name: spread(values) for name, values in rates.items()},
            "start_up_s": {name: spread(values) for name, values in start_up.items()}}


def format_ray_benchmark(result: dict) -> str:
    lines = [f"Ray engine on {result['articles']:,} articles of {result['sentences_per_article']} sentences, median "
             f"(range) of {result['repeats']} rounds ({result['arch']}, random weights); local cluster started in "
             f"{result['cluster_start_s']:.1f} s",
             f"  {'':<15} {'articles/s':>24} {'start-up, s':>24}"]
    for name, rate in result["articles_per_s"].items():
        lines.append(f"  {name:<15} {describe(rate, digits=0):>24} {describe(result['start_up_s'][name]):>24}")
    return "\n".join(lines)
