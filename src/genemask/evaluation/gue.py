"""GUE (Genome Understanding Evaluation, DNABERT-2 paper): the 28 tasks, their sources, provenance and readers.

Each task is a folder of `train.csv`, `dev.csv` and `test.csv` with the header `sequence,label` and raw upper-case
sequences. Sources, in the order the config prefers them:
  - a local directory holding the unpacked GUE archive (`EMP/H3/`, `prom/prom_core_all/`, `tf/0/`, ...) or the
    mirror's flat layout (`emp_H3/`, `prom_core_all/`, `human_tf_0/`, ...); single task folders may be named
    directly (the shared copies that tests and the GUE demo use);
  - the Hugging Face dataset mirror `MIRROR_REPOSITORY` at the pinned `MIRROR_REVISION`
    (`GUE/<task>/<split>.csv`), downloaded with resume and retries by genemask.genome.download.

Provenance: the first use of a task records every split's size and sha256 (and its rows per class and lengths)
in a JSON file; every later use checks the files against it, so a changed file is an error, not a silent change
of the benchmark.

Published facts per task (DNABERT-2 paper, appendix table of GUE; CM-GEMS recipe, docs/method.md section 9):
rows per split, nominal sequence length, classes, the maximum length in tokens (512, 80 for core promoters) and
epochs (3, 4 for core promoters). Row counts differing from the published ones are reported and recorded, not
rejected (only the prom_core_all, prom_300_all and splice files could be checked offline).
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.settings import FinetuneSettings
from genemask.evaluation.tasks import LabelledSequences
from genemask.options import schema_setting

MIRROR_REPOSITORY = "leannmlindsey/GUE"
MIRROR_REVISION = "2db3b738af3c676c243350ac337b9560ab15b04b"
HUB = "https://huggingface.co"
SPLITS = ("train", "dev", "test")
HEADER = ("sequence", "label")
# The GUE recipe of the CM-GEMS paper (docs/method.md section 9).
# The published recipe: its definition is the schema's finetune.gue defaults.
RECIPE = {
    key: schema_setting(f"finetune.gue.{key}")["default"]
    for key in ("learning_rate", "batch_size", "warmup_steps")
}
_ALPHABET = np.zeros(256, dtype=bool)
_ALPHABET[np.frombuffer(b"ACGTN", dtype=np.uint8)] = True


@dataclass(frozen=True)
class GueTask:
    name: str  # the mirror's folder name, used in paths and config
    archive_path: str  # the folder in the unpacked GUE archive
    group: str  # task group as CM-GEMS Table 2 names it
    dataset: str  # the dataset within the group, as CM-GEMS Table 2 names it ("" for Covid: not in the table)
    length: int  # nominal sequence length, nt
    n_classes: int
    rows: tuple[int, int, int]  # published train, dev, test rows
    exact_length: bool = False  # every sequence has `length` nt (checked offline on the shared copies)

    @property
    def core_promoter(self) -> bool:
        return self.name.startswith("prom_core")

    @property
    def max_length(self) -> int:
        """Tokens incl. [CLS]/[SEP] in the published recipe: 80 for core promoters, 512 otherwise."""
        return 80 if self.core_promoter else 512

    @property
    def epochs(self) -> int:
        return 4 if self.core_promoter else 3

    @property
    def in_published_table(self) -> bool:
        return bool(self.dataset)

    @property
    def title(self) -> str:
        return f"{self.group} {self.dataset}".strip() if self.dataset else "Virus (Covid)"


def _tasks() -> dict[str, GueTask]:
    tasks = []
    for kind, title in (("300", "PD (Human)"), ("core", "CPD (Human)")):
        length = 300 if kind == "300" else 70
        for variant, rows in (("all", 47356), ("notata", 42452), ("tata", 4904)):
            dev = {"all": 5920, "notata": 5307, "tata": 613}[variant]
            published = "no tata" if (kind, variant) == ("300", "notata") else variant
            name = f"prom_{kind}_{variant}"
            exact = variant == "all"
            tasks.append(GueTask(name, f"prom/{name}", title, published, length, 2, (rows, dev, dev), exact))
    for index, rows in enumerate((32378, 30672, 19000, 27294, 19000)):
        tasks.append(
            GueTask(f"human_tf_{index}", f"tf/{index}", "TFP (Human)", str(index), 100, 2, (rows, 1000, 1000))
        )
    tasks.append(
        GueTask(
            "splice_reconstructed", "splice/reconstructed", "Splice (Human)", "Reconstruct", 400, 3,
            (36496, 4562, 4562), True,
        )
    )  # fmt: skip
    for mark, rows, dev in (
        ("H3", 11971, 1497),
        ("H3K14ac", 26438, 3305),
        ("H3K36me3", 27904, 3488),
        ("H3K4me1", 25341, 3168),
        ("H3K4me2", 24545, 3069),
        ("H3K4me3", 29439, 3680),
        ("H3K79me3", 23069, 2884),
        ("H3K9ac", 22224, 2779),
        ("H4", 11679, 1461),
        ("H4ac", 27275, 3410),
    ):
        tasks.append(GueTask(f"emp_{mark}", f"EMP/{mark}", "EMP (Yeast)", mark, 500, 2, (rows, dev, dev)))
    for index, (rows, dev) in enumerate(
        ((6478, 810), (53952, 6745), (2620, 328), (1904, 239), (15064, 1883))
    ):
        tasks.append(
            GueTask(f"mouse_{index}", f"mouse/{index}", "TFP (Mouse)", str(index), 100, 2, (rows, dev, dev))
        )
    tasks.append(GueTask("virus_covid", "virus/covid", "Virus", "", 1000, 9, (77669, 7000, 7000)))
    return {task.name: task for task in tasks}


GUE_TASKS: dict[str, GueTask] = _tasks()
GROUP_ORDER = tuple(dict.fromkeys(task.group for task in GUE_TASKS.values()))


def gue_task(name: str) -> GueTask:
    if name not in GUE_TASKS:
        raise UserError(f"unknown GUE task {name!r}; expected one of {', '.join(GUE_TASKS)}")
    return GUE_TASKS[name]


def mirror_url(
    task: str,
    split: str,
    *,
    repository: str = MIRROR_REPOSITORY,
    revision: str = MIRROR_REVISION,
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
        root / spec.archive_path,
        root / task,
        root / "GUE" / spec.archive_path,
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
    repository: str = MIRROR_REPOSITORY,
    revision: str = MIRROR_REVISION,
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


def read_gue_csv(path: str | Path, spec: GueTask) -> LabelledSequences:
    """A GUE split, strictly: header `sequence,label`, 2 fields, ACGTN, the task's length and label range."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no such file (GUE task {spec.name} needs {', '.join(s + '.csv' for s in SPLITS)})"
        )
    sequences: list[str] = []
    labels: list[int] = []
    with path.open(newline="", encoding="ascii", errors="replace") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or tuple(header) != HEADER:
            raise UserError(f"{path}: line 1: expected the header 'sequence,label', got {header!r}")
        for line, row in enumerate(rows, start=2):
            where = f"{path}: line {line}"
            if len(row) != 2:
                raise UserError(f"{where}: expected 2 comma-separated fields, got {len(row)}")
            sequence, label_text = row[0].upper(), row[1]
            chars = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
            if chars.size == 0 or not _ALPHABET[chars].all():
                raise UserError(f"{where}: expected a sequence of A, C, G, T, N, got {sequence[:50]!r}")
            if spec.exact_length and len(sequence) != spec.length:
                raise UserError(f"{where}: expected a sequence of {spec.length} nt, got {len(sequence)}")
            try:
                label = int(label_text)
            except ValueError:
                raise UserError(f"{where}: expected an integer label, got {label_text!r}") from None
            if not 0 <= label < spec.n_classes:
                raise UserError(f"{where}: expected a label in 0..{spec.n_classes - 1}, got {label}")
            sequences.append(sequence)
            labels.append(label)
    if not sequences:
        raise UserError(f"{path}: no rows after the header")
    return LabelledSequences(sequences, np.array(labels, dtype=np.int64))


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
        if len(data) != spec.rows[index]:
            differs[split] = {"rows": len(data), "published": spec.rows[index]}
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
    spec = gue_task(task)
    values = {**RECIPE, "epochs": spec.epochs, "max_length": spec.max_length, "seed": seed}
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
    dev_as_train: bool = False,
    device: str | None = None,
) -> dict:
    """Full-data fine-tuning of `model` on a GUE task with the few-shot grid's code: dev selection, test metrics."""
    from genemask.evaluation.finetune import finetune

    data = load_gue_task(
        task, task_dir, provenance_path, seed=settings.seed, max_train=max_train, dev_as_train=dev_as_train
    )
    spec = gue_task(task)
    record = finetune(model, data.train, data.test, spec.n_classes, settings, device=device, dev=data.dev)
    record["dev_epochs"] = [
        {name: value if value is None or np.isfinite(value) else None for name, value in epoch.items()}
        for epoch in record["dev_epochs"]
    ]
    provenance = json.loads(Path(provenance_path).read_text())
    return record | {
        "benchmark": "GUE",
        "deviations": list(data.deviations),
        "max_train": max_train,
        "dev_as_train": dev_as_train,
        "gue_files": {split: entry["sha256"] for split, entry in provenance["files"].items()},
    }
