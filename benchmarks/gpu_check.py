"""GPU check: does every CUDA path of the pipeline run on this GPU, and how fast? One command, at most 8 minutes.

Sections, in this order, each written to OUT/report.{json,md} as soon as it ends (an interrupted run still
reports what it finished; a section that fails is recorded and the next one runs):

1. environment: torch, CUDA and driver versions, GPU name and memory, bf16 support, a bf16 SDPA call.
2. throughput, LOGO- and DNABERT-size: tokens/s of our step (length buckets, sparse head, bf16 autocast, SDPA,
   fused AdamW), with and without `torch.compile`, against the plain HF fp32 loop padded to 512, interleaved in
   the same run (benchmarks/pretrain_throughput.py's loops); model FLOP utilisation against the GPU's peak.
3. pretraining stop and resume: `genemask pretrain` (LOGO size) stopped by SIGTERM and run again continues the
   same data order and step count as an uninterrupted run, with finite losses; the model loads with
   `AutoModelForMaskedLM`.
4. fine-tuning: one few-shot cell with `genemask finetune` on the GPU and on the CPU, compared within a tolerance.
5. DDP: with two or more GPUs, `torchrun` pretraining against one GPU: its scaling efficiency.

Then the goals (DNABERT-size step >= 3x the plain HF loop; >= 40% MFU on H100/H200-class GPUs), PASS or FALL SHORT.
Without a CUDA GPU it says so in one line and exits 0. `--device cpu --tiny` runs every section on the CPU with the
tiny model in about a minute (tests/test_gpu_check.py), so the code path never rots. The sections that
run the `genemask` CLI live in _gpu_check_cli.py.

    python benchmarks/gpu_check.py                                   # make gpu-check: one GPU, <= 8 minutes
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gc  # the same code path on the CPU
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from _gpu_check_cli import ddp_check, finetune_check, resume_check  # benchmarks/ is on sys.path

from genemask.estimate import peak_tflops  # the peak table the cost estimate uses too

REPO = Path(__file__).resolve().parent.parent

HOPPER_CLASS = ("H100", "H200", "GH200")  # the 40% MFU goal is stated for these
GOAL_SPEEDUP, GOAL_MFU = 3.0, 0.40


@dataclass(frozen=True)
class Plan:
    """Sizes and time caps of one check; `full()` is the 8-minute GPU check, `tiny()` the CPU test of the same path."""

    presets: tuple[str, ...] = ("logo", "dnabert")
    batch_size: int = 32
    sequences: int = 1024
    slice_seconds: dict | None = None  # per preset: seconds per loop per round
    rounds: int = 3
    warm_up_steps: int = 3  # compiled: the first shapes, then the dynamic-shape recompile
    compile_cap: float = 75.0  # seconds for torch.compile's warm-up steps, per preset
    compile_backend: str = "inductor"
    pretrain_preset: str = "logo"
    pretrain_steps: int = 300
    pretrain_batch: int = 16
    stop_at_step: int = 5
    genome_length: int = 600_000
    chunk_max_length: int = 511  # nt; the published chunk law
    finetune_shots: int = 50  # enough to learn the planted motif, so that both sides converge and compare
    finetune_test: int = 400
    finetune_epochs: int = 10
    finetune_lr: float = 5e-4
    ddp_preset: str = "dnabert"
    ddp_steps: int = 12
    threads: int = 8  # torch CPU threads, here and in the `genemask` subprocesses
    budget_seconds: float = 450.0  # from after the torch import: 8 minutes in all, start-up included
    caps: dict | None = None  # seconds per section (throughput: per preset)

    @classmethod
    def full(cls) -> Plan:
        return cls(
            slice_seconds={"logo": 3.0, "dnabert": 6.0},
            caps={"environment": 30, "logo": 110, "dnabert": 150, "resume": 100, "finetune": 80, "ddp": 90},
        )

    @classmethod
    def tiny(cls) -> Plan:
        return cls(
            presets=("tiny",),
            batch_size=8,
            sequences=48,
            slice_seconds={"tiny": 0.25},
            rounds=2,
            warm_up_steps=2,
            compile_backend="eager",  # inductor's C++ build takes minutes on a small CPU; eager still traces
            pretrain_preset="tiny",
            pretrain_steps=12,
            pretrain_batch=4,
            stop_at_step=3,
            genome_length=20_000,
            chunk_max_length=64,
            finetune_shots=5,
            finetune_test=40,
            finetune_epochs=2,
            ddp_preset="tiny",
            ddp_steps=4,
            threads=1,  # more than the free cores makes torch's CPU kernels spin and crawl
            budget_seconds=300.0,
            caps={"environment": 30, "tiny": 60, "resume": 120, "finetune": 90, "ddp": 60},
        )


class Report:
    """Sections so far, rewritten to report.json and report.md after each one."""

    def __init__(self, out: Path, meta: dict, deadline: float) -> None:
        self.out, self.meta, self.deadline = out, meta, deadline
        self.sections: list[dict] = []
        self.goals: list[dict] = []
        self.finished = False
        out.mkdir(parents=True, exist_ok=True)

    def add(self, section: dict) -> None:
        self.sections.append(section)
        self.write()
        results = section.get("summary") or section.get("error") or section.get("reason", "")
        print(
            f"[{section['status']:>7}] {section['title']} ({section['seconds']:.0f} s): {results}", flush=True
        )

    def section(self, name: str) -> dict | None:
        return next((s for s in self.sections if s["name"] == name), None)

    def as_json(self) -> dict:
        return {**self.meta, "finished": self.finished, "sections": self.sections, "goals": self.goals}

    def write(self) -> None:
        for name, text in (
            ("report.json", json.dumps(self.as_json(), indent=2) + "\n"),
            ("report.md", self.markdown()),
        ):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out / name)

    def markdown(self) -> str:
        lines = [
            f"# GPU check: {self.meta['device_name']}",
            "",
            f"{self.meta['started']}, mode {self.meta['mode']}" + ("" if self.finished else " (unfinished)"),
            "",
            "| section | status | seconds | result |",
            "|---|---|---|---|",
        ]
        for s in self.sections:
            result = s.get("summary") or s.get("error") or s.get("reason", "")
            result = result.replace("|", "\\|")  # a pipe in a message would split the cell
            lines.append(f"| {s['title']} | {s['status']} | {s['seconds']:.0f} | {result} |")
        rows = [
            (s["results"]["preset"], loop)
            for s in self.sections
            if s["name"].startswith("throughput-") and s["status"] == "ok"
            for loop in s["results"]["loops"]
        ]
        if rows:
            lines += ["", "| preset | loop | tokens/s | x plain HF | MFU |", "|---|---|---|---|---|"]
            for preset, loop in rows:
                mfu = "n/a" if loop["mfu"] is None else f"{loop['mfu']:.1%}"
                lines.append(
                    f"| {preset} | {loop['name']} | {loop['tokens_per_second']:,.0f} | "
                    f"{loop['vs_baseline']:.2f} | {mfu} |"
                )
        if self.goals:
            lines += ["", "| goal | measured | verdict |", "|---|---|---|"]
            lines += [f"| {g['goal']} | {g['measured']} | {g['verdict']} |" for g in self.goals]
        return "\n".join(lines) + "\n"


class SectionTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise SectionTimeout in the main thread after `seconds` (children are killed by `run_cli`'s cleanup).

    Nests: an inner limit never outlasts the outer one, and the outer one keeps counting after it."""

    def expire(_signum: int, _frame: object) -> None:
        raise SectionTimeout(f"over its {seconds:g} s cap")

    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    began = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(min(seconds, outer_left or math.inf), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - began), 0.01))


