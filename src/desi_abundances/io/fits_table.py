"""``FitsTableDataset``: FITS binary tables <-> pandas DataFrames (astropy, memory-mapped).

Reading selects columns before converting anything, so a 700k-row x 400-column allStar
costs only the memory of the columns asked for. Strings are decoded and stripped, big-endian
columns converted to native byte order, vector columns become object columns of arrays.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import TablePreview
from kedro.io.core import get_protocol_and_path

from desi_abundances.io.atomic import atomic_write


class FitsReadError(DatasetError):
    """A FITS file cannot be read as expected; the message names the file and HDU/column."""


def local_path(filepath: str) -> Path:
    """The local path of ``filepath`` (``file://`` prefixes allowed; remote ones are not)."""
    protocol, path = get_protocol_and_path(str(filepath))
    if protocol not in ("file", ""):
        raise DatasetError(f"{filepath}: only local files are supported, got '{protocol}://'")
    return Path(path)


def open_fits(path: Path, memmap: bool = True) -> fits.HDUList:
    """Open a FITS file, turning any failure into a :class:`FitsReadError` naming the file."""
    if not path.exists():
        raise FitsReadError(f"{path}: file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            hdul = fits.open(path, memmap=memmap, lazy_load_hdus=True)
            # touch the primary header: fails on files that are not FITS at all
            _ = hdul[0].header
    except FitsReadError:
        raise
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


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (a copy only when it was not native)."""
    if array.dtype.byteorder not in ("=", "|") and array.dtype.byteorder != (
        "<" if np.little_endian else ">"
    ):
        return array.astype(array.dtype.newbyteorder("="))
    return array


def column_to_series_data(values: np.ndarray) -> Any:
    """Convert one FITS column to something a DataFrame column can hold."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        try:
            return np.char.strip(values).astype(str).astype(object)
        except UnicodeDecodeError:
            return np.char.strip(np.char.decode(values, "ascii", errors="replace")).astype(object)
    if values.dtype.kind == "U":
        return np.char.strip(values).astype(object)
    values = native(values)
    if values.ndim > 1:
        return list(values)
    return values


_RAW_FORMATS = {"L": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def raw_row_dtype(table_hdu: Any) -> np.dtype | None:
    """The on-disk (big-endian) record dtype of a binary table, or None when a column needs
    astropy's conversions (scaled, bit, variable-length or complex columns)."""
    names, formats, offsets = [], [], []
    offset = 0
    for col in table_hdu.columns:
        fmt = col.format
        code, repeat = getattr(fmt, "format", None), int(getattr(fmt, "repeat", 1) or 1)
        if col.bzero not in (None, 0) or col.bscale not in (None, 1):
            return None
        if code == "A":
            base, width, shape = f"S{repeat}", repeat, ()
        elif code in _RAW_FORMATS:
            base = _RAW_FORMATS[code]
            width = repeat * np.dtype(base).itemsize
            shape = (repeat,) if repeat != 1 else ()
        else:
            return None
        names.append(col.name)
        formats.append((base, shape) if shape else base)
        offsets.append(offset)
        offset += width
    if offset != int(table_hdu.header["NAXIS1"]):
        return None
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})


def _raw_column(raw: np.ndarray, name: str, code: str) -> Any:
    values = raw[name]
    if code == "L":
        return values == ord("T")
    if values.dtype.kind == "S":
        return column_to_series_data(values)
    native_values = values.astype(values.dtype.newbyteorder("="))
    return list(native_values) if native_values.ndim > 1 else native_values


def read_table(
    hdul: fits.HDUList, hdu: int | str, path: Path, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read the binary table ``hdu`` (only ``columns`` when given) into a DataFrame.

    Plain binary tables are memory-mapped and only the selected columns are copied
    (converted to native byte order); other tables go through astropy.
    """
    table_hdu = get_hdu(hdul, hdu, path)
    if not isinstance(table_hdu, (fits.BinTableHDU, fits.TableHDU)):
        raise FitsReadError(f"{path}: HDU {hdu!r} is not a table ({type(table_hdu).__name__})")
    names = list(table_hdu.columns.names)
    wanted = names if columns is None else list(columns)
    upper = {name.upper(): name for name in names}
    missing = [col for col in wanted if col.upper() not in upper]
    if missing:
        raise FitsReadError(f"{path}: HDU {hdu!r} has no column(s) {missing}")
    selected = [upper[col.upper()] for col in wanted]
    raw_dtype = raw_row_dtype(table_hdu) if isinstance(table_hdu, fits.BinTableHDU) else None
    if raw_dtype is not None:
        n_rows = int(table_hdu.header["NAXIS2"])
        offset = hdul.fileinfo(hdul.index_of(hdu))["datLoc"]
        if path.stat().st_size < offset + n_rows * raw_dtype.itemsize:
            raise FitsReadError(f"{path}: HDU {hdu!r} is truncated ({n_rows} rows expected)")
        if n_rows == 0:
            return pd.DataFrame({name: np.array([]) for name in selected})
        raw = np.memmap(path, dtype=raw_dtype, mode="r", offset=offset, shape=(n_rows,))
        try:
            codes = {col.name: col.format.format for col in table_hdu.columns}
            result = {name: _raw_column(raw, name, codes[name]) for name in selected}
        finally:
            del raw
        return pd.DataFrame(result, index=pd.RangeIndex(n_rows))
    try:
        data = table_hdu.data
    except Exception as exc:
        raise FitsReadError(
            f"{path}: HDU {hdu!r} data cannot be read, file corrupt or truncated ({exc})"
        ) from exc
    result: dict[str, Any] = {}
    n_rows = 0 if data is None else len(data)
    for name in selected:
        try:
            values = data.field(name) if data is not None else np.array([])
        except Exception as exc:
            raise FitsReadError(
                f"{path}: HDU {hdu!r} column {name!r} cannot be read ({exc})"
            ) from exc
        result[name] = column_to_series_data(values)
    return pd.DataFrame(result, index=pd.RangeIndex(n_rows))


def dataframe_to_hdu(df: pd.DataFrame, extname: str | None, header: dict | None = None,
                     units: dict[str, str] | None = None) -> fits.BinTableHDU:
    """A binary-table HDU from ``df``: object columns of str become fixed-width strings."""
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
        cols.append(fits.Column(name=str(name), array=values,
                                format=_fits_format(values),
                                unit=(units or {}).get(str(name))))
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    for key, value in (header or {}).items():
        table.header[key] = value
    return table


def _fits_format(values: np.ndarray) -> str:
    from astropy.io.fits.column import _convert_record2fits  # noqa: PLC0415

    if values.ndim > 1:
        base = _convert_record2fits(values.dtype.str.lstrip("<>=|"))
        return f"{int(np.prod(values.shape[1:]))}{base}"
    if values.dtype == bool:
        return "L"
    if values.dtype.kind == "S":
        return f"{values.dtype.itemsize}A"
    return _convert_record2fits(values.dtype.str.lstrip("<>=|"))


def primary_hdu(header: dict[str, Any] | None = None) -> fits.PrimaryHDU:
    """An empty primary HDU with ``header`` keywords (values or ``(value, comment)``)."""
    primary = fits.PrimaryHDU()
    for key, value in (header or {}).items():
        primary.header[key] = value
    return primary


class FitsTableDataset(AbstractDataset[pd.DataFrame | dict, pd.DataFrame | dict]):
    """One or several binary-table HDUs of a FITS file as pandas DataFrames.

    Args:
        filepath: the FITS file.
        hdu: an HDU index or EXTNAME -> ``load`` returns a DataFrame; a list of EXTNAMEs ->
            ``load`` returns ``{EXTNAME: DataFrame}`` (and ``save`` takes such a dict).
        columns: columns to read: a list (same for every HDU) or ``{EXTNAME: [columns]}``;
            None reads every column. Only these columns are converted (memmap).
        load_args: ``memmap`` (default True).
        save_args: ``header`` (primary-header keywords, e.g. ``{MOCK: true}``; a value may
            be ``[value, comment]``), ``units`` (``{column: unit}`` written as TUNITn, or
            ``{EXTNAME: {column: unit}}``), ``overwrite`` (default True).
        metadata: free-form (kedro-viz layer...).

    Example catalog entry::

        apogee_allstar:
          type: desi_abundances.io.fits_table.FitsTableDataset
          filepath: data/01_raw/allStar-dr17-synspec_rev1-mock.fits
          hdu: 1
          columns: [APOGEE_ID, TEFF, LOGG, FE_H]
    """

    def __init__(
        self,
        filepath: str,
        hdu: int | str | list[str] = 1,
        columns: list[str] | dict[str, list[str]] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = local_path(filepath)
        self._hdu = list(hdu) if isinstance(hdu, (list, tuple)) else hdu
        self._columns = columns
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def _columns_for(self, hdu: int | str) -> list[str] | None:
        if self._columns is None or isinstance(self._columns, (list, tuple)):
            return self._columns
        return self._columns.get(hdu, self._columns.get(str(hdu)))

    def load(self) -> pd.DataFrame | dict[str, pd.DataFrame]:
        hdul = open_fits(self._filepath, memmap=self._load_args.get("memmap", True))
        try:
            if isinstance(self._hdu, list):
                return {
                    str(name): read_table(hdul, name, self._filepath, self._columns_for(name))
                    for name in self._hdu
                }
            return read_table(hdul, self._hdu, self._filepath, self._columns_for(self._hdu))
        finally:
            hdul.close()

    def save(self, data: pd.DataFrame | dict[str, pd.DataFrame]) -> None:
        if isinstance(data, pd.DataFrame):
            name = self._hdu if isinstance(self._hdu, str) else None
            tables = {name: data}
        elif isinstance(data, dict):
            tables = data
        else:
            raise DatasetError(
                f"{self._filepath}: FitsTableDataset saves a DataFrame or a dict of DataFrames, "
                f"got {type(data).__name__}"
            )
        units = self._save_args.get("units") or {}
        hdus: list[Any] = [primary_hdu(_header_items(self._save_args.get("header")))]
        for extname, frame in tables.items():
            table_units = _units_for(units, extname)
            hdus.append(dataframe_to_hdu(frame, extname, units=table_units))
        with atomic_write(self._filepath) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "hdu": self._hdu,
            "columns": self._columns,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }

    def preview(self, nrows: int = 10) -> TablePreview:
        """The first ``nrows`` rows of the (first) table, for kedro-viz."""
        hdu = self._hdu[0] if isinstance(self._hdu, list) else self._hdu
        hdul = open_fits(self._filepath)
        try:
            table_hdu = get_hdu(hdul, hdu, self._filepath)
            names = list(table_hdu.columns.names)[:12]
            cols = self._columns_for(hdu) or names
            frame = read_table(hdul, hdu, self._filepath, cols).head(nrows)
        finally:
            hdul.close()
        return TablePreview(frame.to_dict(orient="split"))


def _header_items(header: dict[str, Any] | None) -> dict[str, Any]:
    """Header keywords; ``[value, comment]`` lists become ``(value, comment)`` cards."""
    items = {}
    for key, value in (header or {}).items():
        items[key] = tuple(value) if isinstance(value, list) else value
    return items


def _units_for(units: dict[str, Any], extname: str | None) -> dict[str, str]:
    """Units of one HDU from ``{column: unit}`` or ``{EXTNAME: {column: unit}}``."""
    if extname is not None and isinstance(units.get(extname), dict):
        return units[extname]
    return {key: value for key, value in units.items() if isinstance(value, str)}
