"""Metrics, the k-mer baseline, fine-tuning a locally saved tiny BERT, and the fine-tuning grid in Snakemake."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch
from transformers import BertConfig, BertForMaskedLM

from genemask import cli
from genemask.errors import UserError
from genemask.evaluation import run_cache
from genemask.evaluation.finetune import FinetuneSettings, encode_batch, finetune, kmer_size, load_model
from genemask.evaluation.kmer_baseline import fit_logistic_regression, kmer_counts
from genemask.evaluation.metrics import accuracy, binary_auc, classification_metrics, macro_f1, mcc, roc_auc
from genemask.evaluation.tasks import LabelledSequences, write_labelled_tsv
from genemask.genome.simulate import simulate_genome
from genemask.masking.tokenizer import CLS_ID, PAD_ID, SEP_ID, UNK_ID, kmer_to_id

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- metrics against brute force and hand examples


def brute_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def brute_macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = sum((a == c) and (b == c) for a, b in zip(y, pred, strict=True))
        fp = sum((a != c) and (b == c) for a, b in zip(y, pred, strict=True))
        fn = sum((a == c) and (b != c) for a, b in zip(y, pred, strict=True))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores))


def brute_mcc(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Gorodkin's R_K as a correlation of one-hot matrices: cov(X, Y) / sqrt(cov(X, X) cov(Y, Y))."""
    x, z = np.eye(n_classes)[pred], np.eye(n_classes)[y]

    def cov(a, b):
        return float(np.sum((a - a.mean(axis=0)) * (b - b.mean(axis=0))))

    denominator = np.sqrt(cov(x, x) * cov(z, z))
    return cov(x, z) / denominator if denominator else 0.0


def test_metrics_match_brute_force_on_random_cases():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n_classes = int(rng.integers(2, 5))
        y = rng.integers(0, n_classes, 40)
        y[:n_classes] = np.arange(n_classes)
        probabilities = rng.random((40, n_classes))
        if trial % 2:
            probabilities = np.round(probabilities, 1) + 1e-3  # ties
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        pred = probabilities.argmax(axis=1)
        assert accuracy(y, pred) == pytest.approx(np.mean(y == pred))
        assert macro_f1(y, pred, n_classes) == pytest.approx(brute_macro_f1(y, pred, n_classes))
        assert mcc(y, pred, n_classes) == pytest.approx(brute_mcc(y, pred, n_classes))
        if n_classes == 2:
            expected_auc = brute_auc(y == 1, probabilities[:, 1])
        else:  # one-vs-one macro (Hand & Till), by brute force
            expected_auc = np.mean(
                [
                    (
                        brute_auc(y[(y == a) | (y == b)] == a, probabilities[(y == a) | (y == b), a])
                        + brute_auc(y[(y == a) | (y == b)] == b, probabilities[(y == a) | (y == b), b])
                    )
                    / 2
                    for a, b in itertools.combinations(range(n_classes), 2)
                ]
            )
        assert roc_auc(y, probabilities) == pytest.approx(expected_auc)


def test_metrics_on_hand_examples():
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert classification_metrics(y, perfect) == {"accuracy": 1.0, "macro_f1": 1.0, "mcc": 1.0, "auc": 1.0}
    inverted = classification_metrics(y, perfect[:, ::-1])
    assert inverted == {"accuracy": 0.0, "macro_f1": 0.0, "mcc": -1.0, "auc": 0.0}
    # One class predicted for everything: MCC is undefined and reported as 0, macro-F1 = (2/3 + 0) / 2.
    constant = classification_metrics(y, np.tile([0.6, 0.4], (4, 1)))
    assert constant["mcc"] == 0.0 and constant["macro_f1"] == pytest.approx(1 / 3) and constant["auc"] == 0.5
    # tp=2 fp=1 fn=0 tn=1: phi = (2*1 - 1*0) / sqrt(3*2*1*2)
    assert mcc(np.array([1, 1, 0, 0]), np.array([1, 1, 1, 0]), 2) == pytest.approx(2 / np.sqrt(12))
    assert np.isnan(binary_auc(np.array([True, True]), np.array([0.1, 0.2])))


# ---------------------------------------------------------------- k-mer logistic regression


