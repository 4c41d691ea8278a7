"""Few-shot classification tasks: upstream files and checksums, parsing, validation, pools and k-shot draws.

The four GeneMask tasks come from the authors' repository at a pinned commit (`UPSTREAM_BASE`). Their sequences
are written as space-separated overlapping 6-mers; the few-shot `train*.tsv` files quote every field, the test files
do not. `read_labelled_tsv` reads all of these, and our own raw-sequence TSVs, back to raw sequences.

Checksums: GitHub raw has no checksum listing, so every upstream file is pinned by its git blob sha1 (what GitHub's
tree API lists). The pins below were computed from verbatim copies of the files. Files that were too large to
obtain offline (every `test.tsv`, the >4 MiB few-shot files, Splice-40's full training set) have no pin: they
are downloaded, their sha1 is printed and recorded in `provenance.json`, and a warning says they were not
verified. Pin them here once someone has checked them against the upstream tree.

Prepared layout (`prepare_task` for the real tasks, `genemask.evaluation.simulate_tasks` for the simulated ones), every file a
TSV with header `sequence<TAB>label` and raw upper-case sequences:
  <dir>/test.tsv                   the full test set
  <dir>/pool.tsv                   every training sequence available, minus every test sequence, deduplicated
  <dir>/published/<shots>.tsv      the published draw (real tasks only), minus test sequences
  <dir>/<shots>/seed<seed>.tsv     k-shot draws (`sample_task`)
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_file
from genemask.errors import UserError

UPSTREAM_REPOSITORY = "roysoumya/GeneMask"
UPSTREAM_COMMIT = "c7614461323015ffcbbdb39fc4778e9255ddfcab"
UPSTREAM_FOLDER = "Data-B_fewshot-task-datasets"
UPSTREAM_BASE = f"https://raw.githubusercontent.com/{UPSTREAM_REPOSITORY}/{UPSTREAM_COMMIT}/{UPSTREAM_FOLDER}"
PUBLISHED_SHOTS = (10, 50, 100, 500, 1000)
SPLICE_MULTIPLIER = 10  # Splice-40's folder N holds 10*N examples per class
TOKEN_K = 6  # the upstream files hold overlapping 6-mers
HEADER = ("sequence", "label")
_ALPHABET = np.zeros(256, dtype=bool)
_ALPHABET[np.frombuffer(b"ACGTN", dtype=np.uint8)] = True


@dataclass(frozen=True)
class UpstreamFile:
    path: str  # relative to UPSTREAM_FOLDER
    git_sha1: str | None  # None: not pinned (the file could not be obtained offline)

    @property
    def url(self) -> str:
        return f"{UPSTREAM_BASE}/{self.path}"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # pipeline name, used in paths and config
    title: str  # as the paper writes it, for tables and figures
    length: int  # nt
    n_classes: int
    splice_convention: bool = False  # the published folder N holds multiplier*N per class
    test: UpstreamFile | None = None  # None: a simulated task
    published: dict[int, UpstreamFile] = field(default_factory=dict)
    extra_pool: tuple[UpstreamFile, ...] = ()  # training files beyond the published draws

    @property
    def simulated(self) -> bool:
        return self.test is None

    def upstream_files(self) -> list[UpstreamFile]:
        if self.test is None:
            return []
        return [self.test, *self.published.values(), *self.extra_pool]

    def upstream_file(self, path: str) -> UpstreamFile:
        for upstream in self.upstream_files():
            if upstream.path == path:
                return upstream
        known = ", ".join(f.path for f in self.upstream_files()) or "none (a simulated task)"
        raise UserError(f"task {self.name}: no upstream file {path!r}; expected one of {known}")

    def rows_per_class(self, shots: int, splice_multiplier: int = SPLICE_MULTIPLIER) -> int:
        """Training examples per class for `shots`: shots, or splice_multiplier*shots under the splice convention."""
        return shots * splice_multiplier if self.splice_convention else shots


def _published(folder: str, name: str, sha1s: dict[int, str | None]) -> dict[int, UpstreamFile]:
    return {
        shots: UpstreamFile(f"{folder}/{shots}/{name.format(shots=shots)}", sha1s[shots])
        for shots in PUBLISHED_SHOTS
    }


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "prom-core",
            "Prom-core",
            70,
            2,
            test=UpstreamFile("Prom-core/test.tsv", None),
            published=_published(
                "Prom-core",
                "train.tsv",
                {
                    10: "5d3729ba1bd5bcc6ea1df7c80005db77a97dde13",
                    50: "1a48e3e452a09e2960261c3116603742e3a97563",
                    100: "2084a77a343ecafef73e3fd83d79dde297f01d5a",
                    500: "f4964839f515cfb90e66ae2ecb04348ff19e9193",
                    1000: "1d6040d669d8c4fe63dc03a45f77d0862f90a6e5",
                },
            ),
        ),
        TaskSpec(
            "prom-300",
            "Prom-300",
            300,
            2,
            test=UpstreamFile("Prom-300/test.tsv", None),
            published=_published(
                "Prom-300",
                "train.tsv",
                {
                    10: "fea7d4ad07477cbb09ddfe008be3996d03278921",
                    50: "269b7ef97b04c1976a92fc623012549883df2f1c",
                    100: "c1e5f767752f9ff2e897f4d4332cb97499077bbe",
                    500: "81dfd935191af4542410ddae5e696181fdb23c57",
                    1000: "369e9179fb264f293ff94a111cb700655ca4f20c",
                },
            ),
        ),
        TaskSpec(
            "cohn-enh",
            "Cohn-enh",
            500,
            2,
            test=UpstreamFile("Cohn-enh/test.tsv", None),
            published=_published(
                "Cohn-enh",
                "train.tsv",
                {
                    10: "31f93483606cf6a71024e53da2a259c5f2e604a1",
                    50: "3bbc17559ee95f12771a09f7f1d3a15e0f90d77e",
                    100: "33747f9e3fd170860920ac46f95d325fc78ee942",
                    500: "1cf523c6f2989580e7f1cc08e9b61cc1acbe594b",
                    1000: None,
                },
            ),
        ),
        TaskSpec(
            "splice-40",
            "Splice-40",
            40,
            3,
            splice_convention=True,
            test=UpstreamFile("Splice-40/test.tsv", None),
            published=_published(
                "Splice-40",
                "train_splice40_{shots}.tsv",
                {
                    10: "39d62293e57096024dbd13b371c884dc9ed2373f",
                    50: "cc75eb79554036074b9f557b4f60d2c586386cec",
                    100: "e1dbcaabaf76a85a6118b9b09ceb7434f86338fc",
                    500: "3e046f186a46ae9c2b0c86303a10876a601df52e",
                    1000: None,
                },
            ),
            extra_pool=(UpstreamFile("Splice-40/full-dataset/train.tsv", None),),
        ),
        # Simulated stand-ins for the demo (genemask.evaluation.simulate_tasks): same lengths and class counts.
        TaskSpec("sim-promoter", "sim-promoter", 70, 2),
        TaskSpec("sim-enhancer", "sim-enhancer", 300, 2),
        TaskSpec("sim-splice", "sim-splice", 40, 3, splice_convention=True),
    )
}
REAL_TASKS = tuple(name for name, spec in TASKS.items() if not spec.simulated)
SIMULATED_TASKS = tuple(name for name, spec in TASKS.items() if spec.simulated)


def task_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


@dataclass(frozen=True)
class LabelledSequences:
    """Raw upper-case sequences with integer labels, as read from or written to a task TSV."""

    sequences: list[str]
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.sequences)

    def class_counts(self, n_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=n_classes).tolist()

    def subset(self, indices: Iterable[int]) -> LabelledSequences:
        indices = np.fromiter(indices, dtype=np.int64)
        return LabelledSequences([self.sequences[i] for i in indices], self.labels[indices])

    def without(self, excluded: set[str]) -> LabelledSequences:
        """The rows whose sequence is not in `excluded`."""
        return self.subset(i for i, seq in enumerate(self.sequences) if seq not in excluded)


def git_blob_sha1(path: str | Path) -> str:
    """The sha1 git gives the file's content (`git hash-object`): sha1 of b"blob <size>\\0" + content."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def detokenize(field: str, k: int, where: str) -> str:
    """'AAACGG AACGGA ...' (overlapping k-mers, single spaces) -> the raw sequence; checks every overlap."""
    chars = np.frombuffer((field + " ").encode("ascii"), dtype=np.uint8)
    if chars.size % (k + 1):
        raise UserError(f"{where}: expected space-separated {k}-mers, got a field of {len(field)} characters")
    tokens = chars.reshape(-1, k + 1)
    if not (tokens[:, k] == ord(" ")).all():
        raise UserError(f"{where}: expected space-separated {k}-mers")
    if not (tokens[1:, : k - 1] == tokens[:-1, 1:k]).all():
        raise UserError(f"{where}: consecutive {k}-mers do not overlap by {k - 1} nt")
    # Token i ends at character i*(k+1)+k-1: the first token plus the last letter of every later one.
    return field[:k] + field[2 * k :: k + 1]


