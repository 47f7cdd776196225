"""One coadd, prepared and predicted: targets selected, radial velocities and S/N attached,
the predictor's inputs made (:func:`prepare_partition`, numpy, in a reader thread or a Dask
task), then the network and the flags (:func:`finish_partition`)."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.fibermap import describe_garbled, float_values, integer_values
from desi_abundances.desi.provenance import ProvenanceError, coadd_provenance
from desi_abundances.inference.errors import CoaddSkipped, InferenceError, MockModelError
from desi_abundances.inference.flags import quality_flags
from desi_abundances.inference.predictor import LabelPredictor
from desi_abundances.inference.selection import fiber_status, fibermap_garbled, target_outcomes
from desi_abundances.inference.settings import InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup
from desi_abundances.io.desi_coadd import read_coadd
from desi_abundances.spectra import median_snr, missing_arm

logger = logging.getLogger(__name__)


def read_partition(path: str | os.PathLike, read_options: Mapping[str, Any] | None = None) -> Any:
    """The coadd at ``path`` (``io.desi_coadd.read_coadd`` with ``read_options``)."""
    return read_coadd(Path(path), **dict(read_options or {}))


def coadd_survey_program(coadd: Any, partition_id: str) -> tuple[str, str, int]:
    """(survey, program, healpix) of a coadd (``desi.provenance.coadd_provenance``: header
    SURVEY/PROGRAM/HPXPIXEL, else the name, else for a tile-based coadd its FIBERMAP;
    lower case).

    Raises:
        CoaddSkipped: (an InferenceError) naming the partition and the reason when nothing
            tells: the run skips this coadd and goes on.
    """
    try:
        return coadd_provenance(coadd.header, partition_id, coadd.fibermap)
    except ProvenanceError as exc:
        raise CoaddSkipped(f"partition {partition_id}: {exc}") from exc


def check_mock_model(predictor: LabelPredictor, coadd_is_mock: bool, allow_mock_model: bool,
                     partition_id: str) -> None:
    """Refuse a model trained on mock data on a real coadd unless ``allow_mock_model``.

    Raises:
        MockModelError: naming the partition.
    """
    if getattr(predictor, "is_mock", False) and not coadd_is_mock and not allow_mock_model:
        raise MockModelError(
            f"partition {partition_id}: the model bundle was trained on mock data and this coadd "
            "is real (no MOCK header): refused; retrain on real data or set "
            "inference.allow_mock_model: true to apply it anyway"
        )


@dataclass
class PreparedPartition:
    """One coadd ready for the network: its catalogue columns and the predictor's inputs."""

    partition_id: str
    table: pd.DataFrame
    inputs: Any
    is_mock: bool
    source: str | None = None
    """Signature of the input file (see :func:`outputs.source_signature`)."""
    counts: dict[str, int] | None = None
    """Why rows were or were not selected (``selection.target_outcomes``)."""
    input_rows: np.ndarray | None = None
    """Rows of the predictor's output that make ``table`` (None: all, in order): set when the
    whole coadd was prepared because nearly every row is a target (see
    ``WHOLE_COADD_FRACTION``)."""
    missing_arm: np.ndarray | None = None
    """Per row of ``table``: an arm of the spectrum is wholly unusable (``MISSING_ARM``)."""


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
    prepare the predictor's inputs (preprocessing); the coadd can be dropped afterwards.
    Garbled FIBERMAP rows (``selection.fibermap_garbled``) are skipped, counted and logged.

    Raises:
        InferenceError: naming the coadd and HDU 'FIBERMAP' when it lacks TARGETID,
            TARGET_RA or TARGET_DEC.
    """
    survey, program, healpix = coadd_survey_program(coadd, partition_id)
    is_mock = bool(getattr(coadd, "is_mock", False))
    check_mock_model(predictor, is_mock, settings.allow_mock_model, partition_id)
    source_fibermap = coadd.fibermap
    require_fibermap_columns(source_fibermap, partition_id)
    garbled = fibermap_garbled(coadd)
    if garbled:
        logger.warning("%s", describe_garbled(f"coadd {partition_id}", source_fibermap, garbled))
    targetid_all = integer_values(source_fibermap["TARGETID"])[0]  # garbled rows: 0, unselected
    vrad_all, in_catalogue = velocities.lookup(survey, program, targetid_all)
    rows, counts = target_outcomes(coadd, in_catalogue, vrad_all, settings.only_mws_catalogue,
                                   garbled)
    if rows.size == 0:
        return PreparedPartition(partition_id, empty_output_table([])[list(_META_COLUMNS)], None,
                                 is_mock, counts=counts)
    # a garbled row never reaches the predictor (its values may break preprocessing)
    whole = not garbled and (rows.size == coadd.n_spectra
                             or rows.size >= WHOLE_COADD_FRACTION * coadd.n_spectra)
    prepared_coadd = coadd if whole else coadd.select(rows)
    vrad = vrad_all[rows]
    # non-targets of a whole coadd go through too (their velocity may be missing: masked)
    input_rows = rows if whole and rows.size != coadd.n_spectra else None
    inputs = predictor.prepare(prepared_coadd, vrad_all if input_rows is not None else vrad)
    snr = prepared_snr(inputs, prepared_coadd)
    bad_arm = missing_arm(prepared_coadd)
    table = pd.DataFrame(
        {
            "TARGETID": targetid_all[rows],
            "TARGET_RA": float_values(source_fibermap["TARGET_RA"])[rows],
            "TARGET_DEC": float_values(source_fibermap["TARGET_DEC"])[rows],
            "SURVEY": np.full(rows.size, survey, dtype=object),
            "PROGRAM": np.full(rows.size, program, dtype=object),
            "HEALPIX": np.full(rows.size, healpix, dtype=np.int32),
            "COADD_FIBERSTATUS": fiber_status(source_fibermap, rows),
            "snr": snr if input_rows is None else snr[input_rows],
            "vrad_kms": vrad.astype(np.float64),
        }
    )
    return PreparedPartition(partition_id, table, inputs, is_mock, counts=counts,
                             input_rows=input_rows,
                             missing_arm=bad_arm if input_rows is None else bad_arm[input_rows])


REQUIRED_FIBERMAP_COLUMNS = ("TARGETID", "TARGET_RA", "TARGET_DEC")
"""FIBERMAP columns every coadd must have for inference."""


def require_fibermap_columns(fibermap: pd.DataFrame, partition_id: str) -> None:
    """Raise :class:`InferenceError` naming the coadd, HDU 'FIBERMAP' and the columns it lacks."""
    missing = [c for c in REQUIRED_FIBERMAP_COLUMNS if c not in fibermap.columns]
    if missing:
        raise InferenceError(f"coadd {partition_id}: HDU 'FIBERMAP' lacks column(s) {missing}")


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
    for name in FIT_QUALITY_COLUMNS + EPISTEMIC_COLUMNS:
        columns[name] = (np.asarray(predictions[name], dtype=np.float32)
                         if name in predictions.columns else np.full(len(table), np.nan, np.float32))
    table = pd.DataFrame(columns)
    flag, label_range_flag = quality_flags(
        table,
        predictor.label_names,
        predictor.label_min,
        predictor.label_max,
        predictor.ood_threshold,
        settings.flags,
        getattr(predictor, "label_trained", None),
        prepared.missing_arm,
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


FIT_QUALITY_COLUMNS = ("rchi2", "rchi2_b", "rchi2_r", "rchi2_z", "rchi2_floor",
                       "composite_score", "composite_dv_kms")
"""Reduced chi-square of the spectrum model at the predicted labels (``nn.fit_quality``) and
the composite-spectrum score with its velocity (``nn.binaries``)."""
EPISTEMIC_COLUMNS = ("leverage",)
"""Leverage of the network's last hidden features (``nn.feature_density``)."""

