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

from desi_abundances.desi.naming import parse_coadd_name


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


def coadd_provenance(header: Mapping[str, Any] | None, name: str) -> tuple[str, str, int]:
    """``(survey, program, healpix)`` of a coadd: primary-header SURVEY, PROGRAM, HPXPIXEL
    where present (and not blank), else its file name / partition id
    ``coadd-{survey}-{program}-{healpix}``. Survey and program are normalised
    (:func:`normalise_key`).

    Raises:
        ProvenanceError: naming the coadd when neither tells.
    """
    header = header or {}
    parsed = parse_coadd_name(name)
    survey, program, healpix = header.get("SURVEY"), header.get("PROGRAM"), header.get("HPXPIXEL")
    survey = normalise_key(survey) if survey is not None else ""
    program = normalise_key(program) if program is not None else ""
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
