"""The committed spectral library: its wavelength grid, resampling, chunk files, reading.

Grid: VACUUM Angstrom, uniform in ln(lambda) from 3550 to 9900 A (DESI's 3600-9824 A plus
room for Doppler shifts of +-1,500 km/s) with step 1/(2 R_lib), R_lib = 20,000 (2 pixels per
resolution element; 41,024 pixels). Each synthetic spectrum
(air wavelengths, 0.05 A steps) is moved to vacuum, convolved with a Gaussian of FWHM
lambda / R_lib and interpolated onto the grid.

Chunk files ``data/spectral_library/chunks/chunk_<first index:06d>.npz`` (compressed npz,
written once, never rewritten) hold:

* ``star_index`` (n,) int64: row of ``labels_plan.csv`` each spectrum belongs to;
* ``labels`` (n, n_labels) float32 and ``label_names`` (n_labels,) str;
* ``flux`` (n, n_pixels) float16: continuum-normalised flux on the grid;
* ``continuum`` (n, n_continuum) float32: Turbospectrum's continuum flux
  (erg/s/cm^2/A at the stellar surface) every ``CONTINUUM_STRIDE`` pixels of the grid;
* ``atmosphere`` (n, 5) float32: teff, logg, [M/H] given to the interpolator, alpha variant,
  spherical flag; ``tio`` (n,) bool: TiO lines included.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from desi_abundances.io.atomic import atomic_write

LIBRARY_RESOLVING_POWER = 20_000.0
LIBRARY_WAVELENGTH_RANGE = (3550.0, 9900.0)
"""Vacuum Angstrom."""
CONTINUUM_STRIDE = 40
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def log_lambda_step(resolving_power: float = LIBRARY_RESOLVING_POWER) -> float:
    """ln(lambda) step of 2 pixels per resolution element."""
    return 1.0 / (2.0 * resolving_power)


def library_wavelength(resolving_power: float = LIBRARY_RESOLVING_POWER,
                       wavelength_range: tuple[float, float] = LIBRARY_WAVELENGTH_RANGE
                       ) -> np.ndarray:
    """The library's vacuum wavelength grid (Angstrom), uniform in ln(lambda)."""
    start, end = wavelength_range
    step = log_lambda_step(resolving_power)
    n = int(np.floor(np.log(end / start) / step)) + 1
    return start * np.exp(step * np.arange(n))


def continuum_wavelength(wavelength: np.ndarray) -> np.ndarray:
    """Wavelengths (A) where the continuum is stored: every CONTINUUM_STRIDE-th pixel + last."""
    index = np.unique(np.r_[np.arange(0, wavelength.size, CONTINUUM_STRIDE), wavelength.size - 1])
    return wavelength[index]


def gaussian_kernel(sigma_pixels: float) -> np.ndarray:
    """Normalised Gaussian kernel sampled out to 5 sigma."""
    half = max(int(np.ceil(5 * sigma_pixels)), 1)
    x = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (x / sigma_pixels) ** 2)
    return kernel / kernel.sum()


def degrade_to_grid(wavelength_vacuum: np.ndarray, flux: np.ndarray, grid: np.ndarray,
                    resolving_power: float) -> np.ndarray:
    """Convolve a spectrum to constant resolving power R and sample it on ``grid``.

    The input (vacuum A, increasing) is first interpolated onto a ln(lambda) grid 8 times
    finer than the resolution element, convolved with a Gaussian of FWHM lambda/R, then
    interpolated linearly onto ``grid``. Edges are padded with the edge values.
    """
    if wavelength_vacuum[0] > grid[0] or wavelength_vacuum[-1] < grid[-1]:
        raise ValueError(
            f"spectrum covers {wavelength_vacuum[0]:.2f}-{wavelength_vacuum[-1]:.2f} A, "
            f"grid needs {grid[0]:.2f}-{grid[-1]:.2f} A"
        )
    fine_step = 1.0 / (8.0 * resolving_power)
    ln_fine = np.arange(np.log(grid[0]) - 0.002, np.log(grid[-1]) + 0.002, fine_step)
    fine = np.interp(ln_fine, np.log(wavelength_vacuum), flux)
    sigma_pixels = (1.0 / resolving_power) * FWHM_TO_SIGMA / fine_step
    kernel = gaussian_kernel(sigma_pixels)
    half = kernel.size // 2
    padded = np.pad(fine, half, mode="edge")
    smooth = np.convolve(padded, kernel, mode="valid")
    return np.interp(np.log(grid), ln_fine, smooth)


