"""The GPU check's throughput section: `genemask pretrain` itself (the CLI's own code path, run in this process so
that its memory and host-device syncs can be measured), per preset, at the study's micro-batch and at
`--batch-size auto`, eager and compiled: tokens/s, MFU, peak memory, checkpoint write time, syncs per step."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from _gpu_check_cli import make_chunks, read_metrics
from _gpu_check_plan import Plan

from genemask.estimate import peak_tflops

MASKED_FRACTION = 0.15  # the `random` strategy's masking rate: the share of positions the MLM head sees


class RunTimeout(Exception):
    pass


def accepts_auto_batch() -> bool:
    """Whether this checkout's `genemask pretrain` takes `--batch-size auto`."""
    from genemask.cli import build_parser

    parser = build_parser("pretrain")
    args = ["pretrain", "--chunks", "c", "--out", "o", "--checkpoint-dir", "d", "--batch-size", "auto"]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(args)
    except SystemExit:
        return False
    return True


@contextlib.contextmanager
def compile_backend(backend: str | None) -> Iterator[None]:
    """`--compile` with another backend than inductor (the CPU mode: inductor's C++ build takes minutes)."""
    if backend is None:
        yield
        return
    original = torch.nn.Module.compile

    def with_backend(self, *args, **kwargs):
        return original(self, *args, **{**kwargs, "backend": backend})

    torch.nn.Module.compile = with_backend
    try:
        yield
    finally:
        torch.nn.Module.compile = original


@contextlib.contextmanager
def timed_checkpoint_writes() -> Iterator[list[float]]:
    """Seconds of each checkpoint write of the training loop (its `write_checkpoint`, wrapped while running)."""
    import genemask.training.pretrain as training

    seconds: list[float] = []
    original = training.write_checkpoint

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - began)

    training.write_checkpoint = timed
    try:
        yield seconds
    finally:
        training.write_checkpoint = original


def run_pretrain(args: list[str], log: Path, count_syncs: bool = False) -> dict:
    """`genemask pretrain ARGS` in this process: exit code, stdout, checkpoint write seconds, peak memory, syncs."""
    from genemask.cli import main as genemask_main

    cuda = torch.cuda.is_available() and "cuda" in args
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    output = io.StringIO()
    with (
        timed_checkpoint_writes() as checkpoint_seconds,
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
    ):
        warnings.simplefilter("always")
        if count_syncs:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            code = genemask_main(["pretrain", *args])
        finally:
            if count_syncs:
                torch.cuda.set_sync_debug_mode(0)
    with log.open("a") as handle:
        handle.write("$ genemask pretrain " + " ".join(args) + "\n" + output.getvalue())
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return {
        "exit": code,
        "output": output.getvalue(),
        "checkpoint_seconds": checkpoint_seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "syncs": syncs,
    }


def common_args(chunks: Path, preset: str, device: str, plan: Plan) -> list[str]:
    return [
        "--chunks", str(chunks), "--preset", preset, "--device", device, "--strategy", "random",
        "--eval-chunks", "8", "--warmup", "1", "--workers", str(plan.workers), "--threads", str(plan.threads),
        "--seed", "0",
    ]  # fmt: skip


def timing_run(
    key: str, chunks: Path, preset: str, device: str, plan: Plan, work: Path, batch: str, compiled: bool
) -> dict:
    """One `genemask pretrain` run (checkpoint and evaluation at its end only) and its figures."""
    where = work / f"timing_{preset}_{key}"
    shutil.rmtree(where, ignore_errors=True)
    auto = batch == "auto"
    steps, log_every = (plan.auto_steps, 1) if auto else (plan.timing_steps, plan.timing_log_every)
    global_batch = plan.global_batch if auto else int(batch) * plan.timing_accumulation
    args = [
        *common_args(chunks, preset, device, plan), "--batch-size", batch, "--global-batch", str(global_batch),
        "--steps", str(steps), "--log-every", str(log_every), "--eval-every", str(steps),
        "--checkpoint-every", str(steps), "--out", str(where / "model"), "--checkpoint-dir", str(where / "ckpt"),
    ] + (["--compile"] if compiled else [])  # fmt: skip
    began = time.monotonic()
    with compile_backend(plan.compile_backend if compiled else None):
        run = run_pretrain(args, work / "throughput.log")
    if run["exit"] != 0:
        raise RuntimeError(f"genemask pretrain exited {run['exit']}: {run['output'].strip()[-300:]}")
    rows = [r for r in read_metrics(where / "model" / "metrics.csv") if r["tokens_per_second"] != ""]
    rates = [float(r["tokens_per_second"]) for r in rows]
    steady = rates[1:] or rates  # the first row holds start-up and compilation
    layout = re.search(r"up to (\d+) x (\d+) accumulation", run["output"])
    tokens = float(rows[-1]["tokens"])
    shutil.rmtree(where, ignore_errors=True)
    return {
        "key": key,
        "name": f"micro-batch {layout[1] if layout else batch}{' (auto)' if auto else ''}, "
        + ("compiled" if compiled else "eager"),
        "micro_batch": int(layout[1]) if layout else None,
        "accumulation": int(layout[2]) if layout else None,
        "compiled": compiled,
        "steps": steps,
        "tokens_per_second": float(np.median(steady)),
        "mean_tokens_per_sequence": tokens / (steps * global_batch),
        "peak_memory_gib": run["peak_memory_gib"],
        "checkpoint_write_seconds": run["checkpoint_seconds"][-1] if run["checkpoint_seconds"] else None,
        "wall_seconds": time.monotonic() - began,
    }


