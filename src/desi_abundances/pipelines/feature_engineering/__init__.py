"""feature_engineering: stacked spectra + crossmatch -> normalised rest-frame training spectra
with labels, the train/validation/test split and the per-pixel standardisation."""
from desi_abundances.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
