"""The value-added catalogue from a run: the complete per-coadd outputs of a
:func:`~desi_abundances.inference.runners.run_inference` report merged into one FITS table
(:mod:`.vac` writes it), rebuilt only when its inputs changed."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from desi_abundances.inference.errors import InferenceError
from desi_abundances.inference.flags import FLAG_BITS
from desi_abundances.inference.outputs import output_path, read_provenance
from desi_abundances.inference.vac import inputs_fingerprint, vac_is_current, write_vac

logger = logging.getLogger(__name__)


def build_value_added_catalogue(report: Mapping[str, Any], vac_filepath: str | os.PathLike) -> dict[str, Any]:
    """Merge the complete per-coadd outputs of a :func:`run_inference` report into the FITS
    VAC (streaming, atomic); skipped when the VAC was already built from the same files.

    Header: MOCK (input coadds were mock), MOCKMODL (model trained on mock data), BUNDLSHA,
    FPRINT, INPUTSHA, NCOADD, NMISSING, MINSNR, MAXRCHI2, OODTHR, FLAGBn, LRNGBn.

    Raises:
        InferenceError: when no selected partition has a complete output.
    """
    fingerprint = report["fingerprint"]
    per_coadd_dir = report["per_coadd_dir"]
    paths, is_mock = [], []
    skipped = set(report.get("skipped", {}))
    if skipped:
        logger.info("%d selected coadds were skipped by inference (see the report): not merged",
                    len(skipped))
    for pid in (p for p in report["partitions"] if p not in skipped):
        path = output_path(per_coadd_dir, pid)
        provenance = read_provenance(path) if path.is_file() else None
        if provenance is not None and provenance.get("fingerprint") == fingerprint:
            paths.append(path)
            is_mock.append(bool(provenance.get("is_mock")))
    n_missing = len(report["partitions"]) - len(skipped) - len(paths)
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
        "MAXRCHI2": (report.get("max_rchi2"), "POOR_FIT when RCHI2 above this"),
        "OODTHR": (report.get("ood_threshold"), "FAR_FROM_TRAINING when INPUT_DISTANCE above"),
    }
    summary["n_rows"] = write_vac(paths, vac_filepath, report["labels"], cards, FLAG_BITS)
    summary["rebuilt"] = True
    return summary
