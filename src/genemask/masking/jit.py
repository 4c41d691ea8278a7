"""Numba kernels whose disk cache cannot go stale.

numba's own cache (`njit(cache=True)`) is keyed on the kernel's source file (its time stamp and size) and
bytecode. What the kernel inlines from other modules (the draws of `random_streams`) and the constants it freezes
in (`tokenizer.N_SPECIAL`) are compiled into the cached machine code but are not part of that key, so an edit of
those modules alone would load stale kernels. `kernel` adds to the key a digest of the source of every module of
the kernel's package that its module imports, directly or through others. A change to any of them compiles
afresh (once; the old entries stay in the cache unused).

Where numba's cache is not what this expects (another numba version), the kernel is compiled without a disk cache:
never stale, only slower to start (about 1-2 s per kernel).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numba

try:  # numba's cache of compiled functions, keyed by _index_key (numba.core.caching, numba 0.5x-0.6x)
    from numba.core.caching import FunctionCache
except ImportError:  # pragma: no cover - another numba layout: no disk cache
    FunctionCache = None


def kernel(**options) -> Callable:
    """`numba.njit(**options)` with a disk cache keyed also on the source of the modules the kernel's module
    imports from its own package (transitively)."""

    def decorate(py_func: Callable):
        dispatcher = numba.njit(**options)(py_func)
        if _cache_supported():
            try:
                dispatcher._cache = _DigestKeyedCache(py_func, imported_sources_digest(py_func.__module__))
            except RuntimeError:  # numba finds no writable cache directory: compile at each start
                pass
        return dispatcher

    return decorate


@cache
def _cache_supported() -> bool:
    return (
        FunctionCache is not None
        and hasattr(FunctionCache, "_index_key")
        and hasattr(numba.core.dispatcher.Dispatcher, "enable_caching")
    )


if FunctionCache is not None:

    class _DigestKeyedCache(FunctionCache):
        """numba's function cache, with the digest of the imported sources in every entry's key."""

        def __init__(self, py_func: Callable, digest: str) -> None:
            super().__init__(py_func)
            self._sources_digest = digest

        def _index_key(self, sig, codegen):
            return (*super()._index_key(sig, codegen), self._sources_digest)


def imported_sources_digest(module: str) -> str:
    """sha256 over the source of `module` and of every module of its top-level package that it imports,
    directly or through others (in a fixed order). Reads files only: nothing is imported to find them."""
    package = module.partition(".")[0]
    root = _package_root(package)
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _source_path(root, name)
        if path is None:
            continue
        seen[name] = path
        pending.extend(_imports(path, name, package))
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + _file_digest(seen[name]).encode() + b"\0")
    return digest.hexdigest()


@cache
def _package_root(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # a top-level package: imports nothing else
    return Path(spec.origin).parent


def _source_path(root: Path, module: str) -> Path | None:
    """The source file of a module of the package at `root` (a package's __init__.py); None for a name that is
    not a module (an imported function or constant)."""
    parts = module.split(".")[1:]
    for path in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if parts and path.is_file() or not parts and path.name == "__init__.py" and path.is_file():
            return path
    return None


@cache
def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# `from a.b import c, d` (parenthesised over lines, too) and `import a.b, c`, at any indentation. A regular
# expression, not ast: parsing every imported module costs tens of milliseconds at each start.
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)


@cache
def _imports(path: Path, module: str, package: str) -> tuple[str, ...]:
    """The modules of `package` that the source at `path` may import (`from a.b import c` names a.b, and a.b.c
    in case that is a module; names that are not modules are dropped later)."""
    text = path.read_text()
    names = []
    for base, imported in _FROM_IMPORT.findall(text):
        level = len(base) - len(base.lstrip("."))
        if level:  # relative: resolved against this module's package
            parent = module.rsplit(".", level)[0]
            base = f"{parent}.{base[level:]}" if base[level:] else parent
        names.append(base)
        names += [f"{base}.{name}" for name in re.findall(r"\w+", imported)]
    for imported in _IMPORT.findall(text):
        names += [name.split()[0] for name in imported.split(",") if name.strip()]
    return tuple(n for n in names if n == package or n.startswith(package + "."))
