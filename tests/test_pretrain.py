"""Pretraining: batch order, padding, and exact resume after SIGKILL, SIGTERM and the runtime limit (CPU, tiny)."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from genemask.errors import UserError
from genemask.genome.chunkstore import ChunkStore
from genemask.masking.collator import MLMCollator
from genemask.masking.kmer_ranks import load_kmer_ranks
from genemask.masking.schedules import CmStep
from genemask.masking.store import write_mask_store
from genemask.masking.strategies import Masker
from genemask.training.checkpoints import checkpoint_damage, list_checkpoints
from genemask.training.data import (
    ChunkTokens,
    GlobalBatches,
    StepLayout,
    WithMaskedPositions,
    eval_batches,
    padding_waste,
    split_global_batch,
    token_lengths,
)
from genemask.training.pretrain import EXIT_RESUMABLE, PretrainConfig, pretrain
from genemask.training.settings import batch_geometry

REPO = Path(__file__).resolve().parents[1]


def write_chunk_store(directory: Path, lengths: dict[str, np.ndarray], seed: int = 0) -> Path:
    """A chunk store in the documented format: random ACGT chunks of the given lengths per split."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, split_lengths in lengths.items():
        offsets = np.concatenate([[0], np.cumsum(split_lengths)]).astype(np.int64)
        np.save(directory / f"{split}.seq.npy", rng.integers(0, 4, offsets[-1], dtype=np.uint8))
        np.save(directory / f"{split}.offsets.npy", offsets)
        np.save(directory / f"{split}.contig.npy", np.zeros(len(split_lengths), dtype=np.int32))
        np.save(directory / f"{split}.start.npy", offsets[:-1].copy())
    total = sum(int(v.sum()) for v in lengths.values())
    (directory / "contigs.tsv").write_text(f"name\tlength\nsim1\t{total}\n")
    (directory / "summary.json").write_text(
        json.dumps({"chunks": {s: len(v) for s, v in lengths.items()}}) + "\n"
    )
    return directory


def published_lengths(rng: np.random.Generator, n: int, max_length: int = 511) -> np.ndarray:
    """docs/method.md section 2: 511 nt with probability 0.5, else uniform in 6..510."""
    return np.where(rng.random(n) < 0.5, max_length, rng.integers(6, max_length, n)).astype(np.int64)


