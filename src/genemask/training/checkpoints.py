"""Pretraining checkpoints: writing, reading, listing, and the fingerprint that ties one to its settings.

`checkpoint_dir/step-00000040/` (the last `keep` kept, each written atomically) holds `model.safetensors`,
`optimizer.safetensors` (AdamW moments), `trainer.json` (step, data position, scheduler, optimiser
hyper-parameters, python/numpy RNG states per process, the settings' fingerprint), `rng.safetensors` (torch and
CUDA RNG states per process), `metrics.csv` (the metrics so far) and, written last, `manifest.json` (the size and
sha256 of each other file); a time-variant strategy's curriculum state (cm-gems: the perplexities so far and its
switch step) is in `trainer.json` too. Resuming verifies a checkpoint against its manifest before loading anything,
and falls back to the newest intact one. A checkpoint written under other settings (another fingerprint) is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import load_file, load_model, save_file, save_model

from genemask.atomic import atomic_dir
from genemask.errors import UserError
from genemask.masking.store import MaskStore
from genemask.training.identity import run_setting_names
from genemask.training.settings import PretrainConfig

CHECKPOINT_FORMAT = 1
CHECKPOINT_FILES = (
    "model.safetensors",
    "optimizer.safetensors",
    "rng.safetensors",
    "metrics.csv",
    "trainer.json",
)
MANIFEST = "manifest.json"  # size and sha256 of each of CHECKPOINT_FILES, written last
CHECKPOINT_NAME = re.compile(r"step-(\d{8})")
METRIC_COLUMNS = (
    "step",
    "epoch",
    "learning_rate",
    "train_loss",
    "train_accuracy",
    "masked_fraction",
    "valid_loss",
    "valid_accuracy",
    "tokens",
    "padding_waste",
    "tokens_per_second",
    "train_seconds",
    "masking",  # time-variant strategies: the component the logged step used
    "curriculum_valid_loss",  # cm-gems: validation loss under the active masking, which drives the switch
    "switch_step",  # cm-gems: the step after which global took over, once it has
)
# ----------------------------------------------------------------------------------------------------------
# Fingerprints


def fingerprint(config: PretrainConfig, n_train_chunks: int, n_train_nucleotides: int) -> dict:
    """The settings and inputs that fix a run's trajectory, JSON-able: the settings that identify a run of its
    strategy (genemask.training.identity, which the workflow's checkpoint folder names read too) and its inputs."""
    values = {name: getattr(config, name) for name in run_setting_names(config.strategy)}
    values["betas"] = list(config.betas)
    values["masks"] = None if config.masks is None else [mask_store_identity(m) for m in config.masks]
    values["ranks"] = None if config.ranks is None else file_digest(config.ranks)
    values["ngrams"] = None if config.ngrams is None else file_identity(config.ngrams)
    values["train_chunks"], values["train_nucleotides"] = n_train_chunks, n_train_nucleotides
    return values


def check_same_run(saved: dict, fingerprint: dict, path: Path, directory: Path) -> None:
    """Refuse (one line naming each setting that differs) a checkpoint saved under another fingerprint."""
    differences = [
        f"{key}: {saved.get(key)!r} there, {value!r} now"
        for key, value in fingerprint.items()
        if saved.get(key) != value
    ]
    if differences:
        raise UserError(
            f"{path}: checkpoint of a run with other settings ({'; '.join(differences)}); "
            f"delete {directory} or pass another --checkpoint-dir"
        )


def file_digest(path: Path) -> str:
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_identity(path: Path) -> list:
    """Name and size: cheap, for inputs too large to hash at every start."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return [Path(path).name, Path(path).stat().st_size]


def mask_store_identity(directory: Path) -> dict:
    meta = MaskStore.open(directory).meta
    return {key: value for key, value in meta.items() if key != "chunks"}


# ----------------------------------------------------------------------------------------------------------
# What a checkpoint holds besides model and optimiser


@dataclass
class Progress:
    """Training progress (JSON-able)."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    metrics: list[dict] = dataclasses.field(default_factory=list)
    curriculum: dict = dataclasses.field(
        default_factory=dict
    )  # a time-variant strategy's state (cm-gems' switch)


def capture_rng(device: torch.device) -> dict:
    """This process's torch (and CUDA), numpy-global and Python RNG states."""
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {
        "key": numpy_state["state"]["key"].tolist(),
        "pos": int(numpy_state["state"]["pos"]),
    }
    version, internal, gauss = random.getstate()
    return {"tensors": tensors, "python": [version, list(internal), gauss], "numpy": numpy_state}


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["tensors"]["torch"])
    if device.type == "cuda" and "cuda" in state["tensors"]:
        torch.cuda.set_rng_state(state["tensors"]["cuda"], device)
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": numpy_state["state"]["pos"],
    }
    np.random.set_state(numpy_state)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def metrics_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _number(text: str) -> int | float | str:
    """A metric as written: an int, a float, or text (empty, or the name of a masking strategy)."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def read_metrics(text: str) -> list[dict]:
    return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(io.StringIO(text))]


# ----------------------------------------------------------------------------------------------------------
# Writing and reading


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in `directory` (intact or not), oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_NAME.fullmatch(p.name))]
    return sorted(found)


def remove_partial_checkpoints(directory: Path) -> None:
    """Drop the temporary directories of saves cut short (by SIGKILL)."""
    if directory.is_dir():
        for partial in directory.glob(".step-*.tmp"):
            shutil.rmtree(partial, ignore_errors=True)


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}"


def _file_record(path: Path) -> dict:
    """Size and sha256 of a file as it is on disk (read back, so the manifest vouches for what was written)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _sync(directory: Path) -> None:
    """Flush the files and the directory to disk before the rename publishes them, so that a node crash just
    after it cannot leave a checkpoint of empty files."""
    for path in [*directory.iterdir(), directory]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_checkpoint(
    directory: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    fingerprint: dict,
    position: dict,
    rng_states: list[dict],
    keep: int,
) -> Path:
    """Write `step-NNNNNNNN/` (unless there already, intact) and keep the last `keep` checkpoints.

    `position`: where the data order stands (epoch, step_in_epoch, world_size, accum); `rng_states`: one
    `capture_rng()` per process, by rank. `manifest.json`, written last, records every file's size and sha256.
    """
    target = checkpoint_path(directory, progress.step)
    if target.exists() and checkpoint_damage(target) is None:
        return target
    state = optimizer.state_dict()
    optimizer_tensors = {
        f"{index}.{name}": value.detach().cpu().contiguous()
        for index, entries in state["state"].items()
        for name, value in entries.items()
    }
    trainer = {
        "format_version": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "step": progress.step,
        **position,
        "tokens": progress.tokens,
        "train_seconds": progress.train_seconds,
        "curriculum": progress.curriculum,
        "scheduler": scheduler.state_dict(),
        "optimizer_param_groups": state["param_groups"],
        "rng": [{key: value for key, value in s.items() if key != "tensors"} for s in rng_states],
    }
    rng_tensors = {
        f"rank{rank}.{name}": tensor
        for rank, s in enumerate(rng_states)
        for name, tensor in s["tensors"].items()
    }
    with atomic_dir(target, marker=False) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        save_file(optimizer_tensors, str(tmp / "optimizer.safetensors"))
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        (tmp / "metrics.csv").write_text(metrics_csv(progress.metrics))
        (tmp / "trainer.json").write_text(json.dumps(trainer, indent=1) + "\n")
        manifest = {name: _file_record(tmp / name) for name in CHECKPOINT_FILES}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _sync(tmp)
    for _, old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


