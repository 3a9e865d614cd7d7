"""The lexical model stored as arrays, and the probe's logistic regressions written into the heads."""

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from sklearn.linear_model import LogisticRegression

from tests.helpers import ROOT
from train.data.scheme import load_scheme
from train.modeling.baseline import train_baseline
from train.modeling.heads import HeadConfig
from train.modeling.inference import predict_probabilities
from train.modeling.lexical import LexicalModel
from train.modeling.outputs import HeadLabels, HeadProbabilities
from train.modeling.transformer import init_transformer, load_tokenizer
from train.training.fit import tokenize
from train.training.probe import fit_probe, pooled_vectors

SCHEME = load_scheme(ROOT / "configs/labels.yaml")


@pytest.fixture(scope="module")
def splits(built_project):
    return load_from_disk(str(built_project / "data/build/dataset"))


def test_the_stored_lexical_model_gives_the_baselines_probabilities(splits, tmp_path):
    train = splits["train"]
    baseline = train_baseline(train["text"], HeadLabels.of_split(train), len(SCHEME.speakers))
    texts = list(splits["test"]["text"]) + ["Совсем новое предложение без знакомых слов: ъъъ."]
    expected = baseline.predict_probabilities(texts)
    LexicalModel.from_baseline(baseline, len(SCHEME.speakers)).save(tmp_path)
    stored = LexicalModel.load(tmp_path).predict_probabilities(texts)
    np.testing.assert_allclose(stored.topics, expected.topics, atol=2e-4)
    np.testing.assert_allclose(stored.speaker, expected.speaker, atol=2e-4)
    assert LexicalModel.load(tmp_path / "nowhere") is None


def test_blend_is_the_weighted_average():
    neural = HeadProbabilities(np.ones((2, 3)), np.zeros((2, 4)))
    blended = neural.blend(HeadProbabilities(np.zeros((2, 3)), np.ones((2, 4))), 0.25)
    np.testing.assert_allclose(blended.topics, 0.75)
    np.testing.assert_allclose(blended.speaker, 0.25)


def test_the_probe_writes_logistic_regressions_into_the_heads(splits, tiny_encoder):
    model = init_transformer(str(tiny_encoder), HeadConfig(SCHEME, str(tiny_encoder), use_context=False),
                             pooling="mean")
    tokenizer = load_tokenizer(str(tiny_encoder))
    data = tokenize(splits, tokenizer, use_context=False, max_length=128)
    fit_probe(model, data["train"], tokenizer.pad_token_id, topic_c=2.0, speaker_c=4.0)
    x = pooled_vectors(model, data["test"], tokenizer.pad_token_id)
    train_x = pooled_vectors(model, data["train"], tokenizer.pad_token_id)
    speakers = np.array(data["train"]["speaker_labels"])
    reference = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced").fit(train_x, speakers)
    speaker = predict_probabilities(model.eval(), tokenizer, list(splits["test"]["text"])).speaker
    expected = np.zeros_like(speaker)
    expected[:, reference.classes_] = reference.predict_proba(x)
    np.testing.assert_allclose(speaker, expected, atol=1e-4)
    absent = sorted(set(range(len(SCHEME.speakers))) - set(reference.classes_))
    assert all(speaker[:, absent].max(axis=0) < 1e-6) if absent else True
    with torch.no_grad():
        assert model.topic_head.weight.abs().sum() > 0


def test_a_checkpoint_with_a_lexical_model_blends_wherever_it_predicts(untrained_checkpoint, splits, tmp_path):
    import shutil

    from train.modeling.checkpoint import Checkpoint

    run = tmp_path / "run"
    shutil.copytree(untrained_checkpoint, run)
    train = splits["train"]
    lexical = LexicalModel.from_baseline(train_baseline(train["text"], HeadLabels.of_split(train), len(SCHEME.speakers)),
                                         len(SCHEME.speakers))
    texts = list(splits["test"]["text"])
    model, tokenizer = Checkpoint.open(run).load()
    neural = predict_probabilities(model, tokenizer, texts)
    lexical.save(run)
    config = (run / "config.json").read_text(encoding="utf-8").replace('"lexical_weight": 0.0', '"lexical_weight": 0.5')
    (run / "config.json").write_text(config, encoding="utf-8")
    model, tokenizer = Checkpoint.open(run).load()
    assert model.lexical is not None and model.config.lexical_weight == 0.5
    blended = predict_probabilities(model, tokenizer, texts)
    expected = neural.blend(lexical.predict_probabilities(texts), 0.5)
    np.testing.assert_allclose(blended.topics, expected.topics, atol=1e-5)
    np.testing.assert_allclose(blended.speaker, expected.speaker, atol=1e-5)
