"""Which healpix coadds a run needs, from the MWS catalogue's RVTAB (HEALPIX, SURVEY, PROGRAM).

* inference: every (SURVEY, PROGRAM, HEALPIX) of the catalogue (optionally only some programs);
* training: only those holding an APOGEE star: the MWS spectra whose Gaia (E)DR3 source_id
  (the catalogue's GAIA HDU, row-matched to RVTAB) is an APOGEE DR17 ``GAIAEDR3_SOURCE_ID``.
  A few thousand pixels instead of the whole release.

Paths are relative to the production's ``healpix/`` folder (``desi.naming.coadd_relative_path``).
"""
from __future__ import annotations

import fnmatch
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from desi_abundances.desi.naming import coadd_relative_path
from desi_abundances.desi.provenance import normalise_keys


def coadd_keys(rvtab: pd.DataFrame) -> pd.DataFrame:
    """Distinct (SURVEY, PROGRAM, HEALPIX) of an RVTAB, normalised, sorted."""
    keys = pd.DataFrame({
        "SURVEY": normalise_keys(rvtab["SURVEY"]),
        "PROGRAM": normalise_keys(rvtab["PROGRAM"]),
        "HEALPIX": np.asarray(rvtab["HEALPIX"], dtype=np.int64),
    })
    return keys.drop_duplicates().sort_values(["SURVEY", "PROGRAM", "HEALPIX"]).reset_index(drop=True)


def relative_paths(keys: pd.DataFrame, patterns: Sequence[str] | None = None) -> list[str]:
    """Coadd paths of (SURVEY, PROGRAM, HEALPIX) rows, kept when they match any shell glob of
    ``patterns`` (the partition globs of ``params:inference``, e.g. ``main/bright/*``)."""
    paths = [coadd_relative_path(s, p, h) for s, p, h in keys.itertuples(index=False)]
    if patterns:
        paths = [p for p in paths if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    return paths


def inference_coadds(rvtab: pd.DataFrame, patterns: Sequence[str] | None = None) -> list[str]:
    """Every coadd holding an MWS spectrum (see the module docstring)."""
    return relative_paths(coadd_keys(rvtab), patterns)


def training_coadds(rvtab: pd.DataFrame, gaia_source_id: Iterable[int], apogee_source_id: Iterable[int],
                    patterns: Sequence[str] | None = None) -> list[str]:
    """The coadds of the MWS spectra whose Gaia source_id (row-matched to ``rvtab``) is an
    APOGEE star's; ids <= 0 (none) never match."""
    gaia = np.asarray(gaia_source_id, dtype=np.int64)
    apogee = np.asarray(pd.Series(apogee_source_id).fillna(0), dtype=np.int64)
    if gaia.size != len(rvtab):
        raise ValueError(f"GAIA source ids ({gaia.size}) are not row-matched to RVTAB ({len(rvtab)})")
    keep = np.isin(gaia, apogee[apogee > 0]) & (gaia > 0)
    return relative_paths(coadd_keys(rvtab[keep]), patterns)
