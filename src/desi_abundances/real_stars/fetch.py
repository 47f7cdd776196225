"""Fetch the sdss-mangadap wheel that carries MILES and STELIB (a build step: cached under
build/, never in git; tests never call it)."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

PACKAGE = "sdss-mangadap"


def wheel_path(directory: str | Path, version: str) -> Path | None:
    """The cached wheel of ``version`` in ``directory``, or None."""
    found = sorted(Path(directory).glob(f"sdss_mangadap-{version}-*.whl"))
    return found[0] if found else None


def ensure_wheel(directory: str | Path, version: str, download: bool = True) -> Path:
    """The wheel, fetched with ``pip download --no-deps`` when absent and ``download``.

    Raises:
        FileNotFoundError: absent and ``download`` false, or pip fetched nothing.
        subprocess.CalledProcessError: pip failed.
    """
    directory = Path(directory)
    cached = wheel_path(directory, version)
    if cached is not None:
        return cached
    command = [sys.executable, "-m", "pip", "download", "--no-deps",
               f"{PACKAGE}=={version}", "-d", str(directory)]
    if not download:
        raise FileNotFoundError(f"no {PACKAGE} {version} wheel in {directory}; run: "
                                + " ".join(command[2:]))
    directory.mkdir(parents=True, exist_ok=True)
    logger.info("fetching %s %s (about 121 MB): %s", PACKAGE, version, " ".join(command))
    subprocess.run(command, check=True)
    cached = wheel_path(directory, version)
    if cached is None:
        raise FileNotFoundError(f"pip download left no {PACKAGE} {version} wheel in {directory}")
    return cached
