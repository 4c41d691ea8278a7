"""Tokenizer: the vocabulary against DNABERT's file, encoding against a brute-force oracle, and the HF files
(AutoTokenizer without remote code for space-separated k-mers, with remote code for raw DNA)."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from conftest import SHARED_DATA
from transformers import AutoTokenizer

from genemask.genome.fasta import encode
from genemask.masking.hf_tokenizer import KmerTokenizer, encode_dna, save_tokenizer
from genemask.masking.tokenizer import (
    CLS_ID,
    SEP_ID,
    UNK_ID,
    chunk_token_ids,
    codes_to_token_ids,
    kmer_vocab,
    sequence_to_token_ids,
)

DNABERT_VOCAB = SHARED_DATA / "dnabert_6mer_vocab" / "vocab.txt"
PROM_CORE_TRAIN = SHARED_DATA / "prom_core" / "genemask" / "100" / "train.tsv"


def oracle_ids(sequence: str, k: int) -> list[int]:
    """Brute force: a dictionary lookup per k-mer of the upper-cased string."""
    index = {kmer: i for i, kmer in enumerate(kmer_vocab(k))}
    sequence = sequence.upper()
    return [index.get(sequence[i : i + k], UNK_ID) for i in range(len(sequence) - k + 1)]


def random_dna(rng: np.random.Generator, length: int, alphabet: str = "ACGTacgtN") -> str:
    return "".join(rng.choice(list(alphabet), size=length))


def test_vocabulary_equals_dnabert_file():
    if not DNABERT_VOCAB.exists():
        pytest.skip(f"real data absent: {DNABERT_VOCAB}")
    assert kmer_vocab(6) == DNABERT_VOCAB.read_text().split("\n")[:-1]


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_vocabulary_order(k):
    vocab = kmer_vocab(k)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert vocab[5:] == ["".join(p) for p in itertools.product("ATCG", repeat=k)]


@pytest.mark.parametrize("k", [3, 4, 5, 6])
def test_encoding_matches_brute_force(k):
    rng = np.random.default_rng(k)
    for length in [0, k - 1, k, k + 1, 300]:
        sequence = random_dna(rng, length)
        assert sequence_to_token_ids(sequence, k).tolist() == oracle_ids(sequence, k)
        assert encode_dna(sequence, k).tolist() == oracle_ids(sequence, k)


def test_chunk_token_ids_concatenates_per_chunk_encodings():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=60)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    codes = rng.integers(0, 4, size=offsets[-1]).astype(np.uint8)
    ids, token_offsets = chunk_token_ids(codes, offsets, 6)
    for i in range(len(lengths)):
        expected = codes_to_token_ids(codes[offsets[i] : offsets[i + 1]], 6)
        assert ids[token_offsets[i] : token_offsets[i + 1]].tolist() == expected.tolist()


def test_encode_dna_space_separated_kmers_map_to_themselves():
    rng = np.random.default_rng(1)
    sequence = random_dna(rng, 80, "ACGT")
    kmers = " ".join(sequence[i : i + 6] for i in range(len(sequence) - 5))
    assert encode_dna(kmers).tolist() == sequence_to_token_ids(sequence).tolist()
    # Pieces are separate sequences: no k-mer spans a space.
    assert encode_dna("ACGTAC GTACGT").tolist() == oracle_ids("ACGTAC", 6) + oracle_ids("GTACGT", 6)
    assert encode_dna("ACG TAC").tolist() == []


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory):
    return save_tokenizer(tmp_path_factory.mktemp("model"), k=6)


def test_saved_vocab_file_is_dnabert_order(saved_tokenizer):
    assert (saved_tokenizer / "vocab.txt").read_text().split() == kmer_vocab(6)


def test_autotokenizer_without_remote_code_encodes_dnabert_kmers(saved_tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(saved_tokenizer)
    assert not type(tokenizer).__module__.startswith("transformers_modules")  # no remote code ran
    rng = np.random.default_rng(2)
    sequence = random_dna(rng, 120, "ACGTN")
    kmers = " ".join(sequence[i : i + 6] for i in range(len(sequence) - 5))
    expected = [CLS_ID, *oracle_ids(sequence, 6), SEP_ID]
    assert tokenizer(kmers)["input_ids"] == expected
    assert tokenizer(kmers.lower())["input_ids"] == expected
    assert tokenizer.decode(tokenizer(kmers)["input_ids"][1:-1]) == " ".join(
        kmer_vocab(6)[i] for i in expected[1:-1]
    )
    batch = tokenizer([kmers, kmers[:20]], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["input_ids"][1, batch["attention_mask"][1].sum() :].eq(0).all()


def test_autotokenizer_on_genemask_fewshot_file(saved_tokenizer):
    if not PROM_CORE_TRAIN.exists():
        pytest.skip(f"real data absent: {PROM_CORE_TRAIN}")
    tokenizer = AutoTokenizer.from_pretrained(saved_tokenizer)
    with PROM_CORE_TRAIN.open() as handle:
        rows = [row["sequence"] for row in csv.DictReader(handle, delimiter="\t")][:50]
    for kmers in rows:
        pieces = kmers.split()
        sequence = pieces[0] + "".join(piece[-1] for piece in pieces[1:])
        assert tokenizer(kmers)["input_ids"] == [CLS_ID, *sequence_to_token_ids(sequence).tolist(), SEP_ID]


def test_autotokenizer_with_remote_code_encodes_raw_dna(saved_tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(saved_tokenizer, trust_remote_code=True)
    assert type(tokenizer).__name__ == "KmerTokenizer"
    rng = np.random.default_rng(3)
    sequence = random_dna(rng, 200)
    expected = [CLS_ID, *sequence_to_token_ids(sequence).tolist(), SEP_ID]
    assert tokenizer(sequence)["input_ids"] == expected
    kmers = " ".join(sequence[i : i + 6] for i in range(len(sequence) - 5))
    assert tokenizer(kmers)["input_ids"] == expected
    assert tokenizer.tokenize(sequence[:8]) == [sequence[i : i + 6].upper() for i in range(3)]
    batch = tokenizer([sequence, sequence[:10]], padding=True, return_tensors="pt")
    assert batch["input_ids"][1].tolist()[:7] == [
        CLS_ID,
        *sequence_to_token_ids(sequence[:10]).tolist(),
        SEP_ID,
    ]
    assert batch["attention_mask"][1].sum() == 7


def test_kmer_tokenizer_rejects_a_foreign_vocabulary(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(kmer_vocab(5)) + "\n")
    with pytest.raises(ValueError, match="not the 6-mer vocabulary"):
        KmerTokenizer(vocab_file=str(tmp_path / "vocab.txt"), k=6)


@pytest.mark.parametrize("k", [3, 4, 5])
def test_saved_tokenizer_for_smaller_k(tmp_path, k):
    save_tokenizer(tmp_path, k=k)
    sequence = "ACGTTGCAAN"
    expected = [CLS_ID, *oracle_ids(sequence, k), SEP_ID]
    assert AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)(sequence)["input_ids"] == expected
    kmers = " ".join(sequence[i : i + k] for i in range(len(sequence) - k + 1))
    assert AutoTokenizer.from_pretrained(tmp_path)(kmers)["input_ids"] == expected


def test_encode_matches_fasta_codes():
    rng = np.random.default_rng(4)
    sequence = random_dna(rng, 64)
    codes = encode(np.frombuffer(sequence.upper().encode(), np.uint8))
    assert codes_to_token_ids(codes, 6).tolist() == encode_dna(sequence).tolist()
