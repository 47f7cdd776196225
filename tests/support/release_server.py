"""A local HTTP server (127.0.0.1, a free port, in a thread) serving a tiny release tree with
DESI-style ``*.sha256sum`` files, for the fetch tests (the fixture is in tests/fetch/conftest.py)."""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

FILES = {
    "main/bright/100/10010/coadd-main-bright-10010.fits": bytes(range(256)) * 400,
    "main/backup/100/10011/coadd-main-backup-10011.fits": b"backup" * 9000,
    "main/dark/100/10012/coadd-main-dark-10012.fits": b"dark" * 5000,
}
CORRUPTED = "main/dark/100/10012/coadd-main-dark-10012.fits"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=N-`` (206), a once-only cut of the first
    GET of ``cut`` paths after ``cut_after`` bytes, and a log of GETs."""

    cut: set = set()
    cut_after = 5000
    gets: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            return super().do_GET()
        type(self).gets.append((self.path, self.headers.get("Range")))
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.path in type(self).cut:
            type(self).cut.discard(self.path)
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@contextlib.contextmanager
def serve_release(tmp_path: Path):
    """Serve the tiny tree below ``tmp_path``; yield (base URL, local download folder)."""
    root = tmp_path / "release" / "healpix"
    for relative, data in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        if relative == CORRUPTED:
            path.write_bytes(data[:-1] + b"X")  # the file on the server no longer matches
        sums = path.parent / f"{relative.split('/')[0]}-{path.parent.name}.sha256sum"
        sums.write_text(f"{digest}  {path.name}\n")
    RangeHandler.gets, RangeHandler.cut = [], set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path / "local"
    finally:
        httpd.shutdown()
        httpd.server_close()
