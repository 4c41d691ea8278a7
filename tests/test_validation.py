"""A task's sequences checked against its spec: the right length, and at least one token."""

from __future__ import annotations

import numpy as np
import pytest

from genemask.errors import UserError
from genemask.evaluation.tasks import LabelledSequences, read_labelled_tsv
from genemask.evaluation.validation import check_task_sequences


def write_task(path, sequences):
    path.write_text("sequence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(sequences)))
    return path


def test_sequences_of_the_task_length_pass(tmp_path):
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), 70)) for _ in range(4)]
    path = write_task(tmp_path / "train.tsv", sequences)
    check_task_sequences("sim-promoter", path, read_labelled_tsv(path))
    check_task_sequences("prom-core", path, read_labelled_tsv(path))
    check_task_sequences("my-own-task", path, read_labelled_tsv(path))  # unregistered: any length >= k


@pytest.mark.parametrize(
    ("task", "bad", "expected"),
    [
        ("sim-promoter", "A" * 50, "line 4: a sequence of 50 nt, but task sim-promoter has 70-nt sequences"),
        ("sim-promoter", "ACG", "line 4: a sequence of 3 nt, but task sim-promoter has 70-nt"),
        ("my-own-task", "ACG", "line 4: a sequence of 3 nt, shorter than one 6-mer token"),
    ],
)
def test_a_sequence_of_the_wrong_length_is_named(tmp_path, task, bad, expected):
    path = write_task(tmp_path / "test.tsv", ["C" * 70, "G" * 70, bad, "T" * 70])
    with pytest.raises(UserError) as raised:
        check_task_sequences(task, path, read_labelled_tsv(path))
    assert str(raised.value) == f"{path}: {expected}" or str(raised.value).startswith(f"{path}: {expected}")


def test_in_memory_sequences_are_checked_too():
    data = LabelledSequences(["ACGTACGT"], np.array([0]))
    with pytest.raises(UserError, match="x.tsv: line 2: a sequence of 8 nt, but task sim-splice has 40-nt"):
        check_task_sequences("sim-splice", "x.tsv", data)


def test_a_variable_length_task_is_checked_against_its_range(tmp_path):
    """Sil-300 holds 101-299 nt (its registry range); a GUE task with checked lengths, its exact length."""
    path = write_task(tmp_path / "train.tsv", ["C" * 101, "G" * 299, "A" * 100])
    with pytest.raises(
        UserError, match=r"line 4: a sequence of 100 nt, but task sil-300 has 101-299-nt sequences"
    ):
        check_task_sequences("sil-300", path, read_labelled_tsv(path))
    check_task_sequences("sil-300", path, read_labelled_tsv(path).subset([0, 1]))
    with pytest.raises(UserError, match=r"line 3: a sequence of 299 nt, but task human_tf_1 has 101-nt"):
        check_task_sequences("human_tf_1", path, read_labelled_tsv(path))
    check_task_sequences("human_tf_0", path, read_labelled_tsv(path))  # not checked offline: any length >= k
