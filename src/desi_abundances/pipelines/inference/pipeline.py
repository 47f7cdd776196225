"""Wiring of the inference pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.inference.nodes import (
    build_vac,
    per_coadd_written,
    predict_coadds,
)


def create_pipeline(**kwargs) -> Pipeline:
    """coadds + MWS radial velocities + model bundle -> per-coadd Parquet -> FITS VAC."""
    return Pipeline(
        [
            Node(
                predict_coadds,
                inputs=[
                    "inference_coadds",
                    "mws_radial_velocities",
                    "model_bundle",
                    "params:labels",
                    "params:inference",
                ],
                outputs="inference_report",
                name="predict_coadds",
            ),
            Node(
                build_vac,
                inputs=["inference_report", "params:inference"],
                outputs=["vac_summary", "desi_abundances_vac"],
                name="build_vac",
            ),
            # the streamed per-coadd files as a catalog entry (written by predict_coadds)
            Node(per_coadd_written, inputs="inference_report", outputs="inference_per_coadd",
                 name="declare_per_coadd_outputs"),
        ]
    )
