"""Start a UI server (kedro-viz, MLflow) on 127.0.0.1 and a free port for a test, wait a
bounded time for it to answer, stop it (its whole process group) at the end."""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]  # tests/support/ -> project root


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below 49152 (kedro-viz refuses the ephemeral range)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 45000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-45000")


def get_json(url: str, data: dict | None = None, timeout: float = 30) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


@contextlib.contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], ready_path: str,
            timeout: float = 60) -> Iterator[str]:
    """Run ``command`` (``{port}`` replaced by a free port); yield its base URL once
    ``ready_path`` answers; stop it at the end. Fails with its log after ``timeout`` s."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([part.replace("{port}", str(port)) for part in command],
                                   cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()}")
            try:
                urllib.request.urlopen(base + ready_path, timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{command[0]} not up in {timeout} s:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
