"""Science helpers of the data_ingestion pipeline. pandas/numpy/astropy only, no Kedro.

From raw survey products to the candidate training spectra:

* which FIBERMAP rows are usable stellar targets (:func:`stellar_target_mask`), never a
  garbled row (:func:`garbled_fibermap_rows`, counted by :func:`rejection_counts`);
* where a coadd comes from (:func:`coadd_provenance`: SURVEY, PROGRAM, HEALPIX, by the rule
  of :mod:`desi_abundances.desi.provenance`);
* the MWS value-added catalogue as one table keyed on (TARGETID, SURVEY, PROGRAM)
  (:func:`mws_table`) and its join onto the spectra (:func:`join_mws`);
* a coarse, generous pre-selection of the spectra that may have an APOGEE counterpart
  (:func:`near_apogee_mask`), so that the stacked file holds candidate training stars rather
  than a whole release (the crossmatch pipeline decides precisely);
* the radial velocity to trust (:func:`trusted_vrad_kms`, :mod:`desi_abundances.desi.velocity`,
  the rule inference uses too);
* stacking the selected spectra in bounded memory (:class:`CoaddStack`).

Angles in degrees, separations in arcsec, proper motions in mas/yr, velocities in km/s.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from desi_abundances.constants import ALL_LABEL_COLUMNS
from desi_abundances.desi.astrometry import propagate_positions
from desi_abundances.desi.fibermap import (
    any_garbled,
    garbled_counts,
    garbled_rows,
    integer_values,
    objtype_codes,
)
from desi_abundances.desi.provenance import ProvenanceError, normalise_keys
from desi_abundances.desi.provenance import coadd_provenance as _coadd_provenance
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

logger = logging.getLogger(__name__)

NO_GAIA_ID = -1
"""Value of GAIA_SOURCE_ID for spectra without a Gaia (E)DR3 counterpart."""

MWS_KEY_COLUMNS = ("TARGETID", "SURVEY", "PROGRAM")


class IngestionError(ValueError):
    """A raw survey product lacks what ingestion needs."""


def strip_strings(table: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``table`` with bytes decoded and surrounding blanks removed from text columns
    (FITS pads fixed-width strings)."""
    table = table.copy()
    for column in table.columns:
        dtype = table[column].dtype
        if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            table[column] = [
                value.decode("ascii", "replace").strip()
                if isinstance(value, bytes)
                else value.strip()
                if isinstance(value, str)
                else value
                for value in table[column]
            ]
    return table