def run_section(report: Report, name: str, title: str, cap: float, body: Callable[[], dict]) -> None:
    """Run one section under its cap and the remaining budget; record ok / fail / error / timeout / skipped."""
    remaining = report.deadline - time.monotonic()
    began = time.monotonic()
    section: dict = {"name": name, "title": title}
    if remaining < 5:
        section |= {"status": "skipped", "reason": "the time budget is spent", "seconds": 0.0}
        report.add(section)
        return
    try:
        with time_limit(min(cap, remaining)):
            results = body()
        section["status"] = results.pop("status", "ok")
        section["summary"] = results.pop("summary", "")
        if section["status"] == "skipped":
            section["reason"] = results.pop("reason", "")
        section["results"] = results
    except SectionTimeout as error:
        section |= {"status": "timeout", "error": f"stopped: {error}"}
    except Exception as error:  # a broken section is reported, and the next one runs
        section |= {
            "status": "error",
            "error": f"{type(error).__name__}: {error}".splitlines()[0][:300],
            "traceback": traceback.format_exc()[-4000:],
        }
    section["seconds"] = time.monotonic() - began
    report.add(section)
    gc.collect()  # what a failed section left on the GPU goes before the next one
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------------------
# Sections


def nvidia_driver() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def environment(device_type: str) -> dict:
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda_build": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
    }
    if device_type != "cuda":
        info |= {"gpu": None, "torch_threads": torch.get_num_threads(), "bf16_supported": False}
        return info | {"summary": f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"}
    props = torch.cuda.get_device_properties(0)
    peak, note = peak_tflops(props.name)
    q = torch.randn(2, 4, 64, 32, device="cuda", dtype=torch.bfloat16)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, q, q)  # the kernel our model's attention uses
    info |= {
        "gpu": props.name,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "compute_capability": f"{props.major}.{props.minor}",
        "driver": nvidia_driver(),
        "cudnn": torch.backends.cudnn.version(),
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "bf16_sdpa_finite": bool(torch.isfinite(sdpa).all()),
        "peak_bf16_tflops": peak,
        "peak_note": note,
    }
    status = "ok" if info["bf16_supported"] and info["bf16_sdpa_finite"] else "fail"
    summary = (
        f"{props.name} x{info['gpu_count']}, {info['gpu_memory_gib']} GiB, CUDA {torch.version.cuda}, "
        f"driver {info['driver']}, torch {torch.__version__}, bf16 {'yes' if info['bf16_supported'] else 'NO'}"
    )
    return info | {"status": status, "summary": summary}


