"""The train / validation / test split of the training spectra (``data_split``), made once."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.spectra import Spectra

SPLITS = ("train", "validation", "test")
"""The split names of ``data_split.split``, in this order."""


def split_rows(spectra: Spectra, data_split: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row indices of ``spectra`` in each split (a star absent from data_split is in none).

    Raises:
        KeyError / ValueError: when data_split lacks TARGETID or split, names an unknown
            split, or the test split is empty.
    """
    for column in ("TARGETID", "split"):
        if column not in data_split.columns:
            raise KeyError(f"data_split has no '{column}' column")
    unknown = set(data_split["split"].unique()) - set(SPLITS)
    if unknown:
        raise ValueError(f"data_split.split holds unknown values {sorted(unknown)}")
    split_of = dict(zip(data_split["TARGETID"].to_numpy(), data_split["split"].to_numpy()))
    assigned = np.array([split_of.get(t, "") for t in spectra.meta["TARGETID"].to_numpy()])
    rows = {split: np.nonzero(assigned == split)[0] for split in SPLITS}
    if rows["test"].size == 0:
        raise ValueError("data_split: no training_spectra star is in the test split")
    return rows


def split_spectra(spectra: Spectra, data_split: pd.DataFrame) -> tuple[Spectra, Spectra, Spectra]:
    """(train, validation, test) spectra, each in the order of ``spectra``; the meta keeps
    the header attributes (``is_mock``, ``preprocessing``). Raises as :func:`split_rows`."""
    rows = split_rows(spectra, data_split)
    parts = []
    for name in SPLITS:
        part = spectra.select(rows[name])
        part.meta.attrs = dict(spectra.meta.attrs)
        parts.append(part)
    return parts[0], parts[1], parts[2]
