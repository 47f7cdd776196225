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
  network sees (``jacobians.lattice_projection``), at the star's reference (APOGEE) labels.
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

Modules: ``jacobians`` (J of the generating model, reached through
``spectral_models.registry``), ``information_bounds`` (bounds, S/N windows, ratios), this
one (the whole step and its report); the figure is ``plots.information_limit``.

Units: teff K, logg dex, abundances dex, vmic km/s; wavelengths vacuum Angstrom.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.evaluation import mlflow_names
from desi_abundances.evaluation.information_bounds import (
    MIN_STARS_INTERVAL,
    NO_INFORMATION,
    cramer_rao_bounds,
    information_ratios,
    mlflow_metrics,
    snr_windows,
)
from desi_abundances.evaluation.jacobians import (
    FOLLOW_MOCK_SURVEY,
    FluxJacobianProvider,
    build_jacobian_provider,
    evaluation_labels,
    finite_difference_steps,
    resolve_spectral_model,
)
from desi_abundances.evaluation.metrics import format_value, json_safe
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)


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
        settings: ``evaluation.cramer_rao`` (nuisance_labels, snr_windows, min_stars, min_stars_interval,
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
                                seed=int(settings.get("seed", 0)),
                                min_stars_interval=int(settings.get("min_stars_interval",
                                                                    MIN_STARS_INTERVAL)))
    report = {
        "status": "ok",
        "is_mock": bool(is_mock),
        "spectral_model": provider.name,
        "assumptions": ASSUMPTIONS,
        "n_test": int(len(test_predictions)),
        "n_bounded": int(np.isfinite(bounds[:, 0]).sum()),
        "fisher_labels": fisher_labels,
        "nuisance_labels": nuisance,
        "labels_without_information": [label for label in labels if ratios[label]["no_information"]],
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


def skipped(reason: str, is_mock: bool, labels: Sequence[str]
            ) -> tuple[dict[str, Any], pd.DataFrame]:
    """The report (``status: skipped`` and the reason) and the empty bounds table of a step
    that was not run (logged as a warning)."""
    logger.warning("information limit (Cramer-Rao bound) not computed: %s", reason)
    report = {"status": "skipped", "reason": reason, "is_mock": bool(is_mock)}
    table = pd.DataFrame({"TARGETID": pd.Series([], dtype=np.int64),
                          "snr": pd.Series([], dtype=np.float64)})
    for label in labels:
        table[f"{label}_crb"] = pd.Series([], dtype=np.float64)
    return report, table


def run(test: Spectra, test_predictions: pd.DataFrame, labels: Sequence[str],
        settings: Mapping[str, Any], is_mock: bool,
        mock_survey: Mapping[str, Any] | None = None
        ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, float]]:
    """The Cramer-Rao bound of the test stars and the network's scatter over it.

    The spectral model: ``settings['cramer_rao']['spectral_model']``; "mock_survey" = the
    one that generated the mock (``mock_survey``), the emulator on real spectra. Skipped
    (:func:`skipped`; no metrics) when disabled, when the spectra are real and the model is
    the analytic toy (it did not make them), or when the model cannot be built (e.g. no
    emulator weights) or does not cover the spectra's wavelengths.

    Args:
        test: the test split (preprocessed flux, ivar; meta with TARGETID, snr, labels).
        settings: ``evaluation`` (its ``cramer_rao`` block, ``seed``, ``snr_bin_edges``).

    Returns:
        report (cramer_rao.json content, strict JSON), per-star bounds (TARGETID, snr,
        ``<label>_crb``; inf = no information) and flat metrics (``network/crb_ratio/<label>.<range>``,
        ..., ``information_limit/seconds``; ``evaluation.mlflow_names``).
    """
    crb = dict(settings.get("cramer_rao") or {})
    crb.setdefault("seed", int(settings.get("seed", 0)))
    if not crb.get("enabled", False):
        return (*skipped("disabled (evaluation.cramer_rao.enabled)", is_mock, labels), {})
    model_name, model_args, mismatch = resolve_spectral_model(
        str(crb.get("spectral_model", FOLLOW_MOCK_SURVEY)), crb.get("spectral_model_args"),
        mock_survey, is_mock)
    if mismatch:
        logger.warning("information limit: %s", mismatch)
    if model_name == "analytic" and not is_mock:
        return (*skipped("real spectra: the analytic model is a toy that did not generate "
                         "them; set evaluation.cramer_rao.spectral_model: emulator", is_mock,
                         labels), {})
    start = time.perf_counter()
    try:
        provider = build_jacobian_provider(model_name, test.wavelength, model_args,
                                           steps=crb.get("finite_difference_steps"))
    except (FileNotFoundError, ValueError, KeyError, ImportError) as error:
        return (*skipped(f"spectral model {model_name!r} cannot be used: {error}", is_mock,
                         labels), {})
    bounded = test.select(subsample_rows(test.n_spectra, crb.get("max_stars"),
                                         int(settings.get("seed", 0))))
    report, table = information_limit(provider, bounded.meta, bounded.ivar, test_predictions,
                                      labels, crb, settings["snr_bin_edges"], is_mock)
    report["max_stars"] = crb.get("max_stars")
    report["spectral_model_args"] = model_args
    report["spectral_model_warning"] = mismatch
    report["seconds"] = time.perf_counter() - start
    flat = mlflow_metrics(report["labels"], report["windows"])
    flat[f"{mlflow_names.INFORMATION_LIMIT}/seconds"] = report["seconds"]
    logger.info("information limit: %d test stars bounded with the %s model in %.1f s; "
                "no information on %s", report["n_bounded"], model_name, report["seconds"],
                report["labels_without_information"] or "none")
    return json_safe(report), table, flat
