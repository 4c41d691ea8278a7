"""GUE (Genome Understanding Evaluation, DNABERT-2 paper): sources, provenance and full-data runs of its 28 tasks.

The tasks and their facts (rows per split, classes, lengths, archive folder, published metric) are entries of the
one task registry (`genemask.evaluation.task_registry.GUE_TASKS`); how each is fine-tuned (epochs, warm-up,
evaluation interval, step cap) is `genemask.evaluation.gue_recipe`; files are read by the one reader
(`genemask.evaluation.validation.read_labelled`) and runs are written as the one run record
(`genemask.evaluation.results.write_run_record`, shots `full`).

Each task is a folder of `train.csv`, `dev.csv` and `test.csv` with the header `sequence,label` and raw upper-case
sequences. Sources, in the order the config prefers them:
  - a local directory holding the unpacked GUE archive (`EMP/H3/`, `prom/prom_core_all/`, `tf/0/`, ...) or the
    mirror's flat layout (`emp_H3/`, `prom_core_all/`, `human_tf_0/`, ...); single task folders may be named
    directly (the shared copies that tests and the GUE demo use);
  - the Hugging Face dataset mirror `GUE_MIRROR_REPOSITORY` at the pinned `GUE_MIRROR_REVISION` (task registry)
    (`GUE/<task>/<split>.csv`), downloaded with resume and retries by genemask.genome.download.

Provenance: the first use of a task records every split's size and sha256 (and its rows per class and lengths)
in a JSON file; every later use checks the files against it, so a changed file is an error, not a silent change
of the benchmark. Row counts differing from the published ones are reported and recorded, not rejected.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.gue_recipe import GueRecipe, gue_recipe
from genemask.evaluation.settings import FinetuneSettings
from genemask.evaluation.task_registry import GUE_GROUP_ORDER as GROUP_ORDER  # noqa: F401  (for the tables)
from genemask.evaluation.task_registry import (  # noqa: F401  (GUE_TASKS re-exported for the workflow, tables)
    GUE_MIRROR_REPOSITORY,
    GUE_MIRROR_REVISION,
    GUE_TASKS,
    TaskSpec,
    gue_task,
)
from genemask.evaluation.validation import LabelledSequences, read_labelled

HUB = "https://huggingface.co"
SETTINGS_OF_THE_RECIPE = ("epochs", "warmup_steps", "batch_size", "learning_rate", "max_length")
SPLITS = ("train", "dev", "test")


def mirror_url(
    task: str,
    split: str,
    *,
    repository: str = GUE_MIRROR_REPOSITORY,
    revision: str = GUE_MIRROR_REVISION,
    host: str = HUB,
) -> str:
    return f"{host}/datasets/{repository}/resolve/{revision}/GUE/{task}/{split}.csv"


def local_task_dir(
    task: str, local_dir: str | Path | None, local_paths: dict[str, str] | None = None
) -> Path:
    """Where a task's CSVs are under a local source: a per-task folder, else the archive or the mirror layout."""
    spec = gue_task(task)
    if local_paths and task in local_paths:
        return Path(local_paths[task])
    if local_dir is None:
        raise UserError(
            f"GUE task {task}: no local folder (set finetune.gue.local_dir or finetune.gue.local_paths)"
        )
    root = Path(local_dir)
    candidates = [
        root / spec.source,
        root / task,
        root / "GUE" / spec.source,
        root / "GUE" / task,
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]  # the archive layout; reading it names the missing file