def _atomic_savez(path: Path, arrays: dict) -> None:
    """``np.savez_compressed`` of ``arrays`` to ``path`` through ``io.atomic`` (fsync, rename)."""
    with atomic_write(path) as tmp, open(tmp, "wb") as stream:
        np.savez_compressed(stream, **arrays)


def write_star(path: Path, star_index: int, labels: np.ndarray, flux: np.ndarray,
               continuum: np.ndarray, atmosphere: np.ndarray, tio: bool) -> None:
    """Atomically write one finished star (an intermediate file of the driver)."""
    _atomic_savez(path, {
        "star_index": np.int64(star_index),
        "labels": np.asarray(labels, dtype=np.float32),
        "flux": np.asarray(flux, dtype=np.float16),
        "continuum": np.asarray(continuum, dtype=np.float32),
        "atmosphere": np.asarray(atmosphere, dtype=np.float32),
        "tio": np.bool_(tio),
    })


def write_chunk(path: Path, star_files: Sequence[Path], label_names: Sequence[str]) -> int:
    """Pack finished star files into one chunk; refuses to overwrite. Returns spectra written."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"chunk {path} exists: committed chunks are never rewritten")
    stars = [np.load(f) for f in star_files]
    arrays = {
        "star_index": np.array([int(s["star_index"]) for s in stars], dtype=np.int64),
        "label_names": np.array(list(label_names)),
        "labels": np.stack([s["labels"] for s in stars]),
        "flux": np.stack([s["flux"] for s in stars]),
        "continuum": np.stack([s["continuum"] for s in stars]),
        "atmosphere": np.stack([s["atmosphere"] for s in stars]),
        "tio": np.array([bool(s["tio"]) for s in stars]),
    }
    _atomic_savez(path, arrays)
    return len(stars)


def read_library(directory: Path) -> dict:
    """Every chunk of a library folder concatenated, plus its wavelength grid and provenance.

    Returns a dict with ``wavelength`` (vacuum A), ``flux`` (n, n_pix) float32, ``labels``
    (n, n_labels), ``label_names``, ``star_index``, ``continuum``, ``continuum_wavelength``,
    ``provenance`` (dict), ``chunks`` (file names read).
    """
    directory = Path(directory)
    provenance_path = directory / "provenance.json"
    if not provenance_path.exists():
        raise FileNotFoundError(f"no provenance.json in spectral library {directory}")
    provenance = json.loads(provenance_path.read_text())
    files = sorted((directory / "chunks").glob("chunk_*.npz"))
    if not files:
        raise FileNotFoundError(f"no chunk_*.npz in {directory / 'chunks'}")
    parts = [dict(np.load(f)) for f in files]
    names = [str(n) for n in parts[0]["label_names"]]
    for f, p in zip(files, parts):
        if [str(n) for n in p["label_names"]] != names:
            raise ValueError(f"{f}: label_names differ from {files[0].name}")
    grid = provenance["wavelength_grid"]
    wavelength = library_wavelength(grid["resolving_power"], tuple(grid["range_vacuum_angstrom"]))
    return {
        "wavelength": wavelength,
        "continuum_wavelength": continuum_wavelength(wavelength),
        "flux": np.concatenate([p["flux"] for p in parts]).astype(np.float32),
        "continuum": np.concatenate([p["continuum"] for p in parts]),
        "labels": np.concatenate([p["labels"] for p in parts]),
        "label_names": names,
        "star_index": np.concatenate([p["star_index"] for p in parts]),
        "tio": np.concatenate([p["tio"] for p in parts]),
        "provenance": provenance,
        "chunks": [f.name for f in files],
    }
