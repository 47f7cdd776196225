"""Stratified splits of the training TARGETIDs: a fixed train / validation / test split and
k-fold assignments that keep every stratum (bins of the labels, a group column such as the
stellar library) in the same proportions in every part.

Each star gets a stratified quantile ``u`` in [0, 1): within its stratum the stars are put in
a seeded random order and star ``r`` of ``n`` gets ``u = (r + offset) / n`` with one random
offset in [0, 1) per stratum. Cutting ``u`` at the cumulative split fractions gives the fixed
split, ``floor(u k)`` gives fold numbers, and the position within the fold ``u k - fold`` is
again uniform per stratum, so a validation part can be cut from it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from desi_abundances.nn.data import SPLITS


def strata_keys(table: pd.DataFrame, bins: Mapping[str, Sequence[float]],
                group_columns: Sequence[str] = ()) -> np.ndarray:
    """One stratum name per row: the bin index of each binned column (``edges`` inner bin
    edges, e.g. ``{"teff": [5000, 6000]}`` -> 3 bins; NaN -> its own bin) joined with the
    values of ``group_columns`` (e.g. LIBRARY).

    Raises:
        KeyError: a column is missing from ``table``.
    """
    parts = []
    for column, edges in bins.items():
        values = table[column].to_numpy(np.float64)
        index = np.digitize(values, np.asarray(edges, np.float64)).astype(str)
        parts.append(np.where(np.isfinite(values), index, "nan"))
    for column in group_columns:
        parts.append(table[column].astype(str).to_numpy())
    if not parts:
        return np.full(len(table), "all", dtype=object)
    return np.array(["|".join(row) for row in zip(*parts)], dtype=object)


def stratified_quantiles(keys: np.ndarray, seed: int) -> np.ndarray:
    """The stratified quantile ``u`` in [0, 1) of every row (see the module docstring)."""
    keys = np.asarray(keys).astype(str)
    rng = np.random.default_rng(seed)
    u = np.empty(keys.size, dtype=np.float64)
    for key in np.unique(keys):  # sorted, so the result does not depend on the row order
        rows = np.flatnonzero(keys == key)
        order = rng.permutation(rows.size)
        u[rows[order]] = (np.arange(rows.size) + rng.uniform()) / rows.size
    return u


def _normalised(fractions: Mapping[str, float]) -> np.ndarray:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must name exactly {SPLITS}, got {sorted(fractions)}")
    weights = np.array([float(fractions[name]) for name in SPLITS])
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"split fractions must be >= 0 with a positive sum, got {fractions}")
    return weights / weights.sum()


def stratified_split(target_ids: np.ndarray, keys: np.ndarray,
                     fractions: Mapping[str, float], seed: int) -> pd.DataFrame:
    """TARGETID, split (sorted by TARGETID): train / validation / test by the stratified
    quantile cut at the cumulative ``fractions`` (one row per TARGETID; ``keys`` row-matched).

    Raises:
        ValueError: duplicate TARGETIDs or fractions not naming exactly the three splits.
    """
    ids = np.asarray(target_ids, np.int64)
    if np.unique(ids).size != ids.size:
        raise ValueError("stratified_split needs unique TARGETIDs")
    edges = np.cumsum(_normalised(fractions))[:-1]
    u = stratified_quantiles(keys, seed)
    split = np.asarray(SPLITS)[np.searchsorted(edges, u, side="right")]
    order = np.argsort(ids)
    return pd.DataFrame({"TARGETID": ids[order], "split": split[order].astype(str)})


def stratified_folds(target_ids: np.ndarray, keys: np.ndarray, n_folds: int,
                     seed: int) -> pd.DataFrame:
    """TARGETID, fold (0..n_folds-1), position (uniform in [0, 1) within the fold and
    stratum), sorted by TARGETID.

    Raises:
        ValueError: fewer than 2 folds or duplicate TARGETIDs.
    """
    if int(n_folds) < 2:
        raise ValueError(f"k-fold cross-validation needs >= 2 folds, got {n_folds}")
    ids = np.asarray(target_ids, np.int64)
    if np.unique(ids).size != ids.size:
        raise ValueError("stratified_folds needs unique TARGETIDs")
    scaled = stratified_quantiles(keys, seed) * int(n_folds)
    fold = np.minimum(np.floor(scaled).astype(int), int(n_folds) - 1)
    order = np.argsort(ids)
    return pd.DataFrame({"TARGETID": ids[order], "fold": fold[order],
                         "position": (scaled - fold)[order]})


def fold_split(folds: pd.DataFrame, test_fold: int, validation_fraction: float) -> pd.DataFrame:
    """The ``data_split`` (TARGETID, split) of one fold: its stars are the test split; of the
    others, those whose ``position`` is below ``validation_fraction x k / (k - 1)`` are the
    validation split (``validation_fraction`` of all stars), the rest train.

    Raises:
        ValueError: an unknown fold or a validation fraction outside (0, 1 - 1/k).
    """
    n_folds = int(folds["fold"].max()) + 1
    if test_fold not in set(folds["fold"]):
        raise ValueError(f"no fold {test_fold} in the folds table (0..{n_folds - 1})")
    cut = float(validation_fraction) * n_folds / (n_folds - 1)
    if not 0.0 < cut < 1.0:
        raise ValueError(f"validation_fraction {validation_fraction} does not fit {n_folds} folds")
    split = np.where(folds["fold"].to_numpy() == test_fold, "test",
                     np.where(folds["position"].to_numpy() < cut, "validation", "train"))
    return pd.DataFrame({"TARGETID": folds["TARGETID"].to_numpy(np.int64), "split": split})


def star_strata(meta: pd.DataFrame, strata: Mapping[str, object],
                groups: pd.DataFrame | None = None) -> np.ndarray:
    """Stratum names of the stars of ``meta`` (TARGETID + labels) from the ``strata``
    settings ``{bins: {label: inner edges}, group_columns: [column, ...]}``; the group
    columns are looked up by TARGETID in ``groups`` (e.g. the crossmatch table's LIBRARY).

    Raises:
        KeyError: a group column is asked for but ``groups`` lacks it.
    """
    group_columns = list(strata.get("group_columns") or [])
    table = meta[["TARGETID", *strata.get("bins", {})]].reset_index(drop=True)
    if group_columns:
        if groups is None or not set(group_columns) <= set(groups.columns):
            raise KeyError(f"strata group columns {group_columns} are not in the crossmatch table")
        lookup = groups[["TARGETID", *group_columns]].drop_duplicates("TARGETID")
        table = table.merge(lookup, on="TARGETID", how="left", validate="m:1")
    return strata_keys(table, dict(strata.get("bins", {})), group_columns)
