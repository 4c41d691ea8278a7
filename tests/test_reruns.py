"""Rerun economy: after a config change, a dry run of a finished workflow plans exactly the jobs the change needs.

A miniature of the demo (simulated genome and task, the tiny model for a few steps, one task, shot count and
seed; about a minute on 2 cores) runs once per session in a copy of workflow/ and config/ under tmp, through
`python -m snakemake` with this interpreter's bin folder NOT on PATH (no venv activation). Each test then changes
one thing of its config and checks the jobs planned, per rule.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genemask.evaluation.settings import finetune_regime

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def _mini_config() -> dict:
    config = copy.deepcopy(DEMO)
    config["genome"]["simulate"] |= {"length": 200_000, "contigs": 2}
    config["masking"] |= {"strategies": ["random", "genemask"], "epochs": 1}
    config["pretrain"] |= {
        "strategies": ["random", "genemask"],
        "steps": [6],
        "export_steps": [2],
        "keep_weights_every": 2,
        "warmup_steps": 1,
        "batch_size": 4,
        "global_batch": 4,
        "eval_chunks": 4,
        "eval_every": 2,
        "checkpoint_every": 2,
    }
    config["finetune"] |= {"tasks": ["sim-promoter"], "shots": [10], "seeds": [0]}
    config["finetune"]["regimes"]["few"] |= {"epochs": 1}
    config["finetune"]["simulate"] |= {"test_size": 20, "pool_size": 20}
    config["motifs"] |= {"top_n": 20, "logos": 0}
    return config


MINI = _mini_config()
# Aggregates that follow any change of the models fine-tuned: tables, figures, the target.
FEWSHOT = {"fewshot_results": 1, "report_learning_curves": 1, "all": 1}


def without_venv_on_path() -> dict[str, str]:
    """The environment minus this interpreter's bin folder on PATH: as if no venv had been activated."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    return env


def snakemake(workdir: Path, *args: str | Path, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *map(str, args)],
        cwd=workdir,
        env=without_venv_on_path(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"snakemake {' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-8000:]}"
    )
    return done.stdout + done.stderr


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The miniature run to the end, with the venv's bin folder absent from PATH."""
    workdir = tmp_path_factory.mktemp("reruns")
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, workdir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (workdir / "mini.yaml").write_text(yaml.safe_dump(MINI))
    started = time.monotonic()
    snakemake(workdir, "--cores", "2", "--configfile", "mini.yaml")
    print(f"miniature workflow: {time.monotonic() - started:.0f} s")
    return workdir


def planned(workdir: Path, config: dict) -> dict[str, int]:
    """Jobs per rule of a dry run of the finished miniature under `config`."""
    (workdir / "changed.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(workdir, "--dry-run", "--configfile", "changed.yaml")
    if "Nothing to be done" in plan:
        return {}
    stats = plan[plan.index("Job stats:") :].split("\n\n")[0].splitlines()[3:]
    return {rule: int(count) for rule, count in (line.split() for line in stats) if rule != "total"}


def changed(edit) -> dict:
    config = copy.deepcopy(MINI)
    edit(config)
    return config


def test_finished_run_plans_nothing_and_made_every_model(finished: Path) -> None:
    assert planned(finished, MINI) == {}
    models = sorted(path.name for path in (finished / "results" / "models").iterdir())
    assert models == ["tiny_genemask_6", "tiny_genemask_6_step2", "tiny_random_6", "tiny_random_6_step2"]
    assert (finished / "results" / "report" / "learning_curves" / "sim-promoter.png").stat().st_size > 10_000


def test_commands_that_run_no_job_need_no_cores(finished: Path) -> None:
    """Threads that depend on --cores (the pretraining chain's) must not break --summary, --list-rules, --report."""
    rows = snakemake(finished, "--summary", "--configfile", "mini.yaml").splitlines()
    assert any(row.startswith("results/models/tiny_random_6\t") for row in rows)
    assert "pretrain_model" in snakemake(finished, "--list-rules", "--configfile", "mini.yaml").split()


def test_adding_a_step_count_trains_only_the_new_runs(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["pretrain"].update(steps=[6, 8])))
    # 2 new runs (random, genemask) and their exports at step 2: 4 new models to fine-tune.
    assert jobs == {
        "pretrain_model": 2,
        "export_model": 2,
        "finetune_model": 4,
        "report_training": 1,
        **FEWSHOT,
    }


def test_adding_an_export_step_trains_nothing(finished: Path) -> None:
    # The runs kept their weights every 2 steps: step 4, added to the finished 6-step runs, is exported from them.
    jobs = planned(finished, changed(lambda c: c["pretrain"].update(export_steps=[2, 4])))
    assert jobs == {"export_model": 2, "finetune_model": 2, **FEWSHOT}


def test_adding_a_strategy_runs_only_its_chain(finished: Path) -> None:
    def add(config: dict) -> None:
        config["masking"]["strategies"].append("pmi-vocab")
        config["pretrain"]["strategies"].append("pmi-vocab")

    jobs = planned(finished, changed(add))
    assert jobs == {
        "precompute_masks": 1,
        "masking_statistics": 1,
        "report_masking": 1,
        "pretrain_model": 1,
        "export_model": 1,
        "report_training": 1,
        "finetune_model": 2,
        **FEWSHOT,
    }


def test_removing_a_strategy_retrains_nothing(finished: Path) -> None:
    def remove(config: dict) -> None:
        config["masking"]["strategies"].remove("genemask")
        config["pretrain"]["strategies"].remove("genemask")

    jobs = planned(finished, changed(remove))
    assert jobs == {"masking_statistics": 1, "report_masking": 1, "report_training": 1, **FEWSHOT}


