"""The GPU check's sections that drive the `genemask` CLI in subprocesses (benchmarks/gpu_check.py runs them):
pretraining stopped by SIGTERM and resumed, a fine-tuning cell on the device against the CPU, and DDP scaling.

Through the CLI, not the training modules' internals, so that they check what a pipeline run does and survive
refactoring of the package.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import genemask

if TYPE_CHECKING:
    from _gpu_check_plan import Plan

REPO = Path(__file__).resolve().parent.parent
EXIT_RESUMABLE = 75  # `genemask pretrain` stopped with a checkpoint
FINETUNE_TOLERANCE = {"accuracy": 0.05, "auc": 0.05}  # absolute; bf16 on GPU against fp32 on CPU


def cli_env() -> dict:
    """The package this script imported, first on the path of every `genemask` subprocess."""
    env = dict(os.environ)
    package_root = str(Path(genemask.__file__).resolve().parent.parent)  # the genemask imported here
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


def run_cli(
    args: list[str], log: Path, on_line: Callable[[str, subprocess.Popen], None] | None = None
) -> int:
    """Run `python -m genemask ARGS` (or a module given as ['-m', ...]), stdout+stderr to `log`; return its code."""
    command = [sys.executable, *(args if args[0] == "-m" else ["-m", "genemask", *args])]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env(), cwd=REPO
    )
    try:
        with log.open("a") as out:
            out.write("$ " + " ".join(command) + "\n")
            for line in process.stdout:
                out.write(line)
                if on_line is not None:
                    on_line(line, process)
        return process.wait()
    finally:
        if process.poll() is None:  # a section timeout: leave no process behind
            process.kill()
            process.wait()


def make_chunks(work: Path, plan: Plan) -> Path:
    """A random genome cut into a chunk store (the published chunk-length law), shared by the CLI sections."""
    from genemask.genome.chunking import ChunkingOptions, chunk_genome

    store = work / "chunks"
    if not (store / "summary.json").exists():
        bases = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(0).integers(0, 4, plan.genome_length)]
        fasta = work / "genome.fa"
        fasta.write_text(">random\n" + bases.tobytes().decode() + "\n")
        chunk_genome(fasta, store, ChunkingOptions(seed=0, max_length=plan.chunk_max_length))
    return store


def read_metrics(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def resume_check(work: Path, device_type: str, plan: Plan) -> dict:
    chunks = make_chunks(work, plan)
    steps = plan.pretrain_steps
    common = [
        "pretrain", "--chunks", str(chunks), "--preset", plan.pretrain_preset, "--steps", str(steps),
        "--batch-size", str(plan.pretrain_batch), "--global-batch", str(2 * plan.pretrain_batch),
        "--warmup", "5", "--eval-every", str(steps), "--eval-chunks", "32", "--checkpoint-every", str(steps),
        "--log-every", "1", "--device", device_type, "--workers", "1", "--threads", str(plan.threads), "--seed", "0",
    ]  # fmt: skip
    log = work / "pretrain.log"
    reference, stopped = work / "reference", work / "stopped"
    for old_run in (reference, stopped):  # a reused --work: start afresh, not from its checkpoints
        shutil.rmtree(old_run, ignore_errors=True)
    code = run_cli(
        [*common, "--out", str(reference / "model"), "--checkpoint-dir", str(reference / "ckpt")], log
    )
    if code != 0:
        return {"status": "fail", "summary": f"uninterrupted run exited {code} (see {log})"}
    signalled: list[int] = []

    def stop_once(line: str, process: subprocess.Popen) -> None:
        match = re.match(r"step (\d+)/", line)
        if match and not signalled and int(match.group(1)) >= plan.stop_at_step:
            process.send_signal(signal.SIGTERM)
            signalled.append(int(match.group(1)))

    stopped_args = [*common, "--out", str(stopped / "model"), "--checkpoint-dir", str(stopped / "ckpt")]
    first = run_cli(stopped_args, log, stop_once)
    checkpoints = sorted(p.name for p in (stopped / "ckpt").glob("step-*"))
    second = run_cli(stopped_args, log)
    results: dict = {"first_exit": first, "checkpoints_after_stop": checkpoints, "second_exit": second}
    if first != EXIT_RESUMABLE or second != 0:
        return results | {
            "status": "fail",
            "summary": f"stopped run exited {first} (expected {EXIT_RESUMABLE}), resumed run {second} (see {log})",
        }
    ref_rows = read_metrics(reference / "model" / "metrics.csv")
    rows = read_metrics(stopped / "model" / "metrics.csv")
    train = [r for r in rows if r["train_loss"] != ""]
    losses = np.array([float(r["train_loss"]) for r in train] + [float(rows[-1]["valid_loss"])])
    ref_losses = np.array([float(r["train_loss"]) for r in ref_rows if r["train_loss"] != ""])
    results |= {
        "stopped_at_step": int(checkpoints[-1].split("-")[1]) if checkpoints else None,
        "steps_logged": [int(r["step"]) for r in train] == list(range(1, steps + 1)),
        "same_data_order": [(r["step"], r["tokens"], r["padding_waste"]) for r in rows]
        == [(r["step"], r["tokens"], r["padding_waste"]) for r in ref_rows],
        "losses_finite": bool(np.isfinite(losses).all()),
        "max_loss_difference_vs_uninterrupted": float(np.abs(losses[:-1] - ref_losses).max())
        if len(ref_losses) == len(losses) - 1
        else None,
    }
    import torch
    from transformers import AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModelForMaskedLM.from_pretrained(stopped / "model").to(device_type).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[2, 7, 8, 9, 3]], device=device_type)).logits
    results["automodel_loads"] = type(model).__name__
    results["automodel_logits_finite"] = bool(torch.isfinite(logits).all())
    checks = ("steps_logged", "same_data_order", "losses_finite", "automodel_logits_finite")
    failed = [name for name in checks if not results[name]]
    results["status"] = "fail" if failed else "ok"
    results["summary"] = (
        f"SIGTERM at step {signalled[0] if signalled else '?'}, checkpoint {results['stopped_at_step']}, "
        f"resumed to {steps}: " + (f"FAILED {', '.join(failed)}" if failed else "same data order and steps, finite "
        f"losses (max |loss - uninterrupted| {results['max_loss_difference_vs_uninterrupted']:.2g}), loads as "
        f"{results['automodel_loads']}")
    )  # fmt: skip
    return results


def synthetic_task(work: Path, plan: Plan) -> tuple[Path, Path]:
    """A 2-class 70-nt task: positives carry a TATA box at a random place. Raw `sequence<TAB>label` TSVs."""
    rng = np.random.default_rng(7)

    def rows(per_class: int) -> list[str]:
        out = []
        for label in (0, 1) * per_class:
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 70)].tobytes().decode()
            if label:
                at = int(rng.integers(0, 62))
                seq = seq[:at] + "TATAAAAG" + seq[at + 8 :]
            out.append(f"{seq}\t{label}\n")
        return out

    train, test = work / "task_train.tsv", work / "task_test.tsv"
    train.write_text("sequence\tlabel\n" + "".join(rows(plan.finetune_shots)))
    test.write_text("sequence\tlabel\n" + "".join(rows(plan.finetune_test // 2)))
    return train, test


def finetune_check(work: Path, device_type: str, plan: Plan) -> dict:
    train, test = synthetic_task(work, plan)
    pretrained = work / "stopped" / "model"
    model = ["--model", str(pretrained)] if (pretrained / "config.json").exists() else [
        "--model", plan.pretrain_preset, "--random-init"]  # fmt: skip
    records = {}
    for label, side in (("device", device_type), ("cpu", "cpu")):
        out = work / f"finetune_{label}.json"
        began = time.monotonic()
        code = run_cli(
            [
                "finetune", *model, "--train", str(train), "--test", str(test), "--out", str(out),
                "--task", "synthetic-tata", "--shots", str(plan.finetune_shots), "--epochs",
                str(plan.finetune_epochs), "--lr", str(plan.finetune_lr), "--device", side, "--threads", str(plan.threads), "--seed", "0",
            ],
            work / "finetune.log",
        )  # fmt: skip
        if code != 0:
            return {
                "status": "fail",
                "summary": f"fine-tuning on {side} exited {code} (see {work / 'finetune.log'})",
            }
        record = json.loads(out.read_text())
        record["wall_seconds"] = time.monotonic() - began
        records[label] = record
    device, cpu = records["device"], records["cpu"]
    differences = {
        m: abs((device["metrics"][m] or 0.0) - (cpu["metrics"][m] or 0.0)) for m in FINETUNE_TOLERANCE
    }
    within = all(differences[m] <= tolerance for m, tolerance in FINETUNE_TOLERANCE.items())
    tolerance_text = " and ".join(f"{m} within {t}" for m, t in FINETUNE_TOLERANCE.items())
    keep = (
        "metrics",
        "epoch_losses",
        "device",
        "n_train",
        "n_test",
        "steps",
        "train_seconds",
        "eval_seconds",
    )
    return {
        "status": "ok" if within else "fail",
        "model": model[1],
        "tolerance": FINETUNE_TOLERANCE,
        "differences": differences,
        **{side: {key: r[key] for key in (*keep, "wall_seconds")} for side, r in records.items()},
        "summary": (
            f"{device['device']} accuracy {device['metrics']['accuracy']:.3f} auc {device['metrics']['auc']:.3f}, "
            f"cpu {cpu['metrics']['accuracy']:.3f} / {cpu['metrics']['auc']:.3f}: "
            + ("agree: " if within else "DISAGREE: ")
            + tolerance_text
        ),
    }


def median_rate(rows: list[dict]) -> float:
    """Median tokens/s over the logged steps, the first two (start-up, compile, allocator) left out."""
    rates = [float(r["tokens_per_second"]) for r in rows if r["tokens_per_second"] != ""][2:]
    return float(np.median(rates)) if rates else math.nan


def ddp_check(work: Path, device_type: str, plan: Plan, gpus: int) -> dict:
    if device_type != "cuda":
        return {"status": "skipped", "reason": "CPU mode: DDP runs on two or more GPUs only"}
    if gpus < 2:
        return {"status": "skipped", "reason": f"needs two or more GPUs, this machine has {gpus}"}
    chunks = make_chunks(work, plan)
    batch = 16
    common = [
        "pretrain", "--chunks", str(chunks), "--preset", plan.ddp_preset, "--steps", str(plan.ddp_steps),
        "--batch-size", str(batch), "--global-batch", str(batch * gpus), "--eval-every", str(plan.ddp_steps),
        "--eval-chunks", "32", "--checkpoint-every", str(plan.ddp_steps), "--log-every", "1", "--device", "cuda",
        "--workers", "2",
    ]  # fmt: skip
    log, rates = work / "ddp.log", {}
    for world in (1, gpus):
        where = work / f"ddp{world}"
        shutil.rmtree(where, ignore_errors=True)
        args = [*common, "--out", str(where / "model"), "--checkpoint-dir", str(where / "ckpt")]
        if world > 1:
            args = [
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(world),
                "-m",
                "genemask",
                *args,
            ]
        code = run_cli(args, log)
        if code != 0:
            return {"status": "fail", "summary": f"{world}-GPU run exited {code} (see {log})"}
        rates[world] = median_rate(read_metrics(where / "model" / "metrics.csv"))
    efficiency = rates[gpus] / (gpus * rates[1])
    return {
        "gpus": gpus,
        "preset": plan.ddp_preset,
        "tokens_per_second": {str(k): v for k, v in rates.items()},
        "scaling_efficiency": efficiency,
        "summary": (
            f"{plan.ddp_preset}, global batch {batch * gpus}: 1 GPU {rates[1]:,.0f} tokens/s, {gpus} GPUs "
            f"{rates[gpus]:,.0f} tokens/s, scaling efficiency {efficiency:.0%}"
        ),
    }
