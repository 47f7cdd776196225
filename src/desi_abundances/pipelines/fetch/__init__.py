"""fetch: the catalogues and the healpix coadds a run needs, from a public release over HTTPS."""
from desi_abundances.pipelines.fetch.pipeline import create_pipeline

__all__ = ["create_pipeline"]
