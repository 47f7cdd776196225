"""Fault injection (issue 12): each bad input a user's bad day brings ends in a clear, named
error or a counted, flagged skip; none exits with wrong values or replaces a good output.

Tiny coadds (tests/support): a good survey is run once, then one fault is injected and the
run repeated; the test asserts the exception, its message and that the earlier outputs are
untouched (same bytes)."""
from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import faulty_coadds as fc
import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits
from inference_fakes import (
    LABELS,
    FakePredictor,
    coadd_partitions,
    partition_id,
    rvtab,
    write_survey,
)
from safetensors.torch import save_file
from survey_tables import make_apogee, make_coadd, make_mws

from desi_abundances.inference import (
    FLAG_BITS,
    InferenceError,
    InferenceSettings,
    RadialVelocityLookup,
    build_value_added_catalogue,
    output_path,
    radial_velocity_table,
    run_inference,
)
from desi_abundances.io import atomic
from desi_abundances.io.desi_coadd import read_coadd
from desi_abundances.io.fits_table import FitsReadError
from desi_abundances.io.locks import OutputLockedError, output_lock
from desi_abundances.nn.bundle_io import BUNDLE_FORMAT_VERSION, BundleReadError, load_bundle
from desi_abundances.pipelines.crossmatch.nodes import require_pairs
from desi_abundances.pipelines.data_ingestion.nodes import check_unique_targets, ingest_spectra
from desi_abundances.pipelines.feature_engineering.nodes import (
    FeatureEngineeringError,
    check_label_targets,
)
from desi_abundances.settings import CheckedConfigLoader, UnknownEnvironmentError
from desi_abundances.spectra import missing_arm, unusable_arms
from desi_abundances.spectra.arm_quality import unusable_arms_reference

HEALPIXELS = [11, 12]


# --- the coadd reader: one validation for ingestion and inference ----------------------------

FAULTS = {
    "truncated at an HDU boundary": (lambda p: fc.truncate_before(p, "Z_WAVELENGTH"),
                                     "['Z_WAVELENGTH', 'Z_FLUX', 'Z_IVAR', 'Z_MASK'] missing; "
                                     "the file ends after HDU 'R_MASK' (HDU #9) (truncated at an "
                                     "HDU boundary?)"),
    "truncated inside a data unit": (lambda p: fc.truncate_inside(p, "Z_FLUX"),
                                     "file truncated in HDU 'Z_FLUX' (HDU #11): its data unit has "
                                     "100 of 480 bytes"),
    "B_FLUX dropped": (lambda p: fc.drop_hdu(p, "B_FLUX"), "HDU(s) ['B_FLUX'] missing"),
    "unparsable card in Z_FLUX": (lambda p: fc.corrupt_card(p, "Z_FLUX"),
                                  "header of HDU #11 ('Z_FLUX'): unparsable header card 5 'BUNIT'"),
    "unparsable card in B_FLUX": (
        lambda p: fc.corrupt_card(p, "B_FLUX", text=b"BUNIT   = 'erg / unterminated"),
        "header of HDU #3 ('B_FLUX'): unparsable header card 5 'BUNIT': it has a value that "
        "cannot be parsed"),
    "END card destroyed": (lambda p: fc.destroy_end(p, "FIBERMAP"),
                           "header of HDU #1 ('FIBERMAP') has no END card"),
    "not FITS": (lambda p: p.write_bytes(b"hello" * 1000), "not a FITS file"),
}


@pytest.fixture()
def good_coadd(tmp_path) -> Path:
    return fc.write_tiny(tmp_path / "coadd-main-bright-1234.fits")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_coadd_faults_are_named(good_coadd, fault):
    inject, message = FAULTS[fault]
    inject(good_coadd)
    with pytest.raises(FitsReadError) as caught:
        read_coadd(good_coadd)
    assert str(good_coadd) in str(caught.value) and message in str(caught.value)
    assert "not a table" not in str(caught.value)


