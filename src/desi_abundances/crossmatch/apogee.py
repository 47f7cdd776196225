"""Science of the crossmatch pipeline: APOGEE DR17 quality cuts and the DESI x APOGEE match.
pandas/numpy/astropy only, no Kedro.

Matching, in order:

1. by Gaia id: the DESI spectrum's EDR3/DR3 id (``GAIA_SOURCE_ID`` from the MWS GAIA HDU)
   against APOGEE's ``GAIAEDR3_SOURCE_ID``; then, for spectra without an EDR3 id, the DESI
   ``REF_ID`` (Gaia DR2, unchanged in EDR3 for most bright stars). An id match is kept only
   when the two positions, moved to a common epoch, agree within ``gaia_id_max_sep_arcsec``
   (guards against a DR2 id re-used for another star in EDR3);
2. by position for the rest, with astropy's ``match_to_catalog_sky`` within
   ``match_radius_arcsec``, after bringing both catalogues to one epoch: DESI TARGET_RA/DEC
   (at REF_EPOCH, usually 2015.5) are moved back to the APOGEE epoch (``apogee_epoch_yr``,
   2MASS positions ~ 2000) with DESI's PMRA/PMDEC; for DESI spectra without astrometry the
   APOGEE positions are moved forward to ``common_epoch_yr`` with the Gaia EDR3 proper motions
   of allStar instead. A pair whose EDR3 ids are both known and differ is two different stars
   and is refused;
3. one DESI spectrum per APOGEE star (MWS PRIMARY first, then highest S/N, then closest) and
   one APOGEE star per DESI target.

APOGEE rows flagged EXTRATARG DUPLICATE are dropped before matching; the quality cuts are
applied after matching, so that a star failing them cannot hand its DESI spectrum to a
neighbour. Angles in degrees, separations in arcsec, proper motions in mas/yr.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from desi_abundances.desi.astrometry import propagate_positions
from desi_abundances.ingestion import NO_GAIA_ID, gaia_source_ids
from desi_abundances.labels.apogee import (
    DEFAULT_CUTS,
    is_duplicate,
    label_columns,
    passes_quality_cuts,
    quality_cut_masks,
    require_columns,
    sequential_counts,
)

logger = logging.getLogger(__name__)

GAIA_ID = "gaia_id"
POSITION = "position"

class CrossmatchError(ValueError):
    """An input table lacks what the crossmatch needs."""


def _require(table: pd.DataFrame, columns: list[str], where: str) -> None:
    require_columns(table, columns, where, error=CrossmatchError)


def has_astrometry(spectra: pd.DataFrame) -> np.ndarray:
    """True for DESI rows with finite PMRA, PMDEC and a REF_EPOCH > 0."""
    if not {"PMRA", "PMDEC", "REF_EPOCH"} <= set(spectra.columns):
        return np.zeros(len(spectra), dtype=bool)
    pmra = spectra["PMRA"].to_numpy(dtype=float)
    pmdec = spectra["PMDEC"].to_numpy(dtype=float)
    epoch = spectra["REF_EPOCH"].to_numpy(dtype=float)
    return np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(epoch) & (epoch > 0)


class EpochFrames:
    """Positions of both catalogues brought to a common epoch, pair by pair.

    DESI rows with astrometry are moved to ``apogee_epoch_yr`` and compared with APOGEE's
    native positions; the other DESI rows stay where they are (taken to be at
    ``desi_epoch_yr``) and are compared with APOGEE positions moved to ``desi_epoch_yr`` with
    the Gaia EDR3 proper motions of allStar (APOGEE rows without motion stay put).
    """

    def __init__(self, spectra: pd.DataFrame, stars: pd.DataFrame, apogee_epoch_yr: float, desi_epoch_yr: float):
        _require(spectra, ["TARGET_RA", "TARGET_DEC"], "spectra_metadata")
        _require(stars, ["RA", "DEC"], "APOGEE table")
        self.desi_moves = has_astrometry(spectra)
        nan = np.full(len(spectra), np.nan)
        self.desi = propagate_positions(
            spectra["TARGET_RA"].to_numpy(dtype=float),
            spectra["TARGET_DEC"].to_numpy(dtype=float),
            spectra["PMRA"].to_numpy(dtype=float) if "PMRA" in spectra else nan,
            spectra["PMDEC"].to_numpy(dtype=float) if "PMDEC" in spectra else nan,
            np.where(self.desi_moves, spectra["REF_EPOCH"].to_numpy(dtype=float) if "REF_EPOCH" in spectra else nan, np.nan),
            apogee_epoch_yr,
        )
        self.apogee_native = (stars["RA"].to_numpy(dtype=float), stars["DEC"].to_numpy(dtype=float))
        nan = np.full(len(stars), np.nan)
        self.apogee_moved = propagate_positions(
            *self.apogee_native,
            stars["GAIAEDR3_PMRA"].to_numpy(dtype=float) if "GAIAEDR3_PMRA" in stars else nan,
            stars["GAIAEDR3_PMDEC"].to_numpy(dtype=float) if "GAIAEDR3_PMDEC" in stars else nan,
            apogee_epoch_yr,
            desi_epoch_yr,
        )

    def apogee_for(self, desi_rows: np.ndarray, apogee_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """APOGEE positions to compare with each DESI row of a pair."""
        moves = self.desi_moves[desi_rows]
        ra = np.where(moves, self.apogee_native[0][apogee_rows], self.apogee_moved[0][apogee_rows])
        dec = np.where(moves, self.apogee_native[1][apogee_rows], self.apogee_moved[1][apogee_rows])
        return ra, dec

    def separation_arcsec(self, desi_rows: np.ndarray, apogee_rows: np.ndarray) -> np.ndarray:
        """Separation of each (DESI row, APOGEE row) pair at their common epoch, arcsec."""
        ra, dec = self.apogee_for(desi_rows, apogee_rows)
        return _separation_arcsec(self.desi[0][desi_rows], self.desi[1][desi_rows], ra, dec)

    def nearest(self, desi_rows: np.ndarray, apogee_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``desi_rows``, the nearest of ``apogee_rows`` and its separation."""
        nearest = np.zeros(len(desi_rows), dtype=np.int64)
        sep = np.full(len(desi_rows), np.inf)
        if len(desi_rows) == 0 or len(apogee_rows) == 0:
            return nearest, sep
        for moves, apogee in ((True, self.apogee_native), (False, self.apogee_moved)):
            subset = self.desi_moves[desi_rows] == moves
            if not subset.any():
                continue
            rows = desi_rows[subset]
            desi = SkyCoord(self.desi[0][rows] * u.deg, self.desi[1][rows] * u.deg)
            catalogue = SkyCoord(apogee[0][apogee_rows] * u.deg, apogee[1][apogee_rows] * u.deg)
            index, separation, _ = desi.match_to_catalog_sky(catalogue)
            nearest[subset] = apogee_rows[index]
            sep[subset] = separation.arcsec
        return nearest, sep


