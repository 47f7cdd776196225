"""The value-added catalogue from a run: the complete per-coadd outputs of a
:func:`~desi_abundances.inference.runners.run_inference` report merged into one FITS table
(:mod:`.vac` writes it), rebuilt only when its inputs changed."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from astropy.io import fits

from desi_abundances.inference.errors import InferenceError
from desi_abundances.inference.flags import FLAG_BITS
from desi_abundances.inference.outputs import output_path, read_provenance
from desi_abundances.inference.vac import inputs_fingerprint, vac_is_current, write_vac
from desi_abundances.io.atomic import remove_stale_temporaries
from desi_abundances.io.locks import output_lock

logger = logging.getLogger(__name__)


MAX_FAILED_CARDS = 99
"""FAILED1..FAILED99 name the failed coadds in the VAC header (NFAILED counts them all)."""


def failed_cards(failed: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{FAILEDn: (partition id, "failed coadd")}`` for the first :data:`MAX_FAILED_CARDS`."""
    return {f"FAILED{n}": (pid[:68], "failed coadd, not merged")
            for n, pid in enumerate(sorted(failed)[:MAX_FAILED_CARDS], start=1)}


def duplicate_target_coadds(paths: Sequence[Path], pids: Sequence[str],
                            on_error: str = "raise") -> dict[str, str]:
    """Coadds whose TARGETIDs repeat those of an earlier coadd of the same (survey, program)
    (a TARGETID names one target of one survey/program; an impostor would take the other's
    velocity and labels).

    Returns:
        ``{partition_id: reason}`` of the later coadds of each repeat (``on_error: skip``).

    Raises:
        InferenceError: naming the TARGETID and both coadds (``on_error: raise``).
    """
    if len(paths) < 2:
        return {}
    keys = ["TARGETID", "SURVEY", "PROGRAM"]
    table = pd.concat([pq.read_table(path, columns=keys).to_pandas().assign(coadd=index)
                       for index, path in enumerate(paths)], ignore_index=True)
    repeated = table.duplicated(keys, keep="first").to_numpy()
    dropped: dict[str, str] = {}
    for row in np.flatnonzero(repeated):
        pid = pids[table["coadd"].iat[row]]
        if pid in dropped:
            continue
        key = tuple(table[k].iat[row] for k in keys)
        first = table.index[(table[keys] == pd.Series(key, index=keys)).all(axis=1)][0]
        reason = (f"TARGETID {key[0]} of {key[1]}/{key[2]} is in coadds "
                  f"{pids[table['coadd'].iat[first]]} and {pid}: a TARGETID names one target per "
                  "survey and program")
        if on_error != "skip":
            raise InferenceError(reason + "; the VAC is not written (on_error: skip leaves out "
                                 "the later coadd)")
        dropped[pid] = reason
        logger.error("%s: coadd %s left out of the VAC", reason, pid)
    return dropped


def build_value_added_catalogue(report: Mapping[str, Any], vac_filepath: str | os.PathLike) -> dict[str, Any]:
    """Merge the complete per-coadd outputs of a :func:`run_inference` report into the FITS
    VAC (streaming, atomic); skipped when the VAC was already built from the same files.

    Header: MOCK (input coadds were mock), MOCKMODL (model trained on mock data), BUNDLSHA,
    FPRINT, INPUTSHA, NCOADD, NMISSING, MINSNR, MAXRCHFL, MAXCOMP, OODTHR, FLAGBn, LRNGBn.

    Raises:
        InferenceError: when no selected partition has a complete output.
    """
    fingerprint = report["fingerprint"]
    per_coadd_dir = report["per_coadd_dir"]
    paths, is_mock, pids = [], [], []
    skipped = set(report.get("skipped", {}))
    failed = dict(report.get("failed", {}))
    if skipped:
        logger.info("%d selected coadds were skipped by inference (see the report): not merged",
                    len(skipped))
    for pid in (p for p in report["partitions"] if p not in skipped and p not in failed):
        path = output_path(per_coadd_dir, pid)
        provenance = read_provenance(path) if path.is_file() else None
        if provenance is not None and provenance.get("fingerprint") == fingerprint:
            paths.append(path)
            pids.append(pid)
            is_mock.append(bool(provenance.get("is_mock")))
    for pid, reason in duplicate_target_coadds(paths, pids, report.get("on_error", "raise")).items():
        failed[pid] = reason
        index = pids.index(pid)
        del paths[index], pids[index], is_mock[index]
    n_missing = len(report["partitions"]) - len(skipped) - len(paths)
    if not paths:
        raise InferenceError(f"no complete per-coadd output in {per_coadd_dir}: nothing to merge")
    if failed:
        logger.warning("%d coadds failed and are left out of the VAC: %s", len(failed),
                       sorted(failed))
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
        "failed": sorted(failed),
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
        "MAXRCHFL": (report.get("max_rchi2_floor"), "POOR_FIT when RCHI2_FLOOR above this"),
        "MAXCOMP": (report.get("max_composite_score"), "COMPOSITE when COMPOSITE_SCORE above"),
        "OODTHR": (report.get("ood_threshold"), "FAR_FROM_TRAINING when INPUT_DISTANCE above"),
        "NFAILED": (len(failed), "coadds that failed (FAILEDn: which)"),
        **failed_cards(failed),
    }
    with output_lock(vac_filepath.parent, "catalogue"):
        remove_stale_temporaries(vac_filepath.parent)
        summary["n_rows"] = write_vac(paths, vac_filepath, report["labels"], cards, FLAG_BITS)
    summary["rebuilt"] = True
    return summary