def test_checksum_verified_when_present(tmp_path):
    path = fc.write_tiny(tmp_path / "coadd-main-bright-1234.fits", checksum=True)
    assert read_coadd(path).n_spectra == 3
    fc.flip_data_byte(path, "R_IVAR")
    with pytest.raises(FitsReadError, match=r"CHECKSUM/DATASUM verification failed, data "
                                            r"corrupted: .*'R_IVAR'"):
        read_coadd(path)


def test_repeated_targetid_in_one_coadd(tmp_path):
    coadd = fc.tiny_coadd()
    coadd.fibermap.loc[2, "TARGETID"] = coadd.fibermap.loc[0, "TARGETID"]
    path = fc.write_tiny(tmp_path / "coadd-main-bright-1234.fits", coadd)
    with pytest.raises(FitsReadError, match=r"repeats TARGETID 39627000000000000 in rows 0 and 2"):
        read_coadd(path)


def test_an_arm_subset_is_still_allowed(good_coadd):
    fc.drop_hdu(good_coadd, "Z_FLUX")
    assert list(read_coadd(good_coadd, arms=["B", "R"]).arms) == ["B", "R"]


# --- per-star arm checks: MISSING_ARM -------------------------------------------------------

def test_unusable_arms_compiled_matches_reference():
    coadd = fc.tiny_coadd(n=6)
    coadd.arms["R"].flux[0] = np.inf                 # +inf arm
    coadd.arms["B"].ivar[1] = -1.0                   # negative IVAR
    coadd.arms["Z"].ivar[2] = 0.0                    # no usable pixel
    coadd.arms["B"].flux[3, :5] = np.nan             # NaN flux where IVAR > 0
    coadd.arms["R"].flux[4, :5] = np.nan
    coadd.arms["R"].ivar[4, :5] = 0.0                # NaN flux, IVAR 0: fine
    expected = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0]], bool)
    assert np.array_equal(unusable_arms_reference(coadd), expected)
    assert np.array_equal(unusable_arms(coadd), expected)
    assert missing_arm(coadd).tolist() == [True, True, True, True, False, False]


# --- inference over a tiny survey ------------------------------------------------------------

@pytest.fixture()
def survey(tmp_path):
    root = tmp_path / "healpix"
    coadds = write_survey(root, HEALPIXELS)
    settings = InferenceSettings(per_coadd_dir=str(tmp_path / "per_coadd"),
                                 vac_filepath=str(tmp_path / "vac.fits"), progress=False)
    return root, coadds, settings


def velocities(table: pd.DataFrame) -> RadialVelocityLookup:
    return RadialVelocityLookup(radial_velocity_table(table))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).rglob("*.parquet"))}


def first_run(root, coadds, settings):
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                           settings, LABELS)
    build_value_added_catalogue(report, settings.vac_filepath)
    return report, snapshot(Path(settings.per_coadd_dir)), Path(settings.vac_filepath).read_bytes()


def test_bad_arm_is_flagged_never_flag_0(survey):
    root, coadds, settings = survey
    path = root / f"{partition_id(11)}.fits"
    coadd = read_coadd(path)
    coadd.arms["R"].flux[0] = np.inf
    coadd.arms["B"].ivar[3] = -1.0
    fc.write_tiny(path, coadd)
    run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)), settings, LABELS)
    table = pd.read_parquet(output_path(settings.per_coadd_dir, partition_id(11)))
    bit = 1 << FLAG_BITS["MISSING_ARM"]
    rows = table.set_index("TARGETID").loc[coadd.fibermap["TARGETID"].to_numpy()[[0, 2]]]
    assert (rows["flag"].to_numpy() & bit).tolist() == [bit, 0]


