"""The value-added catalogue (VAC): the per-coadd Parquet tables merged into one FITS table.

Streaming: the FITS header is written first (its row count is known from the Parquet
footers), then each per-coadd table is read, converted to big-endian FITS rows and appended,
one file at a time; peak memory is one per-coadd table whatever the survey size. The file is
written atomically. Column names follow the surveys (TARGETID, TEFF, FE_H, MG_FE_ERR...).
Units follow DESI's catalogues: TUNITn only for units FITS knows (``deg``, ``K``, ``km s-1``);
dex quantities carry no TUNIT (astropy would warn "'dex' did not parse"), their unit is in the
column comment TCOMMn (and the TTYPEn comment). ``PRIMARY``/``NSPEC`` (one row per star) are
computed over the whole catalogue before streaming (``inference.primary``); see
``docs/vac_datamodel.md``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from astropy.io import fits

from desi_abundances.constants import label_unit
from desi_abundances.inference.primary import primary_spectra
from desi_abundances.io.atomic import atomic_write

logger = logging.getLogger(__name__)

VAC_SCHEMA_VERSION = 5
"""2: PRIMARY and NSPEC; no TUNIT on dex columns (TCOMMn), km s-1. 3: RCHI2*, POOR_FIT.
4: LEVERAGE; COMPOSITE_SCORE, COMPOSITE_DV, FLAG bit 8 COMPOSITE. 5: RCHI2_FLOOR, POOR_FIT
from it (MAXRCHFL)."""
FITS_UNITS = {"deg", "K", "km s-1"}
"""Units written as TUNITn; others (dex) go to TCOMMn only."""
COMPUTED = "__computed__"
"""Source of the columns computed over the catalogue (PRIMARY, NSPEC), not per-coadd."""
STRING_WIDTH = 16
"""Characters of the SURVEY and PROGRAM columns."""


@dataclass(frozen=True)
class VacColumn:
    """One FITS column: its name, the per-coadd Parquet column it comes from, the numpy
    dtype of its FITS rows (big-endian), FITS format, unit and description."""

    name: str
    source: str
    dtype: str
    format: str
    unit: str
    description: str


def vac_columns(label_names: Sequence[str]) -> list[VacColumn]:
    """The catalogue's columns, in order, for the model's labels."""
    columns = [
        VacColumn("TARGETID", "TARGETID", ">i8", "K", "", "DESI target id"),
        VacColumn("TARGET_RA", "TARGET_RA", ">f8", "D", "deg", "right ascension (ICRS, REF_EPOCH)"),
        VacColumn("TARGET_DEC", "TARGET_DEC", ">f8", "D", "deg", "declination (ICRS, REF_EPOCH)"),
        VacColumn("SURVEY", "SURVEY", f"S{STRING_WIDTH}", f"{STRING_WIDTH}A", "", "DESI survey"),
        VacColumn("PROGRAM", "PROGRAM", f"S{STRING_WIDTH}", f"{STRING_WIDTH}A", "", "DESI program"),
        VacColumn("HEALPIX", "HEALPIX", ">i4", "J", "", "nested nside=64 HEALPix of the coadd"),
        VacColumn("COADD_FIBERSTATUS", "COADD_FIBERSTATUS", ">i4", "J", "", "fibre status bits (0 good)"),
        VacColumn("SNR", "snr", ">f4", "E", "", "median S/N per pixel, all arms"),
        VacColumn("VRAD", "vrad_kms", ">f8", "D", "km s-1", "MWS radial velocity used (NaN: none)"),
    ]
    for label in label_names:
        unit = label_unit(label)
        columns.append(VacColumn(label.upper(), label, ">f4", "E", unit, f"{label} predicted"))
        columns.append(
            VacColumn(f"{label.upper()}_ERR", f"{label}_err", ">f4", "E", unit, f"{label} uncertainty")
        )
    columns += [
        VacColumn("INPUT_DISTANCE", "input_distance", ">f4", "E", "", "distance to training set"),
        VacColumn("RCHI2", "rchi2", ">f4", "E", "", "reduced chi2 of the spectrum model fit"),
        VacColumn("RCHI2_B", "rchi2_b", ">f4", "E", "", "reduced chi2, B arm"),
        VacColumn("RCHI2_R", "rchi2_r", ">f4", "E", "", "reduced chi2, R arm"),
        VacColumn("RCHI2_Z", "rchi2_z", ">f4", "E", "", "reduced chi2, Z arm"),
        VacColumn("RCHI2_FLOOR", "rchi2_floor", ">f4", "E", "",
                  "reduced chi2 with a model-error floor"),
        VacColumn("LEVERAGE", "leverage", ">f4", "E", "", "leverage of the network's features"),
        VacColumn("COMPOSITE_SCORE", "composite_score", ">f4", "E", "",
                  "second star's lines at another velocity (score)"),
        VacColumn("COMPOSITE_DV", "composite_dv_kms", ">f4", "E", "km s-1",
                  "velocity of that second line pattern"),
        VacColumn("FLAG", "flag", ">i4", "J", "", "quality bits, 0 = none (FLAGBn)"),
        VacColumn("LABEL_RANGE_FLAG", "label_range_flag", ">i8", "K", "", "bit i: label i off range (LRNGBn)"),
        VacColumn("PRIMARY", COMPUTED, "u1", "L", "", "suggested spectrum of this TARGETID"),
        VacColumn("NSPEC", COMPUTED, ">i2", "I", "", "spectra of this TARGETID in the VAC"),
    ]
    return columns


def column_comment(column: VacColumn) -> str:
    """TCOMMn / TTYPEn comment: the description, with the unit when it is not a TUNIT."""
    if column.unit and column.unit not in FITS_UNITS:
        return f"{column.description} [{column.unit}]"
    return column.description


def _rows(table: Any, columns: Sequence[VacColumn], source: Path) -> np.ndarray:
    """One per-coadd table (a pyarrow Table) as FITS rows (a big-endian record array)."""
    rows = np.zeros(table.num_rows, dtype=[(c.name, c.dtype) for c in columns])
    for column in columns:
        if column.source == COMPUTED:
            continue
        if column.source not in table.column_names:
            raise ValueError(f"{source}: per-coadd table lacks column {column.source!r}")
        values = table.column(column.source).to_numpy(zero_copy_only=False)
        if column.dtype.startswith("S"):
            encoded = np.array([str(v).encode("ascii") for v in values], dtype=object)
            too_long = [v for v in encoded if len(v) > STRING_WIDTH]
            if too_long:
                raise ValueError(
                    f"{source}: {column.source} value {too_long[0]!r} is longer than "
                    f"{STRING_WIDTH} characters"
                )
            values = encoded.astype(column.dtype) if len(encoded) else np.zeros(0, column.dtype)
        rows[column.name] = values
    return rows


def catalogue_primary(parquet_paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """``(primary, nspec)`` over the rows of every per-coadd table, in merge order
    (``inference.primary.primary_spectra`` of TARGETID, snr, flag; three columns read)."""
    parts = [pq.read_table(p, columns=["TARGETID", "snr", "flag"]) for p in parquet_paths]
    if not parts:
        return np.zeros(0, bool), np.zeros(0, np.int16)
    def column(name: str) -> np.ndarray:
        return np.concatenate([t.column(name).to_numpy(zero_copy_only=False) for t in parts])
    return primary_spectra(column("TARGETID"), column("snr"), column("flag"))


def inputs_fingerprint(parquet_paths: Sequence[Path], label_names: Sequence[str], fingerprint: str) -> str:
    """Hash of what a VAC is made of: the per-coadd files (names, sizes, mtimes), the labels,
    the run fingerprint and the VAC layout."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(label_names), fingerprint, VAC_SCHEMA_VERSION]).encode())
    for path in sorted(parquet_paths):
        stat = Path(path).stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def vac_is_current(filepath: Path, inputs_sha: str) -> bool:
    """True when the VAC at ``filepath`` was built from exactly these inputs."""
    try:
        return fits.getheader(filepath, 1).get("INPUTSHA") == inputs_sha
    except (OSError, IndexError, KeyError):
        return False


