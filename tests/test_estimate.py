"""`genemask estimate`: the study's jobs from the workflow's dry run, and their cost from measured or assumed rates."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import REPO

from genemask.cli import main
from genemask.config import load_config
from genemask.errors import UserError
from genemask.estimate import (
    FINETUNE_EFFICIENCY,
    FINETUNE_PROCESS_S,
    FINETUNE_RUN_S,
    PRETRAIN_OVERHEAD_S,
    Job,
    estimate,
    finetune_seconds,
    flops_per_token,
    gue_seconds,
    make_rates,
    mean_chunk_tokens,
    parse_dry_run,
    planned_jobs,
    rule_order,
)
from genemask.evaluation.settings import finetune_regime
from genemask.evaluation.tasks import task_spec
from genemask.masking import registry

SNAKEFILE = REPO / "workflow" / "Snakefile"

DRY_RUN = """\
Building DAG of jobs...
Job stats:
job               count
--------------  -------
download_genome       1
pretrain_model        2
finetune_model        1
all                   1
total                 5

[Mon Nov 30 02:59:27 2026]
localrule download_genome:
    output: resources/genome/ucsc-hg38.fa.gz
    jobid: 3
    wildcards: source=ucsc-hg38
    resources: tmpdir=/tmp

rule pretrain_model:
    input: resources/genome/ucsc-hg38.fa.gz
    output: results/models/dnabert_random_10000
    wildcards: arch=dnabert, strategy=random, steps=10000
    resources: tmpdir=/tmp, gpu=0, runtime=1440

rule pretrain_model:
    output: results/models/logo_pmi-vocab_10000
    wildcards: arch=logo, strategy=pmi-vocab, steps=10000
    resources: tmpdir=/tmp, gpu=0, runtime=1440
[Mon Nov 30 02:59:27 2026] Group job finetune (jobs in lexicogr. order):

    [Mon Nov 30 02:59:27 2026]
    rule finetune_model:
        input: results/models/dnabert_random_10000
        output: results/finetune/dnabert_random-init/splice-40/1000/seed7.json
        wildcards: model=dnabert_random-init, task=splice-40, shots=1000, seed=7
        resources: tmpdir=/tmp, gpu=0

localrule all:
    input: results/models/dnabert_random_10000
    jobid: 0
"""


def expected_counts(config: dict) -> dict[str, int]:
    """The grid's job counts, computed from the config by hand."""
    p, f = config["pretrain"], config["finetune"]
    pretrained = len(p["architectures"]) * len(p["strategies"]) * len(p["steps"])
    exports = sum(
        s < steps for s in p["export_steps"] for steps in p["steps"]
    )  # per (architecture, strategy)
    exported = len(p["architectures"]) * len(p["strategies"]) * exports
    models = (
        pretrained + exported + len(p["architectures"]) * f["random_init_reference"] + len(f["references"])
    )
    draws = len(f["tasks"]) * len(f["shots"]) * len(f["seeds"])
    return {
        "pretrain_model": pretrained,
        "precompute_masks": len(registry.mask_strategies(config["masking"]["strategies"])),
        "sample_task": draws,
        "finetune_model": models,  # one job per model: all tasks, shots and seeds
        "kmer_baseline": int(f["kmer_logistic_reference"]),
    }


@pytest.fixture(scope="module")
def demo_jobs() -> list[Job]:
    return planned_jobs(REPO / "config" / "demo.yaml", SNAKEFILE)


def gpu_check_report(path: Path, rates: dict[str, float], overhead: float) -> Path:
    """A report.json as benchmarks/gpu_check.py writes it, with just what the estimate reads."""
    sections = [
        {
            "name": f"throughput-{preset}",
            "status": "ok",
            "results": {
                "preset": preset,
                "gpu": "NVIDIA H200",
                "batch_size": 32,
                "loops": [
                    {"key": "baseline", "tokens_per_second": rate / 4},
                    {"key": "ours", "tokens_per_second": rate},
                    {"key": "ours_compiled", "tokens_per_second": 2 * rate},
                ],
            },
        }
        for preset, rate in rates.items()
    ]
    cell = {"device": {"wall_seconds": overhead + 3.0, "train_seconds": 2.0, "eval_seconds": 1.0}}
    sections.append({"name": "finetune", "status": "ok", "results": cell})
    path.write_text(json.dumps({"device": "cuda", "device_name": "NVIDIA H200", "sections": sections}))
    return path


