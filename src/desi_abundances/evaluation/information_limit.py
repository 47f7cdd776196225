"""The information limit of the survey's spectra: the Cramer-Rao bound (CRB) on every label of
each test star, and the network's scatter in units of that bound, per label and S/N bin.

What the bound is (read before quoting a number):

* It is the smallest 1-sigma uncertainty any unbiased estimator can reach from ONE spectrum,
  sqrt((F^-1)_ii) with the Fisher matrix F = J^T diag(ivar) J (``cramer_rao``), marginalised
  over every other label in F (the network's labels plus nuisance labels such as
  microturbulence, which the network is not told).
* J = d(normalised flux) / d(labels) of the model that GENERATED the spectra (for the mock
  survey: ``mock_survey.spectral_model``, the analytic model by default), taken through the
  instrument's line-spread function and resampling onto the rest-frame brz lattice the
  network sees (``mock.instrument.lsf_matrix``), at the star's reference (APOGEE) labels.
  ivar is the star's preprocessed inverse variance (0 at masked pixels).
* Assumed: that model is exact, the noise is Gaussian with that ivar, and the continuum
  normalisation and the Doppler shift are KNOWN (not fitted). The pipeline instead divides by
  a 20 A running pseudo-continuum, which removes part of the information in features broader
  than ~50 A (Balmer wings, molecular band depressions); sky-subtraction residuals are not
  in ivar. Both make the real limit looser than this bound, mostly for Teff and log g.
* A label the model does not respond to (a zero Jacobian column, e.g. [P/Fe] in the analytic
  model, which has no P lines) has an infinite bound: it is reported as "no information",
  never as a number. A network can still "predict" such a label from its correlations with
  the others in the training population; its scatter then says nothing about the spectrum.

Two providers of J (:class:`FluxJacobianProvider`):

* :class:`AnalyticJacobianProvider`: central finite differences (float64 arithmetic, steps in
  label units, e.g. 10 K, 0.01 dex) of the numpy analytic model, all perturbed copies of a
  star in one model call (its line windows are shared by a call, so + and - steps see the
  same windows);
* :class:`EmulatorJacobianProvider`: torch forward-mode autograd of the Payne-style
  emulator (``cramer_rao.model_jacobian``) at labels clipped to its training range.

Units: teff K, logg dex, abundances dex, vmic km/s; wavelengths vacuum Angstrom.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from desi_abundances.constants import label_unit
from desi_abundances.cramer_rao import cramer_rao_from_fisher, fisher_matrix, project_jacobian
from desi_abundances.metrics import format_value, robust_std

NO_INFORMATION = "no information"
"""Status of a label whose bound is infinite (the spectrum does not respond to it)."""

DEFAULT_STEPS: dict[str, float] = {"teff": 10.0, "vmic": 0.02, "default": 0.01}
"""Central finite-difference half steps: K for teff, km/s for vmic, dex otherwise."""

CORE_LABELS = ("teff", "logg", "fe_h")
"""Labels without which a star's Jacobian is not evaluated (its bounds are NaN)."""


# --- where the Jacobian is evaluated ---------------------------------------------------
class _NoScatter:
    """Stands in for a numpy Generator whose normal draws are all at the mean, so a
    population relation with scatter returns its mean relation."""

    @staticmethod
    def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> np.ndarray:
        return np.broadcast_to(np.asarray(loc, dtype=float), size if size is not None else ()
                               ).astype(float)


