"""Atomic variants of kedro-datasets' Parquet and JSON datasets.

kedro-datasets writes straight onto the destination, so a crash mid-write leaves a truncated
file that the next run would read. These subclasses write local, unversioned files through
:func:`desi_abundances.io.atomic.atomic_write` (temporary file, fsync, rename); remote
protocols (s3, gcs, ...) keep the parent behaviour, since object stores publish an object only
once its upload completes, and so do versioned datasets (whose path kedro picks per save).
Only public API: the save path and arguments come from the constructor's own arguments.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import DatasetError
from kedro.io.core import get_protocol_and_path
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from desi_abundances.io.atomic import atomic_write


def local_save_path(filepath: str | Path, version: Any) -> Path | None:
    """The local path an unversioned dataset saves to, or None (remote protocol, versioned)."""
    protocol, path = get_protocol_and_path(str(filepath), version)
    if protocol != "file" or version is not None:
        return None
    return Path(path)


class AtomicParquetDataset(ParquetDataset):
    """``pandas.ParquetDataset`` whose local saves are atomic. Same arguments."""

    def __init__(self, *, filepath: str, save_args: dict[str, Any] | None = None,
                 version: Any = None, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, save_args=save_args, version=version, **kwargs)
        self._atomic_path = local_save_path(filepath, version)
        self._atomic_save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}

    def save(self, data: pd.DataFrame) -> None:
        path = self._atomic_path
        if path is None:
            super().save(data)
            return
        if "partition_cols" in self._atomic_save_args:
            raise DatasetError(
                f"{type(self).__name__} ({path}) does not support save argument 'partition_cols'"
            )
        # a local file system keeps no listing cache, so there is no cache to invalidate
        with atomic_write(path) as tmp:
            data.to_parquet(tmp, **self._atomic_save_args)


class AtomicJSONDataset(JSONDataset):
    """``json.JSONDataset`` whose local saves are atomic. Same arguments."""

    def __init__(self, *, filepath: str, save_args: dict[str, Any] | None = None,
                 version: Any = None, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, save_args=save_args, version=version, **kwargs)
        self._atomic_path = local_save_path(filepath, version)
        self._atomic_save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}

    def save(self, data: Any) -> None:
        path = self._atomic_path
        if path is None:
            super().save(data)
            return
        with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, **self._atomic_save_args)
