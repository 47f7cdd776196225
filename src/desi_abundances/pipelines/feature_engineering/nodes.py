"""Nodes of the feature_engineering pipeline (thin glue over ``spectra`` and ``nn.data``)."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from desi_abundances.nn.data import (
    assemble_training_set,
    fit_pixel_standardisation,
    label_table,
    split_targets,
)
from desi_abundances.spectra import CoaddSpectra, Spectra

logger = logging.getLogger(__name__)


def build_training_spectra(stacked_spectra: CoaddSpectra, spectra_metadata: pd.DataFrame,
                           crossmatch: pd.DataFrame, labels: list[str],
                           params: dict[str, Any]) -> Spectra:
    """Preprocessed spectra of the crossmatched stars with their APOGEE labels."""
    table = label_table(crossmatch, labels)
    spectra, counts = assemble_training_set(
        stacked_spectra, spectra_metadata, table, labels, params["preprocessing"],
        min_snr=float(params.get("min_snr", 0.0)),
        min_good_pixel_fraction=float(params.get("min_good_pixel_fraction", 0.5)),
    )
    logger.info("training spectra: %s", counts)
    return spectra


def split_training_set(training_spectra: Spectra, params: dict[str, Any]) -> pd.DataFrame:
    """Seeded train/validation/test split of the training TARGETIDs."""
    split = params["split"]
    data_split = split_targets(training_spectra.meta["TARGETID"].to_numpy(),
                               split["fractions"], int(split["seed"]))
    logger.info("split sizes: %s", data_split["split"].value_counts().to_dict())
    return data_split


def fit_standardisation(training_spectra: Spectra, data_split: pd.DataFrame,
                        params: dict[str, Any]) -> pd.DataFrame:
    """Per-pixel median/IQR fitted on the train split only."""
    train_ids = data_split.loc[data_split["split"] == "train", "TARGETID"].to_numpy()
    rows = training_spectra.meta["TARGETID"].isin(train_ids).to_numpy()
    return fit_pixel_standardisation(training_spectra.select(rows),
                                     min_iqr=float(params.get("min_iqr", 1e-3)))
