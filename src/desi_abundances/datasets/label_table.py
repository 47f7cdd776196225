"""``LabelTableDataset``: a reference-label table file (FITS, Parquet or CSV, by suffix) <->
a DataFrame. I/O only: :func:`desi_abundances.labels.reference_labels` gives it meaning."""
from __future__ import annotations

from typing import Any

import pandas as pd
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError

from desi_abundances.datasets.common import local_path
from desi_abundances.io.atomic import atomic_write
from desi_abundances.io.fits_table import dataframe_to_hdu, primary_hdu
from desi_abundances.labels.table import (
    LabelTableError,
    read_table_file,
    table_format,
    write_table_file,
)


class LabelTableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A label table; loads keep the path in ``attrs["source"]`` for error messages.

    Args:
        filepath: ``.fits``/``.fit`` (binary table in HDU ``load_args.hdu``, default 1),
            ``.parquet`` or ``.csv``.
        save_args: FITS only: ``header`` (primary keywords, values or [value, comment]),
            ``units`` (``{column: unit}``), ``extname`` (default LABELS).
    """

    def __init__(self, filepath: str, load_args: dict[str, Any] | None = None,
                 save_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._filepath = local_path(filepath)
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata
        try:
            self._format = table_format(self._filepath)
        except LabelTableError as exc:
            raise DatasetError(str(exc)) from exc

    def load(self) -> pd.DataFrame:
        try:
            return read_table_file(self._filepath, hdu=self._load_args.get("hdu", 1))
        except LabelTableError as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: pd.DataFrame) -> None:
        with atomic_write(self._filepath) as tmp:
            if self._format == "fits":
                header = {k: tuple(v) if isinstance(v, list) else v
                          for k, v in (self._save_args.get("header") or {}).items()}
                table = dataframe_to_hdu(data.reset_index(drop=True),
                                         self._save_args.get("extname", "LABELS"),
                                         units=self._save_args.get("units"))
                fits.HDUList([primary_hdu(header), table]).writeto(tmp, overwrite=True)
            else:
                write_table_file(data, tmp, fmt=self._format)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "format": self._format,
                "load_args": self._load_args, "save_args": self._save_args}