def population_microturbulence(teff: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """vmic (km/s) of the mock population's mean relation (``mock.population``) at the
    given Teff (K) and log g (dex)."""
    from desi_abundances.mock.population import microturbulence

    return microturbulence(np.asarray(teff, float), np.asarray(logg, float), _NoScatter())


def evaluation_labels(reference: pd.DataFrame, model_labels: Sequence[str]) -> pd.DataFrame:
    """The labels at which each star's Jacobian is evaluated: its reference (APOGEE) labels.

    Labels the model needs but the table lacks get the population's value: vmic from the
    mock population's mean relation vmic(Teff, log g); a missing [X/Fe] (column absent or
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
        fill = population_microturbulence(frame["teff"].to_numpy(), frame["logg"].to_numpy())
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
    from desi_abundances.mock.instrument import lsf_matrix

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
    """Finite-difference Jacobian of ``mock.spectral_model.AnalyticSpectralModel``."""

    model: Any
    wavelength: np.ndarray
    steps: Mapping[str, float] | None = None
    stars_per_call: int = 8
    name: str = "analytic"

    def __post_init__(self) -> None:
        from desi_abundances.mock.population import STELLAR_LABELS

        self.model_labels = tuple(STELLAR_LABELS)  # teff, logg, fe_h, vmic, every [X/Fe]
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
        from desi_abundances.cramer_rao import model_jacobian

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
    """The Jacobian provider of a registered spectral model on the data pixels ``wavelength``.

    Raises:
        ValueError: unknown model, or a model grid that does not cover ``wavelength``.
        FileNotFoundError: emulator weights missing.
    """
    from desi_abundances.mock.spectral_model import build_spectral_model

    model = build_spectral_model(spectral_model, **dict(spectral_model_args or {}))
    if spectral_model == "analytic":
        return AnalyticJacobianProvider(model, np.asarray(wavelength, float), steps=steps)
    if spectral_model == "emulator":
        return EmulatorJacobianProvider(model, np.asarray(wavelength, float))
    raise ValueError(f"no Jacobian provider for spectral model {spectral_model!r} "
                     "(known: analytic, emulator)")


# --- bounds --------------------------------------------------------------------------------
def cramer_rao_bounds(provider: FluxJacobianProvider, labels: pd.DataFrame, ivar: np.ndarray,
                      fisher_labels: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Marginalised CRB (n_stars, len(fisher_labels)), label units; inf where the spectrum
    carries no information on a label; NaN for stars whose labels are incomplete.

    Args:
        labels: evaluation labels (:func:`evaluation_labels`), one row per star.
        ivar: (n_stars, n_pixels) inverse variance of the normalised flux on the provider's
            pixels, 0 at masked pixels.
        fisher_labels: the labels in the Fisher matrix (marginalised over one another).
    """
    ivar = np.asarray(ivar, dtype=np.float64)
    if ivar.shape != (len(labels), provider.wavelength.size):
        raise ValueError(f"ivar {ivar.shape} does not match {len(labels)} stars x "
                         f"{provider.wavelength.size} pixels")
    bounds = np.full((len(labels), len(fisher_labels)), np.nan)
    usable = np.flatnonzero(complete_rows(labels))
    for start in range(0, usable.size, batch_size):
        rows = usable[start : start + batch_size]
        jac = provider.jacobian(labels.iloc[rows], fisher_labels)
        marginal, _ = cramer_rao_from_fisher(fisher_matrix(jac, ivar[rows]))
        bounds[rows] = marginal
    return bounds


# --- S/N windows and ratios ----------------------------------------------------------------
def _edge_text(value: float) -> str:
    return f"{value:g}".replace(".", "p")


def snr_windows(bin_edges: Sequence[float], windows: Mapping[str, Sequence[float]] | None = None
                ) -> list[dict[str, Any]]:
    """The S/N ranges to report: each bin of ``bin_edges`` (named ``snr_<lo>_<hi>``, the
    last open one ``snr_<lo>_up`` when its edge is >= 1e5) and the named centred
    ``windows`` ({name: [lo, hi]}). A range holds lo <= snr < hi."""
    out = []
    edges = [float(e) for e in bin_edges]
    for lo, hi in zip(edges[:-1], edges[1:]):
        upper = "up" if hi >= 1e5 else _edge_text(hi)
        out.append({"name": f"snr_{_edge_text(lo)}_{upper}", "snr_min": lo, "snr_max": hi,
                    "kind": "bin"})
    for name, (lo, hi) in (windows or {}).items():
        if not float(lo) < float(hi):
            raise ValueError(f"evaluation.cramer_rao.snr_windows.{name}: {lo} >= {hi}")
        out.append({"name": str(name), "snr_min": float(lo), "snr_max": float(hi),
                    "kind": "window"})
    return out


def median_with_inf(values: np.ndarray) -> float:
    """Median of values that may hold +inf (np.median warns on inf - inf); NaN if empty."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if ordered.size == 0:
        return math.nan
    lo, hi = ordered[(ordered.size - 1) // 2], ordered[ordered.size // 2]
    return float(lo if lo == hi else 0.5 * (lo + hi))


def bootstrap_robust_std(values: np.ndarray, rng: np.random.Generator, n_resamples: int = 200
                         ) -> tuple[float, float]:
    """16th and 84th percentiles of the robust std over bootstrap resamples of ``values``:
    the 68% interval of a scatter measured on few stars."""
    if values.size < 2 or n_resamples < 2:
        return math.nan, math.nan
    draws = values[rng.integers(0, values.size, (n_resamples, values.size))]
    medians = np.median(draws, axis=1, keepdims=True)
    scatter = 1.4826 * np.median(np.abs(draws - medians), axis=1)
    low, high = np.percentile(scatter, [16.0, 84.0])
    return float(low), float(high)


def window_ratio(residual: np.ndarray, reference_error: np.ndarray, bound: np.ndarray,
                 min_stars: int, reference_value: np.ndarray | None = None,
                 rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Network scatter over the median bound in one S/N range.

    Args:
        residual: network - APOGEE of the stars in the range (NaN = not predicted).
        reference_error: APOGEE's quoted errors of those stars.
        bound: their CRBs (NaN = not computed, inf = no information).
        reference_value: APOGEE's labels of those stars: their robust spread is the scatter
            of a method that always answers the population's median. A scatter BELOW the
            bound is possible only for a biased method that leans on the training
            population (the bound holds for unbiased estimators): when that scatter is close
            to this spread, the network is returning the prior, not reading the spectrum.
        rng: for the bootstrap interval of the ratio (seeded; default seed 0).

    Returns:
        n_scatter, network_robust_std (1.4826 MAD), apogee_error_rms, network_scatter_net_of_apogee
        (sqrt(max(robust_std^2 - apogee_rms^2, 0))), apogee_label_robust_std, n_bound,
        median_crb, ratio, ratio_68 (bootstrap 16-84th percentiles of the ratio, from the
        scatter's resampling), ratio_net_of_apogee and status: "ok", "no information" or
        "too few stars".
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    if reference_value is None:
        reference_value = np.full(len(residual), np.nan)
    finite = np.isfinite(residual)
    scatter = robust_std(residual[finite]) if finite.sum() >= min_stars else math.nan
    known_reference = reference_value[np.isfinite(reference_value)]
    spread = robust_std(known_reference) if known_reference.size >= min_stars else math.nan
    errors = reference_error[finite & np.isfinite(reference_error)]
    apogee_rms = float(np.sqrt(np.mean(errors**2))) if errors.size else math.nan
    net = (math.sqrt(max(scatter**2 - apogee_rms**2, 0.0))
           if np.isfinite(scatter) and np.isfinite(apogee_rms) else math.nan)
    known = bound[~np.isnan(bound)]
    median_bound = median_with_inf(known) if known.size >= min_stars else math.nan
    if known.size >= min_stars and np.isinf(median_bound):
        status = NO_INFORMATION
    elif np.isfinite(scatter) and np.isfinite(median_bound):
        status = "ok"
    else:
        status = "too few stars"
    ok = status == "ok"
    interval = (bootstrap_robust_std(residual[finite], rng) if ok else (math.nan, math.nan))
    return {
        "n_scatter": int(finite.sum()),
        "network_robust_std": scatter,
        "apogee_error_rms": apogee_rms,
        "network_scatter_net_of_apogee": net,
        "apogee_label_robust_std": spread,
        "n_bound": int(known.size),
        "median_crb": median_bound if np.isfinite(median_bound) else None,
        "ratio": scatter / median_bound if ok else math.nan,
        "ratio_68": [interval[0] / median_bound, interval[1] / median_bound] if ok else None,
        "ratio_net_of_apogee": net / median_bound if ok else math.nan,
        "status": status,
    }


def information_ratios(test_predictions: pd.DataFrame, bounds: pd.DataFrame,
                       labels: Sequence[str], windows: Sequence[Mapping[str, Any]],
                       min_stars: int = 10, method: str = "network", seed: int = 0
                       ) -> dict[str, Any]:
    """Per label and S/N range: the method's robust scatter against APOGEE (all test stars
    in the range it predicts) over the median CRB (the stars with a bound in the range).

    Args:
        test_predictions: the evaluation's table (TARGETID, snr, apogee_<label>,
            apogee_<label>_err, <method>_<label>).
        bounds: TARGETID, snr and ``<label>_crb`` per bounded star.

    Returns:
        {label: {"unit", "no_information" (bool: infinite bound for most stars everywhere),
        "by_snr": {window name: :func:`window_ratio`}}}.
    """
    rng = np.random.default_rng(seed)
    snr = test_predictions["snr"].to_numpy(np.float64)
    bound_snr = bounds["snr"].to_numpy(np.float64)
    out: dict[str, Any] = {}
    for label in labels:
        reference = test_predictions[f"apogee_{label}"].to_numpy(np.float64)
        residual = test_predictions[f"{method}_{label}"].to_numpy(np.float64) - reference
        error_column = f"apogee_{label}_err"
        error = (test_predictions[error_column].to_numpy(np.float64)
                 if error_column in test_predictions else np.full(len(residual), np.nan))
        bound = bounds[f"{label}_crb"].to_numpy(np.float64)
        by_snr = {}
        for window in windows:
            inside = (snr >= window["snr_min"]) & (snr < window["snr_max"])
            bound_inside = (bound_snr >= window["snr_min"]) & (bound_snr < window["snr_max"])
            by_snr[window["name"]] = window_ratio(residual[inside], error[inside],
                                                  bound[bound_inside], min_stars,
                                                  reference_value=reference[inside], rng=rng)
        known = bound[~np.isnan(bound)]
        out[label] = {
            "unit": label_unit(label),
            "no_information": bool(known.size and np.isinf(median_with_inf(known))),
            "by_snr": by_snr,
        }
    return out


def mlflow_metrics(ratios: Mapping[str, Any], windows: Sequence[Mapping[str, Any]]
                   ) -> dict[str, float]:
    """Flat finite metrics (few enough for MLflow's one-call-per-metric logging):
    ``crb_ratio.<label>.<range>`` for every S/N bin and window, and
    ``crb_ratio_net_of_apogee.<label>.<window>`` and ``crb_median.<label>.<window>`` for the
    centred windows. Ranges without a ratio (no information, too few stars) are left out."""
    centred = {w["name"] for w in windows if w["kind"] == "window"}
    flat: dict[str, float] = {}
    for label, entry in ratios.items():
        for window, values in entry["by_snr"].items():
            if values["status"] != "ok":
                continue
            keys = [("ratio", "crb_ratio")]
            if window in centred:
                keys += [("ratio_net_of_apogee", "crb_ratio_net_of_apogee"),
                         ("median_crb", "crb_median")]
            for key, name in keys:
                value = values[key]
                if value is not None and np.isfinite(value):
                    flat[f"{name}.{label}.{window}"] = float(value)
    return flat


# --- report --------------------------------------------------------------------------------
ASSUMPTIONS = (
    "Cramer-Rao bound from the generating spectral model's Jacobian (through DESI's LSF and "
    "resampling onto the rest-frame brz lattice) at the APOGEE labels and the star's "
    "preprocessed ivar, marginalised over every label in the Fisher matrix. Assumes the model "
    "is exact and the noise Gaussian; the continuum normalisation and the Doppler shift are "
    "treated as known (the pipeline's 20 A running continuum removes part of the information "
    "in broad features), so real methods cannot reach it and ratios near 1 are not expected."
)


def _ratio_text(values: Mapping[str, Any]) -> str:
    """'3.5 (2.9-4.1)': the ratio and its bootstrap 68% interval."""
    interval = values.get("ratio_68")
    if interval is None or any(v is None for v in interval):
        return format_value(values.get("ratio"))
    return f"{format_value(values['ratio'], 2)} ({format_value(interval[0], 2)}-{format_value(interval[1], 2)})"


def range_text(window: Mapping[str, Any]) -> str:
    """'15-25', or '80+' for an open last bin."""
    if window["snr_max"] >= 1e5:
        return f"{window['snr_min']:g}+"
    return f"{window['snr_min']:g}-{window['snr_max']:g}"


def summary_markdown(report: Mapping[str, Any], labels: Sequence[str]) -> str:
    """A Markdown section for metrics_summary.md: per label, in the centred S/N windows, the
    network's scatter, the reference labels' spread, the median bound and the ratios; then
    the ratio per S/N bin. "MOCK" in the heading when the data are mock."""
    mock = " (MOCK DATA)" if report.get("is_mock") else ""
    lines = [f"## Information limit: network scatter / Cramer-Rao bound{mock}", ""]
    if report.get("status") != "ok":
        lines += [f"Not computed: {report.get('reason', report.get('status'))}.", ""]
        return "\n".join(lines)
    lines += [
        f"Spectral model `{report['spectral_model']}`; {report['n_bounded']} of "
        f"{report['n_test']} test stars bounded; also marginalised over: "
        f"{', '.join(report['nuisance_labels']) or 'nothing else'}. " + ASSUMPTIONS,
        "",
        *([f"**Warning**: {report['spectral_model_warning']}.", ""]
          if report.get("spectral_model_warning") else []),
        "scatter = network robust std against APOGEE; spread = robust std of the APOGEE "
        "labels themselves (the scatter of always answering the median); bound = median CRB; "
        "ratio = scatter / bound (in brackets: bootstrap 68% interval of the scatter); net = "
        "the same with APOGEE's quoted errors removed in quadrature. A ratio below 1 is "
        "possible only for a biased estimator leaning on the "
        "training population (scatter close to spread: the prior, not the spectrum). "
        f"\"{NO_INFORMATION}\": the model does not respond to the label (infinite bound).",
        "",
    ]
    windows = [w for w in report["windows"] if w["kind"] == "window"]
    bins = [w for w in report["windows"] if w["kind"] == "bin"]
    if windows:
        columns = ("n", "scatter", "spread", "bound", "ratio", "net")
        lines += ["| label | unit |" + "".join(
            f" S/N {range_text(w)} {c} |" for w in windows for c in columns),
            "|---|---|" + "---|" * (len(columns) * len(windows))]
        for label in labels:
            entry = report["labels"][label]
            row = f"| {label} | {entry['unit']} |"
            for w in windows:
                v = entry["by_snr"][w["name"]]
                info = v["status"] == NO_INFORMATION
                row += (f" {v['n_scatter']} | {format_value(v['network_robust_std'])} | "
                        f"{format_value(v['apogee_label_robust_std'])} | "
                        f"{'inf' if info else format_value(v['median_crb'])} | "
                        f"{NO_INFORMATION if info else _ratio_text(v)} | "
                        f"{'-' if info else format_value(v['ratio_net_of_apogee'])} |")
            lines.append(row)
        lines.append("")
    if bins:
        counts = ", ".join(
            f"{range_text(b)}: {report['labels'][labels[0]]['by_snr'][b['name']]['n_scatter']}"
            for b in bins) if labels else ""
        lines += [f"Ratio per S/N bin (test stars with {labels[0] if labels else '-'}: "
                  f"{counts}):", "",
                  "| label |" + "".join(f" S/N {range_text(b)} |" for b in bins),
                  "|---|" + "---|" * len(bins)]
        for label in labels:
            entry = report["labels"][label]
            cells = [NO_INFORMATION if entry["by_snr"][b["name"]]["status"] == NO_INFORMATION
                     else format_value(entry["by_snr"][b["name"]]["ratio"]) for b in bins]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_information_limit(bounds: pd.DataFrame, report: Mapping[str, Any],
                           labels: Sequence[str], is_mock: bool) -> Figure:
    """Per label: each star's bound vs S/N (grey), the median bound per S/N bin (black) and
    the network's robust scatter per bin (blue; orange: APOGEE's errors removed) and the
    APOGEE labels' own spread (dotted: the scatter of answering the median), log axes."""
    from desi_abundances.plots import log_snr_axis, pretty_label

    n = max(len(labels), 1)
    n_cols = min(6, max(1, math.ceil(math.sqrt(n))))
    n_rows = math.ceil(n / n_cols)
    fig = Figure(figsize=(2.7 * n_cols, 2.4 * n_rows + 0.8))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    title = "Network scatter vs the Cramer-Rao bound"
    fig.suptitle(f"MOCK data - {title}" if is_mock else title, fontsize=11)
    if report.get("status") != "ok":
        axes[0].text(0.5, 0.5, f"not computed:\n{report.get('reason', '')}", ha="center",
                     va="center", wrap=True, transform=axes[0].transAxes, fontsize=8)
        axes[0].set_axis_off()
        return fig
    bins = [w for w in report["windows"] if w["kind"] == "bin"]
    snr = bounds["snr"].to_numpy(np.float64)
    for ax, label in zip(axes, labels):
        entry = report["labels"][label]
        ax.set_title(pretty_label(label), fontsize=9)
        ax.set_xscale("log")
        crb = bounds[f"{label}_crb"].to_numpy(np.float64)
        if entry["no_information"]:
            ax.text(0.5, 0.5, "no information\n(model does not\nrespond to it)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        good = np.isfinite(crb) & (crb > 0)
        ax.set_yscale("log")
        ax.scatter(snr[good], crb[good], s=3, c="0.6", lw=0, label="bound (star)")
        centres, medians, scatter, net, spread = [], [], [], [], []
        for b in bins:
            v = entry["by_snr"][b["name"]]
            inside = good & (snr >= b["snr_min"]) & (snr < b["snr_max"])
            if not inside.any():
                continue
            centres.append(float(np.median(snr[inside])))
            medians.append(v["median_crb"] if v["median_crb"] is not None else np.nan)
            scatter.append(v["network_robust_std"])
            net.append(v["network_scatter_net_of_apogee"])
            spread.append(v["apogee_label_robust_std"])
        ax.plot(centres, spread, ":", c="0.3", lw=1, label="APOGEE label spread")
        ax.plot(centres, medians, "k-", lw=1.2, label="median bound")
        ax.plot(centres, scatter, "o-", c="C0", ms=3, lw=1, label="network scatter")
        ax.plot(centres, net, "s--", c="C1", ms=3, lw=1, label="net of APOGEE")
        log_snr_axis(ax, (10, 20, 50, 100))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_xlabel("S/N per pixel", fontsize=7)
    for ax in axes[:n]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
            break
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


# --- the whole step ------------------------------------------------------------------------
def subsample_rows(n: int, max_stars: int | None, seed: int) -> np.ndarray:
    """All row indices, or a seeded random ``max_stars`` of them (sorted)."""
    if not max_stars or n <= int(max_stars):
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(max_stars), replace=False))


