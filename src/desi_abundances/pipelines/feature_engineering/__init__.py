"""feature_engineering: stacked spectra + crossmatch -> normalised rest-frame training spectra
with labels, the train/validation/test split and the per-pixel standardisation."""
from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
