"""The garbled-FIBERMAP-row rule (desi_abundances.desi.fibermap)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.desi.fibermap import (
    describe_garbled,
    garbled_counts,
    garbled_rows,
    integer_values,
    undecodable,
)


def test_integer_values_flags_what_is_not_an_exact_integer():
    values, bad = integer_values(np.array(["0", "x", None, 1.0, 2.5, np.inf, 2.0**60], dtype=object))
    assert bad.tolist() == [False, True, True, False, True, True, True]
    assert values[~bad].tolist() == [0, 1]
    ints, none_bad = integer_values(np.array([0, 8, -1], dtype=np.int32))
    assert ints.dtype == np.int64 and not none_bad.any()


def test_undecodable_text():
    assert undecodable(np.array(["TGT", "T\ufffdT", None], dtype=object)).tolist() == [False, True, False]
    assert undecodable(np.array(["TGT", "SKY"], dtype=object)).tolist() == [False, False]
    assert undecodable(np.array([1.0, 2.0])) is None


def test_garbled_rows_checks_values_of_used_rows_only():
    fibermap = pd.DataFrame({
        "TARGETID": [1, -2, -3, 4],
        "TARGET_RA": [10.0, np.nan, np.nan, 370.0],
        "TARGET_DEC": [0.0, 0.0, np.nan, -91.0],
        "OBJTYPE": ["TGT", "TGT", "SKY", "tgt "],
        "COADD_FIBERSTATUS": [0, 0, 0, 4],
    })
    science = np.array([True, True, False, True])
    garbled = garbled_rows(fibermap, science)
    assert {c: m.tolist() for c, m in garbled.items()} == {
        "TARGETID": [False, True, False, False],
        "TARGET_RA": [False, True, False, True],
        "TARGET_DEC": [False, False, False, True],
    }  # the sky fibre's negative TARGETID and NaN position are fine
    assert garbled_counts(garbled, 4) == {"garbled_fibermap": 2, "garbled_fibermap:TARGETID": 1,
                                          "garbled_fibermap:TARGET_RA": 2,
                                          "garbled_fibermap:TARGET_DEC": 1}
    assert describe_garbled("f.fits", fibermap, garbled, n_shown=1).startswith(
        "f.fits: HDU 'FIBERMAP': 2 garbled row(s) skipped: column 'TARGETID' (not a positive "
        "integer) in row(s) 1 (-2); column 'TARGET_RA' (not a finite angle in [0, 360] deg) in "
        "row(s) 1 (nan) and 1 more")
    assert garbled_rows(fibermap.assign(OBJTYPE=["TGT", "BAD", "SKY", "?"]))["OBJTYPE"].tolist() == [
        False, False, False, True]


def test_clean_fibermap_has_no_garbled_row():
    fibermap = pd.DataFrame({"TARGETID": np.arange(1, 1001), "TARGET_RA": np.linspace(0, 360, 1000),
                             "TARGET_DEC": np.linspace(-90, 90, 1000), "OBJTYPE": ["TGT"] * 1000,
                             "COADD_FIBERSTATUS": np.zeros(1000, np.int32), "REF_CAT": ["G2"] * 1000})
    assert garbled_rows(fibermap, bitmask_columns=["MWS_TARGET"]) == {}