def _separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    if len(ra1) == 0:
        return np.zeros(0)
    return (
        SkyCoord(ra1 * u.deg, dec1 * u.deg)
        .separation(SkyCoord(ra2 * u.deg, dec2 * u.deg))
        .arcsec
    )


def _candidates(desi_row: np.ndarray, apogee_row: np.ndarray, sep: np.ndarray, method: str, key: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "desi_row": desi_row.astype(np.int64),
            "apogee_row": apogee_row.astype(np.int64),
            "sep_arcsec": sep.astype(float),
            "match_method": method,
            "match_key": key,
        }
    )


def match_by_gaia_id(
    spectra: pd.DataFrame,
    stars: pd.DataFrame,
    frames: EpochFrames,
    max_sep_arcsec: float,
) -> tuple[pd.DataFrame, int]:
    """Candidate pairs sharing a Gaia id: EDR3 GAIA_SOURCE_ID first, DR2 REF_ID for spectra
    without an EDR3 id.

    Returns:
        (candidates with desi_row, apogee_row, sep_arcsec, match_method, match_key in
        {"edr3", "dr2"}; number of id matches refused for a separation above
        ``max_sep_arcsec``).
    """
    if "GAIAEDR3_SOURCE_ID" not in stars.columns or len(spectra) == 0 or len(stars) == 0:
        return _candidates(*(np.zeros(0),) * 3, GAIA_ID, "edr3"), 0
    apogee_ids = pd.DataFrame(
        {"gaia_id": gaia_source_ids(stars["GAIAEDR3_SOURCE_ID"]), "apogee_row": np.arange(len(stars))}
    )
    apogee_ids = apogee_ids[apogee_ids["gaia_id"] > 0]
    edr3 = (
        gaia_source_ids(spectra["GAIA_SOURCE_ID"])
        if "GAIA_SOURCE_ID" in spectra
        else np.full(len(spectra), NO_GAIA_ID, dtype=np.int64)
    )
    dr2 = (
        gaia_source_ids(spectra["REF_ID"])
        if "REF_ID" in spectra
        else np.full(len(spectra), NO_GAIA_ID, dtype=np.int64)
    )
    if "REF_CAT" in spectra:
        ref_cat = spectra["REF_CAT"].astype(str).str.strip().str.upper()
        dr2 = np.where(ref_cat.str.startswith("G").to_numpy(), dr2, NO_GAIA_ID)
    dr2 = np.where(edr3 > 0, NO_GAIA_ID, dr2)  # an EDR3 id, when known, is the only key
    parts, n_refused = [], 0
    for key, ids in (("edr3", edr3), ("dr2", dr2)):
        desi_ids = pd.DataFrame({"gaia_id": ids, "desi_row": np.arange(len(spectra))})
        pairs = desi_ids[desi_ids["gaia_id"] > 0].merge(apogee_ids, on="gaia_id")
        d, a = pairs["desi_row"].to_numpy(), pairs["apogee_row"].to_numpy()
        sep = frames.separation_arcsec(d, a)
        close = sep <= max_sep_arcsec
        n_refused += int((~close).sum())
        parts.append(_candidates(d[close], a[close], sep[close], GAIA_ID, key))
    return pd.concat(parts, ignore_index=True), n_refused


