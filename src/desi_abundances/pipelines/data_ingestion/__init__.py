"""data_ingestion: raw DESI coadds, MWS catalogue and APOGEE allStar -> candidate training
spectra (``stacked_spectra``, ``spectra_metadata``) and ``apogee_stars``."""
from desi_abundances.pipelines.data_ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
