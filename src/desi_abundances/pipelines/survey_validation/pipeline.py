"""Wiring of the survey-validation pipeline (``params:survey_validation``; MOCK only)."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.survey_validation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """VAC (after inference) + mock truth + data_split -> survey_validation.json, MLflow
    metrics ``survey/...``, figures/survey_kiel.png and a section of metrics_summary.md."""
    return Pipeline(
        [
            Node(
                nodes.score_survey,
                inputs=["vac_summary", "data_split", "params:labels", "params:inference",
                        "params:survey_validation"],
                outputs=["survey_validation", "survey_validation_mlflow_metrics",
                         "survey_kiel_figure", "survey_validation_section"],
                name="score_survey",
            ),
            Node(
                nodes.summary_with_survey,
                inputs=["metrics_summary", "survey_validation_section"],
                outputs="metrics_summary_with_survey",
                name="write_survey_summary",
            ),
        ]
    )