def write_vac(
    parquet_paths: Sequence[Path],
    filepath: str | Path,
    label_names: Sequence[str],
    header_cards: Mapping[str, tuple[Any, str]] | None = None,
    flag_bits: Mapping[str, int] | None = None,
) -> int:
    """Merge per-coadd Parquet tables into one FITS binary table (HDU 1, EXTNAME VAC).

    Args:
        parquet_paths: per-coadd tables, merged in this order.
        filepath: the VAC's path; written atomically.
        label_names: python label names (teff, fe_h...): columns TEFF, TEFF_ERR...
        header_cards: extra ``{KEYWORD: (value, comment)}`` for the table header.
        flag_bits: ``{name: bit}`` of the FLAG column, recorded as FLAGBn keywords.

    Returns:
        The number of rows written.
    """
    columns = vac_columns(label_names)
    n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parquet_paths)
    is_primary, nspec = catalogue_primary(parquet_paths)
    template = fits.BinTableHDU.from_columns(
        [fits.Column(name=c.name, format=c.format, unit=c.unit if c.unit in FITS_UNITS else None)
         for c in columns],
        nrows=0,
    )
    header = template.header
    header["NAXIS2"] = n_rows
    header["EXTNAME"] = "VAC"
    for index, column in enumerate(columns, start=1):
        header.comments[f"TTYPE{index}"] = column_comment(column)
        header.insert(f"TFORM{index}", (f"TCOMM{index}", column_comment(column)), after=True)
    for name, bit in sorted((flag_bits or {}).items(), key=lambda item: item[1]):
        header[f"FLAGB{bit}"] = (name, f"FLAG bit {bit}")
    for bit, label in enumerate(label_names):
        header[f"LRNGB{bit}"] = (label.upper(), f"LABEL_RANGE_FLAG bit {bit}")
    for key, (value, comment) in (header_cards or {}).items():
        header[key] = (value, comment)
    row_bytes = np.dtype([(c.name, c.dtype) for c in columns]).itemsize
    if header["NAXIS1"] != row_bytes:
        raise AssertionError(f"FITS row of {header['NAXIS1']} bytes, numpy row of {row_bytes}")
    primary = fits.PrimaryHDU()
    for key in ("MOCK", "MOCKMODL"):
        if key in header:
            primary.header[key] = (header[key], header.comments[key])
    with atomic_write(filepath) as tmp, open(tmp, "wb") as stream:
        primary.writeto(stream)
        stream.write(header.tostring().encode("ascii"))
        written = 0
        for path in parquet_paths:
            table = pq.read_table(path, columns=[c.source for c in columns if c.source != COMPUTED])
            rows = _rows(table, columns, Path(path))
            rows["PRIMARY"] = np.where(is_primary[written:written + len(rows)], ord("T"), ord("F"))
            rows["NSPEC"] = nspec[written:written + len(rows)]
            stream.write(rows.tobytes())
            written += len(rows)
        if written != n_rows:
            raise ValueError(f"per-coadd files changed while merging: {written} rows, expected {n_rows}")
        data_bytes = n_rows * row_bytes
        stream.write(b"\0" * ((-data_bytes) % 2880))
    logger.info("Wrote the value-added catalogue %s: %d rows from %d coadds", filepath, n_rows, len(parquet_paths))
    return n_rows
