"""mock_survey -> data_ingestion -> crossmatch on a tiny mock survey, through Kedro, with the
project's own catalog and parameters (paths moved below tmp_path, no MLflow): the matched
training set recovers the true DESI x APOGEE pairs and holds no false match."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from kedro.runner import SequentialRunner

from desi_abundances.crossmatch import compare_with_truth
from desi_abundances.pipelines import crossmatch, data_ingestion, mock_survey
from desi_abundances.spectra import median_snr
from kedro_project import catalog_below, feed_params, load_project_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("foundation")
    loader = load_project_config()
    pipeline = mock_survey.create_pipeline() + data_ingestion.create_pipeline() + crossmatch.create_pipeline()
    catalog = catalog_below(loader, pipeline, root)
    params = copy.deepcopy(dict(loader["parameters"]))
    params["mock_survey"].update(
        n_stars=300, n_apogee_only=30, healpix_centres=[[150.0, 2.0], [180.0, 30.0]],
        batch_size=128, output_dir=str(root / "data/01_raw"), repeat_fraction=0.1,
    )
    feed_params(catalog, params)
    SequentialRunner().run(pipeline, catalog)
    return catalog, params, root


def test_outputs_written_where_the_catalog_says(run):
    _, _, root = run
    for path in ("data/02_intermediate/stacked_spectra.fits", "data/02_intermediate/spectra_metadata.parquet",
                 "data/02_intermediate/apogee_stars.parquet", "data/03_primary/crossmatch.parquet",
                 "data/08_reporting/crossmatch_report.json"):
        assert (root / path).exists(), path


def test_stacked_spectra_row_matched_to_metadata(run):
    catalog, _, _ = run
    stacked = catalog.load("stacked_spectra")
    meta = catalog.load("spectra_metadata")
    assert stacked.n_spectra == len(meta) > 0
    np.testing.assert_array_equal(stacked.fibermap["TARGETID"], meta["TARGETID"])
    np.testing.assert_allclose(median_snr(stacked), meta["snr"], rtol=1e-6)
    assert (meta["COADD_FIBERSTATUS"] == 0).all() and (meta["MWS_TARGET"] != 0).all()
    assert (meta["GAIA_SOURCE_ID"] > 0).all()  # every mock star has an EDR3 id in the MWS GAIA HDU
    assert meta.groupby("TARGETID").size().max() == 2  # repeat observations kept for the crossmatch


def test_crossmatch_recovers_truth_without_false_match(run):
    catalog, params, _ = run
    matched = catalog.load("crossmatch")
    result = compare_with_truth(
        matched, catalog.load("mock_truth"), catalog.load("spectra_metadata"),
        catalog.load("apogee_stars"), params["crossmatch"]["apogee_cuts"],
    )
    print("truth check:", {k: result[k] for k in ("expected", "recovered", "matched", "false_matches")})
    print("report:", catalog.load("crossmatch_report")["matching"])
    assert result["expected"] >= 30
    assert result["false_matches"] == 0, result["false_pairs"]
    assert result["recovery"] >= 0.99, result["missed_apogee_ids"]
    assert matched["TARGETID"].is_unique and matched["APOGEE_ID"].is_unique
    assert set(matched["match_method"]) <= {"gaia_id", "position"}
    report = catalog.load("crossmatch_report")
    assert report["final"]["pairs"] == len(matched)
    assert [step["step"] for step in report["apogee_cuts"]][:2] == ["allstar_rows", "extratarg_duplicate"]
