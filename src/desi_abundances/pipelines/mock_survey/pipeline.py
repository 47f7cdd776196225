"""Wiring of the mock_survey pipeline (``kedro run --pipelines=mock_survey``)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.mock_survey import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """stars -> observations -> coadds (lazy, one file at a time) -> MWS catalogue,
    allStar, truth -> build summary (written last)."""
    return Pipeline([
        Node(nodes.simulate_stars, inputs="params:mock_survey",
             outputs=["mock_stars", "mock_build_started"], name="simulate_mock_stars"),
        Node(nodes.plan_observations, inputs=["mock_stars", "params:mock_survey"],
             outputs="mock_observations", name="plan_mock_observations"),
        Node(nodes.simulate_coadds,
             inputs=["mock_stars", "mock_observations", "params:mock_survey"],
             outputs="desi_coadds", name="simulate_mock_coadds"),
        Node(nodes.build_mws_catalogue,
             inputs=["desi_coadds", "mock_observations", "mock_stars", "params:mock_survey"],
             outputs="mws_catalogue", name="build_mock_mws_catalogue"),
        Node(nodes.build_apogee_allstar, inputs=["mock_stars", "params:mock_survey"],
             outputs="apogee_allstar", name="build_mock_apogee_allstar"),
        Node(nodes.build_truth, inputs=["mock_stars", "mock_observations"],
             outputs="mock_truth", name="build_mock_truth"),
        Node(nodes.summarise_build,
             inputs=["mock_stars", "mock_observations", "mws_catalogue", "apogee_allstar",
                     "mock_truth", "mock_build_started", "params:mock_survey"],
             outputs="mock_survey_complete", name="summarise_mock_survey"),
    ])
