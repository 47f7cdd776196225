"""The Jacobian d(normalised flux on the data pixels) / d(labels) of the spectral model that
generated the spectra, at each star's reference labels: the input of the Cramer-Rao bound
(``information_limit``).

Two providers (:class:`FluxJacobianProvider`), chosen by :func:`build_jacobian_provider`:

* :class:`AnalyticJacobianProvider`: central finite differences (float64 arithmetic, steps in
  label units, e.g. 10 K, 0.01 dex) of a numpy model, all perturbed copies of a star in one
  model call (the analytic model's line windows are shared by a call, so + and - steps see
  the same windows);
* :class:`EmulatorJacobianProvider`: torch forward-mode autograd of the Payne-style
  emulator (``cramer_rao.model_jacobian``) at labels clipped to its training range.

Both go through DESI's line-spread function and resampling onto the rest-frame brz lattice
(:func:`lattice_projection`). Units: teff K, logg dex, abundances dex, vmic km/s; wavelengths
vacuum Angstrom.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from desi_abundances import spectral_models
from desi_abundances.desi.instrument import lsf_matrix
from desi_abundances.evaluation.cramer_rao import model_jacobian, project_jacobian
from desi_abundances.stellar.labels import STELLAR_LABELS, mean_microturbulence

DEFAULT_STEPS: dict[str, float] = {"teff": 10.0, "vmic": 0.02, "default": 0.01}
"""Central finite-difference half steps: K for teff, km/s for vmic, dex otherwise."""

CORE_LABELS = ("teff", "logg", "fe_h")
"""Labels without which a star's Jacobian is not evaluated (its bounds are NaN)."""


# --- where the Jacobian is evaluated ---------------------------------------------------
def evaluation_labels(reference: pd.DataFrame, model_labels: Sequence[str]) -> pd.DataFrame:
    """The labels at which each star's Jacobian is evaluated: its reference (APOGEE) labels.

    Labels the model needs but the table lacks get the population's value: vmic from the
    population's mean relation vmic(Teff, log g) (``stellar.labels.mean_microturbulence``); a missing [X/Fe] (column absent or
    NaN for a star) the median of the other stars (0 dex when none has it). Rows lacking
    teff, logg or fe_h keep NaN there and get NaN bounds.
    """
    frame = pd.DataFrame(index=reference.index)
    for label in model_labels:
        if label in reference.columns:
            frame[label] = reference[label].to_numpy(np.float64)
        else:
            frame[label] = np.nan
    if "vmic" in frame and frame["vmic"].isna().any():
        fill = mean_microturbulence(frame["teff"].to_numpy(), frame["logg"].to_numpy())
        frame["vmic"] = frame["vmic"].fillna(pd.Series(fill, index=frame.index))
    for label in model_labels:
        if label in CORE_LABELS or label == "vmic":
            continue
        column = frame[label]
        if column.isna().any():
            median = float(np.nanmedian(column)) if column.notna().any() else 0.0
            frame[label] = column.fillna(median)
    return frame


def complete_rows(frame: pd.DataFrame) -> np.ndarray:
    """True for rows whose every label is finite (the Jacobian can be evaluated)."""
    return np.all(np.isfinite(frame.to_numpy(np.float64)), axis=1)


# --- Jacobians -----------------------------------------------------------------------------
def finite_difference_steps(names: Sequence[str], steps: Mapping[str, float] | None = None
                            ) -> np.ndarray:
    """Half step per label (``steps[label]``, else ``steps['default']``), label units."""
    merged = {**DEFAULT_STEPS, **(steps or {})}
    values = np.array([float(merged.get(name, merged["default"])) for name in names])
    if np.any(values <= 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"finite-difference steps must be positive, got {dict(zip(names, values))}")
    return values


