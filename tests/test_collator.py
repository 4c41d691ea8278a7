"""The MLM collator: layout, labels, 80/10/10 replacement, determinism, the mask store path, and a BERT step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genemask.errors import UserError
from genemask.masking.collator import IGNORE_INDEX, MLMCollator
from genemask.masking.settings import DEFAULT_CENTRE_PROBABILITY, MaskingSettings
from genemask.masking.strategies import Masker, flatten
from genemask.masking.tokenizer import CLS_ID, MASK_ID, N_SPECIAL, PAD_ID, SEP_ID, kmer_vocab


def examples(lengths, seed=0, epoch=0, first_chunk=0):
    rng = np.random.default_rng(seed)
    return [
        {
            "input_ids": rng.integers(N_SPECIAL, N_SPECIAL + 4**6, size=n),
            "chunk_index": first_chunk + i,
            "epoch": epoch,
        }
        for i, n in enumerate(lengths)
    ]


def random_ranks():
    ranks = np.full(N_SPECIAL + 4**6, 4**6, dtype=np.int64)
    ranks[N_SPECIAL:] = np.random.default_rng(1).permutation(4**6) + 1
    return ranks


def test_layout_and_labels():
    batch_examples = examples([1, 7, 300, 506])
    batch = MLMCollator(Masker("random", seed=3))(batch_examples)
    input_ids, labels, attention = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert (
        input_ids.shape == labels.shape == attention.shape == (4, 512)
    )  # 506 + 2, padded to a multiple of 8
    assert input_ids.dtype == labels.dtype == torch.long
    for row, example in enumerate(batch_examples):
        n = len(example["input_ids"])
        assert input_ids[row, 0] == CLS_ID and input_ids[row, n + 1] == SEP_ID
        assert (input_ids[row, n + 2 :] == PAD_ID).all()
        assert attention[row].tolist() == [1] * (n + 2) + [0] * (512 - n - 2)
        # Labels: the original token where masked, -100 elsewhere; never on [CLS], [SEP] or padding.
        assert labels[row, 0] == IGNORE_INDEX and (labels[row, n + 1 :] == IGNORE_INDEX).all()
        masked = labels[row, 1 : n + 1] != IGNORE_INDEX
        original = torch.from_numpy(example["input_ids"])
        assert (labels[row, 1 : n + 1][masked] == original[masked]).all()
        assert (input_ids[row, 1 : n + 1][~masked] == original[~masked]).all()


@pytest.mark.parametrize("strategy", ["random", "genemask", "genemask-as-released"])
def test_masks_are_the_strategy_masks(strategy):
    batch_examples = examples([120, 506, 33], epoch=4, first_chunk=70)
    collator = MLMCollator(Masker(strategy, seed=9, rank_of_id=random_ranks()))
    labels = collator(batch_examples)["labels"]
    ids, offsets = flatten([e["input_ids"] for e in batch_examples])
    mask = Masker(strategy, seed=9, rank_of_id=random_ranks())(ids, offsets, [70, 71, 72], 4)
    for row in range(3):
        n = offsets[row + 1] - offsets[row]
        assert (
            (labels[row, 1 : n + 1] != IGNORE_INDEX).numpy() == mask[offsets[row] : offsets[row + 1]]
        ).all()


def test_replacement_80_10_10():
    batch = MLMCollator(Masker("random", seed=1))(examples([506] * 400, seed=2))
    original = batch["labels"]
    masked = original != IGNORE_INDEX
    replaced = batch["input_ids"][masked]
    truth = original[masked]
    n = masked.sum().item()
    assert n > 25_000
    as_mask = (replaced == MASK_ID).float().mean().item()
    kept = (replaced == truth).float().mean().item()
    assert abs(as_mask - 0.8) < 0.01
    assert abs(kept - 0.1) < 0.01
    random_tokens = replaced[(replaced != MASK_ID) & (replaced != truth)]
    assert (random_tokens >= N_SPECIAL).all()  # random replacements are k-mers, never special tokens


def test_deterministic_per_chunk_and_epoch():
    batch_examples = examples([50, 200, 506], first_chunk=5)
    collator = MLMCollator(Masker("random", seed=4))
    first = collator(batch_examples)
    again = collator(list(reversed(batch_examples)))
    for row in range(3):
        for key in ("input_ids", "labels"):
            n = len(batch_examples[row]["input_ids"]) + 2
            assert (first[key][row, :n] == again[key][2 - row, :n]).all()
    later = collator([dict(e, epoch=1) for e in batch_examples])
    assert not torch.equal(first["labels"], later["labels"])
    other_seed = MLMCollator(Masker("random", seed=5))(batch_examples)
    assert not torch.equal(first["labels"], other_seed["labels"])


def test_masker_from_settings_reads_the_ranking(tmp_path):
    ranks = random_ranks()
    path = tmp_path / "kmer_ranks.tsv"
    kmers = kmer_vocab(6)[N_SPECIAL:]
    path.write_text(
        "kmer\tcount\tnpmi\trank\n"
        + "".join(f"{kmer}\t1\t0.0\t{rank}\n" for kmer, rank in zip(kmers, ranks[N_SPECIAL:], strict=True))
    )
    masker = Masker.from_settings(MaskingSettings(strategy="genemask", seed=9, ranks=str(path)))
    assert masker.params == Masker("genemask", seed=9, rank_of_id=ranks).params
    assert masker.centre_probability == DEFAULT_CENTRE_PROBABILITY["genemask"]
    assert np.array_equal(masker.rank_of_id[N_SPECIAL:], ranks[N_SPECIAL:])
    with pytest.raises(UserError, match="centre_probability"):
        Masker.from_settings(MaskingSettings(centre_probability=1.5))
    with pytest.raises(TypeError, match="needs a Masker or a MaskStore"):
        MLMCollator(6)


def test_lists_and_no_padding_multiple():
    batch_examples = [{"input_ids": [5, 6, 7], "chunk_index": 0, "epoch": 0}]
    batch = MLMCollator(Masker("random"), pad_to_multiple_of=None)(batch_examples)
    assert batch["input_ids"].shape == (1, 5)


def test_plain_pytorch_dataloader_and_bert_loss():
    from transformers import BertConfig, BertForMaskedLM

    data = examples([40, 80, 120, 506] * 4, seed=6)
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=MLMCollator(Masker("random", seed=2)))
    config = BertConfig(
        vocab_size=N_SPECIAL + 4**6,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    model = BertForMaskedLM(config)
    for batch in loader:
        loss = model(**batch).loss
        assert torch.isfinite(loss)
        loss.backward()