def download_gue_task(
    task: str,
    out_dir: str | Path,
    *,
    repository: str = GUE_MIRROR_REPOSITORY,
    revision: str = GUE_MIRROR_REVISION,
    host: str = HUB,
) -> Path:
    """Download a task's three splits from the pinned mirror into `out_dir` (resumed, retried); return it."""
    from genemask.genome.download import download

    gue_task(task)
    out_dir = Path(out_dir)
    for split in SPLITS:
        out = out_dir / f"{split}.csv"
        if not out.exists():
            download(mirror_url(task, split, repository=repository, revision=revision, host=host), out)
    return out_dir


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_gue_csv(path: str | Path, spec: TaskSpec) -> LabelledSequences:
    """A GUE split through the one reader: header `sequence,label`, ACGTN, the task's length (where checked) and
    label range."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no such file (GUE task {spec.name} needs {', '.join(s + '.csv' for s in SPLITS)})"
        )
    length = spec.length if spec.exact_length else None
    return read_labelled(path, separator=",", length=length, n_classes=spec.n_classes)


def _split_files(task_dir: Path, splits: tuple[str, ...]) -> dict[str, Path]:
    files = {split: task_dir / f"{split}.csv" for split in splits}
    for split, path in files.items():
        if not path.is_file():
            raise UserError(f"{path}: no such file (GUE needs the {split} split)")
    return files


def task_splits(dev_as_train: bool) -> tuple[str, ...]:
    """The files a task needs: all three, or dev and test when training on half of dev (demo only)."""
    return ("dev", "test") if dev_as_train else SPLITS


def check_provenance(
    task: str, task_dir: str | Path, provenance_path: str | Path, *, source: str, dev_as_train: bool = False
) -> dict:
    """On first use read and validate the splits and record them; later, check sizes and sha256 against the record."""
    spec = gue_task(task)
    task_dir, provenance_path = Path(task_dir), Path(provenance_path)
    files = _split_files(task_dir, task_splits(dev_as_train))
    if provenance_path.exists():
        record = json.loads(provenance_path.read_text())
        for split, path in files.items():
            recorded = record["files"].get(split)
            if recorded is None:
                raise UserError(
                    f"{provenance_path}: no record of {split}.csv (remove the file to record again)"
                )
            size = path.stat().st_size
            if size != recorded["size"] or file_sha256(path) != recorded["sha256"]:
                raise UserError(
                    f"{path}: size or sha256 differs from the record in {provenance_path} (first used "
                    f"{recorded['size']} bytes, sha256 {recorded['sha256'][:12]}...): the GUE file changed "
                    "(remove the record to accept it)"
                )
        return record

    record: dict = {"task": task, "source": source, "directory": str(task_dir.resolve()), "files": {}}
    differs = {}
    for index, split in enumerate(SPLITS):
        if split not in files:
            continue
        path = files[split]
        data = read_gue_csv(path, spec)
        lengths = [len(sequence) for sequence in data.sequences]
        record["files"][split] = {
            "size": path.stat().st_size,
            "sha256": file_sha256(path),
            "rows": len(data),
            "rows_per_class": data.class_counts(spec.n_classes),
            "length_min": min(lengths),
            "length_max": max(lengths),
        }
        if len(data) != spec.split_sizes[index]:
            differs[split] = {"rows": len(data), "published": spec.split_sizes[index]}
    record["rows_differ_from_published"] = differs
    for split, counts in differs.items():
        print(
            f"genemask gue: warning: {task} {split}.csv has {counts['rows']} rows, published {counts['published']}",
            file=sys.stderr,
        )
    with atomic_file(provenance_path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record


@dataclass(frozen=True)
class GueData:
    train: LabelledSequences
    dev: LabelledSequences
    test: LabelledSequences
    deviations: tuple[str, ...]  # every way the data differ from the published splits, for the tables


def half_split(data: LabelledSequences) -> tuple[LabelledSequences, LabelledSequences]:
    """A fixed (seed 0) random half of `data` and the rest: the same halves for every model and seed."""
    order = np.random.default_rng(0).permutation(len(data))
    middle = len(data) // 2
    return data.subset(np.sort(order[:middle])), data.subset(np.sort(order[middle:]))


def load_gue_task(
    task: str,
    task_dir: str | Path,
    provenance_path: str | Path,
    *,
    seed: int,
    max_train: int | None = None,
    dev_as_train: bool = False,
) -> GueData:
    """The checked splits of a task (see check_provenance), with the demo's deviations applied and named."""
    spec = gue_task(task)
    provenance_path = Path(provenance_path)
    if not provenance_path.exists():
        raise UserError(
            f"{provenance_path}: no provenance record for {task} (run `genemask gue check` first)"
        )
    record = json.loads(provenance_path.read_text())
    check_provenance(task, task_dir, provenance_path, source=record["source"], dev_as_train=dev_as_train)
    files = _split_files(Path(task_dir), task_splits(dev_as_train))
    dev = read_gue_csv(files["dev"], spec)
    test = read_gue_csv(files["test"], spec)
    deviations = []
    if dev_as_train:
        train, dev = half_split(dev)
        deviations.append("trained on half of dev.csv, selected on the other half (no train.csv; demo only)")
    else:
        train = read_gue_csv(files["train"], spec)
    if max_train is not None and len(train) > max_train:
        keep = np.sort(np.random.default_rng([seed, max_train]).choice(len(train), max_train, replace=False))
        deviations.append(f"training set subsampled to {max_train} of {len(train)} rows (demo only)")
        train = train.subset(keep)
    missing = sorted(set(range(spec.n_classes)) - set(train.labels.tolist()))
    if missing:
        raise UserError(f"GUE task {task}: no training example of class {missing}")
    return GueData(train, dev, test, tuple(deviations))


