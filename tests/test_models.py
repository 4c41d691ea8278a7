"""Model presets, the sparse masked-LM head, and saved models loading through the AutoModel* classes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SHARED_DATA
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from genemask.masking.tokenizer import CLS_ID, PAD_ID, SEP_ID, sequence_to_token_ids
from genemask.training.models import (
    MAX_POSITIONS,
    PRESETS,
    build_model,
    dense_mlm_loss,
    masked_positions,
    model_config,
    save_model,
    sparse_mlm_loss,
    training_flops_per_token,
)

DNABERT_CONFIG = SHARED_DATA / "dnabert_6mer_vocab" / "config.json"


def masked_batch(seed: int = 0, batch: int = 4, width: int = 48) -> dict[str, torch.Tensor]:
    """A padded batch with [CLS]/[SEP], ~15% labelled positions, as the collator makes them."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, width - 2, (batch,), generator=generator)
    lengths[0] = width - 2
    positions = torch.arange(width)[None, :]
    real = positions <= lengths[:, None] + 1
    input_ids = torch.randint(5, 4101, (batch, width), generator=generator)
    input_ids[:, 0] = CLS_ID
    input_ids[torch.arange(batch), lengths + 1] = SEP_ID
    input_ids[~real] = PAD_ID
    labelled = (torch.rand(batch, width, generator=generator) < 0.15) & real & (positions > 0)
    labelled &= positions <= lengths[:, None]
    labels = torch.where(labelled, input_ids, torch.full_like(input_ids, -100))
    return {"input_ids": input_ids, "attention_mask": real.long(), "labels": labels}


def test_presets_match_the_published_sizes():
    logo = model_config("logo")
    assert (logo.hidden_size, logo.num_hidden_layers, logo.num_attention_heads, logo.intermediate_size) == (
        256,
        2,
        8,
        3072,
    )
    assert logo.hidden_dropout_prob == logo.attention_probs_dropout_prob == 0.0
    for name in PRESETS:
        config = model_config(name)
        assert config.vocab_size == 4101 and config.max_position_embeddings == MAX_POSITIONS == 512
        assert config.pad_token_id == PAD_ID


def test_dnabert_preset_is_dnaberts_config():
    if not DNABERT_CONFIG.exists():
        pytest.skip(f"real data absent: {DNABERT_CONFIG}")
    published = json.loads(DNABERT_CONFIG.read_text())
    ours = model_config("dnabert").to_dict()
    keys = [key for key in published if key != "architectures"]
    assert {key: ours[key] for key in keys} == {key: published[key] for key in keys}


def test_initial_weights_depend_on_the_seed_only():
    a, b, c = build_model("tiny", seed=1), build_model("tiny", seed=1), build_model("tiny", seed=2)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not torch.equal(a.bert.embeddings.word_embeddings.weight, c.bert.embeddings.word_embeddings.weight)
    assert a.config._attn_implementation == "sdpa"


def test_sparse_head_equals_hf_loss_and_gradients():
    model = build_model("tiny", seed=0).eval()  # eval: no dropout, so both passes see the same network
    batch = masked_batch()
    index, targets = masked_positions(batch["labels"])
    sparse = sparse_mlm_loss(model, batch["input_ids"], batch["attention_mask"], index, targets)
    (sparse.loss_sum / sparse.count).backward()
    sparse_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    hf = model(**batch)  # HF's own loss: mean cross-entropy over labelled positions, head on every position
    hf.loss.backward()
    assert sparse.count == int((batch["labels"] != -100).sum()) > 0
    assert (sparse.loss_sum / sparse.count).item() == pytest.approx(hf.loss.item(), rel=1e-5)
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(sparse_grads[name], parameter.grad, rtol=1e-4, atol=1e-7, msg=name)
    dense = dense_mlm_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert dense.count == sparse.count and int(dense.correct) == int(sparse.correct)
    logits = hf.logits.detach().reshape(-1, hf.logits.shape[-1])[index]
    assert int(sparse.correct) == int((logits.argmax(-1) == targets).sum())


def test_sparse_loss_trains():
    torch.manual_seed(0)
    model = build_model("tiny", seed=0)
    batch = masked_batch(seed=1)
    index, targets = masked_positions(batch["labels"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        stats = sparse_mlm_loss(model, batch["input_ids"], batch["attention_mask"], index, targets)
        (stats.loss_sum / stats.count).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(stats.loss_sum.item() / stats.count)
    assert losses[-1] < 0.5 * losses[0]


def test_saved_model_loads_with_the_auto_classes(tmp_path):
    model = build_model("tiny", seed=4).eval()
    tokenizer_saved = save_model(model, tmp_path)
    masked_lm = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert type(masked_lm).__name__ == "BertForMaskedLM"
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, masked_lm.state_dict()[name]), name
    batch = masked_batch(seed=2)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        torch.testing.assert_close(masked_lm(**inputs).logits, model(**inputs).logits)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3).eval()
    assert torch.equal(
        classifier.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight
    )
    with torch.no_grad():
        assert classifier(**inputs).logits.shape == (4, 3)
    assert (tmp_path / "model.safetensors").exists()
    if tokenizer_saved:  # DNABERT-style space-separated k-mers, no remote code
        tokenizer = AutoTokenizer.from_pretrained(tmp_path)
        kmers = " ".join("ACGTACGTAA"[i : i + 6] for i in range(5))
        assert tokenizer(kmers)["input_ids"] == [
            CLS_ID,
            *sequence_to_token_ids("ACGTACGTAA").tolist(),
            SEP_ID,
        ]


def test_flop_count_uses_the_models_matmul_parameters():
    for name in PRESETS:
        model = build_model(name)
        config = model.config
        linear = sum(
            module.weight.numel()
            for module in model.bert.encoder.modules()
            if isinstance(module, torch.nn.Linear)
        )
        head = (
            model.cls.predictions.transform.dense.weight.numel()
            + model.cls.predictions.decoder.weight.numel()
        )
        attention = config.num_hidden_layers * 2 * 100 * config.hidden_size
        expected = 6 * (linear + attention + 0.15 * head)
        assert training_flops_per_token(config, 100, 0.15) == pytest.approx(expected)
