"""Device discipline: `--device cuda` runs on CUDA or fails at once in one line saying why; the workflow passes
the device from the job's `gpu` resource; the environment header; `genemask doctor`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from genemask.commands.doctor import build_verdict
from genemask.errors import UserError
from genemask.training.device import choose_device, environment, header_lines, likely_cause

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure on a machine without CUDA")


def genemask(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genemask", *args], capture_output=True, text=True, timeout=120, env=env
    )


@NO_CUDA
def test_pretrain_device_cuda_without_cuda_fails_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    done = genemask(
        "pretrain", "--device", "cuda", "--chunks", str(tmp_path / "no-chunks"), "--preset", "tiny",
        "--out", str(out), "--checkpoint-dir", str(checkpoints), "--steps", "2",
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    line = done.stderr
    assert line.startswith(
        "genemask pretrain: error: --device cuda: CUDA is unusable: asked for cuda (1 GPU)"
    )
    for fact in (
        "torch.cuda.is_available()=False, 0 device(s)",
        f"torch CUDA {torch.version.cuda}",
        "driver ",
    ):
        assert fact in line, line
    assert "likely cause: " in line
    assert not out.exists() and not checkpoints.exists() and list(tmp_path.iterdir()) == []


@NO_CUDA
def test_torchrun_processes_ask_for_one_gpu_each() -> None:
    with pytest.raises(UserError, match=r"asked for cuda \(4 GPUs\)"):
        choose_device("cuda", {"LOCAL_WORLD_SIZE": "4", "RANK": "0"})


@pytest.mark.parametrize(
    ("torch_cuda", "driver", "environ", "cause"),
    [
        (None, "580.65.06", {}, "this torch is a CPU build"),
        ("12.8", "570.86.15", {"CUDA_VISIBLE_DEVICES": ""}, "CUDA_VISIBLE_DEVICES='' hides every GPU"),
        ("12.8", None, {}, "no NVIDIA driver on this machine"),
        ("13.0", "550.54.14", {}, "driver 550.54.14 is too old for this build's CUDA 13.0 (needs >= 580)"),
        ("12.6", "550.54.14", {}, "driver 550.54.14 is too old for this build's CUDA 12.6 (needs >= 560)"),
        ("12.4", "550.54.14", {}, "unknown; run `genemask doctor`"),
    ],
)
def test_the_likely_cause_is_the_most_specific_one(torch_cuda, driver, environ, cause) -> None:
    assert likely_cause(torch_cuda, driver, environ, available=False).startswith(cause)


def test_the_environment_header_says_cpu_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    facts = environment(torch.device("cpu"))
    lines = header_lines(facts)
    assert len(lines) == 2 and all(line.startswith("environment: ") for line in lines)
    assert f"torch {torch.__version__}" in lines[1] and "NCCL" in lines[1] and "bf16" in lines[1]
    if not torch.cuda.is_available():
        assert "device cpu, no GPU visible (CPU)" in lines[0]
        assert "CUDA none (CPU build)" in lines[1] or torch.version.cuda is not None
    gpu_facts = facts | {
        "gpus": ["NVIDIA H100", "NVIDIA H100"],
        "device": "cuda",
        "cuda_visible_devices": "0,1",
    }
    assert "2 GPU(s) visible: NVIDIA H100 (CUDA_VISIBLE_DEVICES=0,1)" in header_lines(gpu_facts)[0]


@pytest.mark.parametrize(
    ("torch_cuda", "driver", "verdict"),
    [
        (None, None, "right for a CPU node"),
        (None, "570.86.15", "`make setup` installs a CUDA build"),
        ("13.0", "550.54.14", "MISMATCH: torch's CUDA 13.0 needs driver >= 580"),
        ("12.8", "570.86.15", "suits driver 570.86.15"),
        ("12.8", None, "no NVIDIA driver"),
    ],
)
def test_doctor_judges_the_build_against_the_driver(torch_cuda, driver, verdict) -> None:
    assert verdict in build_verdict(torch_cuda, driver, available=True)


def test_doctor_prints_one_screen_and_exits_0_with_a_stand_in_driver(tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 550.54.14\n")
    smi.chmod(0o755)
    import os

    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    done = genemask("doctor", env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith("environment: host ")
    assert "driver 550.54.14" in lines[1]
    assert lines[3] == (
        "make setup here: torch==2.6.0 --index-url https://download.pytorch.org/whl/cu124 "
        "(driver 550.54.14 supports CUDA 12.4 (needs >= 550): index cu124)"
    )


def test_the_workflow_passes_cuda_to_jobs_given_a_gpu_and_cpu_to_the_others(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--dry-run", "--printshellcmds", "--cores", "2",
            "-s", str(REPO / "workflow" / "Snakefile"), "-d", str(tmp_path),
            "--configfile", str(REPO / "config" / "demo.yaml"), "--set-resources", "pretrain_model:gpu=1",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    output = (done.stdout + done.stderr).splitlines()
    shells = [line.strip().removeprefix("Shell command: ") for line in output]
    pretrain = [line for line in shells if line.startswith("genemask pretrain ")]
    finetune = [line for line in shells if line.startswith("genemask finetune ")]
    assert pretrain and all(" --device cuda " in line for line in pretrain), pretrain[:1]
    assert finetune and all(" --device cpu " in line for line in finetune), finetune[:1]


def test_a_batch_without_padding_needs_no_attention_mask() -> None:
    """On CUDA `batch_to_device` drops an all-ones mask (HF's on-device check of it is a host sync); the loss
    without it is the loss with it, and on the CPU the mask stays."""
    from genemask.training.data import batch_to_device
    from genemask.training.models import build_model, sparse_mlm_loss

    model = build_model("tiny", seed=0).eval()
    input_ids = torch.randint(5, 4101, (3, 16), generator=torch.Generator().manual_seed(0))
    masked_index, masked_labels = torch.tensor([1, 17, 40]), torch.tensor([7, 8, 9])
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    assert batch_to_device(batch, torch.device("cpu"))["attention_mask"] is not None
    with torch.no_grad():
        with_mask = sparse_mlm_loss(model, input_ids, batch["attention_mask"], masked_index, masked_labels)
        without = sparse_mlm_loss(model, input_ids, None, masked_index, masked_labels)
    assert torch.allclose(with_mask.loss_sum, without.loss_sum, rtol=1e-5)
    assert int(with_mask.correct) == int(without.correct)