def read_labelled_tsv(
    path: str | Path,
    *,
    length: int | None = None,
    n_classes: int | None = None,
    k: int = TOKEN_K,
) -> LabelledSequences:
    """Read a `sequence<TAB>label` TSV: quoted or not, raw sequences or space-separated overlapping k-mers.

    Validates the header, the field count, the alphabet (ACGT, N allowed), the length (if given) and the labels
    (integers in 0..n_classes-1 if given); every error names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    sequences: list[str] = []
    labels: list[int] = []
    with path.open(newline="", encoding="ascii", errors="replace") as handle:
        rows = csv.reader(handle, delimiter="\t", quotechar='"')
        header = next(rows, None)
        if header is None or tuple(header) != HEADER:
            raise UserError(f"{path}: line 1: expected the header 'sequence<TAB>label', got {header!r}")
        for line, row in enumerate(rows, start=2):
            where = f"{path}: line {line}"
            if len(row) != 2:
                raise UserError(f"{where}: expected 2 tab-separated fields, got {len(row)}")
            field_, label_text = row
            sequence = detokenize(field_, k, where) if " " in field_ else field_
            sequence = sequence.upper()
            chars = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
            if chars.size == 0 or not _ALPHABET[chars].all():
                raise UserError(f"{where}: expected a sequence of A, C, G, T, N, got {sequence[:50]!r}")
            if length is not None and len(sequence) != length:
                raise UserError(f"{where}: expected a sequence of {length} nt, got {len(sequence)}")
            try:
                label = int(label_text)
            except ValueError:
                raise UserError(f"{where}: expected an integer label, got {label_text!r}") from None
            if label < 0 or (n_classes is not None and label >= n_classes):
                limit = f"0..{n_classes - 1}" if n_classes is not None else ">= 0"
                raise UserError(f"{where}: expected a label in {limit}, got {label}")
            sequences.append(sequence)
            labels.append(label)
    if not sequences:
        raise UserError(f"{path}: no rows after the header")
    return LabelledSequences(sequences, np.array(labels, dtype=np.int64))


def read_train_test(
    train_path: str | Path, test_path: str | Path
) -> tuple[LabelledSequences, LabelledSequences, int]:
    """A training and a test TSV, checked to give a meaningful score. -> (train, test, n_classes).

    Refused: a file with one class only (a test set of one class scores a classifier that always says it
    perfectly), a test label that never occurs in training, a class missing from training.
    """
    train = read_labelled_tsv(train_path)
    test = read_labelled_tsv(test_path)
    for path, data in ((train_path, train), (test_path, test)):
        present = np.unique(data.labels)
        if present.size < 2:
            raise UserError(f"{path}: every row has label {present[0]}; a score needs at least two classes")
    unseen = sorted(set(np.unique(test.labels).tolist()) - set(np.unique(train.labels).tolist()))
    if unseen:
        raise UserError(f"{test_path}: label {unseen} never occurs in the training file {train_path}")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    missing = sorted(set(range(n_classes)) - set(train.labels.tolist()))
    if missing:
        raise UserError(
            f"{train_path}: no training example of class {missing} (labels run 0..{n_classes - 1})"
        )
    return train, test, n_classes


def write_labelled_tsv(path: str | Path, data: LabelledSequences) -> None:
    """Write raw sequences as `sequence<TAB>label`, atomically."""
    with atomic_file(path) as tmp, tmp.open("w", encoding="ascii", newline="\n") as handle:
        handle.write("\t".join(HEADER) + "\n")
        handle.writelines(f"{seq}\t{label}\n" for seq, label in zip(data.sequences, data.labels, strict=True))


def verify_upstream_file(path: str | Path, upstream: UpstreamFile) -> str:
    """Check the file's git blob sha1 against the pin; return it. Unpinned files are reported, not checked."""
    actual = git_blob_sha1(path)
    if upstream.git_sha1 is None:
        print(
            f"genemask tasks: warning: {path}: no pinned checksum for {upstream.path} (not obtainable offline); "
            f"not verified, git blob sha1 {actual}",
            file=sys.stderr,
        )
    elif actual != upstream.git_sha1:
        raise UserError(
            f"{path}: git blob sha1 {actual} does not match the pinned {upstream.git_sha1} of "
            f"{UPSTREAM_REPOSITORY}@{UPSTREAM_COMMIT[:7]}:{UPSTREAM_FOLDER}/{upstream.path}"
        )
    return actual


