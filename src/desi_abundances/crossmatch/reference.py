"""Matching DESI spectra to a generic reference-label table (``labels.table`` canonical form):
by TARGETID where the table has it, else by position (the allStar matcher of
:mod:`desi_abundances.crossmatch`, Gaia ids off), one spectrum per reference star.

The ``crossmatch`` table it builds has the columns later stages read (TARGETID, sep_arcsec,
match_method, snr, ``<LABEL>``/``_ERR``/``_FLAG``, stacked_row, provenance) with
``REFERENCE_ID`` in place of APOGEE_ID. A label's flag never drops a star (feature
engineering masks that label); ``reference_cuts`` drop stars. pandas/numpy only, no Kedro.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.crossmatch.apogee import (
    POSITION,
    SPECTRUM_EXTRA_COLUMNS,
    CrossmatchError,
    _candidates,
    match_spectra_to_apogee,
    one_per_star,
    sequential_counts,
)
from desi_abundances.labels.table import REFERENCE_ID

logger = logging.getLogger(__name__)

TARGETID_MATCH = "targetid"


def reference_cut_masks(reference: pd.DataFrame, cuts: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Pass masks of the reference cuts, in report order: ``require_finite`` (columns, e.g.
    [TEFF, LOGG, FE_H]) and ``ranges`` (``{COLUMN: [min, max]}``, inclusive; null = open)."""
    masks: dict[str, np.ndarray] = {}
    finite = list(cuts.get("require_finite") or [])
    missing = [c for c in finite + list(cuts.get("ranges") or {}) if c not in reference.columns]
    if missing:
        raise CrossmatchError(f"reference label table lacks column(s) {missing} named by "
                              "crossmatch.reference_cuts")
    if finite:
        masks["finite_labels"] = np.isfinite(reference[finite].to_numpy(np.float64)).all(axis=1)
    for column, (low, high) in (cuts.get("ranges") or {}).items():
        values = reference[column].to_numpy(np.float64)
        keep = np.isfinite(values)
        if low is not None:
            keep &= values >= float(low)
        if high is not None:
            keep &= values <= float(high)
        masks[f"{column.lower()}_range"] = keep
    return masks


