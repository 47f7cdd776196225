"""DESI's rules, each written once: file naming and partition ids (:mod:`.naming`), coadd
provenance (:mod:`.provenance`), the trusted radial velocity (:mod:`.velocity`), epoch
propagation (:mod:`.astrometry`), bitmasks (:mod:`.bitmasks`), garbled FIBERMAP rows
(:mod:`.fibermap`), wavelength grids
(:mod:`.grids`) and the instrument: resolution, LSF, resampling (:mod:`.instrument`).

Kedro-free; imports only numpy, scipy, astropy and pandas. Everything else that needs a DESI
fact imports it from here. Sources: the DESI data model and desispec/desitarget (see
``../shared/DATA_FORMATS.md``).
"""
