"""Nodes of the evaluation pipeline: thin glue around ``evaluation`` (split, methods,
report, information limit) and ``plots``.

The spectra are split once (:func:`split_spectra`); every method (network, ridge, The
Cannon) is judged on the same test stars, from the same spectra (flux, ivar, mask), against
the same APOGEE labels. Timings are reported in ``metrics.json`` under ``meta``.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from desi_abundances import plots
from desi_abundances.evaluation import groups, information_limit, methods, metrics, report, split
from desi_abundances.evaluation.weak_labels import weak_labels
from desi_abundances.plots.tags import tag_figure
from desi_abundances.spectra import Spectra

METHODS = report.METHODS


def split_spectra(training_spectra: Spectra, data_split: pd.DataFrame
                  ) -> tuple[Spectra, Spectra, Spectra]:
    """training_spectra -> train, validation and test spectra (``data_split``)."""
    return split.split_spectra(training_spectra, data_split)


def evaluation_is_mock(test_spectra: Spectra, model_bundle: Any) -> bool:
    """True when the spectra (header MOCK) or the bundle (is_mock) come from the mock."""
    return methods.is_mock(test_spectra, model_bundle)


def predict_network(model_bundle: Any, test_spectra: Spectra, labels: list[str],
                    settings: dict[str, Any]) -> tuple[pd.DataFrame, float]:
    """Network labels of the test stars and the seconds it took."""
    batch_size = int(settings.get("network", {}).get("batch_size", 1024))
    return methods.network_predictions(model_bundle, test_spectra, labels, batch_size)


def predict_ridge(train_spectra: Spectra, validation_spectra: Spectra, test_spectra: Spectra,
                  model_bundle: Any, labels: list[str], settings: dict[str, Any]
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ridge peer: train fit, alpha on validation, test predictions and info."""
    return methods.ridge_predictions(train_spectra, validation_spectra, test_spectra, labels,
                                     settings.get("ridge", {}), model_bundle)


def predict_cannon(train_spectra: Spectra, test_spectra: Spectra, labels: list[str],
                   settings: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The Cannon peer: trained on the train split, test predictions and info."""
    return methods.cannon_predictions(train_spectra, test_spectra, labels,
                                      settings.get("cannon", {}),
                                      seed=int(settings.get("seed", 0)))


def assemble_test_predictions(test_spectra: Spectra, network: pd.DataFrame,
                              ridge: pd.DataFrame, cannon: pd.DataFrame, labels: list[str]
                              ) -> pd.DataFrame:
    """One row per test star with APOGEE's and every method's labels."""
    return report.assemble_test_predictions(
        test_spectra, {"network": network, "ridge": ridge, "cannon": cannon}, labels)


def compute_metrics(test_predictions: pd.DataFrame, labels: list[str], settings: dict[str, Any],
                    is_mock: bool, network_seconds: float, ridge_info: dict[str, Any],
                    cannon_info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict], str]:
    """metrics.json content, the MLflow metrics and the Markdown table of the methods."""
    content, flat, markdown = report.metrics_report(test_predictions, labels, settings, is_mock,
                                                    network_seconds, ridge_info, cannon_info)
    by_group = groups.table_group_metrics(test_predictions, labels, settings)
    content = groups.attach(content, by_group)
    flat.update(groups.flat_group_metrics(by_group))
    section = groups.markdown(by_group, list(labels))
    if section:
        markdown = markdown.rstrip("\n") + "\n\n" + section
    return content, metrics.mlflow_metrics_history(flat), markdown


def compute_information_limit(test_spectra: Spectra, test_predictions: pd.DataFrame,
                              labels: list[str], settings: dict[str, Any], is_mock: bool,
                              mock_survey: dict[str, Any] | None = None,
                              ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, dict], Figure]:
    """cramer_rao.json, per-star bounds, their MLflow metrics and the figure
    (``evaluation.information_limit.run``)."""
    content, bounds, flat = information_limit.run(test_spectra, test_predictions, labels,
                                                  settings, is_mock, mock_survey)
    weak = weak_labels(content, settings.get("weak_labels"))
    figure = tag_figure(plots.plot_information_limit(bounds, content, labels, is_mock, weak),
                        settings.get("data_name"))
    return content, bounds, (metrics.mlflow_metrics_history(flat) if flat else {}), figure


def summary_with_information_limit(summary: str, cramer_rao: dict[str, Any],
                                   labels: list[str]) -> str:
    """metrics_summary.md: the methods' table followed by the information-limit section."""
    return summary.rstrip("\n") + "\n\n" + information_limit.summary_markdown(cramer_rao, labels)


# --- figures -------------------------------------------------------------------------------
# Each figure marks the weak labels (evaluation.weak_labels, judged from cramer_rao.json).
def _weak(cramer_rao: dict[str, Any], settings: dict[str, Any]) -> dict[str, str]:
    return weak_labels(cramer_rao, settings.get("weak_labels"))


def plot_one_to_one(table: pd.DataFrame, labels: list[str], is_mock: bool,
                    cramer_rao: dict[str, Any], settings: dict[str, Any]) -> Figure:
    return tag_figure(plots.one_to_one(table, labels, "network", is_mock,
                                       _weak(cramer_rao, settings)), settings.get("data_name"))


def plot_residuals_vs_snr(table: pd.DataFrame, labels: list[str], settings: dict[str, Any],
                          is_mock: bool, cramer_rao: dict[str, Any]) -> Figure:
    return tag_figure(plots.residuals_vs_snr(table, labels, "network", settings.get("snr_bin_edges"),
                                             is_mock, _weak(cramer_rao, settings)),
                      settings.get("data_name"))


def plot_kiel(table: pd.DataFrame, is_mock: bool, settings: dict[str, Any] | None = None
              ) -> Figure:
    return tag_figure(plots.kiel_diagram(table, "network", is_mock),
                      (settings or {}).get("data_name"))


def plot_mg_fe_vs_fe_h(table: pd.DataFrame, is_mock: bool,
                       settings: dict[str, Any] | None = None) -> Figure:
    return tag_figure(plots.mg_fe_vs_fe_h(table, "network", is_mock),
                      (settings or {}).get("data_name"))


def plot_calibration(table: pd.DataFrame, labels: list[str], is_mock: bool,
                     cramer_rao: dict[str, Any], settings: dict[str, Any]) -> Figure:
    return tag_figure(plots.uncertainty_calibration(table, labels, METHODS, is_mock,
                                                    _weak(cramer_rao, settings)),
                      settings.get("data_name"))


def plot_method_comparison(metrics_report: dict[str, Any], labels: list[str],
                           is_mock: bool, cramer_rao: dict[str, Any],
                           settings: dict[str, Any]) -> Figure:
    return tag_figure(plots.method_comparison({m: metrics_report[m] for m in METHODS}, labels,
                                              is_mock, _weak(cramer_rao, settings)),
                      settings.get("data_name"))
