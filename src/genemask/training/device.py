"""The device a run was asked for, checked before any data is read: `cuda` runs on CUDA or fails at once with one
line saying why; `auto` (for interactive use) says which device it chose. Also the environment header every
training job's log starts with, and what `genemask doctor` prints.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

import torch

from genemask.errors import UserError
from genemask.training.torch_install import driver_major, driver_version, min_driver_for

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # and cuda:N


def gpus_needed(environ: Mapping[str, str]) -> int:
    """GPUs this node's processes of the job need: one per local process (`torchrun` sets LOCAL_WORLD_SIZE)."""
    return int(environ.get("LOCAL_WORLD_SIZE", "1"))


def likely_cause(
    torch_cuda: str | None, driver: str | None, environ: Mapping[str, str], available: bool
) -> str:
    """Why CUDA is unusable, most specific first."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if torch_cuda is None:
        return "this torch is a CPU build; install a CUDA build (`make setup` on a GPU node picks one)"
    if visible is not None and visible.strip() in ("", "-1", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU (was the job given GPUs?)"
    if driver is None:
        return "no NVIDIA driver on this machine (not a GPU node, or the job was given no GPU)"
    needed, major = min_driver_for(torch_cuda), driver_major(driver)
    if needed is not None and major is not None and major < needed:
        return (
            f"driver {driver} is too old for this build's CUDA {torch_cuda} (needs >= {needed}); "
            "`make setup` installs a build this driver supports"
        )
    if available:
        return "fewer GPUs visible than processes on this node"
    return "unknown; run `genemask doctor`"


def unusable_cuda_message(asked: str, gpus: int, environ: Mapping[str, str]) -> str:
    available, count = torch.cuda.is_available(), torch.cuda.device_count()
    driver = driver_version()
    return (
        f"--device {asked}: CUDA is unusable: asked for {asked} ({gpus} GPU{'s' * (gpus != 1)}); torch "
        f"{torch.__version__} sees torch.cuda.is_available()={available}, {count} device(s); torch CUDA "
        f"{torch.version.cuda}; driver {driver or 'none (no NVIDIA driver)'}; likely cause: "
        + likely_cause(torch.version.cuda, driver, environ, available)
    )


def choose_device(name: str, environ: Mapping[str, str] | None = None) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N` -> the device; `cuda` that cannot run raises UserError (one line)."""
    environ = os.environ if environ is None else environ
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if _is_main(environ):
            print(f"--device auto: chose {device.type}", flush=True)  # stdout: stderr holds only errors
        return device
    if name == "cpu":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type != "cuda":
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    needed = gpus_needed(environ) if device.index is None else device.index + 1
    if not torch.cuda.is_available() or torch.cuda.device_count() < needed:
        raise UserError(unusable_cuda_message(name, needed, environ))
    return device


def _is_main(environ: Mapping[str, str]) -> bool:
    return environ.get("RANK", "0") == "0"


def nccl_version() -> str | None:
    try:
        version = torch.cuda.nccl.version()
    except Exception:  # a CPU build has no NCCL; its absence is the answer
        return None
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def environment(device: torch.device | None = None) -> dict:
    """Host, GPUs, torch, CUDA, driver, NCCL and bf16: the facts a GPU job's log starts with."""
    cuda = torch.cuda.is_available()
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {
        "host": platform.node(),
        "device": str(device) if device is not None else ("cuda" if cuda else "cpu"),
        "gpus": names,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "driver": driver_version(),
        "nccl": nccl_version() if cuda else None,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
    }


def header_lines(facts: dict) -> list[str]:
    if facts["gpus"]:
        gpus = f"{len(facts['gpus'])} GPU(s) visible: " + ", ".join(sorted(set(facts["gpus"])))
    else:
        gpus = "no GPU visible (CPU)"
    visible = facts["cuda_visible_devices"]
    return [
        f"environment: host {facts['host']}, device {facts['device']}, {gpus}"
        + ("" if visible is None else f" (CUDA_VISIBLE_DEVICES={visible})")
        + f", {facts['cpu_count']} CPUs",
        f"environment: torch {facts['torch']}, CUDA {facts['torch_cuda'] or 'none (CPU build)'}, "
        f"driver {facts['driver'] or 'none'}, NCCL {facts['nccl'] or 'none'}, "
        f"bf16 {'yes' if facts['bf16'] else 'no'}, Python {facts['python']}",
    ]


def print_environment_header(device: torch.device, environ: Mapping[str, str] | None = None) -> None:
    """The two header lines, once per job (rank 0 under torchrun), to stdout (the job's log)."""
    if _is_main(os.environ if environ is None else environ):
        print("\n".join(header_lines(environment(device))), flush=True)
