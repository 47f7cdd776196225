"""Thin nodes of the mock_survey pipeline; the science is in ``desi_abundances.mock``."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from desi_abundances.mock import survey
from desi_abundances.spectra import CoaddSpectra

logger = logging.getLogger(__name__)


def simulate_stars(params: dict[str, Any]) -> tuple[pd.DataFrame, float]:
    """Draw every star of the mock; also returns the build start time (epoch seconds)."""
    started = time.time()
    stars = survey.simulate_stars(params)
    logger.info("mock survey: %d stars (%d DESI, %d APOGEE)", len(stars),
                int(stars["in_desi"].sum()), int(stars["in_apogee"].sum()))
    return stars, started


def plan_observations(stars: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per DESI spectrum (incl. repeats and sky fibres), grouped in healpix files."""
    return survey.plan_observations(stars, params)


def simulate_coadds(stars: pd.DataFrame, observations: pd.DataFrame,
                    params: dict[str, Any]) -> dict[str, Callable[[], CoaddSpectra]]:
    """Lazy coadds: ``{partition id: callable}``, simulated one file at a time on save."""
    factories = survey.coadd_factories(stars, observations, params)
    logger.info("mock survey: %d coadd files to simulate", len(factories))
    return factories


def build_mws_catalogue(desi_coadds: dict[str, Callable[[], CoaddSpectra]],
                        observations: pd.DataFrame, stars: pd.DataFrame,
                        params: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """MWS catalogue (RVTAB, FIBERMAP, GAIA) using the S/N measured on the written coadds."""
    snr = survey.spectrum_snr(desi_coadds)
    return survey.mws_catalogue(observations, stars, snr, params)


def build_apogee_allstar(stars: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """APOGEE DR17-style allStar table."""
    return survey.apogee_allstar(stars, params)


def build_truth(stars: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """True labels and identifiers of every star."""
    return survey.truth_table(stars, observations)


def summarise_build(stars: pd.DataFrame, observations: pd.DataFrame,
                    mws_catalogue: dict[str, pd.DataFrame], apogee_allstar: pd.DataFrame,
                    mock_truth: pd.DataFrame, started: float,
                    params: dict[str, Any]) -> dict[str, Any]:
    """Build summary (counts, seconds, file sizes) for mock_survey_complete.json.

    Takes the written catalogues as inputs so that Kedro runs it last; file sizes are read
    (stat only) below ``params['output_dir']``.
    """
    root = Path(params.get("output_dir", "data/01_raw"))
    sizes: dict[str, int] = {}
    if root.is_dir():
        coadd_bytes = 0
        for dirpath, _dirs, files in os.walk(root / "desi" / "healpix"):
            coadd_bytes += sum(os.path.getsize(Path(dirpath) / f) for f in files
                               if f.endswith(".fits"))
        sizes["desi_coadds"] = coadd_bytes
        for name in ("mwsall-pix-mock.fits", "allStar-dr17-synspec_rev1-mock.fits",
                     "mock_truth.parquet"):
            if (root / name).exists():
                sizes[name] = (root / name).stat().st_size
    summary = survey.build_summary(stars, observations, apogee_allstar, started, sizes)
    summary["n_mws_rows"] = int(len(mws_catalogue["RVTAB"]))
    summary["n_truth_rows"] = int(len(mock_truth))
    summary["seed"] = int(params["seed"])
    summary["spectral_model"] = params.get("spectral_model", "analytic")
    logger.info("mock survey built: %s", summary)
    return summary
