"""Streaming, resumable inference over DESI coadds, and the value-added catalogue.

One coadd at a time: read it, look up each target's radial velocity in the MWS catalogue,
preprocess with the model bundle's own settings, predict every label with its uncertainty,
flag, and write one Parquet file per coadd atomically. A Parquet file is complete iff it
exists (it is written atomically) and its metadata carries the fingerprint of the current
bundle and settings and the signature of its input file; anything else is redone. The same
per-coadd function runs in the calling process (``scheduler: synchronous``) or on a
``dask.distributed`` cluster, so the outputs do not depend on where they were made.

Modules: :mod:`.settings` (``params:inference``), :mod:`.selection` (partitions, targets),
:mod:`.velocities` (MWS radial velocities), :mod:`.flags` (quality bits), :mod:`.predictor`
(what a model must offer), :mod:`.prepare` (one coadd), :mod:`.outputs` (per-coadd files,
fingerprints), :mod:`.runners` (synchronous and Dask), :mod:`.catalogue` and :mod:`.vac`
(the FITS VAC). The bundle adapter is ``nn.adapter``. No Kedro here: the node in
``pipelines/inference`` is glue.
"""
from desi_abundances.desi.naming import healpix_of_partition
from desi_abundances.inference.catalogue import build_value_added_catalogue
from desi_abundances.inference.errors import (
    BundleMismatchError,
    CoaddSkipped,
    InferenceError,
    MockModelError,
)
from desi_abundances.inference.flags import FLAG_BITS, quality_flags
from desi_abundances.inference.outputs import (
    METADATA_KEY,
    OUTPUT_SCHEMA_VERSION,
    PartitionResult,
    output_is_complete,
    output_path,
    plan_partitions,
    read_provenance,
    run_fingerprint,
    source_signature,
    write_output,
    write_partition,
)
from desi_abundances.inference.predictor import LabelPredictor, check_labels
from desi_abundances.inference.primary import primary_spectra
from desi_abundances.inference.prepare import (
    PreparedPartition,
    coadd_survey_program,
    empty_output_table,
    finish_partition,
    predict_coadd,
    prepare_partition,
    read_partition,
)
from desi_abundances.inference.runners import process_partition, run_inference
from desi_abundances.inference.selection import select_partitions, select_targets
from desi_abundances.inference.settings import FlagSettings, InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup, radial_velocity_table
from desi_abundances.nn.adapter import BundlePredictor, bundle_fingerprint
from desi_abundances.spectra import median_snr

__all__ = [
    "FLAG_BITS", "METADATA_KEY", "OUTPUT_SCHEMA_VERSION",
    "BundleMismatchError", "BundlePredictor", "CoaddSkipped", "FlagSettings", "InferenceError",
    "MockModelError", "primary_spectra",
    "InferenceSettings", "LabelPredictor", "PartitionResult", "PreparedPartition",
    "RadialVelocityLookup",
    "build_value_added_catalogue", "bundle_fingerprint", "check_labels", "coadd_survey_program",
    "empty_output_table", "finish_partition", "healpix_of_partition", "median_snr",
    "output_is_complete", "output_path", "plan_partitions", "predict_coadd",
    "prepare_partition", "process_partition", "quality_flags", "radial_velocity_table",
    "read_partition", "read_provenance", "run_fingerprint", "run_inference",
    "select_partitions", "select_targets", "source_signature", "write_output",
    "write_partition",
]