@pytest.fixture(scope="module")
def chunks(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    # Short chunks keep each step fast; 60 train chunks = 7 steps per epoch, so the runs cross epochs.
    lengths = {"train": published_lengths(rng, 60, 120), "valid": published_lengths(rng, 24, 120)}
    return write_chunk_store(tmp_path_factory.mktemp("chunks"), lengths)


STEPS = 24
SETTINGS = dict(
    preset="tiny",
    steps=STEPS,
    seed=3,
    batch_size=4,
    global_batch=8,
    warmup_steps=4,
    eval_every=8,
    eval_chunks=16,
    checkpoint_every=5,
    log_every=1,
    threads=1,
    device="cpu",
)


def cli_args(config: PretrainConfig) -> list[str]:
    return [
        "--chunks", str(config.chunks), "--out", str(config.out), "--checkpoint-dir", str(config.checkpoint_dir),
        "--preset", config.preset, "--steps", str(config.steps), "--seed", str(config.seed),
        "--batch-size", str(config.batch_size), "--global-batch", str(config.global_batch),
        "--warmup", str(config.warmup_steps), "--eval-every", str(config.eval_every),
        "--eval-chunks", str(config.eval_chunks), "--checkpoint-every", str(config.checkpoint_every),
        "--log-every", str(config.log_every), "--threads", "1", "--device", "cpu", "--workers", "1",
    ]  # fmt: skip


def make_config(chunks: Path, root: Path, **overrides) -> PretrainConfig:
    return PretrainConfig(
        chunks=chunks,
        out=root / "model",
        checkpoint_dir=root / "checkpoints",
        workers=0,
        **(SETTINGS | overrides),
    )


@pytest.fixture(scope="module")
def reference(chunks, tmp_path_factory) -> PretrainConfig:
    """One uninterrupted run, in this process."""
    config = make_config(chunks, tmp_path_factory.mktemp("reference"))
    assert pretrain(config) == 0
    return config


def assert_same_run(config: PretrainConfig, reference: PretrainConfig, context: str) -> None:
    ours, theirs = load_file(config.out / "model.safetensors"), load_file(reference.out / "model.safetensors")
    assert ours.keys() == theirs.keys()
    different = [name for name in ours if not torch.equal(ours[name], theirs[name])]
    assert not different, (
        f"{context}: {len(different)} tensors differ from the uninterrupted run, e.g. {different[:3]}"
    )
    assert (config.out / "model.safetensors").read_bytes() == (
        reference.out / "model.safetensors"
    ).read_bytes()
    # Every logged loss matches too (timings aside).
    columns = [
        "step",
        "learning_rate",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_accuracy",
        "tokens",
    ]
    ours_rows = [line.split(",") for line in (config.out / "metrics.csv").read_text().splitlines()]
    theirs_rows = [line.split(",") for line in (reference.out / "metrics.csv").read_text().splitlines()]
    keep = [ours_rows[0].index(c) for c in columns]
    assert [[r[i] for i in keep] for r in ours_rows] == [[r[i] for i in keep] for r in theirs_rows], context
    assert len(ours_rows) == STEPS + 1


CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start_cli(config: PretrainConfig) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "genemask", "pretrain", *cli_args(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=CLI_ENV,
        cwd=REPO,
        start_new_session=True,  # its own process group, like a SLURM job step: signals reach the loader workers too
    )


def wait_for_step(process: subprocess.Popen, step: int) -> list[str]:
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(f"step {step}/"):
            return lines
    process.wait()
    raise AssertionError(f"the run ended (exit {process.returncode}) before step {step}:\n{''.join(lines)}")


def test_resume_after_sigkill_is_bit_identical(chunks, reference, tmp_path):
    config = make_config(chunks, tmp_path)
    kill_after = random.randint(6, STEPS - 3)
    process = start_cli(config)
    log = wait_for_step(process, kill_after)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not config.out.exists()
    saved = [step for step, _ in list_checkpoints(config.checkpoint_dir)]
    assert saved and max(saved) <= kill_after + 1 and len(saved) <= 2, (saved, "".join(log))
    assert pretrain(config) == 0
    assert_same_run(config, reference, f"killed after step {kill_after}, resumed from step {max(saved)}")


def test_resume_after_sigterm_is_bit_identical(chunks, reference, tmp_path):
    config = make_config(chunks, tmp_path)
    stop_after = random.randint(3, STEPS - 3)
    process = start_cli(config)
    wait_for_step(process, stop_after)
    os.killpg(process.pid, signal.SIGTERM)  # to the whole group, as SLURM does: workers must not die of it
    output, _ = process.communicate(timeout=120)
    assert process.returncode == EXIT_RESUMABLE, output
    assert "stopping before step" in output and "SIGTERM" in output, output
    saved = [step for step, _ in list_checkpoints(config.checkpoint_dir)]
    assert stop_after <= max(saved) < STEPS, (saved, output)
    assert pretrain(config) == 0
    assert_same_run(config, reference, f"SIGTERM after step {stop_after}, resumed from step {max(saved)}")


def test_ctrl_c_checkpoints_like_sigterm(chunks, reference, tmp_path):
    """Ctrl-C reaches the whole foreground process group: the run (not its loader workers) checkpoints."""
    config = make_config(chunks, tmp_path)
    process = start_cli(config)
    wait_for_step(process, 3)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == EXIT_RESUMABLE, output
    assert "stopping before step" in output and "(SIGINT)" in output, output
    assert "Traceback" not in output, output
    assert pretrain(config) == 0
    assert_same_run(config, reference, "stopped by Ctrl-C")


def test_a_crash_with_loader_workers_exits_instead_of_hanging(chunks, tmp_path):
    """Workers ignore SIGTERM, so they must be shut down explicitly: here the log pipe breaks mid-run."""
    process = start_cli(make_config(chunks, tmp_path))
    wait_for_step(process, 2)
    process.stdout.close()  # the next log line raises BrokenPipeError in the training loop
    try:
        assert process.wait(timeout=60) not in (0, EXIT_RESUMABLE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_sigusr1_stops_like_sigterm(chunks, reference, tmp_path, capsys):
    """SLURM's --signal=USR1@seconds warning before the time limit (here raised in this process)."""
    config = make_config(chunks, tmp_path)
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        assert pretrain(config) == EXIT_RESUMABLE
    finally:
        timer.cancel()
    assert "(SIGUSR1)" in capsys.readouterr().out
    assert pretrain(config) == 0
    assert_same_run(config, reference, "stopped by SIGUSR1")


def test_runtime_limit_stops_with_a_checkpoint_and_resumes(chunks, reference, tmp_path, capsys):
    config = make_config(chunks, tmp_path, runtime_minutes=1e-6, stop_margin_minutes=0.0)
    assert pretrain(config) == EXIT_RESUMABLE
    assert "the runtime limit" in capsys.readouterr().out
    assert [step for step, _ in list_checkpoints(config.checkpoint_dir)] == [0]
    assert not config.out.exists()
    with pytest.raises(UserError, match="learning_rate: 0.0008 there, 0.0004 now"):
        pretrain(replace(config, learning_rate=4e-4))
    assert pretrain(replace(config, runtime_minutes=None)) == 0
    assert_same_run(config, reference, "stopped by the runtime limit at step 0")


@pytest.mark.parametrize(
    ("damaged", "how"),
    [
        ("model.safetensors", "truncate"),
        ("optimizer.safetensors", "truncate"),
        ("rng.safetensors", "truncate"),
        ("metrics.csv", "truncate"),
        ("trainer.json", "truncate"),
        ("manifest.json", "truncate"),
        ("trainer.json", "empty"),
        ("optimizer.safetensors", "flip a bit"),
        ("model.safetensors", "delete"),
    ],
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(
    reference, tmp_path, capsys, damaged, how
):
    """A preempted job whose last write was cut: resume from the newest intact checkpoint, bit-identically."""
    config = replace(reference, out=tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints")
    shutil.copytree(reference.checkpoint_dir, config.checkpoint_dir)
    assert [step for step, _ in list_checkpoints(config.checkpoint_dir)] == [20, STEPS]
    latest = config.checkpoint_dir / f"step-{STEPS:08d}"
    target = latest / damaged
    data = target.read_bytes()
    if how == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        target.write_bytes(b"")
    elif how == "flip a bit":
        target.write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    else:
        target.unlink()

    assert pretrain(config) == 0

    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 1 and str(latest) in warnings[0], captured.err
    assert damaged in warnings[0] or "unreadable" in warnings[0], warnings[0]
    assert warnings[0].endswith("removing it"), warnings[0]
    assert "resumed from " + str(config.checkpoint_dir / "step-00000020") in captured.out
    assert_same_run(config, reference, f"{damaged} of the latest checkpoint damaged ({how})")
    assert checkpoint_damage(latest) is None  # saved again when the run reached that step


def test_rerun_after_completion_only_rewrites_the_model(reference, tmp_path, capsys):
    """A finished run's last checkpoint is its end: running again saves the same model, without training."""
    config = replace(reference, out=tmp_path / "again", metrics=tmp_path / "again.csv")
    assert pretrain(config) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert (config.out / "model.safetensors").read_bytes() == (
        reference.out / "model.safetensors"
    ).read_bytes()
    assert config.metrics.read_text() == (reference.out / "metrics.csv").read_text()


def test_final_model_and_metrics(reference):
    summary = json.loads((reference.out / "pretrain.json").read_text())
    assert summary["steps"] == STEPS and summary["settings"]["learning_rate"] == 8e-4
    header, *rows = [line.split(",") for line in (reference.out / "metrics.csv").read_text().splitlines()]
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert [r["step"] for r in rows if r["valid_loss"]] == ["8", "16", "24"]
    # Warm-up from 0 over 4 steps, then linear decay to 0 at the last step (HF's linear schedule).
    lrs = [float(r["learning_rate"]) for r in rows]
    assert lrs[:5] == pytest.approx([0, 2e-4, 4e-4, 6e-4, 8e-4])
    assert lrs[-1] == pytest.approx(8e-4 / (STEPS - 4))
    tokens = [int(r["tokens"]) for r in rows]
    assert all(b > a for a, b in zip(tokens, tokens[1:], strict=False))
    assert all(np.isfinite(float(r["train_loss"])) for r in rows)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_nodes(config: PretrainConfig, port: int) -> list[subprocess.Popen]:
    """Two "nodes" of one process each on this machine, as the workflow launches several nodes: one
    `genemask torchrun` per node meeting at a c10d rendezvous (gloo on CPU)."""
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    rendezvous += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test", "--max-restarts", "0"]
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genemask",
                "torchrun",
                *rendezvous,
                "--node-rank",
                str(node),
                "-m",
                "genemask",
                "pretrain",
                *cli_args(config),
                "--dropout",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=CLI_ENV,
            cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
        for node in (0, 1)
    ]


@pytest.mark.parametrize("multi_node_resume", [False])  # True (two launches again): 2.5 min, run by hand
def test_two_nodes_train_like_one_process_and_resume_after_sigterm(chunks, tmp_path, multi_node_resume):
    """Two nodes x 1 process (micro-batches of up to 4) = 1 process x 2 micro-batches, up to float rounding: the
    sequences of each step depend on the global batch alone. SIGTERM to one node's launcher checkpoints both
    nodes, and both launchers exit 75 through torchrun; one process (or, by hand, both launched again) finishes
    the run like one process.

    Dropout off: its random draws are per process, so they differ by design."""
    single = make_config(chunks, tmp_path / "one", dropout=0.0, steps=8, checkpoint_every=100)
    assert pretrain(single) == 0
    double = make_config(chunks, tmp_path / "two", dropout=0.0, steps=8, checkpoint_every=100)
    first, second = launch_nodes(double, free_port())
    started = "".join(wait_for_step(first, 2))
    first.send_signal(signal.SIGTERM)  # to the launcher: torchrun passes it on to its worker
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [EXIT_RESUMABLE] * 2, outputs
    assert "(micro-batches of up to 4 x 1 accumulation x 2 processes)" in started
    stopped = [step for step, _ in list_checkpoints(double.checkpoint_dir)]
    assert len(stopped) == 1 and 2 <= stopped[0] < 8, (stopped, outputs[0])
    if multi_node_resume:
        resumed = launch_nodes(double, free_port())
        outputs = [process.communicate(timeout=300)[0] for process in resumed]
        assert [process.returncode for process in resumed] == [0, 0], outputs
        assert f"resumed from {double.checkpoint_dir / f'step-{stopped[0]:08d}'}" in outputs[0]
    else:  # the checkpoint does not depend on the layout: one process continues it
        assert pretrain(replace(double, dropout=0.0)) == 0
    ours, theirs = load_file(double.out / "model.safetensors"), load_file(single.out / "model.safetensors")
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-5, msg=name)
    trainer = json.loads((double.checkpoint_dir / "step-00000008" / "trainer.json").read_text())
    assert trainer["world_size"] == (2 if multi_node_resume else 1)


# ----------------------------------------------------------------------------------------------------------
# Time-variant strategies: a choice per optimiser step, resumed exactly across cm-gems' switch


@pytest.fixture(scope="module")
def component_masks(chunks, tmp_path_factory) -> dict:
    """A 6-mer ranking and precomputed masks of every component strategy, as the workflow gives them."""
    root = tmp_path_factory.mktemp("components")
    rng = np.random.default_rng(2)
    kmers = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    ranks = pd.DataFrame({"kmer": kmers, "count": 200, "npmi": 0.0, "rank": rng.permutation(len(kmers)) + 1})
    ranks.to_csv(root / "kmer_ranks.tsv", sep="\t", index=False)
    rank_of_id = load_kmer_ranks(root / "kmer_ranks.tsv")
    train = ChunkStore.open(chunks, "train")
    stores = {
        name: write_mask_store(train, Masker(name, seed=9, rank_of_id=rank_of_id), root / name, epochs=4)
        for name in ("random", "genemask", "global")
    }
    return {"ranks": root / "kmer_ranks.tsv", "stores": stores}


def resume_from(finished: PretrainConfig, step: int, root: Path) -> PretrainConfig:
    """A run killed after checkpoint `step` of `finished`: its checkpoints up to there, run again to the end."""
    config = replace(finished, out=root / "model", checkpoint_dir=root / "checkpoints", metrics=None)
    config.checkpoint_dir.mkdir(parents=True)
    for saved, path in list_checkpoints(finished.checkpoint_dir):
        if saved <= step:
            shutil.copytree(path, config.checkpoint_dir / path.name)
    assert pretrain(config) == 0
    return config


@pytest.mark.parametrize(
    ("strategy", "components"), [("cm-gems", ("genemask", "global")), ("cm-step", ("random", "global"))]
)
def test_time_variant_runs_choose_per_step_and_resume_bit_identical(
    chunks, component_masks, tmp_path, strategy, components
):
    stores = tuple(component_masks["stores"][name] for name in components)
    # tau this large: perplexity always changes by less, so cm-gems switches at its second evaluation (step 16).
    full = make_config(
        chunks, tmp_path / "full", strategy=strategy, masks=stores, ranks=component_masks["ranks"],
        tau=1e9, keep_checkpoints=10,
    )  # fmt: skip
    assert pretrain(full) == 0
    header, *rows = [line.split(",") for line in (full.out / "metrics.csv").read_text().splitlines()]
    rows = [dict(zip(header, row, strict=True)) for row in rows]
    summary = json.loads((full.out / "pretrain.json").read_text())
    if strategy == "cm-gems":
        assert [r["masking"] for r in rows] == ["genemask"] * 16 + ["global"] * (STEPS - 16)
        assert [r["switch_step"] for r in rows] == [""] * 15 + ["16"] * (STEPS - 15)
        assert [r["step"] for r in rows if r["curriculum_valid_loss"]] == ["8", "16"]
        assert summary["switch_step"] == 16 and len(summary["curriculum"]["perplexities"]) == 2
        trainer = json.loads((full.checkpoint_dir / "step-00000020" / "trainer.json").read_text())
        assert trainer["curriculum"]["switch_step"] == 16
    else:
        expected = CmStep(seed=full.mask_seed, total_steps=STEPS)
        assert [r["masking"] for r in rows] == [expected.choose(t) for t in range(STEPS)]
        assert {r["masking"] for r in rows} == {"random", "global"}
        assert summary["switch_step"] is None
    # Killed after step 10 (one evaluation done, cm-gems' switch ahead) and, for cm-gems, after step 20 (switched).
    for step in (10, 20) if strategy == "cm-gems" else (10,):
        resumed = resume_from(full, step, tmp_path / f"from{step}")
        assert_same_run(resumed, full, f"{strategy} resumed from step {step}")
        resumed_rows = (resumed.out / "metrics.csv").read_text().splitlines()
        masking = header.index("masking")
        assert [r.split(",")[masking] for r in resumed_rows[1:]] == [r["masking"] for r in rows]


def test_time_variant_runs_need_their_components_masks(chunks, component_masks, tmp_path):
    stores = component_masks["stores"]
    config = make_config(
        chunks, tmp_path, strategy="cm-gems", masks=(stores["genemask"],), ranks=component_masks["ranks"]
    )
    with pytest.raises(UserError, match="needs genemask, global"):
        pretrain(config)


# ----------------------------------------------------------------------------------------------------------
# Batches


def test_global_batches_partition_each_epoch_deterministically():
    rng = np.random.default_rng(0)
    lengths = token_lengths(published_lengths(rng, 1003), 6)
    batches = GlobalBatches(lengths, global_batch=100, seed=5)
    epoch0, epoch1 = batches.epoch(0), batches.epoch(1)
    assert epoch0.shape == (10, 100)
    assert len(np.unique(epoch0)) == 1000  # no chunk twice; 3 sit the epoch out
    assert np.array_equal(epoch0, GlobalBatches(lengths, 100, 5).epoch(0))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, GlobalBatches(lengths, 100, 6).epoch(0))
    assert all(np.all(np.diff(lengths[row]) >= 0) for row in epoch0)  # sorted by length within a step


def test_padding_waste_is_small_on_published_lengths():
    rng = np.random.default_rng(0)
    lengths = token_lengths(published_lengths(rng, 50_000), 6)
    epoch = GlobalBatches(lengths, 1000, 0).epoch(0)
    sorted_micro = [m for row in epoch for rank in range(8) for m in split_global_batch(row, 8, 13, rank)]
    unsorted = list(rng.permutation(50_000).reshape(-1, 10))
    assert padding_waste(sorted_micro, lengths) < 0.03 < 0.2 < padding_waste(unsorted, lengths)
    # Brute force: pad each batch to its longest, rounded up to a multiple of 8.
    padded = sum(len(b) * (-(-max(lengths[b]) // 8) * 8) for b in sorted_micro[:50])
    assert padding_waste(sorted_micro[:50], lengths) == pytest.approx(
        1 - sum(lengths[b].sum() for b in sorted_micro[:50]) / padded
    )


def test_padding_waste_matches_the_collated_batches(chunks):
    dataset = ChunkTokens(chunks, "train", 6)
    lengths = token_lengths(dataset.store.lengths, 6)
    batches = split_global_batch(GlobalBatches(lengths, 48, 0).epoch(0)[0], 1, 12, 0)
    collate = WithMaskedPositions(MLMCollator(Masker("random")))
    collated = [collate([dataset[(0, int(i))] for i in row]) for row in batches]
    real = sum(int(b["attention_mask"].sum()) for b in collated)
    positions = sum(b["attention_mask"].numel() for b in collated)
    assert padding_waste(batches, lengths) == pytest.approx(1 - real / positions)
    for batch in collated:
        flat = batch["labels"].reshape(-1)
        assert torch.equal(flat[batch["masked_index"]], batch["masked_labels"])
        assert int((flat != -100).sum()) == len(batch["masked_index"])


def test_step_layout_resumes_without_replay_and_ignores_device_count_and_micro_batch():
    lengths = token_lengths(np.random.default_rng(0).integers(6, 512, 203), 6)
    batches = GlobalBatches(lengths, global_batch=15, seed=1)
    one = StepLayout(batches, accum=4, world=1)  # micro-batches of 3 or 4
    steps = 3 * one.steps_per_epoch + 2  # across epoch boundaries

    def take(iterator, n):
        return [next(iterator) for _ in range(n)]

    from_start = take(one.rank_batches(0, 0), 4 * steps)
    resumed = take(one.rank_batches(17, 0), 4 * (steps - 17))
    assert resumed == from_start[4 * 17 :]
    for world, accum in ((1, 1), (1, 15), (2, 2), (4, 1), (5, 3)):
        layout = StepLayout(batches, accum, world)
        ranks = [take(layout.rank_batches(0, rank), accum * steps) for rank in range(world)]
        for step in range(steps):
            global_one = sorted(pair for micro in from_start[4 * step : 4 * step + 4] for pair in micro)
            ours = [micro for rank in ranks for micro in rank[accum * step : accum * (step + 1)]]
            assert sorted(pair for micro in ours for pair in micro) == global_one, (world, accum, step)
            sizes = [len(micro) for micro in ours]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    epochs = {epoch for batch in from_start for epoch, _ in batch}
    assert epochs == {0, 1, 2, 3}


def test_eval_batches_are_a_fixed_subset(chunks):
    lengths = token_lengths(ChunkStore.open(chunks, "valid").lengths, 6)
    batches = eval_batches(lengths, 10, 4, seed=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches == eval_batches(lengths, 10, 4, seed=0)
    assert {e for b in batches for e, _ in b} == {0}
    indices = [i for b in batches for _, i in b]
    assert len(set(indices)) == 10 and list(lengths[indices]) == sorted(lengths[indices])


def test_bad_inputs_are_user_errors(chunks, tmp_path):
    with pytest.raises(UserError, match="fewer than one global batch"):
        pretrain(make_config(chunks, tmp_path, global_batch=400, batch_size=4))
    with pytest.raises(
        UserError, match="global batch 10 cannot be split over 8 processes in micro-batches of at most 1"
    ):
        batch_geometry(10, 8, 1)
    with pytest.raises(UserError, match="missing"):
        pretrain(make_config(tmp_path / "nowhere", tmp_path))
    long = write_chunk_store(tmp_path / "long", {"train": np.array([600, 10]), "valid": np.array([10])})
    with pytest.raises(UserError, match="chunk 0 has 597 tokens"):
        pretrain(make_config(long, tmp_path))