def match_by_position(
    spectra: pd.DataFrame,
    stars: pd.DataFrame,
    frames: EpochFrames,
    radius_arcsec: float,
    desi_rows: np.ndarray,
    apogee_rows: np.ndarray,
) -> tuple[pd.DataFrame, int]:
    """Nearest APOGEE star (among ``apogee_rows``) of each DESI spectrum (among ``desi_rows``)
    within ``radius_arcsec``, positions at a common epoch (:class:`EpochFrames`).

    Returns:
        (candidates, number refused because both EDR3 ids are known and differ).
    """
    if len(desi_rows) == 0 or len(apogee_rows) == 0:
        return _candidates(*(np.zeros(0),) * 3, POSITION, "sky"), 0
    nearest, sep = frames.nearest(desi_rows, apogee_rows)
    within = sep <= radius_arcsec
    d, a, sep = desi_rows[within], nearest[within], sep[within]
    desi_ids = (
        gaia_source_ids(spectra["GAIA_SOURCE_ID"])[d]
        if "GAIA_SOURCE_ID" in spectra
        else np.full(len(d), NO_GAIA_ID)
    )
    apogee_ids = (
        gaia_source_ids(stars["GAIAEDR3_SOURCE_ID"])[a]
        if "GAIAEDR3_SOURCE_ID" in stars
        else np.full(len(a), NO_GAIA_ID)
    )
    conflict = (desi_ids > 0) & (apogee_ids > 0) & (desi_ids != apogee_ids)
    keep = ~conflict
    return _candidates(d[keep], a[keep], sep[keep], POSITION, "sky"), int(conflict.sum())


