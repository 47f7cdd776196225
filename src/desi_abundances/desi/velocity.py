"""The radial velocity to trust, from the MWS catalogue's RVTAB (RVSpecFit).

One rule for training (data_ingestion) and inference: VRAD (km/s) where RVSpecFit succeeded
(SUCCESS true), raised no warning (RVS_WARN == 0) and VRAD is finite; NaN otherwise. A
missing SUCCESS or RVS_WARN value (NaN, None, a masked entry) means *not* trusted.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

VELOCITY_COLUMNS = ("VRAD", "RVS_WARN", "SUCCESS")
"""RVTAB columns the rule reads."""


def _flag_true(values: Any) -> np.ndarray:
    """Booleans of a SUCCESS column: True only for true values; NaN/None/masked are False."""
    series = pd.Series(values)
    if series.dtype == bool:
        return series.to_numpy()
    if isinstance(series.dtype, pd.BooleanDtype):
        return series.fillna(False).to_numpy(dtype=bool)
    return series.map(lambda v: bool(v) if isinstance(v, (bool, np.bool_, int, np.integer))
                      else (bool(v) and np.isfinite(v)) if isinstance(v, (float, np.floating))
                      else False).to_numpy(dtype=bool)


def trusted_vrad(vrad: Any, rvs_warn: Any, success: Any) -> np.ndarray:
    """VRAD in km/s (float64) where SUCCESS, RVS_WARN == 0 and VRAD finite; else NaN."""
    vrad = pd.to_numeric(pd.Series(vrad), errors="coerce").to_numpy(dtype=np.float64)
    warn = pd.to_numeric(pd.Series(rvs_warn), errors="coerce").to_numpy(dtype=np.float64)
    good = (warn == 0) & _flag_true(success) & np.isfinite(vrad)
    return np.where(good, vrad, np.nan)


def trusted_vrad_kms(table: pd.DataFrame) -> np.ndarray:
    """:func:`trusted_vrad` of a table with VRAD, RVS_WARN and SUCCESS (e.g. RVTAB, or
    spectra joined to it); all NaN when a column is absent."""
    if not set(VELOCITY_COLUMNS) <= set(table.columns):
        return np.full(len(table), np.nan)
    return trusted_vrad(table["VRAD"], table["RVS_WARN"], table["SUCCESS"])
