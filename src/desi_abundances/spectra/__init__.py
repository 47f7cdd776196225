"""Spectra containers and the operations on them: numpy and the numba kernels, no I/O, no
Kedro.

* ``containers``: :class:`ArmSpectra`, :class:`CoaddSpectra` (one DESI coadd: B, R, Z arms,
  FIBERMAP, header), :class:`Spectra` (one common grid, boolean mask, row-matched meta),
  :class:`SpectraShapeError`, :func:`good_pixels`.
* ``snr``: :func:`median_snr` (compiled) and its numpy definition :func:`median_snr_reference`.
* ``settings``: :data:`DEFAULT_PREPROCESSING`, :func:`preprocessing_settings`,
  ``PREPROCESS_THREADS``.
* ``preprocessing``: :func:`preprocess` (compiled path, ``compiled``) and
  :func:`preprocess_reference` (numpy reference, ``reference``: :func:`normalise_arm`,
  :func:`shift_to_rest_frame`).
* ``kernels``: the numba kernels behind the compiled paths (also ``nn.predict``'s).
"""
from __future__ import annotations

from desi_abundances.spectra.containers import (
    ArmSpectra,
    CoaddSpectra,
    Spectra,
    SpectraShapeError,
    good_pixels,
)
from desi_abundances.spectra.preprocessing import preprocess, preprocess_reference
from desi_abundances.spectra.reference import normalise_arm, shift_to_rest_frame
from desi_abundances.spectra.settings import DEFAULT_PREPROCESSING, preprocessing_settings
from desi_abundances.spectra.snr import median_snr, median_snr_reference

__all__ = [
    "ArmSpectra",
    "CoaddSpectra",
    "DEFAULT_PREPROCESSING",
    "Spectra",
    "SpectraShapeError",
    "good_pixels",
    "median_snr",
    "median_snr_reference",
    "normalise_arm",
    "preprocess",
    "preprocess_reference",
    "preprocessing_settings",
    "shift_to_rest_frame",
]