def test_parse_dry_run_reads_rules_and_wildcards() -> None:
    jobs = parse_dry_run(DRY_RUN)
    assert [job.rule for job in jobs] == [
        "download_genome",
        "pretrain_model",
        "pretrain_model",
        "finetune_model",
        "all",
    ]
    assert jobs[2].wildcards == {"arch": "logo", "strategy": "pmi-vocab", "steps": "10000"}
    assert jobs[3].wildcards == {
        "model": "dnabert_random-init",
        "task": "splice-40",
        "shots": "1000",
        "seed": "7",
    }
    assert jobs[4].wildcards == {}
    assert [job.gpu for job in jobs] == [False, True, True, True, False]
    assert [job.aggregate for job in jobs] == [False, False, False, False, True]
    assert jobs[1].inputs == ("resources/genome/ucsc-hg38.fa.gz",)
    # the workflow's order: by depth in the DAG (the download feeds a run that feeds the fine-tuning), aggregates last
    assert rule_order(jobs[::-1]) == ["download_genome", "pretrain_model", "finetune_model", "all"]


def test_a_gpu_rule_without_a_cost_model_is_refused() -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    rates = make_rates("H100", None, compile_=False, k=6)
    job = Job("new_gpu_rule", {}, (), ("out",), gpu=True)
    with pytest.raises(
        UserError, match="rule new_gpu_rule asks for a GPU, but genemask.estimate has no cost"
    ):
        estimate([job], config, rates)


def test_parse_dry_run_refuses_a_listing_that_disagrees_with_its_job_stats() -> None:
    with pytest.raises(RuntimeError, match="job stats"):
        parse_dry_run(DRY_RUN.replace("pretrain_model        2", "pretrain_model        3"))


def test_study_plan_and_cost(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["estimate", "--configfile", "config/config.yaml"]) == 0
    out = capsys.readouterr().out
    rows = {m[0]: m[1:] for m in re.findall(r"^(\S+)\s+([\d,]+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", out, re.M)}
    config = load_config(REPO / "config" / "config.yaml")
    for rule, count in expected_counts(config).items():
        assert int(rows[rule][0].replace(",", "")) == count, rule
    assert rows["finetune_model"][0] == "15"  # 15 models, each job 4 tasks x 5 shots x 10 seeds
    assert int(rows["total"][0].replace(",", "")) == sum(
        int(r[0].replace(",", "")) for k, r in rows.items() if k != "total"
    )
    assert (
        rows["pretrain_model"][3] == "assumed" and rows["pretrain_model"][2] == "-"
    )  # GPU rule: no CPU-hours
    assert rows["npmi"][1] == "-" and rows["npmi"][3] == "assumed"
    order = list(rows)  # the workflow's order, read from its DAG; aggregate targets last, then the total
    # chunk_genome and npmi both read only the genome: the DAG orders neither before the other
    for pipeline in (
        ["download_genome", "chunk_genome", "pretrain_model", "finetune_model"],
        ["download_genome", "npmi", "precompute_masks", "pretrain_model", "finetune_model"],
    ):
        assert [order.index(rule) for rule in pipeline] == sorted(order.index(rule) for rule in pipeline)
    assert order[-2:] == ["all", "total"] and rows["finetune_model"][1] != "-"
    assert "dnabert: " in out and "assumed (30% MFU of H100's 989 TFLOP/s bf16)" in out


def test_demo_plan_with_measured_throughput(demo_jobs: list[Job], tmp_path: Path) -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    counts = {rule: sum(job.rule == rule for job in demo_jobs) for rule in expected_counts(config)}
    assert counts == expected_counts(config)

    report = gpu_check_report(tmp_path / "report.json", {"tiny": 50_000.0, "logo": 2e6}, overhead=12.0)
    rates = make_rates(None, report, compile_=False, k=6)
    assert rates.gpu == "NVIDIA H200" and rates.measured == {"dnabert": False, "logo": True, "tiny": True}
    costs = {cost.rule: cost for cost in estimate(demo_jobs, config, rates)}

    p = config["pretrain"]
    tokens = p["steps"][0] * p["global_batch"] * mean_chunk_tokens(6)
    evals = p["steps"][0] // p["eval_every"] * p["eval_chunks"] * mean_chunk_tokens(6)
    per_job = PRETRAIN_OVERHEAD_S + tokens / 50_000 + evals / (3 * 50_000)
    assert costs["pretrain_model"].gpu_hours == pytest.approx(counts["pretrain_model"] * per_job / 3600)
    assert costs["pretrain_model"].basis == "measured"
    # Fine-tuning, one job per model: the measured per-process overhead (wall - train - eval of the GPU cell)
    # once, then per (task, shots, seed) run the per-run fixed cost and the compute of epochs x training
    # sequences and the test set forward (a third of a training pass per token).
    assert costs["finetune_model"].basis == "measured"
    job = Job("finetune_model", {"model": "tiny_random-init"})
    rate = 50_000 * flops_per_token("tiny", mean_chunk_tokens(6), 0.15) * FINETUNE_EFFICIENCY
    work = 0.0
    for task in config["finetune"]["tasks"]:
        tokens = task_spec(task).length - 6 + 1 + 2
        for shots in (10, 50):  # the demo's shot counts, two seeds each
            epochs = finetune_regime(config["finetune"]["regimes"], shots)["epochs"]
            rows = task_spec(task).rows_per_class(shots, 1) * task_spec(task).n_classes
            work += 2 * (epochs * rows + 200 / 3) * tokens * flops_per_token("tiny", tokens, 0.0)
    runs = len(config["finetune"]["tasks"]) * 4
    expected = 12.0 + runs * FINETUNE_RUN_S + work / rate
    assert finetune_seconds(job, config, rates) == (pytest.approx(expected), True)

    compiled = make_rates(None, report, compile_=True, k=6)  # pretrain.compile: true uses the compiled loop
    assert compiled.tokens_per_second["tiny"] == 100_000.0


