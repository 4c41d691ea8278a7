"""Training runtime: devices, seeds, the stop deadline, stop signals, and the optimiser and schedule."""

from __future__ import annotations

import itertools
import math
import os
import random
import signal

import numpy as np
import pytest
import torch

from genemask.commands.torchrun import exit_status
from genemask.errors import UserError
from genemask.training.launch import launch_prefix, pretrain_layout, profile_resources
from genemask.training.micro_batch import fewest_micro_batches
from genemask.training.optim import linear_schedule, make_optimizer
from genemask.training.runtime import (
    Distributed,
    StopRequests,
    rank_seed,
    resolve_device,
    seed_everything,
    stop_deadline,
    torch_settings,
)
from genemask.training.settings import BatchGeometry


def test_devices(capsys):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert f"--device auto: chose {resolve_device('auto').type}" in capsys.readouterr().out
    for wrong in ("tpu", "cpu:0x", "gpu"):
        with pytest.raises(UserError, match=f"--device {wrong}: expected auto, cpu, cuda or cuda:N"):
            resolve_device(wrong)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match=r"--device cuda:0: CUDA is unusable: asked for cuda:0 \(1 GPU\)"):
            resolve_device("cuda:0")


def test_one_process_is_its_own_job():
    dist = Distributed()
    assert dist.main and (dist.rank, dist.world) == (0, 1)
    assert dist.sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    assert dist.gather("x") == ["x"]


def test_seeds_per_rank_are_fixed_and_distinct():
    assert rank_seed(3, 0) == rank_seed(3, 0)
    assert len({rank_seed(3, 0), rank_seed(3, 1), rank_seed(4, 0)}) == 3
    seed_everything(rank_seed(3, 1))
    first = torch.rand(2), np.random.random(), random.random()
    seed_everything(rank_seed(3, 1))
    assert torch.equal(torch.rand(2), first[0]) and (np.random.random(), random.random()) == first[1:]


def test_stop_deadline_keeps_a_margin_of_five_percent_between_one_and_ten_minutes():
    assert stop_deadline(100.0, None, None) is None
    assert stop_deadline(100.0, 100, None) == pytest.approx(100.0 + 60 * 95)
    assert stop_deadline(0.0, 10, None) == pytest.approx(60 * 9)  # at least 1 minute
    assert stop_deadline(0.0, 1000, None) == pytest.approx(60 * 990)  # at most 10
    assert stop_deadline(0.0, 10, 0.5) == pytest.approx(60 * 9.5)


def test_stop_signals_set_a_flag_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequests() as stop:
        assert stop.received is None
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.received == "SIGUSR1"
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before


def test_torch_settings_are_restored():
    determinism, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with torch_settings(torch.device("cpu"), threads=1):
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == (determinism, threads)


def test_biases_and_layer_norm_weights_are_not_decayed():
    model = torch.nn.Module()
    model.dense = torch.nn.Linear(3, 3)
    model.LayerNorm = torch.nn.LayerNorm(3)
    optimizer = make_optimizer(model, 1e-3, 0.05, betas=(0.9, 0.98), eps=1e-6)
    decay, no_decay = optimizer.param_groups
    assert [p.shape for p in decay["params"]] == [(3, 3)] and decay["weight_decay"] == 0.05
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    assert (decay["lr"], decay["betas"], decay["eps"]) == (1e-3, (0.9, 0.98), 1e-6)
    assert make_optimizer(model, 1e-3, 0.0).param_groups[0]["betas"] == (0.9, 0.999)  # torch's defaults


@pytest.mark.parametrize(
    ("from_zero", "expected"),
    [
        (True, [0, 0.25, 0.5, 0.75, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0]),  # pretraining (HF's)
        (False, [0.25, 0.5, 0.75, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0]),  # fine-tuning
    ],
)
def test_linear_schedule(from_zero, expected):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = linear_schedule(optimizer, 4, 10, warmup_from_zero=from_zero)
    rates = []
    for _ in expected:
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([2.0 * f for f in expected])


# ----------------------------------------------------------------------------------------------------------
# Launching on a job's GPUs and nodes


