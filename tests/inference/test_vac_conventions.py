"""The VAC follows DESI's conventions: astropy reads it without a warning, dex columns have no
TUNIT, and exactly one PRIMARY row per TARGETID (the good spectrum of highest S/N)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from astropy.table import Table

from desi_abundances.inference import empty_output_table
from desi_abundances.inference.flags import FLAG_BITS
from desi_abundances.inference.outputs import write_output
from desi_abundances.inference.vac import write_vac

LABELS = ["teff", "logg", "fe_h", "mg_fe"]


def per_coadd(program: str, targetid, snr, flag) -> pd.DataFrame:
    n = len(targetid)
    table = empty_output_table(LABELS).reindex(range(n))
    table["TARGETID"] = np.asarray(targetid, np.int64)
    table["SURVEY"], table["PROGRAM"] = "main", program
    for name in ("TARGET_RA", "TARGET_DEC", "vrad_kms"):
        table[name] = np.linspace(1, 2, n)
    table["HEALPIX"], table["COADD_FIBERSTATUS"] = np.int32(7), np.int32(0)
    table["snr"] = np.asarray(snr, np.float32)
    for label in LABELS:
        table[label] = table[f"{label}_err"] = np.float32(0.5)
    table["input_distance"] = np.float32(1.0)
    table["flag"] = np.asarray(flag, np.int32)
    table["label_range_flag"] = np.int64(0)
    return table.astype(empty_output_table(LABELS).dtypes.to_dict())


def test_vac_primary_nspec_and_no_astropy_warning(tmp_path):
    bright = per_coadd("bright", [1, 2, 3], [30.0, 5.0, 12.0], [0, 0, 1])
    backup = per_coadd("backup", [2, 3, 4], [8.0, 50.0, 9.0], [0, 1, 0])
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for table, path in zip((bright, backup), paths):
        write_output(table, path, {"fingerprint": "x"})
    vac = tmp_path / "vac.fits"
    assert write_vac(paths, vac, LABELS, {"MOCK": (True, "")}, FLAG_BITS) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        table = Table.read(vac, hdu=1)
    assert table["PRIMARY"].dtype == bool
    # 2: backup (S/N 8) beats bright (S/N 5); 3: both flagged, S/N 50 wins
    assert table["PRIMARY"].tolist() == [True, False, False, True, True, True]
    assert table["NSPEC"].tolist() == [1, 2, 2, 2, 2, 1]
    primaries = table[table["PRIMARY"]]
    assert len(primaries) == len(np.unique(table["TARGETID"])) == len(np.unique(primaries["TARGETID"]))
    assert str(table["TEFF"].unit) == "K" and str(table["VRAD"].unit) == "km / s"
    assert table["FE_H"].unit is None and table["MG_FE_ERR"].unit is None
