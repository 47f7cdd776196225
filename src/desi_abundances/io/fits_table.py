"""FITS binary tables <-> pandas DataFrames, with astropy's public API (memory-mapped).

Reading selects columns before converting anything, so a 700k-row x 400-column allStar
costs only the memory of the columns asked for. Strings are decoded and stripped, big-endian
columns converted to native byte order (one copy, owned by the DataFrame), vector columns
become object columns of arrays. Every failure is a :class:`FitsReadError` naming the file,
the HDU and the column. No Kedro here: the catalog wrapper is
``io.datasets.fits_table.FitsTableDataset``.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from astropy.io import fits

from desi_abundances.io.atomic import atomic_write


class FitsReadError(OSError):
    """A FITS file cannot be read as expected; the message names the file and HDU/column.
    (The Kedro datasets re-raise it as a ``DatasetError`` with the same message.)"""


def open_fits(path: str | os.PathLike, memmap: bool = True) -> fits.HDUList:
    """Open a FITS file, turning any failure into a :class:`FitsReadError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise FitsReadError(f"{path}: file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(path, memmap=memmap, lazy_load_hdus=True)
            # touch the primary header: fails on files that are not FITS at all
            _ = hdul[0].header
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, VerifyWarning...
        raise FitsReadError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from exc
    return hdul


def get_hdu(hdul: fits.HDUList, hdu: int | str, path: Path) -> Any:
    """The HDU ``hdu`` (index or EXTNAME), or a :class:`FitsReadError` naming file and HDU."""
    try:
        return hdul[hdu]
    except (KeyError, IndexError) as exc:
        raise FitsReadError(f"{path}: HDU {hdu!r} not found") from exc
    except Exception as exc:  # truncated files fail while scanning for later HDUs
        raise FitsReadError(
            f"{path}: HDU {hdu!r} cannot be read, file corrupt or truncated "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def missing_bytes(hdu: Any, path: Path) -> int:
    """How many bytes of the data of ``hdu`` (an HDU of the open file ``path``) lie past the
    end of the file (0: complete)."""
    return max(0, hdu.fileinfo()["datLoc"] + int(hdu.size) - Path(path).stat().st_size)


def column_to_series_data(values: np.ndarray) -> Any:
    """One FITS column as something a DataFrame column can hold: stripped ``str`` objects,
    a native-endian copy (never a view of the memory-mapped file), or a list of row arrays
    for vector columns."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        try:
            return np.char.strip(values).astype(str).astype(object)
        except UnicodeDecodeError:
            return np.char.strip(np.char.decode(values, "ascii", errors="replace")).astype(object)
    if values.dtype.kind == "U":
        return np.char.strip(values).astype(object)
    values = values.astype(values.dtype.newbyteorder("="))  # a copy, native byte order
    if values.ndim > 1:
        return list(values)
    return values


def read_table(
    hdul: fits.HDUList, hdu: int | str, path: Path, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read the table ``hdu`` of an open file (only ``columns`` when given, matched without
    regard to case) into a DataFrame."""
    table_hdu = get_hdu(hdul, hdu, path)
    if not isinstance(table_hdu, (fits.BinTableHDU, fits.TableHDU)):
        raise FitsReadError(f"{path}: HDU {hdu!r} is not a table ({type(table_hdu).__name__})")
    names = list(table_hdu.columns.names)
    wanted = names if columns is None else list(columns)
    upper = {name.upper(): name for name in names}
    missing = [col for col in wanted if col.upper() not in upper]
    if missing:
        raise FitsReadError(f"{path}: HDU {hdu!r} has no column(s) {missing}")
    n_rows = int(table_hdu.header["NAXIS2"])
    if missing_bytes(table_hdu, path):
        raise FitsReadError(f"{path}: HDU {hdu!r} is truncated ({n_rows} rows expected)")
    try:
        data = table_hdu.data
    except Exception as exc:
        raise FitsReadError(
            f"{path}: HDU {hdu!r} data cannot be read, file corrupt or truncated ({exc})"
        ) from exc
    result: dict[str, Any] = {}
    for name in (upper[col.upper()] for col in wanted):
        try:
            values = data.field(name) if data is not None else np.array([])
        except Exception as exc:
            raise FitsReadError(
                f"{path}: HDU {hdu!r} column {name!r} cannot be read ({exc})"
            ) from exc
        result[name] = column_to_series_data(values)
    return pd.DataFrame(result, index=pd.RangeIndex(n_rows))


def read_tables(path: str | os.PathLike, hdus: int | str | Sequence[str] = 1,
                columns: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                memmap: bool = True) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Read one table (``hdus`` an index or EXTNAME) or several (a list of EXTNAMEs ->
    ``{EXTNAME: DataFrame}``) of the FITS file ``path``.

    Args:
        columns: a list (the same for every HDU), ``{EXTNAME: [columns]}`` or None (all).
    """
    path = Path(path)
    hdul = open_fits(path, memmap=memmap)
    try:
        if isinstance(hdus, (list, tuple)):
            return {str(name): read_table(hdul, name, path, columns_for(columns, name))
                    for name in hdus}
        return read_table(hdul, hdus, path, columns_for(columns, hdus))
    finally:
        hdul.close()


def column_names(path: str | os.PathLike, hdu: int | str = 1) -> list[str]:
    """The column names of table ``hdu`` of the FITS file ``path`` (no data read)."""
    path = Path(path)
    hdul = open_fits(path)
    try:
        table_hdu = get_hdu(hdul, hdu, path)
        if not isinstance(table_hdu, (fits.BinTableHDU, fits.TableHDU)):
            raise FitsReadError(f"{path}: HDU {hdu!r} is not a table ({type(table_hdu).__name__})")
        return list(table_hdu.columns.names)
    finally:
        hdul.close()


def columns_for(columns: Sequence[str] | Mapping[str, Sequence[str]] | None,
                hdu: int | str) -> list[str] | None:
    """The columns to read from ``hdu``: ``columns`` itself when it is a list, else its
    entry for ``hdu`` (None: all)."""
    if columns is None or isinstance(columns, (list, tuple)):
        return None if columns is None else list(columns)
    chosen = columns.get(hdu, columns.get(str(hdu)))
    return None if chosen is None else list(chosen)


_FITS_CODES = {"b": "L", "i1": "I", "u1": "B", "i2": "I", "u2": "I", "i4": "J", "u4": "J",
               "i8": "K", "u8": "K", "f2": "E", "f4": "E", "f8": "D", "c8": "C", "c16": "M"}
"""TFORM codes of numpy dtypes (``kind`` + itemsize; ``b`` = bool). Unsigned integers get
a BZERO offset (:func:`dataframe_to_hdu`); int8 is widened to int16 (astropy's own dtype
table maps it to logical, which loses the values)."""


def fits_format(values: np.ndarray) -> str:
    """The TFORM of a column holding ``values`` (1-d, or 2-d for a vector column)."""
    if values.dtype.kind == "S":
        return f"{values.dtype.itemsize}A"
    key = "b" if values.dtype.kind == "b" else f"{values.dtype.kind}{values.dtype.itemsize}"
    if key not in _FITS_CODES:
        raise TypeError(f"no FITS column format for dtype {values.dtype}")
    repeat = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    return f"{repeat}{_FITS_CODES[key]}" if values.ndim > 1 else _FITS_CODES[key]


def dataframe_to_hdu(df: pd.DataFrame, extname: str | None, header: dict | None = None,
                     units: dict[str, str] | None = None) -> fits.BinTableHDU:
    """A binary-table HDU from ``df``: object columns of str become fixed-width strings,
    object columns of arrays vector columns; ``units`` are written as TUNITn."""
    cols = []
    for name in df.columns:
        values = df[name].to_numpy()
        if values.dtype == object:
            if len(values) and all(isinstance(v, np.ndarray) for v in values):
                values = np.stack(values)
            else:
                strings = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                           for v in values]
                width = max([len(s) for s in strings] + [1])
                values = np.array(strings, dtype=f"S{width}")
        elif values.dtype.kind == "U":
            values = values.astype(f"S{max(values.dtype.itemsize // 4, 1)}")
        # unsigned integers: FITS stores them signed with a BZERO offset (astropy applies it)
        unsigned = values.dtype.kind == "u" and values.dtype.itemsize > 1
        cols.append(fits.Column(name=str(name), array=values, format=fits_format(values),
                                unit=(units or {}).get(str(name)),
                                bzero=2 ** (8 * values.dtype.itemsize - 1) if unsigned else None))
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    for key, value in (header or {}).items():
        table.header[key] = value
    return table


def primary_hdu(header: dict[str, Any] | None = None) -> fits.PrimaryHDU:
    """An empty primary HDU with ``header`` keywords (values, ``(value, comment)`` tuples or
    ``[value, comment]`` lists as YAML gives them)."""
    primary = fits.PrimaryHDU()
    for key, value in (header or {}).items():
        primary.header[key] = tuple(value) if isinstance(value, list) else value
    return primary


def units_for(units: Mapping[str, Any] | None, extname: str | None) -> dict[str, str]:
    """Units of one HDU from ``{column: unit}`` or ``{EXTNAME: {column: unit}}``."""
    units = units or {}
    if extname is not None and isinstance(units.get(extname), dict):
        return dict(units[extname])
    return {key: value for key, value in units.items() if isinstance(value, str)}


def write_tables(path: str | os.PathLike, tables: Mapping[str | None, pd.DataFrame],
                 header: dict[str, Any] | None = None,
                 units: Mapping[str, Any] | None = None) -> None:
    """Write ``{EXTNAME: DataFrame}`` as binary tables after an empty primary HDU with
    ``header`` keywords, atomically (``io.atomic``). ``units``: see :func:`units_for`."""
    hdus: list[Any] = [primary_hdu(header)]
    for extname, frame in tables.items():
        hdus.append(dataframe_to_hdu(frame, extname, units=units_for(units, extname)))
    with atomic_write(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
