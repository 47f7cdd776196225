"""The MLflow run presentation hook: name, description, runner tag, experiment kind."""
import mlflow

from desi_abundances import hooks

PARAMS = {"pipeline_names": ["training", "evaluation"], "env": None,
          "runtime_params": {"training": {"optimisation": {"max_epochs": 30}}},
          "runner": "<kedro.runner.sequential_runner.SequentialRunner object at 0x7f3d>"}


def test_run_name_and_runner():
    assert hooks.run_name(PARAMS) == "training+evaluation training.optimisation.max_epochs=30"
    assert hooks.run_name({"pipeline_names": None}) == "__default__"
    assert hooks.runner_name(PARAMS["runner"]) == "SequentialRunner"
    assert hooks.runner_name("ParallelRunner") == "ParallelRunner"
    assert "max_epochs=30" in hooks.description(PARAMS)


def test_hook_tags_run_and_experiment(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        experiment = mlflow.create_experiment("hook", artifact_location=tmp_path.as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            hooks.MlflowRunPresentation().before_pipeline_run(PARAMS)
        client = mlflow.MlflowClient()
        tags = client.get_run(run.info.run_id).data.tags
        assert tags["mlflow.runName"].startswith("training+evaluation")
        assert tags["runner"] == "SequentialRunner"
        assert "max_epochs=30" in tags[hooks.DESCRIPTION_TAG]
        kind = client.get_experiment(experiment).tags[hooks.EXPERIMENT_KIND_TAG]
        assert kind == hooks.EXPERIMENT_KIND
    finally:
        mlflow.set_tracking_uri(None)
