"""Pretraining throughput: our training step against a plain HF `BertForMaskedLM` loop, in the same run.

- baseline: HF `BertForMaskedLM` as constructed by default, fp32, every batch padded to 512, the vocabulary head
  on every position (`model(..., labels=...).loss`), plain AdamW.
- ours: length-bucketed batches, the head on masked positions only, bf16 autocast on CUDA, SDPA attention,
  fused AdamW on CUDA, optionally `torch.compile`: the step `genemask pretrain` runs.
- ours, dense head: ours with HF's full head, to isolate the sparse head's speed-up.

All three see the same sequences (the published length law, or a chunk store) and the same masks. Tokens/s
counts real tokens ([CLS] and [SEP] included, padding excluded), so padding is waste. The loops run in
interleaved time slices, so drifting load on a shared machine hits all of them alike.

    python benchmarks/pretrain_throughput.py                               # CPU, tiny (about a minute)
    python benchmarks/pretrain_throughput.py --device cuda --preset dnabert  # GPU, under 3 minutes
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import BertForMaskedLM

from genemask.genome.chunkstore import ChunkStore
from genemask.masking.collator import MLMCollator
from genemask.masking.strategies import Masker
from genemask.masking.tokenizer import codes_to_token_ids
from genemask.training.data import (
    GlobalBatches,
    WithMaskedPositions,
    padding_waste,
    split_global_batch,
    token_lengths,
)
from genemask.training.models import (
    build_model,
    count_parameters,
    dense_mlm_loss,
    model_config,
    sparse_mlm_loss,
    training_flops_per_token,
)
from genemask.training.runtime import resolve_device

# Dense bf16 tensor-core peaks (TFLOP/s), from the vendors' data sheets.
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def published_chunks(n: int, seed: int) -> list[np.ndarray]:
    """Random ACGT chunks with the published length law: 511 nt with p = 0.5, else uniform 6..510."""
    rng = np.random.default_rng(seed)
    lengths = np.where(rng.random(n) < 0.5, 511, rng.integers(6, 511, n))
    return [rng.integers(0, 4, length, dtype=np.uint8) for length in lengths]


def store_chunks(directory: Path, n: int) -> list[np.ndarray]:
    store = ChunkStore.open(directory, "train")
    return [store[i] for i in range(min(n, len(store)))]


def collate_batches(chunks: list[np.ndarray], batches: np.ndarray, pad_to: int, k: int = 6) -> list[dict]:
    collate = WithMaskedPositions(MLMCollator(Masker("random", k=k, seed=0), pad_to_multiple_of=pad_to))
    examples = [
        {"input_ids": codes_to_token_ids(c, k), "chunk_index": i, "epoch": 0} for i, c in enumerate(chunks)
    ]
    return [collate([examples[i] for i in row]) for row in batches]


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


class Loop:
    """One training loop over pre-collated batches, run in time slices."""

    def __init__(self, name: str, model: BertForMaskedLM, batches: list[dict], step: Callable, fused: bool):
        self.name, self.model, self.batches, self.step_fn = name, model, batches, step
        self.device = next(model.parameters()).device
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
        self.next_batch, self.tokens, self.seconds, self.steps = 0, 0, 0.0, 0

    def _one_step(self) -> int:
        batch = self.batches[self.next_batch % len(self.batches)]
        self.next_batch += 1
        tokens = int(batch["attention_mask"].sum())  # on the CPU copy: no GPU sync
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        loss = self.step_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return tokens

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def warm_up(self, steps: int) -> None:
        for _ in range(steps):
            self._one_step()
        self._sync()

    def run_for(self, seconds: float) -> None:
        self._sync()
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            self.tokens += self._one_step()
            self.steps += 1
            if self.device.type == "cuda" and self.steps % 8 == 0:
                self._sync()  # keep the queue short so the slice ends on time
        self._sync()
        self.seconds += time.perf_counter() - began

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def hf_step(model: BertForMaskedLM, batch: dict) -> torch.Tensor:
    return model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
    ).loss


def make_ours(autocast: torch.autocast, sparse: bool) -> Callable:
    def step(model: BertForMaskedLM, batch: dict) -> torch.Tensor:
        with autocast:
            if sparse:
                stats = sparse_mlm_loss(
                    model,
                    batch["input_ids"],
                    batch["attention_mask"],
                    batch["masked_index"],
                    batch["masked_labels"],
                )
            else:
                stats = dense_mlm_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        return stats.loss_sum / max(stats.count, 1)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--preset", default=None, help="model preset (default: tiny on CPU, dnabert on CUDA)")
    parser.add_argument(
        "--batch-size", type=int, help="sequences per step, every loop (default: 16 CPU, 32 CUDA)"
    )
    parser.add_argument("--sequences", type=int, default=2048, help="distinct sequences cycled through")
    parser.add_argument(
        "--chunks", type=Path, help="a chunk store to draw sequences from (default: synthetic)"
    )
    parser.add_argument("--seconds", type=float, help="timed seconds per loop (default: 12 CPU, 24 CUDA)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved time slices per loop")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps per loop first")
    parser.add_argument("--threads", type=int, help="torch threads (CPU)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (dynamic shapes)")
    parser.add_argument("--peak-tflops", type=float, help="peak for the MFU estimate (default: by GPU name)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    preset = args.preset or ("dnabert" if device.type == "cuda" else "tiny")
    seconds = args.seconds or (24.0 if device.type == "cuda" else 12.0)
    batch_size = args.batch_size or (32 if device.type == "cuda" else 16)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    chunks = store_chunks(args.chunks, args.sequences) if args.chunks else published_chunks(args.sequences, 0)
    lengths = token_lengths(np.array([len(c) for c in chunks]), 6)
    n_batches = len(chunks) // batch_size
    shuffled = np.random.default_rng(1).permutation(len(chunks))[: n_batches * batch_size]
    plain_rows = shuffled.reshape(-1, batch_size)
    # one global batch of every chunk, cut into micro-batches by length as pretraining cuts its global batches
    whole = GlobalBatches(lengths, n_batches * batch_size, seed=1).epoch(0)[0]
    bucketed_rows = np.stack(split_global_batch(whole, 1, n_batches, 0))
    plain = collate_batches(chunks, plain_rows, pad_to=512)
    bucketed = collate_batches(chunks, bucketed_rows, pad_to=8)
    if device.type == "cuda":
        plain = [{k: v.pin_memory() for k, v in b.items()} for b in plain]
        bucketed = [{k: v.pin_memory() for k, v in b.items()} for b in bucketed]
    masked_fraction = sum(len(b["masked_index"]) for b in bucketed) / sum(
        int(b["attention_mask"].sum()) for b in bucketed
    )

    cuda = device.type == "cuda"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    baseline_model = BertForMaskedLM(model_config(preset)).to(device)  # HF defaults, fp32
    ours_model = build_model(preset, seed=0).to(device)
    dense_model = build_model(preset, seed=0).to(device)
    if args.compile:
        ours_model.bert.compile(dynamic=True)
    loops = [
        Loop("baseline (HF, fp32, pad 512, full head)", baseline_model, plain, hf_step, fused=False),
        Loop(
            "ours (bucketed, sparse head)", ours_model, bucketed, make_ours(autocast, sparse=True), fused=cuda
        ),
        Loop("ours with the full head", dense_model, bucketed, make_ours(autocast, sparse=False), fused=cuda),
    ]
    for loop in loops:
        loop.warm_up(args.warmup_steps)
    for _ in range(args.rounds):
        for loop in loops:
            loop.run_for(seconds / args.rounds)

    baseline, ours, dense = loops
    config = ours_model.config
    mean_length = float(lengths.mean())
    flops_per_token = training_flops_per_token(config, mean_length, masked_fraction)
    peak = peak_tflops(device, args.peak_tflops)
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    results = {
        "device": device_name,
        "preset": preset,
        "parameters": count_parameters(ours_model),
        "batch_size": batch_size,
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "baseline_attention": baseline_model.config._attn_implementation,
        "compile": args.compile,
        "mean_tokens_per_sequence": mean_length,
        "masked_fraction": masked_fraction,
        "padding_waste_baseline": padding_waste(plain_rows, lengths, 512),
        "padding_waste_ours": padding_waste(bucketed_rows, lengths, 8),
        "flops_per_token": flops_per_token,
        "peak_tflops": peak,
    }
    for key, loop in (("baseline", baseline), ("ours", ours), ("ours_full_head", dense)):
        results[f"{key}_tokens_per_second"] = loop.tokens_per_second
        results[f"{key}_steps"] = loop.steps
        results[f"{key}_mfu"] = (
            None if peak is None else loop.tokens_per_second * flops_per_token / (peak * 1e12)
        )
    results["speedup_vs_baseline"] = ours.tokens_per_second / baseline.tokens_per_second
    results["sparse_head_speedup"] = ours.tokens_per_second / dense.tokens_per_second

    print(
        f"device: {device_name}; preset {preset} ({results['parameters']:,} parameters), batch {batch_size}"
    )
    print(f"precision (ours): {results['precision']}; baseline attention: {results['baseline_attention']}")
    print(
        f"padding waste: baseline {results['padding_waste_baseline']:.1%}, ours {results['padding_waste_ours']:.1%}"
        f"; masked fraction {masked_fraction:.1%}; mean {mean_length:.0f} tokens per sequence"
    )
    for loop in loops:
        print(
            f"{loop.name:42s} {loop.tokens_per_second:12,.0f} tokens/s  ({loop.steps} steps in {loop.seconds:.1f} s)"
        )
    print(f"ratio ours / baseline: {results['speedup_vs_baseline']:.2f}x")
    print(f"sparse-head speed-up (ours / ours with the full head): {results['sparse_head_speedup']:.2f}x")
    flops_text = f"{flops_per_token / 1e6:.1f} MFLOP per token (6 x matmul params + 12 L h T attention, head on masked)"
    if peak is None:
        print(f"MFU: n/a (no peak known for this device; pass --peak-tflops); {flops_text}")
    else:
        print(
            f"MFU against {peak:.0f} TFLOP/s bf16 dense: ours {results['ours_mfu']:.1%}, "
            f"baseline {results['baseline_mfu']:.1%}; {flops_text}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
