"""Wiring of the data_ingestion pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.data_ingestion.nodes import ingest_spectra, select_apogee_stars


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_apogee_stars,
                inputs=["apogee_allstar", "params:data_ingestion", "params:labels_source",
                        "params:labels"],
                outputs="apogee_stars",
                name="select_apogee_stars",
            ),
            Node(
                ingest_spectra,
                inputs=["desi_coadds", "mws_catalogue", "apogee_stars", "params:data_ingestion"],
                outputs=["stacked_spectra", "spectra_metadata"],
                name="ingest_spectra",
            ),
        ]
    )
