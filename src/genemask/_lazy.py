"""Public names of a stage package, imported on first use: `from genemask.training import PretrainConfig` works,
while `import genemask.training.identity` (Snakemake) or `genemask --help` does not import torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable, Callable]:
    """`__all__`, `__getattr__` and `__dir__` of `package`, whose public names live in `modules` (module -> names)."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module protocol's name
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(where)

    return sorted(where), __getattr__, __dir__
