"""Few-shot classification tasks: upstream files and checksums, parsing, validation, pools and k-shot draws.

The tasks and their upstream files, each pinned by its git blob sha1, are in `genemask.evaluation.task_registry`
(re-exported here). Upstream sequences are written as space-separated overlapping 6-mers; the few-shot `train*.tsv`
files quote every field, the GeneMask test files do not. `read_labelled_tsv` reads all of these, a member of a
`full-dataset.zip`, and our own raw-sequence TSVs, back to raw sequences.

Prepared layout (`prepare_task` for the real tasks, `genemask.evaluation.simulate_tasks` for the simulated ones), every file a
TSV with header `sequence<TAB>label` and raw upper-case sequences:
  <dir>/test.tsv                   the full test set
  <dir>/pool.tsv                   the full training set and the published draws, minus every test sequence,
                                   deduplicated (the whole pool is the `full` shots setting)
  <dir>/published/<shots>.tsv      the published draw (real tasks only), minus test sequences
  <dir>/<shots>/seed<seed>.tsv     k-shot draws (`sample_task`)
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.task_registry import (  # noqa: F401  (re-exported: the tasks' public interface)
    FULL_TRAINING_MEMBER,
    PUBLISHED_SHOTS,
    REAL_TASKS,
    SIMULATED_TASKS,
    SPLICE_MULTIPLIER,
    TASKS,
    UPSTREAM_BASE,
    UPSTREAM_COMMIT,
    UPSTREAM_FOLDER,
    UPSTREAM_REPOSITORY,
    TaskSpec,
    UpstreamFile,
    task_spec,
)

TOKEN_K = 6  # the upstream files hold overlapping 6-mers
HEADER = ("sequence", "label")
_ALPHABET = np.zeros(256, dtype=bool)
_ALPHABET[np.frombuffer(b"ACGTN", dtype=np.uint8)] = True


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
    member: str | None = None,
) -> LabelledSequences:
    """Read a `sequence<TAB>label` TSV: quoted or not, raw sequences or space-separated overlapping k-mers.

    With `member`, `path` is a zip archive and the TSV is its one member of that file name (in any folder).
    Validates the header, the field count, the alphabet (ACGT, N allowed), the length (if given) and the labels
    (integers in 0..n_classes-1 if given); every error names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    sequences: list[str] = []
    labels: list[int] = []
    with _open_text(path, member) as (name, handle):
        rows = csv.reader(handle, delimiter="\t", quotechar='"')
        header = next(rows, None)
        if header is None or tuple(header) != HEADER:
            raise UserError(f"{name}: line 1: expected the header 'sequence<TAB>label', got {header!r}")
        for line, row in enumerate(rows, start=2):
            where = f"{name}: line {line}"
            if len(row) != 2:
                raise UserError(f"{where}: expected 2 tab-separated fields, got {len(row)}")
            field_, label_text = row
            if field_ != field_.strip() and " " not in field_.strip():
                raise UserError(
                    f"{where}: the sequence field has a space (or tab) before or after the sequence; expected "
                    f"the sequence alone, or space-separated {k}-mers"
                )
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
        raise UserError(f"{name}: no rows after the header")
    return LabelledSequences(sequences, np.array(labels, dtype=np.int64))


@contextlib.contextmanager
def _open_text(path: Path, member: str | None) -> Iterator[tuple[str, io.TextIOBase]]:
    """(name for messages, text handle) of a file, or of the member of a zip archive with that file name."""
    if member is None:
        with path.open(newline="", encoding="ascii", errors="replace") as handle:
            yield str(path), handle
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UserError(f"{path}: not a zip archive") from None
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        matches = [name for name in names if name.rsplit("/", 1)[-1] == member]
        if len(matches) != 1:
            raise UserError(
                f"{path}: expected exactly one member named {member}, found {len(matches)} among {names[:20]}"
            )
        with archive.open(matches[0]) as raw:
            yield (
                f"{path}:{matches[0]}",
                io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline=""),
            )


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
    """Check the file's git blob sha1 against its pin; return it."""
    actual = git_blob_sha1(path)
    if actual != upstream.git_sha1:
        raise UserError(
            f"{path}: git blob sha1 {actual} does not match the pinned {upstream.git_sha1} of {upstream.source}"
        )
    return actual


def download_task_file(
    task: str, path: str, out: str | Path, *, base_url: str | None = None, progress: bool = True
) -> str:
    """Download one upstream file of `task` to `out` and verify it (a mismatch removes it); return its sha1.

    `base_url` replaces the file's pinned folder URL (a mirror holding the same paths).
    """
    from genemask.genome.download import download

    upstream = task_spec(task).upstream_file(path)
    out = Path(out)
    download(f"{base_url or upstream.base}/{upstream.path}", out, progress=progress)
    try:
        return verify_upstream_file(out, upstream)
    except UserError:
        out.unlink()
        raise


