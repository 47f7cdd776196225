"""Nodes of the feature_engineering pipeline (thin glue over ``spectra`` and ``nn.data``)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.nn.data import (
    assemble_training_set,
    fit_pixel_standardisation,
    label_table,
    split_targets,
)
from desi_abundances.nn.splits import star_strata, stratified_split
from desi_abundances.spectra import CoaddSpectra, Spectra

logger = logging.getLogger(__name__)

SAME_TARGET_ARCSEC = 1.0
"""Spectra sharing a TARGETID farther apart than this on the sky are different stars."""


class FeatureEngineeringError(ValueError):
    """The training set cannot be built; the message gives the counts or the rows at fault."""


def _place(row: pd.Series) -> str:
    """Where a spectrum comes from, for messages: ``<coadd> row <n>``."""
    return f"{row.get('source_file', '?')} row {row.get('source_row', '?')}"


def check_label_targets(spectra_metadata: pd.DataFrame, crossmatch: pd.DataFrame) -> None:
    """Refuse a label that would be joined to two spectra of different targets: spectra of
    one crossmatched TARGETID more than :data:`SAME_TARGET_ARCSEC` apart (a TARGETID reused
    by an impostor takes the other star's APOGEE labels).

    Raises:
        FeatureEngineeringError: naming the TARGETID and both spectra (coadd, row).
    """
    needed = {"TARGETID", "TARGET_RA", "TARGET_DEC"}
    if not needed <= set(spectra_metadata.columns) or "TARGETID" not in crossmatch:
        return
    meta = spectra_metadata[spectra_metadata["TARGETID"].isin(crossmatch["TARGETID"])]
    meta = meta[meta.duplicated("TARGETID", keep=False)]
    if meta.empty:
        return
    ra, dec = np.radians(meta["TARGET_RA"].to_numpy(float)), np.radians(meta["TARGET_DEC"].to_numpy(float))
    first = meta.groupby("TARGETID").transform("first")
    ra0, dec0 = np.radians(first["TARGET_RA"].to_numpy(float)), np.radians(first["TARGET_DEC"].to_numpy(float))
    cos_sep = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    sep = np.degrees(np.arccos(np.clip(cos_sep, -1, 1))) * 3600
    far = np.flatnonzero(sep > SAME_TARGET_ARCSEC)
    if far.size:
        row = meta.iloc[far[0]]
        other = meta[meta["TARGETID"] == row["TARGETID"]].iloc[0]
        raise FeatureEngineeringError(
            f"TARGETID {row['TARGETID']} labels two different stars: spectra at {_place(other)} "
            f"and {_place(row)} are {sep[far[0]]:.1f} arcsec apart; refusing to join one label "
            f"to both ({far.size} such spectra)"
        )


def build_training_spectra(stacked_spectra: CoaddSpectra, spectra_metadata: pd.DataFrame,
                           crossmatch: pd.DataFrame, labels: list[str],
                           params: dict[str, Any]) -> Spectra:
    """Preprocessed spectra of the crossmatched stars with their APOGEE labels."""
    check_label_targets(spectra_metadata, crossmatch)
    table = label_table(crossmatch, labels)
    spectra, counts = assemble_training_set(
        stacked_spectra, spectra_metadata, table, labels, params["preprocessing"],
        min_snr=float(params.get("min_snr", 0.0)),
        min_good_pixel_fraction=float(params.get("min_good_pixel_fraction", 0.5)),
    )
    logger.info("training spectra: %s", counts)
    if counts["kept"] == 0:
        raise FeatureEngineeringError(
            f"feature_engineering: 0 training stars; nothing written, earlier outputs kept. "
            f"Counts after every cut: {counts} (min_snr {params.get('min_snr', 0.0)}, "
            f"min_good_pixel_fraction {params.get('min_good_pixel_fraction', 0.5)})"
        )
    return spectra


def split_training_set(training_spectra: Spectra, params: dict[str, Any],
                       crossmatch: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seeded train/validation/test split of the training TARGETIDs: random (``split.method``
    absent or ``random``, the default) or ``stratified`` by ``split.strata`` (label bins and
    crossmatch group columns such as LIBRARY; ``nn.splits``)."""
    split = params["split"]
    method = split.get("method", "random")
    ids = training_spectra.meta["TARGETID"].to_numpy()
    if method == "random":
        data_split = split_targets(ids, split["fractions"], int(split["seed"]))
    elif method == "stratified":
        keys = star_strata(training_spectra.meta, split.get("strata", {}), crossmatch)
        data_split = stratified_split(ids, keys, split["fractions"], int(split["seed"]))
    else:
        raise FeatureEngineeringError(f"feature_engineering.split.method must be random or "
                                      f"stratified, got {method!r}")
    logger.info("split sizes: %s", data_split["split"].value_counts().to_dict())
    return data_split


def fit_standardisation(training_spectra: Spectra, data_split: pd.DataFrame,
                        params: dict[str, Any]) -> pd.DataFrame:
    """Per-pixel median/IQR fitted on the train split only."""
    train_ids = data_split.loc[data_split["split"] == "train", "TARGETID"].to_numpy()
    rows = training_spectra.meta["TARGETID"].isin(train_ids).to_numpy()
    return fit_pixel_standardisation(training_spectra.select(rows),
                                     min_iqr=float(params.get("min_iqr", 1e-3)))