_META_COLUMNS = (
    "TARGETID", "TARGET_RA", "TARGET_DEC", "SURVEY", "PROGRAM", "HEALPIX",
    "COADD_FIBERSTATUS", "snr", "vrad_kms",
)


def empty_output_table(label_names: Sequence[str]) -> pd.DataFrame:
    """A zero-row per-coadd table with every column and dtype.

    Columns: TARGETID (int64), TARGET_RA, TARGET_DEC (deg), SURVEY, PROGRAM, HEALPIX (int32),
    COADD_FIBERSTATUS (int32), snr (median S/N per pixel), vrad_kms (km/s, NaN when not
    usable), each label and ``<label>_err`` (K for teff, dex otherwise, float32),
    input_distance, rchi2, rchi2_b, rchi2_r, rchi2_z, rchi2_floor (reduced chi-square of the
    spectrum model, overall, per arm and with the model-error floor; NaN when the predictor
    has none), composite_score,
    composite_dv_kms (``nn.binaries``; NaN likewise), leverage (of the network's features,
    ``nn.feature_density``; NaN when it has none), flag (int32 bits, see
    ``inference.flags``), label_range_flag (int64).
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
    for name in FIT_QUALITY_COLUMNS + EPISTEMIC_COLUMNS:
        columns[name] = np.zeros(0, np.float32)
    columns["flag"] = np.zeros(0, np.int32)
    columns["label_range_flag"] = np.zeros(0, np.int64)
    return pd.DataFrame(columns)
