"""The split of the training spectra, made once."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances.evaluation.split import split_spectra
from desi_abundances.spectra import Spectra


def _spectra(n=6):
    meta = pd.DataFrame({"TARGETID": np.arange(10, 10 + n), "snr": np.ones(n)})
    meta.attrs["is_mock"] = True
    flux = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return Spectra(wavelength=np.array([5000.0, 5001.0, 5002.0]), flux=flux,
                   ivar=np.ones_like(flux), mask=np.zeros(flux.shape, bool), meta=meta)


def test_each_star_in_its_split_in_order_with_the_header():
    spectra = _spectra()
    split = pd.DataFrame({"TARGETID": [15, 10, 11, 12, 13],  # 14 is in no split
                          "split": ["test", "train", "validation", "test", "train"]})
    train, validation, test = split_spectra(spectra, split)
    assert train.meta["TARGETID"].tolist() == [10, 13]
    assert validation.meta["TARGETID"].tolist() == [11]
    assert test.meta["TARGETID"].tolist() == [12, 15]
    assert np.array_equal(test.flux, spectra.flux[[2, 5]])
    assert test.meta.attrs["is_mock"] is True


@pytest.mark.parametrize("split, match", [
    (pd.DataFrame({"TARGETID": [10], "split": ["train"]}), "test split"),
    (pd.DataFrame({"TARGETID": [10], "split": ["holdout"]}), "unknown values"),
    (pd.DataFrame({"TARGETID": [10]}), "split"),
])
def test_bad_splits_are_refused(split, match):
    with pytest.raises((ValueError, KeyError), match=match):
        split_spectra(_spectra(), split)
