"""A lock file per output folder, so that two runs never write the same outputs at once
(the second is refused with the first's pid, host and start time). ``fcntl.flock``: the
lock goes with the process, so a killed run leaves no stale lock behind."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".desi_abundances.lock"
"""Name of the lock file inside the folder it guards."""


class OutputLockedError(RuntimeError):
    """Another run holds the lock of an output folder."""


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, what: str = "outputs") -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if needed) for the block.

    Raises:
        OutputLockedError: naming the folder and the run (pid, host, start) that holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise OutputLockedError(
                f"{folder}: another run is writing these {what} (lock {path} held by {holder}); "
                "wait for it to finish, or point this run elsewhere"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        handle.flush()
        yield path
    finally:
        handle.close()  # releases the lock