def test_truncated_coadd_fails_named_and_skip_drops_stale_rows(survey):
    root, coadds, settings = survey
    report, outputs, vac = first_run(root, coadds, settings)
    broken = partition_id(12)
    path = root / f"{broken}.fits"
    fc.truncate_before(path, "Z_WAVELENGTH")
    with pytest.raises(InferenceError, match=r"partition .*12 failed: FitsReadError: .*truncated "
                                             r"at an HDU boundary"):
        run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                      settings, LABELS)
    assert snapshot(Path(settings.per_coadd_dir)) == outputs  # raise: nothing replaced
    skip = InferenceSettings(**{**settings.__dict__, "on_error": "skip"})
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                           skip, LABELS)
    assert report["n_failed"] == 1 and broken in report["failed"]
    assert not output_path(settings.per_coadd_dir, broken).exists()  # stale rows dropped
    summary = build_value_added_catalogue(report, settings.vac_filepath)
    assert summary["n_missing"] == 1 and summary["failed"] == [broken] and summary["rebuilt"]
    header = fits.getheader(settings.vac_filepath, 1)
    assert header["NMISSING"] == 1 and header["NFAILED"] == 1 and header["FAILED1"] == broken


def test_no_usable_velocity_fails_before_writing(survey):
    root, coadds, settings = survey
    _, outputs, vac = first_run(root, coadds, settings)
    table = rvtab(coadds).assign(VRAD=np.nan)
    with pytest.raises(InferenceError, match=r"no target has a usable radial velocity: .*"
                                             r"'rows': 6, 'vrad_finite': 0"):
        run_inference(coadd_partitions(root), FakePredictor(), velocities(table), settings, LABELS)
    assert snapshot(Path(settings.per_coadd_dir)) == outputs
    assert Path(settings.vac_filepath).read_bytes() == vac


def test_targetid_repeated_across_coadds(survey):
    root, coadds, settings = survey
    path = root / f"{partition_id(12)}.fits"
    impostor = read_coadd(path)
    impostor.fibermap.loc[0, "TARGETID"] = int(coadds[11].fibermap["TARGETID"][0])
    fc.write_tiny(path, impostor)
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                           settings, LABELS)
    with pytest.raises(InferenceError, match=r"TARGETID \d+ of main/bright is in coadds .*-11 and "
                                             r".*-12"):
        build_value_added_catalogue(report, settings.vac_filepath)
    assert not Path(settings.vac_filepath).exists()
    summary = build_value_added_catalogue({**report, "on_error": "skip"}, settings.vac_filepath)
    assert summary["failed"] == [partition_id(12)] and summary["n_missing"] == 1


def test_second_run_on_the_same_outputs_is_refused(survey):
    root, coadds, settings = survey
    with output_lock(settings.per_coadd_dir), pytest.raises(OutputLockedError,
                                                             match="another run is writing"):
        run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                      settings, LABELS)
    assert snapshot(Path(settings.per_coadd_dir)) == {}


# --- garbled FIBERMAP rows: a counted, logged skip naming HDU, column and row ----------------

GARBLED_MESSAGE = (
    "HDU 'FIBERMAP': 6 garbled row(s) skipped: column 'OBJTYPE' (not a fibre code "
    "TGT/SKY/NON/BAD) in row(s) 4 ('XYZ'); column 'TARGETID' (not a positive integer) in row(s) "
    "0 (-5); column 'TARGET_RA' (not a finite angle in [0, 360] deg) in row(s) 2 (nan); column "
    "'TARGET_DEC' (not a finite angle in [-90, 90] deg) in row(s) 3 (95.0); column "
    "'COADD_FIBERSTATUS' (not an integer) in row(s) 5 (0.5); column 'REF_CAT' (bytes that do "
    "not decode as ASCII) in row(s) 6 ('\ufffd\ufffd')"
)
GARBLED_COUNTS = {f"garbled_fibermap:{column}": 1 for column in
                  ("OBJTYPE", "TARGETID", "TARGET_RA", "TARGET_DEC", "COADD_FIBERSTATUS", "REF_CAT")}


