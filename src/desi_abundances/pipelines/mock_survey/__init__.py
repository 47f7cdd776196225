"""mock_survey: build the embedded mock DESI x APOGEE survey into data/01_raw."""
from desi_abundances.pipelines.mock_survey.pipeline import create_pipeline

__all__ = ["create_pipeline"]
