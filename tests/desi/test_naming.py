"""desi.naming: the data model's healpix-coadd name, partition ids and the tree listing."""
from __future__ import annotations

import pytest

from desi_abundances.desi.naming import (
    CoaddName,
    coadd_relative_path,
    healpix_of_partition,
    is_coadd_file,
    is_tile_coadd_file,
    list_coadds,
    parse_coadd_name,
    partition_id,
    split_partitions,
)


@pytest.mark.parametrize("name", [
    "coadd-main-bright-10010.fits", "coadd-sv3-dark-27247.fits", "coadd-cmx-other-0.fits",
    "coadd-special-backup-123456.fits", "coadd-sv1-bright-5.fits", "coadd-sv2-dark-7.fits",
])
def test_healpix_coadd_names_are_accepted(name):
    assert is_coadd_file(name) and is_coadd_file(f"main/bright/100/10010/{name}")
    assert parse_coadd_name(name) is not None


@pytest.mark.parametrize("name", [
    "redrock-main-bright-10010.fits", "spectra-main-bright-10010.fits.gz",
    "spectra-main-bright-10010.fits", "coadd-5-169-thru20210419.fits",
    "coadd-main-bright-10010.fits.gz", "coadd-main-bright-10010", "coadd-main-bright-.fits",
    "coadd-sv4-bright-1.fits", "coadd-main-grey-1.fits", "coadd-Main-bright-1.fits",
    ".coadd-main-bright-1.fits.abc.tmp", "qso_mgii-main-bright-10010.fits",
    "coadd-main-bright-10010.fits.tmp", "xcoadd-main-bright-1.fits",
])
def test_other_files_are_rejected(name):
    assert not is_coadd_file(name)


def test_parse_file_names_paths_and_partition_ids():
    expected = CoaddName("sv3", "bright", 27247)
    assert parse_coadd_name("coadd-sv3-bright-27247.fits") == expected
    assert parse_coadd_name("sv3/bright/272/27247/coadd-sv3-bright-27247") == expected
    assert parse_coadd_name("C:\\desi\\coadd-sv3-bright-27247.fits") == expected
    assert parse_coadd_name("coadd-5-169-thru20210419") is None
    assert healpix_of_partition("main/bright/100/10010/coadd-main-bright-10010") == 10010
    assert healpix_of_partition("main/bright/100/10010/redrock-main-bright-10010") is None


def test_partition_id_and_path_follow_the_tree():
    assert partition_id("main", "bright", 10010) == "main/bright/100/10010/coadd-main-bright-10010"
    assert partition_id("sv3", "dark", 7) == "sv3/dark/0/7/coadd-sv3-dark-7"
    assert coadd_relative_path("main", "backup", 27247) == (
        "main/backup/272/27247/coadd-main-backup-27247.fits")
    assert parse_coadd_name(partition_id("special", "other", 123)) == CoaddName("special", "other", 123)


def test_list_coadds_keeps_coadds_and_reports_the_rest(tmp_path):
    files = [
        "main/bright/100/10010/coadd-main-bright-10010.fits",
        "main/bright/100/10010/redrock-main-bright-10010.fits",
        "main/bright/100/10010/spectra-main-bright-10010.fits.gz",
        "main/backup/100/10011/coadd-main-backup-10011.fits",
        "main/backup/100/10011/.coadd-main-backup-10011.fits.x1.tmp",
        "tiles/cumulative/169/20210419/coadd-5-169-thru20210419.fits",
        "README",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listing = list_coadds(tmp_path)
    assert list(listing.coadds) == [
        "main/backup/100/10011/coadd-main-backup-10011",
        "main/bright/100/10010/coadd-main-bright-10010",
    ]
    assert listing.coadds["main/bright/100/10010/coadd-main-bright-10010"] == tmp_path / files[0]
    assert len(listing.ignored) == 4 and "README" in listing.ignored
    assert list(listing.tiles) == ["tiles/cumulative/169/20210419/coadd-5-169-thru20210419"]
    assert list(listing.all_coadds) == sorted([*listing.coadds, *listing.tiles])
    assert list_coadds(tmp_path / "missing").coadds == {}


def test_split_partitions_uses_the_same_rule():
    coadds, ignored = split_partitions([
        "main/bright/1/100/coadd-main-bright-100", "main/bright/1/100/redrock-main-bright-100",
        "tiles/coadd-5-169-thru20210419",
    ])
    assert coadds == ["main/bright/1/100/coadd-main-bright-100"] and len(ignored) == 2
    with_tiles, ignored = split_partitions(["tiles/coadd-5-169-thru20210419", "a/redrock-main-bright-1"],
                                           include_tiles=True)
    assert with_tiles == ["tiles/coadd-5-169-thru20210419"] and ignored == ["a/redrock-main-bright-1"]


@pytest.mark.parametrize("name, expected", [
    ("coadd-5-169-thru20210419.fits", True), ("tiles/pernight/80613/20210324/coadd-4-80613-20210324.fits", True),
    ("coadd-0-1000-exp00012345.fits", True), ("coadd-main-bright-10010.fits", False),
    ("redrock-5-169-thru20210419.fits", False), ("coadd-12-169-thru20210419.fits", False),
])
def test_tile_coadd_names(name, expected):
    assert is_tile_coadd_file(name) is expected
