"""Atomic variants of kedro-datasets' Parquet and JSON datasets.

kedro-datasets writes straight onto the destination, so a crash mid-write leaves a truncated
file that the next run would read. These subclasses write local files through
:func:`desi_abundances.io.atomic.atomic_write` (temporary file, fsync, rename); remote
protocols (s3, gcs, ...) keep the parent behaviour, since object stores publish an object only
once its upload completes.
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from desi_abundances.io.atomic import atomic_write


def _local_save_path(dataset: ParquetDataset | JSONDataset) -> str | None:
    """The local path a dataset saves to, or None for a remote protocol."""
    if dataset._protocol != "file":
        return None
    return get_filepath_str(dataset._get_save_path(), dataset._protocol)


class AtomicParquetDataset(ParquetDataset):
    """``pandas.ParquetDataset`` whose local saves are atomic. Same arguments."""

    def save(self, data: pd.DataFrame) -> None:
        path = _local_save_path(self)
        if path is None:
            super().save(data)
            return
        if "partition_cols" in self._save_args:
            raise DatasetError(
                f"{type(self).__name__} ({path}) does not support save argument 'partition_cols'"
            )
        with atomic_write(path) as tmp:
            data.to_parquet(tmp, **self._save_args)
        self._invalidate_cache()


class AtomicJSONDataset(JSONDataset):
    """``json.JSONDataset`` whose local saves are atomic. Same arguments."""

    def save(self, data: Any) -> None:
        path = _local_save_path(self)
        if path is None:
            super().save(data)
            return
        with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, **self._save_args)
        self._invalidate_cache()