@dataclass
class Checkpoint:
    """A checkpoint read back: its progress and the RNG states of the processes that wrote it."""

    path: Path
    progress: Progress
    world_size: int
    rng_states: list[dict]  # by rank, as capture_rng() returned them


class DamagedCheckpoint(Exception):
    """A checkpoint whose files do not match its manifest or cannot be parsed: skipped, never loaded."""


@dataclass
class _Contents:
    trainer: dict
    metrics: list[dict]


def _read_verified(path: Path) -> _Contents:
    """Every file of the checkpoint at `path`, checked against its manifest and parsed; DamagedCheckpoint if
    any is missing, of another size or checksum, or unreadable. Nothing is loaded into the model yet."""
    if not path.is_dir():
        raise DamagedCheckpoint("not a directory")
    data = {}
    for name in CHECKPOINT_FILES:
        if not (path / name).is_file():
            raise DamagedCheckpoint(f"{name} is missing")
        data[name] = (path / name).read_bytes()
    if (path / MANIFEST).exists():
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            expected = {
                name: (manifest[name]["bytes"], manifest[name]["sha256"]) for name in CHECKPOINT_FILES
            }
        except (ValueError, KeyError, TypeError, OSError) as error:
            raise DamagedCheckpoint(f"{MANIFEST} is unreadable ({type(error).__name__})") from None
        for name, content in data.items():
            size, digest = expected[name]
            if len(content) != size:
                raise DamagedCheckpoint(f"{name} has {len(content)} bytes, {size} were written")
            if hashlib.sha256(content).hexdigest() != digest:
                raise DamagedCheckpoint(f"{name} does not match the sha256 recorded when it was written")
    # Without a manifest (a checkpoint of an earlier version) parsing every file is the only check.
    try:
        trainer = json.loads(data["trainer.json"])
        contents = _Contents(trainer, read_metrics(data["metrics.csv"].decode()))
        for name in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
            safetensors_load(data[name])
        if not isinstance(trainer, dict) or "format_version" not in trainer:
            raise ValueError("trainer.json holds no trainer state")
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes the parsers raise
        raise DamagedCheckpoint(f"unreadable ({type(error).__name__}: {str(error)[:120]})") from None
    return contents


