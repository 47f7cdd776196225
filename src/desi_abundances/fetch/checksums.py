"""DESI's checksum files: the public release tree holds, in its directories, files ending in
``.sha256sum`` in the format of GNU ``sha256sum`` (``<64 hex>  <file name>`` per line). Their
exact names are not assumed: they are found in the directory's HTML index (the links ending
in ``.sha256sum``), which the release server (and any ``http.server``) publishes."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

CHECKSUM_SUFFIX = ".sha256sum"
_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64})\s+\*?(?P<name>\S.*?)\s*$")
_LINK = re.compile(r'href="(?P<href>[^"?#]+\.sha256sum)"', re.IGNORECASE)


def parse_checksum_file(text: str) -> dict[str, str]:
    """``{file base name: sha256 (lower case)}`` from a sha256sum file (paths reduced to their
    base name; other lines ignored)."""
    digests = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            digests[match["name"].rsplit("/", 1)[-1]] = match["digest"].lower()
    return digests


def checksum_links(index_html: str) -> list[str]:
    """The ``*.sha256sum`` links of a directory index page (relative hrefs), sorted."""
    return sorted({m["href"] for m in _LINK.finditer(index_html) if "/" not in m["href"].rstrip("/")})


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    """SHA-256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
