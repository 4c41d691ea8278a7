"""GUE: the task registry, provenance and strict readers on the shared GUE files, full-data fine-tuning with dev
selection, the tables beside the published numbers, and the workflow's GUE jobs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from genemask import cli
from genemask.commands import gue as gue_command
from genemask.errors import UserError
from genemask.evaluation.gue import (
    GUE_TASKS,
    MIRROR_REPOSITORY,
    MIRROR_REVISION,
    check_provenance,
    download_gue_task,
    gue_settings,
    half_split,
    load_gue_task,
    local_task_dir,
    mirror_url,
    read_gue_csv,
    run_gue_finetune,
)
from genemask.evaluation.gue_tables import (
    PUBLISHED_FILE,
    load_published,
    make_gue_results,
    paired_tests,
    write_gue_record,
)

REPO = Path(__file__).resolve().parents[1]
# A worktree beside the main checkout can point at the shared data with GENEMASK_SHARED_DATA.
SHARED = Path(os.environ.get("GENEMASK_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
SHARED_DIRS = {
    "prom_core_all": SHARED / "prom_core" / "gue_prom_core_all",
    "prom_300_all": SHARED / "prom_300" / "gue_prom_300_all",
    "splice_reconstructed": SHARED / "splice_40" / "gue_splice_reconstructed_400bp",
}


def shared_dir(task: str) -> Path:
    folder = SHARED_DIRS[task]
    if not folder.is_dir():
        pytest.skip(f"real data absent: {folder} (the shared data folder beside the repository)")
    return folder


def small_copy(task: str, out: Path, rows: int = 60, splits=("train", "dev", "test")) -> Path:
    """The first `rows` rows of each shared split, in a folder of their own (fast, and safe to damage)."""
    out.mkdir(parents=True, exist_ok=True)
    for split in splits:
        source = shared_dir(task) / f"{split}.csv"
        if not source.exists():  # the shared prom_300 and splice copies have no train.csv
            source = shared_dir(task) / "dev.csv"
        lines = source.read_text().splitlines(keepends=True)
        (out / f"{split}.csv").write_text("".join(lines[: rows + 1]))
    return out


# ---------------------------------------------------------------- registry


def test_registry_holds_the_28_tasks_with_the_published_recipe():
    assert len(GUE_TASKS) == 28
    assert sum(task.in_published_table for task in GUE_TASKS.values()) == 27  # all but Covid
    assert {task.n_classes for task in GUE_TASKS.values()} == {2, 3, 9}
    core, other = GUE_TASKS["prom_core_all"], GUE_TASKS["emp_H3K4me3"]
    assert (core.epochs, core.max_length, core.length, core.rows) == (4, 80, 70, (47356, 5920, 5920))
    assert (other.epochs, other.max_length, other.length) == (3, 512, 500)
    assert GUE_TASKS["splice_reconstructed"].n_classes == 3 and GUE_TASKS["virus_covid"].n_classes == 9
    settings = gue_settings("prom_core_all", seed=2, learning_rate=None)
    assert (settings.learning_rate, settings.batch_size, settings.warmup_steps) == (3e-5, 32, 50)
    assert (settings.epochs, settings.max_length, settings.seed) == (4, 80, 2)
    assert mirror_url("emp_H3", "dev") == (
        f"https://huggingface.co/datasets/leannmlindsey/GUE/resolve/{MIRROR_REVISION}/GUE/emp_H3/dev.csv"
    )
    assert (gue_command.MIRROR_REPOSITORY, gue_command.MIRROR_REVISION) == (
        MIRROR_REPOSITORY,
        MIRROR_REVISION,
    )


def test_schema_and_study_config_name_every_task():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["gue_task"]["enum"] == list(GUE_TASKS)
    gue = schema["properties"]["finetune"]["properties"]["gue"]["properties"]
    assert gue["tasks"]["default"] == list(GUE_TASKS) and gue["revision"]["default"] == MIRROR_REVISION
    study = yaml.safe_load((REPO / "config/config.yaml").read_text())["finetune"]["gue"]
    assert study["tasks"] == list(GUE_TASKS) and study["seeds"] == [0, 1, 2]


def test_local_layouts_are_found(tmp_path):
    (tmp_path / "GUE" / "EMP" / "H3").mkdir(parents=True)
    (tmp_path / "mirror" / "human_tf_0").mkdir(parents=True)
    assert local_task_dir("emp_H3", tmp_path) == tmp_path / "GUE" / "EMP" / "H3"
    assert local_task_dir("human_tf_0", tmp_path / "mirror") == tmp_path / "mirror" / "human_tf_0"
    assert local_task_dir("mouse_0", tmp_path, {"mouse_0": "/x"}) == Path("/x")
    with pytest.raises(UserError, match="unknown GUE task"):
        local_task_dir("H3", tmp_path)


def test_published_numbers_ship_with_the_package():
    published = load_published()
    assert len(published) == 27 * 12 and published.task.nunique() == 27
    assert "virus_covid" not in set(published.task)
    row = published[(published.task == "prom_core_tata") & (published.model == "DNABERT cm-gems 10K")]
    assert row.mcc.item() == 83.5
    shared = SHARED / "published" / "gue_mcc.csv"
    if shared.exists():
        assert PUBLISHED_FILE.read_bytes() == shared.read_bytes()


# ---------------------------------------------------------------- provenance and strict readers on the shared files


def test_shared_files_are_recorded_then_checked(tmp_path):
    provenance = tmp_path / "prom_core_all.json"
    record = check_provenance("prom_core_all", shared_dir("prom_core_all"), provenance, source="local:shared")
    files = record["files"]
    assert [files[s]["rows"] for s in ("train", "dev", "test")] == [47356, 5920, 5920]  # as published
    assert files["dev"]["rows_per_class"] == [2941, 2979] and files["train"]["size"] == 3457003
    assert record["rows_differ_from_published"] == {}
    assert check_provenance("prom_core_all", shared_dir("prom_core_all"), provenance, source="x") == record

    splice = check_provenance(
        "splice_reconstructed",
        shared_dir("splice_reconstructed"),
        tmp_path / "splice.json",
        source="local",
        dev_as_train=True,
    )
    assert set(splice["files"]) == {"dev", "test"}
    assert splice["files"]["test"]["rows_per_class"] == [956, 1025, 2581]
    assert splice["files"]["dev"]["length_min"] == splice["files"]["dev"]["length_max"] == 400


def test_mirror_download_then_provenance(tmp_path):
    """The three splits come from <host>/datasets/<repository>/resolve/<revision>/GUE/<task>/ over HTTP."""
    import functools
    import http.server
    import threading

    site = tmp_path / "site"
    small_copy(
        "prom_core_all",
        site / "datasets" / MIRROR_REPOSITORY / "resolve" / MIRROR_REVISION / "GUE" / "prom_core_all",
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        folder = download_gue_task("prom_core_all", tmp_path / "resources", host=host)
    finally:
        server.shutdown()
    record = check_provenance("prom_core_all", folder, tmp_path / "prov.json", source="huggingface")
    assert [record["files"][split]["rows"] for split in ("train", "dev", "test")] == [60, 60, 60]
    assert set(record["rows_differ_from_published"]) == {"train", "dev", "test"}  # a 60-row copy, reported


def test_dev_as_train_halves_dev_the_same_way_every_time(tmp_path):
    folder = small_copy("prom_300_all", tmp_path / "p300", rows=40, splits=("dev", "test"))
    provenance = tmp_path / "p300.json"
    check_provenance("prom_300_all", folder, provenance, source="local", dev_as_train=True)
    first = load_gue_task("prom_300_all", folder, provenance, seed=0, dev_as_train=True)
    again = load_gue_task("prom_300_all", folder, provenance, seed=5, dev_as_train=True)
    assert len(first.train) == len(first.dev) == 20 and first.train.sequences == again.train.sequences
    assert not set(first.train.sequences) & set(first.dev.sequences)
    assert "half of dev.csv" in first.deviations[0]
    dev = read_gue_csv(folder / "dev.csv", GUE_TASKS["prom_300_all"])
    assert sorted(half_split(dev)[0].sequences + half_split(dev)[1].sequences) == sorted(dev.sequences)

    subsampled = load_gue_task("prom_300_all", folder, provenance, seed=0, max_train=10, dev_as_train=True)
    assert len(subsampled.train) == 10 and set(subsampled.train.sequences) <= set(first.train.sequences)
    assert "subsampled to 10 of 20" in subsampled.deviations[1]


def one_line_error(args: list[str], capsys) -> str:
    assert cli.main(args) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    return message


def test_bad_gue_input_is_a_one_line_error(tmp_path, capsys):
    folder = small_copy("prom_core_all", tmp_path / "core")
    provenance = tmp_path / "prov.json"
    check = ["gue", "check", "--task", "prom_core_all", "--dir", str(folder), "--source", "local"]
    check += ["--out", str(tmp_path / "checked.json")]

    (folder / "train.csv").rename(tmp_path / "train.csv")
    assert "train.csv: no such file" in one_line_error([*check, "--provenance", str(provenance)], capsys)
    (tmp_path / "train.csv").rename(folder / "train.csv")

    good_dev = (folder / "dev.csv").read_text()
    (folder / "dev.csv").write_text(good_dev.replace("sequence,label", "seq,label", 1))
    message = one_line_error([*check, "--provenance", str(provenance)], capsys)
    assert "dev.csv: line 1: expected the header 'sequence,label'" in message

    lines = good_dev.splitlines(keepends=True)
    lines[3] = lines[3].replace(",1\n", ",2\n").replace(",0\n", ",2\n")
    (folder / "dev.csv").write_text("".join(lines))
    assert "dev.csv: line 4: expected a label in 0..1, got 2" in one_line_error(
        [*check, "--provenance", str(provenance)], capsys
    )
    assert not provenance.exists() and not (tmp_path / "checked.json").exists()

    (folder / "dev.csv").write_text(good_dev)
    assert cli.main([*check, "--provenance", str(provenance)]) == 0
    capsys.readouterr()
    (folder / "test.csv").write_text((folder / "test.csv").read_text().replace("A", "C", 1))
    assert "test.csv: size or sha256 differs" in one_line_error(
        [*check, "--provenance", str(provenance)], capsys
    )
    finetune = ["gue", "finetune", "--task", "prom_core_all", "--dir", str(folder), "--provenance"]
    finetune += [str(provenance), "--model", "tiny", "--random-init", "--out", str(tmp_path / "run.json")]
    assert "test.csv: size or sha256 differs" in one_line_error(finetune, capsys)
    assert not (tmp_path / "run.json").exists()


# ---------------------------------------------------------------- fine-tuning with dev selection


def test_full_data_finetuning_selects_on_dev_and_records_truncation(tmp_path):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.set_num_threads(1)
    model = tmp_path / "short"  # 48 positions: the 300-nt sequences (297 tokens) must be truncated
    torch.manual_seed(0)
    BertForMaskedLM(
        BertConfig(
            vocab_size=4101,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=48,
        )
    ).save_pretrained(model)
    folder = small_copy("prom_300_all", tmp_path / "p300", rows=48)
    provenance = tmp_path / "prov.json"
    check_provenance("prom_300_all", folder, provenance, source="local")
    settings = gue_settings("prom_300_all", seed=0, learning_rate=1e-3, batch_size=8, warmup_steps=2)
    record = run_gue_finetune(str(model), "prom_300_all", folder, provenance, settings)
    assert len(record["dev_epochs"]) == 3 and record["n_dev"] == 48 and record["n_train"] == 48
    losses = [epoch["loss"] for epoch in record["dev_epochs"]]
    assert record["selected_epoch"] == int(np.argmin(losses)) + 1
    assert record["max_length_used"] == 48 and record["model_positions"] == 48
    assert record["truncated_sequences"] == 3 * 48 and record["truncation"].startswith("right")
    assert record["steps"] == 3 * 6 and record["hyperparameters"]["warmup_steps"] == 2
    assert record["gue_files"]["train"] == json.loads(provenance.read_text())["files"]["train"]["sha256"]
    again = run_gue_finetune(str(model), "prom_300_all", folder, provenance, settings)
    assert again["metrics"] == record["metrics"] and again["dev_epochs"] == record["dev_epochs"]


# ---------------------------------------------------------------- tables


def fake_runs(out: Path) -> list[Path]:
    """tiny_{random,genemask}_60 on three tasks, two seeds; genemask is 2 MCC points better on every task."""
    paths = []
    for task, base in (("prom_core_all", 0.40), ("emp_H3", 0.30), ("virus_covid", 0.20)):
        for model, shift in (("tiny_random_60", 0.0), ("tiny_genemask_60", 0.02)):
            for seed in (0, 1):
                mcc = base + shift + 0.01 * seed
                record = {"metrics": {"accuracy": 0.7, "macro_f1": 0.7, "mcc": mcc, "auc": float("nan")}}
                record["deviations"] = ["training set subsampled"] if task == "emp_H3" else []
                path = out / f"{model}_{task}_{seed}.json"
                write_gue_record(path, record, model=model, task=task, seed=seed)
                paths.append(path)
    return paths


def test_tables_put_ours_beside_the_published_columns(tmp_path):
    summary = make_gue_results(
        fake_runs(tmp_path / "runs"), tmp_path, models=["tiny_random_60", "tiny_genemask_60"]
    )
    assert set(summary.task) == {"prom_core_all", "emp_H3", "virus_covid"}
    markdown = (tmp_path / "tables/gue.md").read_text()
    assert "| CPD (Human) | all | 40.50 ± 0.71 | 42.50 ± 0.71 | 66.28 | 68.90 |" in markdown
    assert "| Virus | Covid | 20.50 ± 0.71 | 22.50 ± 0.71 | – |" in markdown
    assert "mean over these 2 tasks** | 35.50 | 37.50 |" in markdown  # Covid is not in the paper's mean
    assert "27-task mean (published)** |  |  | 65.17 |" in markdown
    assert "EMP (Yeast) H3: training set subsampled" in markdown
    tests = pd.read_csv(tmp_path / "tables/gue_tests.csv")
    row = tests.iloc[0]
    assert (row.model, row.baseline, row.comparison, row.n_pairs) == (
        "tiny_genemask_60",
        "tiny_random_60",
        "random",
        3,
    )
    assert row.mean_difference == pytest.approx(2.0) and (row.wins, row.ties, row.losses) == (3, 0, 0)
    # 2 MCC points better on every task (up to float noise): a constant difference, no t-test, Wilcoxon 2/2^3
    assert np.isnan(row.p_ttest) and row.p_wilcoxon == pytest.approx(0.25)
    assert "| tiny_random_60 (n=2) | tiny_genemask_60 (n=2) |" in markdown
    tidy = pd.read_csv(tmp_path / "tables/gue.csv")
    assert set(tidy.source) == {"ours", "published"} and set(tidy[tidy.source == "published"].task) == {
        "prom_core_all",
        "emp_H3",
    }
    assert "\\begin{tabular}" in (tmp_path / "tables/gue.tex").read_text()
    assert (tmp_path / "figures/gue_heatmap.png").stat().st_size > 10_000


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(0)
    random = rng.uniform(20, 80, 27)
    means = pd.DataFrame({"logo_random_10000": random, "logo_genemask_10000": random + rng.normal(1, 2, 27)})
    means.loc[3, "logo_genemask_10000"] = np.nan  # a task one model lacks drops out of the pairing
    row = paired_tests(means).iloc[0]
    kept = means.dropna()
    expected = stats.ttest_rel(kept.logo_genemask_10000, kept.logo_random_10000)
    assert row.n_pairs == 26 and row.p_ttest == pytest.approx(expected.pvalue)
    assert row.p_wilcoxon == pytest.approx(
        stats.wilcoxon(kept.logo_genemask_10000 - kept.logo_random_10000).pvalue
    )


# ---------------------------------------------------------------- workflow


def test_study_and_demo_configs_plan_the_gue_jobs(tmp_path):
    if shutil.which("snakemake") is None and not (Path(sys.executable).parent / "snakemake").exists():
        pytest.skip("snakemake not installed")
    snakemake = str(Path(sys.executable).parent / "snakemake")
    local_paths = {task: str(shared_dir(task)) for task in ("prom_core_all", "prom_300_all")}
    overlay = tmp_path / "local.yaml"
    overlay.write_text(yaml.safe_dump({"finetune": {"gue": {"local_paths": local_paths}}}))
    result = subprocess.run(
        [snakemake, "-n", "-p", "-s", REPO / "workflow/Snakefile", "-d", tmp_path, "gue", "--configfile"]
        + [REPO / "config/demo.yaml", REPO / "config/gue-demo.yaml", overlay],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = dict(
        line.split()
        for line in result.stdout.splitlines()
        if line.startswith(("gue_finetune ", "gue_check "))
    )
    assert counts == {"gue_finetune": "6", "gue_check": "2"}  # 3 models x 2 tasks x 1 seed
    assert "--dev-as-train" in result.stdout and "--max-train 2000" in result.stdout
