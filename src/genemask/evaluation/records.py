"""Writing one run's JSON record: light (no pandas, no plotting), so the fine-tuning processes start fast.

genemask.evaluation.results reads the records back and aggregates them into tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from genemask import __version__
from genemask.atomic import atomic_file


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
