"""Run Turbospectrum v20 (babsma_lu then bsyn_lu) for one star and read its output.

Turbospectrum synthesises on the wavelength scale of its line lists: the linemake (MOOG) and
Gaia-ESO lists are in AIR Angstrom, so its output wavelengths are air (converted to vacuum in
``library.py``). 1D LTE, flux (not intensity), no rotation or macroturbulence.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SynthesisError(RuntimeError):
    """Turbospectrum failed or produced an unreadable spectrum."""


@dataclass(frozen=True)
class SynthesisSettings:
    """Wavelength range (air Angstrom) and step of the raw synthesis."""

    lambda_min: float = 3535.0
    lambda_max: float = 9915.0
    lambda_step: float = 0.05


def _abundance_lines(abundances: Mapping[int, float]) -> list[str]:
    lines = [f"'INDIVIDUAL ABUNDANCES:'  '{len(abundances)}'"]
    lines += [f"{z:3d} {a:8.3f}" for z, a in sorted(abundances.items())]
    return lines


def _composition_lines(metallicity: float, alpha_fe: float,
                       abundances: Mapping[int, float]) -> list[str]:
    return [
        f"'METALLICITY:'  '{metallicity:8.3f}'",
        f"'ALPHA/Fe   :'  '{alpha_fe:8.3f}'",
        "'HELIUM     :'  '    0.00'",
        "'R-PROCESS  :'  '    0.00'",
        "'S-PROCESS  :'  '    0.00'",
        *_abundance_lines(abundances),
    ]


def babsma_input(model: str, opacity_file: str, settings: SynthesisSettings,
                 metallicity: float, alpha_fe: float, abundances: Mapping[int, float],
                 vmic_kms: float) -> str:
    """babsma_lu standard input (continuous opacities) for an interpolated MARCS model.

    ``metallicity`` and ``alpha_fe`` (dex) scale the elements not set in ``abundances``
    ({atomic number: A(X)}); ``vmic_kms`` is the fixed microturbulence (km/s).
    """
    lines = [
        f"'LAMBDA_MIN:'  '{settings.lambda_min:.3f}'",
        f"'LAMBDA_MAX:'  '{settings.lambda_max:.3f}'",
        f"'LAMBDA_STEP:' '{settings.lambda_step:.3f}'",
        f"'MODELINPUT:' '{model}'",
        "'MARCS-FILE:' '.false.'",
        f"'MODELOPAC:' '{opacity_file}'",
        *_composition_lines(metallicity, alpha_fe, abundances),
        "'XIFIX:' 'T'",
        f"{vmic_kms:.3f}",
    ]
    return "\n".join(lines) + "\n"


def bsyn_input(opacity_file: str, result_file: str, settings: SynthesisSettings,
               metallicity: float, alpha_fe: float, abundances: Mapping[int, float],
               linelists: Sequence[str], spherical: bool) -> str:
    """bsyn_lu standard input (LTE flux spectrum) for the given line lists."""
    lines = [
        "'NLTE :'          '.false.'",
        f"'LAMBDA_MIN:'     '{settings.lambda_min:.3f}'",
        f"'LAMBDA_MAX:'     '{settings.lambda_max:.3f}'",
        f"'LAMBDA_STEP:'    '{settings.lambda_step:.3f}'",
        "'INTENSITY/FLUX:' 'Flux'",
        "'ABFIND:' '.false.'",
        f"'MODELOPAC:' '{opacity_file}'",
        f"'RESULTFILE :' '{result_file}'",
        *_composition_lines(metallicity, alpha_fe, abundances),
        "'ISOTOPES : ' '0'",
        f"'NFILES   :' '{len(linelists)}'",
        *linelists,
        f"'SPHERICAL:'  '{'T' if spherical else 'F'}'",
        "  30",
        "  300.00",
        "  15",
        "  1.30",
    ]
    return "\n".join(lines) + "\n"


def prepare_workdir(workdir: Path, data_dir: Path) -> Path:
    """Create a run folder with the ``DATA`` link Turbospectrum expects."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / "DATA"
    if not link.exists():
        os.symlink(Path(data_dir).resolve(), link)
    return workdir


def run_program(binary: Path, stdin: str, workdir: Path, timeout_s: float, log: Path) -> None:
    """Run one Turbospectrum program, keeping its output in ``log``; raise on failure."""
    with open(log, "a") as handle:
        result = subprocess.run([str(binary)], input=stdin, text=True, stdout=handle,
                                stderr=subprocess.STDOUT, cwd=workdir, timeout=timeout_s)
    if result.returncode != 0:
        tail = Path(log).read_text()[-800:]
        raise SynthesisError(f"{Path(binary).name} exited {result.returncode}: {tail}")


def read_bsyn_spectrum(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read bsyn's result: (air wavelength A, normalised flux, absolute flux erg/s/cm2/A)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        raise SynthesisError(f"no spectrum written at {path}")
    data = np.loadtxt(path)
    if data.ndim != 2 or data.shape[1] < 3:
        raise SynthesisError(f"{path}: expected 3 columns, got shape {data.shape}")
    wavelength, normalised, absolute = data[:, 0], data[:, 1], data[:, 2]
    if not (np.all(np.isfinite(normalised)) and np.all(np.isfinite(absolute))):
        raise SynthesisError(f"{path}: non-finite flux")
    return wavelength, normalised, absolute
