"""Fast paths of inference against their references: the fused compiled standardisation +
input distance (``nn.predict.standardise_with_distance``) and the plain-ndarray coadd reader."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances.nn import predict


def _block(seed: int = 0, n: int = 64, n_pixels: int = 500):
    rng = np.random.default_rng(seed)
    flux = rng.normal(1.0, 0.1, (n, n_pixels)).astype(np.float32)
    ivar = rng.uniform(0.0, 400.0, (n, n_pixels)).astype(np.float32)
    mask = rng.random((n, n_pixels)) < 0.1
    ivar[mask] = 0.0
    flux[mask] = 1.0
    mask[3] = True                      # no good pixel: distance NaN
    ivar[4, :20] = 0.0                  # ivar 0 on unmasked pixels: variance inf, term 0
    median = rng.normal(1.0, 0.05, n_pixels).astype(np.float32)
    iqr = rng.uniform(0.02, 0.2, n_pixels).astype(np.float32)
    return flux, ivar, mask, median, iqr


def test_fused_standardisation_and_distance_match_the_references():
    pytest.importorskip("numba")
    flux, ivar, mask, median, iqr = _block()
    inputs, distance, noise = predict.standardise_with_distance(flux, ivar, mask, median, iqr)
    assert noise is None
    np.testing.assert_array_equal(inputs, predict.standardise(flux, mask, median, iqr))
    expected = predict.input_distance(flux, ivar, mask, median, iqr)
    assert np.isnan(distance[3]) and np.isnan(expected[3])
    np.testing.assert_allclose(distance, expected, rtol=1e-5)
    assert inputs.dtype == np.float32 and distance.dtype == np.float64


def test_fused_input_inverse_variances_match_the_reference():
    pytest.importorskip("numba")
    flux, ivar, mask, median, iqr = _block(seed=2)
    _, _, input_ivar = predict.standardise_with_distance(flux, ivar, mask, median, iqr,
                                                         with_ivar=True)
    expected = predict.input_inverse_variance(ivar, mask, iqr)
    np.testing.assert_allclose(input_ivar, expected, rtol=1e-5)
    assert np.all(input_ivar[mask] == 0)
    # ivar 0 on an unmasked pixel: the floor (training caps the noise), not 0
    assert np.all(input_ivar[4, :20][~mask[4, :20]] == np.float32(1 / predict.MAX_INPUT_NOISE**2))


def test_fused_path_accepts_float64_median_and_non_contiguous_rows():
    pytest.importorskip("numba")
    flux, ivar, mask, median, iqr = _block(seed=1)
    inputs, distance, _ = predict.standardise_with_distance(
        flux[::2], ivar[::2], mask[::2], median.astype(np.float64), iqr.astype(np.float64))
    np.testing.assert_array_equal(inputs, predict.standardise(flux[::2], mask[::2], median, iqr))
    np.testing.assert_allclose(distance, predict.input_distance(flux[::2], ivar[::2], mask[::2],
                                                                median, iqr), rtol=1e-5)


def test_coadd_reader_returns_plain_native_arrays(tmp_path):
    from astropy.io import fits

    from desi_abundances.io.desi_coadd import read_image
    from desi_abundances.io.fits_table import open_fits

    data = np.arange(12, dtype=">f4").reshape(3, 4)
    path = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="B_FLUX")]).writeto(path)
    hdul = open_fits(path, memmap=False)
    try:
        image = read_image(hdul, "B_FLUX", path)
    finally:
        hdul.close()
    assert type(image) is np.ndarray and image.dtype == np.dtype("float32")
    np.testing.assert_array_equal(image, data)


def test_whole_coadd_path_gives_the_same_table_as_selecting_rows(monkeypatch):
    import pandas as pd
    from inference_fakes import FakePredictor, make_coadd, partition_id, rvtab

    from desi_abundances import inference

    coadd = make_coadd(10020, n_spectra=20)
    coadd.fibermap.loc[7, "OBJTYPE"] = "SKY"      # a non-target inside the file
    lookup = inference.RadialVelocityLookup(inference.radial_velocity_table(rvtab({10020: coadd})))
    settings = inference.InferenceSettings()
    tables = {}
    for fraction in (0.5, 1.01):                  # whole coadd, then a selected copy
        monkeypatch.setattr(inference.prepare, "WHOLE_COADD_FRACTION", fraction)
        prepared = inference.prepare_partition(coadd, partition_id(10020), FakePredictor(), lookup, settings)
        assert (prepared.input_rows is not None) == (fraction < 1)
        tables[fraction] = inference.finish_partition(prepared, FakePredictor(), settings)
    pd.testing.assert_frame_equal(tables[0.5], tables[1.01])
    expected = [t for i, t in enumerate(coadd.fibermap["TARGETID"]) if i not in (7, 19)]
    assert list(tables[0.5]["TARGETID"]) == expected


def test_threaded_median_snr_equals_the_shared_definition():
    from inference_fakes import make_coadd

    from desi_abundances import inference, spectra

    coadd = make_coadd(10030, n_spectra=300)
    coadd.arms["B"].ivar[5] = 0.0
    coadd.arms["R"].flux[7, :3] = np.nan
    coadd.arms["Z"].mask[200] = 1
    np.testing.assert_array_equal(inference.median_snr(coadd), spectra.median_snr_reference(coadd))


@pytest.mark.parametrize("seed", range(4))
def test_radix_median_equals_the_sorted_middle_values(seed):
    """``spectra.kernels.median_of_rows`` against a row sort: ties, +/-0, negative values,
    a few to all +inf (bad pixel) entries, odd and even counts, very different scales."""
    from desi_abundances.spectra import kernels

    rng = np.random.default_rng(seed)
    n, n_pixels = 40, int(rng.integers(1, 300))
    values = rng.normal(20, 15, (n, n_pixels)) * rng.choice([1e-3, 1.0, 1e5], (n, 1))
    values = values.astype(np.float32)
    values[::3] = np.round(values[::3])          # many ties
    values[1::4, ::3] = 0.0
    values[1::4, 1::5] = -0.0
    n_good = rng.integers(0, n_pixels + 1, n)
    n_good[0] = 0
    for row in range(n):                          # bad pixels are +inf, anywhere in the row
        values[row, rng.permutation(n_pixels)[n_good[row]:]] = np.inf
    median = np.empty(n, np.float32)
    kernels.median_of_rows(values, n_good, median)
    ordered = np.sort(values, axis=1)
    rows = np.arange(n)
    low = ordered[rows, np.maximum((n_good - 1) // 2, 0)]
    high = ordered[rows, np.maximum(n_good // 2, 0)]
    expected = np.where(n_good > 0, (low + high) / np.float32(2), 0).astype(np.float32)
    np.testing.assert_array_equal(median, expected)
