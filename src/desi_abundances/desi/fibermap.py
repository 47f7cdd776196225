"""Which rows of a coadd's FIBERMAP are garbled: a value no DESI file holds (a TARGETID <= 0
for a target, a position that is not a finite angle, an OBJTYPE that is not a fibre code, a
status or bitmask that is not an integer, text bytes that do not decode). One rule for
data_ingestion and inference: such a row is skipped and counted (``GARBLED``, per column),
never read as a wrong value (a NaN position into the crossmatch, an unparseable status as
good). Vectorised: a few array operations per column.

A FITS binary-table row is one contiguous record, so undecodable bytes in any text column
mark the whole record as damaged."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

OBJTYPES = ("TGT", "SKY", "NON", "BAD")
"""Fibre codes of OBJTYPE (fiberassign): target, sky, no target, broken fibre."""

SCIENCE_OBJTYPE = "TGT"
"""The OBJTYPE of science targets."""

GARBLED = "garbled_fibermap"
"""Outcome count of garbled FIBERMAP rows; ``garbled_fibermap:<COLUMN>`` per column."""

REPLACEMENT_CHARACTER = "\ufffd"
"""What the table reader puts for bytes that do not decode as ASCII (FITS text is ASCII)."""

INTEGER_COLUMNS = ("COADD_FIBERSTATUS",)
"""Integer FIBERMAP columns whose value decides a row's fate (besides TARGETID and the
target bitmask columns the caller names)."""

PROBLEMS = {
    "TARGETID": "not a positive integer",
    "TARGET_RA": "not a finite angle in [0, 360] deg",
    "TARGET_DEC": "not a finite angle in [-90, 90] deg",
    "OBJTYPE": f"not a fibre code {'/'.join(OBJTYPES)}",
}
"""What is wrong with a garbled value, per column (integer columns: "not an integer", text
columns: "bytes that do not decode as ASCII")."""


def objtype_codes(values: Iterable) -> np.ndarray:
    """OBJTYPE values stripped and upper case (a numpy str array; the few distinct values
    are normalised once)."""
    codes, distinct = pd.factorize(pd.Series(np.asarray(values, dtype=object)), use_na_sentinel=False)
    normalised = np.char.upper(np.char.strip(np.asarray(distinct, dtype=str)))
    return normalised[codes] if len(codes) else np.zeros(0, dtype=str)


def integer_values(values: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """``(int64 values, bad)``: a column as int64 (0 where ``bad``) and where it holds no
    exact integer (NaN, inf, a fraction, text that is not a number, a float beyond 2**53
    whose last digits are lost). Integer columns cost nothing."""
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return array.astype(np.int64, copy=False), np.zeros(array.shape, dtype=bool)
    numbers = pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers)) | (np.abs(numbers) > 2.0**53)
    return np.where(bad, 0, numbers).astype(np.int64), bad


def float_values(values: Iterable) -> np.ndarray:
    """A column as float64, NaN where it holds no number."""
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array.astype(np.float64, copy=False)
    return pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(np.float64)


def undecodable(values: Iterable) -> np.ndarray | None:
    """Rows of a text column holding bytes that did not decode (None: not a text column)."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return np.char.find(array, REPLACEMENT_CHARACTER) >= 0
    if array.dtype.kind != "O" or not array.size:
        return None
    texts = [v for v in array if isinstance(v, str)]
    if not texts:
        return None
    if REPLACEMENT_CHARACTER not in "".join(texts):  # one C-level pass for a clean column
        return np.zeros(array.size, dtype=bool)
    return np.array([isinstance(v, str) and REPLACEMENT_CHARACTER in v for v in array])


