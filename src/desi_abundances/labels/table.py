"""A generic reference-label table: any label source beside APOGEE allStar.

A table (FITS binary table, Parquet or CSV) with one row per reference star: an id, RA/Dec
(degrees, ICRS) and/or a DESI TARGETID, and for each label of ``params:labels`` its value,
its error and optionally a flag (0 = good). :func:`reference_labels` turns it into the
canonical form every later stage reads (the same column names as allStar's labels):

``REFERENCE_ID`` (str), ``RA``, ``DEC`` (float64 degrees; NaN = unknown), ``TARGETID``
(int64; :data:`NO_TARGETID` = unknown), then per label ``<LABEL>``, ``<LABEL>_ERR`` (same
unit: K for teff, dex otherwise) and ``<LABEL>_FLAG`` (int64, 0 = good). Missing values
(NaN or one of ``missing_values``) become NaN, never zeros.

pandas/astropy only, no Kedro. Every error names the file (or ``where``) and the column.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import Table

logger = logging.getLogger(__name__)

LABEL_SOURCE_APOGEE = "apogee"
LABEL_SOURCE_TABLE = "table"
REFERENCE_ID = "REFERENCE_ID"
NO_TARGETID = -1
DEFAULT_COLUMNS = {"id": REFERENCE_ID, "ra": "RA", "dec": "DEC", "targetid": "TARGETID"}
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")


class LabelTableError(ValueError):
    """A reference-label table cannot be used; the message names the file and column."""


def label_source_kind(labels_source: Mapping[str, Any] | None) -> str:
    """``apogee`` (the default: allStar) or ``table`` (a generic reference-label table).

    Raises:
        LabelTableError: for any other ``kind``.
    """
    kind = str((labels_source or {}).get("kind", LABEL_SOURCE_APOGEE)).lower()
    if kind not in (LABEL_SOURCE_APOGEE, LABEL_SOURCE_TABLE):
        raise LabelTableError(
            f"params:labels_source.kind must be {LABEL_SOURCE_APOGEE!r} or "
            f"{LABEL_SOURCE_TABLE!r}, got {kind!r}")
    return kind


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffixes in (("fits", FITS_SUFFIXES), ("parquet", PARQUET_SUFFIXES),
                          ("csv", CSV_SUFFIXES)):
        if name.endswith(suffixes):
            return fmt
    raise LabelTableError(
        f"{path}: unknown label-table format (expected one of "
        f"{FITS_SUFFIXES + PARQUET_SUFFIXES + CSV_SUFFIXES})")


def read_table_file(path: str | Path, hdu: int | str = 1) -> pd.DataFrame:
    """A FITS binary table (HDU ``hdu``), Parquet or CSV file as a DataFrame, by suffix.

    FITS: vector columns are dropped (a label table has scalar columns), strings stripped.
    The result's ``attrs["source"]`` is the path (used in later error messages).

    Raises:
        LabelTableError: missing file, unknown suffix or unreadable content (names the file).
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise LabelTableError(f"{path}: label table does not exist")
    try:
        if fmt == "fits":
            table = Table.read(path, hdu=hdu)
            scalar = [name for name in table.colnames if table[name].ndim <= 1]
            frame = table[scalar].to_pandas()
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except Exception as exc:  # astropy/pyarrow/pandas raise many types
        raise LabelTableError(f"{path}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(
                lambda v: v.decode().strip() if isinstance(v, bytes)
                else v.strip() if isinstance(v, str) else v)
    frame.attrs["source"] = str(path)
    return frame


def table_format(path: str | Path) -> str:
    """``fits``, ``parquet`` or ``csv`` from the file name (LabelTableError otherwise)."""
    return _format_of(Path(path))


def write_table_file(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> None:
    """Write a label table as FITS (HDU 1), Parquet or CSV (``fmt``, default by suffix);
    plain, not atomic: the Kedro dataset wraps it in ``atomic_write``."""
    path = Path(path)
    fmt = fmt or _format_of(path)
    if fmt == "fits":
        Table.from_pandas(frame.reset_index(drop=True)).write(path, format="fits", overwrite=True)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _numeric(frame: pd.DataFrame, column: str, where: str, missing: Sequence[float]) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64, copy=True)
    raw = frame[column]
    unparsable = np.isnan(values) & raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
    if unparsable.any():
        first = raw[unparsable].iloc[0]
        raise LabelTableError(
            f"{where}: column {column!r} holds {int(unparsable.sum())} non-numeric value(s), "
            f"e.g. {first!r}")
    for sentinel in missing:
        values[np.isclose(values, float(sentinel))] = np.nan
    return values


def _label_columns(label: str, spec: Mapping[str, Any]) -> dict[str, str]:
    upper = label.upper()
    given = dict((spec.get("label_columns") or {}).get(label) or {})
    return {"value": given.get("value", upper), "error": given.get("error", f"{upper}_ERR"),
            "flag": given.get("flag", f"{upper}_FLAG")}


