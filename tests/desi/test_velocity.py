"""desi.velocity: the trusted radial velocity, and training and inference agreeing on it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from desi_abundances.desi.velocity import trusted_vrad, trusted_vrad_kms
from desi_abundances.inference import RadialVelocityLookup, radial_velocity_table
from desi_abundances.ingestion import join_mws, mws_table


def test_trusted_vrad_needs_success_and_no_warning():
    table = pd.DataFrame(
        {"VRAD": [10.0, 20.0, 30.0, np.nan], "RVS_WARN": [0, 4, 0, 0], "SUCCESS": [True, True, False, True]}
    )
    np.testing.assert_array_equal(trusted_vrad_kms(table), [10.0, np.nan, np.nan, np.nan])
    assert np.isnan(trusted_vrad_kms(pd.DataFrame({"VRAD": [1.0]}))).all()


def test_missing_success_or_warning_is_not_trusted():
    vrad = trusted_vrad([1.0, 2.0, 3.0, 4.0, np.inf], [0, np.nan, 0, 0, 0],
                        pd.Series([True, True, None, np.nan, True], dtype=object))
    np.testing.assert_array_equal(vrad, [1.0, np.nan, np.nan, np.nan, np.nan])
    boolean = pd.array([True, pd.NA, False], dtype="boolean")
    np.testing.assert_array_equal(trusted_vrad([1.0, 2.0, 3.0], [0, 0, 0], boolean), [1.0, np.nan, np.nan])


def test_training_and_inference_pick_the_same_velocities():
    """The same FIBERMAP rows and MWS RVTAB: data_ingestion's join + rule and inference's
    lookup give the same velocity for every spectrum, whatever the case of SURVEY/PROGRAM."""
    rvtab = pd.DataFrame({
        "TARGETID": np.array([1, 2, 3, 4, 5, 6, 7, 1], dtype=np.int64),
        "SURVEY": ["MAIN", "main ", "Main", "main", "main", "sv3", "main", "main"],
        "PROGRAM": ["bright", "BRIGHT", "bright", "bright", "backup", "bright", "bright", "backup"],
        "VRAD": [10.0, 20.0, 30.0, np.nan, 50.0, 60.0, 70.0, 80.0],
        "RVS_WARN": [0, 0, 4, 0, 0, 0, 0, 0],
        "SUCCESS": [True, True, True, True, False, True, True, True],
    })
    # the spectra: one coadd main/bright (header in upper case), one main/backup, one sv3
    spectra = pd.DataFrame({
        "TARGETID": np.array([1, 2, 3, 4, 5, 6, 7, 8, 1], dtype=np.int64),
        "SURVEY": ["main"] * 4 + ["main", "sv3", "main", "main", "main"],
        "PROGRAM": ["bright"] * 4 + ["backup", "bright", "bright", "bright", "backup"],
    })
    # training: ingestion's MWS table, its join and the rule
    mws = mws_table({"RVTAB": rvtab}, ["VRAD", "RVS_WARN", "SUCCESS"])
    training = trusted_vrad_kms(join_mws(spectra, mws))
    # inference: the lookup, coadd by coadd
    lookup = RadialVelocityLookup(radial_velocity_table(rvtab))
    inference = np.full(len(spectra), np.nan)
    for (survey, program), rows in spectra.groupby(["SURVEY", "PROGRAM"]).groups.items():
        inference[rows] = lookup.lookup(survey.upper(), program.title(), spectra["TARGETID"][rows])[0]
    expected = [10.0, 20.0, np.nan, np.nan, np.nan, 60.0, 70.0, np.nan, 80.0]
    np.testing.assert_array_equal(training, expected)
    np.testing.assert_array_equal(inference, expected)
