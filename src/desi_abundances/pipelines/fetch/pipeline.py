"""Wiring of the fetch pipeline (not in the default chain: ``kedro run --pipelines=fetch --env dr1``)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.fetch.nodes import download_coadds, fetch_catalogues, plan_coadds


def create_pipeline(**kwargs) -> Pipeline:
    """catalogues (downloaded where missing) -> the coadds a run needs -> downloaded coadds."""
    return Pipeline(
        [
            Node(fetch_catalogues, inputs="params:fetch", outputs="fetched_catalogues", name="fetch_catalogues"),
            Node(plan_coadds, inputs=["fetched_catalogues", "params:fetch"], outputs="fetch_plan",
                 name="plan_coadds"),
            Node(download_coadds, inputs=["fetch_plan", "params:fetch"], outputs="fetch_report",
                 name="download_coadds"),
        ]
    )
