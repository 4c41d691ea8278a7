"""Outputs that are never a weapon: written under a temporary name, swapped in whole, locked, and never over the user's files.

- `atomic_file` / `atomic_dir` write beside the output under a name unique to the run
  (`.NAME.HOST-PID.XXXXXXXX.tmp`) and rename on success, so no partial output is ever left behind. A directory
  is swapped whole: old -> backup, new -> target, backup removed; on failure the old output is put back.
- A directory genemask wrote holds `.genemask-output` (the command, the format and the entries it wrote). An
  existing non-empty directory without it is the user's: refused unless `--force`; even then, and always when
  an output is replaced, entries genemask did not write are carried over into the new output, never deleted.
  `/`, the home directory, the working directory and its ancestors are refused always.
- `check_output_dir` / `check_output_file` (called by the commands before any work) also take a lock beside the
  output (`.NAME.lock`, naming host, pid, command and start), check write access and free space. A lock whose
  process is gone (same host) is recovered with a warning; temporaries of dead runs are removed by the next run.
- A full disk, a read-only file system or a denied write becomes a one-line `UserError`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from genemask.errors import UserError

MARKER = ".genemask-output"
MARKER_FORMAT = 1
# The free space an output's file system must have before a command starts (a documented floor, not an estimate).
MIN_FREE_BYTES = 64 << 20
# tempfile's random part: 8 characters of this alphabet (tempfile._RandomNameSequence).
_RANDOM_PART = r"[a-z0-9_]{8}"
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

_command: str | None = None  # set while a CLI command runs: only commands take locks (released when they end)
_forced: set[Path] = set()
_locks: dict[Path, Path] = {}


def set_command(name: str) -> None:
    """The command named in locks and output markers (the CLI sets it)."""
    global _command
    _command = f"genemask {name}"


def add_output_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--force`: write into an existing directory genemask did not write (its other files are kept)."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into an existing directory that genemask did not write (files of other names are kept)",
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    return socket.gethostname().replace("/", "_")


def _run_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _alive(host: str, pid: int) -> bool:
    """Whether process `pid` of `host` may still run (another host's processes are assumed alive)."""
    if host != _host():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftover_pattern(target: Path, suffix: str) -> re.Pattern[str]:
    return re.compile(
        rf"\.{re.escape(target.name)}\.(?:(?P<host>.+)-(?P<pid>\d+)\.)?{_RANDOM_PART}\.{suffix}"
    )


def _dead_leftovers(target: Path, suffix: str) -> list[Path]:
    pattern = _leftover_pattern(target, suffix)
    if not target.parent.is_dir():
        return []
    found = []
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        # A name without host-pid is from an older genemask, so no run of this one is writing it.
        if match and (match["pid"] is None or not _alive(match["host"], int(match["pid"]))):
            found.append(path)
    return found


def stale_temporaries(target: Path) -> list[Path]:
    """The temporaries that earlier, killed writes of `target` left beside it (never a live run's)."""
    return _dead_leftovers(target, "tmp")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(target: Path) -> None:
    for path in stale_temporaries(target):
        _remove(path)
    # A run killed mid-swap leaves the old output as a backup: restore it when nothing replaced it.
    for backup in _dead_leftovers(target, "old"):
        if not target.exists() and not target.is_symlink():
            os.rename(backup, target)
            print(
                f"genemask: warning: restored {target} from {backup.name}, left by a killed run",
                file=sys.stderr,
            )
        else:
            _remove(backup)


def _check_parents(target: Path, option: str) -> None:
    for parent in target.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UserError(f"{option} {target}: {parent} is a file, expected a directory there")
            return


def _protected(target: Path) -> str | None:
    """What `target` is if genemask must never replace it whole: /, home, the working directory or an ancestor."""
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        return "the root directory"
    with contextlib.suppress(RuntimeError, KeyError):
        if resolved == Path.home().resolve():
            return "the home directory"
    if resolved == cwd:
        return "the working directory"
    if resolved in cwd.parents:
        return "an ancestor of the working directory"
    return None


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(".")


def _check_writable(target: Path, option: str, min_free: int) -> None:
    """Write access to where the output's temporary goes (beside it) and `min_free` bytes free there."""
    where = _existing_ancestor(target.parent)
    try:
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as error:
        raise UserError(f"{option} {target}: cannot write in {where} ({error.strerror or error})") from None
    free = shutil.disk_usage(where).free
    if free < min_free:
        raise UserError(
            f"{option} {target}: only {free / 2**20:.1f} MiB free in {where}, expected at least "
            f"{min_free / 2**20:.0f} MiB"
        )


def read_marker(directory: Path) -> dict | None:
    """The `.genemask-output` marker of `directory`, or None if genemask did not write it."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _is_foreign(directory: Path) -> bool:
    """An existing, non-empty directory that genemask did not write."""
    if not directory.is_dir():
        return False
    entries = os.listdir(directory)
    return bool(entries) and MARKER not in entries


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _read_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
        return holder if isinstance(holder, dict) and "pid" in holder else None
    except (OSError, ValueError):
        return None


def acquire_lock(target: Path, option: str = "--out") -> None:
    """Hold `.NAME.lock` beside `target` until the command ends (`release_locks`); outside a command, nothing."""
    key = target.resolve()
    # torchrun: rank 0 holds the lock for all ranks
    if _command is None or key in _locks or os.environ.get("RANK", "0") != "0":
        return
    lock = _lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = {
        "host": _host(),
        "pid": os.getpid(),
        "command": _command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_holder(lock)
            if holder is None:  # being written this instant, or damaged: wait once, then name the file
                time.sleep(0.2)
                holder = _read_holder(lock)
                if holder is None:
                    raise UserError(
                        f"{option} {target}: locked by {lock} (unreadable); remove it if no run uses it"
                    ) from None
            host, pid = str(holder.get("host")), int(holder.get("pid", -1))
            if host == _host() and pid == os.getpid():
                _locks[key] = lock
                return
            if not _alive(host, pid):
                print(
                    f"genemask: warning: removing the stale lock {lock} of a run that is gone "
                    f"({holder.get('command')}, pid {pid}, started {holder.get('started')})",
                    file=sys.stderr,
                )
                lock.unlink(missing_ok=True)
                continue
            raise UserError(
                f"{option} {target}: in use by another run ({holder.get('command')}, pid {pid} on {host}, "
                f"started {holder.get('started')}); wait for it to finish"
            ) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        _locks[key] = lock
        return
    raise UserError(f"{option} {target}: could not take the lock {lock}")


def release_locks() -> None:
    """Remove the locks this process holds; the command has ended."""
    global _command
    _command = None
    for key, lock in list(_locks.items()):
        holder = _read_holder(lock)
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == _host():
            lock.unlink(missing_ok=True)
        del _locks[key]
    _forced.clear()


atexit.register(release_locks)


def check_output_file(
    path: str | os.PathLike[str], option: str = "--out", *, min_free: int = MIN_FREE_BYTES
) -> Path:
    """Refuse, before the work starts, an output file path that names a directory, lies under a file, cannot be
    written or is in use by another run; take its lock."""
    target = _file_target(path, option)
    _check_writable(target, option, min_free)
    acquire_lock(target, option)
    return target


def _file_target(path: str | os.PathLike[str], option: str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{option} {target}: is a directory, expected the path of a file to write")
    _check_parents(target, option)
    return target


def check_output_dir(
    path: str | os.PathLike[str],
    option: str = "--out",
    *,
    whole: bool = False,
    force: bool = False,
    lock: bool | None = None,
    min_free: int = MIN_FREE_BYTES,
) -> Path:
    """Refuse, before the work starts, an output directory that names a file, lies under a file or cannot be
    written. With `whole` (the output is replaced whole, by `atomic_dir`) also refuse /, the home directory, the
    working directory and its ancestors, and, unless `force`, a directory genemask did not write; and take its
    lock (`lock` overrides: directories that several runs write files into are not locked)."""
    target = _dir_target(path, option, whole=whole, force=force)
    _check_writable(target, option, min_free)
    if whole if lock is None else lock:
        acquire_lock(target, option)
    return target


def _dir_target(path: str | os.PathLike[str], option: str, *, whole: bool, force: bool = False) -> Path:
    target = Path(path)
    if whole:
        protected = _protected(target)
        if protected:
            raise UserError(
                f"{option} {target}: is {protected}; genemask never replaces it, name a new directory"
            )
    if target.exists() and not target.is_dir():
        raise UserError(f"{option} {target}: is a file, expected a directory to write (or none yet)")
    _check_parents(target, option)
    if not whole:
        return target
    if force:
        _forced.add(target.resolve())
    elif target.resolve() not in _forced and _is_foreign(target):
        raise UserError(
            f"{option} {target}: an existing directory that genemask did not write (no {MARKER}); "
            f"name a new directory, or add --force to write into it (its other files are kept)"
        )
    return target


def refuse_nested(outer: Path, outer_option: str, inner: Path, inner_option: str) -> None:
    """Refuse an output directory inside another one that is swapped whole (it would be lost), or vice versa."""
    a, b = Path(outer).resolve(), Path(inner).resolve()
    if a == b or a in b.parents or b in a.parents:
        raise UserError(
            f"{inner_option} {inner}: lies inside or around {outer_option} {outer}, which is replaced whole; "
            f"use separate directories"
        )


def _disk_error(target: Path, error: OSError) -> UserError:
    where = f" ({error.filename})" if error.filename else ""
    return UserError(f"{target}: {error.strerror or error} while writing{where}; nothing was written")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = _file_target(path, "output")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.{_run_tag()}.", suffix=".tmp", dir=target.parent
        )
    except OSError as error:
        if error.errno in _DISK_ERRNOS:
            raise _disk_error(target, error) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.errno in _DISK_ERRNOS:
            raise _disk_error(target, error) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_marker(directory: Path) -> None:
    entries = sorted(name for name in os.listdir(directory) if name != MARKER)
    from genemask import __version__

    marker = {
        "format": MARKER_FORMAT,
        "command": _command or "genemask (library)",
        "genemask": __version__,
        "entries": entries,
    }
    (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n")


def _swap(tmp: Path, target: Path) -> None:
    """Put directory `tmp` in the place of `target` whole; entries of the old `target` that genemask did not
    write move into the new one; on any failure the old `target` is left as it was."""
    if not target.exists():
        os.rename(tmp, target)
        return
    marker = read_marker(target)
    ours = set(marker.get("entries", [])) if marker else set()
    carried = [
        name
        for name in os.listdir(target)
        if name != MARKER and name not in ours and not (tmp / name).exists()
    ]
    backup = Path(tempfile.mktemp(prefix=f".{target.name}.{_run_tag()}.", suffix=".old", dir=target.parent))
    moved: list[str] = []
    try:
        for name in carried:
            os.rename(target / name, tmp / name)
            moved.append(name)
        os.rename(target, backup)
        try:
            os.rename(tmp, target)
        except BaseException:
            os.rename(backup, target)
            raise
    except BaseException:
        for name in moved:
            os.rename(tmp / name, target / name)
        raise
    shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, marker: bool = True) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` whole only if the block succeeds (entries
    of the old `path` that genemask did not write are kept). `marker=False`: a directory inside one that its
    caller manages (a checkpoint step), written without the output marker and replaced without its checks."""
    target = _dir_target(path, "output", whole=marker)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_run_tag()}.", suffix=".tmp", dir=target.parent))
    except OSError as error:
        if error.errno in _DISK_ERRNOS:
            raise _disk_error(target, error) from None
        raise
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if marker:
            _write_marker(tmp)
        appeared = marker and target.resolve() not in _forced and _is_foreign(target)  # while this run worked
        if appeared:
            raise UserError(
                f"output {target}: a directory genemask did not write appeared there; not replaced"
            )
        _swap(tmp, target)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if error.errno in _DISK_ERRNOS:
            raise _disk_error(target, error) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
