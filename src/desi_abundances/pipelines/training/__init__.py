"""training: the label network on the training split, early-stopped on the validation split;
MLflow logging (losses per epoch, validation scatter, the model bundle) through the catalog."""
from desi_abundances.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
