"""The one way figures are made and written: matplotlib without a display, PNG written atomically."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from genemask.atomic import atomic_file


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (no display; imported on first use, it costs a second)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure, out: str | Path, dpi: int = 120, tight: bool = False) -> None:
    """Write `figure` as PNG to `out` atomically and close it."""
    plt = pyplot()
    with atomic_file(out) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(figure)
