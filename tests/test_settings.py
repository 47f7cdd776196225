"""settings.CheckedConfigLoader: ``${project_root:}`` is the folder holding conf/, whatever the
working directory (the MLflow store of a notebook's kernel, run in notebooks/, is the project's)."""
from __future__ import annotations

from kedro_project import PROJECT

from desi_abundances.settings import CONFIG_LOADER_ARGS, CheckedConfigLoader


def test_project_root_resolves_to_the_folder_of_conf(tmp_path, monkeypatch):
    (tmp_path / "conf" / "base").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "base" / "parameters.yml").write_text("where: ${project_root:}/data\n")
    monkeypatch.chdir(tmp_path / "conf")  # not the project root
    loader = CheckedConfigLoader(str(tmp_path / "conf"), base_env="base", default_run_env="local")
    assert loader["parameters"]["where"] == f"{tmp_path.resolve()}/data"


def test_the_project_mlflow_store_is_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    # kedro-mlflow adds this pattern to a session's loader
    loader = CheckedConfigLoader(str(PROJECT / "conf"), config_patterns={"mlflow": ["mlflow*"]},
                                 **CONFIG_LOADER_ARGS)
    uri = loader["mlflow"]["server"]["mlflow_tracking_uri"]
    assert uri == f"sqlite:///{PROJECT.resolve()}/mlflow.db"