def test_garbled_fibermap_rows_are_counted_skips_in_inference(tmp_path, caplog):
    root = tmp_path / "healpix"
    coadds = write_survey(root, [11], n_spectra=9)  # the last is not in the MWS catalogue
    path = root / f"{partition_id(11)}.fits"
    coadd = read_coadd(path)
    coadd.fibermap["REF_CAT"] = "G2"
    fc.garble_fibermap(coadd, [0, 2, 3, 4, 5])
    fc.write_tiny(path, coadd)
    fc.garble_text(path, "REF_CAT", 6)
    settings = InferenceSettings(per_coadd_dir=str(tmp_path / "per_coadd"),
                                 vac_filepath=str(tmp_path / "vac.fits"), progress=False)
    with caplog.at_level(logging.INFO):
        report = run_inference(coadd_partitions(root), FakePredictor(), velocities(rvtab(coadds)),
                               settings, LABELS)
    assert f"coadd {partition_id(11)}: {GARBLED_MESSAGE}" in caplog.text
    assert ("2 of 9 spectra selected (garbled FIBERMAP rows 6 (OBJTYPE 1, TARGETID 1, TARGET_RA 1, "
            "TARGET_DEC 1, COADD_FIBERSTATUS 1, REF_CAT 1), not science targets 0, not in the MWS "
            "catalogue 1)") in caplog.text
    targets = report["targets"]
    assert targets["garbled_fibermap"] == 6 and targets["selected"] == 2
    assert targets["not_in_mws_catalogue"] == 1
    assert targets["not_science_target"] == 0  # the garbled OBJTYPE is counted once, as garbled
    assert {k: v for k, v in targets.items() if k.startswith("garbled_fibermap:")} == GARBLED_COUNTS
    table = pd.read_parquet(output_path(settings.per_coadd_dir, partition_id(11)))
    ids = coadds[11].fibermap["TARGETID"].to_numpy()
    assert table["TARGETID"].tolist() == ids[[1, 7]].tolist()  # row 1: bad fibre, kept, flagged
    assert np.isfinite(table[["TARGET_RA", "TARGET_DEC"]].to_numpy()).all()
    assert table["COADD_FIBERSTATUS"].tolist() == [8, 0]


def test_garbled_fibermap_rows_are_counted_skips_in_ingestion(caplog):
    good = {"TARGET_RA": 10.0, "TARGET_DEC": 5.0}
    coadd = make_coadd([
        {"TARGETID": 1, **good},
        {"TARGETID": 2, "TARGET_RA": np.nan, "TARGET_DEC": 5.0},   # no NaN into the crossmatch
        {"TARGETID": 3, **good, "MWS_TARGET": np.nan},
        {"TARGETID": 4, **good, "COADD_FIBERSTATUS": 0.5},         # not read as a good fibre
        {"TARGETID": 0, **good},
        {"TARGETID": 6, **good, "OBJTYPE": "T\ufffdT"},
        {"TARGETID": -7, "TARGET_RA": np.nan, "TARGET_DEC": np.nan, "OBJTYPE": "SKY"},  # fine
    ])
    pid = "main/bright/12/1234/coadd-main-bright-1234"
    mws = make_mws([{"TARGETID": i, "SURVEY": "main", "PROGRAM": "bright"} for i in (1, 2, 3, 4, 6)])
    apogee = make_apogee([{"APOGEE_ID": "2M-A", "RA": 10.0, "DEC": 5.0}])
    params = {"selection": {"require_good_fiberstatus": True, "objtype": "TGT",
                            "target_bitmask_columns": ["MWS_TARGET"]},
              "prefilter_radius_arcsec": 5.0, "apogee_epoch_yr": 2000.0,
              "mws_rvtab_columns": ["VRAD", "RVS_WARN", "SUCCESS"]}
    with caplog.at_level(logging.INFO):
        _, metadata = ingest_spectra({pid: lambda: coadd}, mws, apogee, params)
    assert metadata["TARGETID"].tolist() == [1]
    assert (f"{pid}: HDU 'FIBERMAP': 5 garbled row(s) skipped: column 'OBJTYPE' (not a fibre code "
            "TGT/SKY/NON/BAD) in row(s) 5 ('T\ufffdT'); column 'TARGETID' (not a positive "
            "integer) in row(s) 4 (0); column 'TARGET_RA' (not a finite angle in [0, 360] deg) in "
            "row(s) 1 (nan); column 'COADD_FIBERSTATUS' (not an integer) in row(s) 3 (0.5); "
            "column 'MWS_TARGET' (not an integer) in row(s) 2 (nan)") in caplog.text
    assert ("1 of 7 spectra kept (near an APOGEE star); rejected: garbled FIBERMAP row 5 (OBJTYPE "
            "1, TARGETID 1, TARGET_RA 1, COADD_FIBERSTATUS 1, MWS_TARGET 1), bad fibre 0, not a "
            "science target 1, not an MWS target 0") in caplog.text
    assert "5 garbled FIBERMAP rows skipped (OBJTYPE 1," in caplog.text


