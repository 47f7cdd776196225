"""Wiring of the evaluation pipeline (``params:evaluation``)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.evaluation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """training_spectra + data_split (split once into evaluation_{train,validation,test}_spectra)
    + model_bundle -> test_predictions, metrics.json,
    metrics_summary.md, MLflow metrics and figures; the information limit (Cramer-Rao bound
    per test star, network scatter / bound per label and S/N) -> cramer_rao.json,
    test_cramer_rao_bounds.parquet, its MLflow metrics, figure and metrics_summary section."""
    return Pipeline(
        [
            Node(
                nodes.split_spectra,
                inputs=["training_spectra", "data_split"],
                outputs=["evaluation_train_spectra", "evaluation_validation_spectra",
                         "evaluation_test_spectra"],
                name="split_spectra",
            ),
            Node(
                nodes.evaluation_is_mock,
                inputs=["evaluation_test_spectra", "model_bundle"],
                outputs="evaluation_is_mock",
                name="evaluation_is_mock",
            ),
            Node(
                nodes.predict_network,
                inputs=["model_bundle", "evaluation_test_spectra", "params:labels",
                        "params:evaluation"],
                outputs=["network_test_predictions", "network_test_seconds"],
                name="predict_network_on_test",
            ),
            Node(
                nodes.predict_ridge,
                inputs=["evaluation_train_spectra", "evaluation_validation_spectra",
                        "evaluation_test_spectra", "model_bundle", "params:labels",
                        "params:evaluation"],
                outputs=["ridge_test_predictions", "ridge_info"],
                name="fit_and_predict_ridge",
            ),
            Node(
                nodes.predict_cannon,
                inputs=["evaluation_train_spectra", "evaluation_test_spectra", "params:labels",
                        "params:evaluation"],
                outputs=["cannon_test_predictions", "cannon_info"],
                name="fit_and_predict_cannon",
            ),
            Node(
                nodes.assemble_test_predictions,
                inputs=["evaluation_test_spectra", "network_test_predictions",
                        "ridge_test_predictions", "cannon_test_predictions", "params:labels"],
                outputs="test_predictions",
                name="assemble_test_predictions",
            ),
            Node(
                nodes.compute_metrics,
                inputs=["test_predictions", "params:labels", "params:evaluation",
                        "evaluation_is_mock", "network_test_seconds", "ridge_info",
                        "cannon_info"],
                outputs=["metrics", "evaluation_mlflow_metrics", "metrics_summary_methods"],
                name="compute_metrics",
            ),
            Node(
                nodes.compute_information_limit,
                inputs=["evaluation_test_spectra", "test_predictions", "params:labels",
                        "params:evaluation", "evaluation_is_mock", "params:mock_survey"],
                outputs=["cramer_rao", "test_cramer_rao_bounds", "cramer_rao_mlflow_metrics",
                         "evaluation_information_limit_figure"],
                name="compute_information_limit",
            ),
            Node(
                nodes.summary_with_information_limit,
                inputs=["metrics_summary_methods", "cramer_rao", "params:labels"],
                outputs="metrics_summary",
                name="write_metrics_summary",
            ),
            Node(
                nodes.plot_one_to_one,
                inputs=["test_predictions", "params:labels", "evaluation_is_mock", "cramer_rao",
                        "params:evaluation"],
                outputs="evaluation_one_to_one_figure",
                name="plot_one_to_one",
            ),
            Node(
                nodes.plot_residuals_vs_snr,
                inputs=["test_predictions", "params:labels", "params:evaluation",
                        "evaluation_is_mock", "cramer_rao"],
                outputs="evaluation_residuals_vs_snr_figure",
                name="plot_residuals_vs_snr",
            ),
            Node(
                nodes.plot_kiel,
                inputs=["test_predictions", "evaluation_is_mock", "params:evaluation"],
                outputs="evaluation_kiel_diagram_figure",
                name="plot_kiel_diagram",
            ),
            Node(
                nodes.plot_mg_fe_vs_fe_h,
                inputs=["test_predictions", "evaluation_is_mock", "params:evaluation"],
                outputs="evaluation_mg_fe_vs_fe_h_figure",
                name="plot_mg_fe_vs_fe_h",
            ),
            Node(
                nodes.plot_calibration,
                inputs=["test_predictions", "params:labels", "evaluation_is_mock", "cramer_rao",
                        "params:evaluation"],
                outputs="evaluation_uncertainty_calibration_figure",
                name="plot_uncertainty_calibration",
            ),
            Node(
                nodes.plot_method_comparison,
                inputs=["metrics", "params:labels", "evaluation_is_mock", "cramer_rao",
                        "params:evaluation"],
                outputs="evaluation_method_comparison_figure",
                name="plot_method_comparison",
            ),
        ]
    )