def information_limit(provider: FluxJacobianProvider, reference: pd.DataFrame,
                      ivar: np.ndarray, test_predictions: pd.DataFrame, labels: Sequence[str],
                      settings: Mapping[str, Any], snr_bin_edges: Sequence[float],
                      is_mock: bool) -> tuple[dict[str, Any], pd.DataFrame]:
    """Bounds of the test stars and the ratio report.

    Args:
        provider: the generating model's Jacobian on the data pixels.
        reference: one row per bounded star: TARGETID, snr and the reference labels.
        ivar: (n_stars, n_pixels) their preprocessed inverse variances.
        test_predictions: the evaluation table (every test star).
        settings: ``evaluation.cramer_rao`` (nuisance_labels, snr_windows, min_stars,
            batch_size) and ``seed`` (bootstrap intervals).

    Returns:
        (report, bounds table: TARGETID, snr, ``<label>_crb`` (inf = no information)).
    """
    start = time.perf_counter()
    nuisance = [n for n in settings.get("nuisance_labels", ["vmic"])
                if n in provider.model_labels and n not in labels]
    fisher_labels = list(labels) + nuisance
    model_labels = list(dict.fromkeys(list(provider.model_labels) + list(labels)))
    at = evaluation_labels(reference, model_labels)
    bounds = cramer_rao_bounds(provider, at, ivar, fisher_labels,
                               batch_size=int(settings.get("batch_size", 64)))
    table = pd.DataFrame({"TARGETID": reference["TARGETID"].to_numpy(),
                          "snr": reference["snr"].to_numpy(np.float64)})
    for k, label in enumerate(labels):
        table[f"{label}_crb"] = bounds[:, k]
    windows = snr_windows(snr_bin_edges, settings.get("snr_windows"))
    ratios = information_ratios(test_predictions, table, labels, windows,
                                min_stars=int(settings.get("min_stars", 10)),
                                seed=int(settings.get("seed", 0)))
    report = {
        "status": "ok",
        "is_mock": bool(is_mock),
        "spectral_model": provider.name,
        "assumptions": ASSUMPTIONS,
        "n_test": int(len(test_predictions)),
        "n_bounded": int(np.isfinite(bounds[:, 0]).sum()),
        "fisher_labels": fisher_labels,
        "nuisance_labels": nuisance,
        "labels_without_information": [l for l in labels if ratios[l]["no_information"]],
        "finite_difference_steps": (
            dict(zip(provider.model_labels, finite_difference_steps(
                provider.model_labels, settings.get("finite_difference_steps")).tolist()))
            if provider.name == "analytic" else None),
        "windows": windows,
        "labels": ratios,
        "seconds": time.perf_counter() - start,
        "layout": "labels -> label -> by_snr -> window -> {n_scatter, network_robust_std, "
                  "apogee_error_rms, network_scatter_net_of_apogee, apogee_label_robust_std, "
                  "n_bound, median_crb, ratio, ratio_68, ratio_net_of_apogee, status}",
    }
    return report, table