def download_task_file(
    task: str, path: str, out: str | Path, *, base_url: str = UPSTREAM_BASE, progress: bool = True
) -> str:
    """Download one upstream file of `task` to `out` and verify it (a mismatch removes it); return its sha1."""
    from genemask.genome.download import download

    upstream = task_spec(task).upstream_file(path)
    out = Path(out)
    download(f"{base_url}/{upstream.path}", out, progress=progress)
    try:
        return verify_upstream_file(out, upstream)
    except UserError:
        out.unlink()
        raise


def download_task(task: str, out_dir: str | Path, *, base_url: str = UPSTREAM_BASE) -> None:
    """Download every upstream file of `task` into `out_dir`, keeping upstream paths; verified files are kept."""
    for upstream in task_spec(task).upstream_files():
        out = Path(out_dir) / upstream.path
        if out.exists():
            try:
                verify_upstream_file(out, upstream)
                continue
            except UserError:
                out.unlink()
        download_task_file(task, upstream.path, out, base_url=base_url)


def deduplicate(data: LabelledSequences) -> tuple[LabelledSequences, int]:
    """Keep the first row of each sequence; drop every row of a sequence seen with two labels. -> (kept, conflicts)."""
    first: dict[str, int] = {}
    conflicting: set[str] = set()
    for index, (seq, label) in enumerate(zip(data.sequences, data.labels, strict=True)):
        if seq not in first:
            first[seq] = index
        elif data.labels[first[seq]] != label:
            conflicting.add(seq)
    kept = data.subset(index for seq, index in first.items() if seq not in conflicting)
    return kept, len(conflicting)


