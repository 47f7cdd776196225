"""real_star_evaluation: k-fold cross-validation and the transfer test across instruments of
the three methods on the REAL stellar-library survey (``--env real_stars``)."""
from desi_abundances.pipelines.real_star_evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
