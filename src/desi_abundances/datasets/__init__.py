"""Thin Kedro dataset wrappers of the plain readers/writers of ``desi_abundances.io`` (which
know nothing of Kedro). One module per format, named as the plain module it
wraps; the catalog names the full path (``desi_abundances.datasets.<module>.<Class>``), so
that loading one dataset imports only its own dependencies (the model bundle's pulls torch).

* ``fits_table.FitsTableDataset``: FITS binary tables <-> DataFrames.
* ``desi_coadd.DesiCoaddDataset``: DESI coadd files <-> ``CoaddSpectra``.
* ``processed_spectra.ProcessedSpectraDataset``: ``Spectra`` <-> one FITS file.
* ``model_bundle.ModelBundleDataset``: ``ModelBundle`` <-> one safetensors file.
* ``atomic.AtomicParquetDataset``, ``atomic.AtomicJSONDataset``: kedro-datasets' Parquet and
  JSON datasets whose local saves go through ``io.atomic``.
* ``mlflow_metrics.MlflowBatchMetricsDataset``: kedro-mlflow's metrics dataset, logged in
  batches.
"""
