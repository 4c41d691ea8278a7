"""GPU check: does every CUDA path of the pipeline run on this GPU, and how fast? One command, at most 8 minutes.

Sections, in this order, each written to OUT/report.{json,md} as soon as it ends (an interrupted run still
reports what it finished; a section that fails is recorded and the next one runs):

1. environment: torch, CUDA, driver and NCCL versions, GPU name and memory, bf16 support, a bf16 SDPA call.
2. throughput, DNABERT- and LOGO-size: `genemask pretrain` itself, run in this process (_gpu_check_timing.py), at
   the study's micro-batch (config/config.yaml) and at `--batch-size auto`, eager and `--compile`: tokens/s, model
   FLOP utilisation against the GPU's dense bf16 peak, peak GPU memory, checkpoint write time, and host-device
   syncs per training step (`torch.cuda.set_sync_debug_mode`).
3. pretraining stop and resume: `genemask pretrain` (LOGO size) stopped by SIGTERM and run again continues the
   same data order and step count as an uninterrupted run, with finite losses; the model loads with
   `AutoModelForMaskedLM`.
4. fine-tuning: one few-shot cell with `genemask finetune` on the GPU and on the CPU, compared within a tolerance.
5. DDP: with two or more GPUs, `torchrun` pretraining against one GPU: its scaling efficiency.

Then the goal (>= 40% MFU on H100/H200-class GPUs), PASS or FALL SHORT. Without a CUDA GPU it says so in one line
and exits 0. `--device cpu --tiny` runs every section on the CPU with the tiny model in about a minute
(tests/test_gpu_check.py), so the code path never rots. The sizes live in _gpu_check_plan.py, the sections that
run the `genemask` CLI in subprocesses in _gpu_check_cli.py; none of them imports this file.

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
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import torch
from _gpu_check_cli import ddp_check, finetune_check, resume_check  # benchmarks/ is on sys.path
from _gpu_check_plan import Plan
from _gpu_check_timing import throughput

from genemask.estimate import peak_tflops  # the peak table the cost estimate uses too
from genemask.training.device import nccl_version
from genemask.training.torch_install import driver_version

REPO = Path(__file__).resolve().parent.parent

HOPPER_CLASS = ("H100", "H200", "GH200")  # the 40% MFU goal is stated for these
GOAL_MFU = 0.40


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
            (s["results"], loop)
            for s in self.sections
            if s["name"].startswith("throughput-") and s["status"] == "ok"
            for loop in s["results"]["loops"]
        ]
        if rows:
            lines += [
                "",
                "| preset | `genemask pretrain` run | tokens/s | MFU | peak memory | checkpoint write | syncs/step |",
                "|---|---|---|---|---|---|---|",
            ]
            for results, loop in rows:
                mfu = "n/a" if loop["mfu"] is None else f"{loop['mfu']:.1%}"
                memory = "n/a" if loop["peak_memory_gib"] is None else f"{loop['peak_memory_gib']:.1f} GiB"
                write = loop["checkpoint_write_seconds"]
                syncs = results["syncs_per_step"] if loop["key"] == "ours" else None
                lines.append(
                    f"| {results['preset']} | {loop['name']} | {loop['tokens_per_second']:,.0f} | {mfu} | {memory} "
                    f"| {'n/a' if write is None else f'{write:.2f} s'} | {'' if syncs is None else f'{syncs:g}'} |"
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
        "driver": driver_version(),
        "nccl": nccl_version(),
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


def goals(report: Report, tiny: bool) -> list[dict]:
    """The throughput goal, judged on the DNABERT-size section's best run (not on the CPU or the tiny model)."""
    mfu = {"goal": f"DNABERT-size MFU >= {GOAL_MFU:.0%} on H100/H200-class"}
    section = report.section("throughput-dnabert")
    if section is None or section["status"] != "ok":
        not_run = "not judged: " + ("CPU tiny mode" if tiny else "the DNABERT-size section did not finish")
        return [mfu | {"measured": "-", "verdict": not_run}]
    results = section["results"]
    best = next(r for r in results["loops"] if r["key"] == results["best"])
    gpu = results["gpu"]
    if best["mfu"] is None:
        return [mfu | {"measured": "n/a", "verdict": f"not judged: no peak known for {gpu}"}]
    measured = f"{best['mfu']:.1%} ({best['name']})"
    if not any(name in gpu for name in HOPPER_CLASS):
        return [mfu | {"measured": measured, "verdict": f"not judged: {gpu} is not H100/H200-class"}]
    return [mfu | {"measured": measured, "verdict": "PASS" if best["mfu"] >= GOAL_MFU else "FALL SHORT"}]


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
                lambda preset=preset: throughput(preset, args.device, plan, work, time_limit),
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
