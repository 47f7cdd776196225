"""Which coadds (partition ids, by glob and HEALPix) and which rows of a coadd (science
targets whose FIBERMAP row is not garbled, those in the MWS catalogue) inference predicts."""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from desi_abundances.desi.fibermap import (
    SCIENCE_OBJTYPE,
    any_garbled,
    garbled_counts,
    garbled_rows,
    integer_values,
    objtype_codes,
)
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


def science_rows(coadd: Any) -> np.ndarray:
    """Rows of science targets: OBJTYPE TGT (stripped, any case) when the column exists."""
    if "OBJTYPE" not in coadd.fibermap.columns:
        return np.ones(coadd.n_spectra, dtype=bool)
    return objtype_codes(coadd.fibermap["OBJTYPE"]) == SCIENCE_OBJTYPE  # vectorised, no row loop


def fibermap_garbled(coadd: Any) -> dict[str, np.ndarray]:
    """``{column: mask}`` of the garbled FIBERMAP rows among the science targets
    (``desi.fibermap.garbled_rows``; OBJTYPE checked on every row)."""
    return garbled_rows(coadd.fibermap, science_rows(coadd))


def select_targets(coadd: Any, in_catalogue: np.ndarray, only_mws_catalogue: bool,
                   garbled: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Rows to predict: science targets (OBJTYPE TGT when the column exists) whose FIBERMAP
    row is not garbled (:func:`fibermap_garbled`, or ``garbled`` when given), and only
    those in the MWS catalogue when ``only_mws_catalogue``."""
    if garbled is None:
        garbled = fibermap_garbled(coadd)
    keep = science_rows(coadd) & ~any_garbled(garbled, coadd.n_spectra)
    if only_mws_catalogue:
        keep &= in_catalogue
    return np.flatnonzero(keep)


def target_outcomes(coadd: Any, in_catalogue: np.ndarray, vrad_kms: np.ndarray,
                    only_mws_catalogue: bool, garbled: Mapping[str, np.ndarray] | None = None,
                    ) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`select_targets` and why the other rows were not selected.

    Returns:
        ``(rows, counts)``: counts of ``spectra`` (rows of the coadd), ``garbled_fibermap``
        (rows skipped for a garbled value, and ``garbled_fibermap:<COLUMN>`` per column, see
        ``desi.fibermap``), among the others ``not_science_target`` (OBJTYPE not TGT: sky,
        standard or empty fibres), ``not_in_mws_catalogue`` (science targets the MWS
        catalogue does not hold, i.e. not an MWS star; left out when
        ``only_mws_catalogue``), ``selected``, and among the selected the ones kept but
        flagged: ``no_trusted_velocity`` (NO_RADIAL_VELOCITY) and ``bad_fibre``
        (COADD_FIBERSTATUS != 0, BAD_FIBERSTATUS).
    """
    if garbled is None:
        garbled = fibermap_garbled(coadd)
    clean = ~any_garbled(garbled, coadd.n_spectra)
    science = science_rows(coadd)
    rows = select_targets(coadd, in_catalogue, only_mws_catalogue, garbled)
    counts = {
        "spectra": int(coadd.n_spectra),
        "not_science_target": int((clean & ~science).sum()),
        "not_in_mws_catalogue": int((clean & science & ~np.asarray(in_catalogue, dtype=bool)).sum()),
        "selected": int(rows.size),
        "no_trusted_velocity": int((~np.isfinite(np.asarray(vrad_kms, dtype=float)[rows])).sum()),
        "bad_fibre": int((fiber_status(coadd.fibermap, rows) != 0).sum()),
    }
    counts.update(garbled_counts(garbled, coadd.n_spectra))
    return rows, counts


def fiber_status(fibermap: Any, rows: np.ndarray) -> np.ndarray:
    """COADD_FIBERSTATUS of ``rows`` as int32 (0 when the column is absent; the rows are
    never garbled, so the values are integers)."""
    if "COADD_FIBERSTATUS" not in fibermap.columns:
        return np.zeros(rows.size, dtype=np.int32)
    return integer_values(np.asarray(fibermap["COADD_FIBERSTATUS"])[rows])[0].astype(np.int32)
