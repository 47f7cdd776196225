"""DESI healpix coadd file names and partition ids.

The data model's rule (desidatamodel ``healpix/SURVEY/PROGRAM/PIXGROUP/PIXNUM/coadd-*.fits``):
a healpix coadd is named ``coadd-{survey}-{program}-{healpix}.fits`` with survey in
cmx, main, special, sv1, sv2, sv3 and program in backup, bright, dark, other, and lives at
``{survey}/{program}/{healpix // 100}/{healpix}/`` below the production's ``healpix/``
folder. A *partition id* is that relative path without ``.fits`` (what a Kedro
PartitionedDataset calls a partition). Other files of the tree (redrock-, spectra-, qso_*-,
temporary files) are not coadds.

Tile-based coadds (``tiles/cumulative/{TILEID}/{NIGHT}/coadd-{PETAL}-{TILEID}-thru{NIGHT}.fits``,
``tiles/pernight/...-{NIGHT}.fits``, ``tiles/perexp/...-exp{EXPID}.fits``) have the same HDUs
but their name carries no survey, program or HEALPix: :data:`TILE_COADD_FILE_NAME` recognises
them; they are listed apart (:attr:`CoaddListing.tiles`) and their provenance must come from
their header (``desi.provenance``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SURVEYS: tuple[str, ...] = ("cmx", "main", "special", "sv1", "sv2", "sv3")
PROGRAMS: tuple[str, ...] = ("backup", "bright", "dark", "other")
COADD_SUFFIX = ".fits"

COADD_FILE_NAME = re.compile(
    r"coadd-(?P<survey>cmx|main|special|sv1|sv2|sv3)-(?P<program>backup|bright|dark|other)"
    r"-(?P<healpix>[0-9]+)\.fits"
)
"""The data model's healpix-coadd file name (match the whole base name)."""

TILE_COADD_FILE_NAME = re.compile(
    r"coadd-(?P<petal>[0-9])-(?P<tileid>[0-9]+)-(?P<group>thru[0-9]{8}|[0-9]{8}|exp[0-9]{8})\.fits"
)
"""The data model's tile-based coadd file name (cumulative ``thruNIGHT``, per night ``NIGHT``,
per exposure ``expEXPID``)."""


@dataclass(frozen=True)
class CoaddName:
    """What a healpix coadd's name says: survey, program (lower case) and nested nside=64
    HEALPix number."""

    survey: str
    program: str
    healpix: int


def _base_name(name: str | os.PathLike) -> str:
    return str(name).replace("\\", "/").rsplit("/", 1)[-1]


def parse_coadd_name(name: str | os.PathLike) -> CoaddName | None:
    """Survey, program and HEALPix of a coadd file name, path or partition id (``.fits``
    optional); None when it is not a healpix coadd name."""
    base = _base_name(name)
    if not base.endswith(COADD_SUFFIX):
        base += COADD_SUFFIX
    match = COADD_FILE_NAME.fullmatch(base)
    if match is None:
        return None
    return CoaddName(match["survey"], match["program"], int(match["healpix"]))


def is_coadd_file(name: str | os.PathLike) -> bool:
    """True for a healpix coadd *file* name or path (the ``.fits`` suffix required)."""
    return COADD_FILE_NAME.fullmatch(_base_name(name)) is not None


def is_tile_coadd_file(name: str | os.PathLike) -> bool:
    """True for a tile-based coadd *file* name or path (``coadd-5-169-thru20210419.fits``)."""
    return TILE_COADD_FILE_NAME.fullmatch(_base_name(name)) is not None


def coadd_file_name(survey: str, program: str, healpix: int) -> str:
    """``coadd-{survey}-{program}-{healpix}.fits``."""
    return f"coadd-{survey}-{program}-{int(healpix)}{COADD_SUFFIX}"


def partition_id(survey: str, program: str, healpix: int) -> str:
    """``{survey}/{program}/{healpix // 100}/{healpix}/coadd-{survey}-{program}-{healpix}``:
    the coadd's path below the ``healpix/`` folder, without ``.fits``."""
    healpix = int(healpix)
    return f"{survey}/{program}/{healpix // 100}/{healpix}/coadd-{survey}-{program}-{healpix}"


def coadd_relative_path(survey: str, program: str, healpix: int) -> str:
    """The coadd file's path below the ``healpix/`` folder (partition id + ``.fits``)."""
    return partition_id(survey, program, healpix) + COADD_SUFFIX


def healpix_of_partition(partition: str) -> int | None:
    """HEALPix number of a partition id or coadd path; None when not a healpix coadd."""
    parsed = parse_coadd_name(partition)
    return parsed.healpix if parsed else None


@dataclass(frozen=True)
class CoaddListing:
    """The healpix coadds found below a folder.

    Attributes:
        root: the folder searched.
        coadds: ``{partition_id: path}`` of the healpix coadds, sorted by partition id.
        tiles: ``{partition_id: path}`` of the tile-based coadds (same layout, provenance in
            their header only), sorted.
        ignored: files below ``root`` that are not healpix coadds (paths relative to root,
            sorted), for callers to count and log.
    """

    root: Path
    coadds: dict[str, Path] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    tiles: dict[str, Path] = field(default_factory=dict)

    @property
    def all_coadds(self) -> dict[str, Path]:
        """Healpix and tile-based coadds together, sorted by partition id."""
        return dict(sorted({**self.coadds, **self.tiles}.items()))


def list_coadds(root: str | os.PathLike) -> CoaddListing:
    """Every coadd below ``root`` (any depth): healpix coadds (base name matches
    :data:`COADD_FILE_NAME`), tile-based coadds (:data:`TILE_COADD_FILE_NAME`) and the other
    files. A missing ``root`` gives an empty listing."""
    root = Path(root)
    coadds: dict[str, Path] = {}
    tiles: dict[str, Path] = {}
    ignored: list[str] = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if COADD_FILE_NAME.fullmatch(name):
                coadds[str(relative.with_suffix(""))] = path
            elif TILE_COADD_FILE_NAME.fullmatch(name):
                tiles[str(relative.with_suffix(""))] = path
            else:
                ignored.append(str(relative))
    return CoaddListing(root, dict(sorted(coadds.items())), tuple(sorted(ignored)),
                        dict(sorted(tiles.items())))


def split_partitions(
    partition_ids: list[str] | tuple[str, ...] | set[str], include_tiles: bool = False
) -> tuple[list[str], list[str]]:
    """``(coadds, ignored)``: partition ids (paths without ``.fits``) that are healpix coadds
    (and tile-based coadds when ``include_tiles``), and the others, each sorted."""
    coadds, ignored = [], []
    for pid in sorted(partition_ids):
        name = pid + COADD_SUFFIX
        is_coadd = is_coadd_file(name) or (include_tiles and is_tile_coadd_file(name))
        (coadds if is_coadd else ignored).append(pid)
    return coadds, ignored
