"""The spectra containers: :class:`ArmSpectra`, :class:`CoaddSpectra`, :class:`Spectra`.

* :class:`CoaddSpectra`: what one DESI coadd file holds: per-arm (B, R, Z) arrays on the
  instrument's wavelength grids, the FIBERMAP (one row per spectrum) and header keywords.
  The mock survey writes it, the coadd reader returns it, data_ingestion stacks it.
* :class:`Spectra`: spectra on one common wavelength grid (after merging the arms), with a
  boolean bad-pixel mask and a row-matched metadata table; what feature engineering produces.

Conventions: wavelength in vacuum Angstrom; flux in 1e-17 erg/s/cm^2/Angstrom (or
dimensionless once continuum-normalised); ivar is the inverse variance of flux, 0 where there
is no information; DESI ``mask`` arrays are int32 bitmasks (0 = good), ``Spectra.mask`` is a
boolean array (True = unusable pixel), as in numpy.ma and astropy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd


class SpectraShapeError(ValueError):
    """Arrays of a spectra container disagree in shape."""


def _check_2d(name: str, array: np.ndarray, n_spectra: int, n_pixels: int) -> None:
    if array.shape != (n_spectra, n_pixels):
        raise SpectraShapeError(
            f"{name} has shape {array.shape}, expected ({n_spectra}, {n_pixels})"
        )


@dataclass
class ArmSpectra:
    """One spectrograph arm of many spectra.

    Attributes:
        wavelength: (n_pixels,) float64, vacuum Angstrom.
        flux: (n_spectra, n_pixels) float32, 1e-17 erg/s/cm^2/Angstrom.
        ivar: (n_spectra, n_pixels) float32, inverse variance of flux; 0 = no data.
        mask: (n_spectra, n_pixels) int32 DESI bitmask; 0 = good.
        resolution: optional (n_spectra, n_diagonals, n_pixels) float32 band-diagonal
            resolution matrix, as in DESI coadds.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    resolution: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.wavelength.ndim != 1:
            raise SpectraShapeError(f"wavelength must be 1-D, got shape {self.wavelength.shape}")
        if self.flux.ndim != 2:
            raise SpectraShapeError(f"flux must be 2-D, got shape {self.flux.shape}")
        n_spectra, n_pixels = self.flux.shape
        if n_pixels != self.wavelength.size:
            raise SpectraShapeError(
                f"flux has {n_pixels} pixels but wavelength has {self.wavelength.size}"
            )
        _check_2d("ivar", self.ivar, n_spectra, n_pixels)
        _check_2d("mask", self.mask, n_spectra, n_pixels)
        if self.resolution is not None and (
            self.resolution.ndim != 3
            or self.resolution.shape[0] != n_spectra
            or self.resolution.shape[2] != n_pixels
        ):
            raise SpectraShapeError(
                f"resolution has shape {self.resolution.shape}, "
                f"expected ({n_spectra}, n_diagonals, {n_pixels})"
            )

    @property
    def n_spectra(self) -> int:
        return self.flux.shape[0]

    def select(self, rows: np.ndarray | Sequence[int]) -> ArmSpectra:
        """The spectra at ``rows`` (integer indices or a boolean mask)."""
        return ArmSpectra(
            wavelength=self.wavelength,
            flux=self.flux[rows],
            ivar=self.ivar[rows],
            mask=self.mask[rows],
            resolution=None if self.resolution is None else self.resolution[rows],
        )


