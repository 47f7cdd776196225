"""real_star_sim_to_real: the standing sim-to-real report, the mock-trained model bundle
(``mock_model_bundle``) applied to the REAL test stars (``--env real_stars``)."""
from desi_abundances.pipelines.real_star_sim_to_real.pipeline import create_pipeline

__all__ = ["create_pipeline"]