def download_task(task: str, out_dir: str | Path, *, base_url: str | None = None) -> None:
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

    Every file is checked against its pin first. Writes test.tsv, pool.tsv (the full training set and the
    published draws, deduplicated, minus every test sequence), published/<shots>.tsv (each published draw minus
    test sequences) and provenance.json, which it also returns: checksums, row counts per file and class, the
    full training set's size before and after removing test sequences, and the pool's.
    """
    spec = task_spec(task)
    if spec.simulated:
        raise UserError(f"task {task} is simulated: make it with `genemask simulate-tasks`")
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    for upstream in spec.upstream_files():  # every pin before any parsing
        path = source_dir / upstream.path
        if not path.is_file():
            raise UserError(
                f"{path}: no such file (download it with `genemask tasks download --task {task}`)"
            )
    files = {
        upstream.path: verify_upstream_file(source_dir / upstream.path, upstream)
        for upstream in spec.upstream_files()
    }

    def read(upstream: UpstreamFile) -> LabelledSequences:
        member = FULL_TRAINING_MEMBER if upstream.path.endswith(".zip") else None
        return read_labelled_tsv(
            source_dir / upstream.path, length=spec.length, n_classes=spec.n_classes, member=member
        )

    test = read(spec.test)
    if min(test.class_counts(spec.n_classes)) == 0:
        raise UserError(
            f"{source_dir / spec.test.path}: test rows per class {test.class_counts(spec.n_classes)}; "
            f"expected every one of the {spec.n_classes} classes"
        )
    test_sequences = set(test.sequences)
    rows: dict[str, list[int]] = {spec.test.path: test.class_counts(spec.n_classes)}
    removed: dict[str, int] = {}

    def read_training(upstream: UpstreamFile) -> LabelledSequences:
        data = read(upstream)
        rows[upstream.path] = data.class_counts(spec.n_classes)
        clean = data.without(test_sequences)
        removed[upstream.path] = len(data) - len(clean)
        return clean

    published = {shots: read_training(upstream) for shots, upstream in spec.published.items()}
    full = [read_training(upstream) for upstream in spec.extra_pool]
    full_clean, _ = deduplicate(concatenate(full)) if full else (None, 0)
    pool, conflicts = deduplicate(concatenate([*full, *published.values()]))
    full_sequences = set() if full_clean is None else set(full_clean.sequences)
    provenance = {
        "task": task,
        "sources": sorted({upstream.source.split(":")[0] for upstream in spec.upstream_files()}),
        "git_blob_sha1": files,
        "verified_against_pins": True,
        "rows_per_class": rows,
        "test_rows_per_class": test.class_counts(spec.n_classes),
        "full_training_set_rows": None
        if not full
        else sum(len(part) + removed[f.path] for part, f in zip(full, spec.extra_pool, strict=True)),
        "full_training_set_rows_minus_test_deduplicated": None if full_clean is None else len(full_clean),
        "published_sequences_outside_the_full_training_set": {
            str(shots): sum(seq not in full_sequences for seq in data.sequences)
            for shots, data in published.items()
        }
        if full
        else None,
        "pool_rows": len(pool),
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
    rows_per_class: int | None,
    seed: int,
    out: str | Path,
    *,
    n_classes: int,
    published: str | Path | None = None,
) -> LabelledSequences:
    """Draw one k-shot training set from `task_dir/pool.tsv` (or start from a published draw) and write it.

    `rows_per_class` None: the whole pool (the `full` shots setting), whatever the seed.
    """
    task_dir = Path(task_dir)
    pool = read_labelled_tsv(task_dir / "pool.tsv", n_classes=n_classes)
    test = set(read_labelled_tsv(task_dir / "test.tsv", n_classes=n_classes).sequences)
    leaked = sum(seq in test for seq in pool.sequences)
    if leaked:
        raise UserError(f"{task_dir / 'pool.tsv'}: {leaked} sequences also occur in test.tsv")
    published_data = None if published is None else read_labelled_tsv(published, n_classes=n_classes)
    if published_data is not None and any(seq in test for seq in published_data.sequences):
        raise UserError(f"{published}: holds test sequences (prepare the task again)")
    if rows_per_class is None:
        sample = pool
    else:
        sample = draw_sample(pool, rows_per_class, n_classes, seed, published=published_data)
    write_labelled_tsv(out, sample)
    return sample
