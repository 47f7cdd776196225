"""Resumable, verified, parallel HTTPS downloads with ``requests``.

Each file: a HEAD gives its size; a file already at its destination with that size is complete
and never fetched again; otherwise the bytes go to ``.<name>.part`` beside it, resumed with an
HTTP ``Range`` request when a part exists (a killed download continues where it stopped; a
server that ignores Range sends the whole file, which is then written from the start). When
the transfer is complete, its size and, where the directory publishes a DESI ``*.sha256sum``
file (:mod:`.checksums`), its SHA-256 are checked; a corrupted file is removed and reported,
never installed; a good one is fsynced and renamed into place (atomic). Files run
``n_workers`` at a time (threads, one ``requests.Session`` each); two tqdm bars count files and
bytes.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import requests
from tqdm.auto import tqdm

from desi_abundances.fetch.checksums import checksum_links, parse_checksum_file, sha256_of

logger = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """One file could not be fetched or verified; the message names it and why."""


@dataclass(frozen=True)
class FetchSettings:
    """How to download (``params:fetch``).

    Attributes:
        n_workers: files downloaded at once.
        timeout_s: connect/read timeout of each request, seconds.
        retries: attempts per file on network errors (each resumes from the part written).
        verify_checksums: check SHA-256 against the directory's ``*.sha256sum`` files.
        chunk_bytes: bytes per read of a response.
        progress: show the tqdm bars.
    """

    n_workers: int = 4
    timeout_s: float = 60.0
    retries: int = 3
    verify_checksums: bool = True
    chunk_bytes: int = 1 << 18
    progress: bool = True


def part_path(destination: Path) -> Path:
    """Where an unfinished download of ``destination`` lives: ``.<name>.part`` beside it."""
    return destination.with_name(f".{destination.name}.part")


class _Checksums:
    """The SHA-256 digests published per directory URL, fetched once (thread-safe)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._by_directory: dict[str, dict[str, str]] = {}

    def digest(self, session: requests.Session, url: str, timeout: float) -> str | None:
        if not self.enabled:
            return None
        directory, name = url.rsplit("/", 1)
        with self._lock:
            known = self._by_directory.get(directory)
        if known is None:
            known = {}
            try:
                index = session.get(directory + "/", timeout=timeout)
                links = checksum_links(index.text) if index.ok else []
                for link in links:
                    response = session.get(f"{directory}/{link}", timeout=timeout)
                    if response.ok:
                        known.update(parse_checksum_file(response.text))
            except requests.RequestException as exc:
                logger.warning("%s/: no checksum file read (%s): size check only", directory, exc)
            if not known:
                logger.info("%s/: no *.sha256sum file listed: size check only", directory)
            with self._lock:
                self._by_directory[directory] = known
        return known.get(name)


