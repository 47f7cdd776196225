"""crossmatch: APOGEE quality cuts and the DESI x APOGEE match -> ``crossmatch`` and
``crossmatch_report``."""
from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
