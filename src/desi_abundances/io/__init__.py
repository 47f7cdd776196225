"""Kedro datasets of the project (I/O and validation only, no science).

* :class:`FitsTableDataset` (``io.fits_table``): FITS binary tables <-> DataFrames.
* :class:`DesiCoaddDataset` (``io.desi_coadd``): DESI coadd files <-> ``CoaddSpectra``.
* ``ProcessedSpectraDataset`` (``io.processed_spectra``), ``ModelBundleDataset``
  (``io.model_bundle``): imported lazily (owned by other modules).
* :func:`atomic_write` (``io.atomic``): every writer goes through it.
"""
from __future__ import annotations

import importlib
from typing import Any

from desi_abundances.io.atomic import atomic_write
from desi_abundances.io.desi_coadd import DesiCoaddDataset
from desi_abundances.io.fits_table import FitsReadError, FitsTableDataset

_LAZY = {
    "ProcessedSpectraDataset": "desi_abundances.io.processed_spectra",
    "ModelBundleDataset": "desi_abundances.io.model_bundle",
}

__all__ = ["atomic_write", "DesiCoaddDataset", "FitsReadError", "FitsTableDataset", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'desi_abundances.io' has no attribute {name!r}")