class _Transfer:
    """Downloads of one run: sessions per thread, checksums, progress, counts."""

    def __init__(self, settings: FetchSettings, n_files: int):
        self.settings = settings
        self.local = threading.local()
        self.checksums = _Checksums(settings.verify_checksums)
        self.lock = threading.Lock()
        self.files_bar = tqdm(total=n_files, unit="file", desc="fetch files", disable=not settings.progress)
        self.bytes_bar = tqdm(total=0, unit="B", unit_scale=True, desc="fetch bytes",
                              disable=not settings.progress)
        self.counts = {"already_complete": 0, "downloaded": 0, "resumed": 0, "bytes": 0,
                       "checksum_verified": 0, "size_only": 0}

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def count(self, key: str, value: int = 1) -> None:
        with self.lock:
            self.counts[key] += value

    def remote_size(self, url: str) -> int:
        response = self.session().head(url, allow_redirects=True, timeout=self.settings.timeout_s)
        if response.status_code == 404:
            raise DownloadError(f"{url}: not found (404)")
        response.raise_for_status()
        if "Content-Length" not in response.headers:
            raise DownloadError(f"{url}: the server gives no size (Content-Length)")
        return int(response.headers["Content-Length"])

    def fetch(self, url: str, destination: Path) -> str:
        """Fetch one file; returns ``already_complete`` or ``downloaded``."""
        size = self.remote_size(url)
        with self.lock:
            self.bytes_bar.total += size
            self.bytes_bar.refresh()
        if destination.is_file() and destination.stat().st_size == size:
            self.bytes_bar.update(size)
            self.count("already_complete")
            return "already_complete"
        destination.parent.mkdir(parents=True, exist_ok=True)
        part = part_path(destination)
        last_error: Exception | None = None
        for _ in range(max(self.settings.retries, 1)):
            try:
                self._transfer(url, part, size)
                break
            except (requests.RequestException, DownloadError) as exc:
                last_error = exc
                logger.warning("%s: transfer interrupted (%s); resuming", url, exc)
        else:
            raise DownloadError(f"{url}: failed after {self.settings.retries} attempts: {last_error}")
        self._verify(url, part, size)
        with open(part, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(part, destination)
        self.count("downloaded")
        return "downloaded"

    def _transfer(self, url: str, part: Path, size: int) -> None:
        offset = part.stat().st_size if part.is_file() else 0
        if offset > size:
            part.unlink()
            offset = 0
        if offset == size:
            return
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self.session().get(url, headers=headers, stream=True, timeout=self.settings.timeout_s) as response:
            if response.status_code == 206 and offset:
                mode = "ab"
                self.count("resumed")
                self.bytes_bar.update(offset)
            elif response.status_code == 200:
                mode, offset = "wb", 0  # the server ignored Range: whole file again
            else:
                response.raise_for_status()
                raise DownloadError(f"{url}: unexpected HTTP {response.status_code}")
            written = offset
            with open(part, mode) as stream:
                for chunk in response.iter_content(self.settings.chunk_bytes):
                    stream.write(chunk)
                    written += len(chunk)
                    self.bytes_bar.update(len(chunk))
                    self.count("bytes", len(chunk))
        if written != size:
            raise DownloadError(f"{url}: short transfer, {written} of {size} bytes")

    def _verify(self, url: str, part: Path, size: int) -> None:
        if part.stat().st_size != size:
            part.unlink()
            raise DownloadError(f"{url}: {part.stat().st_size} bytes, expected {size}")
        expected = self.checksums.digest(self.session(), url, self.settings.timeout_s)
        if expected is None:
            self.count("size_only")
            return
        actual = sha256_of(part)
        if actual != expected:
            part.unlink()
            raise DownloadError(f"{url}: SHA-256 {actual[:12]}... differs from the published "
                                f"{expected[:12]}...: corrupted, removed")
        self.count("checksum_verified")

    def close(self) -> None:
        self.files_bar.close()
        self.bytes_bar.close()


def fetch_files(tasks: Sequence[tuple[str, str | os.PathLike]], settings: FetchSettings | None = None) -> dict[str, Any]:
    """Download ``(url, destination)`` pairs (see the module docstring).

    Returns:
        A JSON-able report: ``n_files``, counts (``already_complete``, ``downloaded``,
        ``resumed``, ``bytes``, ``checksum_verified``, ``size_only``) and ``failed``
        ``{url: reason}``.
    """
    settings = settings or FetchSettings()
    transfer = _Transfer(settings, len(tasks))
    failed: dict[str, str] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(settings.n_workers, 1), thread_name_prefix="fetch") as pool:
            futures = {pool.submit(transfer.fetch, url, Path(dest)): url for url, dest in tasks}
            for future in as_completed(futures):
                url = futures[future]
                try:
                    future.result()
                except (DownloadError, requests.RequestException, OSError) as exc:
                    failed[url] = f"{type(exc).__name__}: {exc}"
                    logger.error("fetch failed: %s", failed[url])
                transfer.files_bar.update(1)
    finally:
        transfer.close()
    report = {"n_files": len(tasks), **transfer.counts, "n_failed": len(failed), "failed": failed}
    logger.info("fetch: %d files: %d already complete, %d downloaded (%d resumed), %.1f MB, %d "
                "checksum-verified, %d size-only, %d failed", len(tasks), report["already_complete"],
                report["downloaded"], report["resumed"], report["bytes"] / 1e6,
                report["checksum_verified"], report["size_only"], len(failed))
    return report
