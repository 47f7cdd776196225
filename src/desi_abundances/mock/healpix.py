"""Gaia-like source ids for the mock survey's stars."""
from __future__ import annotations

import numpy as np

from desi_abundances.desi.healpix import ang2pix_nest


def gaia_source_id(ra_deg: np.ndarray, dec_deg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaia-like source_id: level-12 nested HEALPix index x 2^35 + a random running number."""
    hpx12 = ang2pix_nest(4096, ra_deg, dec_deg)
    return hpx12 * np.int64(34_359_738_368) + rng.integers(1, 2**35 - 1, np.size(ra_deg))
