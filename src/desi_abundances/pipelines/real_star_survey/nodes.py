"""Thin nodes of the real_star_survey pipeline; the science is in ``desi_abundances.real_stars``."""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.real_stars import writer
from desi_abundances.real_stars.fetch import ensure_wheel
from desi_abundances.real_stars.libraries import Library, open_wheel, read_library
from desi_abundances.spectra import CoaddSpectra

logger = logging.getLogger(__name__)


def read_libraries(params: dict[str, Any]) -> dict[str, Library]:
    """The libraries named in ``params.libraries``, from the cached (or fetched) wheel."""
    wheel = ensure_wheel(params["wheel_dir"], str(params["mangadap_version"]),
                         bool(params.get("download", True)))
    libraries = {}
    with open_wheel(wheel) as archive:
        for name, options in params["libraries"].items():
            extra = {"fwhm_angstrom": float(options["fwhm_angstrom"])} if "fwhm_angstrom" in options else {}
            library = read_library(archive, name, params.get("max_stars"), **extra)
            logger.info("%s: %d spectra, wavelengths %s, FWHM %.2f A", library.name,
                        len(library.ids), library.vacuum_source, library.fwhm_angstrom)
            libraries[name] = library
    return libraries


def write_coadds(libraries: dict[str, Library], params: dict[str, Any]
                 ) -> tuple[dict[str, CoaddSpectra], dict[str, pd.DataFrame], pd.DataFrame]:
    """Coadds of every library, the MWS-like catalogue and the table of written stars."""
    coadds: dict[str, CoaddSpectra] = {}
    stars = []
    for code, (name, library) in enumerate(libraries.items()):
        settings = {**{k: params[k] for k in ("snr", "flux_level", "seed", "survey", "program")},
                    **params["libraries"][name]}
        rng = np.random.default_rng([int(params["seed"]), code])
        library_coadds, table = writer.library_coadds(library, settings, rng)
        clash = set(library_coadds) & set(coadds)
        if clash:
            raise ValueError(f"libraries share coadd partitions {sorted(clash)}: give each "
                             "library its own real_star_survey.libraries.<name>.centre")
        coadds.update(library_coadds)
        stars.append(table)
    targets = pd.concat(stars, ignore_index=True)
    return coadds, writer.mws_catalogue(targets, coadds), targets


def build_reference_labels(libraries: dict[str, Library], real_star_targets: pd.DataFrame,
                           params: dict[str, Any]) -> pd.DataFrame:
    """The reference-label table of every library (assumed literature errors per library)."""
    tables = []
    for name, library in libraries.items():
        stars = real_star_targets[real_star_targets["LIBRARY"] == library.name]
        tables.append(writer.reference_table(library, stars, params["libraries"][name]["errors"]))
    table = pd.concat(tables, ignore_index=True)
    complete = np.isfinite(table[["TEFF", "LOGG", "FE_H"]].to_numpy()).all(axis=1)
    logger.info("reference labels: %d stars, %d with Teff, log g and [Fe/H]", len(table),
                int(complete.sum()))
    return table


def summarise(real_star_targets: pd.DataFrame, reference_labels: pd.DataFrame,
              params: dict[str, Any]) -> dict[str, Any]:
    """real_star_survey_complete.json: counts per library, S/N, what the data are."""
    per_library = {}
    for name, rows in real_star_targets.groupby("LIBRARY"):
        labels = reference_labels[reference_labels["LIBRARY"] == name]
        per_library[str(name)] = {
            "stars": len(rows),
            "complete_labels": int(np.isfinite(labels[["TEFF", "LOGG", "FE_H"]].to_numpy()).all(axis=1).sum()),
            "median_snr": float(np.median(rows["SNR"])),
            "coadds": int(rows["partition"].nunique()),
        }
    return {"data": "REAL stellar-library spectra (MILES, STELIB) in DESI's formats, not DESI",
            "libraries": per_library, "snr_added": float(params["snr"]),
            "seed": int(params["seed"]), "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