def garbled_rows(fibermap: pd.DataFrame, used: np.ndarray | None = None,
                 bitmask_columns: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """``{column: boolean mask}`` of the garbled rows, for the columns with any.

    OBJTYPE is checked on every row; the other rules on the ``used`` rows only (default all;
    e.g. the science targets: a sky fibre may well have a negative TARGETID): TARGETID > 0,
    TARGET_RA in [0, 360], TARGET_DEC in [-90, 90] (finite), COADD_FIBERSTATUS and
    ``bitmask_columns`` integers, and no undecodable bytes in any text column. Absent
    columns are not checked (callers require theirs).
    """
    n = len(fibermap)
    used = np.ones(n, dtype=bool) if used is None else np.asarray(used, dtype=bool)
    found: dict[str, np.ndarray] = {}
    if "OBJTYPE" in fibermap.columns:
        found["OBJTYPE"] = ~np.isin(objtype_codes(fibermap["OBJTYPE"]), OBJTYPES)
    if "TARGETID" in fibermap.columns:
        ids, bad = integer_values(fibermap["TARGETID"])
        found["TARGETID"] = used & (bad | (ids <= 0))
    for column, limit in (("TARGET_RA", (0.0, 360.0)), ("TARGET_DEC", (-90.0, 90.0))):
        if column in fibermap.columns:
            angle = float_values(fibermap[column])
            with np.errstate(invalid="ignore"):
                inside = (angle >= limit[0]) & (angle <= limit[1])  # False for NaN
            found[column] = used & ~inside
    for column in dict.fromkeys([*INTEGER_COLUMNS, *bitmask_columns]):
        if column in fibermap.columns:
            found[column] = used & integer_values(fibermap[column])[1]
    for column in fibermap.columns:
        text = undecodable(fibermap[column])
        if text is not None:
            found[column] = found.get(column, np.zeros(n, dtype=bool)) | (used & text)
    return {column: mask for column, mask in found.items() if mask.any()}


def any_garbled(garbled: Mapping[str, np.ndarray], n_rows: int) -> np.ndarray:
    """Rows garbled in any column."""
    rows = np.zeros(n_rows, dtype=bool)
    for mask in garbled.values():
        rows |= mask
    return rows


def garbled_counts(garbled: Mapping[str, np.ndarray], n_rows: int) -> dict[str, int]:
    """``{GARBLED: rows garbled in any column, "garbled_fibermap:<COLUMN>": rows per column}``."""
    counts = {GARBLED: int(any_garbled(garbled, n_rows).sum())}
    counts.update({f"{GARBLED}:{column}": int(mask.sum()) for column, mask in garbled.items()})
    return counts


def garbled_columns(counts: Mapping[str, int]) -> str:
    """`` (COLUMN n, ...)`` of the per-column garbled counts of ``counts``, or ""."""
    columns = [f"{key.split(':', 1)[1]} {value}" for key, value in counts.items()
               if key.startswith(GARBLED + ":") and value]
    return f" ({', '.join(columns)})" if columns else ""


def problem_of(column: str, fibermap: pd.DataFrame) -> str:
    """What is wrong with a garbled value of ``column``, in words."""
    if column in PROBLEMS:
        return PROBLEMS[column]
    if undecodable(fibermap[column]) is not None:
        return "bytes that do not decode as ASCII"
    return "not an integer"


def describe_garbled(where: str, fibermap: pd.DataFrame, garbled: Mapping[str, np.ndarray],
                     n_shown: int = 5) -> str:
    """One message naming the file, HDU 'FIBERMAP', each column, its problem, the first rows
    (0-based) and their values, e.g. ``coadd-x.fits: HDU 'FIBERMAP': 2 garbled row(s)
    skipped: column 'TARGET_RA' (not a finite angle in [0, 360] deg) in row(s) 4 (nan)``."""
    n_rows = int(any_garbled(garbled, len(fibermap)).sum())
    parts = []
    for column, mask in garbled.items():
        rows = np.flatnonzero(mask)
        values = fibermap[column].to_numpy()[rows[:n_shown]].tolist()
        shown = ", ".join(f"{row} ({value!r})" for row, value in zip(rows[:n_shown], values))
        more = f" and {rows.size - n_shown} more" if rows.size > n_shown else ""
        parts.append(f"column {column!r} ({problem_of(column, fibermap)}) in row(s) {shown}{more}")
    return f"{where}: HDU 'FIBERMAP': {n_rows} garbled row(s) skipped: " + "; ".join(parts)
