"""Run records: one JSON per fine-tuning run (few-shot or GUE), written and read in one place.

A run record holds `model`, `task`, `shots` (examples per class, or "full": the whole training set, which sorts
last), `seed`, `metrics` (accuracy, macro_f1, mcc, auc; null where undefined) and whatever the run adds (sizes,
hyper-parameters, losses, timings, deviations). Light to import (pandas only when records become a frame), so
that fine-tuning processes start fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genemask import __version__
from genemask.atomic import atomic_file
from genemask.errors import UserError
from genemask.evaluation.metrics import METRICS

if TYPE_CHECKING:
    import pandas as pd

IDENTITY = ("model", "task", "shots", "seed")
FULL_SHOTS = "full"  # fine-tune on the whole training set


def shots_key(shots: object) -> tuple[int, int]:
    """Sort key: integer shots ascending, then "full"."""
    return (1, 0) if shots == FULL_SHOTS else (0, int(shots))


def write_run_record(
    path: str | Path, record: dict, *, model: str, task: str, shots: int | str, seed: int
) -> dict:
    """Write one run's JSON (identity first, non-finite numbers as null), atomically; return what was written."""
    full = {
        "model": model,
        "task": task,
        "shots": shots,
        "seed": seed,
        **record,
        "genemask_version": __version__,
    }
    full["metrics"] = {
        name: value if value is None or math.isfinite(value) else None
        for name, value in record["metrics"].items()
    }
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n")
    return full


def read_run_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not a readable JSON run record ({error})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}: a JSON {type(record).__name__}, expected a run record (a JSON object)")
    missing = [key for key in (*IDENTITY, "metrics") if key not in record]
    if missing:
        raise UserError(f"{path}: run record lacks {', '.join(missing)}")
    shots_ok = isinstance(record["shots"], int) or record["shots"] == FULL_SHOTS
    if not shots_ok or not isinstance(record["seed"], int):
        raise UserError(
            f"{path}: expected integer (or '{FULL_SHOTS}') shots and an integer seed, got {record['shots']!r} "
            f"and {record['seed']!r}"
        )
    if not isinstance(record["metrics"], dict):
        raise UserError(f"{path}: metrics is {record['metrics']!r}, expected an object of metric values")
    absent = [metric for metric in METRICS if metric not in record["metrics"]]
    if absent:
        raise UserError(f"{path}: metrics lack {', '.join(absent)}")
    for metric in METRICS:
        value = record["metrics"][metric]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UserError(f"{path}: metric {metric} is {value!r}, expected a number or null")
    return record


def find_run_records(paths: Iterable[str | Path]) -> list[Path]:
    """JSON files given directly, and every *.json below the given directories, sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(path.rglob("*.json"))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or directory")
    if not found:
        raise UserError(f"no run records (*.json) in {', '.join(map(str, paths))}")
    return found


def read_run_records(paths: Sequence[Path]) -> list[dict]:
    """Every record, checked, refusing two records of the same run."""
    records, seen = [], {}
    for path in paths:
        record = read_run_record(path)
        key = tuple(record[name] for name in IDENTITY)
        if key in seen:
            raise UserError(f"{path}: the same run ({', '.join(map(str, key))}) as {seen[key]}")
        seen[key] = path
        records.append(record)
    return records


def runs_frame(records: Sequence[dict]) -> pd.DataFrame:
    import pandas as pd

    """One row per run: model task shots seed, the metrics (NaN where a record holds null), collapsed."""
    rows = []
    for record in records:
        metrics = {
            m: np.nan if record["metrics"][m] is None else float(record["metrics"][m]) for m in METRICS
        }
        collapsed = {"collapsed": bool(record.get("collapsed", False))}  # older records lack the mark
        rows.append({name: record[name] for name in IDENTITY} | metrics | collapsed)
    return pd.DataFrame(rows, columns=[*IDENTITY, *METRICS, "collapsed"])


def load_runs(paths: Sequence[Path]) -> pd.DataFrame:
    """One row per run (see runs_frame) from run record files."""
    return runs_frame(read_run_records(paths))