def one_per_star(
    candidates: pd.DataFrame, spectra: pd.DataFrame, apogee_ids: np.ndarray | None = None
) -> pd.DataFrame:
    """Keep one DESI spectrum per APOGEE star (MWS PRIMARY first, then highest snr, then
    smallest separation) and then one APOGEE star per DESI TARGETID (smallest separation).

    A star is an APOGEE row or, when ``apogee_ids`` (APOGEE_ID of each row) is given, an
    APOGEE_ID: two rows of one star not flagged as duplicates still give one pair."""
    if candidates.empty:
        return candidates.assign(TARGETID=np.zeros(0, dtype=np.int64))
    ranked = candidates.copy()
    rows = ranked["desi_row"].to_numpy()
    ranked["TARGETID"] = spectra["TARGETID"].to_numpy().astype(np.int64)[rows]
    ranked["_primary"] = (
        spectra["PRIMARY"].fillna(False).to_numpy().astype(bool)[rows]
        if "PRIMARY" in spectra
        else False
    )
    ranked["_snr"] = spectra["snr"].to_numpy(dtype=float)[rows] if "snr" in spectra else 0.0
    ranked = ranked.sort_values(
        ["_primary", "_snr", "sep_arcsec", "desi_row"], ascending=[False, False, True, True], kind="mergesort"
    )
    ranked = ranked.drop_duplicates("apogee_row", keep="first")
    if apogee_ids is not None:
        ranked["_apogee_id"] = np.asarray(apogee_ids)[ranked["apogee_row"].to_numpy()]
        ranked = ranked.drop_duplicates("_apogee_id", keep="first").drop(columns=["_apogee_id"])
    ranked = ranked.sort_values(["sep_arcsec", "apogee_row"], kind="mergesort")
    ranked = ranked.drop_duplicates("TARGETID", keep="first")
    return ranked.drop(columns=["_primary", "_snr"]).sort_values("desi_row").reset_index(drop=True)


