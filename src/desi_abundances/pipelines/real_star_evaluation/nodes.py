"""Nodes of the real_star_evaluation pipeline (thin glue over ``evaluation.cross_validation``
and ``evaluation.transfer``; the strata and folds from ``nn.splits``)."""
from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from desi_abundances.evaluation import cross_validation, metrics, transfer
from desi_abundances.nn.splits import star_strata, stratified_folds
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)


def _strata(features: dict[str, Any]) -> dict[str, Any]:
    return dict(features.get("split", {}).get("strata", {}) or {})


def _groups(spectra: Spectra, crossmatch: pd.DataFrame, column: str) -> pd.Series:
    """The ``column`` (e.g. LIBRARY) of every training star, looked up by TARGETID."""
    lookup = crossmatch.drop_duplicates("TARGETID").set_index("TARGETID")[column]
    values = spectra.meta["TARGETID"].map(lookup)
    if values.isna().any():
        raise KeyError(f"{int(values.isna().sum())} training stars have no {column} in crossmatch")
    return values.astype(str)


def make_folds(training_spectra: Spectra, crossmatch: pd.DataFrame,
               features: dict[str, Any], params: dict[str, Any]) -> pd.DataFrame:
    """The k folds (TARGETID, fold, position), stratified as ``feature_engineering.split.strata``."""
    settings = params["cross_validation"]
    keys = star_strata(training_spectra.meta, _strata(features), crossmatch)
    folds = stratified_folds(training_spectra.meta["TARGETID"].to_numpy(), keys,
                             int(settings["folds"]), int(settings["seed"]))
    logger.info("cross-validation folds: %s", folds["fold"].value_counts().sort_index().to_dict())
    return folds


def cross_validate(training_spectra: Spectra, folds: pd.DataFrame, labels: list[str],
                   training: dict[str, Any], features: dict[str, Any],
                   evaluation: dict[str, Any], params: dict[str, Any]
                   ) -> tuple[pd.DataFrame, dict[str, Any], dict[str, dict], str]:
    """Out-of-fold predictions, real_star_cross_validation.json, its MLflow metrics and Markdown."""
    table, content = cross_validation.cross_validate(
        training_spectra, folds, labels, training, evaluation,
        validation_fraction=float(params["cross_validation"].get("validation_fraction", 0.15)),
        min_iqr=float(features.get("min_iqr", 1e-3)))
    content["data_name"] = evaluation.get("data_name")
    text = cross_validation.markdown(content, labels, evaluation.get("data_name", ""))
    flat = cross_validation.flat_cv_metrics(content)
    return table, content, metrics.mlflow_metrics_history(flat), text


def transfer_test(training_spectra: Spectra, crossmatch: pd.DataFrame, labels: list[str],
                  training: dict[str, Any], features: dict[str, Any], evaluation: dict[str, Any],
                  params: dict[str, Any], cross_validation_report: dict[str, Any]
                  ) -> tuple[pd.DataFrame, dict[str, Any], dict[str, dict], str]:
    """Train on one library, test on the other (both ways): predictions, real_star_transfer.json,
    its MLflow metrics and Markdown (with the cross-validation's OOD fraction beside)."""
    settings = params["transfer"]
    strata = _strata(features)
    keys = star_strata(training_spectra.meta, {"bins": strata.get("bins", {})})
    group = _groups(training_spectra, crossmatch, params.get("group_column", "LIBRARY"))
    table, content = transfer.transfer_test(
        training_spectra, group, keys, labels, training, evaluation,
        [tuple(d) for d in settings["directions"]],
        validation_fraction=float(settings.get("validation_fraction", 0.15)),
        seed=int(settings.get("seed", 0)), min_iqr=float(features.get("min_iqr", 1e-3)))
    content["data_name"] = evaluation.get("data_name")
    text = transfer.markdown(content, labels, evaluation.get("data_name", ""),
                             reference=cross_validation_report)
    return (table, content, metrics.mlflow_metrics_history(transfer.flat_transfer_metrics(content)),
            text)


def real_star_summary(cross_validation_text: str, transfer_text: str) -> str:
    """real_star_report.md: the cross-validation and the transfer sections."""
    return cross_validation_text.rstrip("\n") + "\n\n" + transfer_text


