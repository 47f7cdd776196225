"""real_star_survey: MILES and STELIB (REAL stellar-library spectra) written into DESI's
formats under data/real_stars/01_raw (``kedro run --env real_stars --pipelines=real_star_survey``)."""
from desi_abundances.pipelines.real_star_survey.pipeline import create_pipeline

__all__ = ["create_pipeline"]
