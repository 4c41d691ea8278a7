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
from genemask.errors import UserError
from genemask.evaluation.gue import (
    GUE_TASKS,
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
from genemask.evaluation.gue_recipe import RECIPES, GueRecipe, gue_recipe
from genemask.evaluation.gue_tables import PUBLISHED_FILE, load_published, make_gue_results, paired_tests
from genemask.evaluation.run_records import read_run_record, write_run_record
from genemask.evaluation.task_registry import GUE_MIRROR_REPOSITORY as MIRROR_REPOSITORY
from genemask.evaluation.task_registry import GUE_MIRROR_REVISION as MIRROR_REVISION
from genemask.evaluation.task_registry import TASKS, task_spec

REPO = Path(__file__).resolve().parents[1]
# A worktree beside the main checkout can point at the shared data with GENEMASK_SHARED_DATA.
SHARED = Path(os.environ.get("GENEMASK_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
SHARED_DIRS = {
    "prom_core_all": SHARED / "prom_core" / "gue_prom_core_all",
    "prom_300_all": SHARED / "prom_300" / "gue_prom_300_all",
    "splice_reconstructed": SHARED / "splice_40" / "gue_splice_reconstructed_400bp",
    "human_tf_1": SHARED / "gue_real" / "tf" / "1",
    "mouse_0": SHARED / "gue_real" / "mouse" / "0",
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


def test_registry_holds_the_28_tasks_beside_the_few_shot_ones():
    assert len(GUE_TASKS) == 28 and not set(GUE_TASKS) & set(TASKS)
    assert all(task_spec(name) is spec and spec.benchmark == "GUE" for name, spec in GUE_TASKS.items())
    assert sum(task.in_published_table for task in GUE_TASKS.values()) == 27  # all but Covid
    assert {task.n_classes for task in GUE_TASKS.values()} == {2, 3, 9}
    core, tf = GUE_TASKS["prom_core_all"], GUE_TASKS["human_tf_1"]
    assert (core.length, core.split_sizes, core.test_size, core.source) == (
        70,
        (47356, 5920, 5920),
        5920,
        "prom/prom_core_all",
    )
    assert (tf.lengths, tf.split_sizes, tf.source) == ((101, 101), (30672, 1000, 1000), "tf/1")
    assert GUE_TASKS["mouse_0"].lengths == (101, 101) and GUE_TASKS["emp_H3K4me3"].length == 500
    # DNABERT-2 scores Covid by F1; every other task by MCC
    assert {name for name, spec in GUE_TASKS.items() if spec.published_metric != "mcc"} == {"virus_covid"}
    assert GUE_TASKS["virus_covid"].published_metric == "macro_f1"
    assert mirror_url("emp_H3", "dev") == (
        f"https://huggingface.co/datasets/leannmlindsey/GUE/resolve/{MIRROR_REVISION}/GUE/emp_H3/dev.csv"
    )


# Transcribed from CM-GEMS's scripts/run_dnabert1_modelsgpu2_outputdir.sh (curriculum-GeneMask@d0bad0d):
# (epochs, warm-up steps, eval_steps, max_steps, per-device batch x 2 GPUs x accumulation, model_max_length).
AUTHORS_SCRIPT = {
    "emp_H3": (3, 50, 200, None, 8 * 2 * 2, 512),
    "prom_core_all": (4, 50, 400, None, 32, 80),
    "prom_core_notata": (4, 50, 400, None, 32, 80),
    "prom_core_tata": (10, 50, 200, None, 32, 80),
    "prom_300_all": (4, 50, 400, None, 32, 310),
    "prom_300_notata": (4, 50, 400, None, 32, 310),
    "prom_300_tata": (10, 50, 200, None, 32, 310),
    "splice_reconstructed": (5, 50, 200, None, 32, 410),
    "virus_covid": (9, 50, 200, None, 8 * 2 * 4, 1024),
    "mouse_3": (5, 30, 200, 1000, 32, 110),
    "human_tf_4": (3, 30, 200, None, 32, 110),
}


@pytest.mark.parametrize("task", AUTHORS_SCRIPT)
def test_recipe_is_the_authors_script(task):
    recipe = gue_recipe(task)
    assert (
        recipe.epochs,
        recipe.warmup_steps,
        recipe.eval_every,
        recipe.max_steps,
        recipe.batch_size,
        recipe.max_length,
    ) == AUTHORS_SCRIPT[task]
    assert recipe.learning_rate == 3e-5
    settings = gue_settings(task, seed=2, learning_rate=None)
    assert (settings.epochs, settings.warmup_steps, settings.batch_size, settings.seed) == (
        recipe.epochs,
        recipe.warmup_steps,
        recipe.batch_size,
        2,
    )


def test_every_task_has_one_recipe_and_mouse_stops_at_its_step_cap():
    assert {gue_recipe(task) for task in GUE_TASKS} == set(RECIPES.values())
    for index in range(5):
        assert (
            gue_recipe(f"mouse_{index}").max_steps == 1000
            and gue_recipe(f"human_tf_{index}").warmup_steps == 30
        )
    assert [name for name in GUE_TASKS if gue_recipe(name).eval_every == 400] == [
        "prom_300_all",
        "prom_300_notata",
        "prom_core_all",
        "prom_core_notata",
    ]
    # the step cap wins over the epochs, however few or many rows there are (HF `max_steps`)
    assert gue_recipe("mouse_1").total_steps(53952) == gue_recipe("mouse_3").total_steps(1904) == 1000
    assert GueRecipe(epochs=3, warmup_steps=0, eval_every=1, max_length=8).total_steps(65) == 3 * 3


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
    assert (
        local_task_dir("human_tf_1", SHARED / "gue_real") == SHARED / "gue_real" / "tf" / "1"
    )  # archive layout
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


def micro_model(path: Path, positions: int = 128) -> Path:
    """A 1-layer, 16-wide BERT with DNABERT-6's vocabulary: fast enough for real GUE files in a test."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=4101,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=positions,
    )
    BertForMaskedLM(config).save_pretrained(path)
    return path


def test_full_data_finetuning_selects_the_best_step_on_dev_and_records_truncation(tmp_path):
    model = micro_model(tmp_path / "short", positions=48)  # the 300-nt sequences (297 tokens) are truncated
    folder = small_copy("prom_300_all", tmp_path / "p300", rows=48)
    provenance = tmp_path / "prov.json"
    check_provenance("prom_300_all", folder, provenance, source="local")
    settings = gue_settings("prom_300_all", seed=0, learning_rate=1e-3, batch_size=8, warmup_steps=2)
    record = run_gue_finetune(str(model), "prom_300_all", folder, provenance, settings, max_steps=14)
    # 6 steps an epoch; the step cap (a departure here) stops at 14; no evaluation at the recipe's 400 steps,
    # so the final model is evaluated and kept
    assert record["steps"] == 14 and len(record["epoch_losses"]) == 3 and record["n_dev"] == 48
    assert record["eval_every"] == 400 and [e["step"] for e in record["dev_evaluations"]] == [14]
    assert record["selected"] == {"step": 14, "dev_loss": record["dev_evaluations"][0]["loss"]}
    assert record["recipe"] == {
        "epochs": 4,
        "warmup_steps": 50,
        "eval_every": 400,
        "max_length": 310,
        "max_steps": None,
        "batch_size": 32,
        "learning_rate": 3e-5,
    }
    assert record["recipe_departures"] == {
        "warmup_steps": 2,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_steps": 14,
    }
    assert record["max_length_used"] == 48 and record["model_positions"] == 48
    assert record["truncated_sequences"] == 3 * 48 and record["truncation"].startswith("right")
    assert record["gue_files"]["train"] == json.loads(provenance.read_text())["files"]["train"]["sha256"]
    again = run_gue_finetune(str(model), "prom_300_all", folder, provenance, settings, max_steps=14)
    assert again["metrics"] == record["metrics"] and again["dev_evaluations"] == record["dev_evaluations"]


def test_dev_is_evaluated_every_interval_and_the_lowest_dev_loss_is_tested(tmp_path):
    from genemask.evaluation.finetune import finetune

    model = micro_model(tmp_path / "micro")
    folder = small_copy("prom_core_all", tmp_path / "core", rows=40)
    provenance = tmp_path / "prov.json"
    check_provenance("prom_core_all", folder, provenance, source="local")
    data = load_gue_task("prom_core_all", folder, provenance, seed=0)
    settings = gue_settings("prom_core_all", seed=0, learning_rate=5e-3, batch_size=4, warmup_steps=0)
    record = finetune(
        str(model), data.train, data.test, 2, settings, dev=data.dev, eval_every=3, max_steps=13
    )
    evaluations = record["dev_evaluations"]
    assert record["steps"] == 13 and [e["step"] for e in evaluations] == [3, 6, 9, 12]  # not the final 13
    best = min(evaluations, key=lambda evaluation: evaluation["loss"])
    assert record["selected"] == {"step": best["step"], "dev_loss": best["loss"]}
    # the tested model is the selected checkpoint: tested on dev, it gives the selected step's dev metrics
    again = finetune(str(model), data.train, data.dev, 2, settings, dev=data.dev, eval_every=3, max_steps=13)
    assert again["metrics"]["mcc"] == pytest.approx(best["mcc"], abs=1e-6)


@pytest.mark.parametrize(("task", "max_train", "max_steps"), [("human_tf_1", 96, None), ("mouse_0", 64, 8)])
def test_gue_finetune_on_real_files_records_the_published_recipe(
    task, max_train, max_steps, tmp_path, capsys
):
    """`genemask gue finetune` on a real TF and mouse split: the run record (the one few-shot format, shots
    `full`) states the published epochs, warm-up, evaluation interval, step cap and the selected checkpoint."""
    folder = shared_dir(task)
    provenance, out = tmp_path / "prov.json", tmp_path / "run.json"
    check = ["gue", "check", "--task", task, "--dir", str(folder), "--provenance", str(provenance)]
    assert cli.main([*check, "--source", "local:shared", "--out", str(tmp_path / "checked.json")]) == 0
    args = ["gue", "finetune", "--task", task, "--dir", str(folder), "--provenance", str(provenance)]
    args += ["--model", str(micro_model(tmp_path / "micro")), "--name", "micro", "--seed", "1"]
    args += ["--max-train", str(max_train), "--out", str(out)]
    assert cli.main(args + ([] if max_steps is None else ["--max-steps", str(max_steps)])) == 0
    record = read_run_record(out)  # the few-shot reader takes it
    assert (record["model"], record["task"], record["shots"], record["seed"]) == ("micro", task, "full", 1)
    assert record["benchmark"] == "GUE" and record["published_metric"] == "mcc"
    recipe = record["recipe"]
    if task == "mouse_0":
        assert (recipe["epochs"], recipe["warmup_steps"], recipe["max_steps"]) == (5, 30, 1000)
        assert record["recipe_departures"] == {"max_steps": 8} and record["steps"] == 8
    else:
        assert (recipe["epochs"], recipe["warmup_steps"], recipe["max_steps"]) == (3, 30, None)
        assert record["recipe_departures"] == {} and record["steps"] == 3 * 3  # 96 rows, batch 32
    assert record["hyperparameters"]["warmup_steps"] == 30 and recipe["eval_every"] == 200
    assert record["selected"]["step"] == record["steps"] and record["n_test"] == GUE_TASKS[task].test_size
    assert record["n_dev"] == GUE_TASKS[task].split_sizes[1]
    assert f"subsampled to {max_train} of {GUE_TASKS[task].split_sizes[0]} rows" in record["deviations"][0]
    assert f"step {record['steps']} of {record['steps']} selected" in capsys.readouterr().out


def test_prom_300_tata_runs_ten_epochs_with_200_step_evaluations():
    """Not in the shared data: its recipe as the run would read it."""
    settings = gue_settings("prom_300_tata", seed=0)
    recipe = gue_recipe("prom_300_tata")
    assert (settings.epochs, settings.warmup_steps, settings.batch_size, settings.max_length) == (
        10,
        50,
        32,
        310,
    )
    assert (recipe.eval_every, recipe.max_steps) == (200, None)
    assert recipe.total_steps(GUE_TASKS["prom_300_tata"].split_sizes[0]) == 10 * 154  # 4,904 rows / 32


def test_the_one_reader_reads_gue_csvs_and_task_tsvs_alike(tmp_path):
    from genemask.evaluation.validation import read_labelled

    rows = (shared_dir("mouse_0") / "dev.csv").read_text().splitlines()[:6]
    csv_file, tsv_file = tmp_path / "dev.csv", tmp_path / "dev.tsv"
    csv_file.write_text("\n".join(rows) + "\n")
    tsv_file.write_text("\n".join(row.replace(",", "\t") for row in rows) + "\n")
    from_csv = read_labelled(csv_file, separator=",", length=101, n_classes=2)
    from_tsv = read_labelled(tsv_file, length=101, n_classes=2)
    assert from_csv.sequences == from_tsv.sequences and from_csv.labels.tolist() == from_tsv.labels.tolist()
    for path, separator in ((csv_file, ","), (tsv_file, "\t")):
        with pytest.raises(UserError, match=r"dev\.\w+: line 2: expected a sequence of 100 nt, got 101$"):
            read_labelled(path, separator=separator, length=100)
        with pytest.raises(UserError, match=r"line \d: expected a label in 0\.\.0, got 1$"):
            read_labelled(path, separator=separator, n_classes=1)


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
                write_run_record(path, record, model=model, task=task, shots="full", seed=seed)
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
    # DNABERT-2 scores Covid by F1: the table says so and shows ours in it
    assert (
        "- Virus (Covid): the DNABERT-2 paper reports macro_f1 x 100; ours: tiny_random_60 70.00 ± 0.00"
        in markdown
    )
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
    # the demo's learning rate overrides the recipe; the batch and warm-up stay each task's (no flags)
    commands = [line for line in result.stdout.splitlines() if "genemask gue finetune" in line]
    assert len(commands) == 6 and all("--lr 0.001" in line for line in commands)
    assert not any("--batch-size" in line or "--warmup-steps" in line for line in commands)
