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
