"""Shared fixtures: paths to the repository and to the read-only real data beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
HG38_SLICE = SHARED_DATA / "hg38_slice" / "chr2_1-2333275.fa.gz"


@pytest.fixture
def hg38_slice() -> Path:
    if not HG38_SLICE.exists():
        pytest.skip(f"real data absent: {HG38_SLICE} (the shared data folder beside the repository)")
    return HG38_SLICE
