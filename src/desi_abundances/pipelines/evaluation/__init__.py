"""Evaluation: network vs ridge vs The Cannon on the test split; metrics, report, figures."""
from desi_abundances.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
