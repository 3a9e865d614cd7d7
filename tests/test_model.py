"""The transformer tagger: any AutoModel encoder, both poolings, and runs written before the encoder registry."""

import json
import shutil

import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from tests.helpers import ROOT
from train.data.scheme import load_scheme
from train.modeling.checkpoint import Checkpoint
from train.modeling.heads import HeadConfig
from train.modeling.hub import ModelLoadError
from train.modeling.tagger import Tagger
from train.modeling.transformer import init_transformer, load_tokenizer

SCHEME = load_scheme(ROOT / "configs/labels.yaml")
FORMAT1 = ROOT / "tests/fixtures/checkpoint_format1"


def heads(path, use_context=True) -> HeadConfig:
    return HeadConfig(SCHEME, str(path), use_context=use_context)


def test_mean_pooling_ignores_padding(tiny_encoder):
    model = init_transformer(str(tiny_encoder), heads(tiny_encoder), pooling="mean").eval()
    tokenizer = load_tokenizer(str(tiny_encoder))
    texts = ["Путин заявил, что НАТО наращивает военный потенциал у рубежей России.", "Подписаться"]
    with torch.inference_mode():
        together = model(**tokenizer(texts, padding=True, return_tensors="pt")).topic_logits
        alone = model(**tokenizer(texts[1:], return_tensors="pt")).topic_logits
    torch.testing.assert_close(together[1:], alone, rtol=1e-5, atol=1e-5)


def test_normalised_pooling_gives_unit_vectors(tiny_encoder):
    model = init_transformer(str(tiny_encoder), heads(tiny_encoder), pooling="mean", normalize=True).eval()
    batch = load_tokenizer(str(tiny_encoder))(["Байден пригрозил санкциями.", "Подписаться"], padding=True,
                                              return_tensors="pt")
    with torch.inference_mode():
        norms = model.pooled(**batch).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(2))


def test_cls_pooling_reads_the_first_position(tiny_encoder):
    model = init_transformer(str(tiny_encoder), heads(tiny_encoder), pooling="cls").eval()
    batch = load_tokenizer(str(tiny_encoder))(["Байден пригрозил санкциями."], return_tensors="pt")
    with torch.inference_mode():
        expected = model.topic_head(model.encoder(**batch).last_hidden_state[:, 0])
        torch.testing.assert_close(model(**batch).topic_logits, expected)


def test_an_xlm_roberta_encoder_loads_through_automodel(tiny_encoder, tmp_path):
    config = XLMRobertaConfig(vocab_size=900, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=200)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    model = init_transformer(str(tmp_path), heads(tmp_path), pooling="mean")
    assert type(model.encoder).__name__ == "XLMRobertaModel"
    reference = XLMRobertaModel.from_pretrained(tmp_path, add_pooling_layer=False)
    torch.testing.assert_close(model.encoder.embeddings.word_embeddings.weight,
                               reference.embeddings.word_embeddings.weight)
    output = model(input_ids=torch.tensor([[0, 5, 6, 2]]))
    assert output.topic_logits.shape == (1, len(SCHEME.topics))


def test_save_and_load_round_trip(tiny_encoder, tmp_path):
    model = init_transformer(str(tiny_encoder), heads(tiny_encoder), pooling="mean").eval()
    model.save_pretrained(tmp_path)
    again = type(model).from_pretrained(tmp_path).eval()
    batch = load_tokenizer(str(tiny_encoder))(["Президенты обсудили кибербезопасность."], return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(again(**batch).speaker_logits, model(**batch).speaker_logits)
    assert again.config.pooling == "mean" and again.config.topics == list(SCHEME.topics)


def test_an_encoder_without_a_model_class_is_refused(tmp_path):
    from transformers import PretrainedConfig
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-encoder"}), encoding="utf-8")
    with pytest.raises((ModelLoadError, ValueError, KeyError)):
        init_transformer(str(tmp_path), heads(tmp_path))
    assert PretrainedConfig  # imported for the error type transformers raises on an unknown model type


def test_a_format1_run_is_migrated_on_read_and_predicts_as_before():
    checkpoint = Checkpoint.open(FORMAT1)
    assert checkpoint.format == 1
    assert checkpoint.train_config.model.encoder == "transformer" and checkpoint.train_config.model.pooling == "cls"
    recorded = json.loads((ROOT / "tests/fixtures/checkpoint_format1_predictions.json").read_text(encoding="utf-8"))
    # recorded before sentences carried sources; the labels and scores must not have moved
    assert Tagger.from_pretrained(FORMAT1, sources=False).predict(recorded["texts"]) == recorded["predictions"]


def test_a_format1_run_still_evaluates_and_reports(untrained_checkpoint, built_project, tmp_path):
    from train.evaluation.report import build_report
    from train.evaluation.scoring import evaluate_checkpoint
    from train.evaluation.sections import checkpoint_settings

    run = tmp_path / "models" / "old-run"
    shutil.copytree(FORMAT1, run)
    data = built_project / "data/annotations" / "000_6121d04cb6a2ecdd.jsonl"
    result = evaluate_checkpoint(Checkpoint.open(run), data)
    assert result["n_sentences"] == sum(1 for line in data.read_text(encoding="utf-8").splitlines() if line.strip())
    report = build_report([untrained_checkpoint, run], name="formats", out_dir=tmp_path / "reports",
                          data_path=data, n_resamples=20)
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "old-run" in page and "encoder choice" in page and "not recorded before format 2" in page
    assert "not recorded before format 2" in checkpoint_settings(Checkpoint.open(run))["encoder choice"]
