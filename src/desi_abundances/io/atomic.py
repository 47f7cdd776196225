"""Atomic file writes: write to a temporary file in the destination folder, fsync, then
``os.replace`` it onto the final path, so a reader never sees a half-written file and an
interrupted run leaves the previous version (or nothing) in place."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
"""OS errors of a write that fails for want of space or permission: re-raised naming the path."""

_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[^.]+\..*tmp$")
"""Temporary names of :func:`atomic_write`: ``.<name>.<pid>-<random><suffix>.tmp``."""

ORPHAN_AGE_S = 3600.0
"""A temporary file of unknown writer is removed once this old (seconds since modified)."""


def named_write_error(exc: OSError, final: Path) -> OSError:
    """``exc`` again (same class and errno) with a message naming ``final``."""
    error = type(exc)(exc.errno, f"{exc.strerror or exc} while writing {final}")
    error.filename = str(final)
    return error


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    The caller writes the complete file to the yielded path (any writer that takes a file
    name: astropy, pandas, json...). On normal exit the file is fsync-ed and renamed onto
    ``path`` (atomic on POSIX within one file system); on an exception the temporary file
    is removed and the exception propagates. Parent folders are created.

    Args:
        path: final destination.
        suffix: suffix of the temporary file (default: that of ``path``, so writers that
            infer the format from the extension keep working).
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.name}.{os.getpid()}-",
            suffix=(final.suffix if suffix is None else suffix) + ".tmp", dir=final.parent,
        )
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise named_write_error(exc, final) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()  # writers such as astropy refuse to overwrite an existing file
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS and str(final) not in str(exc):
            raise named_write_error(exc, final) from exc
        raise


def _pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` that killed runs left in
    ``folder``: those whose writing process is gone (its pid is in the name; idle for a
    minute), and those of an unknown writer not modified for :data:`ORPHAN_AGE_S`. Returns the removed paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        match = _TEMP_RE.match(path.name)
        try:
            age = time.time() - path.stat().st_mtime
            # a dead writer's file, idle a minute (a writer on another host of a shared file
            # system has another pid space, but keeps its file's mtime fresh)
            stale = (age > 60 and not _pid_alive(int(match.group("pid")))) if match \
                else age > ORPHAN_AGE_S
            if stale and path.is_file():
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
    if removed:
        logger.info("removed %d stale temporary files of interrupted writes, e.g. %s",
                    len(removed), removed[0])
    return removed


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (the rename) to disk; a no-op where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