def match_by_targetid(spectra: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Candidate pairs (desi_row, apogee_row = reference row, sep 0) sharing a TARGETID > 0."""
    ref = pd.DataFrame({"TARGETID": reference["TARGETID"].to_numpy(np.int64),
                        "apogee_row": np.arange(len(reference))})
    ref = ref[ref["TARGETID"] > 0]
    desi = pd.DataFrame({"TARGETID": spectra["TARGETID"].to_numpy(np.int64),
                         "desi_row": np.arange(len(spectra))})
    pairs = desi.merge(ref, on="TARGETID")
    d, r = pairs["desi_row"].to_numpy(), pairs["apogee_row"].to_numpy()
    return _candidates(d, r, np.zeros(d.size), TARGETID_MATCH, TARGETID_MATCH)


def match_reference(spectra: pd.DataFrame, reference: pd.DataFrame,
                    settings: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, int]]:
    """TARGETID first; reference rows without one but with RA/Dec by position
    (``match_radius_arcsec``, epochs as for allStar); one spectrum per reference star."""
    by_id = match_by_targetid(spectra, reference)
    counts = {"targetid_pairs": len(by_id)}
    positioned = np.flatnonzero((reference["TARGETID"].to_numpy() <= 0)
                                & np.isfinite(reference["RA"].to_numpy(np.float64))
                                & np.isfinite(reference["DEC"].to_numpy(np.float64)))
    by_position = _candidates(*(np.zeros(0),) * 3, POSITION, "sky")
    if positioned.size and settings.get("use_position", True):
        matched = set(spectra["TARGETID"].to_numpy()[by_id["desi_row"].to_numpy()])
        left = ~spectra["TARGETID"].isin(matched).to_numpy()
        stars = reference.iloc[positioned][["RA", "DEC"]].reset_index(drop=True)
        pairs, _ = match_spectra_to_apogee(spectra[left].reset_index(drop=True), stars,
                                           {**dict(settings), "use_gaia_id": False})
        by_position = pairs.assign(desi_row=np.flatnonzero(left)[pairs["desi_row"].to_numpy()],
                                   apogee_row=positioned[pairs["apogee_row"].to_numpy()])
        by_position = by_position.drop(columns=["TARGETID"])
    counts["position_pairs"] = len(by_position)
    ids = reference[REFERENCE_ID].to_numpy()
    pairs = one_per_star(pd.concat([by_id, by_position], ignore_index=True), spectra, ids)
    counts["one_per_star"] = len(pairs)
    return pairs, counts


def reference_crossmatch_table(pairs: pd.DataFrame, spectra: pd.DataFrame,
                               reference: pd.DataFrame) -> pd.DataFrame:
    """The ``crossmatch`` table of a reference-label source (module docstring)."""
    d, r = pairs["desi_row"].to_numpy(), pairs["apogee_row"].to_numpy()
    table = pd.DataFrame({
        "TARGETID": spectra["TARGETID"].to_numpy().astype(np.int64)[d],
        REFERENCE_ID: reference[REFERENCE_ID].to_numpy()[r],
        "sep_arcsec": pairs["sep_arcsec"].to_numpy(dtype=float),
        "match_method": pairs["match_method"].to_numpy().astype(str),
        "snr": spectra["snr"].to_numpy(dtype=np.float32)[d] if "snr" in spectra else np.nan,
    })
    skip = {REFERENCE_ID, "TARGETID", "RA", "DEC"}
    for column in reference.columns:
        if column not in skip:
            table[column] = reference[column].to_numpy()[r]
    table["stacked_row"] = d.astype(np.int64)
    table["REFERENCE_RA"] = reference["RA"].to_numpy()[r]
    table["REFERENCE_DEC"] = reference["DEC"].to_numpy()[r]
    for column in SPECTRUM_EXTRA_COLUMNS:
        if column in spectra.columns:
            table[column] = spectra[column].to_numpy()[d]
    return table


def crossmatch_reference(spectra: pd.DataFrame, reference: pd.DataFrame,
                         params: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Match, apply ``params.reference_cuts`` after matching, build the table and report.

    Raises:
        CrossmatchError: when spectra lack TARGETID or the reference table lacks its columns.
    """
    if "TARGETID" not in spectra.columns:
        raise CrossmatchError("spectra_metadata lacks column(s) ['TARGETID']")
    missing = [c for c in (REFERENCE_ID, "TARGETID", "RA", "DEC") if c not in reference.columns]
    if missing:
        raise CrossmatchError(f"reference label table lacks column(s) {missing} "
                              "(build it with desi_abundances.labels.reference_labels)")
    masks = reference_cut_masks(reference, dict(params.get("reference_cuts") or {}))
    pairs, counts = match_reference(spectra, reference, params)
    rows = pairs["apogee_row"].to_numpy()
    matched_masks = {name: mask[rows] for name, mask in masks.items()}
    passing = np.ones(len(pairs), dtype=bool)
    for mask in matched_masks.values():
        passing &= mask
    table = reference_crossmatch_table(pairs[passing].reset_index(drop=True), spectra, reference)
    report = {
        "label_source": "table",
        "reference_cuts": sequential_counts(len(reference), masks, "reference_rows"),
        "desi": {"spectra": len(spectra), "targets": int(spectra["TARGETID"].nunique())},
        "matching": counts,
        "matched_after_cuts": sequential_counts(len(pairs), matched_masks, "matched_pairs"),
        "final": {
            "pairs": len(table),
            "by_method": {m: int((table["match_method"] == m).sum())
                          for m in (TARGETID_MATCH, POSITION)},
            "unique_targetid": int(table["TARGETID"].nunique()),
            "unique_reference_id": int(table[REFERENCE_ID].nunique()),
        },
    }
    return table, report