def finite_difference_jacobian(flux: Callable[[pd.DataFrame], np.ndarray],
                               labels: pd.DataFrame, names: Sequence[str],
                               steps: np.ndarray) -> np.ndarray:
    """Central differences (f(x + h e_j) - f(x - h e_j)) / 2h of a numpy spectral model.

    Args:
        flux: labels frame (n, columns) -> (n, n_model_pixels) normalised flux.
        labels: (n_stars, ...) frame with every column ``flux`` reads.
        names: the columns to differentiate by; steps: (len(names),) half steps h.

    Returns:
        (n_stars, n_model_pixels, len(names)) float64. All 2 x len(names) perturbed copies of
        every star go through ONE call of ``flux``, in float64 differences.
    """
    n_stars, n_names = len(labels), len(names)
    base = labels.reset_index(drop=True)
    copies = base.loc[np.repeat(np.arange(n_stars), 2 * n_names)].reset_index(drop=True)
    sign = np.tile(np.repeat([1.0, -1.0], n_names), n_stars)
    which = np.tile(np.tile(np.arange(n_names), 2), n_stars)
    for j, name in enumerate(names):
        rows = which == j
        copies.loc[rows, name] = copies.loc[rows, name].to_numpy(np.float64) + sign[rows] * steps[j]
    values = np.asarray(flux(copies), dtype=np.float64)
    values = values.reshape(n_stars, 2, n_names, -1)
    derivative = (values[:, 0] - values[:, 1]) / (2.0 * steps[None, :, None])
    return np.ascontiguousarray(derivative.transpose(0, 2, 1))


