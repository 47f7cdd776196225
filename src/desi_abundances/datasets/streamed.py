"""``StreamedFilesDataset``: a catalog entry for files a node writes itself, as it goes.

The inference nodes stream their products (one Parquet per coadd, atomic and resumable; the
FITS value-added catalogue): Kedro must not hold them in memory to save them. Declaring them
as this dataset puts them in the catalog (kedro-viz shows the product and previews it) while
the writer stays streaming: the node returns the path it wrote, and ``save`` only checks that
the files are there.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from desi_abundances.datasets.common import TablePreview, as_dataset_error
from desi_abundances.io.fits_table import read_tables

logger = logging.getLogger(__name__)


class StreamedFilesDataset(AbstractDataset[Any, list]):
    """Files below ``path`` matching ``pattern`` (or the file ``path``), written by a node.

    Args:
        path: a folder (with ``pattern``) or one file (``.fits`` or ``.parquet``).
        pattern: glob of the files in a folder (e.g. ``**/*.parquet``).
        metadata: free-form (kedro-viz layer...).
    """

    def __init__(self, path: str, pattern: str | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._pattern = pattern
        self.metadata = metadata

    def _files(self) -> list[Path]:
        if self._pattern is None:
            return [self._path] if self._path.is_file() else []
        return sorted(p for p in self._path.glob(self._pattern) if p.is_file())

    def load(self) -> list[Path]:
        """The written files, sorted."""
        files = self._files()
        if not files:
            raise DatasetError(f"{self._path}: nothing written yet ({self._pattern or 'file'})")
        return files

    def save(self, data: Any) -> None:
        """``data``: the path the node wrote (str or Path). Checks that something is there;
        when it is not this entry's path (a parameter overridden, e.g. with ``--params``),
        logs it and follows the written path for the rest of the session."""
        written = Path(str(data))
        if written.resolve() != self._path.resolve():
            logger.warning("the node wrote %s, the catalog declares %s: following the "
                           "written path", written, self._path)
            self._path = written
        if not self._files():
            raise DatasetError(f"{self._path}: the node wrote nothing "
                               f"({self._pattern or 'file'})")

    def _exists(self) -> bool:
        return bool(self._files())

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "pattern": self._pattern}

    def preview(self, nrows: int = 10) -> TablePreview:
        """The first rows of the first file (Parquet or FITS HDU 1), for kedro-viz."""
        first = self.load()[0]
        if first.suffix == ".parquet":
            table = pd.read_parquet(first)
        else:
            with as_dataset_error():
                table = read_tables(first, 1)
        head = table.head(nrows)
        scalar = [c for c in head.columns if not head[c].map(np.ndim).any()][:12]
        return TablePreview(json.loads(head[scalar].to_json(orient="split", index=False)))
