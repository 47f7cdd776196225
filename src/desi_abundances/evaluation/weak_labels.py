"""Labels the spectra barely inform: which ones the figures mark "weak", and why.

Judged from the information-limit report (``cramer_rao.json``) in one centred S/N window
(``window``, e.g. ``snr_50``): a label is weak when

* the model does not respond to it ("no information"), or
* its median Cramer-Rao bound is at least ``bound_over_spread`` x the spread (robust std) of
  APOGEE's labels in the window: even a perfect method cannot tell the stars apart, or
* the network's robust scatter is at least ``scatter_over_spread`` x that spread: the network
  returns (close to) the population, not what the spectrum says,

or when it is listed in ``always``. Without a report (information limit skipped) only
``always`` counts.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {"window": "snr_50", "bound_over_spread": 1.0,
                            "scatter_over_spread": 0.8, "always": []}
"""Used for any key ``evaluation.weak_labels`` leaves out."""


def _reason(values: Mapping[str, Any], bound_limit: float, scatter_limit: float) -> str | None:
    spread = values.get("apogee_label_robust_std")
    if values.get("status") == "no information":
        return "no information in the spectra"
    if not spread:
        return None
    bound, scatter = values.get("median_crb"), values.get("network_robust_std")
    if bound is not None and bound >= bound_limit * spread:
        return f"bound {bound / spread:.2f} x APOGEE spread"
    if scatter is not None and scatter >= scatter_limit * spread:
        return f"scatter {scatter / spread:.2f} x APOGEE spread"
    return None


def weak_labels(report: Mapping[str, Any] | None, settings: Mapping[str, Any] | None = None
                ) -> dict[str, str]:
    """``{label: reason}`` of the weak labels (see the module docstring), in report order.

    Args:
        report: ``cramer_rao.json`` content (``status``, ``labels``) or None.
        settings: ``evaluation.weak_labels`` (window, bound_over_spread,
            scatter_over_spread, always).
    """
    config = {**DEFAULTS, **dict(settings or {})}
    out: dict[str, str] = {}
    if report and report.get("status") == "ok":
        for label, entry in report.get("labels", {}).items():
            if entry.get("no_information"):
                out[label] = "no information in the spectra"
                continue
            values = entry.get("by_snr", {}).get(config["window"])
            reason = _reason(values or {}, float(config["bound_over_spread"]),
                             float(config["scatter_over_spread"]))
            if reason:
                out[label] = reason
    for label in config["always"] or []:
        out.setdefault(str(label), "listed in evaluation.weak_labels.always")
    return out
