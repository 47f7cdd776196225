"""Input and output of the project; every file write goes through :mod:`io.atomic`.

Plain readers/writers (astropy, numpy, pandas; no Kedro, so inference, the VAC and the mock
survey can use them without it):

* ``atomic``: :func:`atomic_write` (temporary file, fsync, rename).
* ``fits_table``: FITS binary tables <-> DataFrames; :class:`FitsReadError`.
* ``desi_coadd``: DESI coadd files <-> ``CoaddSpectra`` (:func:`read_coadd`, :func:`write_coadd`).
* ``processed_spectra``: ``Spectra`` <-> one FITS file.
* ``model_bundle``: ``ModelBundle`` <-> one safetensors file.

Thin Kedro dataset wrappers of each live in ``io.datasets`` (the only Kedro importers here).
This ``__init__`` imports nothing, so importing any plain module stays Kedro-free.
"""
