"""Preprocessing: continuum-normalise each arm, merge the arms, shift to the rest frame.

Used by feature engineering (training set) AND inference with the same ``settings``
(``params:feature_engineering.preprocessing``, stored in the model bundle). The numpy
reference (:func:`preprocess_reference`, ``spectra.reference``) defines the result;
:func:`preprocess` runs the same float32 operations fused per spectrum in the compiled
kernels (``spectra.compiled``, ``spectra.kernels``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.spectra.compiled import preprocess_compiled
from desi_abundances.spectra.containers import CoaddSpectra, Spectra, SpectraShapeError
from desi_abundances.spectra.reference import ContinuumPlan, lattice_offset, preprocess_numpy
from desi_abundances.spectra.settings import preprocessing_settings
from desi_abundances.spectra.snr import median_snr_reference


def preprocess(coadd: CoaddSpectra, vrad_kms: np.ndarray, settings: dict[str, Any]) -> Spectra:
    """DESI coadd -> continuum-normalised, rest-frame spectra on the brz grid: see
    :func:`preprocess_reference`, which defines the result. This runs the compiled kernels
    (same float32 operations fused per spectrum, ~10x faster; equal to the reference within
    float32 rounding, identical masks)."""
    return _preprocess(coadd, vrad_kms, settings, compiled=True)


def preprocess_reference(coadd: CoaddSpectra, vrad_kms: np.ndarray,
                         settings: dict[str, Any]) -> Spectra:
    """The numpy reference of :func:`preprocess` (its definition; tests compare the two)."""
    return _preprocess(coadd, vrad_kms, settings, compiled=False)


def _preprocess(coadd: CoaddSpectra, vrad_kms: np.ndarray, settings: dict[str, Any],
                compiled: bool) -> Spectra:
    """DESI coadd -> continuum-normalised, rest-frame spectra on the brz grid.

    Steps: (1) per arm, a robust pseudo-continuum divides the flux and multiplies the ivar by
    its square (:func:`normalise_arm`), so flux-calibration wiggles and arm-junction steps
    drop out; (2) the arms are merged onto the brz grid (3600-9824 A, 0.8 A: the arms are
    slices of it, so no resampling) with inverse-variance weights in the overlaps; (3) each
    spectrum is shifted to the rest frame with its ``vrad_kms`` (:func:`shift_to_rest_frame`);
    the output grid is the brz grid read as rest-frame wavelengths.

    Missing velocities: a spectrum whose ``vrad_kms`` is not finite or exceeds
    ``max_abs_vrad_kms`` cannot be put in the rest frame. It is NOT used unshifted: every
    pixel is masked (mask True, ivar 0, flux 1) and ``meta.rest_frame_ok`` is False, so it
    carries no information; feature engineering drops such rows and ``predict_labels``
    returns NaN labels for them.

    Bad pixels (IVAR <= 0, any MASK bit, non-finite values, merged normalised flux outside
    ``normalised_flux_range``, off the grid after the shift) end with mask True, ivar 0 and
    flux 1; the output holds no NaN.

    Args:
        coadd: a coadd (or a stack of them) with arms on slices of the brz lattice.
        vrad_kms: (n_spectra,) radial velocities, km/s, row-matched to ``coadd.fibermap``.
        settings: ``params:feature_engineering.preprocessing`` (keys of
            ``DEFAULT_PREPROCESSING``; missing ones take the defaults).

    Returns:
        :class:`Spectra`; meta = TARGETID, vrad_kms, rest_frame_ok, good_pixel_fraction,
        snr (:func:`median_snr` of the input spectrum; the compiled path computes it while
        the arms are in cache),
        ``meta.attrs["preprocessing"]`` = the full settings used and
        ``meta.attrs["is_mock"]`` = ``coadd.is_mock``.

    Raises:
        SpectraShapeError: when vrad_kms does not match the coadd or an arm is off the grid.
        KeyError: when the FIBERMAP has no TARGETID.
    """
    settings = preprocessing_settings(settings)
    vrad_kms = np.asarray(vrad_kms, dtype=np.float64).reshape(-1)
    if vrad_kms.size != coadd.n_spectra:
        raise SpectraShapeError(
            f"vrad_kms has {vrad_kms.size} values but the coadd holds {coadd.n_spectra} spectra"
        )
    if "TARGETID" not in coadd.fibermap.columns:
        raise KeyError("coadd FIBERMAP has no TARGETID column")
    grid = brz_wavelength()
    step = float(grid[1] - grid[0])
    arms = []
    for name, arm in coadd.arms.items():
        offset = lattice_offset(np.asarray(arm.wavelength, np.float64), grid, name)
        plan = ContinuumPlan.build(arm.wavelength.size, step, settings)
        arms.append((arm, slice(offset, offset + arm.wavelength.size), plan))
    with np.errstate(invalid="ignore"):
        rest_frame_ok = np.isfinite(vrad_kms) & (np.abs(vrad_kms) <= settings["max_abs_vrad_kms"])
    velocity = np.where(rest_frame_ok, vrad_kms, 0.0)

    if compiled:
        flux, ivar, mask, good_fraction, snr = preprocess_compiled(
            arms, grid, velocity, rest_frame_ok, settings)
    else:
        flux, ivar, mask, good_fraction = preprocess_numpy(
            arms, grid, velocity, rest_frame_ok, settings)
        snr = median_snr_reference(coadd)
    meta = pd.DataFrame(
        {
            "TARGETID": coadd.fibermap["TARGETID"].to_numpy(),
            "vrad_kms": vrad_kms,
            "rest_frame_ok": rest_frame_ok,
            "good_pixel_fraction": good_fraction,
            "snr": snr,
        }
    )
    meta.attrs["preprocessing"] = settings  # read by nn.predict.check_compatible
    meta.attrs["is_mock"] = coadd.is_mock
    return Spectra(wavelength=grid, flux=flux, ivar=ivar, mask=mask, meta=meta)
