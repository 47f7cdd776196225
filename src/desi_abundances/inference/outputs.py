"""Per-coadd outputs: one Parquet file per coadd, written atomically, its provenance (run
fingerprint, input file signature) in the Parquet metadata. An output is complete iff it
exists, is readable and carries the current fingerprint and input signature."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from desi_abundances.inference.flags import FLAG_BITS
from desi_abundances.inference.predictor import LabelPredictor
from desi_abundances.inference.prepare import PreparedPartition, finish_partition
from desi_abundances.inference.settings import InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup
from desi_abundances.io.atomic import atomic_write

OUTPUT_SCHEMA_VERSION = 6
"""Bump when the per-coadd table changes, so that older outputs count as stale (2: flag
bit 6 MISSING_ARM; 3: the rchi2 columns and flag bit 7 POOR_FIT; 4: the leverage column;
5: composite_score, composite_dv_kms and flag bit 8 COMPOSITE; 6: rchi2_floor, POOR_FIT
from it)."""

METADATA_KEY = b"desi_abundances.inference"
"""Parquet key-value metadata key under which each per-coadd file records its provenance."""


def output_path(per_coadd_dir: str | os.PathLike, partition_id: str) -> Path:
    """Parquet file of one partition: ``<per_coadd_dir>/<partition_id>.parquet``."""
    return Path(per_coadd_dir) / f"{partition_id}.parquet"


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


def source_signature(path: str | os.PathLike | None) -> str | None:
    """``"<size>:<mtime_ns>"`` of an input coadd file; None when unknown or unreadable."""
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
    counts: dict[str, int] | None = None
    """Why rows were or were not selected (``selection.target_outcomes``)."""


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
        "counts": prepared.counts,
    }
    write_output(table, output_path(per_coadd_dir, prepared.partition_id), provenance)
    return PartitionResult(prepared.partition_id, n_spectra=len(table), is_mock=prepared.is_mock,
                           counts=prepared.counts)


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
    coadds: Mapping[str, str | os.PathLike] | None = None,
) -> InferencePlan:
    """Split the selected partitions into complete outputs (kept) and those to (re)do; with
    ``coadds`` (``{partition_id: path}``), an output made from another version of its input
    file is redone too."""
    complete, todo = [], []
    for pid in selected:
        source = source_signature(coadds[pid]) if coadds is not None else None
        done = output_is_complete(output_path(per_coadd_dir, pid), fingerprint, source)
        (complete if done else todo).append(pid)
    return InferencePlan(selected=list(selected), complete=complete, todo=todo)

