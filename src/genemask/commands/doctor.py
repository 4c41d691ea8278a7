"""`genemask doctor`: this machine as a training job sees it, on one screen (login or compute node, GPU or not)."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="print host, GPUs, torch, CUDA, driver, NCCL and bf16, and whether torch's build suits the driver",
        description=(
            "Print what a training job's log starts with (host, GPUs visible, torch, its CUDA build, the NVIDIA "
            "driver, NCCL, bf16), whether the installed torch build can run on this driver, and which build "
            "`make setup` would install here. Never fails: exit 0 with or without a GPU."
        ),
    )
    parser.set_defaults(func=run)


def build_verdict(torch_cuda: str | None, driver: str | None, available: bool) -> str:
    """Whether the installed torch build fits this machine's driver, in one line."""
    from genemask.training.torch_install import driver_major, min_driver_for

    if torch_cuda is None:
        if driver is None:
            return "torch is the CPU build and there is no NVIDIA driver: right for a CPU node"
        return f"torch is a CPU build but driver {driver} is here: `make setup` installs a CUDA build for it"
    if driver is None:
        return (
            f"torch is a CUDA {torch_cuda} build but there is no NVIDIA driver (a login node?): GPU jobs only"
        )
    needed, major = min_driver_for(torch_cuda), driver_major(driver)
    if needed is not None and major is not None and major < needed:
        return f"MISMATCH: torch's CUDA {torch_cuda} needs driver >= {needed}, this one is {driver}: `make setup`"
    state = "CUDA usable" if available else "but CUDA is NOT usable (see `--device cuda`'s message)"
    return f"torch's CUDA {torch_cuda} build suits driver {driver}: {state}"


def run(args: argparse.Namespace) -> int:
    try:
        import torch

        from genemask.training.device import environment, header_lines
        from genemask.training.torch_install import NoBuild, choose, driver_version

        facts = environment()
        lines = header_lines(facts)
        lines.append(
            "torch build: " + build_verdict(facts["torch_cuda"], facts["driver"], torch.cuda.is_available())
        )
        try:
            choice = choose(driver_version(), dict(os.environ))
            lines.append(f"make setup here: {' '.join(choice.pip_args())} ({choice.reason})")
        except NoBuild as error:
            lines.append(f"make setup here: {error}")
        print("\n".join(lines))
    except Exception as error:  # a doctor that crashes tells nothing: report and still exit 0
        print(
            f"genemask doctor: could not inspect everything: {type(error).__name__}: {error}", file=sys.stderr
        )
    return 0
