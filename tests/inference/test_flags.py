"""The quality-flag bits (inference.flags): COMPOSITE from the composite score, and every bit
documented in the module's table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.inference import flags
from desi_abundances.inference.flags import FLAG_BITS, quality_flags
from desi_abundances.inference.settings import FlagSettings, InferenceSettings


def table(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"snr": [50.0] * n, "vrad_kms": [1.0] * n, "COADD_FIBERSTATUS": [0] * n,
            "input_distance": [1.0] * n, "a": [0.5] * n, "a_err": [0.1] * n}
    return pd.DataFrame({**base, **columns})


def flag_of(frame: pd.DataFrame, settings: FlagSettings) -> list[int]:
    return list(quality_flags(frame, ["a"], np.zeros(1), np.ones(1), 5.0, settings)[0])


def test_composite_bit_from_the_composite_score():
    frame = table(composite_score=[2.0, 12.0, np.nan, 500.0], rchi2_floor=[1.0, 1.0, 1.0, 9.0])
    assert FLAG_BITS["COMPOSITE"] == 8
    assert flag_of(frame, FlagSettings()) == [0, 1 << 8, 0, (1 << 8) | (1 << 7)]
    assert flag_of(frame, FlagSettings(max_composite_score=1.0)) == [
        1 << 8, 1 << 8, 0, (1 << 8) | (1 << 7)]
    assert flag_of(frame.drop(columns="composite_score"), FlagSettings()) == [0, 0, 0, 1 << 7]


def test_the_threshold_is_a_setting():
    settings = InferenceSettings.from_params({"flags": {"max_composite_score": 25.0}})
    assert settings.flags.max_composite_score == 25.0
    assert FlagSettings().max_composite_score == 10.0


def test_every_bit_is_in_the_documented_table():
    lines = flags.__doc__.splitlines()
    for name, bit in FLAG_BITS.items():
        assert any(line.split()[:2] == [str(bit), name] for line in lines if line.strip()), name
    assert sorted(FLAG_BITS.values()) == list(range(len(FLAG_BITS)))
