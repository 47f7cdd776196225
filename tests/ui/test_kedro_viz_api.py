"""kedro-viz, as a person would open it: `kedro viz run` on 127.0.0.1 (a free port) over a
temporary copy of the project, asked through its HTTP API whether every pipeline and layer
is there, in pipeline order, and a figure previews as an image. Seconds; the server is
stopped at the end."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from ui_servers import PROJECT, get_json, running

EXPECTED_LAYERS = ["01_raw", "02_intermediate", "03_primary", "04_feature", "05_model_input",
                   "06_models", "07_model_output", "08_reporting"]


@pytest.fixture(scope="module")
def viz(tmp_path_factory):
    """Base URL of a kedro-viz server on a copy of the project with one figure written."""
    root = tmp_path_factory.mktemp("viz_project")
    shutil.copytree(PROJECT / "conf", root / "conf")
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(PROJECT / "src", root / "src",  # kedro wants <project>/src, not a link
                    ignore=shutil.ignore_patterns("__pycache__"))
    figures = root / "data" / "08_reporting" / "figures"
    figures.mkdir(parents=True)
    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [0, 1])
    figure.savefig(figures / "one_to_one.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root / "src"), os.environ.get("PYTHONPATH", "")]),
        "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro = str(Path(sys.executable).parent / "kedro")
    command = [kedro, "viz", "run", "--host", "127.0.0.1", "--port", "{port}", "--no-browser"]
    with running(command, root, env, ready_path="/api/main", timeout=120) as base:
        yield base


def test_every_pipeline_and_layer_in_order(viz):
    main = get_json(f"{viz}/api/main")
    pipeline_ids = {p["id"] for p in main["pipelines"]}
    for name in ("__default__", "mock_survey", "data_ingestion", "crossmatch",
                 "feature_engineering", "training", "evaluation", "inference"):
        assert name in pipeline_ids, name
    assert main["layers"] == EXPECTED_LAYERS
    data_nodes = [n for n in main["nodes"] if n["type"] == "data"]
    assert data_nodes and all(n.get("layer") for n in data_nodes), \
        [n["name"] for n in data_nodes if not n.get("layer")]
    for pipeline in pipeline_ids:
        assert get_json(f"{viz}/api/pipelines/{pipeline}")["nodes"], pipeline


def test_inference_view_has_raw_above_models(viz):
    layers = get_json(f"{viz}/api/pipelines/inference")["layers"]
    assert layers.index("01_raw") < layers.index("06_models") < layers.index("07_model_output")


def test_figure_previews_as_an_image(viz):
    main = get_json(f"{viz}/api/main")
    node = next(n for n in main["nodes"] if n["name"] == "evaluation_one_to_one_figure")
    metadata = get_json(f"{viz}/api/nodes/{node['id']}")
    assert metadata["preview_type"] == "ImagePreview"
    assert len(metadata["preview"]) > 100  # base64 PNG
    catalogue = next(n for n in main["nodes"] if n["name"] == "desi_abundances_vac")
    assert catalogue["layer"] == "07_model_output"