# --- ingestion, crossmatch, feature engineering ---------------------------------------------

def test_ingestion_refuses_targetid_of_two_coadds():
    metadata = pd.DataFrame({"TARGETID": [5, 6, 5], "SURVEY": "main", "PROGRAM": "bright",
                             "HEALPIX": [1, 1, 2], "source_file": ["a", "a", "b"],
                             "source_row": [0, 1, 7]})
    with pytest.raises(ValueError, match="TARGETID 5 of main/bright is in a row 0 and b row 7"):
        check_unique_targets(metadata)
    check_unique_targets(metadata.assign(PROGRAM=["bright", "bright", "dark"]))


def test_crossmatch_with_no_pair_fails_with_counts():
    report = {"final": {"pairs": 0}, "apogee_cuts": [{"step": "snr", "remaining": 0}]}
    with pytest.raises(ValueError, match=r"crossmatch: 0 pairs; nothing written.*'snr'"):
        require_pairs(report)


def test_feature_engineering_refuses_a_label_on_two_targets():
    metadata = pd.DataFrame({"TARGETID": [5, 5], "TARGET_RA": [10.0, 10.1],
                             "TARGET_DEC": [0.0, 0.0], "source_file": ["a", "b"],
                             "source_row": [0, 3]})
    with pytest.raises(FeatureEngineeringError, match=r"TARGETID 5 labels two different stars: "
                                                      r"spectra at a row 0 and b row 3 are 360.0"):
        check_label_targets(metadata, pd.DataFrame({"TARGETID": [5]}))
    check_label_targets(metadata.assign(TARGET_RA=10.0), pd.DataFrame({"TARGETID": [5]}))


# --- io.atomic: named write errors, stale temporaries ----------------------------------------

def test_out_of_space_names_the_path(tmp_path):
    target = tmp_path / "catalogue.fits"
    target.write_bytes(b"good")
    with pytest.raises(OSError, match=rf"No space left on device while writing {target}") as caught:
        with atomic.atomic_write(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_bytes() == b"good" and list(tmp_path.iterdir()) == [target]


def test_stale_temporaries_removed(tmp_path):
    dead = tmp_path / ".vac.fits.999999999-abcdefgh.fits.tmp"
    alive = tmp_path / f".vac.fits.{atomic.os.getpid()}-abcdefgh.fits.tmp"
    for path in (dead, alive):
        path.write_bytes(b"x")
        atomic.os.utime(path, (0, 0))
    assert atomic.remove_stale_temporaries(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()


def test_unknown_environment_is_named(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "parameters.yml").write_text("a: 1\n")
    (tmp_path / "dr1").mkdir()
    with pytest.raises(UnknownEnvironmentError, match=r"environment 'dr2' does not exist.*\['dr1'\]"):
        CheckedConfigLoader(str(tmp_path), env="dr2", base_env="base", default_run_env="local")
    assert CheckedConfigLoader(str(tmp_path), env="dr1", base_env="base",
                               default_run_env="local")["parameters"] == {"a": 1}


def test_bundle_metadata_named(tmp_path):
    path = tmp_path / "bundle.safetensors"
    for bundle, message in [("{garbage", "the 'bundle' metadata is not valid JSON"),
                            (json.dumps({"architecture": {}, "colour": 1}),
                             r"unknown field\(s\) \['colour'\]")]:
        save_file({"x": torch.zeros(1)}, str(path),
                  metadata={"bundle": bundle, "format": str(BUNDLE_FORMAT_VERSION)})
        with pytest.raises(BundleReadError, match=message):
            load_bundle(path)
