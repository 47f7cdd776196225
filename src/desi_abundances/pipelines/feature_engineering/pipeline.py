"""Wiring of the feature_engineering pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.feature_engineering.nodes import (
    build_training_spectra,
    fit_standardisation,
    split_training_set,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                build_training_spectra,
                inputs=["stacked_spectra", "spectra_metadata", "crossmatch", "params:labels",
                        "params:feature_engineering"],
                outputs="training_spectra",
                name="build_training_spectra",
            ),
            Node(
                split_training_set,
                inputs=["training_spectra", "params:feature_engineering", "crossmatch"],
                outputs="data_split",
                name="split_training_set",
            ),
            Node(
                fit_standardisation,
                inputs=["training_spectra", "data_split", "params:feature_engineering"],
                outputs="pixel_standardisation",
                name="fit_pixel_standardisation",
            ),
        ]
    )
