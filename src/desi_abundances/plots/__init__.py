"""Every figure of the project: science modules return numbers, these draw them.
matplotlib only (no pyplot, no Kedro, no file I/O); each function returns a Figure.

``evaluation``: the test-set figures of the methods; ``calibration``: uncertainty
calibration and the method comparison; ``information_limit``: the Cramer-Rao
figure; ``survey``: the survey-wide validation figure (MOCK); ``axes``: shared axis helpers.
"""
from desi_abundances.plots.axes import label_name, log_snr_axis, mark_weak, pretty_label
from desi_abundances.plots.calibration import method_comparison, uncertainty_calibration
from desi_abundances.plots.evaluation import (
    METHOD_COLOURS,
    METHOD_LABELS,
    REFERENCE,
    kiel_diagram,
    mg_fe_vs_fe_h,
    one_to_one,
    residuals_vs_snr,
)
from desi_abundances.plots.information_limit import plot_information_limit
from desi_abundances.plots.survey import survey_kiel

__all__ = [
    "METHOD_COLOURS", "METHOD_LABELS", "REFERENCE", "kiel_diagram", "label_name",
    "log_snr_axis", "mark_weak",
    "method_comparison", "mg_fe_vs_fe_h", "one_to_one", "plot_information_limit",
    "pretty_label", "residuals_vs_snr", "survey_kiel", "uncertainty_calibration",
]
