"""Shared fixtures; the functions behind them live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import build_tiny_encoder, data_overrides, make_project, make_untrained_checkpoint
from train.config import DEFAULT_CONFIG, load_config
from train.data.build import build_dataset


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
