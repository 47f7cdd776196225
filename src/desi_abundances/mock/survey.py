"""The mock DESI x APOGEE survey: stars on the sky, DESI observations (healpix coadds), the
MWS catalogue, an APOGEE DR17-style allStar and the truth table. Pure functions of a
configuration dict and a seed; no file I/O (the Kedro catalog writes the results).

Everything produced here is MOCK data: coadd headers carry ``MOCK = True``.

Flow: :func:`simulate_stars` (one row per star, DESI targets and APOGEE-only stars) ->
:func:`plan_observations` (one row per DESI spectrum, incl. repeat observations and sky
fibres, grouped into healpix files) -> :func:`simulate_coadd` (one file at a time) ->
:func:`mws_catalogue`, :func:`apogee_allstar`, :func:`truth_table`.

This module is the mock's front door: each step lives in its own module of ``mock/``
(programmes, stars, observing, fibermap, coadds, mws, allstar, truth) and is re-exported here.
"""
from __future__ import annotations

from desi_abundances.mock.allstar import APOGEE_ELEMENT_ERRORS, APOGEE_ELEMENT_MISSING, apogee_allstar
from desi_abundances.mock.coadds import SurveySimulator, coadd_factories, masked_median, scores
from desi_abundances.mock.fibermap import exp_fibermap, fibermap
from desi_abundances.mock.mws import mws_catalogue, spectrum_snr
from desi_abundances.mock.observing import iter_partitions, plan_observations, snr_per_pixel
from desi_abundances.mock.programmes import (
    APOGEE_EPOCH,
    DESI_REF_EPOCH,
    DR3_EPOCH,
    SPECPROD,
    Programme,
    healpix_centres,
    stage_mix,
    survey_programmes,
)
from desi_abundances.mock.stars import (
    absolute_g,
    apogee_id,
    apogee_selection,
    bp_rp_colour,
    clip_to_spectral_model,
    positions_in_pixel,
    sample_magnitudes,
    simulate_stars,
)
from desi_abundances.mock.truth import build_summary, truth_table

__all__ = [
    "APOGEE_ELEMENT_ERRORS", "APOGEE_ELEMENT_MISSING", "APOGEE_EPOCH", "DESI_REF_EPOCH",
    "DR3_EPOCH", "SPECPROD", "Programme", "SurveySimulator", "absolute_g", "apogee_allstar",
    "apogee_id", "apogee_selection", "bp_rp_colour", "build_summary", "clip_to_spectral_model",
    "coadd_factories", "exp_fibermap", "fibermap", "healpix_centres", "iter_partitions",
    "masked_median", "mws_catalogue", "plan_observations", "positions_in_pixel", "survey_programmes",
    "sample_magnitudes", "scores", "simulate_stars", "snr_per_pixel", "spectrum_snr",
    "stage_mix", "truth_table",
]