def test_adding_an_architecture_trains_only_its_models(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["pretrain"]["architectures"].append("logo")))
    # logo x 2 strategies: 2 runs, 2 exports; fine-tuned with the logo random-init floor: 5.
    assert jobs == {
        "pretrain_model": 2,
        "export_model": 2,
        "finetune_model": 5,
        "report_training": 1,
        **FEWSHOT,
    }


def test_adding_a_task_fine_tunes_only_on_it(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["finetune"]["tasks"].append("sim-enhancer")))
    # Every model's job again (4 pretrained, random-init, k-mer), training only the new task's runs (the run
    # cache has the rest); its test set comes from simulate_tasks' output.
    assert jobs == {"sample_task": 1, "finetune_model": 5, "kmer_baseline": 1, **FEWSHOT}


def test_adding_a_shot_count_fine_tunes_only_with_it(finished: Path) -> None:
    # One draw; each model's job runs again, training only the new shot count (the run cache has the rest).
    jobs = planned(finished, changed(lambda c: c["finetune"]["shots"].append(20)))
    assert jobs == {"sample_task": 1, "finetune_model": 5, "kmer_baseline": 1, **FEWSHOT}


def test_adding_a_seed_fine_tunes_only_with_it(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["finetune"]["seeds"].append(1)))
    assert jobs == {"sample_task": 1, "finetune_model": 5, "kmer_baseline": 1, **FEWSHOT}


def test_a_replanned_job_retrains_none_of_its_finished_runs(finished: Path, tmp_path: Path) -> None:
    """Seed 1 added: the models' jobs run again (Snakemake deletes their outputs first), but the seed-0 runs
    come back from the run cache as they were; only seed 1 trains."""
    workdir = tmp_path / "copy"
    shutil.copytree(finished, workdir, symlinks=True)
    (workdir / "changed.yaml").write_text(yaml.safe_dump(changed(lambda c: c["finetune"]["seeds"].append(1))))
    jobs = [("tiny_random_6", "finetune_model"), ("kmer-logreg", "kmer_baseline")]
    runs = {model: workdir / "results" / "finetune" / model / "sim-promoter" / "10" for model, _ in jobs}
    before = {model: json.loads((folder / "seed0.json").read_text()) for model, folder in runs.items()}
    targets = [(folder / "seed1.json").relative_to(workdir) for folder in runs.values()]
    out = snakemake(workdir, "--cores", "2", *targets, "--configfile", "changed.yaml")
    for model, rule in jobs:
        assert f"rule {rule}:" in out
        seed0, seed1 = (json.loads((runs[model] / f"seed{s}.json").read_text()) for s in (0, 1))
        assert seed0["from_cache"] is True and {**seed0, "from_cache": False} == before[model]
        assert seed1["from_cache"] is False and seed1["run_key"] != seed0["run_key"]
        log = (workdir / "logs" / "finetune" / f"{model}.log").read_text()
        assert log.count("(trained)") == 1 and log.count("(from the run cache") == 1


def test_adding_a_reference_fine_tunes_only_it(finished: Path) -> None:
    jobs = planned(
        finished,
        changed(lambda c: c["finetune"]["references"].update({"dnabert-6": "zhihan1996/DNA_bert_6"})),
    )
    assert jobs == {"finetune_model": 1, **FEWSHOT}


def test_changing_one_strategys_parameter_reruns_only_its_chain(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["masking"]["genemask"].update(centre_probability=0.02)))
    assert jobs == {
        "precompute_masks": 1,
        "masking_statistics": 1,
        "report_masking": 1,
        "pretrain_model": 1,
        "export_model": 1,
        "report_training": 1,
        "finetune_model": 2,
        **FEWSHOT,
    }


def test_changing_the_npmi_threshold_reruns_nothing_of_random(finished: Path) -> None:
    jobs = planned(finished, changed(lambda c: c["npmi"].update(min_count=50)))
    # npmi and what reads it: genemask's chain, the statistics, the motif report; random masking reads no NPMI.
    assert jobs == {
        "npmi": 1,
        "report_npmi": 1,
        "motif_enrichment": 1,
        "precompute_masks": 1,
        "masking_statistics": 1,
        "report_masking": 1,
        "pretrain_model": 1,
        "export_model": 1,
        "report_training": 1,
        "finetune_model": 2,
        **FEWSHOT,
    }


def test_changing_a_finetuning_learning_rate_reruns_only_neural_finetuning(finished: Path) -> None:
    regimes, (shots,) = MINI["finetune"]["regimes"], MINI["finetune"]["shots"]
    used = next(name for name, regime in regimes.items() if regime is finetune_regime(regimes, shots))
    jobs = planned(
        finished,
        changed(
            lambda c: c["finetune"]["regimes"][used].update(learning_rate=regimes[used]["learning_rate"] * 2)
        ),
    )
    # 4 pretrained models and the random-init floor; not the k-mer baseline, nothing upstream.
    assert jobs == {"finetune_model": 5, **FEWSHOT}


def test_a_python_without_genemask_beside_it_stops_at_parse_time(tmp_path: Path) -> None:
    """Snakemake run by a Python whose bin folder has no `genemask`: a one-line message, before any job."""
    python = tmp_path / "bare" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (tmp_path / "bare" / "pyvenv.cfg").write_text((Path(sys.prefix) / "pyvenv.cfg").read_text())
    env = without_venv_on_path()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, sys.path[1:]), env.get("PYTHONPATH")]))
    for folder in ("workflow", "config"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [str(python), "-m", "snakemake", "--dry-run", "--cores", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"no `genemask` command beside {python}" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "results").exists()
