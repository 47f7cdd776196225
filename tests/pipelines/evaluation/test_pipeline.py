"""evaluation on the session's tiny chain (tests/support/tiny_chain.py): test predictions of
every method, Cramer-Rao bounds, metrics (MOCK in the summary), every figure; and the
pipeline's structure (nodes, inputs, outputs)."""
from __future__ import annotations

import json

import pytest
from tiny_chain import file_outputs

from desi_abundances.pipelines import evaluation

pytestmark = pytest.mark.slow

FIGURES = ("kiel_diagram", "mg_fe_vs_fe_h", "one_to_one", "residuals_vs_snr",
           "uncertainty_calibration", "method_comparison", "information_limit")


def test_structure():
    pipeline = evaluation.create_pipeline()
    names = {node.name for node in pipeline.nodes}
    assert names >= {"split_spectra", "evaluation_is_mock", "fit_and_predict_cannon",
                     "fit_and_predict_ridge", "predict_network_on_test", "assemble_test_predictions",
                     "compute_information_limit", "compute_metrics", "write_metrics_summary"}
    assert names >= {f"plot_{figure}" for figure in FIGURES if figure != "information_limit"}
    assert pipeline.inputs() >= {"data_split", "model_bundle", "training_spectra",
                                 "params:evaluation", "params:labels", "params:mock_survey"}
    assert pipeline.all_outputs() >= {"test_predictions", "metrics", "metrics_summary",
                                      "test_cramer_rao_bounds",
                                      *(f"evaluation_{figure}_figure" for figure in FIGURES)}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(evaluation.create_pipeline(), tiny_chain.catalog)
    assert set(names) >= {"test_predictions", "metrics", "metrics_summary"}
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_predictions_metrics_and_figures(tiny_chain):
    root = tiny_chain.root
    predictions = tiny_chain.catalog.load("test_predictions")
    assert len(predictions) > 10 and "TARGETID" in predictions
    metrics = json.loads((root / "data/08_reporting/metrics.json").read_text())
    assert "fe_h" in json.dumps(metrics)
    assert "MOCK" in (root / "data/08_reporting/metrics_summary.md").read_text()
    for figure in FIGURES:
        assert (root / f"data/08_reporting/figures/{figure}.png").stat().st_size > 0, figure
