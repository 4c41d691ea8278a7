"""BERT masked-LM presets (docs/method.md section 5) and a masked-LM loss that runs the head only where it is needed.

Every model is a plain HF `BertForMaskedLM`: checkpoints save with `save_pretrained` and load with
`AutoModelForMaskedLM` / `AutoModelForSequenceClassification`. The sparse head is a function over that standard
model (`sparse_mlm_loss`), not a new architecture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from genemask.errors import UserError
from genemask.masking.tokenizer import CLS_ID, PAD_ID, SEP_ID, vocab_size
from genemask.training.settings import PRESETS

# A Hugging Face Hub id: `name` or `owner/name`, letters, digits, '-', '_', '.'.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(?:/[A-Za-z0-9][\w.-]{0,95})?")
MAX_POSITIONS = 512  # block 512: [CLS] + at most 506 6-mers of a 511-nt chunk + [SEP] fit
IGNORE_INDEX = -100


def model_config(preset: str, k: int = 6, dropout: float | None = None) -> BertConfig:
    """The `BertConfig` of a preset, with the k-mer vocabulary and DNABERT's special token ids.

    `dropout` overrides the preset's hidden and attention dropout.
    """
    if preset not in PRESETS:
        raise UserError(f"unknown model preset '{preset}', expected one of {', '.join(PRESETS)}")
    sizes = dict(PRESETS[preset].sizes)
    if dropout is not None:
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout}")
        sizes.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertConfig(
        vocab_size=vocab_size(k),
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=2,
        pad_token_id=PAD_ID,
        bos_token_id=CLS_ID,
        eos_token_id=SEP_ID,
        architectures=["BertForMaskedLM"],
        **sizes,
    )


def build_model(
    preset: str, k: int = 6, seed: int = 0, dropout: float | None = None, attn_implementation: str = "sdpa"
) -> BertForMaskedLM:
    """A freshly initialised masked LM; the initial weights depend on `seed` only."""
    config = model_config(preset, k, dropout)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BertForMaskedLM._from_config(config, attn_implementation=attn_implementation)


@dataclass(frozen=True)
class MLMStats:
    """Sums over the masked positions of one batch: the loss is `loss_sum / count`."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    count: int


def masked_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the masked positions and their targets. Cheap; run it on the CPU, before the transfer."""
    flat = labels.reshape(-1)
    index = torch.nonzero(flat != IGNORE_INDEX).squeeze(1)
    return index, flat[index]


def sparse_mlm_loss(
    model: BertForMaskedLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    masked_index: torch.Tensor,
    masked_labels: torch.Tensor,
) -> MLMStats:
    """Masked-LM loss of a standard `BertForMaskedLM`, with the vocabulary head applied to masked positions only.

    The 4,101-way projection dominates small models when it runs on every position; only ~15% of positions
    carry a label. Equal to the HF loss (mean cross-entropy over labelled positions) up to float rounding.
    """
    hidden = model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, masked_index)
    logits = model.cls(selected).float()
    loss_sum = F.cross_entropy(logits, masked_labels, reduction="sum")
    with torch.no_grad():
        correct = (logits.argmax(-1) == masked_labels).sum()
    return MLMStats(loss_sum, correct, int(masked_labels.numel()))


def dense_mlm_loss(
    model: BertForMaskedLM, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> MLMStats:
    """The same sums through HF's own forward (head on every position): the reference for tests and benchmarks."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    loss_sum = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    keep = flat_labels != IGNORE_INDEX
    with torch.no_grad():
        correct = (flat_logits[keep].argmax(-1) == flat_labels[keep]).sum()
    return MLMStats(loss_sum, correct, int(keep.sum()))


class SparseMLMLoss(nn.Module):
    """`sparse_mlm_loss` as a module, so that DDP and `torch.compile` can wrap it; `.model` is what gets saved."""

    def __init__(self, model: BertForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        masked_index: torch.Tensor,
        masked_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        stats = sparse_mlm_loss(self.model, input_ids, attention_mask, masked_index, masked_labels)
        return stats.loss_sum, stats.correct


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def training_flops_per_token(config: BertConfig, sequence_length: float, masked_fraction: float) -> float:
    """Useful training FLOPs per token: 6 x (matmul parameters) + attention, with the head on masked tokens only.

    Per layer: 4 h^2 (Q, K, V, output) + 2 h i (feed-forward) weights, plus QK^T and AV, 4 T h multiply-adds
    forward. Embedding lookups cost no FLOPs. Forward + backward = 3 x forward; a multiply-add is 2 FLOPs.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    encoder = layers * (4 * h * h + 2 * h * i)
    attention = layers * 2 * sequence_length * h  # QK^T and AV, in multiply-adds per token
    head = (h * h + h * config.vocab_size) * masked_fraction
    return 6.0 * (encoder + attention + head)


def save_model(model: BertForMaskedLM, directory: str | Path, k: int = 6) -> bool:
    """`save_pretrained` (safetensors) plus the HF tokenizer files when `genemask.masking.hf_tokenizer` is available.

    Returns whether the tokenizer was written.
    """
    model.save_pretrained(directory, safe_serialization=True)
    try:
        from genemask.masking.hf_tokenizer import save_tokenizer
    except ImportError:
        return False
    save_tokenizer(directory, k=k)
    return True


def check_model_source(name_or_path: str, option: str = "--model") -> None:
    """Refuse, with a one-line UserError, a model that is neither a model directory nor a Hugging Face id: a
    path that does not exist (rather than the Hub's "Repo id must be in the form ..."), a file, or a directory
    without `config.json`."""
    path = Path(name_or_path).expanduser()
    expected = "a directory written by `genemask pretrain` or a Hugging Face id such as zhihan1996/DNA_bert_6"
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{option} {name_or_path}: is a file, expected {expected}")
        if not (path / "config.json").is_file():
            raise UserError(f"{option} {name_or_path}: no config.json there, expected {expected}")
        return
    looks_like_a_path = (
        name_or_path.startswith(("/", ".", "~"))
        or name_or_path.endswith("/")
        or not _HUB_ID.fullmatch(name_or_path)
        or ("/" in name_or_path and path.parent.is_dir())
    )
    if looks_like_a_path:
        raise UserError(f"{option} {name_or_path}: no such directory, expected {expected}")
