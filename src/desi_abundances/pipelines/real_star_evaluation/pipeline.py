"""Wiring of the real_star_evaluation pipeline (``params:real_star_evaluation``)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.real_star_evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """training_spectra + crossmatch -> stratified folds, k-fold cross-validation of network,
    ridge and The Cannon (real_star_cross_validation.json, out-of-fold predictions, MLflow
    ``<method>/cv/...``) and the transfer test across libraries (real_star_transfer.json,
    MLflow ``<method>/transfer_<a>_to_<b>/...``); both in real_star_report.md."""
    return Pipeline(
        [
            Node(nodes.make_folds,
                 inputs=["training_spectra", "crossmatch", "params:feature_engineering",
                         "params:real_star_evaluation"],
                 outputs="real_star_folds", name="make_real_star_folds"),
            Node(nodes.cross_validate,
                 inputs=["training_spectra", "real_star_folds", "params:labels",
                         "params:training", "params:feature_engineering", "params:evaluation",
                         "params:real_star_evaluation"],
                 outputs=["real_star_cv_predictions", "real_star_cross_validation",
                          "real_star_cv_mlflow_metrics", "real_star_cv_summary"],
                 name="cross_validate_real_stars"),
            Node(nodes.transfer_test,
                 inputs=["training_spectra", "crossmatch", "params:labels", "params:training",
                         "params:feature_engineering", "params:evaluation",
                         "params:real_star_evaluation", "real_star_cross_validation"],
                 outputs=["real_star_transfer_predictions", "real_star_transfer",
                          "real_star_transfer_mlflow_metrics", "real_star_transfer_summary"],
                 name="transfer_across_libraries"),
            Node(nodes.real_star_summary,
                 inputs=["real_star_cv_summary", "real_star_transfer_summary"],
                 outputs="real_star_report", name="write_real_star_report"),
        ]
    )