def throughput(preset: str, device_type: str, plan: Plan) -> dict:
    """The plain HF loop, ours and ours compiled (pretrain_throughput.py's loops), interleaved in time slices."""
    import pretrain_throughput as bench  # benchmarks/ is on sys.path: this script lives there
    from transformers import BertForMaskedLM

    # The only direct imports from genemask.training: this section builds models and batches in-process.
    # Everything else (pretraining, resume, fine-tuning, DDP) goes through the `genemask` CLI in subprocesses.
    from genemask.training.data import GlobalBatches, padding_waste, split_global_batch, token_lengths
    from genemask.training.models import build_model, count_parameters, model_config, training_flops_per_token

    device = torch.device(device_type)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    chunks = bench.published_chunks(plan.sequences, 0)
    lengths = token_lengths(np.array([len(c) for c in chunks]), 6)
    n_batches = len(chunks) // plan.batch_size
    plain_rows = np.random.default_rng(1).permutation(len(chunks))[: n_batches * plan.batch_size]
    plain_rows = plain_rows.reshape(-1, plan.batch_size)
    # one global batch of every chunk, cut into micro-batches by length as pretraining cuts its global batches
    whole = GlobalBatches(lengths, n_batches * plan.batch_size, seed=1).epoch(0)[0]
    bucketed_rows = np.stack(split_global_batch(whole, 1, n_batches, 0))
    plain = bench.collate_batches(chunks, plain_rows, pad_to=512)
    bucketed = bench.collate_batches(chunks, bucketed_rows, pad_to=8)
    if cuda:
        plain = [{k: v.pin_memory() for k, v in b.items()} for b in plain]
        bucketed = [{k: v.pin_memory() for k, v in b.items()} for b in bucketed]
    masked_fraction = sum(len(b["masked_index"]) for b in bucketed) / sum(
        int(b["attention_mask"].sum()) for b in bucketed
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    ours_step = bench.make_ours(autocast, sparse=True)
    compiled_model = build_model(preset, seed=0).to(device)
    compiled_model.bert.compile(dynamic=True, backend=plan.compile_backend)
    loops = {
        "baseline": bench.Loop(
            "plain HF, fp32, pad 512",
            BertForMaskedLM(model_config(preset)).to(device),
            plain,
            bench.hf_step,
            False,
        ),
        "ours": bench.Loop("ours", build_model(preset, seed=0).to(device), bucketed, ours_step, cuda),
        "ours_compiled": bench.Loop("ours + torch.compile", compiled_model, bucketed, ours_step, cuda),
    }
    warm_seconds, compile_error = {}, None
    for key, loop in list(loops.items()):
        began = time.perf_counter()
        try:
            # Compiling: the first shapes, then the dynamic-shape recompile, under its own cap, so that a slow
            # compiler costs the compiled numbers only.
            with time_limit(plan.compile_cap) if key == "ours_compiled" else contextlib.nullcontext():
                loop.warm_up(plan.warm_up_steps)
        except Exception as error:  # a compiler failure or timeout is a result here, not the section's end
            if key != "ours_compiled":
                raise
            compile_error = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            del loops[key]
            torch._dynamo.reset()
            continue
        warm_seconds[key] = time.perf_counter() - began
    for _ in range(plan.rounds):
        for loop in loops.values():
            loop.run_for(plan.slice_seconds[preset])
    mean_length = float(lengths.mean())
    flops_per_token = training_flops_per_token(compiled_model.config, mean_length, masked_fraction)
    gpu = torch.cuda.get_device_name(device) if cuda else None
    peak, _ = peak_tflops(gpu)
    baseline_rate = loops["baseline"].tokens_per_second
    rows = [
        {
            "key": key,
            "name": loop.name,
            "tokens_per_second": loop.tokens_per_second,
            "steps": loop.steps,
            "warm_up_seconds": warm_seconds[key],
            "vs_baseline": loop.tokens_per_second / baseline_rate,
            "mfu": None if peak is None else loop.tokens_per_second * flops_per_token / (peak * 1e12),
        }
        for key, loop in loops.items()
    ]
    best = max(rows[1:], key=lambda row: row["tokens_per_second"])
    results = {
        "preset": preset,
        "gpu": gpu,
        "parameters": count_parameters(compiled_model),
        "batch_size": plan.batch_size,
        "compile_backend": plan.compile_backend,
        "mean_tokens_per_sequence": mean_length,
        "masked_fraction": masked_fraction,
        "padding_waste_baseline": padding_waste(plain_rows, lengths, 512),
        "padding_waste_ours": padding_waste(bucketed_rows, lengths, 8),
        "flops_per_token": flops_per_token,
        "peak_tflops": peak,
        "loops": rows,
        "best": best["key"],
        "compile_error": compile_error,
    }
    mfu = "" if best["mfu"] is None else f", MFU {best['mfu']:.1%}"
    results["summary"] = (
        f"{best['name']}: {best['tokens_per_second']:,.0f} tokens/s, {best['vs_baseline']:.2f}x plain HF{mfu}"
        + ("" if compile_error is None else f"; torch.compile failed ({compile_error})")
    )
    del loops, compiled_model
    if cuda:
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    return results


def goals(report: Report, tiny: bool) -> list[dict]:
    """The issue's throughput goals, judged on the DNABERT-size section (not on CPU or the tiny model)."""
    speed = {"goal": f"DNABERT-size step >= {GOAL_SPEEDUP:.0f}x the plain HF loop"}
    mfu = {"goal": f"DNABERT-size MFU >= {GOAL_MFU:.0%} on H100/H200-class"}
    section = report.section("throughput-dnabert")
    if section is None or section["status"] != "ok":
        not_run = "not judged: " + ("CPU tiny mode" if tiny else "the DNABERT-size section did not finish")
        return [speed | {"measured": "-", "verdict": not_run}, mfu | {"measured": "-", "verdict": not_run}]
    results = section["results"]
    best = next(r for r in results["loops"] if r["key"] == results["best"])
    gpu, ok = results["gpu"], {True: "PASS", False: "FALL SHORT"}
    speed |= {
        "measured": f"{best['vs_baseline']:.2f}x ({best['name']})",
        "verdict": ok[best["vs_baseline"] >= GOAL_SPEEDUP],
    }
    if best["mfu"] is None:
        mfu |= {"measured": "n/a", "verdict": f"not judged: no peak known for {gpu}"}
    elif not any(name in gpu for name in HOPPER_CLASS):
        mfu |= {"measured": f"{best['mfu']:.1%}", "verdict": f"not judged: {gpu} is not H100/H200-class"}
    else:
        mfu |= {"measured": f"{best['mfu']:.1%}", "verdict": ok[best["mfu"] >= GOAL_MFU]}
    return [speed, mfu]


# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cuda (the check) or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny model and data: the code path in seconds")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check", help="report directory")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one, removed)")
    parser.add_argument("--budget-minutes", type=float, help="whole-run budget (default: 8 on the GPU)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"gpu-check: no CUDA GPU here (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
            "nothing checked. Run it on a GPU node, or `--device cpu --tiny` for the code path."
        )
        return 0
    plan = Plan.tiny() if args.tiny else Plan.full()
    if args.budget_minutes:
        plan = replace(plan, budget_seconds=60 * args.budget_minutes)
    torch.set_num_threads(min(plan.threads, torch.get_num_threads()))
    started = time.monotonic()
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    device_name = torch.cuda.get_device_name(0) if gpus else f"cpu ({os.cpu_count()} cores)"
    meta = {
        "device_name": device_name,
        "device": args.device,
        "mode": "tiny" if args.tiny else "full",
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "budget_seconds": plan.budget_seconds,
    }
    report = Report(args.out, meta, deadline=started + plan.budget_seconds)
    caps = plan.caps
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check_")))
        work.mkdir(parents=True, exist_ok=True)
        run_section(
            report, "environment", "environment", caps["environment"], lambda: environment(args.device)
        )
        for preset in plan.presets:
            run_section(
                report,
                f"throughput-{preset}",
                f"throughput, {preset}",
                caps[preset],
                lambda preset=preset: throughput(preset, args.device, plan),
            )
        report.goals = goals(report, args.tiny)
        report.write()
        title = f"pretraining stop (SIGTERM) and resume, {plan.pretrain_preset}"
        run_section(report, "resume", title, caps["resume"], lambda: resume_check(work, args.device, plan))
        title = f"fine-tuning cell, {args.device} against cpu"
        run_section(
            report, "finetune", title, caps["finetune"], lambda: finetune_check(work, args.device, plan)
        )
        title = "DDP (torchrun) scaling"
        run_section(report, "ddp", title, caps["ddp"], lambda: ddp_check(work, args.device, plan, gpus))
    report.meta["wall_seconds"] = time.monotonic() - started
    report.finished = True
    report.write()
    print()
    print(report.markdown())
    print(f"report: {args.out / 'report.md'} and report.json ({report.meta['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
