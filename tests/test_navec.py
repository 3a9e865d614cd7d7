"""The offline navec tagger: training end to end, self-contained checkpoints, tokenization, context."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers import ROOT, data_overrides
from train.config import ConfigError, load_config
from train.data.scheme import load_scheme
from train.errors import UsageError
from train.modeling.checkpoint import REQUIRED_FILES, load_checkpoint
from train.modeling.heads import HeadConfig
from train.modeling.hub import ModelLoadError
from train.modeling.inference import predict_probabilities
from train.modeling.navec import DEFAULT_NAVEC, EXTRA_TOKENS, VOCAB_FILE, init_navec_model, navec_path
from train.modeling.tagger import Tagger
from train.training.fit import train

SAMPLE = ["Путин заявил, что НАТО наращивает военный потенциал у рубежей России.",
          "Байден пригрозил «экономическими и другими мерами».", "Подписаться",
          "Президенты обсудили кибербезопасность в 2021 году."]
CONTEXTS = ["", *SAMPLE[:-1]]


@pytest.fixture(scope="module")
def navec_run(built_project, tmp_path_factory):
    config = load_config(ROOT / "configs/offline.yaml", [
        *data_overrides(built_project), f"train.output_dir={tmp_path_factory.mktemp('runs')}",
        "train.run_name=navec", "train.epochs=2", "train.logging_steps=50", "model.hidden_size=32"])
    return train(config)


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(ROOT / "configs/labels.yaml")


def test_offline_config_trains_a_self_contained_navec_run(navec_run):
    run = navec_run.run_dir
    for name in (*REQUIRED_FILES, "README.md", VOCAB_FILE):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == "navec-tagger" and config["encoder_name_or_path"] == DEFAULT_NAVEC
    offline = load_config(ROOT / "configs/offline.yaml").model
    assert len(config["topic_thresholds"]) == 10 and config["use_context"] is offline.use_context
    assert json.loads((run / "metrics.json").read_text())["test"]["n_sentences"] > 0
    assert "navec" in (run / "README.md").read_text()


def test_save_load_gives_identical_predictions(navec_run):
    model, tokenizer = load_checkpoint(navec_run.run_dir)
    again, _ = load_checkpoint(navec_run.run_dir)
    first = predict_probabilities(model, tokenizer, SAMPLE, CONTEXTS)
    second = predict_probabilities(again, tokenizer, SAMPLE, CONTEXTS)
    np.testing.assert_array_equal(first.topics, second.topics)
    np.testing.assert_array_equal(first.speaker, second.speaker)
    assert model.config.topic_thresholds == json.loads((navec_run.run_dir / "config.json").read_text())[
        "topic_thresholds"]
    # Packed sequences: a sentence scores the same whatever it is batched and padded with.
    one_by_one = predict_probabilities(model, tokenizer, SAMPLE, CONTEXTS, batch_size=1)
    np.testing.assert_allclose(first.topics, one_by_one.topics, atol=1e-6)
    np.testing.assert_allclose(first.speaker, one_by_one.speaker, atol=1e-6)


def test_int8_is_refused_for_navec_with_a_reason(navec_run):
    with pytest.raises(UsageError, match="navec"):
        Tagger.from_pretrained(navec_run.run_dir, int8=True)


def test_checkpoint_predicts_without_natasha_or_navec(navec_run):
    # Block both packages in a fresh interpreter: the checkpoint must carry everything itself.
    script = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("natasha", "navec"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from train.modeling.tagger import Tagger
        # sources=False: the source extractor is natasha's by design; the checkpoint itself must not need it
        tagged = Tagger.from_pretrained({str(navec_run.run_dir)!r}, sources=False).predict("Путин заявил. Байден ответил.")
        assert "natasha" not in sys.modules and "navec" not in sys.modules
        print(tagged[0][1]["speaker"])
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() in json.loads((navec_run.run_dir / "config.json").read_text())["speakers"]


def test_tokens_are_lowercased_and_unknowns_numbers_and_punctuation_have_ids(scheme):
    model, tokenizer = init_navec_model(DEFAULT_NAVEC, HeadConfig(scheme, DEFAULT_NAVEC), hidden_size=16)
    ids = tokenizer(["Путин ПУТИН путин", "Зюзюблик-3000 2021 «»", ""])["input_ids"]
    assert ids[0] == [tokenizer.word_ids["путин"]] * 3
    unknown, number, opening, closing = ids[1]
    assert unknown == tokenizer.unk_token_id and number == tokenizer.word_ids["<num>"]
    assert {opening, closing} == {tokenizer.word_ids["«"], tokenizer.word_ids["»"]}
    assert number >= model.config.navec_vocab_size and len(tokenizer) == model.config.navec_vocab_size + len(
        EXTRA_TOKENS)
    assert ids[2] == [tokenizer.pad_token_id]
    model.eval()
    upper_then_lower = predict_probabilities(model, tokenizer, ["ПУТИН ЗАЯВИЛ О САНКЦИЯХ", "путин заявил о санкциях"])
    np.testing.assert_array_equal(upper_then_lower.topics[0], upper_then_lower.topics[1])
    np.testing.assert_array_equal(upper_then_lower.speaker[0], upper_then_lower.speaker[1])


def test_truncation_keeps_the_first_tokens(scheme):
    _, tokenizer = init_navec_model(DEFAULT_NAVEC, HeadConfig(scheme, DEFAULT_NAVEC), hidden_size=16)
    encoded = tokenizer(["раз два три четыре"], ["пять шесть семь"], max_length=2)
    assert encoded["input_ids"] == [[tokenizer.word_ids["раз"], tokenizer.word_ids["два"]]]
    assert encoded["context_input_ids"] == [[tokenizer.word_ids["пять"], tokenizer.word_ids["шесть"]]]


@pytest.mark.parametrize("use_context", [True, False])
def test_context_is_read_only_when_configured(scheme, use_context):
    model, tokenizer = init_navec_model(DEFAULT_NAVEC, HeadConfig(scheme, DEFAULT_NAVEC, use_context=use_context), hidden_size=16)
    model.eval()
    texts = [SAMPLE[0]] * 2
    speakers = predict_probabilities(model, tokenizer, texts, ["Байден заявил.", "Песков ответил."]).speaker
    assert np.array_equal(speakers[0], speakers[1]) is not use_context
    # attention- and max-pooled vectors (2 x 2 x hidden_size) per text; twice that with the context
    assert model.topic_head.in_features == 16 * 4 * (2 if use_context else 1)


def test_missing_navec_embeddings_are_a_clear_error(monkeypatch):
    with pytest.raises(ModelLoadError, match=f"no such navec file.*{DEFAULT_NAVEC}"):
        navec_path("navec_news_v2_missing")
    monkeypatch.setitem(sys.modules, "natasha", None)
    with pytest.raises(ModelLoadError, match="pip install natasha"):
        navec_path(DEFAULT_NAVEC)


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="model.encoder: 'xlnet' is not one of transformer, embedded-e5, navec"):
        load_config(ROOT / "configs/offline.yaml", ["model.encoder=xlnet"])


def test_a_sentence_scores_the_same_whatever_it_is_batched_with(scheme):
    model, tokenizer = init_navec_model(DEFAULT_NAVEC, HeadConfig(scheme, DEFAULT_NAVEC, use_context=True), hidden_size=16)
    model.eval()
    alone = predict_probabilities(model, tokenizer, [SAMPLE[0]], ["Байден заявил."])
    padded = predict_probabilities(model, tokenizer, [SAMPLE[0], " ".join(SAMPLE * 3)],
                                   ["Байден заявил.", " ".join(SAMPLE)], batch_size=2)
    np.testing.assert_allclose(alone.topics[0], padded.topics[0], atol=1e-6)
    np.testing.assert_allclose(alone.speaker[0], padded.speaker[0], atol=1e-6)
