"""Labels table, split, standardisation, ProcessedSpectraDataset and the pipeline's nodes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_coadds import make_coadd
from tiny_real_stars import STRATA, tiny_library_spectra

from desi_abundances.datasets.processed_spectra import ProcessedSpectraDataset
from desi_abundances.nn.data import fit_pixel_standardisation, label_table, split_targets
from desi_abundances.pipelines.feature_engineering.nodes import (
    build_training_spectra,
    fit_standardisation,
    split_training_set,
)
from desi_abundances.spectra import Spectra, preprocess

LABELS = ["teff", "fe_h", "mg_fe"]
PARAMS = {
    "preprocessing": {"continuum_sigma_angstrom": 20.0},
    "min_snr": 5.0,
    "min_good_pixel_fraction": 0.5,
    "split": {"seed": 7, "fractions": {"train": 0.6, "validation": 0.2, "test": 0.2}},
}


def make_crossmatch(target_ids) -> pd.DataFrame:
    n = len(target_ids)
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "TARGETID": np.asarray(target_ids, np.int64),
        "APOGEE_ID": [f"2M{i:08d}" for i in range(n)],
        "sep_arcsec": rng.uniform(0, 1, n),
        "TEFF": rng.uniform(4000, 6000, n), "TEFF_ERR": np.full(n, 50.0),
        "FE_H": rng.uniform(-1, 0.3, n), "FE_H_ERR": np.full(n, 0.01),
        "FE_H_FLAG": np.zeros(n, np.int64),
        "MG_FE": rng.uniform(-0.1, 0.4, n), "MG_FE_ERR": np.full(n, 0.02),
        "MG_FE_FLAG": np.zeros(n, np.int64),
    })


def test_label_table_missing_flagged_and_bad_errors():
    cross = make_crossmatch([1, 2, 3, 4])
    cross.loc[0, "MG_FE_FLAG"] = 8
    cross.loc[1, "FE_H"] = -9999.0
    cross.loc[2, "TEFF_ERR"] = np.nan
    table = label_table(cross, LABELS)
    assert np.isnan(table.loc[0, "mg_fe"]) and np.isnan(table.loc[0, "mg_fe_err"])
    assert np.isnan(table.loc[1, "fe_h"]) and np.isnan(table.loc[2, "teff"])
    assert np.isfinite(table.loc[3, LABELS].to_numpy(float)).all()
    assert table.loc[0, "teff"] == cross.loc[0, "TEFF"] and table.loc[3, "fe_h_err"] == 0.01
    with pytest.raises(KeyError, match="CA_FE"):
        label_table(cross, ["ca_fe"])


def test_split_is_seeded_complete_and_disjoint():
    ids = np.arange(1000, 1100)
    first = split_targets(ids[::-1], {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=3)
    again = split_targets(ids, {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=3)
    other = split_targets(ids, {"train": 0.7, "validation": 0.15, "test": 0.15}, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not first["split"].equals(other["split"])
    assert first["split"].value_counts().to_dict() == {"train": 70, "validation": 15, "test": 15}
    assert sorted(first["TARGETID"]) == list(ids)


def test_standardisation_uses_only_unmasked_pixels():
    rng = np.random.default_rng(0)
    flux = rng.normal(1.0, 0.1, (400, 6)).astype(np.float32)
    mask = np.zeros(flux.shape, bool)
    mask[:200, 1] = True
    flux[:200, 1] = 100.0  # masked garbage must not matter
    mask[:, 2] = True
    spectra = Spectra(np.arange(6.0), flux, np.ones_like(flux), mask,
                      pd.DataFrame({"TARGETID": np.arange(400)}))
    table = fit_pixel_standardisation(spectra)
    assert table.loc[1, "median"] == pytest.approx(np.median(flux[200:, 1]), abs=1e-6)
    q75, q25 = np.percentile(flux[:, 0], [75, 25])
    assert table.loc[0, "iqr"] == pytest.approx(q75 - q25, rel=1e-5)
    assert table.loc[2, ["median", "iqr"]].tolist() == [1.0, 1.0]
    assert table.loc[1, "n_good"] == 200


def _inputs(n=30):
    vrad = np.linspace(-150, 150, n)
    coadd = make_coadd(n, snr=50, vrad_kms=vrad, seed=2)
    metadata = pd.DataFrame({"TARGETID": coadd.fibermap["TARGETID"], "vrad_kms": vrad,
                             "snr": np.full(n, 50.0)})
    metadata.loc[3, "vrad_kms"] = np.nan   # no velocity: dropped
    metadata.loc[4, "snr"] = 1.0            # too faint: dropped
    cross = make_crossmatch(coadd.fibermap["TARGETID"][:-5])  # last 5 unmatched
    return coadd, metadata, cross


def test_nodes_build_training_set_split_and_standardisation(tmp_path):
    coadd, metadata, cross = _inputs()
    spectra = build_training_spectra(coadd, metadata, cross, LABELS, PARAMS)
    kept = set(spectra.meta["TARGETID"])
    assert kept == set(coadd.fibermap["TARGETID"][:-5]) - {1003, 1004}
    for column in ["TARGETID", "snr", "vrad_kms", *LABELS, *[f"{n}_err" for n in LABELS]]:
        assert column in spectra.meta.columns
    row = spectra.meta.set_index("TARGETID").loc[1010]
    assert row["fe_h"] == pytest.approx(cross.set_index("TARGETID").loc[1010, "FE_H"])
    assert spectra.meta.attrs["is_mock"] is True
    assert np.isfinite(spectra.flux).all()

    split = split_training_set(spectra, PARAMS)
    assert set(split["TARGETID"]) == kept
    standardisation = fit_standardisation(spectra, split, PARAMS)
    # fitted on the train split only: changing validation/test spectra changes nothing
    spectra.flux[spectra.meta["TARGETID"].isin(
        split.loc[split["split"] != "train", "TARGETID"]).to_numpy()] = 7.0
    pd.testing.assert_frame_equal(standardisation, fit_standardisation(spectra, split, PARAMS))

    dataset = ProcessedSpectraDataset(str(tmp_path / "training_spectra.fits"))
    dataset.save(spectra)
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.flux, spectra.flux)
    np.testing.assert_array_equal(loaded.mask, spectra.mask)
    pd.testing.assert_frame_equal(loaded.meta, spectra.meta, check_dtype=False)
    assert loaded.meta.attrs["is_mock"] is True
    assert loaded.meta.attrs["preprocessing"] == spectra.meta.attrs["preprocessing"]
    from astropy.io import fits
    with fits.open(tmp_path / "training_spectra.fits") as hdul:
        assert hdul[0].header["MOCK"] is True
        assert [h.name for h in hdul] == ["PRIMARY", "WAVELENGTH", "FLUX", "IVAR", "MASK", "META"]


def test_metadata_must_be_row_matched():
    coadd, metadata, cross = _inputs(8)
    with pytest.raises(ValueError, match="not row-matched"):
        build_training_spectra(coadd, metadata.iloc[::-1].reset_index(drop=True), cross,
                               LABELS, PARAMS)


def test_processed_spectra_real_mock_flag_false(tmp_path):
    coadd = make_coadd(2)
    coadd.header["MOCK"] = False
    spectra = preprocess(coadd, np.zeros(2), {})
    dataset = ProcessedSpectraDataset(str(tmp_path / "s.fits"))
    dataset.save(spectra)
    assert dataset.load().meta.attrs["is_mock"] is False


def test_split_method_stratified_keeps_each_library_in_proportion():
    spectra, crossmatch = tiny_library_spectra(n=400)
    params = {"split": {"seed": 3, "fractions": {"train": 0.5, "validation": 0.25, "test": 0.25},
                        "method": "stratified", "strata": STRATA}}
    split = split_training_set(spectra, params, crossmatch)
    joined = split.merge(crossmatch, on="TARGETID")
    share = pd.crosstab(joined["LIBRARY"], joined["split"], normalize="index")
    np.testing.assert_allclose(share["test"], 0.25, atol=0.03)
    # the default stays the seeded random split, whatever the crossmatch holds
    random = {"split": {k: v for k, v in params["split"].items() if k in ("seed", "fractions")}}
    pd.testing.assert_frame_equal(
        split_training_set(spectra, random, crossmatch),
        split_targets(spectra.meta["TARGETID"].to_numpy(), random["split"]["fractions"], 3))
    with pytest.raises(ValueError, match="random or stratified"):
        split_training_set(spectra, {"split": {**params["split"], "method": "kfold"}})
