"""fetch.download against a local HTTP server (127.0.0.1, a free port, in a thread) serving a
tiny release tree with DESI-style ``*.sha256sum`` files: parallel downloads, resume after an
interrupted transfer (HTTP Range), a complete file never fetched twice, a corrupted file
refused, a missing file reported."""
from __future__ import annotations

from release_server import CORRUPTED, FILES, RangeHandler

from desi_abundances.fetch.checksums import checksum_links, parse_checksum_file
from desi_abundances.fetch.download import FetchSettings, fetch_files, part_path


def tasks(base, local, names):
    return [(f"{base}/{name}", local / name) for name in names]


SETTINGS = FetchSettings(n_workers=3, timeout_s=10, retries=3, progress=False, chunk_bytes=1024)


def test_downloads_verifies_and_refuses_a_corrupted_file(server):
    base, local = server
    report = fetch_files(tasks(base, local, FILES), SETTINGS)
    good = [n for n in FILES if n != CORRUPTED]
    for name in good:
        assert (local / name).read_bytes() == FILES[name]
    assert report["downloaded"] == 2 and report["checksum_verified"] == 2
    assert list(report["failed"]) == [f"{base}/{CORRUPTED}"] and "SHA-256" in report["failed"][f"{base}/{CORRUPTED}"]
    assert not (local / CORRUPTED).exists() and not part_path(local / CORRUPTED).exists()
    assert not list(local.rglob("*.part"))


def test_a_complete_file_is_never_fetched_twice(server):
    base, local = server
    names = [n for n in FILES if n != CORRUPTED]
    fetch_files(tasks(base, local, names), SETTINGS)
    n_gets = len([g for g in RangeHandler.gets if g[0].endswith(".fits")])
    again = fetch_files(tasks(base, local, names), SETTINGS)
    assert again["already_complete"] == 2 and again["downloaded"] == 0 and again["bytes"] == 0
    assert len([g for g in RangeHandler.gets if g[0].endswith(".fits")]) == n_gets


def test_an_interrupted_transfer_resumes_with_a_range_request(server):
    base, local = server
    name = "main/bright/100/10010/coadd-main-bright-10010.fits"
    RangeHandler.cut = {"/" + name}
    report = fetch_files(tasks(base, local, [name]), SETTINGS)
    assert (local / name).read_bytes() == FILES[name]
    assert report["resumed"] == 1 and report["checksum_verified"] == 1
    ranges = [r for path, r in RangeHandler.gets if path == "/" + name and r]
    assert len(ranges) == 1 and 0 < int(ranges[0][6:-1]) <= RangeHandler.cut_after  # whole chunks kept


def test_a_killed_download_continues_from_its_part_file(server):
    base, local = server
    name = "main/backup/100/10011/coadd-main-backup-10011.fits"
    part = part_path(local / name)
    part.parent.mkdir(parents=True)
    part.write_bytes(FILES[name][:12345])  # what a killed process left behind
    report = fetch_files(tasks(base, local, [name]), SETTINGS)
    assert (local / name).read_bytes() == FILES[name] and not part.exists()
    assert report["resumed"] == 1 and report["bytes"] == len(FILES[name]) - 12345


def test_missing_file_and_no_checksum_file(server, tmp_path):
    base, local = server
    report = fetch_files(tasks(base, local, ["main/bright/1/1/coadd-main-bright-1.fits"]), SETTINGS)
    assert report["n_failed"] == 1 and "404" in next(iter(report["failed"].values()))
    no_sums = FetchSettings(n_workers=1, progress=False, verify_checksums=False)
    name = "main/backup/100/10011/coadd-main-backup-10011.fits"
    assert fetch_files(tasks(base, local, [name]), no_sums)["size_only"] == 1


def test_checksum_file_parsing():
    text = "a" * 64 + "  coadd-main-bright-1.fits\n" + "B" * 64 + " *sub/redrock-main-bright-1.fits\njunk\n"
    assert parse_checksum_file(text) == {"coadd-main-bright-1.fits": "a" * 64,
                                         "redrock-main-bright-1.fits": "b" * 64}
    html = '<a href="main-10010.sha256sum">x</a><a href="coadd.fits">y</a><a href="../up.sha256sum">'
    assert checksum_links(html) == ["main-10010.sha256sum"]