def gue_settings(task: str, *, seed: int, random_init: bool = False, **overrides) -> FinetuneSettings:
    """The published recipe for `task` (lr, batch, warm-up steps, epochs, max length); overrides win."""
    recipe = gue_recipe(task)
    values = {
        "learning_rate": recipe.learning_rate,
        "batch_size": recipe.batch_size,
        "warmup_steps": recipe.warmup_steps,
        "epochs": recipe.epochs,
        "max_length": recipe.max_length,
        "seed": seed,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return FinetuneSettings(random_init=random_init, **values)


def run_gue_finetune(
    model: str,
    task: str,
    task_dir: str | Path,
    provenance_path: str | Path,
    settings: FinetuneSettings,
    *,
    max_train: int | None = None,
    max_steps: int | None = None,
    dev_as_train: bool = False,
    device: str | None = None,
) -> dict:
    """Full-data fine-tuning of `model` on a GUE task with the few-shot grid's code: the recipe's step cap (or
    `max_steps`, a recorded departure), the dev set evaluated every `eval_every` steps, the checkpoint with the
    lowest dev loss tested. -> the run record's body (write it with results.write_run_record, shots `full`)."""
    from genemask.evaluation.finetune import finetune

    if max_steps is not None and max_steps < 1:
        raise UserError(f"--max-steps {max_steps}: expected at least 1")
    data = load_gue_task(
        task, task_dir, provenance_path, seed=settings.seed, max_train=max_train, dev_as_train=dev_as_train
    )
    spec, recipe = gue_task(task), gue_recipe(task)
    max_steps = max_steps or recipe.max_steps
    record = finetune(
        model,
        data.train,
        data.test,
        spec.n_classes,
        settings,
        device=device,
        dev=data.dev,
        eval_every=recipe.eval_every,
        max_steps=max_steps,
    )
    record["dev_evaluations"] = [
        {name: value if value is None or np.isfinite(value) else None for name, value in evaluation.items()}
        for evaluation in record["dev_evaluations"]
    ]
    provenance = json.loads(Path(provenance_path).read_text())
    return record | {
        "benchmark": spec.benchmark,
        "recipe": asdict(recipe),
        "recipe_departures": recipe_departures(recipe, settings, max_steps),
        "published_metric": spec.published_metric,
        "deviations": list(data.deviations),
        "max_train": max_train,
        "dev_as_train": dev_as_train,
        "gue_files": {split: entry["sha256"] for split, entry in provenance["files"].items()},
    }


def recipe_departures(recipe: GueRecipe, settings: FinetuneSettings, max_steps: int | None) -> dict:
    """The settings a run used that differ from the task's published recipe (config or CLI overrides): name ->
    the value used."""
    used = {name: getattr(settings, name) for name in SETTINGS_OF_THE_RECIPE} | {"max_steps": max_steps}
    return {name: value for name, value in used.items() if value != getattr(recipe, name)}
