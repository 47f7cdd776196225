"""Nodes of the crossmatch pipeline: thin glue over :mod:`desi_abundances.crossmatch`."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from desi_abundances.crossmatch.apogee import CrossmatchError, crossmatch
from desi_abundances.crossmatch.reference import crossmatch_reference
from desi_abundances.labels import LABEL_SOURCE_TABLE, label_source_kind

logger = logging.getLogger(__name__)


def crossmatch_desi_apogee(
    spectra_metadata: pd.DataFrame, apogee_stars: pd.DataFrame, params: dict[str, Any],
    labels_source: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Match the candidate DESI spectra to APOGEE stars passing the quality cuts (or, with
    ``labels_source.kind: table``, to a generic reference-label table).

    Returns:
        (``crossmatch`` table, ``crossmatch_report`` dict of counts after every step).
    """
    if label_source_kind(labels_source) == LABEL_SOURCE_TABLE:
        table, report = crossmatch_reference(spectra_metadata, apogee_stars, params)
        report["parameters"] = params
        logger.info("crossmatch (reference table): %s; %d pairs %s", report["matching"],
                    report["final"]["pairs"], report["final"]["by_method"])
        require_pairs(report)
        return table, report
    table, report = crossmatch(spectra_metadata, apogee_stars, params)
    report["parameters"] = params
    for step in report["apogee_cuts"]:
        logger.info("APOGEE after %-20s %8d", step["step"], step["remaining"])
    logger.info("DESI spectra %d (%d targets)", report["desi"]["spectra"], report["desi"]["targets"])
    for name, count in report["matching"].items():
        logger.info("match %-40s %8d", name, count)
    for step in report["matched_after_cuts"]:
        logger.info("matched after %-20s %8d", step["step"], step["remaining"])
    logger.info("crossmatch: %d pairs %s", report["final"]["pairs"], report["final"]["by_method"])
    require_pairs(report)
    return table, report


def require_pairs(report: dict[str, Any]) -> None:
    """Refuse an empty crossmatch before it is written (nothing to train on downstream).

    Raises:
        CrossmatchError: with the counts after every step of ``report``.
    """
    if report["final"]["pairs"] == 0:
        steps = {key: report[key] for key in ("apogee_cuts", "desi", "matching",
                                              "matched_after_cuts") if key in report}
        raise CrossmatchError(
            f"crossmatch: 0 pairs; nothing written, earlier outputs kept. Counts after every "
            f"step: {steps}"
        )
