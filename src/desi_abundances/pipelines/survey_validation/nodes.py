"""Nodes of the survey-validation pipeline: thin glue around ``evaluation.survey`` and
``plots.survey_kiel``. Mock only: on a catalogue without the MOCK header, or without a truth
file, the nodes report that and score nothing."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from astropy.io import fits
from matplotlib.figure import Figure

from desi_abundances import plots
from desi_abundances.evaluation import metrics, survey
from desi_abundances.inference import InferenceSettings
from desi_abundances.io.fits_table import read_tables

logger = logging.getLogger(__name__)

SECTION_TITLE = "## Survey-wide validation"
"""Heading that starts this pipeline's section of metrics_summary.md (replaced on rerun)."""


def read_catalogue(path: str | Path) -> pd.DataFrame:
    """The VAC as a table with the per-coadd (lower-case) column names."""
    table = read_tables(path, 1)
    return table.rename(columns={c: c.lower() for c in table.columns if c != "TARGETID"})


def catalogue_is_mock(path: str | Path) -> bool:
    """The MOCK keyword of the VAC's primary header (False when absent or unreadable)."""
    try:
        return bool(fits.getheader(path, 0).get("MOCK", False))
    except OSError:
        return False


def score_survey(vac_summary: dict[str, Any], data_split: pd.DataFrame, labels: list[str],
                 inference: dict[str, Any], settings: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, dict], Figure, str]:
    """The VAC (``params:inference.vac_filepath``) against ``settings.truth_filepath``:
    survey_validation.json content, its MLflow metrics, the Kiel figure and the Markdown
    section. ``vac_summary`` only orders this node after the catalogue is written."""
    del vac_summary
    vac_path = InferenceSettings.from_params(inference).vac_filepath
    truth_path = Path(settings.get("truth_filepath", "data/01_raw/mock_truth.parquet"))
    if not catalogue_is_mock(vac_path) or not truth_path.is_file():
        logger.info("survey validation skipped: needs a MOCK catalogue and %s", truth_path)
        fig = Figure()
        fig.text(0.5, 0.5, "survey validation: mock only (no truth)", ha="center")
        return {"mock": False}, {}, fig, ""
    truth = pd.read_parquet(truth_path)
    table = survey.join_truth(read_catalogue(vac_path), truth, labels)
    train_ids = data_split.loc[data_split["split"] == "train", "TARGETID"]
    inside = survey.training_coverage(table, truth[truth["TARGETID"].isin(train_ids)])
    scores = survey.survey_metrics(table, labels, inside)
    goal = survey.goal_check(scores)
    content = {"mock": True, "n_spectra": int(len(table)),
               "inside_training_fraction": float(inside.mean()) if len(table) else 0.0,
               "goal": goal, "groups": scores}
    flat = survey.flat_survey_metrics(scores)
    flat["survey/goal/passing_cells"] = float(goal["passing"])
    flat["survey/goal/cells"] = float(goal["cells"])
    figure = plots.survey_kiel(table, is_mock=True)
    markdown = survey.summary_markdown(scores, labels, goal, len(table))
    logger.info("survey validation (MOCK): %d spectra, z goal %d of %d cells", len(table),
                goal["passing"], goal["cells"])
    return metrics.json_safe(content), metrics.mlflow_metrics_history(flat), figure, markdown


def summary_with_survey(summary: str, section: str) -> str:
    """metrics_summary.md with this pipeline's section replacing any earlier one."""
    head = summary.split(SECTION_TITLE)[0].rstrip("\n")
    return head + ("\n\n" + section if section else "") + "\n"