STUDY = {"global_batch": 1000, "batch_size": "auto"}
MULTI_NODE = {"mpi": "srun", "tasks": 2, "tasks_per_gpu": 0}


def test_the_job_layout_is_checked_with_the_numbers():
    assert pretrain_layout({}, STUDY, "profile") == (0, 1)  # a CPU job
    assert pretrain_layout({"gpu": 8, "nodes": 1}, STUDY, "profile") == (8, 1)
    assert pretrain_layout({"gpu": 16, "nodes": 2, **MULTI_NODE}, STUDY, "profile") == (8, 2)
    assert pretrain_layout({"gpu": 32, "nodes": 4, **MULTI_NODE, "tasks": 4}, STUDY, "p") == (8, 4)
    with pytest.raises(UserError, match="profile: gpu 12 .* not the same number on each of 8 nodes"):
        pretrain_layout({"gpu": 12, "nodes": 8, **MULTI_NODE, "tasks": 8}, STUDY, "profile")
    with pytest.raises(UserError, match="nodes 2 needs mpi: srun, tasks: 2, tasks_per_gpu: 0"):
        pretrain_layout({"gpu": 16, "nodes": 2}, STUDY, "profile")
    with pytest.raises(UserError, match="batch_size 1: global batch 20 cannot be split over 16 processes"):
        pretrain_layout({"gpu": 16}, {"global_batch": 20, "batch_size": 1}, "profile")
    assert pretrain_layout({"gpu": 16}, {"global_batch": 16, "batch_size": "auto"}, "profile") == (16, 1)
    with pytest.raises(UserError, match="global batch 8 cannot be split over 16 processes"):
        pretrain_layout({"gpu": 16}, {"global_batch": 8, "batch_size": "auto"}, "profile")
    with pytest.raises(UserError, match="gpu 'two': expected a whole number >= 0"):
        pretrain_layout({"gpu": "two"}, STUDY, "profile")


def test_the_launcher_runs_one_process_per_gpu_and_one_launch_per_node():
    assert launch_prefix(0, 1) == launch_prefix(1, 1) == "genemask"
    assert launch_prefix(8, 1) == "genemask torchrun --standalone --nproc-per-node 8 -m genemask"
    multi = launch_prefix(4, 2, 32)
    assert multi.startswith("srun --nodes 2 --ntasks-per-node 1 --gpus-per-node 4 --cpus-per-task 32 ")
    assert "genemask torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d" in multi
    assert '--rdzv-endpoint "$(hostname):$((29500 + SLURM_JOB_ID % 10000))" -m genemask' in multi


def test_profile_resources_are_capped_like_snakemake_caps_them(tmp_path):
    profile = tmp_path / "config.yaml"
    profile.write_text(
        "resources: [gpu=4, gpu_slot=1]\nset-resources:\n  pretrain_model:\n    gpu: 8\n    nodes: 1\n"
        "    runtime: 1440\n"
    )
    assert profile_resources(tmp_path) == {"gpu": 4, "nodes": 1, "runtime": 1440}
    assert profile_resources(profile, "finetune_model") == {}


def test_a_checkpointed_stop_keeps_its_exit_status_through_torchrun():
    assert exit_status([75]) == exit_status([75, -15]) == exit_status([1, 75]) == 75
    assert exit_status([1]) == exit_status([-9, 1]) == 1


def test_the_fitted_accumulation_is_the_fewest_whose_micro_batches_fit():
    for global_batch, world, fitting in itertools.product(
        (1, 7, 16, 100, 1000), (1, 2, 8), (1, 3, 10, 64, 2000)
    ):
        if world > global_batch:
            continue
        tried: list[int] = []

        def fits(size, tried=tried, fitting=fitting):
            tried.append(size)
            return size <= fitting

        accum = fewest_micro_batches(global_batch, world, fits)
        sizes = [
            BatchGeometry(global_batch, world, a).largest_micro_batch
            for a in range(1, global_batch // world + 1)
        ]
        expected = next((a for a, size in enumerate(sizes, 1) if size <= fitting), global_batch // world)
        assert accum == expected, (global_batch, world, fitting)
        assert len(tried) <= max(1, math.ceil(math.log2(max(1, global_batch // world)))) + 1
