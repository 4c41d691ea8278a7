"""Which PyTorch build to install on this machine: the CPU wheel without an NVIDIA driver, else the newest CUDA
build the driver supports. `make setup` runs this file BEFORE torch (or this package) is installed, so it uses the
standard library only and is run as a script:

    python src/genemask/training/torch_install.py --print     # the choice and why, no install
    python src/genemask/training/torch_install.py --install .venv/bin/pip --no-compile  # `make setup`

Options after the pip path (`--no-compile` above) go to `pip install`, before the choice.

Overrides (environment): TORCH_DEVICE=cpu forces the CPU wheel; TORCH_SPEC (e.g. `torch==2.6.0`) and
TORCH_INDEX_URL (e.g. `https://download.pytorch.org/whl/cu124`) replace the chosen version and wheel index.
`genemask doctor` reads the same driver table to say whether an installed build suits the driver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

CPU_SPEC = "torch==2.13.0"  # plain pip from the default index: the CPU build on the team's machines
PYTORCH_INDEX = "https://download.pytorch.org/whl"

# CUDA toolkit -> the oldest Linux driver branch of its GA release (NVIDIA's CUDA toolkit release notes, table
# "CUDA Toolkit and Corresponding Driver Versions"). A build runs on a driver at least this new.
MIN_DRIVER = {
    (11, 8): 520,
    (12, 0): 525,
    (12, 1): 530,
    (12, 2): 535,
    (12, 3): 545,
    (12, 4): 550,
    (12, 5): 555,
    (12, 6): 560,
    (12, 8): 570,
    (12, 9): 575,
    (13, 0): 580,
}


@dataclass(frozen=True)
class CudaBuild:
    """A PyTorch wheel index and a torch release it publishes for Python 3.11 on Linux x86_64."""

    index: str  # cu130, ...
    cuda: tuple[int, int]
    torch: str

    @property
    def min_driver(self) -> int:
        return MIN_DRIVER[self.cuda]

    @property
    def url(self) -> str:
        return f"{PYTORCH_INDEX}/{self.index}"


# Newest first; each torch release is within pyproject's `torch>=2.4,<2.15` and listed for that index on
# pytorch.org's install pages (2.9: cu126, cu128, cu130; 2.6: cu118, cu124, cu126; 2.5: cu118, cu121, cu124).
CUDA_BUILDS = (
    CudaBuild("cu130", (13, 0), "2.9.1"),
    CudaBuild("cu128", (12, 8), "2.9.1"),
    CudaBuild("cu126", (12, 6), "2.9.1"),
    CudaBuild("cu124", (12, 4), "2.6.0"),
    CudaBuild("cu121", (12, 1), "2.5.1"),
    CudaBuild("cu118", (11, 8), "2.6.0"),
)


@dataclass(frozen=True)
class Choice:
    spec: str  # what pip installs: torch==X
    index_url: str | None  # None: pip's default index (the CPU wheel here)
    reason: str

    def pip_args(self) -> list[str]:
        return [self.spec] + ([] if self.index_url is None else ["--index-url", self.index_url])


class NoBuild(Exception):
    """No PyTorch build fits this machine's driver; the message says what to set."""


def driver_version(timeout: float = 20.0) -> str | None:
    """The NVIDIA driver's version from `nvidia-smi` (first GPU), or None: no nvidia-smi, or it fails."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines and lines[0].strip() else None


def driver_major(version: str) -> int | None:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def min_driver_for(cuda: str | None) -> int | None:
    """The oldest driver branch for a CUDA version string ("12.8"), or None when unknown (or a CPU build)."""
    if not cuda:
        return None
    try:
        wanted = tuple(int(part) for part in cuda.split(".")[:2])
    except ValueError:
        return None
    known = [version for version in MIN_DRIVER if version <= wanted and version[0] == wanted[0]]
    return MIN_DRIVER[max(known)] if known else None


def newest_build(driver: str) -> CudaBuild | None:
    major = driver_major(driver)
    if major is None:
        return None
    return next((build for build in CUDA_BUILDS if major >= build.min_driver), None)


def choose(driver: str | None, environ: dict[str, str]) -> Choice:
    """The build to install for `driver` (None: no NVIDIA driver), after the TORCH_* overrides in `environ`."""
    spec, index = environ.get("TORCH_SPEC") or None, environ.get("TORCH_INDEX_URL") or None
    if environ.get("TORCH_DEVICE", "").lower() == "cpu":
        return Choice(spec or CPU_SPEC, index, "TORCH_DEVICE=cpu: the CPU build")
    if driver is None:
        return Choice(
            spec or CPU_SPEC, index, "no NVIDIA driver (nvidia-smi absent or failing): the CPU build"
        )
    if index is not None:
        return Choice(spec or CPU_SPEC, index, f"driver {driver}; TORCH_INDEX_URL={index}")
    build = newest_build(driver)
    if build is None:
        oldest = CUDA_BUILDS[-1]
        raise NoBuild(
            f"NVIDIA driver {driver} is older than {oldest.min_driver}, the oldest that a PyTorch CUDA build here "
            f"supports (CUDA {'.'.join(map(str, oldest.cuda))}, index {oldest.url}); update the driver, or "
            "set TORCH_DEVICE=cpu (CPU build), or TORCH_INDEX_URL and TORCH_SPEC to a build you know runs"
        )
    cuda = ".".join(map(str, build.cuda))
    return Choice(
        spec or f"torch=={build.torch}",
        build.url,
        f"driver {driver} supports CUDA {cuda} (needs >= {build.min_driver}): index {build.index}",
    )


def install(pip: str, choice: Choice, driver: str | None, options: list[str] | None = None) -> int:
    """`pip install [options]` the choice; when it fails, one line naming the driver, the wanted build and what
    to set."""
    print(f"torch_install: {' '.join(choice.pip_args())} ({choice.reason})", flush=True)
    code = subprocess.run([pip, "install", "--quiet", *(options or []), *choice.pip_args()]).returncode
    if code != 0:
        print(
            f"torch_install: could not install {choice.spec} from {choice.index_url or 'the default index'} "
            f"(driver {driver or 'none'}; {choice.reason}); without network on this node, run `make setup` where "
            "there is network, or set TORCH_INDEX_URL and TORCH_SPEC to a reachable build "
            "(a local wheel directory: TORCH_INDEX_URL=file:///path), or TORCH_DEVICE=cpu",
            file=sys.stderr,
        )
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    driver = driver_version()
    try:
        choice = choose(driver, dict(os.environ))
    except NoBuild as error:
        print(f"torch_install: {error}", file=sys.stderr)
        return 2
    if argv[:1] == ["--install"] and len(argv) >= 2:
        return install(argv[1], choice, driver, argv[2:])
    if argv not in ([], ["--print"]):
        print("usage: torch_install.py [--print | --install PIP [PIP_OPTION ...]]", file=sys.stderr)
        return 2
    print(f"{' '.join(choice.pip_args())}  # {choice.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
