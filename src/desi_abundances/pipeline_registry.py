"""Project pipelines."""
from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The science chain that `kedro run` (and `make run`) executes once the raw files exist.
# The mock survey is excluded: `make run` builds it only when absent, and a real release
# (selected with --env) has no mock to build. survey_validation scores the catalogue
# against the mock truth and does nothing on a real release (no MOCK header, no truth).
DEFAULT_CHAIN = (
    "data_ingestion",
    "crossmatch",
    "feature_engineering",
    "training",
    "evaluation",
    "inference",
    "survey_validation",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        ``{name: Pipeline}`` for every pipeline package under ``pipelines/`` plus
        ``__default__``, the chain from data_ingestion to inference (those present).
    """
    pipelines = find_pipelines(raise_errors=True)
    chain = [pipelines[name] for name in DEFAULT_CHAIN if name in pipelines]
    pipelines["__default__"] = sum(chain, Pipeline([]))
    return pipelines
