"""Nodes of the inference pipeline: thin glue around :mod:`desi_abundances.inference`."""
from __future__ import annotations

from typing import Any

import pandas as pd

from desi_abundances.datasets.coadd_tree import CoaddTree
from desi_abundances.inference import (
    InferenceSettings,
    RadialVelocityLookup,
    build_value_added_catalogue,
    radial_velocity_table,
    run_inference,
)
from desi_abundances.nn.adapter import BundlePredictor


def predict_coadds(
    coadds: CoaddTree,
    mws_radial_velocities: pd.DataFrame,
    model_bundle: Any,
    labels: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Predict every selected coadd lacking a complete output; write one Parquet per coadd.

    Args:
        coadds: the healpix coadds (``CoaddTreeDataset``: paths and reader options).
        mws_radial_velocities: the MWS catalogue's RVTAB (TARGETID, SURVEY, PROGRAM, VRAD,
            RVS_WARN, SUCCESS).
        model_bundle: the trained ``ModelBundle``; refused (once) when incompatible.
        labels: ``params:labels``; the bundle must predict exactly these.
        params: ``params:inference``.

    Returns:
        The run report (counts, spectra per second, fingerprints, partitions).
    """
    settings = InferenceSettings.from_params(params)
    predictor = BundlePredictor(model_bundle)
    velocities = RadialVelocityLookup(radial_velocity_table(mws_radial_velocities))
    return run_inference(coadds.paths, predictor, velocities, settings, labels,
                         read_options=coadds.read_options)


def per_coadd_written(inference_report: dict[str, Any]) -> str:
    """The folder the per-coadd Parquet files were streamed into (``inference_per_coadd``:
    a catalog entry, so kedro-viz shows and previews the product)."""
    return str(inference_report["per_coadd_dir"])



def build_vac(inference_report: dict[str, Any], params: dict[str, Any]
              ) -> tuple[dict[str, Any], str]:
    """Merge the per-coadd outputs into the FITS value-added catalogue; return its summary
    and its path (the ``desi_abundances_vac`` catalog entry)."""
    settings = InferenceSettings.from_params(params)
    summary = build_value_added_catalogue(inference_report, settings.vac_filepath)
    return summary, str(summary["vac_filepath"])