def match_spectra_to_apogee(
    spectra: pd.DataFrame, stars: pd.DataFrame, settings: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Match DESI spectra to APOGEE rows: Gaia id first, then position, one-to-one.

    Args:
        spectra: ``spectra_metadata`` (TARGETID, TARGET_RA/DEC, PMRA, PMDEC, REF_EPOCH,
            REF_ID, REF_CAT, GAIA_SOURCE_ID, snr, PRIMARY when known).
        stars: APOGEE rows to match against (duplicates already dropped).
        settings: ``match_radius_arcsec``, ``gaia_id_max_sep_arcsec``, ``apogee_epoch_yr``,
            ``common_epoch_yr`` (epoch assumed for DESI positions without astrometry), ``use_gaia_id`` (default True), ``use_position`` (True).

    Returns:
        (pairs: desi_row, apogee_row, TARGETID, sep_arcsec, match_method, match_key;
        counts of each stage).
    """
    _require(spectra, ["TARGETID"], "spectra_metadata")
    frames = EpochFrames(
        spectra,
        stars,
        apogee_epoch_yr=float(settings.get("apogee_epoch_yr", 2000.0)),
        desi_epoch_yr=float(settings.get("common_epoch_yr", 2015.5)),
    )
    counts: dict[str, int] = {}
    if settings.get("use_gaia_id", True):
        by_id, refused = match_by_gaia_id(
            spectra, stars, frames, float(settings.get("gaia_id_max_sep_arcsec", 3.0))
        )
    else:
        by_id, refused = _candidates(*(np.zeros(0),) * 3, GAIA_ID, "edr3"), 0
    counts["gaia_id_edr3_pairs"] = int((by_id["match_key"] == "edr3").sum())
    counts["gaia_id_dr2_pairs"] = int((by_id["match_key"] == "dr2").sum())
    counts["gaia_id_refused_separation"] = refused
    matched_targets = set(spectra["TARGETID"].to_numpy()[by_id["desi_row"].to_numpy()])
    desi_left = np.flatnonzero(~spectra["TARGETID"].isin(matched_targets).to_numpy())
    apogee_left = np.setdiff1d(np.arange(len(stars)), by_id["apogee_row"].to_numpy())
    if settings.get("use_position", True):
        by_position, conflicts = match_by_position(
            spectra, stars, frames,
            float(settings.get("match_radius_arcsec", 1.0)), desi_left, apogee_left,
        )
    else:
        by_position, conflicts = _candidates(*(np.zeros(0),) * 3, POSITION, "sky"), 0
    counts["position_pairs"] = len(by_position)
    counts["position_refused_conflicting_gaia_id"] = conflicts
    apogee_ids = stars["APOGEE_ID"].to_numpy() if "APOGEE_ID" in stars else None
    pairs = one_per_star(pd.concat([by_id, by_position], ignore_index=True), spectra, apogee_ids)
    counts["one_per_star"] = len(pairs)
    counts["one_per_star_gaia_id"] = int((pairs["match_method"] == GAIA_ID).sum())
    counts["one_per_star_position"] = int((pairs["match_method"] == POSITION).sum())
    return pairs, counts


SPECTRUM_EXTRA_COLUMNS = ("SURVEY", "PROGRAM", "HEALPIX", "vrad_kms", "GAIA_SOURCE_ID", "REF_ID")
APOGEE_EXTRA_COLUMNS = ("TELESCOPE", "SNR", "VSCATTER", "ASPCAPFLAG", "STARFLAG", "GAIAEDR3_SOURCE_ID")


def crossmatch_table(pairs: pd.DataFrame, spectra: pd.DataFrame, stars: pd.DataFrame) -> pd.DataFrame:
    """The ``crossmatch`` table: TARGETID, APOGEE_ID, sep_arcsec, match_method, snr, the labels
    with errors and flags, then ``stacked_row`` (row of the spectrum in stacked_spectra and
    spectra_metadata) and provenance (SURVEY, PROGRAM, HEALPIX, vrad_kms, Gaia ids, APOGEE
    SNR renamed APOGEE_SNR, VSCATTER, ASPCAPFLAG, STARFLAG, TELESCOPE)."""
    d, a = pairs["desi_row"].to_numpy(), pairs["apogee_row"].to_numpy()
    table = pd.DataFrame(
        {
            "TARGETID": spectra["TARGETID"].to_numpy().astype(np.int64)[d],
            "APOGEE_ID": stars["APOGEE_ID"].to_numpy()[a],
            "sep_arcsec": pairs["sep_arcsec"].to_numpy(dtype=float),
            "match_method": pairs["match_method"].to_numpy().astype(str),
            "snr": spectra["snr"].to_numpy(dtype=np.float32)[d] if "snr" in spectra else np.nan,
        }
    )
    for column in label_columns(stars):
        table[column] = stars[column].to_numpy()[a]
    table["stacked_row"] = d.astype(np.int64)
    for column in SPECTRUM_EXTRA_COLUMNS:
        if column in spectra.columns:
            table[column] = spectra[column].to_numpy()[d]
    for column in APOGEE_EXTRA_COLUMNS:
        if column in stars.columns:
            table["APOGEE_SNR" if column == "SNR" else column] = stars[column].to_numpy()[a]
    return table


def crossmatch(
    spectra: pd.DataFrame, stars: pd.DataFrame, params: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The whole crossmatch: drop duplicates, match, apply the quality cuts, build the table.

    Args:
        spectra: ``spectra_metadata``.
        stars: ``apogee_stars``.
        params: ``params:crossmatch`` (``apogee_cuts`` and the matching settings of
            :func:`match_spectra_to_apogee`).

    Returns:
        (the ``crossmatch`` table, a JSON-able report of the counts after every step).
    """
    _require(stars, ["APOGEE_ID", "RA", "DEC"], "APOGEE table")
    cuts = {**DEFAULT_CUTS, **dict(params.get("apogee_cuts", {}))}
    masks = quality_cut_masks(stars, cuts)
    duplicate = is_duplicate(stars) if cuts["drop_duplicates"] else np.zeros(len(stars), dtype=bool)
    apogee_steps = {"extratarg_duplicate": ~duplicate, **masks}
    report: dict[str, Any] = {
        "apogee_cuts": sequential_counts(len(stars), apogee_steps, "allstar_rows"),
        "desi": {
            "spectra": int(len(spectra)),
            "targets": int(spectra["TARGETID"].nunique()),
            "with_edr3_id": int((gaia_source_ids(spectra["GAIA_SOURCE_ID"]) > 0).sum())
            if "GAIA_SOURCE_ID" in spectra
            else 0,
        },
    }
    candidate_rows = np.flatnonzero(~duplicate)
    candidates = stars.iloc[candidate_rows].reset_index(drop=True)
    pairs, match_counts = match_spectra_to_apogee(spectra, candidates, params)
    pairs["apogee_row"] = candidate_rows[pairs["apogee_row"].to_numpy()]
    report["matching"] = match_counts
    matched_masks = {name: mask[pairs["apogee_row"].to_numpy()] for name, mask in masks.items()}
    report["matched_after_cuts"] = sequential_counts(len(pairs), matched_masks, "matched_pairs")
    passing = np.ones(len(pairs), dtype=bool)
    for mask in matched_masks.values():
        passing &= mask
    table = crossmatch_table(pairs[passing].reset_index(drop=True), spectra, stars)
    report["final"] = {
        "pairs": int(len(table)),
        "by_method": {m: int((table["match_method"] == m).sum()) for m in (GAIA_ID, POSITION)},
        "unique_targetid": int(table["TARGETID"].nunique()),
        "unique_apogee_id": int(table["APOGEE_ID"].nunique()),
        "median_sep_arcsec": float(np.median(table["sep_arcsec"])) if len(table) else None,
        "max_sep_arcsec": float(np.max(table["sep_arcsec"])) if len(table) else None,
    }
    return table, report


def compare_with_truth(
    matched: pd.DataFrame,
    truth_pairs: pd.DataFrame,
    spectra: pd.DataFrame,
    stars: pd.DataFrame,
    cuts: Mapping[str, Any],
) -> dict[str, Any]:
    """Score a crossmatch against known true pairs (the mock survey's ground truth).

    Args:
        matched: the ``crossmatch`` table (TARGETID, APOGEE_ID).
        truth_pairs: true (TARGETID, APOGEE_ID) pairs, one row per DESI target of a star.
        spectra: ``spectra_metadata`` (the ingested spectra).
        stars: ``apogee_stars``.
        cuts: the APOGEE quality cuts (``params:crossmatch.apogee_cuts``).

    Returns:
        ``expected`` (APOGEE stars with a true pair whose DESI target was ingested and whose
        APOGEE row passes the cuts), ``recovered`` (matched to one of their true targets),
        ``recovery`` (fraction), ``false_matches`` (matched pairs that are not true pairs),
        ``missed_apogee_ids`` and ``false_pairs`` (up to 20 each, for inspection).
    """
    _require(truth_pairs, ["TARGETID", "APOGEE_ID"], "truth table")
    truth = truth_pairs[["TARGETID", "APOGEE_ID"]].dropna()
    truth = truth[truth["APOGEE_ID"].astype(str).str.strip() != ""]
    truth = truth[truth["TARGETID"].astype(np.int64) > 0]  # APOGEE-only stars have no DESI target
    truth = truth.assign(TARGETID=truth["TARGETID"].astype(np.int64), APOGEE_ID=truth["APOGEE_ID"].astype(str).str.strip())
    good_ids = set(stars["APOGEE_ID"][passes_quality_cuts(stars, cuts)].astype(str))
    ingested = set(spectra["TARGETID"].astype(np.int64))
    expected = truth[truth["TARGETID"].isin(ingested) & truth["APOGEE_ID"].isin(good_ids)]
    true_pairs = set(zip(truth["TARGETID"], truth["APOGEE_ID"]))
    got = list(zip(matched["TARGETID"].astype(np.int64), matched["APOGEE_ID"].astype(str)))
    correct = {pair for pair in got if pair in true_pairs}
    false_pairs = [pair for pair in got if pair not in true_pairs]
    expected_stars = set(expected["APOGEE_ID"])
    recovered_stars = {apogee_id for _, apogee_id in correct} & expected_stars
    missed = sorted(expected_stars - recovered_stars)
    return {
        "true_pairs": len(true_pairs),
        "expected": len(expected_stars),
        "recovered": len(recovered_stars),
        "recovery": len(recovered_stars) / len(expected_stars) if expected_stars else float("nan"),
        "matched": len(got),
        "false_matches": len(false_pairs),
        "correct_but_not_expected": len({a for _, a in correct} - expected_stars),
        "missed_apogee_ids": missed[:20],
        "false_pairs": [(int(t), a) for t, a in false_pairs[:20]],
    }
