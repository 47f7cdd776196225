"""Wiring of the crossmatch pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.crossmatch.nodes import crossmatch_desi_apogee


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                crossmatch_desi_apogee,
                inputs=["spectra_metadata", "apogee_stars", "params:crossmatch",
                        "params:labels_source"],
                outputs=["crossmatch", "crossmatch_report"],
                name="crossmatch_desi_apogee",
            ),
        ]
    )
