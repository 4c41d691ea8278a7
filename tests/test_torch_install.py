"""`make setup`'s choice of torch build, with a stand-in `nvidia-smi` on PATH (nothing is downloaded)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from genemask.training.torch_install import CPU_SPEC, CUDA_BUILDS, MIN_DRIVER, NoBuild, choose, min_driver_for

SCRIPT = REPO / "src" / "genemask" / "training" / "torch_install.py"
INDEX = "https://download.pytorch.org/whl"


def stand_in_driver(folder: Path, script: str) -> dict[str, str]:
    """An environment whose only nvidia-smi is `script` (None of the real machine's PATH)."""
    folder.mkdir(exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + script + "\n")
    smi.chmod(0o755)
    return {"PATH": str(folder), "HOME": os.environ.get("HOME", "/tmp")}


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # the script must run before torch or this package is installed: plain `python FILE`, stdlib only
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        ("580.65.06", f"torch==2.9.1 --index-url {INDEX}/cu130"),
        ("590.10", f"torch==2.9.1 --index-url {INDEX}/cu130"),
        ("575.51.03", f"torch==2.9.1 --index-url {INDEX}/cu128"),
        ("570.86.15", f"torch==2.9.1 --index-url {INDEX}/cu128"),
        ("565.57.01", f"torch==2.9.1 --index-url {INDEX}/cu126"),
        ("550.54.14", f"torch==2.6.0 --index-url {INDEX}/cu124"),
        ("535.183.01", f"torch==2.5.1 --index-url {INDEX}/cu121"),
        ("525.60.13", f"torch==2.6.0 --index-url {INDEX}/cu118"),
    ],
)
def test_a_driver_gets_the_newest_cuda_build_it_supports(tmp_path: Path, driver: str, expected: str) -> None:
    done = run_script(stand_in_driver(tmp_path / "bin", f"echo {driver}"), "--print")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("  # ")[0] == expected
    assert f"driver {driver}" in done.stdout


@pytest.mark.parametrize("smi", [None, "exit 9", "echo 'NVIDIA-SMI has failed' >&2; exit 255", "true"])
def test_no_working_driver_gets_the_cpu_wheel_from_plain_pip(tmp_path: Path, smi: str | None) -> None:
    env = {"PATH": str(tmp_path)} if smi is None else stand_in_driver(tmp_path / "bin", smi)
    done = run_script(env, "--print")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("torch==2.13.0  # no NVIDIA driver")  # no index: pip's own resolution
    assert CPU_SPEC == "torch==2.13.0"


def test_a_driver_too_old_for_every_build_says_what_to_set(tmp_path: Path) -> None:
    done = run_script(stand_in_driver(tmp_path / "bin", "echo 470.223.02"), "--print")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    for part in ("driver 470.223.02", "older than 520", "CUDA 11.8", f"{INDEX}/cu118", "TORCH_DEVICE=cpu"):
        assert part in done.stderr, done.stderr


def test_overrides() -> None:
    assert choose("580.65.06", {"TORCH_DEVICE": "cpu"}).pip_args() == [CPU_SPEC]
    assert choose("580.65.06", {"TORCH_SPEC": "torch==2.8.0"}).pip_args() == [
        "torch==2.8.0", "--index-url", f"{INDEX}/cu130",
    ]  # fmt: skip
    mirror = {"TORCH_INDEX_URL": "file:///wheels", "TORCH_SPEC": "torch==2.7.1"}
    assert choose("550.54.14", mirror).pip_args() == ["torch==2.7.1", "--index-url", "file:///wheels"]
    assert choose("470.1", {"TORCH_INDEX_URL": "file:///wheels"}).index_url == "file:///wheels"
    with pytest.raises(NoBuild):
        choose("470.1", {})


def test_install_hands_the_choice_to_pip_and_names_what_to_set_when_it_fails(tmp_path: Path) -> None:
    env = stand_in_driver(tmp_path / "bin", "echo 570.86.15")
    calls = tmp_path / "pip-calls"
    for code in (0, 1):
        pip = tmp_path / f"pip{code}"
        pip.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit {code}\n')
        pip.chmod(0o755)
        done = run_script(env, "--install", str(pip))
        assert done.returncode == code, done.stderr
    assert calls.read_text().splitlines() == [f"install --quiet torch==2.9.1 --index-url {INDEX}/cu128"] * 2
    message = done.stderr.strip()
    assert message.count("\n") == 0 and message.startswith("torch_install: could not install torch==2.9.1")
    for part in (f"{INDEX}/cu128", "driver 570.86.15", "CUDA 12.8", "TORCH_INDEX_URL", "TORCH_DEVICE=cpu"):
        assert part in message, message


def test_the_build_table_is_consistent() -> None:
    for build in CUDA_BUILDS:
        assert (
            build.index == "cu" + "".join(map(str, build.cuda)) and build.min_driver == MIN_DRIVER[build.cuda]
        )
        assert (2, 4) <= tuple(map(int, build.torch.split(".")[:2])) < (2, 15)  # pyproject's torch range
    assert [b.min_driver for b in CUDA_BUILDS] == sorted((b.min_driver for b in CUDA_BUILDS), reverse=True)
    assert (min_driver_for("12.9"), min_driver_for("12.7"), min_driver_for(None)) == (575, 560, None)


def test_make_setup_installs_torch_through_the_choice() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "src/genemask/training/torch_install.py --install $(BIN)/pip" in makefile
    assert "TORCH_SPEC ?=" not in makefile  # no fixed build that would override the choice on a GPU node


def test_install_passes_options_after_the_pip_path_to_pip(tmp_path: Path) -> None:
    calls = tmp_path / "pip-calls"
    pip = tmp_path / "pip"
    pip.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    pip.chmod(0o755)
    done = run_script({"PATH": str(tmp_path)}, "--install", str(pip), "--no-compile")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == ["install --quiet --no-compile torch==2.13.0"]
