"""Fine-tune a (pretrained or randomly initialised) BERT on a few-shot task and evaluate it on the full test set.

A plain PyTorch loop a reader can hold in their head: AdamW (weight decay on everything but biases and
LayerNorm weights), linear warm-up then linear decay to 0, gradient clipping at 1.0, bf16 autocast on CUDA.
Every random choice (classifier initialisation, dropout, batch order) derives from the seed, so a CPU run is
repeatable bit for bit.

Models are named by a local directory or a Hugging Face id, loaded the same way (`from_pretrained`), so the
released DNABERT-6 (`zhihan1996/DNA_bert_6`) plugs in: our tokenizer keeps DNABERT's ids, and k is read from the
model's vocabulary size (5 special tokens + 4^k k-mers).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from genemask.errors import UserError
from genemask.evaluation.metrics import classification_metrics, prediction_summary
from genemask.evaluation.settings import FinetuneSettings
from genemask.evaluation.tasks import LabelledSequences, read_train_test
from genemask.evaluation.validation import check_task_sequences
from genemask.masking.tokenizer import CLS_ID, MAX_K, MIN_K, N_SPECIAL, PAD_ID, SEP_ID, sequence_to_token_ids
from genemask.training.hub import check_hub_model
from genemask.training.optim import linear_schedule, make_optimizer

MAX_GRAD_NORM = 1.0
EVAL_BATCH_SIZE = 128
CUDA_EVAL_BATCH_SIZE = 1024  # no gradients, bf16: a GPU takes far larger evaluation batches
TRUNCATION = "right: [CLS] + the first max_length - 2 k-mers + [SEP], as DNABERT's tokenizer truncates"


def kmer_size(vocab_size: int) -> int:
    """k of a DNABERT-style vocabulary: 5 special tokens + 4^k k-mers."""
    for k in range(MIN_K, MAX_K + 1):
        if vocab_size == N_SPECIAL + 4**k:
            return k
    raise UserError(
        f"model vocabulary of {vocab_size} tokens is not DNABERT-style (5 special tokens + 4^k k-mers, "
        f"k = {MIN_K}..{MAX_K})"
    )


def encode_batch(sequences: list[str], k: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[CLS] k-mer tokens [SEP], right-padded with [PAD]; k-mers beyond max_length are cut. -> (ids, mask)."""
    token_ids = [sequence_to_token_ids(sequence, k)[: max_length - 2] for sequence in sequences]
    width = max(ids.size for ids in token_ids) + 2
    input_ids = np.full((len(sequences), width), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, 0] = CLS_ID
        input_ids[row, 1 : ids.size + 1] = ids
        input_ids[row, ids.size + 1] = SEP_ID
    ids_tensor = torch.from_numpy(input_ids)
    return ids_tensor, (ids_tensor != PAD_ID).long()


def import_model_classes() -> None:
    """Import what load_model needs (transformers, the presets): a multi-run process pays it once, up front."""
    from transformers import AutoConfig, AutoModelForSequenceClassification  # noqa: F401

    import genemask.training.models  # noqa: F401


