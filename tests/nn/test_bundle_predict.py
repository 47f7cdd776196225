"""ModelBundle round trip through safetensors, predict_labels, compatibility checks."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DatasetError
from safetensors.torch import save_file

from desi_abundances.datasets.model_bundle import ModelBundleDataset
from desi_abundances.nn.bundle import ModelBundle, current_versions
from desi_abundances.nn.network import architecture_for, build_network
from desi_abundances.nn.predict import IncompatibleSpectraError, check_compatible, predict_labels
from desi_abundances.spectra import DEFAULT_PREPROCESSING, Spectra, preprocessing_settings

LABELS = ["teff", "logg", "fe_h"]


def make_bundle(n_pixels: int = 40, seed: int = 0) -> ModelBundle:
    torch.manual_seed(seed)
    wavelength = 5000.0 + 0.8 * np.arange(n_pixels)
    architecture = architecture_for(n_pixels, len(LABELS), {"hidden_sizes": [16, 16]})
    network = build_network(architecture)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0, 0.1)
    return ModelBundle(
        state_dict=network.state_dict(), architecture=architecture, label_names=list(LABELS),
        wavelength=wavelength, pixel_median=np.full(n_pixels, 0.9, np.float32),
        pixel_iqr=np.full(n_pixels, 0.1, np.float32), label_offset=np.array([5000.0, 3.0, -0.3]),
        label_scale=np.array([500.0, 1.0, 0.4]), label_min=np.array([3500.0, 0.5, -2.0]),
        label_max=np.array([6500.0, 5.0, 0.5]), label_n_train=np.array([10, 10, 0]),
        preprocessing=preprocessing_settings(DEFAULT_PREPROCESSING), ood_threshold=3.5,
        versions=current_versions(), is_mock=True, metrics={"fe_h_residual_std": 0.05},
    )


def make_spectra(bundle: ModelBundle, n: int = 7) -> Spectra:
    rng = np.random.default_rng(1)
    flux = (0.9 + 0.1 * rng.standard_normal((n, bundle.wavelength.size))).astype(np.float32)
    mask = np.zeros(flux.shape, bool)
    mask[2, :] = True
    flux[2, :] = 1.0
    ivar = np.where(mask, 0.0, 1e4).astype(np.float32)
    meta = pd.DataFrame({"TARGETID": np.arange(n) + 100, "rest_frame_ok": np.arange(n) != 4})
    meta.attrs["preprocessing"] = dict(bundle.preprocessing)
    return Spectra(bundle.wavelength, flux, ivar, mask, meta)


def test_round_trip(tmp_path):
    bundle = make_bundle()
    dataset = ModelBundleDataset(str(tmp_path / "bundle.safetensors"))
    assert not dataset.exists()
    dataset.save(bundle)
    assert dataset.exists()
    loaded = dataset.load()
    for name in ("wavelength", "pixel_median", "pixel_iqr", "label_offset", "label_scale",
                 "label_min", "label_max", "label_n_train"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(bundle, name))
    for key, value in bundle.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value)
    assert loaded.label_names == LABELS and loaded.architecture == bundle.architecture
    assert loaded.preprocessing == bundle.preprocessing and loaded.is_mock is True
    assert loaded.ood_threshold == 3.5 and loaded.metrics == bundle.metrics
    spectra = make_spectra(bundle)
    pd.testing.assert_frame_equal(predict_labels(bundle, spectra), predict_labels(loaded, spectra))
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        ModelBundleDataset(str(tmp_path / "none.safetensors")).load()
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(DatasetError, match="junk.safetensors"):
        ModelBundleDataset(str(junk)).load()
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain), metadata={"other": json.dumps({})})
    with pytest.raises(DatasetError, match="no 'bundle' metadata"):
        ModelBundleDataset(str(plain)).load()


def test_predict_labels_columns_units_and_nan_rows():
    bundle = make_bundle()
    spectra = make_spectra(bundle)
    out = predict_labels(bundle, spectra, batch_size=3)
    assert list(out.columns) == ["TARGETID", "teff", "teff_err", "logg", "logg_err", "fe_h",
                                 "fe_h_err", "input_distance", "leverage", "rchi2", "rchi2_b",
                                 "rchi2_r", "rchi2_z", "rchi2_floor", "composite_score",
                                 "composite_dv_kms"]
    # no refinement layer: no spectrum model to fit
    assert out[["rchi2", "rchi2_floor", "composite_score", "composite_dv_kms"]].isna().all().all()
    assert list(out["TARGETID"]) == list(spectra.meta["TARGETID"])
    ok = np.array([0, 1, 3, 5, 6])
    assert out.loc[ok, ["teff", "teff_err", "logg", "input_distance"]].notna().all().all()
    assert out.loc[[2, 4], ["teff", "teff_err", "logg"]].isna().all().all()  # masked, no vrad
    assert out["fe_h"].isna().all()  # no training labels for fe_h
    assert (out.loc[ok, "teff_err"] > 0).all()
    assert abs(out.loc[ok, "teff"] - 5000).max() < 5000  # physical units (K)
    # batching does not change results
    pd.testing.assert_frame_equal(out, predict_labels(bundle, spectra, batch_size=100))


def test_input_distance_flags_unusual_spectra():
    bundle = make_bundle()
    spectra = make_spectra(bundle)
    spectra.flux[5] = 0.3  # far from the training median (0.9) in units of the IQR
    out = predict_labels(bundle, spectra)
    assert out["input_distance"][5] > bundle.ood_threshold > out["input_distance"][0]


def test_mismatched_spectra_are_refused():
    bundle = make_bundle()
    spectra = make_spectra(bundle)
    with pytest.raises(IncompatibleSpectraError, match="grid"):
        check_compatible(bundle, bundle.wavelength[:-1], None)
    with pytest.raises(IncompatibleSpectraError, match="grid"):
        check_compatible(bundle, bundle.wavelength + 0.4, None)
    other = dict(bundle.preprocessing, continuum_sigma_angstrom=50.0)
    with pytest.raises(IncompatibleSpectraError,
                       match="continuum_sigma_angstrom: spectra 50.0 vs bundle 20.0"):
        check_compatible(bundle, bundle.wavelength, other)
    spectra.meta.attrs["preprocessing"] = other
    with pytest.raises(IncompatibleSpectraError):
        predict_labels(bundle, spectra)
    # explicit settings override the attrs
    predict_labels(bundle, spectra, preprocessing=bundle.preprocessing)


def test_bundle_validates_shapes():
    bundle = make_bundle()
    with pytest.raises(ValueError, match="pixel_iqr"):
        ModelBundle(**{**bundle.__dict__, "pixel_iqr": np.ones(3)})


def test_error_calibration_round_trips_and_combines_the_errors(tmp_path):
    import dataclasses

    from desi_abundances.nn.adapter import bundle_fingerprint
    from desi_abundances.nn.bundle_io import load_bundle, save_bundle

    bundle = make_bundle()
    calibrated = dataclasses.replace(bundle, error_calibration={
        "net_scale": [2.0, 1.0, 1.0], "model_scale": [0.0, 0.0, 0.0]})
    save_bundle(calibrated, tmp_path / "b.safetensors")
    assert load_bundle(tmp_path / "b.safetensors").error_calibration == calibrated.error_calibration
    assert bundle_fingerprint(calibrated) != bundle_fingerprint(bundle)
    spectra = make_spectra(bundle)
    plain = predict_labels(bundle, spectra, error_parts=True)
    scaled = predict_labels(calibrated, spectra, error_parts=True)
    assert np.allclose(scaled["teff_err"], 2.0 * plain["teff_err"], equal_nan=True)
    assert np.allclose(scaled["teff_err_net"], plain["teff_err"], equal_nan=True)
