"""``FitsTableDataset``: the Kedro wrapper of ``io.fits_table`` (FITS tables <-> DataFrames)."""
from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from desi_abundances.io.datasets.common import TablePreview, as_dataset_error, local_path
from desi_abundances.io.fits_table import column_names, columns_for, read_tables, write_tables


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
            ``{EXTNAME: {column: unit}}``).
        metadata: free-form (kedro-viz layer...).

    Example catalog entry::

        apogee_allstar:
          type: desi_abundances.io.datasets.fits_table.FitsTableDataset
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

    def load(self) -> pd.DataFrame | dict[str, pd.DataFrame]:
        with as_dataset_error():
            return read_tables(self._filepath, self._hdu, self._columns,
                               memmap=self._load_args.get("memmap", True))

    def save(self, data: pd.DataFrame | dict[str, pd.DataFrame]) -> None:
        if isinstance(data, pd.DataFrame):
            tables = {self._hdu if isinstance(self._hdu, str) else None: data}
        elif isinstance(data, dict):
            tables = data
        else:
            raise DatasetError(
                f"{self._filepath}: FitsTableDataset saves a DataFrame or a dict of DataFrames, "
                f"got {type(data).__name__}"
            )
        write_tables(self._filepath, tables, header=self._save_args.get("header"),
                     units=self._save_args.get("units"))

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
        """The first ``nrows`` rows of the (first) table, at most 12 columns, for kedro-viz."""
        hdu = self._hdu[0] if isinstance(self._hdu, list) else self._hdu
        with as_dataset_error():
            columns = columns_for(self._columns, hdu) or column_names(self._filepath, hdu)[:12]
            frame = read_tables(self._filepath, hdu, columns).head(nrows)
        return TablePreview(frame.to_dict(orient="split"))
