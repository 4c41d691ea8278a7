"""The package as a user installs it: a wheel built from the source tree, installed into a fresh venv, runs
`genemask check-config` on both shipped configs without the repository (the schema ships inside the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv

from conftest import REPO

SKIP = shutil.ignore_patterns(
    ".git", ".venv", "results", "resources", ".snakemake", "build", "*.so", "__pycache__"
)


def test_wheel_installs_and_checks_both_configs(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=SKIP)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            source,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("genemask-*.whl")

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this environment, after the fresh venv's own site-packages (a .pth line does
    # not process the .pth files of the directory it adds, so this environment's editable genemask stays out).
    (site,) = (env_dir / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import genemask; print(genemask.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(env_dir)), where.stdout + where.stderr
    for name in ("demo.yaml", "config.yaml"):
        checked = subprocess.run(
            [env_dir / "bin" / "genemask", "check-config", REPO / "config" / name],
            cwd=elsewhere,
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr
        assert "min_count: 101" in checked.stdout