def reference_labels(frame: pd.DataFrame, labels: Sequence[str],
                     spec: Mapping[str, Any] | None = None, where: str | None = None
                     ) -> pd.DataFrame:
    """The canonical reference-label table (module docstring) from a raw table.

    Args:
        frame: the file's rows (:func:`read_table_file`).
        labels: ``params:labels`` (python names: teff, logg, fe_h, mg_fe, ...).
        spec: ``params:labels_source``: ``columns`` (``id``, ``ra``, ``dec``, ``targetid``:
            names in the file; defaults REFERENCE_ID, RA, DEC, TARGETID), ``label_columns``
            (``{label: {value, error, flag}}``; defaults ``<LABEL>``, ``<LABEL>_ERR``,
            ``<LABEL>_FLAG``), ``default_errors`` (``{label: error}`` where the file has no
            error column), ``missing_values`` (sentinels read as missing, e.g. [-9999]),
            ``keep_columns`` (other columns carried along unchanged, e.g. [LIBRARY]).
        where: the file, for messages (default ``frame.attrs["source"]``).

    Raises:
        LabelTableError: a missing id/label/error column, neither TARGETID nor RA/Dec, an
            empty or duplicate id, RA without Dec; each message names the file and column.
    """
    spec = dict(spec or {})
    where = where or frame.attrs.get("source", "reference label table")
    columns = {**DEFAULT_COLUMNS, **dict(spec.get("columns") or {})}
    missing = list(spec.get("missing_values") or [])
    defaults = dict(spec.get("default_errors") or {})
    if columns["id"] not in frame.columns:
        raise LabelTableError(f"{where}: no id column {columns['id']!r} "
                              f"(set params:labels_source.columns.id); columns: {list(frame.columns)}")
    ids = frame[columns["id"]].astype(str).str.strip()
    if (ids == "").any() or frame[columns["id"]].isna().any():
        raise LabelTableError(f"{where}: column {columns['id']!r} has empty ids")
    duplicated = ids[ids.duplicated()].unique()
    if duplicated.size:
        raise LabelTableError(f"{where}: column {columns['id']!r} has {duplicated.size} "
                              f"duplicate id(s), e.g. {list(duplicated[:5])}")
    has_ra, has_dec = columns["ra"] in frame.columns, columns["dec"] in frame.columns
    if has_ra != has_dec:
        raise LabelTableError(f"{where}: has only one of {columns['ra']!r}, {columns['dec']!r}")
    has_targetid = columns["targetid"] in frame.columns
    if not (has_targetid or has_ra):
        raise LabelTableError(
            f"{where}: needs a {columns['targetid']!r} column or {columns['ra']!r}/"
            f"{columns['dec']!r} columns to be matched to DESI spectra")
    n = len(frame)
    out: dict[str, Any] = {REFERENCE_ID: ids.to_numpy().astype(str)}
    for key in ("ra", "dec"):
        out[key.upper()] = (_numeric(frame, columns[key], where, missing) if has_ra
                            else np.full(n, np.nan))
    if has_targetid:
        targetid = _numeric(frame, columns["targetid"], where, missing)
        out["TARGETID"] = np.where(np.isfinite(targetid) & (targetid > 0), targetid,
                                   NO_TARGETID).astype(np.int64)
    else:
        out["TARGETID"] = np.full(n, NO_TARGETID, dtype=np.int64)
    for label in labels:
        names = _label_columns(label, spec)
        upper = label.upper()
        if names["value"] not in frame.columns:
            raise LabelTableError(f"{where}: no column {names['value']!r} for label {label!r} "
                                  "of params:labels")
        out[upper] = _numeric(frame, names["value"], where, missing)
        if names["error"] in frame.columns:
            out[f"{upper}_ERR"] = _numeric(frame, names["error"], where, missing)
        elif label in defaults:
            out[f"{upper}_ERR"] = np.full(n, float(defaults[label]))
        else:
            raise LabelTableError(
                f"{where}: no error column {names['error']!r} for label {label!r} (add it or "
                f"set params:labels_source.default_errors.{label})")
        if names["flag"] in frame.columns:
            flag = pd.to_numeric(frame[names["flag"]], errors="coerce").fillna(1)
            out[f"{upper}_FLAG"] = flag.to_numpy().astype(np.int64)
        else:
            out[f"{upper}_FLAG"] = np.zeros(n, dtype=np.int64)
    for column in spec.get("keep_columns") or []:
        if column not in frame.columns:
            raise LabelTableError(f"{where}: no column {column!r} (params:labels_source.keep_columns)")
        out.setdefault(column, frame[column].to_numpy())
    table = pd.DataFrame(out)
    logger.info("%s: %d reference stars (%d with a TARGETID, %d with a position), labels %s",
                where, n, int((table["TARGETID"] > 0).sum()),
                int(np.isfinite(table["RA"]).sum()), list(labels))
    return table


def read_label_table(path: str | Path, labels: Sequence[str],
                     spec: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """:func:`read_table_file` then :func:`reference_labels` (``spec["hdu"]`` for FITS)."""
    frame = read_table_file(path, hdu=(spec or {}).get("hdu", 1))
    return reference_labels(frame, labels, spec, where=str(path))