def syncs_per_step(chunks: Path, preset: str, plan: Plan, work: Path) -> float:
    """Host-device syncs of one training step: two eager runs at the study micro-batch, differenced, so that
    set-up and the final evaluation, log row and checkpoint cancel out."""
    counts = []
    for steps in plan.sync_steps:
        where = work / f"syncs_{preset}_{steps}"
        shutil.rmtree(where, ignore_errors=True)
        args = [
            *common_args(chunks, preset, "cuda", plan), "--batch-size", str(plan.micro_batch),
            "--global-batch", str(plan.micro_batch * plan.timing_accumulation), "--steps", str(steps),
            "--log-every", str(steps), "--eval-every", str(steps), "--checkpoint-every", str(steps),
            "--out", str(where / "model"), "--checkpoint-dir", str(where / "ckpt"),
        ]  # fmt: skip
        run = run_pretrain(args, work / "syncs.log", count_syncs=True)
        if run["exit"] != 0:
            raise RuntimeError(f"genemask pretrain exited {run['exit']}")
        counts.append(run["syncs"])
        shutil.rmtree(where, ignore_errors=True)
    return (counts[1] - counts[0]) / (plan.sync_steps[1] - plan.sync_steps[0])


def throughput(preset: str, device: str, plan: Plan, work: Path, time_limit) -> dict:
    """Every timing run of one preset, each under its own cap: a slow compiler costs the compiled figures only."""
    from genemask.training.models import model_config, training_flops_per_token

    chunks = make_chunks(work, plan)
    cuda = device == "cuda"
    gpu = torch.cuda.get_device_name(0) if cuda else None
    peak, _ = peak_tflops(gpu)
    runs = [("ours", str(plan.micro_batch), False), ("ours_compiled", str(plan.micro_batch), True)]
    auto_reason = (
        None if accepts_auto_batch() else "this checkout's `genemask pretrain` has no --batch-size auto"
    )
    if auto_reason is None:
        runs += [("auto", "auto", False), ("auto_compiled", "auto", True)]
    loops, not_run = [], {}
    syncs, sync_note = None, "not measured on the CPU"
    for key, batch, compiled in runs:
        try:
            with time_limit(plan.compiled_cap if compiled else plan.eager_cap):
                loops.append(timing_run(key, chunks, preset, device, plan, work, batch, compiled))
        except Exception as error:  # a failed or slow run is a result here; the next run goes on
            not_run[key] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        if compiled:
            torch._dynamo.reset()
        if (
            key == "ours" and cuda
        ):  # right after the eager run: before a slow compiler can eat the section's time
            try:
                with time_limit(plan.eager_cap):
                    syncs, sync_note = syncs_per_step(chunks, preset, plan, work), None
            except Exception as error:
                sync_note = f"{type(error).__name__}: {error}".splitlines()[0][:200]
    if auto_reason is not None:
        not_run |= {"auto": f"skipped: {auto_reason}", "auto_compiled": f"skipped: {auto_reason}"}
    if not loops:
        raise RuntimeError("; ".join(f"{k}: {v}" for k, v in not_run.items()))
    for loop in loops:
        flops = training_flops_per_token(
            model_config(preset), loop["mean_tokens_per_sequence"], MASKED_FRACTION
        )
        loop["mfu"] = None if peak is None else loop["tokens_per_second"] * flops / (peak * 1e12)
    best = max(loops, key=lambda loop: loop["tokens_per_second"])
    mfu = "" if best["mfu"] is None else f", MFU {best['mfu']:.1%}"
    memory = "" if best["peak_memory_gib"] is None else f", peak {best['peak_memory_gib']:.1f} GiB"
    return {
        "preset": preset,
        "gpu": gpu,
        "batch_size": plan.micro_batch,  # `genemask estimate` reads "ours"/"ours_compiled" at this micro-batch
        "peak_tflops": peak,
        "loops": loops,
        "not_run": not_run,
        "syncs_per_step": syncs,
        "syncs_note": sync_note,
        "best": best["key"],
        "summary": f"best {best['name']}: {best['tokens_per_second']:,.0f} tokens/s{mfu}{memory}"
        + ("" if syncs is None else f"; {syncs:g} host-device syncs per step")
        + (f"; not run: {', '.join(not_run)}" if not_run else ""),
    }
