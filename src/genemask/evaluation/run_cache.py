"""Several few-shot runs in one process, and the run cache that spares a job the runs it already finished.

One `genemask finetune` (or `genemask kmer-baseline`) process does every run of one model: all tasks, shot
counts and seeds, each given as a RunSpec, each writing its own JSON record. The start-up (interpreter, torch and
transformers imports, model code, CUDA) is paid once per process, not once per run.

Snakemake deletes a job's declared outputs before it runs the job, so when a seed is added to a finished model's
job the finished seeds' records are gone by the time the job starts. The run cache keeps each finished
run's record outside the declared outputs, under a key that hashes everything that determines the run: the model
(its source and the content of its config and weight files), the task, the training and test files' content, the
shots, the seed, every hyper-parameter, the device type and the genemask version. A job looks each of its runs up
first and trains only those missing; a changed setting changes the key, so a stale result is never reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genemask import __version__
from genemask.atomic import atomic_file, check_output_file
from genemask.errors import UserError
from genemask.evaluation.run_records import FULL_SHOTS, write_run_record

CACHE_FORMAT = 1  # bump when what a cached record means changes
# Files of a model directory that determine its weights (save_pretrained's names); logs and summaries do not.
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")
RUN_FIELDS = ("shots", "seed", "train", "out")
OPTIONAL_RUN_FIELDS = ("task", "test")  # default: the process's --task and --test


@dataclass(frozen=True)
class RunSpec:
    """One run of a multi-run process: its task and test set, its draw, its record, and the settings that differ
    between runs."""

    task: str
    test: Path
    shots: int | str
    seed: int
    train: Path
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)


def _shots(text: str) -> int | str:
    """Examples per class (a positive integer) or "full" (the whole training set)."""
    if text == FULL_SHOTS:
        return text
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"shots {text!r}: expected a positive integer or {FULL_SHOTS!r}")
    return int(text)


def parse_run(
    text: list[str], setting_types: dict[str, type], task: str | None = None, test: Path | None = None
) -> RunSpec:
    """`--run [task=T test=F] shots=10 seed=0 train=a.tsv out=a.json [lr=...]`: one run; `task` and `test` default
    to the process's; setting names come from `setting_types` (name -> type), e.g. {"learning_rate": float} for
    `learning_rate=0.001`."""
    described = " ".join(text)
    values: dict[str, str] = {}
    for item in text:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise UserError(f"--run {described}: expected name=value items, got {item!r}")
        if name not in RUN_FIELDS and name not in OPTIONAL_RUN_FIELDS and name not in setting_types:
            known = ", ".join([*OPTIONAL_RUN_FIELDS, *RUN_FIELDS, *setting_types])
            raise UserError(f"--run {described}: unknown name {name!r}, expected one of {known}")
        if name in values:
            raise UserError(f"--run {described}: {name} given twice")
        values[name] = value
    for name, default in zip(OPTIONAL_RUN_FIELDS, (task, test), strict=True):
        if default is not None:
            values.setdefault(name, str(default))
    missing = [name for name in (*OPTIONAL_RUN_FIELDS, *RUN_FIELDS) if name not in values]
    if missing:
        defaults = [f"--{name}" for name in OPTIONAL_RUN_FIELDS if name in missing]
        hint = f" (and no {' or '.join(defaults)} for it)" if defaults else ""
        raise UserError(f"--run {described}: lacks {', '.join(missing)}{hint}")
    try:
        shots = _shots(values["shots"])
        seed = int(values["seed"])
        settings = {
            name: setting_types[name](value) for name, value in values.items() if name in setting_types
        }
    except (ValueError, TypeError) as error:
        raise UserError(f"--run {described}: {error}") from None
    return RunSpec(
        values["task"],
        Path(values["test"]),
        shots,
        seed,
        Path(values["train"]),
        Path(values["out"]),
        settings,
    )


def check_runs(runs: list[RunSpec]) -> None:
    """Refuse, before any work, two runs writing one record or one run key twice, or an unwritable --out."""
    outs = [run.out for run in runs]
    duplicated = sorted({str(out) for out in outs if outs.count(out) > 1})
    if duplicated:
        raise UserError(f"--run: record {duplicated[0]} is written by more than one run")
    identities = [(run.task, run.shots, run.seed) for run in runs]
    twice = sorted(
        {f"task {t} shots {s} seed {d}" for t, s, d in identities if identities.count((t, s, d)) > 1}
    )
    if twice:
        raise UserError(f"--run: {twice[0]} is given more than once")
    for run in runs:
        check_output_file(run.out, "--out")


@functools.cache
def file_sha256(path: Path) -> str:
    """Content hash of a file (memoised: a process hashes each model and task file once)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None


def model_identity(source: str, random_init: bool) -> dict:
    """What a model's fine-tuning results depend on: a directory's config and weight files by content (only the
    config for random initialisation); a Hugging Face id or a preset by name."""
    path = Path(source).expanduser()
    if not path.is_dir():
        return {"source": source, "random_init": random_init}
    names = ("config.json",) if random_init else MODEL_FILES
    files = {name: file_sha256(path / name) for name in names if (path / name).is_file()}
    return {"files": files, "random_init": random_init}


def run_key(identity: dict) -> str:
    """The run cache's key: a hash of everything that determines the run, and the cache's own format."""
    parts = {"identity": identity, "genemask": __version__, "cache_format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class RunCache:
    """Finished runs' records under `root/<model>/<task>/<shots>/seed<seed>-<key>.json`; no root: no cache."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, model: str, run: RunSpec, key: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / model / run.task / str(run.shots) / f"seed{run.seed}-{key}.json"

    def load(self, path: Path | None) -> dict | None:
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as error:  # unreadable: train again (and overwrite it)
            print(f"run cache {path}: unreadable ({error}), training again", file=sys.stderr)
            return None

    def store(self, path: Path | None, record: dict) -> None:
        if path is not None:
            with atomic_file(path) as tmp:
                tmp.write_text(json.dumps(record, indent=2) + "\n")


def run_all(
    runs: list[RunSpec],
    *,
    model: str,
    identity: Callable[[RunSpec], dict],
    compute: Callable[[RunSpec], dict],
    cache: RunCache,
    extra: dict | None = None,
) -> list[dict]:
    """Each run's record from the cache or, if absent, from `compute`; every record written to its `out`, with
    `extra` fields (those that name, not determine, the run: e.g. the model's path).

    A record says whether this process trained it (`from_cache`), under which key (`run_key`) and how long the
    run took in the process (`run_seconds`, loading and encoding included)."""
    check_runs(runs)
    written = []
    for run in runs:
        key = run_key(identity(run))
        cached_at = cache.path(model, run, key)
        record = cache.load(cached_at)
        if record is None:
            started = time.perf_counter()
            record = compute(run)
            record = {**record, "run_key": key, "run_seconds": time.perf_counter() - started}
            cache.store(cached_at, record)
            source = "trained"
        else:
            source = f"from the run cache ({cached_at})"
        full = write_run_record(
            run.out,
            {**record, **(extra or {}), "from_cache": source != "trained"},
            model=model,
            task=run.task,
            shots=run.shots,
            seed=run.seed,
        )
        metrics = " ".join(
            f"{name} {value:.3f}" for name, value in full["metrics"].items() if value is not None
        )
        print(f"{run.out}: {metrics} ({source})", flush=True)
        written.append(full)
    return written
