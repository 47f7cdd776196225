"""Wiring of the training pipeline."""
from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from desi_abundances.pipelines.training.nodes import train_label_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_label_model,
                inputs=["training_spectra", "data_split", "pixel_standardisation",
                        "params:labels", "params:training"],
                outputs=["model_bundle", "training_loss_history", "validation_loss_history",
                         "training_metrics"],
                name="train_label_model",
            ),
        ]
    )
