"""Project hooks: what a person sees of a run in MLflow.

kedro-mlflow starts the run (``conf/base/mlflow.yml``); this hook, called after it, names the
run after its pipelines and the parameters given on the command line, writes a description,
replaces kedro-mlflow's ``runner`` tag (an object repr) by the runner's class name and makes
sure the experiment opens on its runs in MLflow 3 (``mlflow.experimentKind``; new experiments
get the tag from ``mlflow.yml``, this covers ones made before it).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from desi_abundances.io.atomic import remove_stale_temporaries

logger = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""MLflow 3 opens an experiment of this kind on its runs table ("Model training"), not on
the GenAI traces dashboard."""

DESCRIPTION_TAG = "mlflow.note.content"
"""The tag MLflow's UI shows (and edits) as a run's description."""


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def pipeline_label(run_params: Mapping[str, Any]) -> str:
    """``training+evaluation`` (``pipeline_names`` joined by ``+``; ``__default__`` when
    none was given)."""
    names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")
                                                 or "__default__"]
    return "+".join([names] if isinstance(names, str) else list(names))


def run_name(run_params: Mapping[str, Any]) -> str:
    """The pipelines and the ``--params`` overrides: ``training+evaluation
    training.epochs=30``."""
    overrides = _flat(run_params.get("runtime_params") or {})
    changed = " ".join(f"{key}={value}" for key, value in sorted(overrides.items()))
    return f"{pipeline_label(run_params)} {changed}".strip()


def runner_name(runner: Any) -> str:
    """``SequentialRunner`` from a runner, its class or kedro's ``str(runner)`` repr."""
    text = getattr(runner, "__name__", None) or type(runner).__name__
    if isinstance(runner, str):
        match = re.search(r"([A-Za-z_][A-Za-z0-9_]*) object at 0x", runner)
        text = match.group(1) if match else runner.rsplit(".", 1)[-1]
    return text


def description(run_params: Mapping[str, Any]) -> str:
    """Markdown description of a run: what ran, in which environment, what was overridden."""
    overrides = _flat(run_params.get("runtime_params") or {})
    env = run_params.get("env") or "local (MOCK survey unless conf/local says otherwise)"
    lines = [
        f"`kedro run --pipelines={pipeline_label(run_params)}` of desi_abundances, "
        f"environment `{env}`.",
        "Headline metrics (network, test split): section `0_headline`; every method's "
        "metrics under `network/`, `ridge/`, `cannon/`; figures under artifacts `figures/`.",
    ]
    if overrides:
        lines.append("Parameters overridden: " + ", ".join(
            f"`{key}={value}`" for key, value in sorted(overrides.items())) + ".")
    return "\n\n".join(lines)


class MlflowRunPresentation:
    """Run name, description, clean tags and the experiment kind (see module docstring)."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run = mlflow.active_run()
        if run is None:  # tracking disabled for this pipeline (mock_survey) or no kedro-mlflow
            return
        client = mlflow.MlflowClient()
        experiment = client.get_experiment(run.info.experiment_id)
        if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                      EXPERIMENT_KIND)
        mlflow.set_tags({
            "mlflow.runName": run_name(run_params),
            DESCRIPTION_TAG: description(run_params),
            "runner": runner_name(run_params.get("runner")),
            "pipelines": pipeline_label(run_params),
        })


class StaleTemporaries:
    """Removes the temporary files that killed runs left (``io.atomic``) under data/."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        data = Path(run_params.get("project_path") or ".") / "data"
        if data.is_dir():
            remove_stale_temporaries(data, recursive=True)