def concatenate(parts: Sequence[LabelledSequences]) -> LabelledSequences:
    return LabelledSequences(
        [seq for part in parts for seq in part.sequences], np.concatenate([part.labels for part in parts])
    )


def prepare_task(task: str, source_dir: str | Path, out_dir: str | Path) -> dict:
    """Parse and validate one real task's upstream files (upstream layout under `source_dir`) into `out_dir`.

    Writes test.tsv, pool.tsv (the published draws and extra training files, deduplicated, minus every test
    sequence), published/<shots>.tsv (each published draw minus test sequences) and provenance.json, which it
    also returns: checksums, counts and how many sequences were removed.
    """
    spec = task_spec(task)
    if spec.simulated:
        raise UserError(f"task {task} is simulated: make it with `genemask simulate-tasks`")
    source_dir, out_dir = Path(source_dir), Path(out_dir)

    def read(upstream: UpstreamFile) -> tuple[LabelledSequences, str]:
        path = source_dir / upstream.path
        if not path.is_file():
            raise UserError(
                f"{path}: no such file (download it with `genemask tasks download --task {task}`)"
            )
        sha1 = verify_upstream_file(path, upstream)
        return read_labelled_tsv(path, length=spec.length, n_classes=spec.n_classes), sha1

    test, test_sha1 = read(spec.test)
    test_sequences = set(test.sequences)
    files = {spec.test.path: test_sha1}
    removed: dict[str, int] = {}

    def read_training(upstream: UpstreamFile) -> LabelledSequences:
        data, files[upstream.path] = read(upstream)
        clean = data.without(test_sequences)
        removed[upstream.path] = len(data) - len(clean)
        return clean

    published = {shots: read_training(upstream) for shots, upstream in spec.published.items()}
    extra = [read_training(upstream) for upstream in spec.extra_pool]
    pool, conflicts = deduplicate(concatenate([*published.values(), *extra]))

    provenance = {
        "task": task,
        "source": f"{UPSTREAM_REPOSITORY}@{UPSTREAM_COMMIT}:{UPSTREAM_FOLDER}",
        "git_blob_sha1": files,
        "unpinned": [f.path for f in spec.upstream_files() if f.git_sha1 is None],
        "test_rows_per_class": test.class_counts(spec.n_classes),
        "pool_rows_per_class": pool.class_counts(spec.n_classes),
        "test_sequences_removed_from_training": removed,
        "pool_sequences_with_conflicting_labels": conflicts,
    }
    write_labelled_tsv(out_dir / "test.tsv", test)
    write_labelled_tsv(out_dir / "pool.tsv", pool)
    for shots, data in published.items():
        write_labelled_tsv(out_dir / "published" / f"{shots}.tsv", data)
    with atomic_file(out_dir / "provenance.json") as tmp:
        tmp.write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance


def draw_sample(
    pool: LabelledSequences,
    rows_per_class: int,
    n_classes: int,
    seed: int,
    *,
    published: LabelledSequences | None = None,
) -> LabelledSequences:
    """`rows_per_class` rows of each class from `pool`, without replacement, seeded by (seed, rows_per_class).

    With `published` (the published draw, already free of test sequences), its rows are taken as they are and a
    class short of rows (test sequences were removed) is topped up from the rest of the pool.
    """
    if rows_per_class < 1:
        raise UserError(f"expected at least 1 example per class, got {rows_per_class}")
    rng = np.random.default_rng([seed, rows_per_class])
    chosen: list[np.ndarray] = []
    taken: set[str] = set()
    if published is not None:
        counts = published.class_counts(n_classes)
        if max(counts) > rows_per_class:
            raise UserError(
                f"the published draw holds {counts} examples per class, more than the {rows_per_class} "
                "requested: check the shots multiplier, or do not use the published draw"
            )
        taken = set(published.sequences)
    for label in range(n_classes):
        have = 0 if published is None else int(np.sum(published.labels == label))
        candidates = np.flatnonzero(pool.labels == label)
        candidates = np.array([i for i in candidates if pool.sequences[i] not in taken], dtype=np.int64)
        need = rows_per_class - have
        if need > candidates.size:
            raise UserError(
                f"class {label}: {rows_per_class} examples per class requested, but the pool has only "
                f"{candidates.size + have}"
            )
        chosen.append(rng.choice(candidates, size=need, replace=False))
    drawn = pool.subset(np.concatenate(chosen))
    sample = drawn if published is None else concatenate([published, drawn])
    return sample.subset(rng.permutation(len(sample)))


def sample_task(
    task_dir: str | Path,
    rows_per_class: int,
    seed: int,
    out: str | Path,
    *,
    n_classes: int,
    published: str | Path | None = None,
) -> LabelledSequences:
    """Draw one k-shot training set from `task_dir/pool.tsv` (or start from a published draw) and write it."""
    task_dir = Path(task_dir)
    pool = read_labelled_tsv(task_dir / "pool.tsv", n_classes=n_classes)
    test = set(read_labelled_tsv(task_dir / "test.tsv", n_classes=n_classes).sequences)
    leaked = sum(seq in test for seq in pool.sequences)
    if leaked:
        raise UserError(f"{task_dir / 'pool.tsv'}: {leaked} sequences also occur in test.tsv")
    published_data = None if published is None else read_labelled_tsv(published, n_classes=n_classes)
    if published_data is not None and any(seq in test for seq in published_data.sequences):
        raise UserError(f"{published}: holds test sequences (prepare the task again)")
    sample = draw_sample(pool, rows_per_class, n_classes, seed, published=published_data)
    write_labelled_tsv(out, sample)
    return sample