def load_model(name_or_path: str, n_classes: int, dropout: float, random_init: bool) -> torch.nn.Module:
    """A sequence classifier from a pretrained checkpoint (local or HF id); random weights if `random_init`.

    A random-init model may also be named by a model preset of genemask.training.models (e.g. `tiny`), so that the floor
    reference needs no pretrained checkpoint.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from genemask.training.models import PRESETS, check_model_source, model_config

    overrides = {
        "num_labels": n_classes,
        "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout,
    }
    if not (random_init and name_or_path in PRESETS and not Path(name_or_path).exists()):
        check_model_source(name_or_path)
        if not Path(name_or_path).expanduser().exists():  # a hub id: fail fast if it cannot be had
            check_hub_model(name_or_path)
    try:
        if random_init:
            if name_or_path in PRESETS and not Path(name_or_path).exists():
                config = model_config(name_or_path)
                for key, value in overrides.items():
                    setattr(config, key, value)
            else:
                config = AutoConfig.from_pretrained(name_or_path, **overrides)
            return AutoModelForSequenceClassification.from_config(config)
        return AutoModelForSequenceClassification.from_pretrained(name_or_path, **overrides)
    except (OSError, ValueError) as error:  # missing files, unreachable hub, malformed id or config
        raise UserError(f"--model {name_or_path}: cannot load a model ({error})") from None


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, device: torch.device
) -> np.ndarray:
    model.eval()
    out = []
    batch_size = CUDA_EVAL_BATCH_SIZE if device.type == "cuda" else EVAL_BATCH_SIZE
    for start in range(0, len(input_ids), batch_size):
        batch = slice(start, start + batch_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(
                input_ids=input_ids[batch].to(device), attention_mask=attention_mask[batch].to(device)
            ).logits
        out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out)


def finetune(
    name_or_path: str,
    train: LabelledSequences,
    test: LabelledSequences,
    n_classes: int,
    settings: FinetuneSettings,
    *,
    device: str | None = None,
    dev: LabelledSequences | None = None,
    eval_every: int | None = None,
    max_steps: int | None = None,
) -> dict:
    """Fine-tune on `train`, evaluate on `test`; the run record: metrics, losses, sizes, timings.

    `max_steps` caps the optimiser steps (the HF Trainer's `max_steps`: it overrides the epochs, the schedule
    decays over it). With `dev`, the model is evaluated on it every `eval_every` optimiser steps (default: after
    every epoch) and the checkpoint with the lowest dev loss (the DNABERT-2 recipe's `load_best_model_at_end`) is
    the one tested, as the HF Trainer keeps its best checkpoint; a run shorter than one interval evaluates and
    keeps its final model. Every evaluation's step, dev loss and metrics are recorded.
    """
    settings.check()
    run_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(settings.seed)
    model = load_model(name_or_path, n_classes, settings.dropout, settings.random_init).to(run_device)
    k = kmer_size(model.config.vocab_size)
    max_length = min(settings.max_length, model.config.max_position_embeddings)
    train_ids, train_mask = encode_batch(train.sequences, k, max_length)
    test_ids, test_mask = encode_batch(test.sequences, k, max_length)
    train_labels = torch.from_numpy(train.labels)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch if max_steps is None else max_steps
    if dev is not None:
        dev_ids, dev_mask = encode_batch(dev.sequences, k, max_length)
        evaluations: list[dict] = []
        best_loss, best_state, best_step = math.inf, None, 0
        eval_every = eval_every or steps_per_epoch

        def evaluate_dev(step: int) -> None:
            nonlocal best_loss, best_state, best_step
            dev_probabilities = predict_proba(model, dev_ids, dev_mask, run_device)
            picked = dev_probabilities[np.arange(len(dev)), dev.labels]
            dev_loss = float(-np.log(np.clip(picked, 1e-12, None)).mean())
            metrics = classification_metrics(dev.labels, dev_probabilities)
            evaluations.append({"step": step, "loss": dev_loss, **metrics})
            ranked = dev_loss if math.isfinite(dev_loss) else math.inf  # a NaN loss only when nothing else
            if best_state is None or ranked < best_loss:
                best_loss, best_step = ranked, step
                best_state = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}
            model.train()

    optimizer = make_optimizer(model, settings.learning_rate, settings.weight_decay)
    warmup_steps = settings.warmup_steps
    if warmup_steps is None:
        warmup_steps = math.ceil(settings.warmup_ratio * total_steps)
    scheduler = linear_schedule(optimizer, warmup_steps, total_steps, warmup_from_zero=False)
    order_rng = np.random.default_rng(settings.seed)
    epoch_losses = []
    started = time.perf_counter()
    model.train()
    step = 0
    while step < total_steps:
        order = torch.from_numpy(order_rng.permutation(len(train)))
        total_loss, seen = 0.0, 0
        for batch in order.split(settings.batch_size)[: total_steps - step]:
            with torch.autocast(run_device.type, dtype=torch.bfloat16, enabled=run_device.type == "cuda"):
                loss = model(
                    input_ids=train_ids[batch].to(run_device),
                    attention_mask=train_mask[batch].to(run_device),
                    labels=train_labels[batch].to(run_device),
                ).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            total_loss += loss.item() * len(batch)
            seen += len(batch)
            step += 1
            if dev is not None and step % eval_every == 0:
                evaluate_dev(step)
        epoch_losses.append(total_loss / seen)
    train_seconds = time.perf_counter() - started
    selection = {}
    if dev is not None:
        if not evaluations:
            evaluate_dev(step)
        model.load_state_dict(best_state)
        selection = {
            "n_dev": len(dev),
            "eval_every": eval_every,
            "dev_evaluations": evaluations,
            "selected": {"step": best_step, "dev_loss": best_loss if math.isfinite(best_loss) else None},
        }

    started = time.perf_counter()
    probabilities = predict_proba(model, test_ids, test_mask, run_device)
    every_sequence = [*train.sequences, *(dev.sequences if dev is not None else []), *test.sequences]
    token_counts = [len(sequence) - k + 1 + 2 for sequence in every_sequence]
    return {
        "metrics": classification_metrics(test.labels, probabilities),
        **prediction_summary(probabilities),
        **selection,
        "max_length_used": max_length,
        "model_positions": model.config.max_position_embeddings,
        "truncated_sequences": sum(count > max_length for count in token_counts),
        "truncation": TRUNCATION,
        "n_classes": n_classes,
        "n_train": len(train),
        "n_test": len(test),
        "k": k,
        "hyperparameters": asdict(settings),
        "steps": total_steps,
        "epoch_losses": epoch_losses,
        "device": str(run_device),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
    }


def run_finetune(
    name_or_path: str,
    train_path: str | Path,
    test_path: str | Path,
    settings: FinetuneSettings,
    *,
    device: str | None = None,
    task: str | None = None,
) -> dict:
    """Read the task TSVs, check they agree on the classes (and, given the task, that every sequence has its
    length), fine-tune and evaluate."""
    train, test, n_classes = read_train_test(train_path, test_path)
    if task is not None:
        check_task_sequences(task, train_path, train)
        check_task_sequences(task, test_path, test)
    return finetune(name_or_path, train, test, n_classes, settings, device=device)
