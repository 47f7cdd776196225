"""Training data for the emulator: the spectral library on the emulator's wavelength grid.

The emulator works on a coarser grid than the library (R_emu = 7,000, still above DESI's
R <= 5,600, 2 pixels per resolution element: 14,358 pixels over 3550-9900 A vacuum) to keep
its weights small. Library spectra (R = 20,000) are convolved with the Gaussian that takes
R_lib to R_emu (FWHM^2 = FWHM_emu^2 - FWHM_lib^2) and resampled.
"""
from __future__ import annotations

import numpy as np

from desi_abundances.desi.grids import ARM_WAVELENGTH_RANGE_ANGSTROM, arm_wavelength
from desi_abundances.desi.instrument import lsf_matrix
from desi_abundances.synthesis import abundances as abund
from desi_abundances.synthesis import library as lib

EMULATOR_RESOLVING_POWER = 7_000.0
INPUT_LABELS_EXCLUDED = tuple(abund.SECONDARY_LABELS)
"""ci_fe and tiii_fe never reach the synthesis when c_fe and ti_fe are set (always, in the
mock population), so they are not emulator inputs: their spectra carry no information."""


def emulator_wavelength(resolving_power: float = EMULATOR_RESOLVING_POWER) -> np.ndarray:
    """The emulator's vacuum wavelength grid (Angstrom), uniform in ln(lambda)."""
    return lib.library_wavelength(resolving_power, lib.LIBRARY_WAVELENGTH_RANGE)


def difference_kernel_sigma(wavelength_step_ln: float, r_from: float, r_to: float) -> float:
    """Gaussian sigma (pixels of a ln-lambda grid) taking resolving power r_from to r_to."""
    if r_to >= r_from:
        raise ValueError(f"cannot sharpen from R={r_from} to R={r_to}")
    fwhm_ln = np.sqrt(1.0 / r_to**2 - 1.0 / r_from**2)
    return float(fwhm_ln * lib.FWHM_TO_SIGMA / wavelength_step_ln)


def degrade_library_flux(flux: np.ndarray, r_library: float, r_emulator: float) -> np.ndarray:
    """(n, n_lib) library flux -> (n, n_emu) flux on the emulator grid (float32)."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    step = lib.log_lambda_step(r_library)
    kernel = lib.gaussian_kernel(difference_kernel_sigma(step, r_library, r_emulator))
    half = kernel.size // 2
    padded = np.pad(flux, ((0, 0), (half, half)), mode="edge")
    smooth = np.stack([np.convolve(row, kernel, mode="valid") for row in padded])
    ln_lib = np.log(lib.library_wavelength(r_library, lib.LIBRARY_WAVELENGTH_RANGE))
    ln_emu = np.log(emulator_wavelength(r_emulator))
    return np.stack([np.interp(ln_emu, ln_lib, row) for row in smooth]).astype(np.float32)


def input_label_names(library_label_names: list[str]) -> list[str]:
    """The library's labels the emulator takes as inputs (secondary labels dropped)."""
    return [n for n in library_label_names if n not in INPUT_LABELS_EXCLUDED]


def split_by_star_index(star_index: np.ndarray, modulus: int = 10) -> np.ndarray:
    """'test' (index % modulus == 0), 'validation' (== 1) or 'train': fixed as the library grows."""
    star_index = np.asarray(star_index)
    split = np.full(star_index.shape, "train", dtype=object)
    split[star_index % modulus == 1] = "validation"
    split[star_index % modulus == 0] = "test"
    return split


def arm_masks(wavelength: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean pixel masks of the DESI arms (B, R, Z) on a vacuum grid."""
    return {arm: (wavelength >= lo) & (wavelength <= hi)
            for arm, (lo, hi) in ARM_WAVELENGTH_RANGE_ANGSTROM.items()}


def flux_error_summary(predicted: np.ndarray, truth: np.ndarray, wavelength: np.ndarray) -> dict:
    """Median and 95th percentile of |predicted - truth| per DESI arm (normalised flux units)."""
    error = np.abs(np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float))
    summary = {}
    for arm, mask in arm_masks(wavelength).items():
        values = error[:, mask].ravel()
        summary[arm] = {
            "median_abs_error": float(np.median(values)),
            "p95_abs_error": float(np.percentile(values, 95)),
            "median_per_spectrum_rms": float(np.median(np.sqrt(np.mean(error[:, mask] ** 2, axis=1)))),
        }
    return summary


def flux_error_at_desi_resolution(predicted: np.ndarray, truth: np.ndarray,
                                  wavelength: np.ndarray, resolving_power: float) -> dict | None:
    """Like :func:`flux_error_summary`, after both spectra go through DESI's LSF and 0.8 A
    pixels (``desi.instrument.lsf_matrix``)."""
    summary = {}
    for arm in ("B", "R", "Z"):
        matrix = lsf_matrix(wavelength, arm_wavelength(arm), resolving_power)
        error = np.abs(matrix @ (np.asarray(predicted, float) - np.asarray(truth, float)).T)
        summary[arm] = {"median_abs_error": float(np.median(error)),
                        "p95_abs_error": float(np.percentile(error, 95))}
    return summary
