"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from desi_abundances.hooks import MlflowRunPresentation, StaleTemporaries


class UnknownEnvironmentError(ValueError):
    """``--env`` names a configuration environment that has no folder under conf/."""


class CheckedConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader that refuses an ``--env`` with no folder (Kedro 1.7 would
    silently run on base alone, and the first error would come from elsewhere, e.g. MLflow),
    and resolves ``${project_root:}`` to the folder holding ``conf/`` (absolute), so that a
    path in the configuration does not depend on the working directory (a notebook's kernel
    runs in notebooks/: ``sqlite:///mlflow.db`` would open a second store there)."""

    def __init__(self, conf_source: str | Path, env: str | None = None, *args: Any,
                 **kwargs: Any) -> None:
        root = Path(str(conf_source))
        default = kwargs.get("default_run_env")
        if env and env != default and root.is_dir() and not (root / env).is_dir():
            known = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "base")
            raise UnknownEnvironmentError(
                f"configuration environment {env!r} does not exist: no folder {root / env} "
                f"(environments here: {known})"
            )
        super().__init__(conf_source, env, *args, **kwargs)
        # registered as Kedro registers ``globals``: the newest loader's value (OmegaConf
        # resolvers are process-wide)
        project_root = str(root.resolve().parent)
        OmegaConf.register_new_resolver("project_root", lambda: project_root, replace=True)


HOOKS = (StaleTemporaries(), MlflowRunPresentation())


CONFIG_LOADER_CLASS = CheckedConfigLoader

# Instantiated project hooks.
# For example, after creating a hooks.py and defining a ProjectHooks class there, do
# Hooks are executed in a Last-In-First-Out (LIFO) order.

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # an environment (e.g. --env=dr1) overrides single parameters, not whole pipeline keys
    "merge_strategy": {"parameters": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
