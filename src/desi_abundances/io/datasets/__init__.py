"""Thin Kedro dataset wrappers of the plain readers/writers of ``desi_abundances.io``: the only
modules of ``io`` that import Kedro. One module per format, named as the plain module it
wraps; the catalog names the full path (``desi_abundances.io.datasets.<module>.<Class>``), so
that loading one dataset imports only its own dependencies (the model bundle's pulls torch).

* ``fits_table.FitsTableDataset``: FITS binary tables <-> DataFrames.
* ``desi_coadd.DesiCoaddDataset``: DESI coadd files <-> ``CoaddSpectra``.
* ``processed_spectra.ProcessedSpectraDataset``: ``Spectra`` <-> one FITS file.
* ``model_bundle.ModelBundleDataset``: ``ModelBundle`` <-> one safetensors file.
* ``atomic.AtomicParquetDataset``, ``atomic.AtomicJSONDataset``: kedro-datasets' Parquet and
  JSON datasets whose local saves go through ``io.atomic``.
"""
