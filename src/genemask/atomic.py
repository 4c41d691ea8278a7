"""Write outputs under a temporary name and rename on success, so no partial output is ever left behind.

A run killed mid-write (SIGKILL, power loss) leaves its hidden `.NAME.XXXXXXXX.tmp` beside the output; the next
run writing the same output removes it. `check_output_file` / `check_output_dir` refuse, before any work starts,
an output path that could never be written (a directory where a file goes, a file where a directory goes).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from genemask.errors import UserError

# tempfile's random part: 8 characters of this alphabet (tempfile._RandomNameSequence).
_RANDOM_PART = r"[a-z0-9_]{8}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stale_temporaries(target: Path) -> list[Path]:
    """The temporary files or directories that earlier, killed writes of `target` left beside it."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{_RANDOM_PART}\.tmp")
    if not target.parent.is_dir():
        return []
    return [path for path in target.parent.iterdir() if pattern.fullmatch(path.name)]


def remove_stale_temporaries(target: Path) -> None:
    for path in stale_temporaries(target):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _check_parents(target: Path, option: str) -> None:
    for parent in target.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserError(f"{option} {target}: {parent} is a file, expected a directory there")
            return


def check_output_file(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Refuse, before the work starts, an output file path that names a directory or lies under a file."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{option} {target}: is a directory, expected the path of a file to write")
    _check_parents(target, option)
    return target


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Refuse, before the work starts, an output directory path that names a file or lies under a file."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"{option} {target}: is a file, expected a directory to write (or none yet)")
    _check_parents(target, option)
    return target


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = check_output_file(path, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    target = check_output_dir(path, "output")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
