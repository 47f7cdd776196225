"""Streaming, resumable inference over DESI coadds, and its quality flags.

One coadd at a time: load it, look up each target's radial velocity in the MWS catalogue,
preprocess with the model bundle's own settings, predict every label with its uncertainty,
flag, and write one Parquet file per coadd atomically. A Parquet file is complete iff it
exists (it is written atomically) and its metadata carries the fingerprint of the current
bundle and settings; anything else is redone. The same per-coadd function runs in the
calling process (``scheduler: synchronous``) or on a ``dask.distributed`` cluster (a
LocalCluster or any scheduler address), so the outputs do not depend on where they were made.

No Kedro here: the node in ``pipelines/inference`` is glue.

Flag bits (``flag`` column, ``FLAG`` in the catalogue; 0 = no known problem):

====  ======================  ==============================================================
bit   name                    set when
====  ======================  ==============================================================
0     LOW_SNR                 median S/N per pixel (``snr``) < ``flags.min_snr``
1     NO_RADIAL_VELOCITY      no usable VRAD (not in the MWS catalogue, RVS_WARN != 0 or not
                              SUCCESS): the spectrum could not be shifted to the rest frame
2     FAR_FROM_TRAINING       ``input_distance`` > the bundle's ``ood_threshold``
3     LABEL_OUT_OF_RANGE      a label (of ``flags.range_labels``, default all) lies outside
                              the training range [label_min, label_max] (which ones: bits of
                              ``label_range_flag``, bit i = label i, every label)
4     BAD_FIBERSTATUS         COADD_FIBERSTATUS != 0
5     NO_PREDICTION           a label, its error or the input distance is not finite
====  ======================  ==============================================================
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits

from desi_abundances.io.atomic import atomic_write
from desi_abundances.spectra import median_snr

logger = logging.getLogger(__name__)

FLAG_BITS: dict[str, int] = {
    "LOW_SNR": 0,
    "NO_RADIAL_VELOCITY": 1,
    "FAR_FROM_TRAINING": 2,
    "LABEL_OUT_OF_RANGE": 3,
    "BAD_FIBERSTATUS": 4,
    "NO_PREDICTION": 5,
}
"""Bit number of each quality flag in the ``flag`` column."""

OUTPUT_SCHEMA_VERSION = 1
"""Bump when the per-coadd table changes, so that older outputs count as stale."""

METADATA_KEY = b"desi_abundances.inference"
"""Parquet key-value metadata key under which each per-coadd file records its provenance."""

_COADD_NAME = re.compile(r"coadd-(?P<survey>[a-z0-9]+)-(?P<program>[a-z0-9]+)-(?P<healpix>\d+)$")


class InferenceError(RuntimeError):
    """Inference cannot go on; the message names the partition, file or bundle field."""


class BundleMismatchError(InferenceError):
    """The model bundle does not fit the configuration or the data."""


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlagSettings:
    """Thresholds of the quality flags.

    Attributes:
        min_snr: spectra with median S/N per pixel below this get LOW_SNR.
        range_labels: labels whose leaving the training range sets LABEL_OUT_OF_RANGE in
            ``flag`` (None: every label); ``label_range_flag`` always has every label's bit.
    """

    min_snr: float = 10.0
    range_labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.range_labels is not None:
            object.__setattr__(self, "range_labels", tuple(self.range_labels))


@dataclass(frozen=True)
class InferenceSettings:
    """``params:inference``, validated. See ``conf/base/parameters_inference.yml``."""

    per_coadd_dir: str = "data/07_model_output/per_coadd"
    vac_filepath: str = "data/07_model_output/desi_abundances_vac.fits"
    partitions: tuple[str, ...] | None = None
    healpix: tuple[int, ...] | None = None
    only_mws_catalogue: bool = True
    flags: FlagSettings = field(default_factory=FlagSettings)
    scheduler: str = "synchronous"
    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    torch_threads: int | None = None
    prefetch: int = 2
    max_in_flight_per_thread: int = 2
    on_error: str = "raise"
    progress: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InferenceSettings:
        """Build from the ``inference`` parameters; unknown keys and bad values raise."""
        params = dict(params or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(params) - known
        if unknown:
            raise ValueError(
                f"params:inference has unknown keys {sorted(unknown)}; known: {sorted(known)}"
            )
        flags = FlagSettings(**(params.pop("flags", None) or {}))
        for key in ("partitions", "healpix"):
            # a list, one value, or (from `kedro run --params`, which splits on commas) a
            # string of values separated by spaces or semicolons
            value = params.get(key)
            if isinstance(value, str):
                value = [v for v in re.split(r"[\s;]+", value) if v]
            if value is not None:
                params[key] = tuple([value] if isinstance(value, int) else value)
        if params.get("healpix") is not None:
            params["healpix"] = tuple(int(h) for h in params["healpix"])
        settings = cls(flags=flags, **params)
        if settings.on_error not in ("raise", "skip"):
            raise ValueError(f"params:inference.on_error must be 'raise' or 'skip', got {settings.on_error!r}")
        if settings.n_workers < 1 or settings.threads_per_worker < 1:
            raise ValueError("params:inference.n_workers and threads_per_worker must be >= 1")
        if settings.prefetch < 0:
            raise ValueError("params:inference.prefetch must be >= 0")
        return settings


# --------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------
def healpix_of_partition(partition_id: str) -> int | None:
    """HEALPix number in a partition id ``.../coadd-{survey}-{program}-{healpix}``, or None."""
    match = _COADD_NAME.search(partition_id.replace("\\", "/").rsplit("/", 1)[-1])
    return int(match["healpix"]) if match else None


def select_partitions(
    partition_ids: Iterable[str],
    patterns: Sequence[str] | None = None,
    healpix: Sequence[int] | None = None,
) -> list[str]:
    """The partition ids to process, sorted.

    Args:
        partition_ids: every partition of the coadd set (paths relative to its folder,
            without suffix, e.g. ``main/bright/100/10010/coadd-main-bright-10010``).
        patterns: keep ids matching any of these shell globs (``main/bright/*``); None = all.
        healpix: keep ids whose HEALPix number is in this list; None = all.
    """
    selected = sorted(partition_ids)
    if patterns:
        selected = [p for p in selected if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
    if healpix:
        wanted = set(int(h) for h in healpix)
        selected = [p for p in selected if healpix_of_partition(p) in wanted]
    return selected


def output_path(per_coadd_dir: str | os.PathLike, partition_id: str) -> Path:
    """Parquet file of one partition: ``<per_coadd_dir>/<partition_id>.parquet``."""
    return Path(per_coadd_dir) / f"{partition_id}.parquet"


# --------------------------------------------------------------------------------------
# Radial velocities from the MWS catalogue
# --------------------------------------------------------------------------------------
def _key(value: Any) -> str:
    return str(value).strip().lower()


def radial_velocity_table(rvtab: pd.DataFrame) -> pd.DataFrame:
    """Usable radial velocities from the MWS catalogue's RVTAB.

    Returns:
        TARGETID, SURVEY, PROGRAM (lower case) and ``vrad_kms``: VRAD (km/s) where
        RVS_WARN == 0 and SUCCESS, else NaN. One row per (TARGETID, SURVEY, PROGRAM): the
        first is kept when the catalogue repeats one.

    Raises:
        InferenceError: when a required column is missing.
    """
    required = ("TARGETID", "SURVEY", "PROGRAM", "VRAD", "RVS_WARN", "SUCCESS")
    missing = [c for c in required if c not in rvtab.columns]
    if missing:
        raise InferenceError(f"mws_catalogue RVTAB lacks columns {missing}")
    usable = (np.asarray(rvtab["RVS_WARN"]) == 0) & np.asarray(rvtab["SUCCESS"], dtype=bool)
    vrad = np.where(usable, np.asarray(rvtab["VRAD"], dtype=np.float64), np.nan)
    table = pd.DataFrame(
        {
            "TARGETID": np.asarray(rvtab["TARGETID"], dtype=np.int64),
            "SURVEY": [_key(s) for s in rvtab["SURVEY"]],
            "PROGRAM": [_key(p) for p in rvtab["PROGRAM"]],
            "vrad_kms": vrad,
        }
    )
    duplicated = table.duplicated(["TARGETID", "SURVEY", "PROGRAM"])
    if duplicated.any():
        logger.warning(
            "mws_catalogue RVTAB repeats %d (TARGETID, SURVEY, PROGRAM) keys; keeping the first",
            int(duplicated.sum()),
        )
        table = table[~duplicated].reset_index(drop=True)
    return table


class RadialVelocityLookup:
    """Radial velocity (km/s) of (TARGETID, SURVEY, PROGRAM); small and picklable."""

    def __init__(self, table: pd.DataFrame):
        self._by_program: dict[tuple[str, str], pd.Series] = {
            (survey, program): pd.Series(
                group["vrad_kms"].to_numpy(), index=group["TARGETID"].to_numpy()
            )
            for (survey, program), group in table.groupby(["SURVEY", "PROGRAM"], sort=True)
        }
        self.fingerprint = _hash_frame(table)

    def lookup(self, survey: str, program: str, targetid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vrad_kms, in_catalogue)`` for ``targetid``: NaN/False where absent."""
        series = self._by_program.get((_key(survey), _key(program)))
        targetid = np.asarray(targetid, dtype=np.int64)
        if series is None:
            return np.full(targetid.size, np.nan), np.zeros(targetid.size, dtype=bool)
        position = series.index.get_indexer(targetid)
        found = position >= 0
        vrad = np.where(found, series.to_numpy()[np.maximum(position, 0)], np.nan)
        return vrad.astype(np.float64), found


def _hash_frame(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


# --------------------------------------------------------------------------------------
# The predictor: preprocessing + network, with what the flags need from the bundle
# --------------------------------------------------------------------------------------
class LabelPredictor(Protocol):
    """What inference needs from a model: labels, their training range, the OOD threshold,
    a fingerprint, and prediction in two steps so that they can overlap: ``prepare`` (numpy,
    e.g. preprocessing a coadd given radial velocities, km/s) and ``predict`` (the network)
    returning TARGETID, ``<label>``, ``<label>_err`` (K, dex) and ``input_distance``."""

    label_names: list[str]
    label_min: np.ndarray
    label_max: np.ndarray
    ood_threshold: float
    is_mock: bool
    fingerprint: str

    def prepare(self, coadd: Any, vrad_kms: np.ndarray) -> Any: ...

    def predict(self, prepared: Any) -> pd.DataFrame: ...


def check_labels(predictor: LabelPredictor, labels: Sequence[str] | None) -> None:
    """Refuse a model whose labels differ from the configured ``params:labels``.

    Raises:
        BundleMismatchError: naming the labels missing from, or extra in, the bundle.
    """
    if labels is None:
        return
    if list(predictor.label_names) != list(labels):
        missing = [l for l in labels if l not in predictor.label_names]
        extra = [l for l in predictor.label_names if l not in labels]
        raise BundleMismatchError(
            "model bundle labels do not match params:labels: "
            f"missing from the bundle {missing}, not in params:labels {extra}"
            + ("" if missing or extra else " (same labels, different order)")
            + "; retrain the model or fix conf/base/parameters.yml"
        )


# --------------------------------------------------------------------------------------
# Science of one coadd
# --------------------------------------------------------------------------------------
def coadd_survey_program(coadd: Any, partition_id: str) -> tuple[str, str, int]:
    """(survey, program, healpix) of a coadd: header SURVEY/PROGRAM/HPXPIXEL, else the name."""
    header = coadd.header or {}
    match = _COADD_NAME.search(partition_id.replace("\\", "/").rsplit("/", 1)[-1])
    survey = header.get("SURVEY") or (match["survey"] if match else None)
    program = header.get("PROGRAM") or (match["program"] if match else None)
    healpix = header.get("HPXPIXEL", None)
    if healpix is None and match:
        healpix = int(match["healpix"])
    if survey is None or program is None or healpix is None:
        raise InferenceError(
            f"partition {partition_id}: SURVEY/PROGRAM/HPXPIXEL neither in the primary header "
            "nor in the file name coadd-<survey>-<program>-<healpix>"
        )
    return _key(survey), _key(program), int(healpix)


def select_targets(coadd: Any, in_catalogue: np.ndarray, only_mws_catalogue: bool) -> np.ndarray:
    """Rows to predict: science targets (OBJTYPE TGT when the column exists), and only those
    in the MWS catalogue when ``only_mws_catalogue``."""
    keep = np.ones(coadd.n_spectra, dtype=bool)
    if "OBJTYPE" in coadd.fibermap.columns:
        objtype = np.asarray(coadd.fibermap["OBJTYPE"], dtype=str)  # vectorised, no row loop
        keep &= np.char.lower(np.char.strip(objtype)) == "tgt"
    if only_mws_catalogue:
        keep &= in_catalogue
    return np.flatnonzero(keep)


def quality_flags(
    table: pd.DataFrame,
    label_names: Sequence[str],
    label_min: np.ndarray,
    label_max: np.ndarray,
    ood_threshold: float,
    flags: FlagSettings,
    label_trained: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(flag, label_range_flag)`` of each row (see the module docstring for the bits).

    ``table`` holds snr, vrad_kms, COADD_FIBERSTATUS, input_distance and each label with
    its ``_err``. ``label_range_flag`` has bit i set when label i is outside its range.
    ``label_trained`` (bool per label, default all): labels the model had no training data
    for are always NaN and do not set NO_PREDICTION.
    """
    n, n_labels = len(table), len(label_names)
    if n_labels > 63:
        raise ValueError(f"label_range_flag holds at most 63 labels, the model has {n_labels}")
    values = np.zeros((n, n_labels))
    errors = np.zeros((n, n_labels))
    for index, label in enumerate(label_names):
        values[:, index] = table[label].to_numpy(np.float64)
        errors[:, index] = table[f"{label}_err"].to_numpy(np.float64)
    distance = table["input_distance"].to_numpy(np.float64)
    trained = np.ones(n_labels, bool) if label_trained is None else np.asarray(label_trained, bool)
    with np.errstate(invalid="ignore"):
        outside = (values < np.asarray(label_min, np.float64)) | (values > np.asarray(label_max, np.float64))
    label_range_flag = (outside.astype(np.int64) << np.arange(n_labels, dtype=np.int64)).sum(
        axis=1, dtype=np.int64
    )
    bits = {
        "LOW_SNR": table["snr"].to_numpy(np.float64) < flags.min_snr,
        "NO_RADIAL_VELOCITY": ~np.isfinite(table["vrad_kms"].to_numpy(np.float64)),
        "FAR_FROM_TRAINING": distance > ood_threshold,
        "LABEL_OUT_OF_RANGE": outside[:, _range_columns(label_names, flags.range_labels)].any(axis=1),
        "BAD_FIBERSTATUS": table["COADD_FIBERSTATUS"].to_numpy() != 0,
        "NO_PREDICTION": ~(
            np.isfinite(values[:, trained]).all(axis=1)
            & np.isfinite(errors[:, trained]).all(axis=1)
            & np.isfinite(distance)
        ),
    }
    flag = np.zeros(n, dtype=np.int32)
    for name, is_set in bits.items():
        flag |= np.where(is_set, np.int32(1 << FLAG_BITS[name]), np.int32(0))
    return flag, label_range_flag


def _range_columns(label_names: Sequence[str], range_labels: Sequence[str] | None) -> np.ndarray:
    """Indices of the labels that set LABEL_OUT_OF_RANGE.

    Raises:
        ValueError: naming a ``flags.range_labels`` entry the model does not predict.
    """
    if range_labels is None:
        return np.arange(len(label_names))
    unknown = [label for label in range_labels if label not in label_names]
    if unknown:
        raise ValueError(f"params:inference.flags.range_labels {unknown} are not labels of the model")
    return np.array([list(label_names).index(label) for label in range_labels], dtype=int)


@dataclass
class PreparedPartition:
    """One coadd ready for the network: its catalogue columns and the predictor's inputs."""

    partition_id: str
    table: pd.DataFrame
    inputs: Any
    is_mock: bool
    source: str | None = None
    """Signature of the input file (see :func:`source_signature`)."""
    input_rows: np.ndarray | None = None
    """Rows of the predictor's output that make ``table`` (None: all, in order): set when the
    whole coadd was prepared because nearly every row is a target (see
    ``WHOLE_COADD_FRACTION``)."""


WHOLE_COADD_FRACTION = 0.9
"""When at least this fraction of a coadd's rows are targets, the whole coadd is prepared and
the targets' rows picked from the predictions: cheaper than copying every arm of the coadd
to drop a few rows (non-targets then cost a little preprocessing and network time)."""


def prepare_partition(
    coadd: Any,
    partition_id: str,
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
) -> PreparedPartition:
    """Select the targets of one coadd, attach radial velocities, S/N and positions, and
    prepare the predictor's inputs (preprocessing); the coadd can be dropped afterwards."""
    survey, program, healpix = coadd_survey_program(coadd, partition_id)
    is_mock = bool(getattr(coadd, "is_mock", False))
    targetid_all = np.asarray(coadd.fibermap["TARGETID"], dtype=np.int64)
    vrad_all, in_catalogue = velocities.lookup(survey, program, targetid_all)
    rows = select_targets(coadd, in_catalogue, settings.only_mws_catalogue)
    if rows.size == 0:
        return PreparedPartition(partition_id, empty_output_table([])[list(_META_COLUMNS)], None, is_mock)
    whole = rows.size == coadd.n_spectra or rows.size >= WHOLE_COADD_FRACTION * coadd.n_spectra
    prepared_coadd = coadd
    if not whole:
        coadd = prepared_coadd = coadd.select(rows)
    fibermap = coadd.fibermap.iloc[rows] if whole and rows.size != coadd.n_spectra else coadd.fibermap
    vrad = vrad_all[rows]
    # non-targets of a whole coadd go through too (their velocity may be missing: masked)
    input_rows = rows if whole and rows.size != coadd.n_spectra else None
    inputs = predictor.prepare(prepared_coadd, vrad_all if input_rows is not None else vrad)
    snr = prepared_snr(inputs, prepared_coadd)
    fiberstatus = (
        np.asarray(fibermap["COADD_FIBERSTATUS"], dtype=np.int32)
        if "COADD_FIBERSTATUS" in fibermap.columns
        else np.zeros(rows.size, dtype=np.int32)
    )
    table = pd.DataFrame(
        {
            "TARGETID": targetid_all[rows],
            "TARGET_RA": np.asarray(fibermap["TARGET_RA"], dtype=np.float64),
            "TARGET_DEC": np.asarray(fibermap["TARGET_DEC"], dtype=np.float64),
            "SURVEY": np.full(rows.size, survey, dtype=object),
            "PROGRAM": np.full(rows.size, program, dtype=object),
            "HEALPIX": np.full(rows.size, healpix, dtype=np.int32),
            "COADD_FIBERSTATUS": fiberstatus,
            "snr": snr if input_rows is None else snr[input_rows],
            "vrad_kms": vrad.astype(np.float64),
        }
    )
    return PreparedPartition(partition_id, table, inputs, is_mock, input_rows=input_rows)


def prepared_snr(inputs: Any, coadd: Any) -> np.ndarray:
    """Median S/N per pixel of the prepared spectra: ``spectra.preprocess`` reports it in its
    meta (computed while the arms are in cache); :func:`median_snr` of the coadd otherwise."""
    meta = getattr(inputs, "meta", None)
    if isinstance(meta, pd.DataFrame) and "snr" in meta.columns:
        return meta["snr"].to_numpy(np.float32)
    return median_snr(coadd)


def finish_partition(
    prepared: PreparedPartition, predictor: LabelPredictor, settings: InferenceSettings
) -> pd.DataFrame:
    """Run the network on a prepared coadd and flag: the per-coadd table (columns of
    :func:`empty_output_table`).

    Raises:
        InferenceError: naming the partition when the predictions are not row-matched.
    """
    table = prepared.table
    if prepared.inputs is None:
        return empty_output_table(predictor.label_names)
    predictions = predictor.predict(prepared.inputs)
    if prepared.input_rows is not None:
        predictions = predictions.iloc[prepared.input_rows].reset_index(drop=True)
    if len(predictions) != len(table) or not np.array_equal(
        np.asarray(predictions["TARGETID"], dtype=np.int64), table["TARGETID"].to_numpy()
    ):
        raise InferenceError(
            f"partition {prepared.partition_id}: predictions are not row-matched to the "
            "coadd's targets"
        )
    columns = {name: table[name].to_numpy() for name in table.columns}
    for label in predictor.label_names:
        columns[label] = np.asarray(predictions[label], dtype=np.float32)
        columns[f"{label}_err"] = np.asarray(predictions[f"{label}_err"], dtype=np.float32)
    columns["input_distance"] = np.asarray(predictions["input_distance"], dtype=np.float32)
    table = pd.DataFrame(columns)
    flag, label_range_flag = quality_flags(
        table,
        predictor.label_names,
        predictor.label_min,
        predictor.label_max,
        predictor.ood_threshold,
        settings.flags,
        getattr(predictor, "label_trained", None),
    )
    table["flag"] = flag
    table["label_range_flag"] = label_range_flag
    return table


def predict_coadd(
    coadd: Any,
    partition_id: str,
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
) -> pd.DataFrame:
    """The per-coadd catalogue table of one coadd: prepare then finish."""
    prepared = prepare_partition(coadd, partition_id, predictor, velocities, settings)
    return finish_partition(prepared, predictor, settings)


_META_COLUMNS = (
    "TARGETID", "TARGET_RA", "TARGET_DEC", "SURVEY", "PROGRAM", "HEALPIX",
    "COADD_FIBERSTATUS", "snr", "vrad_kms",
)


def empty_output_table(label_names: Sequence[str]) -> pd.DataFrame:
    """A zero-row per-coadd table with every column and dtype.

    Columns: TARGETID (int64), TARGET_RA, TARGET_DEC (deg), SURVEY, PROGRAM, HEALPIX (int32),
    COADD_FIBERSTATUS (int32), snr (median S/N per pixel), vrad_kms (km/s, NaN when not
    usable), each label and ``<label>_err`` (K for teff, dex otherwise, float32),
    input_distance, flag (int32 bits, see module docstring), label_range_flag (int64).
    """
    columns: dict[str, Any] = {
        "TARGETID": np.zeros(0, np.int64),
        "TARGET_RA": np.zeros(0, np.float64),
        "TARGET_DEC": np.zeros(0, np.float64),
        "SURVEY": np.zeros(0, object),
        "PROGRAM": np.zeros(0, object),
        "HEALPIX": np.zeros(0, np.int32),
        "COADD_FIBERSTATUS": np.zeros(0, np.int32),
        "snr": np.zeros(0, np.float32),
        "vrad_kms": np.zeros(0, np.float64),
    }
    for label in label_names:
        columns[label] = np.zeros(0, np.float32)
        columns[f"{label}_err"] = np.zeros(0, np.float32)
    columns["input_distance"] = np.zeros(0, np.float32)
    columns["flag"] = np.zeros(0, np.int32)
    columns["label_range_flag"] = np.zeros(0, np.int64)
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------
# Per-coadd outputs: atomic, fingerprinted
# --------------------------------------------------------------------------------------
def run_fingerprint(
    predictor: LabelPredictor, velocities: RadialVelocityLookup, settings: InferenceSettings
) -> str:
    """Hash of everything an output depends on besides its coadd: the bundle, the radial
    velocities, the flag thresholds, the target selection and the output schema."""
    recipe = {
        "bundle": predictor.fingerprint,
        "radial_velocities": velocities.fingerprint,
        "flags": asdict(settings.flags),
        "only_mws_catalogue": settings.only_mws_catalogue,
        "schema": OUTPUT_SCHEMA_VERSION,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def write_output(table: pd.DataFrame, path: Path, provenance: Mapping[str, Any]) -> None:
    """Write one per-coadd table to Parquet atomically, ``provenance`` in its metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = dict(arrow.schema.metadata or {})
    metadata[METADATA_KEY] = json.dumps(dict(provenance), sort_keys=True).encode()
    arrow = arrow.replace_schema_metadata(metadata)
    with atomic_write(path) as tmp:
        pq.write_table(arrow, tmp)


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance stored in a per-coadd Parquet file; None if absent or unreadable."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[METADATA_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None


def source_signature(load: Callable[[], Any]) -> str | None:
    """``"<size>:<mtime_ns>"`` of the file a partition loader reads (a PartitionedDataset
    loader is the bound ``load`` of a dataset with a ``_filepath``); None when unknown."""
    path = getattr(getattr(load, "__self__", None), "_filepath", None)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def output_is_complete(path: Path, fingerprint: str, source: str | None = None) -> bool:
    """True when ``path`` exists, is readable Parquet, was made with ``fingerprint`` and, when
    ``source`` is given, from the input file with that signature (a rewritten coadd is redone)."""
    if not path.is_file():
        return False
    provenance = read_provenance(path)
    if provenance is None or provenance.get("fingerprint") != fingerprint:
        return False
    return source is None or provenance.get("source") == source


@dataclass
class PartitionResult:
    """What one partition's task reports back (small: no arrays)."""

    partition_id: str
    n_spectra: int = 0
    seconds: float = 0.0
    is_mock: bool | None = None
    error: str | None = None


def set_torch_threads(n_threads: int | None) -> int | None:
    """``torch.set_num_threads(n_threads)`` when given (torch imported only then); returns
    the previous number of threads (None when nothing was changed)."""
    if not n_threads:
        return None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    return previous


def synchronous_torch_threads(settings: InferenceSettings) -> int | None:
    """Torch threads of a synchronous run: ``torch_threads`` when set; otherwise, when a
    reader thread prepares the next coadds (``prefetch`` > 0), all cores but the one it
    uses, so that the two do not oversubscribe the CPU; else torch's default."""
    if settings.torch_threads:
        return int(settings.torch_threads)
    if settings.prefetch > 0:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (cores or 2) - 1)
    return None


def write_partition(
    prepared: PreparedPartition,
    predictor: LabelPredictor,
    settings: InferenceSettings,
    per_coadd_dir: str,
    fingerprint: str,
) -> PartitionResult:
    """Predict a prepared partition and write its Parquet file atomically."""
    table = finish_partition(prepared, predictor, settings)
    provenance = {
        "fingerprint": fingerprint,
        "bundle_fingerprint": predictor.fingerprint,
        "partition_id": prepared.partition_id,
        "n_spectra": int(len(table)),
        "is_mock": prepared.is_mock,
        "labels": list(predictor.label_names),
        "flag_bits": FLAG_BITS,
        "schema": OUTPUT_SCHEMA_VERSION,
        "source": prepared.source,
    }
    write_output(table, output_path(per_coadd_dir, prepared.partition_id), provenance)
    return PartitionResult(prepared.partition_id, n_spectra=len(table), is_mock=prepared.is_mock)


def process_partition(
    partition_id: str,
    load: Callable[[], Any],
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    per_coadd_dir: str,
    fingerprint: str,
) -> PartitionResult:
    """Load, prepare, predict and write one partition: the unit of work of a Dask task."""
    start = time.perf_counter()
    set_torch_threads(settings.torch_threads)
    source = source_signature(load)
    prepared = prepare_partition(load(), partition_id, predictor, velocities, settings)
    prepared.source = source
    result = write_partition(prepared, predictor, settings, per_coadd_dir, fingerprint)
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------------------
# The driver: plan, execute (here or on Dask), report
# --------------------------------------------------------------------------------------
@dataclass
class InferencePlan:
    """Which selected partitions are already done and which are to do."""

    selected: list[str]
    complete: list[str]
    todo: list[str]


def plan_partitions(
    selected: Sequence[str],
    per_coadd_dir: str,
    fingerprint: str,
    loaders: Mapping[str, Callable[[], Any]] | None = None,
) -> InferencePlan:
    """Split the selected partitions into complete outputs (kept) and those to (re)do; with
    ``loaders``, an output made from another version of its input file is redone too."""
    complete, todo = [], []
    for pid in selected:
        source = source_signature(loaders[pid]) if loaders is not None else None
        done = output_is_complete(output_path(per_coadd_dir, pid), fingerprint, source)
        (complete if done else todo).append(pid)
    return InferencePlan(selected=list(selected), complete=complete, todo=todo)


class _Progress:
    """tqdm bar over coadds, with spectra per second as a postfix."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="coadd", desc="inference", disable=not enabled, mininterval=1.0)
        self.n_spectra = 0
        self.start = time.perf_counter()

    def update(self, result: PartitionResult) -> None:
        self.n_spectra += result.n_spectra
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(spectra=self.n_spectra, spectra_per_s=f"{self.n_spectra / elapsed:.0f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _run_synchronous(
    todo: Sequence[str],
    prepare: Callable[[str], PreparedPartition],
    finish: Callable[[PreparedPartition], PartitionResult],
    prefetch: int,
) -> Iterator[PartitionResult | tuple[str, BaseException]]:
    """Process partitions in order in this process. With ``prefetch`` > 0, a background
    thread reads and prepares (preprocesses) the next ``prefetch`` coadds while the network
    runs on the current one: numpy and torch release the GIL, so the two overlap on two
    cores. At most ``prefetch + 1`` coadds are alive at once, whatever the number of
    partitions."""
    if prefetch == 0:
        for pid in todo:
            try:
                result = finish(prepare(pid))
            except Exception as exc:  # reported (then raised or skipped) by the caller
                yield pid, exc
                continue
            yield result
        return
    # one reader thread per coadd read ahead: with prefetch >= 2 the reads, selections and
    # S/N of consecutive coadds overlap too (the compiled preprocess is multi-threaded anyway)
    with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="coadd-reader") as reader:
        queue = iter(todo)
        pending: deque[tuple[str, Future]] = deque()

        def top_up() -> None:
            while len(pending) < prefetch:
                pid = next(queue, None)
                if pid is None:
                    return
                pending.append((pid, reader.submit(prepare, pid)))

        top_up()
        while pending:
            pid, future = pending.popleft()
            try:
                prepared = future.result()
            except Exception as exc:
                top_up()
                yield pid, exc
                continue
            finally:
                future = None
            top_up()  # the next reads run while this coadd is predicted
            try:
                result = finish(prepared)
            except Exception as exc:
                prepared = None
                yield pid, exc
                continue
            prepared = None
            yield result


def _run_on_dask(
    todo: Sequence[str],
    loaders: Mapping[str, Callable[[], Any]],
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    per_coadd_dir: str,
    fingerprint: str,
) -> Iterator[PartitionResult | tuple[str, BaseException]]:
    """Process partitions on a dask.distributed cluster: the model and the velocity table are
    scattered once to every worker; at most ``max_in_flight_per_thread`` tasks per worker
    thread are queued at a time, so neither the scheduler nor the workers hold more."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if settings.scheduler == "local":
        cluster = LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            processes=settings.processes,
            dashboard_address=":0",  # any free port: 8787 may be taken on a shared node
        )
        client = Client(cluster)
    else:
        client = Client(settings.scheduler)
    try:
        n_threads = max(sum(client.nthreads().values()), 1)
        logger.info(
            "Dask scheduler %s: %d workers, %d threads; dashboard %s",
            client.scheduler.address, len(client.nthreads()), n_threads, client.dashboard_link,
        )
        predictor_future = client.scatter(predictor, broadcast=True, hash=False)
        velocities_future = client.scatter(velocities, broadcast=True, hash=False)
        window = n_threads * max(settings.max_in_flight_per_thread, 1)
        queue = iter(todo)
        futures: dict[Any, str] = {}

        def submit(pid: str) -> Any:
            future = client.submit(
                process_partition,
                pid,
                loaders[pid],
                predictor_future,
                velocities_future,
                settings,
                per_coadd_dir,
                fingerprint,
                key=f"infer-{fingerprint[:12]}-{pid}",
                pure=False,
            )
            futures[future] = pid
            return future

        completed = as_completed([submit(pid) for _, pid in zip(range(window), queue)])
        for future in completed:
            pid = futures.pop(future)
            try:
                outcome: PartitionResult | tuple[str, BaseException] = future.result()
            except Exception as exc:
                outcome = (pid, exc)
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                completed.add(submit(nxt))
            yield outcome
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_inference(
    loaders: Mapping[str, Callable[[], Any]],
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Predict every selected partition that has no complete output; return a report.

    Args:
        loaders: ``{partition_id: callable returning a CoaddSpectra}`` (a PartitionedDataset).
        predictor: the model (see :class:`LabelPredictor`, :class:`BundlePredictor`).
        velocities: radial velocities from the MWS catalogue.
        settings: ``params:inference``.
        labels: ``params:labels``; the model must predict exactly these.

    Returns:
        A JSON-able report: counts of partitions selected/skipped/done/failed, spectra
        predicted, seconds, spectra per second, the run fingerprint and the selected
        partition ids (the VAC is built from those).

    Raises:
        BundleMismatchError: when the model's labels differ from ``labels``.
        InferenceError: when a partition fails and ``on_error`` is ``raise`` (the message
            names it; outputs already written are kept).
    """
    check_labels(predictor, labels)
    selected = select_partitions(loaders, settings.partitions, settings.healpix)
    if not selected:
        raise InferenceError(
            f"no coadd selected: {len(loaders)} partitions, patterns {settings.partitions}, "
            f"healpix {settings.healpix}"
        )
    per_coadd_dir = str(Path(settings.per_coadd_dir).resolve())
    fingerprint = run_fingerprint(predictor, velocities, settings)
    plan = plan_partitions(selected, per_coadd_dir, fingerprint, loaders)
    report: dict[str, Any] = {
        "fingerprint": fingerprint,
        "bundle_fingerprint": predictor.fingerprint,
        "per_coadd_dir": per_coadd_dir,
        "scheduler": settings.scheduler,
        "n_selected": len(plan.selected),
        "n_already_complete": len(plan.complete),
        "n_processed": 0,
        "n_failed": 0,
        "failed": {},
        "n_spectra_predicted": 0,
        "seconds": 0.0,
        "spectra_per_s": 0.0,
        "labels": list(predictor.label_names),
        "bundle_is_mock": bool(predictor.is_mock),
        "ood_threshold": float(predictor.ood_threshold),
        "min_snr": float(settings.flags.min_snr),
        "partitions": plan.selected,
    }
    if not plan.todo:
        logger.info(
            "Nothing new: all %d selected coadds already have complete outputs in %s",
            len(plan.selected), per_coadd_dir,
        )
        return report
    logger.info(
        "Inference on %d coadds (%d of %d selected already complete) with scheduler '%s'",
        len(plan.todo), len(plan.complete), len(plan.selected), settings.scheduler,
    )

    def prepare(pid: str) -> PreparedPartition:
        source = source_signature(loaders[pid])
        prepared = prepare_partition(loaders[pid](), pid, predictor, velocities, settings)
        prepared.source = source
        return prepared

    def finish(prepared: PreparedPartition) -> PartitionResult:
        return write_partition(prepared, predictor, settings, per_coadd_dir, fingerprint)

    previous_torch_threads = None
    if settings.scheduler == "synchronous":
        previous_torch_threads = set_torch_threads(synchronous_torch_threads(settings))
        results = _run_synchronous(plan.todo, prepare, finish, settings.prefetch)
    else:
        results = _run_on_dask(plan.todo, loaders, predictor, velocities, settings, per_coadd_dir, fingerprint)
    progress = _Progress(len(plan.todo), settings.progress)
    start = time.perf_counter()
    try:
        for outcome in results:
            if isinstance(outcome, tuple):
                pid, exc = outcome
                report["n_failed"] += 1
                report["failed"][pid] = f"{type(exc).__name__}: {exc}"
                if settings.on_error == "raise":
                    raise InferenceError(f"partition {pid} failed: {type(exc).__name__}: {exc}") from exc
                logger.error("partition %s failed, skipped: %s: %s", pid, type(exc).__name__, exc)
                continue
            report["n_processed"] += 1
            report["n_spectra_predicted"] += outcome.n_spectra
            progress.update(outcome)
    finally:
        progress.close()
        if hasattr(results, "close"):
            results.close()
        set_torch_threads(previous_torch_threads)
    seconds = time.perf_counter() - start
    report["seconds"] = round(seconds, 3)
    report["spectra_per_s"] = round(report["n_spectra_predicted"] / max(seconds, 1e-9), 1)
    logger.info(
        "Inference done: %d coadds, %d spectra in %.1f s (%.0f spectra/s), %d failed",
        report["n_processed"], report["n_spectra_predicted"], seconds, report["spectra_per_s"],
        report["n_failed"],
    )
    return report


# --------------------------------------------------------------------------------------
# The value-added catalogue
# --------------------------------------------------------------------------------------
def build_value_added_catalogue(report: Mapping[str, Any], vac_filepath: str | os.PathLike) -> dict[str, Any]:
    """Merge the complete per-coadd outputs of a :func:`run_inference` report into the FITS
    VAC (streaming, atomic); skipped when the VAC was already built from the same files.

    Header: MOCK (input coadds were mock), MOCKMODL (model trained on mock data), BUNDLSHA,
    FPRINT, INPUTSHA, NCOADD, NMISSING, MINSNR, OODTHR, FLAGBn, LRNGBn.

    Raises:
        InferenceError: when no selected partition has a complete output.
    """
    from desi_abundances.vac import inputs_fingerprint, vac_is_current, write_vac

    fingerprint = report["fingerprint"]
    per_coadd_dir = report["per_coadd_dir"]
    paths, is_mock = [], []
    for pid in report["partitions"]:
        path = output_path(per_coadd_dir, pid)
        provenance = read_provenance(path) if path.is_file() else None
        if provenance is not None and provenance.get("fingerprint") == fingerprint:
            paths.append(path)
            is_mock.append(bool(provenance.get("is_mock")))
    n_missing = len(report["partitions"]) - len(paths)
    if not paths:
        raise InferenceError(f"no complete per-coadd output in {per_coadd_dir}: nothing to merge")
    if n_missing:
        logger.warning("%d selected coadds have no complete output; the VAC leaves them out", n_missing)
    if any(is_mock) and not all(is_mock):
        logger.warning("mock and real coadds mixed: %d of %d mock; MOCK = True", sum(is_mock), len(is_mock))
    vac_filepath = Path(vac_filepath)
    inputs_sha = inputs_fingerprint(paths, report["labels"], fingerprint)
    summary = {
        "vac_filepath": str(vac_filepath),
        "n_coadds": len(paths),
        "n_missing": n_missing,
        "mock": any(is_mock),
        "inputs_sha": inputs_sha,
    }
    if vac_is_current(vac_filepath, inputs_sha):
        logger.info("Nothing new: the value-added catalogue %s is up to date", vac_filepath)
        with fits.open(vac_filepath, memmap=True) as hdul:
            summary["n_rows"] = int(hdul[1].header["NAXIS2"])
        summary["rebuilt"] = False
        return summary
    cards = {
        "MOCK": (any(is_mock), "input coadds are mock (header MOCK)"),
        "MOCKMODL": (bool(report.get("bundle_is_mock", False)), "model trained on mock data"),
        "BUNDLSHA": (report["bundle_fingerprint"][:16], "model bundle sha256 (first 16)"),
        "FPRINT": (fingerprint[:16], "inference run fingerprint (first 16)"),
        "INPUTSHA": (inputs_sha, ""),
        "NCOADD": (len(paths), "coadds merged"),
        "NMISSING": (n_missing, "selected coadds without output"),
        "MINSNR": (report.get("min_snr"), "LOW_SNR when SNR below this"),
        "OODTHR": (report.get("ood_threshold"), "FAR_FROM_TRAINING when INPUT_DISTANCE above"),
    }
    summary["n_rows"] = write_vac(paths, vac_filepath, report["labels"], cards, FLAG_BITS)
    summary["rebuilt"] = True
    return summary


# --------------------------------------------------------------------------------------
# The real predictor: the model bundle (H3's nn package)
# --------------------------------------------------------------------------------------
def bundle_fingerprint(bundle: Any) -> str:
    """SHA-256 of a model bundle's weights and metadata (stable across save/load)."""
    digest = hashlib.sha256()
    state = getattr(bundle, "state_dict", None) or getattr(bundle, "weights", None) or {}
    for name in sorted(state):
        tensor = state[name]
        array = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        digest.update(name.encode())
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    for name in (
        "architecture", "label_names", "wavelength", "pixel_median", "pixel_iqr", "label_offset",
        "label_scale", "label_min", "label_max", "label_n_train", "preprocessing", "ood_threshold",
    ):
        value = getattr(bundle, name, None)
        if value is None:
            continue
        digest.update(name.encode())
        if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            digest.update(np.ascontiguousarray(np.asarray(value)).tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class BundlePredictor:
    """A :class:`LabelPredictor` over a ``nn.bundle.ModelBundle``: ``spectra.preprocess``
    with the bundle's own settings, then ``nn.predict.predict_labels``.

    Refuses, on construction, a bundle whose wavelength grid is not the one
    ``spectra.preprocess`` produces or whose preprocessing settings this code does not know.
    The network is built once per process (not pickled: a Dask worker builds its own from
    the scattered bundle).

    Raises:
        BundleMismatchError: naming the mismatch.
    """

    def __init__(self, bundle: Any, batch_size: int = 2048):
        from desi_abundances.constants import brz_wavelength
        from desi_abundances.nn.predict import IncompatibleSpectraError, check_compatible
        from desi_abundances.spectra import preprocessing_settings

        try:
            preprocessing_settings(bundle.preprocessing)
            check_compatible(bundle, brz_wavelength(), None)
        except (IncompatibleSpectraError, ValueError) as exc:
            raise BundleMismatchError(f"model bundle refused: {exc}") from exc
        self.bundle = bundle
        self.batch_size = int(batch_size)
        self.label_names = list(bundle.label_names)
        self.label_min = np.asarray(bundle.label_min, dtype=np.float64)
        self.label_max = np.asarray(bundle.label_max, dtype=np.float64)
        n_train = getattr(bundle, "label_n_train", None)
        self.label_trained = (
            np.ones(len(self.label_names), bool) if n_train is None else np.asarray(n_train) > 0
        )
        self.ood_threshold = float(bundle.ood_threshold)
        self.is_mock = bool(getattr(bundle, "is_mock", False))
        self.fingerprint = bundle_fingerprint(bundle)
        self._network = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_network"] = None
        return state

    @property
    def network(self) -> Any:
        if self._network is None:
            self._network = self.bundle.network()
        return self._network

    def prepare(self, coadd: Any, vrad_kms: np.ndarray) -> Any:
        from desi_abundances.spectra import preprocess

        return preprocess(coadd, vrad_kms, self.bundle.preprocessing)

    def predict(self, prepared: Any) -> pd.DataFrame:
        from desi_abundances.nn.predict import predict_labels

        return predict_labels(self.bundle, prepared, batch_size=self.batch_size, network=self.network)
