"""nn.splits: stratified split and folds keep every stratum's proportions, are seeded and
do not depend on the row order."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances.nn.splits import (
    fold_split,
    star_strata,
    strata_keys,
    stratified_folds,
    stratified_quantiles,
    stratified_split,
)

FRACTIONS = {"train": 0.7, "validation": 0.15, "test": 0.15}


def _keys(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.uniform(size=n) < 0.1, "rare", "common")


def test_quantiles_are_uniform_within_each_stratum():
    keys = _keys()
    u = stratified_quantiles(keys, seed=3)
    for key in ("rare", "common"):
        values = np.sort(u[keys == key])
        n = values.size
        # one value in every [r/n, (r+1)/n): evenly spread, not just random
        assert np.all(np.floor(values * n) == np.arange(n))


def test_stratified_split_keeps_the_fractions_in_every_stratum():
    keys = _keys()
    ids = np.arange(10, 1010)
    split = stratified_split(ids, keys, FRACTIONS, seed=1)
    assert list(split["TARGETID"]) == sorted(ids)
    for key in ("rare", "common"):
        share = split.loc[keys == key, "split"].value_counts(normalize=True)
        assert share["test"] == pytest.approx(0.15, abs=1.5 / (keys == key).sum())
        assert share["train"] == pytest.approx(0.70, abs=1.5 / (keys == key).sum())


def test_stratified_split_is_seeded_and_order_free():
    keys, ids = _keys(200), np.arange(200)
    first = stratified_split(ids, keys, FRACTIONS, seed=1)
    assert first.equals(stratified_split(ids, keys, FRACTIONS, seed=1))
    assert not first.equals(stratified_split(ids, keys, FRACTIONS, seed=2))
    with pytest.raises(ValueError, match="unique"):
        stratified_split(np.zeros(200, int), keys, FRACTIONS, seed=1)
    with pytest.raises(ValueError, match="exactly"):
        stratified_split(ids, keys, {"train": 1.0}, seed=1)


def test_folds_are_balanced_per_stratum_and_fold_split_cuts_validation():
    keys = _keys(1000)
    folds = stratified_folds(np.arange(1000), keys, 5, seed=4)
    counts = pd.crosstab(keys[np.argsort(np.arange(1000))], folds["fold"])
    assert (counts.max(axis=1) - counts.min(axis=1) <= 1).all()
    split = fold_split(folds, 2, validation_fraction=0.15)
    share = split["split"].value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.01)
    assert share["validation"] == pytest.approx(0.15, abs=0.01)
    assert set(split.loc[folds["fold"] == 2, "split"]) == {"test"}
    with pytest.raises(ValueError, match="no fold"):
        fold_split(folds, 7, 0.15)
    with pytest.raises(ValueError, match="does not fit"):
        fold_split(folds, 0, 0.9)
    with pytest.raises(ValueError, match=">= 2 folds"):
        stratified_folds(np.arange(10), keys[:10], 1, seed=0)


def test_strata_keys_bin_labels_and_join_group_columns():
    table = pd.DataFrame({"teff": [4000.0, 5500.0, np.nan], "LIBRARY": ["A", "B", "A"]})
    assert list(strata_keys(table, {"teff": [5000.0]}, ["LIBRARY"])) == ["0|A", "1|B", "nan|A"]
    meta = pd.DataFrame({"TARGETID": [1, 2], "teff": [4000.0, 6000.0]})
    groups = pd.DataFrame({"TARGETID": [2, 1], "LIBRARY": ["B", "A"]})
    strata = {"bins": {"teff": [5000.0]}, "group_columns": ["LIBRARY"]}
    assert list(star_strata(meta, strata, groups)) == ["0|A", "1|B"]
    with pytest.raises(KeyError, match="LIBRARY"):
        star_strata(meta, strata, None)
