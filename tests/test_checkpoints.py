"""Checkpoints: writing, reading back exactly, listing, pruning, and refusing another run's checkpoint."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from genemask.errors import UserError
from genemask.training.checkpoints import (
    Progress,
    capture_rng,
    file_digest,
    file_identity,
    fingerprint,
    list_checkpoints,
    metrics_csv,
    read_latest_checkpoint,
    read_metrics,
    remove_partial_checkpoints,
    restore_rng,
    write_checkpoint,
)
from genemask.training.optim import linear_schedule, make_optimizer
from genemask.training.settings import PretrainConfig

CPU = torch.device("cpu")


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(5, 4)
        self.LayerNorm = torch.nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x))


def trained(seed: int, steps: int) -> tuple[Small, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    torch.manual_seed(seed)
    model = Small()
    optimizer = make_optimizer(model, 1e-2, 0.01, betas=(0.9, 0.98), eps=1e-6)
    scheduler = linear_schedule(optimizer, 2, 10)
    for _ in range(steps):
        model(torch.randn(3, 5)).pow(2).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    return model, optimizer, scheduler


def save(directory: Path, step: int, model, optimizer, scheduler, keep: int = 2, **fingerprint) -> Path:
    progress = Progress(
        step, 100 * step, 1.5 * step, [{"step": s, "train_loss": 0.5 / s} for s in range(1, step + 1)]
    )
    return write_checkpoint(
        directory,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        progress=progress,
        fingerprint={"seed": 1, **fingerprint},
        position={"epoch": 0, "step_in_epoch": step, "world_size": 1, "accum": 2},
        rng_states=[capture_rng(CPU)],
        keep=keep,
    )


def test_a_checkpoint_reads_back_exactly(tmp_path):
    model, optimizer, scheduler = trained(seed=0, steps=3)
    random.seed(5)
    np.random.seed(6)
    path = save(tmp_path, 3, model, optimizer, scheduler)
    assert path == tmp_path / "step-00000003"
    assert sorted(p.name for p in path.iterdir()) == [
        "metrics.csv",
        "model.safetensors",
        "optimizer.safetensors",
        "rng.safetensors",
        "trainer.json",
    ]
    expected = (torch.rand(3), np.random.random(3), [random.random() for _ in range(3)])

    other_model, other_optimizer, other_scheduler = trained(seed=1, steps=0)
    loaded = read_latest_checkpoint(
        tmp_path,
        {"seed": 1},
        model=other_model,
        optimizer=other_optimizer,
        scheduler=other_scheduler,
        device=CPU,
    )
    assert loaded.path == path and loaded.world_size == 1
    assert (loaded.progress.step, loaded.progress.tokens, loaded.progress.train_seconds) == (3, 300, 4.5)
    assert {key: value for key, value in loaded.progress.metrics[1].items() if value != ""} == {
        "step": 2,
        "train_loss": 0.25,
    }
    for ours, theirs in zip(other_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)
    for ours, theirs in zip(other_optimizer.state.values(), optimizer.state.values(), strict=True):
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    assert other_optimizer.param_groups[0]["weight_decay"] == 0.01
    assert other_optimizer.param_groups[1]["weight_decay"] == 0.0
    assert other_scheduler.get_last_lr() == scheduler.get_last_lr()
    restore_rng(loaded.rng_states[0], CPU)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.random(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_the_last_checkpoints_are_kept_and_none_is_overwritten(tmp_path):
    model, optimizer, scheduler = trained(seed=0, steps=1)
    for step in (5, 10, 15):
        save(tmp_path, step, model, optimizer, scheduler)
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / ".step-00000020.tmp").mkdir()  # a save cut short
    assert [step for step, _ in list_checkpoints(tmp_path)] == [10, 15]
    before = (tmp_path / "step-00000015" / "trainer.json").read_text()
    save(tmp_path, 15, model, optimizer, scheduler, seed=2)  # already there: left as it is
    assert (tmp_path / "step-00000015" / "trainer.json").read_text() == before
    remove_partial_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000010", "step-00000015", "tensorboard"]
    assert list_checkpoints(tmp_path / "absent") == []


def test_another_runs_checkpoint_is_refused(tmp_path):
    model, optimizer, scheduler = trained(seed=0, steps=1)
    assert (
        read_latest_checkpoint(
            tmp_path, {}, model=model, optimizer=optimizer, scheduler=scheduler, device=CPU
        )
        is None
    )
    path = save(tmp_path, 1, model, optimizer, scheduler, learning_rate=8e-4)
    with pytest.raises(UserError, match=r"learning_rate: 0.0008 there, 0.0004 now.*delete"):
        read_latest_checkpoint(
            tmp_path,
            {"seed": 1, "learning_rate": 4e-4},
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            device=CPU,
        )
    trainer = json.loads((path / "trainer.json").read_text())
    (path / "trainer.json").write_text(json.dumps(trainer | {"format_version": 2}))
    with pytest.raises(UserError, match="format_version 2, expected 1"):
        read_latest_checkpoint(
            tmp_path, {"seed": 1}, model=model, optimizer=optimizer, scheduler=scheduler, device=CPU
        )


def test_fingerprint_names_the_settings_and_inputs(tmp_path):
    ranks, ngrams = tmp_path / "kmer_ranks.tsv", tmp_path / "ngrams.parquet"
    ranks.write_text("kmer\trank\nAAAAAA\t1\n")
    ngrams.write_bytes(b"12345")
    config = PretrainConfig(
        chunks=tmp_path, out=tmp_path / "o", checkpoint_dir=tmp_path / "c", ranks=ranks, ngrams=ngrams
    )
    values = fingerprint(config, 60, 6000)
    assert values["ranks"] == file_digest(ranks) and len(values["ranks"]) == 64
    assert values["ngrams"] == ["ngrams.parquet", 5] == file_identity(ngrams)
    assert values["masks"] is None and values["betas"] == [0.9, 0.98]
    assert (values["train_chunks"], values["train_nucleotides"], values["mask_seed"]) == (60, 6000, 0)
    assert json.loads(json.dumps(values)) == values  # what trainer.json stores compares equal
    ranks.write_text("kmer\trank\nAAAAAA\t2\n")
    assert fingerprint(config, 60, 6000)["ranks"] != values["ranks"]
    with pytest.raises(UserError, match="absent.tsv: no such file"):
        file_digest(tmp_path / "absent.tsv")


def test_metrics_csv_round_trips():
    rows = [
        {"step": 1, "learning_rate": 0.0, "train_loss": 8.25, "valid_loss": "", "tokens": 40},
        {"step": 2, "learning_rate": 2e-4, "train_loss": 8.0, "valid_loss": 7.5, "tokens": 80},
    ]
    text = metrics_csv(rows)
    assert text.splitlines()[0].startswith("step,epoch,learning_rate,")
    assert [
        {k: v for k, v in row.items() if v != "" or k == "valid_loss"} for row in read_metrics(text)
    ] == rows
