"""Nodes of the real_star_sim_to_real pipeline (thin glue over ``evaluation.sim_to_real``)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from desi_abundances.evaluation import metrics, sim_to_real, split
from desi_abundances.spectra import Spectra


def sim_to_real_gap(mock_model_bundle: Any, training_spectra: Spectra, data_split: pd.DataFrame,
                    real_metrics: dict[str, Any], labels: list[str], evaluation: dict[str, Any]
                    ) -> tuple[pd.DataFrame, dict[str, Any], dict[str, dict], str]:
    """The bundle on the test split: predictions, sim_to_real.json, its MLflow metrics
    (``sim_to_real/<label>.<metric>``) and Markdown beside the REAL-trained network's
    robust std on the same stars (``real_metrics``: the evaluation's metrics.json)."""
    _, _, test = split.split_spectra(training_spectra, data_split)
    batch = int(evaluation.get("network", {}).get("batch_size", 1024))
    table = sim_to_real.apply_bundle(mock_model_bundle, test, labels, batch)
    content = sim_to_real.gap_report(table, labels, mock_model_bundle, evaluation)
    content["data_name"] = evaluation.get("data_name")
    text = sim_to_real.markdown(content, labels, evaluation.get("data_name", ""), real_metrics)
    return (table, content, metrics.mlflow_metrics_history(sim_to_real.flat_gap_metrics(content)),
            text)
