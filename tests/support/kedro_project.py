"""Run the project's pipelines through Kedro in a test: the project's own catalog and
parameters, every relative ``data/...`` path moved below a temporary root."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

PROJECT = Path(__file__).resolve().parents[2]


def load_project_config() -> OmegaConfigLoader:
    """The project's configuration (base + local), as ``kedro run`` reads it."""
    return OmegaConfigLoader(conf_source=str(PROJECT / "conf"), base_env="base",
                             default_run_env="local")


def redirect(value: Any, root: Path) -> Any:
    """A copy of a config value with every relative ``data/...`` path moved below ``root``."""
    if isinstance(value, dict):
        return {key: redirect(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [redirect(item, root) for item in value]
    if isinstance(value, str) and value.startswith("data/"):
        return str(root / value)
    return value


def catalog_below(loader: OmegaConfigLoader, pipeline: Pipeline, root: Path) -> DataCatalog:
    """The catalog entries ``pipeline`` uses, with their paths moved below ``root``."""
    used = pipeline.datasets()
    config = {name: redirect(dict(entry), root) for name, entry in loader["catalog"].items()
              if name in used}
    return DataCatalog.from_config(config)


def feed_params(catalog: DataCatalog, params: dict, prefix: str = "params:") -> None:
    """Add ``params:<key>`` (and nested ``params:<key>.<sub>``) entries, as KedroContext does."""
    for key, value in params.items():
        catalog[f"{prefix}{key}"] = value
        if isinstance(value, dict):
            feed_params(catalog, value, f"{prefix}{key}.")
