"""crossmatch: APOGEE quality cuts and the DESI x APOGEE match -> ``crossmatch`` and
``crossmatch_report``."""
from desi_abundances.pipelines.crossmatch.pipeline import create_pipeline

__all__ = ["create_pipeline"]
