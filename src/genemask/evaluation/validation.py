"""The one reader of labelled sequence files, and the checks of a task's sequences against its registry entry.

Every task file is `sequence<SEP>label` with a header: the few-shot TSVs (tab; quoted or not; raw sequences or
space-separated overlapping k-mers, as upstream writes them) and the GUE CSVs (comma; raw sequences). `read_labelled`
reads both with the same checks and the same one-line errors naming the file and line; `check_task_sequences`
checks sequences against their task's lengths: a sequence of the wrong length for its task (50 nt in a 70-nt task)
would be fine-tuned without a word, and one shorter than a token (3 nt for 6-mer tokens) would become an empty input.
"""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemask.errors import UserError
from genemask.evaluation.task_registry import GUE_TASKS, TASKS

TOKEN_K = 6  # the upstream few-shot files hold overlapping 6-mers
HEADER = ("sequence", "label")
_SEPARATOR_NAMES = {"\t": ("<TAB>", "tab"), ",": (",", "comma")}
_ALPHABET = np.zeros(256, dtype=bool)
_ALPHABET[np.frombuffer(b"ACGTN", dtype=np.uint8)] = True


@dataclass(frozen=True)
class LabelledSequences:
    """Raw upper-case sequences with integer labels, as read from or written to a task file."""

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


def read_labelled(
    path: str | Path,
    *,
    separator: str = "\t",
    length: int | None = None,
    lengths: tuple[int, int] | None = None,
    n_classes: int | None = None,
    k: int = TOKEN_K,
    member: str | None = None,
) -> LabelledSequences:
    """Read a `sequence<SEP>label` file (tab: the few-shot TSVs; comma: the GUE CSVs).

    Fields may be quoted; sequences raw or space-separated overlapping k-mers. With `member`, `path` is a zip
    archive and the file is its one member of that name (in any folder). Validates the header, the field count,
    the alphabet (ACGT, N allowed), the length (`length` exactly, or within `lengths` = (min, max)) and the
    labels (integers in 0..n_classes-1 if given); every error is one line naming the file and line.
    """
    shown, word = _SEPARATOR_NAMES[separator]
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    sequences: list[str] = []
    labels: list[int] = []
    with _open_text(path, member) as (name, handle):
        rows = csv.reader(handle, delimiter=separator, quotechar='"')
        header = next(rows, None)
        if header is None or tuple(header) != HEADER:
            raise UserError(f"{name}: line 1: expected the header 'sequence{shown}label', got {header!r}")
        for line, row in enumerate(rows, start=2):
            where = f"{name}: line {line}"
            if len(row) != 2:
                raise UserError(f"{where}: expected 2 {word}-separated fields, got {len(row)}")
            field_, label_text = row
            if field_ != field_.strip() and " " not in field_.strip():
                raise UserError(
                    f"{where}: the sequence field has a space (or tab) before or after the sequence; expected "
                    f"the sequence alone, or space-separated {k}-mers"
                )
            sequence = (detokenize(field_, k, where) if " " in field_ else field_).upper()
            chars = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
            if chars.size == 0 or not _ALPHABET[chars].all():
                raise UserError(f"{where}: expected a sequence of A, C, G, T, N, got {sequence[:50]!r}")
            if length is not None and len(sequence) != length:
                raise UserError(f"{where}: expected a sequence of {length} nt, got {len(sequence)}")
            if lengths is not None and not lengths[0] <= len(sequence) <= lengths[1]:
                raise UserError(
                    f"{where}: expected a sequence of {lengths[0]}-{lengths[1]} nt, got {len(sequence)}"
                )
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


def check_task_sequences(task: str, path: str | Path, data: LabelledSequences, *, k: int = 6) -> None:
    """Every sequence of `data`, read from the task file `path`, has a length of `task` (when it is a registered
    task: its exact length, or within its (min, max)) and at least `k` nt (one k-mer token). Line numbers count
    the header as line 1."""
    spec = TASKS.get(task) or GUE_TASKS.get(task)
    checked = spec is not None and (spec.exact_length or spec.length_range is not None)
    low, high = spec.lengths if checked else (0, 0)
    for index, sequence in enumerate(data.sequences):
        where = f"{path}: line {index + 2}"
        if high and not low <= len(sequence) <= high:
            expected = f"{low}-nt" if low == high else f"{low}-{high}-nt"
            raise UserError(
                f"{where}: a sequence of {len(sequence)} nt, but task {task} has {expected} sequences; "
                "is this file of another task?"
            )
        if len(sequence) < k:
            raise UserError(f"{where}: a sequence of {len(sequence)} nt, shorter than one {k}-mer token")
