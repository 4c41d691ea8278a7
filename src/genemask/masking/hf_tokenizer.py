"""Hugging Face tokenizer files for a model directory, and the k-mer tokenizer class for raw DNA.

`save_tokenizer(directory, k)` writes:
- `tokenizer.json` + `tokenizer_config.json` (class PreTrainedTokenizerFast): `AutoTokenizer.from_pretrained(dir)`
  loads it with no remote code and encodes DNABERT-style space-separated k-mers (any case) to our ids, adding
  [CLS]/[SEP].
- `vocab.txt` (DNABERT's format: one token per line, line number = id).
- `tokenization_genemask.py`, a copy of this module, named in `auto_map`: with `trust_remote_code=True`,
  `AutoTokenizer` returns `KmerTokenizer`, which also encodes raw DNA strings (one vectorised numpy pass per
  string, no Python loop per k-mer).

This module is copied into model directories, so it imports only the standard library, numpy and transformers
(it repeats the few lines of `genemask.masking.tokenizer` it needs; tests check that both encode identically).
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
N_SPECIAL = len(SPECIAL_TOKENS)
UNK_ID, CLS_ID, SEP_ID = 1, 2, 3
BASES = "ATCG"  # DNABERT's digit order
MODULE_NAME = "tokenization_genemask"
CLASS_NAME = "KmerTokenizer"
MODEL_MAX_LENGTH = 512

_DIGIT = np.full(256, -1, dtype=np.int64)
for _digit, _base in enumerate(BASES):
    _DIGIT[ord(_base)] = _DIGIT[ord(_base.lower())] = _digit
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(c) for c in " \t\n\r\v\f"]] = True


def kmer_vocabulary(k: int = 6) -> list[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], then the 4^k k-mers in itertools.product('ATCG') order (DNABERT's)."""
    if not 3 <= k <= 6:
        raise ValueError(f"k must be in 3..6, got {k}")
    return list(SPECIAL_TOKENS) + ["".join(p) for p in itertools.product(BASES, repeat=k)]


def encode_dna(text: str, k: int = 6) -> np.ndarray:
    """Token ids of a DNA string: the overlapping k-mers of each whitespace-separated piece (so DNABERT-style
    space-separated k-mers map to themselves). A k-mer with a letter other than ACGT (any case) is [UNK]."""
    chars = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)
    n_windows = len(chars) - k + 1
    if n_windows <= 0:
        return np.zeros(0, dtype=np.int64)
    digits = _DIGIT[chars]
    spaces = np.concatenate([[0], np.cumsum(_SPACE[chars])])
    keep = spaces[k:] == spaces[:n_windows]  # windows inside one piece
    ids = np.zeros(n_windows, dtype=np.int64)
    unknown = np.zeros(n_windows, dtype=bool)
    for j in range(k):
        window_digits = digits[j : j + n_windows]
        ids = ids * 4 + np.maximum(window_digits, 0)
        unknown |= window_digits < 0
    ids = np.where(unknown, UNK_ID, ids + N_SPECIAL)
    return ids[keep]


class KmerTokenizer(PreTrainedTokenizer):
    """Overlapping k-mer tokenizer in DNABERT's vocabulary order; encodes raw or space-separated DNA."""

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file: str | None = None, k: int = 6, **kwargs) -> None:
        self.k = k
        vocab = kmer_vocabulary(k)
        if vocab_file is not None:
            saved = Path(vocab_file).read_text().split()
            if saved != vocab:
                raise ValueError(f"{vocab_file}: not the {k}-mer vocabulary in DNABERT's order")
        self._vocab = {token: i for i, token in enumerate(vocab)}
        self._tokens = vocab
        for name, token in zip(
            ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS, strict=True
        ):
            kwargs.setdefault(name, token)
        kwargs.setdefault("model_max_length", MODEL_MAX_LENGTH)
        kwargs.setdefault("special_tokens_pattern", "cls_sep")
        super().__init__(**kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return [self._tokens[i] for i in encode_dna(text, self.k)]

    def _encode_plus(self, text, text_pair=None, **kwargs):
        # Strings go straight to ids in one numpy pass instead of through per-token string lookups.
        if isinstance(text, str):
            text = encode_dna(text, self.k).tolist()
        if isinstance(text_pair, str):
            text_pair = encode_dna(text_pair, self.k).tolist()
        return super()._encode_plus(text, text_pair, **kwargs)

    def _convert_token_to_id(self, token: str) -> int:
        return self._vocab.get(token, UNK_ID)

    def _convert_id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        if token_ids_1 is None:
            return [CLS_ID, *token_ids_0, SEP_ID]
        return [CLS_ID, *token_ids_0, SEP_ID, *token_ids_1, SEP_ID]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        path = Path(save_directory) / f"{filename_prefix + '-' if filename_prefix else ''}vocab.txt"
        path.write_text("\n".join(self._tokens) + "\n")
        return (str(path),)


def _fast_tokenizer_json(k: int) -> str:
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = kmer_vocabulary(k)
    tokenizer = Tokenizer(WordLevel({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace(b.lower(), b) for b in BASES])
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)],
    )
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer.to_str(pretty=True)


def save_tokenizer(directory: str | Path, k: int = 6) -> Path:
    """Write the tokenizer files into `directory` (created if needed); see the module docstring."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = kmer_vocabulary(k)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (directory / "tokenizer.json").write_text(_fast_tokenizer_json(k))
    special = dict(
        zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS, strict=True)
    )
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "auto_map": {"AutoTokenizer": [f"{MODULE_NAME}.{CLASS_NAME}", None]},
        "k": k,
        "model_max_length": MODEL_MAX_LENGTH,
        "do_lower_case": False,
        "clean_up_tokenization_spaces": False,
        "model_input_names": KmerTokenizer.model_input_names,
        **special,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    shutil.copyfile(Path(__file__), directory / f"{MODULE_NAME}.py")
    return directory