def test_kmer_counts_match_a_counter():
    sequences = ["ACGTACGTAC", "AAAAAAAN", "ACG", "TTTTTTTTTTTT"]
    counts = kmer_counts(sequences, 4).toarray()
    assert counts.shape == (4, 256)
    for row, sequence in enumerate(sequences):
        expected = collections.Counter(
            sequence[i : i + 4] for i in range(len(sequence) - 3) if "N" not in sequence[i : i + 4]
        )
        assert {kmer: counts[row, kmer_to_id(kmer) - 5] for kmer in expected} == dict(expected)
        assert counts[row].sum() == sum(expected.values())
    assert UNK_ID == 1  # k-mers with N are skipped, not counted as a token


def test_logistic_regression_gradient_and_fit():
    rng = np.random.default_rng(3)
    sequences = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(60)]
    labels = np.array([("GATA" in s) + ("TTTT" in s) for s in sequences])
    features = kmer_counts(sequences, 4)
    model = fit_logistic_regression(features, labels, 3, l2=0.1)
    assert np.mean(model.predict_proba(features).argmax(axis=1) == labels) > 0.95
    assert np.allclose(model.predict_proba(features).sum(axis=1), 1)
    stronger = fit_logistic_regression(features, labels, 3, l2=10.0)
    assert np.linalg.norm(stronger.weights) < np.linalg.norm(model.weights)
    with pytest.raises(UserError):
        fit_logistic_regression(features, labels, 3, l2=0)


def test_logistic_regression_loss_gradient_is_exact():
    rng = np.random.default_rng(1)
    features = kmer_counts(["".join(rng.choice(list("ACGT"), 12)) for _ in range(8)], 3)
    labels = rng.integers(0, 3, 8)
    one_hot = np.eye(3)[labels]
    n_features = features.shape[1]

    def loss(theta):
        w, b = theta[: n_features * 3].reshape(n_features, 3), theta[n_features * 3 :]
        logits = features @ w + b
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -np.sum(one_hot * log_p) + 0.5 * 0.7 * np.sum(w**2)

    fitted = fit_logistic_regression(features, labels, 3, l2=0.7)
    theta = np.concatenate([fitted.weights.ravel(), fitted.intercept])
    numeric = scipy.optimize.approx_fprime(theta, loss, 1e-6)
    assert np.abs(numeric).max() < 1e-3  # a stationary point of the stated objective


