"""Survey-wide validation (MOCK): the inference catalogue against the mock truth."""
from desi_abundances.pipelines.survey_validation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
