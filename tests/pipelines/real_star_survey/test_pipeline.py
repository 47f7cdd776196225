"""real_star_survey: registered (not in the default chain), and through Kedro with the
real_stars environment on a fake wheel (no download): survey -> data_ingestion ->
crossmatch (by TARGETID) -> feature_engineering, the generic label table end to end."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from astropy.io import fits
from fake_wheel import make_wheel
from kedro.runner import SequentialRunner
from kedro_project import PROJECT, catalog_below, feed_params, load_project_config, redirect

from desi_abundances.pipeline_registry import DEFAULT_CHAIN
from desi_abundances.pipelines import (
    crossmatch,
    data_ingestion,
    feature_engineering,
    real_star_survey,
)


def test_registered_outside_the_default_chain():
    pipeline = real_star_survey.create_pipeline()
    assert {"desi_coadds", "mws_catalogue", "apogee_allstar"} <= pipeline.all_outputs()
    assert pipeline.inputs() == {"params:real_star_survey"}
    assert "real_star_survey" not in DEFAULT_CHAIN
    assert (PROJECT / "src/desi_abundances/pipelines/real_star_survey/pipeline.py").exists()


def test_real_stars_env_runs_the_ordinary_pipelines(tmp_path):
    loader = load_project_config(env="real_stars")
    pipeline = (real_star_survey.create_pipeline() + data_ingestion.create_pipeline()
                + crossmatch.create_pipeline() + feature_engineering.create_pipeline())
    catalog = catalog_below(loader, pipeline, tmp_path)
    params = redirect(copy.deepcopy(dict(loader["parameters"])), tmp_path)
    wheel_dir = tmp_path / "wheel"
    wheel_dir.mkdir()
    make_wheel(wheel_dir, n_miles=14, n_stelib=4)
    params["real_star_survey"].update(wheel_dir=str(wheel_dir), download=False)
    feed_params(catalog, params)
    SequentialRunner().run(pipeline, catalog)

    raw = tmp_path / "data/real_stars/01_raw"
    coadds = sorted(raw.glob("desi/healpix/special/other/*/*/coadd-special-other-*.fits"))
    assert coadds, "no coadd written"
    with fits.open(coadds[0]) as hdul:
        assert hdul[0].header["REAL"] is True and "LIBFWHM" in hdul[0].header
        assert hdul["B_FLUX"].data.shape[1] == 2751 and hdul["Z_IVAR"].data.dtype.kind == "f"
    with fits.open(raw / "reference_labels.fits") as hdul:
        assert {"REFERENCE_ID", "TARGETID", "TEFF_ERR"} <= set(hdul[1].columns.names)
    matched = pd.read_parquet(tmp_path / "data/real_stars/03_primary/crossmatch.parquet")
    assert set(matched["match_method"]) == {"targetid"}
    assert set(matched["LIBRARY"]) == {"MILES", "STELIB"}           # keep_columns carried
    # MILES m0014 has Teff 99999 (missing): not matched (require_finite); STELIB '-' [Fe/H] too
    assert "MILES_m0014" not in set(matched["REFERENCE_ID"])
    assert len(matched) == 13 + 1
    split = pd.read_parquet(tmp_path / "data/real_stars/05_model_input/data_split.parquet")
    assert set(split["TARGETID"]) == set(matched["TARGETID"])
    assert not list(PROJECT.glob("data/real_stars/**/*.tmp"))
    assert np.isfinite(matched["TEFF"]).all()
