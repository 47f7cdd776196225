"""Inference: every selected DESI coadd -> per-coadd Parquet tables -> the FITS VAC."""
from desi_abundances.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