def require_columns(table: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    """Raise :class:`IngestionError` naming ``where`` when ``table`` lacks any of ``columns``."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise IngestionError(f"{where} lacks column(s) {missing}")


def garbled_fibermap_rows(fibermap: pd.DataFrame, selection: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``{column: mask}`` of the garbled FIBERMAP rows (``desi.fibermap.garbled_rows``) among
    those the selection would use: OBJTYPE ``selection.objtype`` (all rows when null),
    with the configured ``target_bitmask_columns`` checked as integers."""
    objtype = selection.get("objtype")
    used = (objtype_codes(fibermap["OBJTYPE"]) == str(objtype).strip().upper()
            if objtype and "OBJTYPE" in fibermap.columns else None)
    return garbled_rows(fibermap, used, selection.get("target_bitmask_columns") or [])


def stellar_target_mask(fibermap: pd.DataFrame, selection: Mapping[str, Any], where: str,
                        garbled: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Boolean mask of the FIBERMAP rows that are usable stellar targets (never a garbled
    row: :func:`garbled_fibermap_rows`, or ``garbled`` when given).

    Args:
        fibermap: a coadd's FIBERMAP.
        selection: ``require_good_fiberstatus`` (COADD_FIBERSTATUS == 0), ``objtype``
            (e.g. ``TGT``; null skips), ``target_bitmask_columns`` (a row is kept when any
            of these bitmask columns is non-zero, e.g. ``[MWS_TARGET]``; empty keeps all).
        where: file name for error messages.
    """
    if garbled is None:
        garbled = garbled_fibermap_rows(fibermap, selection)
    keep = ~any_garbled(garbled, len(fibermap))
    if selection.get("require_good_fiberstatus", True):
        require_columns(fibermap, ["COADD_FIBERSTATUS"], f"{where} FIBERMAP")
        keep &= integer_values(fibermap["COADD_FIBERSTATUS"])[0] == 0
    objtype = selection.get("objtype")
    if objtype:
        require_columns(fibermap, ["OBJTYPE"], f"{where} FIBERMAP")
        values = strip_strings(fibermap[["OBJTYPE"]])["OBJTYPE"]
        keep &= (values == objtype).to_numpy()
    bitmask_columns = list(selection.get("target_bitmask_columns") or [])
    if bitmask_columns:
        present = [column for column in bitmask_columns if column in fibermap.columns]
        if not present:
            raise IngestionError(
                f"{where} FIBERMAP has none of the target bitmask columns {bitmask_columns}"
            )
        keep &= _targeted(fibermap, present)
    return keep


def _targeted(fibermap: pd.DataFrame, columns: Iterable[str]) -> np.ndarray:
    """Rows with any of the bitmask ``columns`` non-zero (a garbled value counts as zero)."""
    targeted = np.zeros(len(fibermap), dtype=bool)
    for column in columns:
        targeted |= integer_values(fibermap[column])[0] != 0
    return targeted


class CoaddSkipped(IngestionError):
    """One coadd cannot be used (e.g. a tile-based coadd naming no survey/program): skipped
    with this reason; the run goes on."""


def rejection_counts(fibermap: pd.DataFrame, selection: Mapping[str, Any],
                     garbled: Mapping[str, np.ndarray] | None = None) -> dict[str, int]:
    """Rows failing each criterion of :func:`stellar_target_mask` (a row may fail several):
    ``garbled_fibermap`` (and ``garbled_fibermap:<COLUMN>`` per column, see
    ``desi.fibermap``), then among the other rows ``bad_fibre`` (COADD_FIBERSTATUS != 0),
    ``not_science_target`` (OBJTYPE differs) and ``not_mws_target`` (every target bitmask
    column zero); criteria not configured count 0."""
    if garbled is None:
        garbled = garbled_fibermap_rows(fibermap, selection)
    clean = ~any_garbled(garbled, len(fibermap))
    counts = {"bad_fibre": 0, "not_science_target": 0, "not_mws_target": 0}
    if selection.get("require_good_fiberstatus", True) and "COADD_FIBERSTATUS" in fibermap.columns:
        status = integer_values(fibermap["COADD_FIBERSTATUS"])[0]
        counts["bad_fibre"] = int((clean & (status != 0)).sum())
    objtype = selection.get("objtype")
    if objtype and "OBJTYPE" in fibermap.columns:
        other = (strip_strings(fibermap[["OBJTYPE"]])["OBJTYPE"] != objtype).to_numpy()
        counts["not_science_target"] = int((clean & other).sum())
    present = [c for c in selection.get("target_bitmask_columns") or [] if c in fibermap.columns]
    if present:
        counts["not_mws_target"] = int((clean & ~_targeted(fibermap, present)).sum())
    counts.update(garbled_counts(garbled, len(fibermap)))
    return counts


def coadd_provenance(partition_id: str, header: Mapping[str, Any],
                     fibermap: pd.DataFrame | None = None) -> dict[str, Any]:
    """SURVEY, PROGRAM (lower case, stripped) and HEALPIX of one coadd, from its header
    (SURVEY, PROGRAM, HPXPIXEL) or else its file name, or for a tile-based coadd its FIBERMAP
    (``desi.provenance.coadd_provenance``; HEALPIX -1 for a tile-based coadd).

    Raises:
        CoaddSkipped: (an IngestionError) when nothing tells.
    """
    try:
        survey, program, healpix = _coadd_provenance(header, partition_id, fibermap)
    except ProvenanceError as exc:
        raise CoaddSkipped(str(exc)) from exc
    return {"SURVEY": survey, "PROGRAM": program, "HEALPIX": healpix}


def mws_table(mws_catalogue: Mapping[str, pd.DataFrame], rvtab_columns: Iterable[str]) -> pd.DataFrame:
    """One row per MWS spectrum: the key (TARGETID, SURVEY, PROGRAM), the requested RVTAB
    columns and ``GAIA_SOURCE_ID`` (the GAIA HDU's SOURCE_ID, row-matched; -1 when none).

    Args:
        mws_catalogue: ``{"RVTAB": ..., "GAIA": ..., ...}`` DataFrames (row-matched HDUs).
        rvtab_columns: RVTAB columns to keep (those absent are skipped with a warning).

    Raises:
        IngestionError: when RVTAB is missing or lacks the key, or GAIA is not row-matched.
    """
    if "RVTAB" not in mws_catalogue:
        raise IngestionError(f"MWS catalogue has no RVTAB HDU (got {sorted(mws_catalogue)})")
    rvtab = mws_catalogue["RVTAB"]
    require_columns(rvtab, MWS_KEY_COLUMNS, "MWS catalogue RVTAB")
    wanted = [c for c in rvtab_columns if c not in MWS_KEY_COLUMNS]
    absent = [c for c in wanted if c not in rvtab.columns]
    if absent:
        logger.warning("MWS catalogue RVTAB lacks %s; they will be missing downstream", absent)
    table = strip_strings(rvtab[list(MWS_KEY_COLUMNS) + [c for c in wanted if c in rvtab.columns]])
    table = table.reset_index(drop=True)
    for key in ("SURVEY", "PROGRAM"):  # joined on as the coadds' provenance is: lower case
        table[key] = normalise_keys(table[key])
    gaia = mws_catalogue.get("GAIA")
    if gaia is not None and "SOURCE_ID" in gaia.columns:
        if len(gaia) != len(rvtab):
            raise IngestionError(
                f"MWS catalogue GAIA has {len(gaia)} rows but RVTAB has {len(rvtab)}: "
                "the HDUs must be row-matched"
            )
        table["GAIA_SOURCE_ID"] = gaia_source_ids(gaia["SOURCE_ID"])
    else:
        logger.warning("MWS catalogue has no GAIA SOURCE_ID: GAIA_SOURCE_ID set to %d", NO_GAIA_ID)
        table["GAIA_SOURCE_ID"] = np.int64(NO_GAIA_ID)
    table["TARGETID"] = table["TARGETID"].astype(np.int64)
    n_before = len(table)
    table = table.drop_duplicates(subset=list(MWS_KEY_COLUMNS), keep="first")
    if len(table) < n_before:
        logger.warning(
            "MWS catalogue: %d rows repeat a (TARGETID, SURVEY, PROGRAM) key; first kept",
            n_before - len(table),
        )
    return table.reset_index(drop=True)


def gaia_source_ids(values: pd.Series) -> np.ndarray:
    """Gaia source ids as int64, -1 where missing, zero or negative.

    Ids reach 7e18, beyond float64's exact integers: integer columns are kept exact; a float
    column (a reader that turned masked ids into NaN) has already lost the last digits.
    """
    series = pd.Series(values)
    if pd.api.types.is_integer_dtype(series.dtype) and not series.isna().any():
        ids = series.to_numpy().astype(np.int64)
    else:
        ids = np.array(
            [NO_GAIA_ID if value is None or pd.isna(value) else int(value) for value in series],
            dtype=np.int64,
        )
    return np.where(ids > 0, ids, NO_GAIA_ID).astype(np.int64)


def mws_keys(mws: pd.DataFrame) -> pd.MultiIndex:
    """The (TARGETID, SURVEY, PROGRAM) index of an MWS table; build once, join many times."""
    return pd.MultiIndex.from_frame(mws[list(MWS_KEY_COLUMNS)])


def join_mws(spectra: pd.DataFrame, mws: pd.DataFrame, keys: pd.MultiIndex | None = None) -> pd.DataFrame:
    """Left-join the MWS table onto per-spectrum rows on (TARGETID, SURVEY, PROGRAM), keeping
    the row order. Spectra without an MWS row get NaN (floats and integers), False (booleans)
    and GAIA_SOURCE_ID -1; Gaia ids stay exact int64. ``keys``: ``mws_keys(mws)``, prebuilt."""
    require_columns(spectra, MWS_KEY_COLUMNS, "spectra table")
    mws_index = keys if keys is not None else mws_keys(mws)
    spectra_keys = pd.MultiIndex.from_frame(spectra[list(MWS_KEY_COLUMNS)])
    row = mws_index.get_indexer(spectra_keys)
    found = row >= 0
    joined = spectra.copy()
    for column in mws.columns:
        if column in MWS_KEY_COLUMNS:
            continue
        values = mws[column].to_numpy()[np.where(found, row, 0)] if len(mws) else None
        if column == "GAIA_SOURCE_ID":
            joined[column] = (
                np.where(found, values, NO_GAIA_ID).astype(np.int64)
                if values is not None
                else np.full(len(spectra), NO_GAIA_ID, dtype=np.int64)
            )
        elif values is None:
            joined[column] = np.nan
        elif values.dtype == bool:
            joined[column] = found & values
        elif values.dtype.kind in "iuf":
            joined[column] = np.where(found, values.astype(float), np.nan)
        else:
            joined[column] = np.where(found, values, None)
    return joined


class ApogeeNeighbours:
    """APOGEE positions and Gaia ids, indexed once, for the coarse pre-selection of spectra
    (the sky KD-tree is built on the first query and reused for every coadd)."""

    def __init__(self, apogee: pd.DataFrame):
        self.n_stars = len(apogee)
        ids = (
            gaia_source_ids(apogee["GAIAEDR3_SOURCE_ID"])
            if "GAIAEDR3_SOURCE_ID" in apogee.columns
            else np.zeros(0, dtype=np.int64)
        )
        self.gaia_ids = np.unique(ids[ids > 0])
        self.sky = (
            SkyCoord(apogee["RA"].to_numpy(dtype=float) * u.deg, apogee["DEC"].to_numpy(dtype=float) * u.deg)
            if self.n_stars
            else None
        )

    def near(self, spectra: pd.DataFrame, radius_arcsec: float | None, apogee_epoch_yr: float) -> np.ndarray:
        """True for spectra with a Gaia id in common with APOGEE (REF_ID or GAIA_SOURCE_ID
        equal to GAIAEDR3_SOURCE_ID) or an APOGEE star within ``radius_arcsec`` once the DESI
        position is moved to the APOGEE epoch. ``radius_arcsec`` None keeps all."""
        if radius_arcsec is None:
            return np.ones(len(spectra), dtype=bool)
        if len(spectra) == 0 or self.sky is None:
            return np.zeros(len(spectra), dtype=bool)
        keep = np.zeros(len(spectra), dtype=bool)
        for column in ("GAIA_SOURCE_ID", "REF_ID"):
            if column in spectra.columns:
                ids = gaia_source_ids(spectra[column])
                keep |= (ids > 0) & np.isin(ids, self.gaia_ids)
        nan = np.full(len(spectra), np.nan)
        ra, dec = propagate_positions(
            spectra["TARGET_RA"].to_numpy(dtype=float),
            spectra["TARGET_DEC"].to_numpy(dtype=float),
            spectra["PMRA"].to_numpy(dtype=float) if "PMRA" in spectra else nan,
            spectra["PMDEC"].to_numpy(dtype=float) if "PMDEC" in spectra else nan,
            spectra["REF_EPOCH"].to_numpy(dtype=float) if "REF_EPOCH" in spectra else nan,
            apogee_epoch_yr,
        )
        _, separation, _ = SkyCoord(ra * u.deg, dec * u.deg).match_to_catalog_sky(self.sky)
        return keep | (separation.arcsec <= radius_arcsec)


def near_apogee_mask(
    spectra: pd.DataFrame,
    apogee: pd.DataFrame | ApogeeNeighbours,
    radius_arcsec: float | None,
    apogee_epoch_yr: float,
) -> np.ndarray:
    """Coarse pre-selection (see :meth:`ApogeeNeighbours.near`); ``apogee`` an allStar-like
    table or a prebuilt :class:`ApogeeNeighbours`."""
    index = apogee if isinstance(apogee, ApogeeNeighbours) else ApogeeNeighbours(apogee)
    return index.near(spectra, radius_arcsec, apogee_epoch_yr)


def apogee_columns(elements: Iterable[str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The allStar columns used downstream: identity, position and astrometry, quality
    bitmasks, and every label with its error and flag (TEFF, LOGG, FE_H, <X>_FE)."""
    columns = [
        "APOGEE_ID", "TELESCOPE", "FIELD", "RA", "DEC",
        "GAIAEDR3_SOURCE_ID", "GAIAEDR3_PMRA", "GAIAEDR3_PMDEC", "GAIAEDR3_PARALLAX",
        "SNR", "STARFLAG", "ASPCAPFLAG", "EXTRATARG", "VHELIO_AVG", "VSCATTER",
    ]
    labels = (
        list(ALL_LABEL_COLUMNS)
        if elements is None
        else ["TEFF", "LOGG", "FE_H"] + [f"{el}_FE" for el in elements]
    )
    for label in labels:
        columns += [label, f"{label}_ERR"]
        if label not in ("TEFF", "LOGG"):
            columns.append(f"{label}_FLAG")
    columns += [c for c in extra if c not in columns]
    return columns


class CoaddStack:
    """Stacks the selected spectra of many coadds into one :class:`CoaddSpectra` with a
    peak memory of about the stack plus one array (``CoaddSpectra.concatenate`` needs twice
    the stack): each array is concatenated in turn and its pieces released at once.

    FIBERMAP and SCORES keep the columns common to every part (surveys differ in their
    targeting columns); EXP_FIBERMAP is dropped.
    """

    _FIELDS = ("flux", "ivar", "mask", "resolution")

    def __init__(self) -> None:
        self._pieces: dict[tuple[str, str], list[np.ndarray | None]] = {}
        self._wavelength: dict[str, np.ndarray] = {}
        self._fibermaps: list[pd.DataFrame] = []
        self._scores: list[pd.DataFrame | None] = []

    def __len__(self) -> int:
        return sum(len(f) for f in self._fibermaps)

    def add(self, coadd: CoaddSpectra, where: str) -> None:
        """Append the spectra of ``coadd`` (named ``where`` in errors)."""
        if self._wavelength and set(coadd.arms) != set(self._wavelength):
            raise IngestionError(f"{where}: arms {sorted(coadd.arms)} differ from {sorted(self._wavelength)}")
        for arm, data in coadd.arms.items():
            reference = self._wavelength.setdefault(arm, data.wavelength)
            if not np.array_equal(reference, data.wavelength):
                raise IngestionError(f"{where}: {arm}_WAVELENGTH differs from the first coadd's")
            for name in self._FIELDS:
                self._pieces.setdefault((arm, name), []).append(getattr(data, name))
        self._fibermaps.append(coadd.fibermap)
        self._scores.append(coadd.scores)

    def build(self, header: dict[str, Any]) -> CoaddSpectra:
        """The stack (the pieces are released; ``add`` no more after this)."""
        if not self._fibermaps:
            raise IngestionError("nothing to stack")
        common = [c for c in self._fibermaps[0].columns if all(c in f.columns for f in self._fibermaps)]
        fibermap = pd.concat([f[common] for f in self._fibermaps], ignore_index=True)
        scores = None
        if all(s is not None for s in self._scores):
            shared = [c for c in self._scores[0].columns if all(c in s.columns for s in self._scores)]
            scores = pd.concat([s[shared] for s in self._scores], ignore_index=True)
        arms = {}
        for arm, wavelength in self._wavelength.items():
            arrays = {}
            for name in self._FIELDS:
                pieces = self._pieces.pop((arm, name))
                arrays[name] = None if any(p is None for p in pieces) else np.concatenate(pieces)
                del pieces
            arms[arm] = ArmSpectra(wavelength=wavelength, **arrays)
        self._fibermaps, self._scores = [], []
        return CoaddSpectra(arms=arms, fibermap=fibermap, header=dict(header), scores=scores)
