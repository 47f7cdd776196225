"""Which coadds (partition ids, by glob and HEALPix) and which rows of a coadd (science
targets, those in the MWS catalogue) inference predicts."""
from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Sequence

import numpy as np

from desi_abundances.desi.naming import healpix_of_partition


def select_partitions(
    partition_ids: Iterable[str],
    patterns: Sequence[str] | None = None,
    healpix: Sequence[int] | None = None,
) -> list[str]:
    """The partition ids to process, sorted.

    Args:
        partition_ids: every partition of the coadd set (paths relative to its folder,
            without suffix, e.g. ``main/bright/100/10010/coadd-main-bright-10010``).
        patterns: keep ids matching any of these shell globs (``main/bright/*``); None = all.
        healpix: keep ids whose HEALPix number is in this list; None = all.
    """
    selected = sorted(partition_ids)
    if patterns:
        selected = [p for p in selected if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    if healpix:
        wanted = set(int(h) for h in healpix)
        selected = [p for p in selected if healpix_of_partition(p) in wanted]
    return selected


def select_targets(coadd: Any, in_catalogue: np.ndarray, only_mws_catalogue: bool) -> np.ndarray:
    """Rows to predict: science targets (OBJTYPE TGT when the column exists), and only those
    in the MWS catalogue when ``only_mws_catalogue``."""
    keep = np.ones(coadd.n_spectra, dtype=bool)
    if "OBJTYPE" in coadd.fibermap.columns:
        objtype = np.asarray(coadd.fibermap["OBJTYPE"], dtype=str)  # vectorised, no row loop
        keep &= np.char.lower(np.char.strip(objtype)) == "tgt"
    if only_mws_catalogue:
        keep &= in_catalogue
    return np.flatnonzero(keep)


def target_outcomes(coadd: Any, in_catalogue: np.ndarray, vrad_kms: np.ndarray,
                    only_mws_catalogue: bool) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`select_targets` and why the other rows were not selected.

    Returns:
        ``(rows, counts)``: counts of ``spectra`` (rows of the coadd), ``not_science_target``
        (OBJTYPE not TGT: sky, standard or empty fibres), ``not_in_mws_catalogue`` (science
        targets the MWS catalogue does not hold, i.e. not an MWS star; left out when
        ``only_mws_catalogue``), ``selected``, and among the selected the ones kept but
        flagged: ``no_trusted_velocity`` (NO_RADIAL_VELOCITY) and ``bad_fibre``
        (COADD_FIBERSTATUS != 0, BAD_FIBERSTATUS).
    """
    science = np.ones(coadd.n_spectra, dtype=bool)
    if "OBJTYPE" in coadd.fibermap.columns:
        objtype = np.asarray(coadd.fibermap["OBJTYPE"], dtype=str)  # vectorised, no row loop
        science = np.char.lower(np.char.strip(objtype)) == "tgt"
    rows = select_targets(coadd, in_catalogue, only_mws_catalogue)
    fiberstatus = (
        np.asarray(coadd.fibermap["COADD_FIBERSTATUS"])[rows]
        if "COADD_FIBERSTATUS" in coadd.fibermap.columns else np.zeros(rows.size)
    )
    counts = {
        "spectra": int(coadd.n_spectra),
        "not_science_target": int((~science).sum()),
        "not_in_mws_catalogue": int((science & ~np.asarray(in_catalogue, dtype=bool)).sum()),
        "selected": int(rows.size),
        "no_trusted_velocity": int((~np.isfinite(np.asarray(vrad_kms, dtype=float)[rows])).sum()),
        "bad_fibre": int((fiberstatus != 0).sum()),
    }
    return rows, counts
