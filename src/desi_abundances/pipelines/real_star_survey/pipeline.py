"""Wiring of the real_star_survey pipeline (``kedro run --env real_stars --pipelines=real_star_survey``)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.real_star_survey import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """wheel -> libraries -> coadds + MWS-like catalogue -> reference labels -> summary.

    The coadds, catalogue and labels are written to the datasets the ordinary pipelines read
    (desi_coadds, mws_catalogue, apogee_allstar), which conf/real_stars points elsewhere."""
    return Pipeline([
        Node(nodes.read_libraries, inputs="params:real_star_survey",
             outputs="real_star_libraries", name="read_real_star_libraries"),
        Node(nodes.write_coadds, inputs=["real_star_libraries", "params:real_star_survey"],
             outputs=["desi_coadds", "mws_catalogue", "real_star_targets"],
             name="write_real_star_coadds"),
        Node(nodes.build_reference_labels,
             inputs=["real_star_libraries", "real_star_targets", "params:real_star_survey"],
             outputs="apogee_allstar", name="build_real_star_reference_labels"),
        Node(nodes.summarise,
             inputs=["real_star_targets", "apogee_allstar", "params:real_star_survey"],
             outputs="real_star_survey_complete", name="summarise_real_star_survey"),
    ])