def test_kmer_baseline_command_writes_a_run_record(tmp_path):
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(40)]
    labels = np.array([int("CG" in s[10:20]) for s in sequences])
    write_labelled_tsv(tmp_path / "train.tsv", LabelledSequences(sequences[:30], labels[:30]))
    write_labelled_tsv(tmp_path / "test.tsv", LabelledSequences(sequences[30:], labels[30:]))
    out = tmp_path / "run.json"
    args = ["kmer-baseline", "--train", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv")]
    assert (
        cli.main([*args, "--task", "toy", "--shots", "15", "--seed", "3", "--out", str(out), "--k", "3"]) == 0
    )
    record = json.loads(out.read_text())
    assert (record["model"], record["task"], record["shots"], record["seed"]) == ("kmer-logreg", "toy", 15, 3)
    assert set(record["metrics"]) == {"accuracy", "macro_f1", "mcc", "auc"}
    assert record["n_train"] == 30 and record["n_test"] == 10 and record["hyperparameters"]["k"] == 3


# ---------------------------------------------------------------- fine-tuning a tiny local model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny BertForMaskedLM saved locally, standing in for a pretrained checkpoint."""
    path = tmp_path_factory.mktemp("models") / "tiny"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=4101,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertForMaskedLM(config).save_pretrained(path)
    return path


def composition_task(n_per_class: int, seed: int) -> LabelledSequences:
    """Class 1 is AT-rich, class 0 GC-rich: learnable by a tiny model in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    weights = {0: [0.1, 0.4, 0.4, 0.1], 1: [0.4, 0.1, 0.1, 0.4]}
    sequences = ["".join(rng.choice(list("ACGT"), 30, p=weights[label])) for label in labels]
    return LabelledSequences(sequences, labels)


def test_encode_batch_adds_cls_sep_and_padding():
    ids, mask = encode_batch(["ACGTACGT", "ACGTAC"], 6, 512)
    assert ids.tolist()[0] == [
        CLS_ID,
        kmer_to_id("ACGTAC"),
        kmer_to_id("CGTACG"),
        kmer_to_id("GTACGT"),
        SEP_ID,
    ]
    assert ids.tolist()[1] == [CLS_ID, kmer_to_id("ACGTAC"), SEP_ID, PAD_ID, PAD_ID]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert encode_batch(["A" * 100], 6, 10)[0].shape == (1, 10)


def test_kmer_size_is_read_from_the_vocabulary():
    assert [kmer_size(5 + 4**k) for k in (3, 4, 5, 6)] == [3, 4, 5, 6]
    with pytest.raises(UserError, match="not DNABERT-style"):
        kmer_size(30522)


def test_pretrained_weights_are_loaded_and_random_init_is_not(tiny_model):
    saved = BertForMaskedLM.from_pretrained(tiny_model).bert.embeddings.word_embeddings.weight
    pretrained = load_model(str(tiny_model), 3, 0.1, random_init=False)
    assert torch.equal(pretrained.bert.embeddings.word_embeddings.weight, saved)
    assert pretrained.config.num_labels == 3 and pretrained.config.hidden_dropout_prob == 0.1
    assert pretrained.classifier.weight.shape == (3, 32)
    scratch = load_model(str(tiny_model), 2, 0.2, random_init=True)
    assert not torch.equal(scratch.bert.embeddings.word_embeddings.weight, saved)
    assert scratch.config.hidden_size == 32 and scratch.config.attention_probs_dropout_prob == 0.2
    preset = load_model(
        "tiny", 2, 0.1, random_init=True
    )  # a genemask.training.models preset: no checkpoint needed
    assert preset.config.vocab_size == 4101
    with pytest.raises(UserError, match="absent: no such directory"):
        load_model(str(tiny_model.parent / "absent"), 2, 0.1, random_init=False)


def test_finetuning_learns_and_is_deterministic(tiny_model):
    torch.set_num_threads(1)
    train, test = composition_task(20, 0), composition_task(50, 1)
    settings = FinetuneSettings(learning_rate=5e-3, epochs=10, batch_size=8, seed=0)
    first = finetune(str(tiny_model), train, test, 2, settings)
    assert first["metrics"]["accuracy"] > 0.8  # chance is 0.5
    assert first["epoch_losses"][-1] < first["epoch_losses"][0]
    assert first["steps"] == 10 * 5 and first["n_test"] == 100 and first["k"] == 6
    again = finetune(str(tiny_model), train, test, 2, settings)
    assert again["metrics"] == first["metrics"] and again["epoch_losses"] == first["epoch_losses"]
    other_seed = finetune(str(tiny_model), train, test, 2, dataclasses.replace(settings, seed=1))
    assert other_seed["epoch_losses"] != first["epoch_losses"]


def test_finetune_command_writes_a_run_record(tiny_model, tmp_path):
    write_labelled_tsv(tmp_path / "train.tsv", composition_task(5, 0))
    write_labelled_tsv(tmp_path / "test.tsv", composition_task(10, 1))
    out = tmp_path / "runs" / "run.json"
    args = ["finetune", "--model", str(tiny_model), "--train", str(tmp_path / "train.tsv")]
    args += ["--test", str(tmp_path / "test.tsv"), "--task", "toy", "--shots", "5", "--epochs", "2"]
    assert cli.main([*args, "--seed", "4", "--name", "tiny", "--random-init", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert (record["model"], record["task"], record["shots"], record["seed"]) == ("tiny", "toy", 5, 4)
    assert record["hyperparameters"]["random_init"] and record["hyperparameters"]["epochs"] == 2
    assert record["model_source"] == str(tiny_model) and record["n_train"] == 10

    one_class = tmp_path / "one_class.tsv"
    write_labelled_tsv(one_class, composition_task(5, 0).subset(range(5)))
    bad = [*args, "--out", str(tmp_path / "bad.json")]
    assert cli.main([*bad[:3], *["--train", str(one_class)], *bad[5:]]) == 2
    assert cli.main(["finetune", "--model", str(tmp_path / "absent"), *bad[3:]]) == 2
    assert not (tmp_path / "bad.json").exists()


def write_draws(folder: Path) -> dict[str, Path]:
    """Two training draws and a test set of the composition task, as TSVs."""
    paths = {name: folder / f"{name}.tsv" for name in ("a", "b", "test")}
    write_labelled_tsv(paths["a"], composition_task(5, 0))
    write_labelled_tsv(paths["b"], composition_task(5, 2))
    write_labelled_tsv(paths["test"], composition_task(10, 1))
    return paths


def finetune_runs(model: Path, paths: dict[str, Path], runs: list[str], *more: str) -> int:
    args = [
        "finetune",
        "--model",
        str(model),
        "--name",
        "tiny",
        "--task",
        "toy",
        "--test",
        str(paths["test"]),
    ]
    return cli.main([*args, *more, *(item for run in runs for item in ["--run", *run.split()])])


def test_one_process_runs_each_run_as_a_process_of_its_own_would(tiny_model, tmp_path):
    paths = write_draws(tmp_path)
    runs = [
        f"shots=5 seed=0 train={paths['a']} out={tmp_path}/many/a.json epochs=2",
        f"shots=5 seed=1 train={paths['b']} out={tmp_path}/many/b.json learning_rate=0.01 batch_size=4",
    ]
    assert finetune_runs(tiny_model, paths, runs, "--epochs", "3") == 0
    a, b = (json.loads((tmp_path / "many" / f"{n}.json").read_text()) for n in "ab")
    assert (a["seed"], a["hyperparameters"]["epochs"], a["hyperparameters"]["learning_rate"]) == (0, 2, 1e-4)
    assert (b["seed"], b["hyperparameters"]["epochs"], b["hyperparameters"]["batch_size"]) == (1, 3, 4)
    assert a["from_cache"] is False and a["run_key"] != b["run_key"]
    assert a["run_seconds"] >= a["train_seconds"] + a["eval_seconds"]
    # The second run alone, in a process of its own: the same weights, losses and scores.
    alone = ["finetune", "--model", str(tiny_model), "--name", "tiny", "--task", "toy", "--test"]
    alone += [str(paths["test"]), "--train", str(paths["b"]), "--shots", "5", "--seed", "1", "--epochs", "3"]
    alone += ["--lr", "0.01", "--batch-size", "4", "--out", str(tmp_path / "alone.json")]
    assert cli.main(alone) == 0
    single = json.loads((tmp_path / "alone.json").read_text())
    assert single["epoch_losses"] == b["epoch_losses"] and single["metrics"] == b["metrics"]
    assert single["run_key"] == b["run_key"]


def test_the_run_cache_trains_only_runs_it_has_not_seen(tiny_model, tmp_path):
    paths, cache = write_draws(tmp_path), ["--cache", str(tmp_path / "cache"), "--epochs", "2"]
    first = f"shots=5 seed=0 train={paths['a']} out={tmp_path}/runs/a.json"
    assert finetune_runs(tiny_model, paths, [first], *cache) == 0
    trained = json.loads((tmp_path / "runs" / "a.json").read_text())
    # A seed added: the finished run comes from the cache (its record as it was), only the new one trains.
    second = f"shots=5 seed=1 train={paths['b']} out={tmp_path}/runs/b.json"
    (tmp_path / "runs" / "a.json").unlink()  # as Snakemake deletes a job's outputs before running it
    assert finetune_runs(tiny_model, paths, [first, second], *cache) == 0
    again = json.loads((tmp_path / "runs" / "a.json").read_text())
    assert (
        again["from_cache"] is True
        and json.loads((tmp_path / "runs" / "b.json").read_text())["from_cache"] is False
    )
    assert {**again, "from_cache": False} == trained  # the same record: nothing trained again
    # Anything that determines the run misses the cache: a setting, the draw's content, the model's weights.
    for change in (
        lambda: cache.extend(["--dropout", "0.2"]),
        lambda: write_labelled_tsv(paths["a"], composition_task(5, 7)),
        lambda: BertForMaskedLM.from_pretrained(tiny_model).half().float().save_pretrained(tmp_path / "m"),
    ):
        change()
        model = tmp_path / "m" if (tmp_path / "m").exists() else tiny_model
        run_cache.file_sha256.cache_clear()  # a new process would hash the changed file afresh
        assert finetune_runs(model, paths, [first], *cache) == 0
        assert json.loads((tmp_path / "runs" / "a.json").read_text())["from_cache"] is False


def test_bad_run_lists_are_refused_before_any_work(tiny_model, tmp_path, capsys):
    paths = write_draws(tmp_path)
    run = f"shots=5 seed=0 train={paths['a']} out={tmp_path}/a.json"
    cases = {
        "lacks out": [f"shots=5 seed=0 train={paths['a']}"],
        "unknown name 'lr'": [f"{run} lr=0.1"],
        "expected name=value items": [f"{run} epochs"],
        "is written by more than one run": [run, run.replace("seed=0", "seed=1")],
        "is given more than once": [run, run.replace("a.json", "b.json")],
        "--lr -1.0: expected a finite number in (0, 1]": [f"{run} learning_rate=-1"],
    }
    for message, runs in cases.items():
        assert finetune_runs(tiny_model, paths, runs) == 2, message
        assert message in capsys.readouterr().err
    assert finetune_runs(tiny_model, paths, [run], "--train", str(paths["a"])) == 2
    assert "--run and --train" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.json"))


def test_kmer_baseline_runs_several_draws_and_caches_them(tmp_path):
    paths = write_draws(tmp_path)
    runs = [
        f"shots=5 seed={seed} train={paths[name]} out={tmp_path}/k{seed}.json"
        for seed, name in enumerate("ab")
    ]
    args = [
        "kmer-baseline",
        "--task",
        "toy",
        "--test",
        str(paths["test"]),
        "--k",
        "3",
        "--cache",
        str(tmp_path / "c"),
    ]
    for cached in (False, True):
        assert cli.main([*args, *(item for run in runs for item in ["--run", *run.split()])]) == 0
        records = [json.loads((tmp_path / f"k{seed}.json").read_text()) for seed in (0, 1)]
        assert [(r["model"], r["seed"], r["from_cache"]) for r in records] == [
            ("kmer-logreg", s, cached) for s in (0, 1)
        ]
        assert all(r["train_seconds"] >= 0 and r["eval_seconds"] >= 0 for r in records)


def test_one_process_does_the_runs_of_several_tasks_each_on_its_own_test_set(tmp_path):
    paths = write_draws(tmp_path)
    other_test = tmp_path / "other_test.tsv"
    write_labelled_tsv(other_test, composition_task(4, 7))
    runs = [
        f"task=toy test={paths['test']} shots=5 seed=0 train={paths['a']} out={tmp_path}/toy.json",
        f"task=other test={other_test} shots=5 seed=0 train={paths['a']} out={tmp_path}/other.json",
    ]
    args = ["kmer-baseline", "--k", "3", "--cache", str(tmp_path / "c")]
    assert cli.main([*args, *(item for run in runs for item in ["--run", *run.split()])]) == 0
    toy, other = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("toy", "other"))
    assert (toy["task"], other["task"]) == ("toy", "other")
    assert (toy["n_test"], other["n_test"]) == (20, 8)  # same draw, each on its task's test set
    # Each alone, with --task and --test, gives the same record; the cache keeps the tasks apart.
    alone = tmp_path / "alone.json"
    single = ["--task", "other", "--test", str(other_test), "--train", str(paths["a"]), "--shots", "5"]
    assert cli.main(["kmer-baseline", "--k", "3", *single, "--out", str(alone)]) == 0
    assert {key: json.loads(alone.read_text())[key] for key in ("metrics", "n_test")} == {
        key: other[key] for key in ("metrics", "n_test")
    }
    assert sorted(p.parts[-3] for p in (tmp_path / "c").rglob("*.json")) == ["other", "toy"]


def test_a_run_without_a_task_or_test_set_is_refused_naming_what_is_missing(tmp_path, capsys):
    paths = write_draws(tmp_path)
    run = ["--run", "shots=5", "seed=0", f"train={paths['a']}", f"out={tmp_path}/a.json"]
    assert cli.main(["kmer-baseline", "--test", str(paths["test"]), *run]) == 2
    assert "lacks task (and no --task for it)" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


# ---------------------------------------------------------------- the grid in Snakemake


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def planned(workdir: Path) -> dict[str, str]:
    """Output file -> plan ('update pending', 'no update', ...) of a dry run."""
    result = snakemake(workdir, "--dry-run", "--summary")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    header = rows[0]
    return {row[0]: row[header.index("plan")] for row in rows[1:]}


WORKFLOW_CONFIG = """\
pretrain: {architectures: [tiny], strategies: [random], steps: [1]}
finetune:
  tasks: [sim-promoter]
  shots: [10, 200]
  seeds: [0]
  references: {}
  random_init_reference: true
  kmer_logistic_reference: true
  splice_shots_multiplier: 10
  regimes:
    few: {max_shots: 100, learning_rate: 1.0e-4, epochs: 1, batch_size: 5}
    many: {max_shots: 1000000, learning_rate: 5.0e-5, epochs: 1, batch_size: 50}
  warmup_ratio: 0.1
  weight_decay: 0.01
  dropout: 0.1
  simulate: {seed: 3, test_size: 40}
"""


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    """A scratch workflow: the fine-tuning rules, a simulated genome and a 'pretrained' tiny model in place."""
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n'
        f'include: "{REPO / "workflow" / "rules" / "common.smk"}"\n'
        f'include: "{REPO / "workflow" / "rules" / "finetune.smk"}"\n'
        "rule all:\n    input: rules.fewshot_results.output\n"
    )
    (tmp_path / "config.yaml").write_text(WORKFLOW_CONFIG)
    simulate_genome(tmp_path / "results/genome/simulated.fa.gz", length=200_000, seed=1, n_contigs=2)
    torch.manual_seed(0)
    BertForMaskedLM(
        BertConfig(
            vocab_size=4101, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    ).save_pretrained(tmp_path / "results/models/tiny_random_1")
    return tmp_path


@pytest.mark.slow
def test_grid_reruns_only_what_a_change_affects(workflow_dir):
    if shutil.which("bash") is None:
        pytest.skip("snakemake shell rules need bash")
    result = snakemake(workflow_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(
        str(p.relative_to(workflow_dir)) for p in (workflow_dir / "results/finetune").rglob("*.json")
    )
    assert runs == sorted(
        f"results/finetune/{model}/sim-promoter/{shots}/seed0.json"
        for model in ("tiny_random_1", "tiny_random-init", "kmer-logreg")
        for shots in (10, 200)
    )
    assert (workflow_dir / "results/tables/fewshot.tex").exists()
    assert (workflow_dir / "results/figures/sim-promoter.png").exists()
    assert "update pending" not in planned(workflow_dir).values()

    # A few-shot hyper-parameter: the neural (model, task) jobs and the tables, nothing else; the jobs train only
    # their few-shot runs again (the 200-shot runs come from the run cache).
    config = workflow_dir / "config.yaml"
    config.write_text(WORKFLOW_CONFIG.replace("learning_rate: 1.0e-4", "learning_rate: 2.0e-4"))
    pending = {path for path, plan in planned(workflow_dir).items() if plan != "no update"}
    neural = [f"results/finetune/{m}/sim-promoter" for m in ("tiny_random_1", "tiny_random-init")]
    assert {p for p in pending if p.startswith("results/finetune/")} == {
        f"{job}/{shots}/seed0.json" for job in neural for shots in (10, 200)
    }
    assert "results/tables/fewshot.csv" in pending
    assert not {p for p in pending if p.startswith("results/tasks/")}
    result = snakemake(workflow_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in neural:
        records = {
            shots: json.loads((workflow_dir / f"{job}/{shots}/seed0.json").read_text()) for shots in (10, 200)
        }
        assert (records[10]["from_cache"], records[200]["from_cache"]) == (False, True)
        assert records[10]["hyperparameters"]["learning_rate"] == 2.0e-4

    # One more seed: that seed's draws; every fine-tuning job again, but it trains only the new seed.
    config.write_text(
        WORKFLOW_CONFIG.replace("learning_rate: 1.0e-4", "learning_rate: 2.0e-4").replace(
            "seeds: [0]", "seeds: [0, 1]"
        )
    )
    pending = {path for path, plan in planned(workflow_dir).items() if plan != "no update"}
    assert {p for p in pending if p.startswith("results/tasks/")} == {
        f"results/tasks/sim-promoter/{shots}/seed1.tsv" for shots in (10, 200)
    }
    assert {p for p in pending if p.startswith("results/finetune/")} == {
        f"results/finetune/{m}/sim-promoter/{shots}/seed{seed}.json"
        for m in ("tiny_random_1", "tiny_random-init", "kmer-logreg")
        for shots in (10, 200)
        for seed in (0, 1)
    }
    result = snakemake(workflow_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    for record in (workflow_dir / "results/finetune").rglob("*.json"):
        assert json.loads(record.read_text())["from_cache"] is (record.name == "seed0.json"), record


def test_real_tasks_and_references_are_wired_into_the_grid(workflow_dir):
    config = (
        WORKFLOW_CONFIG.replace("tasks: [sim-promoter]", "tasks: [splice-40]")
        .replace("seeds: [0]", "seeds: [0, 1]")
        .replace(
            "references: {}",
            "references: {dnabert-6: zhihan1996/DNA_bert_6, local: results/models/tiny_random_1}",
        )
    )
    (workflow_dir / "config.yaml").write_text(config)
    result = snakemake(workflow_dir, "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "genemask tasks download --task splice-40 --path Splice-40/test.tsv" in out
    assert "genemask tasks download --task splice-40 --path Splice-40/full-dataset/train.tsv" in out
    assert "genemask tasks prepare --task splice-40" in out
    assert "--seed 0 --splice-multiplier 10 --published results/tasks/splice-40/published/10.tsv" in out
    assert "--seed 1 --splice-multiplier 10  --out" in out
    # An HF id and a local checkpoint are fine-tuned alike; the floor is the preset with random weights.
    assert "genemask finetune --model zhihan1996/DNA_bert_6  --name dnabert-6 " in out
    assert "genemask finetune --model results/models/tiny_random_1  --name local " in out
    assert "genemask finetune --model tiny --random-init --name tiny_random-init " in out
    # One job per model, one --run per task, shot count and seed, each naming its task and test set.
    assert out.count("genemask finetune ") == 4 and out.count("genemask kmer-baseline ") == 1
    assert out.count(" --run task=splice-40 test=results/tasks/splice-40/test.tsv shots=") == (4 + 1) * 2 * 2


def test_fixed_cost_per_run_from_benchmark_files_and_records(tmp_path):
    from genemask.evaluation.fixed_cost import measure

    def benchmark(path: Path, seconds: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{seconds}\t100\n")

    def record(path: Path, train: float, run: float | None = None, cached: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = {"train_seconds": train, "eval_seconds": 0.5, "from_cache": cached}
        path.write_text(json.dumps(fields | ({"run_seconds": run} if run is not None else {})))

    # One job per (model, task), two trained runs and one from the cache; a k-mer job of one run.
    benchmark(tmp_path / "b" / "tiny_random_60" / "sim-promoter.tsv", 10.0)
    record(tmp_path / "r" / "tiny_random_60" / "sim-promoter" / "10" / "seed0.json", 1.0, run=2.0)
    record(tmp_path / "r" / "tiny_random_60" / "sim-promoter" / "10" / "seed1.json", 2.5, run=3.5)
    record(tmp_path / "r" / "tiny_random_60" / "sim-promoter" / "50" / "seed0.json", 9.0, cached=True)
    benchmark(tmp_path / "b" / "kmer-logreg" / "sim-promoter" / "10" / "seed0.tsv", 3.0)  # one job per run
    record(tmp_path / "r" / "kmer-logreg" / "sim-promoter" / "10" / "seed0.json", 0.5)
    costs = measure(tmp_path / "b", tmp_path / "r")
    neural = costs["neural"]
    assert (neural.jobs, neural.runs, neural.cached) == (1, 2, 1)
    assert neural.per_run == pytest.approx((10.0 - 1.5 - 3.0) / 2)
    assert neural.per_process == pytest.approx(
        10.0 - 1.5 - 3.0 - 1.0
    )  # each run's own 0.5 s besides its work
    assert costs["kmer-logreg"].per_run == pytest.approx(2.0) and costs["kmer-logreg"].per_process is None
    assert costs["all"].per_run == pytest.approx((13.0 - 4.5 - 1.0) / 3)
