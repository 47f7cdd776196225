"""REAL stars: the MILES and STELIB stellar libraries (real spectra with literature labels,
from the sdss-mangadap wheel) written into DESI's formats (coadds on the B/R/Z grids, an
MWS-like catalogue, a reference-label table) so that the ordinary pipelines train and test
on real spectra (``kedro run --env real_stars``). They are NOT DESI spectra: their resolution
(FWHM 2.5-3.4 A) is coarser than DESI's and is stated in every file written."""
