"""benchmarks/gpu_check.py: its CPU mode runs every section's code path, and without a GPU it stops at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO

from genemask.estimate import read_throughput

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
SECTIONS = ["environment", "throughput-tiny", "resume", "finetune", "ddp"]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, out


def test_cpu_tiny_mode_runs_every_section(tiny_report: tuple[subprocess.CompletedProcess, Path]) -> None:
    done, out = tiny_report
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["finished"] and report["mode"] == "tiny"
    sections = {s["name"]: s for s in report["sections"]}
    assert list(sections) == SECTIONS
    assert {name: s["status"] for name, s in sections.items()} == {
        "environment": "ok",
        "throughput-tiny": "ok",
        "resume": "ok",
        "finetune": "ok",
        "ddp": "skipped",
    }, json.dumps(report["sections"], indent=1)[:4000]

    throughput = sections["throughput-tiny"]["results"]
    loops = {loop["key"]: loop for loop in throughput["loops"]}
    auto = {"auto", "auto_compiled"}
    assert set(loops) in ({"ours", "ours_compiled"}, {"ours", "ours_compiled", *auto}), throughput["not_run"]
    if "auto" not in loops:  # until `genemask pretrain` takes --batch-size auto: reported, not hidden
        assert set(throughput["not_run"]) == auto and "--batch-size auto" in throughput["not_run"]["auto"]
    assert loops["ours"]["micro_batch"] == 4 and loops["ours"]["accumulation"] == 2  # Plan.tiny()'s
    assert loops["ours_compiled"]["compiled"] and not loops["ours"]["compiled"]
    for loop in loops.values():  # `genemask pretrain` ran: its own metrics and its checkpoint write, timed
        assert loop["tokens_per_second"] > 0 and loop["checkpoint_write_seconds"] > 0
        assert 1 < loop["mean_tokens_per_sequence"] <= 512
    assert throughput["batch_size"] == 4 and throughput["syncs_per_step"] is None  # syncs: on CUDA only
    # the figures `genemask estimate --throughput` reads (it takes GPU reports only: this one, relabelled)
    relabelled = out / "as_if_cuda.json"
    relabelled.write_text(json.dumps(report | {"device": "cuda"}))
    found = read_throughput(relabelled, compile_=True)
    assert found["rates"] == {"tiny": loops["ours_compiled"]["tokens_per_second"]} and found["batch"] == {
        "tiny": 4
    }

    resume = sections["resume"]["results"]
    assert resume["first_exit"] == 75 and resume["second_exit"] == 0
    assert resume["steps_logged"] and resume["same_data_order"] and resume["losses_finite"]
    assert resume["max_loss_difference_vs_uninterrupted"] == 0.0  # on CPU a resumed run is bit-identical
    assert resume["automodel_loads"] == "BertForMaskedLM"

    finetune = sections["finetune"]["results"]
    assert finetune["differences"] == {"accuracy": 0.0, "auc": 0.0}  # both sides on the CPU: identical
    assert "DDP runs on two or more GPUs" in sections["ddp"]["reason"]
    assert [goal["verdict"] for goal in report["goals"]] == ["not judged: CPU tiny mode"]

    markdown = (out / "report.md").read_text()
    assert "| throughput, tiny | ok |" in markdown and "| DDP (torchrun) scaling | skipped |" in markdown
    assert "| tiny | micro-batch 4, eager |" in markdown
    assert markdown.strip() in done.stdout  # the table is printed too


@pytest.mark.skipif(torch.cuda.is_available(), reason="the notice is for machines without a CUDA GPU")
def test_without_a_gpu_prints_one_line_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "no CUDA GPU" in done.stdout
    assert not (tmp_path / "report").exists()


def _gpu_check_module():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return gpu_check


@pytest.mark.parametrize(
    ("gpu", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA GeForce RTX 4090", 165.0),
        ("Tesla V100-SXM2-16GB", 125.0),
        ("NVIDIA GeForce GTX 1080", None),
    ],
)
def test_peak_by_gpu_name(gpu: str, peak: float | None) -> None:
    assert _gpu_check_module().peak_tflops(gpu)[0] == peak


@pytest.mark.parametrize(
    ("gpu", "verdict"),
    [
        ("NVIDIA H100 80GB HBM3", "FALL SHORT"),
        ("NVIDIA A100-SXM4-80GB", "not judged: NVIDIA A100-SXM4-80GB is not H100/H200-class"),
    ],
)
def test_the_goal_is_judged_on_the_dnabert_sections_best_run(tmp_path: Path, gpu: str, verdict: str) -> None:
    gpu_check = _gpu_check_module()
    report = gpu_check.Report(tmp_path, {"device_name": gpu, "mode": "full", "started": "now"}, deadline=0.0)
    loops = [
        {"key": "ours", "name": "micro-batch 10, eager", "tokens_per_second": 1.0, "mfu": 0.1},
        {
            "key": "auto_compiled",
            "name": "micro-batch 96 (auto), compiled",
            "tokens_per_second": 3.4,
            "mfu": 0.34,
        },
    ]
    results = {"preset": "dnabert", "gpu": gpu, "loops": loops, "best": "auto_compiled"}
    report.sections.append({"name": "throughput-dnabert", "status": "ok", "results": results})
    (judged,) = gpu_check.goals(report, tiny=False)
    assert judged["verdict"] == verdict and judged["measured"] == "34.0% (micro-batch 96 (auto), compiled)"


def test_no_benchmark_module_imports_the_gpu_check_script_back() -> None:
    """gpu_check.py imports its section modules; none of them (nor any benchmark) imports gpu_check."""
    import ast

    for path in (REPO / "benchmarks").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "gpu_check" not in imported, path.name
