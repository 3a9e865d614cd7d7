import pytest
import torch

from tests.helpers import ROOT
from train.data.scheme import load_scheme
from train.modeling.bert import ModelLoadError, init_model, load_tokenizer


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_cls_only_last_layer_equals_the_full_encoder(tiny_encoder, padding_side):
    model = init_model(str(tiny_encoder), load_scheme(ROOT / "configs/labels.yaml"), use_context=True).eval()
    tokenizer = load_tokenizer(str(tiny_encoder))
    tokenizer.padding_side = padding_side
    batch = tokenizer(["Путин заявил, что НАТО наращивает военный потенциал у рубежей России.", "Подписаться"],
                      ["", "Байден выразил обеспокоенность."], padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = model.bert(**batch).last_hidden_state[:, 0]
        cls_only = model.encode_cls(**batch)
    torch.testing.assert_close(cls_only, full, rtol=1e-5, atol=1e-5)


def test_non_bert_encoder_is_refused(tmp_path):
    from transformers import GPT2Config
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="not supported"):
        init_model(str(tmp_path), load_scheme(ROOT / "configs/labels.yaml"))
