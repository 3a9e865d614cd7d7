"""`make bench`: speed and memory on the real rubert-tiny2 architecture (random weights).

Training: our setup (dynamic padding, length-grouped batches) against the HF
example's default (every sentence padded to max_length=128, random batches),
same model, sentences, batch size and step count, each in its own process so
peak memory is its own. Prediction: see train/bench/prediction.py.
Timings are printed and belong in the README, never in tests.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from train.bench.prediction import benchmark_tokenizer, random_tagger
from train.bench.spread import describe, spread, verdict
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import SPLITS, build_dataset
from train.data.scheme import load_scheme
from train.modeling.inference import encode
from train.training.fit import TaggingCollator

DEFAULT_ARCH = "../shared/models/rubert-tiny2-arch"
WARMUP_STEPS = 5
TARGET_SPEEDUP = 2.0
MODES = {"ours": "dynamic padding + length grouping", "baseline": "pad to max_length=128, random batches"}


class SteadyStateClock(TrainerCallback):
    """Times the steps after the first few, which carry one-off set-up (allocator, optimizer state)."""

    def __init__(self, warmup_steps: int):
        self.warmup_steps = warmup_steps
        self.started = self.seconds = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.started = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.started


def benchmark_sentences(n: int) -> tuple[list[str], list[str], list[list[float]], list[int]]:
    """The labelled seed sentences with their contexts, repeated to n: realistic news sentence lengths."""
    config = load_config(DEFAULT_CONFIG)
    dataset = build_dataset(config.data).dataset
    rows = [row for split in SPLITS for row in dataset[split]]
    rows = [rows[i % len(rows)] for i in range(n)]
    return ([r["text"] for r in rows], [r["context"] for r in rows], [r["topic_labels"] for r in rows],
            [r["speaker_label"] for r in rows])


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_throughput(mode: str, arch: str, steps: int, batch_size: int) -> dict:
    set_seed(0)
    scheme = load_scheme("configs/labels.yaml")
    tokenizer = benchmark_tokenizer(arch)
    model = random_tagger(arch, scheme, use_context=True)
    texts, contexts, topic_labels, speaker_labels = benchmark_sentences(steps * batch_size)
    padding = {"padding": "max_length"} if mode == "baseline" else {}
    encoded = encode(tokenizer, texts, contexts, 128, **padding)
    columns = {**encoded, "topic_labels": topic_labels, "speaker_labels": speaker_labels,
               "length": [len(ids) for ids in encoded["input_ids"]]}
    dataset = Dataset.from_dict(dict(columns))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, max_steps=steps, per_device_train_batch_size=batch_size, report_to=[],
            save_strategy="no", logging_strategy="no", disable_tqdm=True, remove_unused_columns=False,
            label_names=["topic_labels", "speaker_labels"], length_column_name="length",
            train_sampling_strategy="group_by_length" if mode == "ours" else "random",
            dataloader_pin_memory=torch.cuda.is_available(), use_cpu=not torch.cuda.is_available())
        # The baseline's rows are already padded to 128, so the same collator leaves them as they are.
        clock = SteadyStateClock(WARMUP_STEPS)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=TaggingCollator(tokenizer),
                          callbacks=[clock])
        trainer.train()
        seconds = clock.seconds
    return {"mode": mode, "samples_per_s": (steps - WARMUP_STEPS) * batch_size / seconds, "seconds": seconds,
            "peak_memory_mb": peak_memory_mb(),
            "mean_tokens_per_sentence": sum(columns["length"]) / len(columns["length"])}


def run_training_benchmark(arch: str = DEFAULT_ARCH, steps: int = 60, batch_size: int = 16, runs: int = 3) -> dict:
    """`runs` rounds of both modes in turns (so background load hits them alike); medians and ranges."""
    rounds: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(runs):
        for mode in MODES:
            output = subprocess.run([sys.executable, "-m", "train.cli.bench", "--single", mode, "--arch", arch,
                                     "--steps", str(steps), "--batch-size", str(batch_size)],
                                    capture_output=True, text=True, check=True)
            rounds[mode].append(json.loads(output.stdout.strip().splitlines()[-1]))
    results = {mode: {"samples_per_s": spread([r["samples_per_s"] for r in rounds[mode]]),
                      "peak_memory_mb": spread([r["peak_memory_mb"] for r in rounds[mode]])} for mode in MODES}
    results["speedup"] = spread([ours["samples_per_s"] / baseline["samples_per_s"]
                                 for ours, baseline in zip(rounds["ours"], rounds["baseline"])])
    results["batch_size"], results["steps"], results["arch"] = batch_size, steps, Path(arch).name
    return results


def format_training(results: dict) -> str:
    lines = [f"training throughput, {results['arch']}, {results['steps']} steps of batch {results['batch_size']}, "
             f"sentence + context, median (range) of {len(results['speedup']['runs'])} runs",
             f"  {'setup':<44} {'samples/s':>26} {'peak MB':>9}"]
    for mode, description in MODES.items():
        r = results[mode]
        lines.append(f"  {description:<44} {describe(r['samples_per_s']):>26} {r['peak_memory_mb']['median']:>9.0f}")
    lines.append(f"  speed-up: {describe(results['speedup'], 'x', 2)}; {verdict(results['speedup'], TARGET_SPEEDUP)}")
    return "\n".join(lines)


MAKE_TRAIN_LIMIT_S = 15 * 60  # what a laptop user should wait for `make train` on 2 CPU cores


def run_make_train_benchmark(runs: int = 3, config: str = "configs/cpu.yaml") -> dict:
    """Wall time and peak memory of the whole `make train` job (`python -m train.cli.train`), each run in its
    own process and output folder, with the Hub switched off as on a fresh offline machine."""
    seconds, peaks, sizes = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "train.cli.train", "--config", config, f"train.output_dir={out}"],
                           check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            seconds.append(time.perf_counter() - start)
            peaks.append(max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024)
            run = Path(out) / "latest"
            sizes.append(sum(p.stat().st_size for p in run.resolve().rglob("*") if p.is_file()) / 1e6)
    return {"config": config, "threads": torch.get_num_threads(), "seconds": spread(seconds),
            "peak_memory_mb": spread(peaks), "run_directory_mb": spread(sizes)}


def format_make_train(results: dict) -> str:
    within = results["seconds"]["median"] <= MAKE_TRAIN_LIMIT_S
    return (f"make train ({results['config']}, HF_HUB_OFFLINE=1, {results['threads']} threads): "
            f"{describe(results['seconds'], ' s', 0)}; {MAKE_TRAIN_LIMIT_S // 60}-minute limit: "
            f"{'met' if within else 'MISSED'}; peak memory {describe(results['peak_memory_mb'], ' MB', 0)}; "
            f"run directory {describe(results['run_directory_mb'], ' MB', 1)}")
