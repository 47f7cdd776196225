"""Wiring of the real_star_sim_to_real pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.real_star_sim_to_real.nodes import sim_to_real_gap


def create_pipeline(**kwargs) -> Pipeline:
    """mock_model_bundle (the default run's data/06_models bundle) + the REAL test split ->
    sim_to_real_predictions, sim_to_real.json, MLflow ``sim_to_real/...``, sim_to_real.md."""
    return Pipeline(
        [
            Node(sim_to_real_gap,
                 inputs=["mock_model_bundle", "training_spectra", "data_split", "metrics",
                         "params:labels", "params:evaluation"],
                 outputs=["sim_to_real_predictions", "sim_to_real", "sim_to_real_mlflow_metrics",
                          "sim_to_real_summary"],
                 name="sim_to_real_gap"),
        ]
    )