class FluxJacobianProvider(Protocol):
    """d(normalised flux on the data pixels) / d(labels) of a spectral model.

    Attributes:
        name: the spectral model's registry name.
        model_labels: the labels the model reads (python names), in its order.
        wavelength: (n_pixels,) the data pixels (rest-frame vacuum Angstrom).
    """

    name: str
    model_labels: tuple[str, ...]
    wavelength: np.ndarray

    def jacobian(self, labels: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        """(n_stars, n_pixels, len(names)) float64; a name the model does not read gets a
        zero column. ``labels`` holds every label in ``model_labels``."""
        ...


def lattice_projection(model_wavelength: np.ndarray, model_resolving_power: float,
                       wavelength: np.ndarray):
    """Sparse (n_pixels, n_model) float64 matrix: DESI's LSF (minus the model's own
    resolution) and resampling onto ``wavelength``, as the mock survey applies it. The
    rest-frame lattice is used directly (the Doppler shift is treated as known; DESI's
    resolving power changes by < 0.2% over a 500 km/s shift)."""
    return lsf_matrix(model_wavelength, wavelength, model_resolving_power).astype(np.float64)


def _columns_of(names: Sequence[str], model_labels: Sequence[str]) -> list[int | None]:
    return [list(model_labels).index(n) if n in model_labels else None for n in names]


def _place(jacobian: np.ndarray, columns: list[int | None]) -> np.ndarray:
    """Columns of a Jacobian over the model's labels, in the order of ``names`` (zeros for
    labels the model does not read)."""
    out = np.zeros(jacobian.shape[:2] + (len(columns),), dtype=np.float64)
    for k, column in enumerate(columns):
        if column is not None:
            out[:, :, k] = jacobian[:, :, column]
    return out


@dataclass
class AnalyticJacobianProvider:
    """Finite-difference Jacobian of a numpy spectral model (``normalised_flux``), e.g.
    ``spectral_models.analytic.AnalyticSpectralModel``; it reads ``stellar.STELLAR_LABELS``
    unless the model lists its own ``label_names``."""

    model: Any
    wavelength: np.ndarray
    steps: Mapping[str, float] | None = None
    stars_per_call: int = 8
    name: str = "analytic"

    def __post_init__(self) -> None:
        # teff, logg, fe_h, vmic, every [X/Fe]
        self.model_labels = tuple(getattr(self.model, "label_names", STELLAR_LABELS))
        self.projection = lattice_projection(self.model.wavelength, self.model.resolving_power,
                                             self.wavelength)

    def jacobian(self, labels: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        read = [n for n in names if n in self.model_labels]
        steps = finite_difference_steps(read, self.steps)
        parts = []
        for start in range(0, len(labels), self.stars_per_call):
            chunk = labels.iloc[start : start + self.stars_per_call]
            model_jac = finite_difference_jacobian(self.model.normalised_flux, chunk, read, steps)
            parts.append(project_jacobian(model_jac, self.projection))
        jac = np.concatenate(parts) if parts else np.zeros((0, self.wavelength.size, len(read)))
        return _place(jac, _columns_of(names, read))


@dataclass
class EmulatorJacobianProvider:
    """Autograd Jacobian of ``emulator.EmulatorSpectralModel`` (labels clipped to its range,
    as the mock clips them).

    Caveat: an emulator trained on a few hundred spectra has derivatives that are only as
    good as its fit. For labels with few or no lines (P, S, Cu at DESI's resolution) it can
    respond spuriously (through label correlations in its training set), which makes the
    bound finite and too optimistic; the analytic model gives exactly zero columns there."""

    model: Any
    wavelength: np.ndarray
    stars_per_call: int = 64
    name: str = "emulator"

    def __post_init__(self) -> None:
        self.model_labels = tuple(self.model.label_names)
        self.projection = lattice_projection(self.model.wavelength, self.model.resolving_power,
                                             self.wavelength)

    def jacobian(self, labels: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        inputs = self.model.label_array(labels)  # clipped to the training range
        parts = []
        for start in range(0, inputs.shape[0], self.stars_per_call):
            model_jac = model_jacobian(self.model.flux_torch, inputs[start : start + self.stars_per_call])
            parts.append(project_jacobian(model_jac.numpy(), self.projection))
        jac = (np.concatenate(parts) if parts
               else np.zeros((0, self.wavelength.size, len(self.model_labels))))
        return _place(jac, _columns_of(names, self.model_labels))


FOLLOW_MOCK_SURVEY = "mock_survey"
"""``evaluation.cramer_rao.spectral_model`` value: use the model that made the mock survey."""


def resolve_spectral_model(setting: str, setting_args: Mapping[str, Any] | None,
                           mock_survey: Mapping[str, Any] | None, is_mock: bool
                           ) -> tuple[str, dict[str, Any], str | None]:
    """(model name, model args, warning or None) for the bound.

    ``setting`` "mock_survey": on mock data the model that generated it
    (``mock_survey.spectral_model`` and ``spectral_model_args``); on real data the emulator
    (the physical model). An explicit "analytic" / "emulator" is used as given; on mock data
    that differs from the generating model a warning says the bound is not the mock's own.
    """
    generating = (str((mock_survey or {}).get("spectral_model", "analytic")),
                  dict((mock_survey or {}).get("spectral_model_args") or {}))
    if setting == FOLLOW_MOCK_SURVEY:
        if is_mock:
            return generating[0], generating[1], None
        return "emulator", dict(setting_args or {}), None
    warning = None
    if is_mock and mock_survey is not None and setting != generating[0]:
        warning = (f"evaluation.cramer_rao.spectral_model is {setting!r} but the mock survey "
                   f"was generated with {generating[0]!r}: this bound is not the limit of "
                   "these spectra")
    return setting, dict(setting_args or {}), warning


def build_jacobian_provider(spectral_model: str, wavelength: np.ndarray,
                            spectral_model_args: Mapping[str, Any] | None = None,
                            steps: Mapping[str, float] | None = None) -> FluxJacobianProvider:
    """The Jacobian provider of a registered spectral model (``spectral_models.registry``)
    on the data pixels ``wavelength``: autograd for a differentiable model (one with
    ``flux_torch``, the emulator), central finite differences otherwise (the analytic model).

    Raises:
        ValueError: unknown model, or a model grid that does not cover ``wavelength``.
        FileNotFoundError: emulator weights missing.
    """
    model = spectral_models.build(spectral_model, **dict(spectral_model_args or {}))
    wavelength = np.asarray(wavelength, float)
    if hasattr(model, "flux_torch"):
        return EmulatorJacobianProvider(model, wavelength, name=spectral_model)
    return AnalyticJacobianProvider(model, wavelength, steps=steps, name=spectral_model)
