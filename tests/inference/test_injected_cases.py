"""Injected cases through the inference path (issue 15) on the session's tiny chain: spectra
that are not one normal star must be flagged, the normal ones mostly not.

The tiny chain's bundle (tests/support/tiny_chain.py) predicts its own mock coadds through
``inference.prepare.predict_coadd`` (what the inference node runs per coadd): the bright
targets as they are, shifted by a wrong radial velocity, made double-lined binaries
(tests/support/injected_spectra.composite), and the REAL DESI galaxy coadd of ../shared given
an MWS entry (skipped without ../shared).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from injected_spectra import composite

from desi_abundances.inference.flags import FLAG_BITS
from desi_abundances.inference.prepare import predict_coadd, read_partition
from desi_abundances.inference.settings import InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup, radial_velocity_table
from desi_abundances.nn.adapter import BundlePredictor

pytestmark = pytest.mark.slow

NOT_ONE_STAR = (1 << FLAG_BITS["POOR_FIT"]) | (1 << FLAG_BITS["FAR_FROM_TRAINING"]) | (
    1 << FLAG_BITS["COMPOSITE"])
"""The bits that say a spectrum is not a normal single star."""
REAL_GALAXY = (Path(__file__).resolve().parents[2]
               / "../shared/data/real_desi/coadd-special-dark-27247.fits")


@pytest.fixture(scope="module")
def case(tiny_chain):
    """(predictor, settings, velocity table, coadd of up to 40 targets at S/N 20-60 of the
    largest tiny coadd, its partition id)."""
    catalog = tiny_chain.catalog
    tree = catalog.load("inference_coadds")
    coadds = {pid: read_partition(path, tree.read_options) for pid, path in tree.paths.items()}
    pid, coadd = max(coadds.items(), key=lambda item: item[1].n_spectra)
    rvtab = catalog.load("mws_radial_velocities")
    settings = InferenceSettings.from_params({**tiny_chain.params["inference"],
                                              "progress": False})
    predictor = BundlePredictor(catalog.load("model_bundle"))
    normal = predict_coadd(coadd, pid, predictor, RadialVelocityLookup(
        radial_velocity_table(rvtab)), settings)
    # S/N 20-60: noise above the tiny spectrum model's own errors (which brighter spectra show)
    bright = normal[(normal["snr"] > 20) & (normal["snr"] < 60)].head(40)
    rows = np.flatnonzero(coadd.fibermap["TARGETID"].isin(bright["TARGETID"]).to_numpy())
    return predictor, settings, rvtab, coadd.select(rows), pid


def flagged(table: pd.DataFrame) -> float:
    return float(np.mean((table["flag"].to_numpy() & NOT_ONE_STAR) != 0))


def test_normal_bright_spectra_are_mostly_not_flagged(case):
    predictor, settings, rvtab, bright, pid = case
    table = predict_coadd(bright, pid, predictor, RadialVelocityLookup(
        radial_velocity_table(rvtab)), settings)
    assert len(table) >= 10 and flagged(table) <= 0.3


@pytest.mark.parametrize("dv_kms", [-400.0, 150.0, 300.0])
def test_a_wrong_radial_velocity_is_flagged(case, dv_kms):
    predictor, settings, rvtab, bright, pid = case
    wrong = rvtab.copy()
    wrong["VRAD"] = wrong["VRAD"] + dv_kms
    table = predict_coadd(bright, pid, predictor,
                          RadialVelocityLookup(radial_velocity_table(wrong)), settings)
    assert len(table) >= 10 and flagged(table) >= 0.8


def test_double_lined_binaries_are_flagged(case):
    predictor, settings, rvtab, bright, pid = case
    n = bright.n_spectra
    binaries = composite(bright, np.arange(n), np.roll(np.arange(n), 1), 0.8, 250.0)
    table = predict_coadd(binaries, pid, predictor,
                          RadialVelocityLookup(radial_velocity_table(rvtab)), settings)
    assert len(table) >= 10 and flagged(table) >= 0.8


@pytest.mark.skipif(not REAL_GALAXY.exists(), reason="../shared/data/real_desi is absent")
def test_a_real_galaxy_given_an_mws_entry_is_flagged(case):
    predictor, settings, _, _, _ = case
    galaxy = read_partition(REAL_GALAXY, {"read_resolution": False})
    fibermap = galaxy.fibermap
    rvtab = pd.DataFrame({"TARGETID": fibermap["TARGETID"].to_numpy(np.int64),
                          "SURVEY": "special", "PROGRAM": "dark", "VRAD": 0.0,
                          "RVS_WARN": 0, "SUCCESS": True})
    table = predict_coadd(galaxy, "special/dark/272/27247/coadd-special-dark-27247", predictor,
                          RadialVelocityLookup(radial_velocity_table(rvtab)),
                          dataclasses.replace(settings, allow_mock_model=True))
    assert len(table) == 1 and flagged(table) == 1.0
