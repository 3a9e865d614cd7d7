import re

import pytest
import yaml

from tests.helpers import ROOT
from train.config import Config, ConfigError, load_config, save_config


def test_shipped_configs_load_and_differ_in_the_encoder():
    cpu, gpu = load_config(ROOT / "configs/cpu.yaml"), load_config(ROOT / "configs/gpu.yaml")
    assert cpu.model.name_or_path == "cointegrated/rubert-tiny2"
    assert gpu.model.name_or_path == "DeepPavlov/rubert-base-cased"


def test_overrides_are_typed():
    config = load_config(ROOT / "configs/cpu.yaml", ["train.epochs=3", "train.learning_rate=1e-3",
                                                     "model.use_context=false", "cv.seeds=[1, 2]"])
    assert config.train.epochs == 3 and config.train.learning_rate == 0.001
    assert config.model.use_context is False and config.cv.seeds == [1, 2]


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", "unknown key(s) epoch"),
    ("trainer.epochs=3", "unknown key(s) trainer"),
    ("train.epochs=three", "train.epochs: expected int"),
    ("train.epochs=true", "train.epochs: expected int"),
    ("model.use_context=maybe", "model.use_context: expected bool"),
    ("cv.seeds=[1, x]", "cv.seeds[1]: expected int"),
    ("train.epochs", "expected key=value"),
])
def test_bad_overrides_are_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(ROOT / "configs/cpu.yaml", [override])


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  name: x\n")
    with pytest.raises(ConfigError, match=f"{path}: model: unknown key"):
        load_config(path)


def test_resolved_config_round_trips(tmp_path):
    config = load_config(ROOT / "configs/cpu.yaml", ["train.epochs=7"])
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config
    assert load_config(None) == Config()


def test_run_configs_hold_only_their_differences():
    defaults = Config()
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name == "labels.yaml":
            continue
        loaded = load_config(path)
        for section, values in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            for key in values:
                assert getattr(getattr(loaded, section), key) != getattr(getattr(defaults, section), key), \
                    f"{path.name}: {section}.{key} repeats the dataclass default"


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "train.batch_size=0: must be at least 1"),
    ("train.learning_rate=-1", "train.learning_rate=-1.0: must be above 0"),
    ("data.validation_fraction=0.9", "data.validation_fraction=0.9: must be between 0 and 0.5"),
    ("data.test_fraction=0.4", "data.validation_fraction + data.test_fraction = 0.55: must be at most 0.5"),
    ("model.max_length=4", "model.max_length=4: must be at least 16"),
    ("train.epochs=0", "train.epochs=0: must be at least 1"),
    ("train.mixed_precision=fp8", "train.mixed_precision='fp8': must be one of bf16, fp16, no"),
    ("cv.seeds=[]", "cv.seeds=[]: must be a list of at least one seed"),
])
def test_values_out_of_range_are_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(ROOT / "configs/cpu.yaml", [override])