def test_assumed_rates_scale_with_the_gpu_peak(demo_jobs: list[Job]) -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    hours = {}
    for gpu in ("H100", "A100"):
        cost = {c.rule: c for c in estimate(demo_jobs, config, make_rates(gpu, None, False, 6))}
        hours[gpu] = (
            cost["pretrain_model"].gpu_hours - cost["pretrain_model"].jobs * PRETRAIN_OVERHEAD_S / 3600
        )
        assert cost["pretrain_model"].basis == cost["finetune_model"].basis == "assumed"
        assert cost["finetune_model"].gpu_hours > cost["finetune_model"].jobs * FINETUNE_PROCESS_S / 3600
    assert hours["A100"] / hours["H100"] == pytest.approx(989 / 312)


def test_unknown_gpu_type_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["estimate", "--configfile", os.fspath(REPO / "config" / "demo.yaml"), "--gpu-type", "K80"]) == 2
    )
    assert "--gpu-type K80: no peak known" in capsys.readouterr().err


def test_a_report_from_the_cpu_is_refused(tmp_path: Path) -> None:
    report = gpu_check_report(tmp_path / "report.json", {"tiny": 5_000.0}, overhead=5.0)
    report.write_text(report.read_text().replace('"device": "cuda"', '"device": "cpu"'))
    with pytest.raises(UserError, match="not from a GPU"):
        make_rates(None, report, compile_=False, k=6)


def test_finetune_regime_picks_the_smallest_fitting_regime():
    regimes = {"few": {"max_shots": 100, "epochs": 20}, "many": {"max_shots": 1000, "epochs": 5}}
    assert finetune_regime(regimes, 10)["epochs"] == finetune_regime(regimes, "100")["epochs"] == 20
    assert finetune_regime(regimes, 101)["epochs"] == finetune_regime(regimes, "full")["epochs"] == 5
    with pytest.raises(ValueError, match="no regime has max_shots >= 5000"):
        finetune_regime(regimes, 5000)


def test_gue_runs_cost_their_epochs_over_the_published_splits():
    config = load_config(REPO / "config" / "config.yaml")
    rates = make_rates("H100", None, False, 6)
    core = gue_seconds(
        Job("gue_finetune", {"model": "dnabert_random_10000", "task": "prom_core_all", "seed": "0"}),
        config,
        rates,
    )
    emp = gue_seconds(
        Job("gue_finetune", {"model": "dnabert_random_10000", "task": "emp_H3", "seed": "0"}), config, rates
    )
    small = gue_seconds(
        Job("gue_finetune", {"model": "logo_random_10000", "task": "emp_H3", "seed": "0"}), config, rates
    )
    assert core[1] is False and core[0] > FINETUNE_PROCESS_S  # assumed, and more than the start-up
    # prom_core_all: 47k x 4 epochs of 80 tokens; emp_H3: ~12k x 3 epochs of 500 tokens, so emp costs more
    assert emp[0] > core[0] and emp[0] > small[0]  # and BERT-base costs more than the LOGO size


def test_a_variable_length_task_is_costed_at_its_longest():
    config = load_config(REPO / "config" / "config.yaml")
    rates = make_rates("H100", None, False, 6)
    job = Job("finetune_model", {"model": "dnabert_random_10000", "task": "sil-300"})
    seconds, measured = finetune_seconds(job, config, rates)
    assert seconds > FINETUNE_PROCESS_S and measured is False