def checkpoint_damage(path: Path) -> str | None:
    """Why the checkpoint at `path` cannot be resumed from, or None when it is intact."""
    try:
        _read_verified(path)
    except DamagedCheckpoint as damage:
        return str(damage)
    return None


def read_latest_checkpoint(
    directory: Path,
    fingerprint: dict,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    on_skip: Callable[[Path, str], None] | None = None,
) -> Checkpoint | None:
    """Load the newest intact checkpoint into model, optimiser and scheduler; None when there is none.

    Damaged checkpoints (a file cut short by a node crash, a disk error) are skipped, newest first, each passed
    with the reason to `on_skip(path, reason)`. The newest
    intact one written under another fingerprint is a UserError naming the settings that differ.
    """
    for _, path in reversed(list_checkpoints(directory)):
        try:
            contents = _read_verified(path)
        except DamagedCheckpoint as damage:
            if on_skip is not None:
                on_skip(path, str(damage))
            continue
        return _load(path, contents, directory, fingerprint, model, optimizer, scheduler, device)
    return None


def _load(
    path: Path,
    contents: _Contents,
    directory: Path,
    fingerprint: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
) -> Checkpoint:
    trainer = contents.trainer
    if trainer.get("format_version") != CHECKPOINT_FORMAT:
        raise UserError(
            f"{path}/trainer.json: format_version {trainer.get('format_version')}, expected {CHECKPOINT_FORMAT}"
        )
    check_same_run(trainer["fingerprint"], fingerprint, path, directory)
    load_model(model, str(path / "model.safetensors"), device=str(device))
    moments: dict[int, dict[str, torch.Tensor]] = {}
    # load_file keeps the tensors in the order they were saved (the optimiser's state order)
    for key, value in load_file(path / "optimizer.safetensors").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments, "param_groups": trainer["optimizer_param_groups"]})
    scheduler.load_state_dict(trainer["scheduler"])
    rng_tensors = load_file(path / "rng.safetensors")
    rng_states = []
    for rank, state in enumerate(trainer["rng"]):
        prefix = f"rank{rank}."
        tensors = {k[len(prefix) :]: v for k, v in rng_tensors.items() if k.startswith(prefix)}
        rng_states.append({**state, "tensors": tensors})
    progress = Progress(
        trainer["step"],
        trainer["tokens"],
        trainer["train_seconds"],
        contents.metrics,
        trainer.get("curriculum", {}),
    )
    return Checkpoint(path, progress, trainer["world_size"], rng_states)
