"""Test helpers: a throwaway copy of the project inputs, a tiny BERT built from the seed text, checkpoints.

No pretrained weights can be downloaded in CI, so the tests train a WordPiece
tokenizer on the seed articles and save a randomly initialised 2-layer BERT in
`from_pretrained` layout: the code under test loads it exactly as it would load
`cointegrated/rubert-tiny2`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, BertTokenizerFast

from train.config import DEFAULT_CONFIG, load_config

ROOT = Path(__file__).resolve().parents[1]


def build_tiny_encoder(directory: Path) -> Path:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=800, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.train_from_iterator(texts, trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer.decoder = decoders.WordPiece()
    directory.mkdir(parents=True, exist_ok=True)
    BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]").save_pretrained(directory)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    import torch

    torch.manual_seed(0)  # the same encoder in every session: tests that fit it must not depend on the draw
    BertModel(config).save_pretrained(directory)
    return directory


# Tests run on the two seeds and a few authored articles: enough articles to hold out validation and
# test by article, small enough that training a tiny BERT takes seconds.
TEST_ARTICLES = 10


def make_project(directory: Path, n_articles: int = TEST_ARTICLES) -> Path:
    """A copy of the project's inputs, shrunk to `n_articles`, so a test can break them or build into them freely."""
    import yaml

    shutil.copytree(ROOT / "configs", directory / "configs")
    (directory / "data/annotations").mkdir(parents=True)
    entries = yaml.safe_load((ROOT / "seeds/articles.yaml").read_text(encoding="utf-8"))[:n_articles]
    for entry in entries:
        source = directory / "seeds" / entry["source"]
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "seeds" / entry["source"], source)
        shutil.copy(ROOT / "data/annotations" / f"{entry['id']}.jsonl", directory / "data/annotations")
    (directory / "seeds/articles.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False),
                                                   encoding="utf-8")
    return directory


def data_overrides(project: Path) -> list[str]:
    """Overrides that point every data path of a config at a project copy."""
    return [f"data.{key}={project / value}" for key, value in
            (("labels", "configs/labels.yaml"), ("seeds", "seeds/articles.yaml"),
             ("annotations_dir", "data/annotations"), ("build_dir", "data/build"))]


def make_untrained_checkpoint(directory: Path, encoder: Path, use_context: bool = True, seed: int = 0,
                              project: Path | None = None) -> Path:
    """A complete checkpoint directory with random (untrained) heads, for tests of loading and reporting.

    With `project` (a built project copy), the run records that project's data config and fingerprint,
    as a trained run would, so it is scored on that project's test split.
    """
    import torch

    from train.config import save_config
    from train.data.build import build_dataset
    from train.data.scheme import load_scheme
    from train.modeling.checkpoint import CHECKPOINT_FORMAT, write_json
    from train.modeling.heads import HeadConfig
    from train.modeling.transformer import init_transformer, load_tokenizer

    torch.manual_seed(seed)
    scheme = load_scheme(ROOT / "configs/labels.yaml")
    model = init_transformer(str(encoder), HeadConfig(scheme, str(encoder), use_context=use_context), pooling="cls")
    model.config.checkpoint_format = CHECKPOINT_FORMAT
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    load_tokenizer(str(encoder)).save_pretrained(directory)
    overrides = [f"model.name_or_path={encoder}", f"model.use_context={use_context}", "model.pooling=cls"]
    config = load_config(ROOT / DEFAULT_CONFIG, overrides + (data_overrides(project) if project else []))
    save_config(config, directory / "train_config.yaml")
    write_json(directory / "metrics.json", {})
    if project:
        write_json(directory / "dataset.json", {"fingerprint": build_dataset(config.data).fingerprint})
    return directory
