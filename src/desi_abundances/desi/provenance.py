"""Where a coadd comes from: survey, program and HEALPix, and the one normalisation of
SURVEY/PROGRAM strings used for every join (coadd header, file name, MWS catalogue).

DESI writes survey and program in lower case (``main``, ``bright``); FITS pads strings with
blanks and readers may hand back bytes. :func:`normalise_key` strips and lower-cases them, so
a join on (TARGETID, SURVEY, PROGRAM) does not depend on case or padding.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from desi_abundances.desi.naming import PROGRAMS, is_tile_coadd_file, parse_coadd_name

NO_HEALPIX = -1
"""HEALPIX of a tile-based coadd (it spans several pixels; its header names none)."""


class ProvenanceError(ValueError):
    """Neither a coadd's header nor its name tells its survey, program or HEALPix."""


def normalise_key(value: Any) -> str:
    """A SURVEY or PROGRAM value as joined on: decoded, stripped, lower case."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip().lower()


def normalise_keys(values: Iterable[Any]) -> np.ndarray:
    """:func:`normalise_key` of each value, as an object array (normalises each distinct
    value once: a catalogue column has a handful)."""
    codes, uniques = pd.factorize(pd.Series(list(values) if not hasattr(values, "__len__") else values,
                                            dtype=object), use_na_sentinel=False)
    normalised = np.array([normalise_key(v) for v in uniques], dtype=object)
    return normalised[codes] if len(codes) else np.zeros(0, dtype=object)


def _single_value(fibermap: Any, column: str) -> str:
    """The one (normalised) value of a FIBERMAP column, or "" when absent or not unique."""
    if fibermap is None or column not in getattr(fibermap, "columns", ()):
        return ""
    values = {normalise_key(v) for v in pd.unique(np.asarray(fibermap[column], dtype=object))}
    return values.pop() if len(values) == 1 else ""


def coadd_provenance(
    header: Mapping[str, Any] | None, name: str, fibermap: Any = None
) -> tuple[str, str, int]:
    """``(survey, program, healpix)`` of a coadd: primary-header SURVEY, PROGRAM, HPXPIXEL
    where present (and not blank), else its file name / partition id
    ``coadd-{survey}-{program}-{healpix}``. Survey and program are normalised
    (:func:`normalise_key`).

    A tile-based coadd (``coadd-{petal}-{tileid}-thru{night}``) takes SURVEY and PROGRAM from
    its primary header (PROGRAM, else FAPRGRM when it is a DESI program) or else from its
    FIBERMAP's SURVEY/PROGRAM columns (one value each), and HEALPIX :data:`NO_HEALPIX`
    unless the header has HPXPIXEL.

    Raises:
        ProvenanceError: naming the coadd and what is missing when nothing tells.
    """
    header = header or {}
    parsed = parse_coadd_name(name)
    survey, program, healpix = header.get("SURVEY"), header.get("PROGRAM"), header.get("HPXPIXEL")
    survey = normalise_key(survey) if survey is not None else ""
    program = normalise_key(program) if program is not None else ""
    base = str(name) if str(name).endswith(".fits") else f"{name}.fits"
    if parsed is None and is_tile_coadd_file(base):
        faprgrm = normalise_key(header.get("FAPRGRM", ""))
        program = program or (faprgrm if faprgrm in PROGRAMS else "")
        survey = survey or _single_value(fibermap, "SURVEY")
        program = program or _single_value(fibermap, "PROGRAM")
        if not survey or not program:
            raise ProvenanceError(
                f"tile-based coadd {name!r}: SURVEY/PROGRAM neither in its primary header nor in "
                "its FIBERMAP, so it cannot be joined to the MWS catalogue"
            )
        return survey, program, int(healpix) if healpix is not None else NO_HEALPIX
    if parsed is not None:
        survey = survey or parsed.survey
        program = program or parsed.program
        healpix = healpix if healpix is not None else parsed.healpix
    if not survey or not program or healpix is None:
        raise ProvenanceError(
            f"coadd {name!r}: SURVEY/PROGRAM/HPXPIXEL neither in its primary header nor in a "
            "file name coadd-<survey>-<program>-<healpix>"
        )
    return survey, program, int(healpix)
