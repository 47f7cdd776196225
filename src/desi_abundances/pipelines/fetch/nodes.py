"""Nodes of the fetch pipeline: thin glue over :mod:`desi_abundances.fetch`."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from desi_abundances.fetch import FetchSettings, fetch_files, inference_coadds, training_coadds
from desi_abundances.io.fits_table import read_tables

logger = logging.getLogger(__name__)

PURPOSES = ("training", "inference")
_SETTING_KEYS = set(FetchSettings.__dataclass_fields__)


def _settings(params: dict[str, Any]) -> FetchSettings:
    return FetchSettings(**{k: v for k, v in params.items() if k in _SETTING_KEYS})


def healpix_url(params: dict[str, Any]) -> str:
    """``healpix_url``, else ``{release_url}/spectro/redux/{specprod}/healpix``."""
    if params.get("healpix_url"):
        return str(params["healpix_url"]).rstrip("/")
    return f"{str(params['release_url']).rstrip('/')}/spectro/redux/{params['specprod']}/healpix"


def fetch_catalogues(params: dict[str, Any]) -> dict[str, Any]:
    """Download the MWS catalogue (and, for training, APOGEE's allStar) where missing.

    Returns:
        ``{"mws_catalogue": path, "apogee_allstar": path or None, "report": ...}``.
    """
    purpose = params.get("purpose", "training")
    if purpose not in PURPOSES:
        raise ValueError(f"params:fetch.purpose must be one of {PURPOSES}, got {purpose!r}")
    tasks = [(params["mws_catalogue_url"], params["mws_catalogue"])]
    if purpose == "training":
        tasks.append((params["apogee_allstar_url"], params["apogee_allstar"]))
    report = fetch_files(tasks, _settings(params))
    if report["failed"]:
        raise RuntimeError(f"fetch: catalogues not fetched: {report['failed']}")
    return {"mws_catalogue": str(params["mws_catalogue"]),
            "apogee_allstar": str(params["apogee_allstar"]) if purpose == "training" else None,
            "report": report}


def plan_coadds(catalogues: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The coadd paths (below ``healpix/``) the run needs: every MWS pixel for inference, the
    pixels of the APOGEE overlap (Gaia id join) for training; ``partitions`` globs filter."""
    patterns = params.get("partitions")
    tables = read_tables(catalogues["mws_catalogue"], ["RVTAB", "GAIA"],
                         columns={"RVTAB": ["SURVEY", "PROGRAM", "HEALPIX"], "GAIA": ["SOURCE_ID"]})
    if catalogues.get("apogee_allstar"):
        apogee = read_tables(catalogues["apogee_allstar"], 1, columns=["GAIAEDR3_SOURCE_ID"])
        paths = training_coadds(tables["RVTAB"], tables["GAIA"]["SOURCE_ID"], apogee["GAIAEDR3_SOURCE_ID"], patterns)
        logger.info("fetch plan (training): %d coadds hold an APOGEE star (Gaia id in common)", len(paths))
    else:
        paths = inference_coadds(tables["RVTAB"], patterns)
        logger.info("fetch plan (inference): %d coadds hold an MWS spectrum", len(paths))
    return paths


def download_coadds(plan: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """Download the planned coadds into ``destination`` (the ``healpix/`` folder of
    ``desi_healpix_root``); the report counts what was done and lists failures."""
    base, destination = healpix_url(params), Path(params["destination"])
    tasks = [(f"{base}/{relative}", destination / relative) for relative in plan]
    report = fetch_files(tasks, _settings(params))
    report["healpix_url"], report["destination"] = base, str(destination)
    if report["failed"]:
        logger.warning("fetch: %d coadds failed (rerun to retry: complete files are kept)", report["n_failed"])
    return report
