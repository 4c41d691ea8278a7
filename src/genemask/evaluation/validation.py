"""Checks of a task's sequences against its spec, before any model sees them.

A sequence of the wrong length for its task (50 nt in a 70-nt task) would be fine-tuned without a word, and one
shorter than a token (3 nt for 6-mer tokens) would become an empty input; both are user errors naming the file,
the line and the length expected.
"""

from __future__ import annotations

from pathlib import Path

from genemask.errors import UserError
from genemask.evaluation.tasks import TASKS, LabelledSequences


def check_task_sequences(task: str, path: str | Path, data: LabelledSequences, *, k: int = 6) -> None:
    """Every sequence of `data`, read from the task TSV `path`, has the length of `task` (when it is a registered
    task) and at least `k` nt (one k-mer token). Line numbers count the header as line 1."""
    spec = TASKS.get(task)
    for index, sequence in enumerate(data.sequences):
        where = f"{path}: line {index + 2}"
        if spec is not None and spec.length is not None and len(sequence) != spec.length:
            raise UserError(
                f"{where}: a sequence of {len(sequence)} nt, but task {task} has {spec.length}-nt sequences; "
                "is this file of another task?"
            )
        if len(sequence) < k:
            raise UserError(f"{where}: a sequence of {len(sequence)} nt, shorter than one {k}-mer token")
