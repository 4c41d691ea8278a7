"""Models of one pretraining run at earlier steps: kept weights, exported without training (CPU, tiny)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_pretrain import make_config, published_lengths, write_chunk_store
from transformers import BertForMaskedLM

from genemask.errors import UserError
from genemask.training.export import export_model, kept_steps
from genemask.training.pretrain import pretrain


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    rng = np.random.default_rng(5)
    lengths = {"train": published_lengths(rng, 40, 100), "valid": published_lengths(rng, 8, 100)}
    chunks = write_chunk_store(tmp_path_factory.mktemp("chunks"), lengths)
    config = make_config(
        chunks,
        tmp_path_factory.mktemp("run"),
        steps=8,
        eval_every=4,
        eval_chunks=8,
        checkpoint_every=4,
        keep_checkpoints=3,
        keep_weights_every=4,
    )
    assert pretrain(config) == 0
    return config


def test_a_run_keeps_its_weights_before_its_end_and_an_export_is_them(run, tmp_path):
    assert kept_steps(run.checkpoint_dir) == [4]
    out = export_model(run.out, run.checkpoint_dir, 4, tmp_path / "step4")
    exported = load_file(out / "model.safetensors")
    checkpoint = load_file(run.checkpoint_dir / "step-00000004" / "model.safetensors")
    final = load_file(run.out / "model.safetensors")
    assert exported.keys() <= checkpoint.keys()
    assert all(torch.equal(exported[name], checkpoint[name]) for name in exported)
    assert not all(torch.equal(exported[name], final[name]) for name in exported)
    steps = [int(row["step"]) for row in csv.DictReader((out / "metrics.csv").open())]
    assert steps and max(steps) == 4
    assert (out / "config.json").read_text() == (run.out / "config.json").read_text()
    # Written without torch, it loads like the run's own folder (transformers checks the file's format).
    model = BertForMaskedLM.from_pretrained(out)
    assert all(torch.equal(model.state_dict()[name], checkpoint[name]) for name in exported)


def test_exporting_a_step_without_kept_weights_says_which_are_kept(run, tmp_path):
    with pytest.raises(UserError, match=r"no weights at step 6 \(kept: 4\)"):
        export_model(run.out, run.checkpoint_dir, 6, tmp_path / "step6")
    with pytest.raises(UserError, match="between 0 and the run's 8 steps"):
        export_model(run.out, run.checkpoint_dir, 8, tmp_path / "step8")
    assert not (tmp_path / "step6").exists()
