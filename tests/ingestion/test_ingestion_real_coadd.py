"""Ingestion of a REAL DESI healpix coadd (format conformance; skipped when absent), written
back through the project's datasets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real_desi" / "coadd-special-dark-27247.fits"
pytestmark = pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} absent")


def test_real_coadd_round_trip(tmp_path):
    from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
    from desi_abundances.pipelines.data_ingestion.nodes import ingest_spectra
    from desi_abundances.spectra import median_snr

    loader = DesiCoaddDataset(filepath=str(REAL)).load
    coadds = {"special/dark/272/27247/coadd-special-dark-27247": loader}
    mws = {"RVTAB": pd.DataFrame({"TARGETID": np.array([39089837499744649]), "SURVEY": ["special"],
                                  "PROGRAM": ["dark"], "VRAD": [5.0], "RVS_WARN": [0], "SUCCESS": [True]}),
           "GAIA": pd.DataFrame({"SOURCE_ID": np.array([0], dtype=np.int64)})}
    params = {
        # the real file holds a galaxy target: keep every good target, no APOGEE pre-selection
        "selection": {"require_good_fiberstatus": True, "objtype": "TGT", "target_bitmask_columns": []},
        "prefilter_radius_arcsec": None,
        "mws_rvtab_columns": ["VRAD", "RVS_WARN", "SUCCESS"],
    }
    stacked, meta = ingest_spectra(coadds, mws, pd.DataFrame(columns=["RA", "DEC"]), params)
    assert meta["TARGETID"].tolist() == [39089837499744649]
    assert (meta["SURVEY"].iloc[0], meta["PROGRAM"].iloc[0], meta["HEALPIX"].iloc[0]) == ("special", "dark", 27247)
    assert meta["vrad_kms"].tolist() == [5.0] and meta["GAIA_SOURCE_ID"].tolist() == [-1]
    assert meta["snr"].iloc[0] > 0

    out = tmp_path / "stacked_spectra.fits"
    DesiCoaddDataset(filepath=str(out)).save(stacked)
    meta.to_parquet(tmp_path / "meta.parquet")
    again = DesiCoaddDataset(filepath=str(out)).load()
    assert again.fibermap["TARGETID"].tolist() == meta["TARGETID"].tolist()
    np.testing.assert_array_equal(again.arms["R"].flux, stacked.arms["R"].flux)
    np.testing.assert_allclose(median_snr(again), pd.read_parquet(tmp_path / "meta.parquet")["snr"])