@dataclass
class CoaddSpectra:
    """The content of one DESI coadd file (or a stack of several).

    Attributes:
        arms: ``{"B": ArmSpectra, "R": ..., "Z": ...}``, all with the same number of spectra.
        fibermap: one row per spectrum (TARGETID, TARGET_RA, TARGET_DEC, REF_ID, ...).
        header: primary-header keywords (SPECPROD, SURVEY, PROGRAM, HPXPIXEL, MOCK, ...).
        scores: optional SCORES table, row-matched to ``fibermap``.
        exp_fibermap: optional EXP_FIBERMAP table (one row per exposure, not row-matched).
    """

    arms: dict[str, ArmSpectra]
    fibermap: pd.DataFrame
    header: dict[str, Any] = field(default_factory=dict)
    scores: pd.DataFrame | None = None
    exp_fibermap: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        n_rows = len(self.fibermap)
        for arm, data in self.arms.items():
            if data.n_spectra != n_rows:
                raise SpectraShapeError(
                    f"arm {arm} holds {data.n_spectra} spectra but FIBERMAP has {n_rows} rows"
                )
        if self.scores is not None and len(self.scores) != n_rows:
            raise SpectraShapeError(
                f"SCORES has {len(self.scores)} rows but FIBERMAP has {n_rows}"
            )

    @property
    def n_spectra(self) -> int:
        return len(self.fibermap)

    @property
    def is_mock(self) -> bool:
        """True when the file says it was made by the mock survey (header MOCK = True)."""
        return bool(self.header.get("MOCK", False))

    def select(self, rows: np.ndarray | Sequence[int]) -> CoaddSpectra:
        """The spectra at ``rows`` (integer indices or a boolean mask), tables re-indexed."""
        rows = np.asarray(rows)
        return CoaddSpectra(
            arms={arm: data.select(rows) for arm, data in self.arms.items()},
            fibermap=self.fibermap.iloc[rows].reset_index(drop=True)
            if rows.dtype != bool
            else self.fibermap[rows].reset_index(drop=True),
            header=dict(self.header),
            scores=None
            if self.scores is None
            else (self.scores.iloc[rows] if rows.dtype != bool else self.scores[rows]).reset_index(
                drop=True
            ),
            exp_fibermap=self.exp_fibermap,
        )

    @staticmethod
    def concatenate(parts: Sequence[CoaddSpectra]) -> CoaddSpectra:
        """Stack several coadds (same arms and grids) into one; EXP_FIBERMAP is dropped.

        Raises:
            SpectraShapeError: when the parts have different arms or wavelength grids.
        """
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        for part in parts[1:]:
            if part.arms.keys() != first.arms.keys():
                raise SpectraShapeError(
                    f"arms differ: {sorted(part.arms)} vs {sorted(first.arms)}"
                )
            for arm in first.arms:
                if not np.array_equal(part.arms[arm].wavelength, first.arms[arm].wavelength):
                    raise SpectraShapeError(f"arm {arm} wavelength grids differ")
        arms = {}
        for arm, ref in first.arms.items():
            has_resolution = all(p.arms[arm].resolution is not None for p in parts)
            arms[arm] = ArmSpectra(
                wavelength=ref.wavelength,
                flux=np.concatenate([p.arms[arm].flux for p in parts]),
                ivar=np.concatenate([p.arms[arm].ivar for p in parts]),
                mask=np.concatenate([p.arms[arm].mask for p in parts]),
                resolution=np.concatenate([p.arms[arm].resolution for p in parts])
                if has_resolution
                else None,
            )
        scores = (
            pd.concat([p.scores for p in parts], ignore_index=True)
            if all(p.scores is not None for p in parts)
            else None
        )
        return CoaddSpectra(
            arms=arms,
            fibermap=pd.concat([p.fibermap for p in parts], ignore_index=True),
            header=dict(first.header),
            scores=scores,
        )


@dataclass
class Spectra:
    """Spectra on one common wavelength grid.

    Attributes:
        wavelength: (n_pixels,) float64, Angstrom (rest frame once shifted).
        flux: (n_spectra, n_pixels) float32.
        ivar: (n_spectra, n_pixels) float32; 0 wherever ``mask`` is True.
        mask: (n_spectra, n_pixels) bool; True = unusable pixel.
        meta: row-matched table; carries at least TARGETID.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray
    meta: pd.DataFrame

    def __post_init__(self) -> None:
        n_spectra, n_pixels = len(self.meta), self.wavelength.size
        _check_2d("flux", self.flux, n_spectra, n_pixels)
        _check_2d("ivar", self.ivar, n_spectra, n_pixels)
        _check_2d("mask", self.mask, n_spectra, n_pixels)
        if self.mask.dtype != bool:
            raise SpectraShapeError(f"mask must be boolean, got {self.mask.dtype}")

    @property
    def n_spectra(self) -> int:
        return len(self.meta)

    def select(self, rows: np.ndarray | Sequence[int]) -> Spectra:
        """The spectra at ``rows`` (integer indices or a boolean mask)."""
        rows = np.asarray(rows)
        meta = self.meta[rows] if rows.dtype == bool else self.meta.iloc[rows]
        return Spectra(
            wavelength=self.wavelength,
            flux=self.flux[rows],
            ivar=self.ivar[rows],
            mask=self.mask[rows],
            meta=meta.reset_index(drop=True),
        )


def good_pixels(flux: np.ndarray, ivar: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean array, True where a pixel is usable: finite flux, ivar > 0, no mask bit set."""
    return np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0) & (mask == 0)

