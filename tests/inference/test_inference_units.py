"""Unit tests of the inference science: partition selection, velocities, flags, outputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from inference_fakes import LABELS, FakePredictor, make_coadd, partition_id, rvtab

from desi_abundances.inference import (
    FLAG_BITS,
    BundleMismatchError,
    FlagSettings,
    InferenceSettings,
    RadialVelocityLookup,
    check_labels,
    healpix_of_partition,
    median_snr,
    output_is_complete,
    predict_coadd,
    quality_flags,
    radial_velocity_table,
    select_partitions,
    write_output,
)


def test_select_partitions_by_glob_and_healpix():
    ids = [partition_id(h) for h in (10010, 10011, 2047)] + [
        partition_id(10012, "main", "backup")
    ]
    assert healpix_of_partition(ids[0]) == 10010
    assert select_partitions(ids) == sorted(ids)
    assert select_partitions(ids, patterns=["main/backup/*"]) == [partition_id(10012, "main", "backup")]
    assert select_partitions(ids, healpix=[2047, 10011]) == sorted([ids[1], ids[2]])
    assert select_partitions(ids, patterns=["main/bright/*"], healpix=[10012]) == []


def test_settings_refuse_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown keys"):
        InferenceSettings.from_params({"schedular": "local"})
    with pytest.raises(ValueError, match="on_error"):
        InferenceSettings.from_params({"on_error": "ignore"})
    settings = InferenceSettings.from_params({"healpix": 123, "flags": {"min_snr": 5}})
    assert settings.healpix == (123,) and settings.flags.min_snr == 5
    from_cli = InferenceSettings.from_params({"healpix": "10010 10011;12", "partitions": "main/*"})
    assert from_cli.healpix == (10010, 10011, 12) and from_cli.partitions == ("main/*",)


def test_radial_velocities_only_when_usable():
    table = pd.DataFrame(
        {
            "TARGETID": [1, 2, 3, 3],
            "SURVEY": ["main", "main", "MAIN ", "sv1"],
            "PROGRAM": ["bright", "bright", "backup", "bright"],
            "VRAD": [10.0, 20.0, 30.0, 40.0],
            "RVS_WARN": [0, 2, 0, 0],
            "SUCCESS": [True, True, True, False],
        }
    )
    lookup = RadialVelocityLookup(radial_velocity_table(table))
    vrad, found = lookup.lookup("main", "bright", np.array([2, 1, 99]))
    np.testing.assert_array_equal(found, [True, True, False])
    assert vrad[1] == 10.0 and np.isnan(vrad[0]) and np.isnan(vrad[2])
    vrad, found = lookup.lookup("main", "backup", np.array([3]))
    assert found[0] and vrad[0] == 30.0
    vrad, found = lookup.lookup("sv1", "bright", np.array([3]))
    assert found[0] and np.isnan(vrad[0])  # SUCCESS False
    vrad, found = lookup.lookup("sv3", "dark", np.array([1]))
    assert not found[0]


def test_quality_flags_each_bit():
    table = pd.DataFrame(
        {
            "snr": [50.0, 5.0, 50.0, 50.0, 50.0, 50.0],
            "vrad_kms": [1.0, 1.0, np.nan, 1.0, 1.0, 1.0],
            "COADD_FIBERSTATUS": [0, 0, 0, 0, 8, 0],
            "input_distance": [1.0, 1.0, 1.0, 9.0, 1.0, np.nan],
            "a": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
            "a_err": [0.1] * 6,
            "b": [0.5, 0.5, 0.5, 2.0, 0.5, 0.5],
            "b_err": [0.1] * 6,
        }
    )
    flag, range_flag = quality_flags(
        table, ["a", "b"], np.array([0.0, 0.0]), np.array([1.0, 1.0]), 5.0, FlagSettings(min_snr=10)
    )
    bit = {name: 1 << b for name, b in FLAG_BITS.items()}
    assert list(flag) == [
        0,
        bit["LOW_SNR"],
        bit["NO_RADIAL_VELOCITY"],
        bit["FAR_FROM_TRAINING"] | bit["LABEL_OUT_OF_RANGE"],
        bit["BAD_FIBERSTATUS"],
        bit["NO_PREDICTION"],
    ]
    assert list(range_flag) == [0, 0, 0, 0b10, 0, 0]
    # only label a sets LABEL_OUT_OF_RANGE: row 3 (b off range) keeps its range bit only
    flag_a, range_a = quality_flags(
        table, ["a", "b"], np.array([0.0, 0.0]), np.array([1.0, 1.0]), 5.0,
        FlagSettings(min_snr=10, range_labels=["a"]),
    )
    assert flag_a[3] == bit["FAR_FROM_TRAINING"] and list(range_a) == list(range_flag)
    with pytest.raises(ValueError, match=r"\['c'\] are not labels"):
        quality_flags(table, ["a", "b"], np.zeros(2), np.ones(2), 5.0, FlagSettings(range_labels=["c"]))


def test_predict_coadd_selects_catalogue_stars_and_flags():
    coadd = make_coadd(10010, n_spectra=4)
    lookup = RadialVelocityLookup(radial_velocity_table(rvtab({10010: coadd})))
    predictor = FakePredictor()
    table = predict_coadd(coadd, partition_id(10010), predictor, lookup, InferenceSettings())
    # the last target is not in the MWS catalogue
    assert list(table["TARGETID"]) == list(coadd.fibermap["TARGETID"][:3])
    assert set(table["SURVEY"]) == {"main"} and set(table["HEALPIX"]) == {10010}
    assert np.isnan(table["vrad_kms"][2]) and table["flag"][2] & (1 << FLAG_BITS["NO_RADIAL_VELOCITY"])
    assert table["flag"][1] & (1 << FLAG_BITS["BAD_FIBERSTATUS"])
    everyone = predict_coadd(
        coadd, partition_id(10010), predictor, lookup, InferenceSettings(only_mws_catalogue=False)
    )
    assert len(everyone) == 4 and everyone["flag"][3] & (1 << FLAG_BITS["NO_RADIAL_VELOCITY"])


def test_mismatched_labels_are_refused():
    with pytest.raises(BundleMismatchError, match=r"missing from the bundle \['mg_fe'\]"):
        check_labels(FakePredictor(), LABELS + ["mg_fe"])
    with pytest.raises(BundleMismatchError, match="different order"):
        check_labels(FakePredictor(), ["logg", "teff", "fe_h"])
    check_labels(FakePredictor(), LABELS)


def test_output_complete_only_with_matching_fingerprint(tmp_path):
    path = tmp_path / "a" / "b.parquet"
    write_output(pd.DataFrame({"x": [1, 2]}), path, {"fingerprint": "abc"})
    assert output_is_complete(path, "abc")
    assert not output_is_complete(path, "abd")
    assert not output_is_complete(tmp_path / "missing.parquet", "abc")
    path.write_bytes(b"PAR1 truncated")
    assert not output_is_complete(path, "abc")
    assert list(tmp_path.rglob("*.tmp")) == []


def test_median_snr_equals_the_shared_definition():
    from desi_abundances import spectra

    coadd = make_coadd(10010, n_spectra=7)
    rng = np.random.default_rng(3)
    for arm in coadd.arms.values():
        arm.flux[:] = rng.normal(20, 8, arm.flux.shape)
        arm.ivar[rng.random(arm.ivar.shape) < 0.2] = 0
        arm.mask[rng.random(arm.mask.shape) < 0.1] = 4
        arm.flux[0, :3] = np.nan
        arm.ivar[1, :2] = [-1.0, np.inf]
        arm.ivar[2, 5] = np.nan
    for arm in coadd.arms.values():  # row 5: no good pixel at all; row 6: an even count
        arm.ivar[5] = 0
    coadd.arms["B"].ivar[6, :] = 0
    coadd.arms["R"].ivar[6, 1:] = 0
    coadd.arms["Z"].ivar[6, 1:] = 0
    np.testing.assert_array_equal(median_snr(coadd), spectra.median_snr_reference(coadd))
    assert median_snr(coadd)[5] == 0


def test_poor_fit_bit_from_the_reduced_chi_square():
    table = pd.DataFrame({
        "snr": [50.0] * 4, "vrad_kms": [1.0] * 4, "COADD_FIBERSTATUS": [0] * 4,
        "input_distance": [1.0] * 4, "a": [0.5] * 4, "a_err": [0.1] * 4,
        "rchi2": [50.0] * 4,  # not what POOR_FIT reads: the floored chi-square is
        "rchi2_floor": [1.2, 3.5, np.nan, 40.0],
    })
    flag, _ = quality_flags(table, ["a"], np.zeros(1), np.ones(1), 5.0,
                            FlagSettings(max_rchi2_floor=3.0))
    assert FLAG_BITS["POOR_FIT"] == 7
    assert list(flag) == [0, 1 << 7, 0, 1 << 7]
    strict, _ = quality_flags(table, ["a"], np.zeros(1), np.ones(1), 5.0,
                              FlagSettings(max_rchi2_floor=1.0))
    assert list(strict) == [1 << 7, 1 << 7, 0, 1 << 7]
    no_column, _ = quality_flags(table.drop(columns="rchi2_floor"), ["a"], np.zeros(1), np.ones(1), 5.0,
                                 FlagSettings())
    assert list(no_column) == [0, 0, 0, 0]
