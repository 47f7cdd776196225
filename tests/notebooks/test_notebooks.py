"""The notebooks (notebooks/*.ipynb) run top to bottom on a tiny mock survey built here, in a
temporary Kedro project (the project's conf, the survey's data/), read their inputs through
the catalog, and are committed without outputs."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from kedro_project import PROJECT
from tiny_chain import as_kedro_project

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 120  # per cell


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_halo_chemistry.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_have_no_outputs(path):
    notebook = json.loads(path.read_text())
    dirty = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} hold outputs (strip them before committing)"


@pytest.fixture(scope="module")
def project(tiny_chain):
    """The tiny survey's root made a Kedro project holding the notebooks."""
    pytest.importorskip("nbclient", reason="the dev extra (nbclient, ipykernel) runs the notebooks")
    root = tiny_chain.root
    as_kedro_project(root)
    shutil.copytree(PROJECT / "notebooks", root / "notebooks", dirs_exist_ok=True)
    return root


def execute(root: Path, name: str, monkeypatch) -> dict:
    import nbclient
    import nbformat
    # the kernel imports the package from this checkout and finds the temporary project
    # from its working directory (kedro.ipython: the folder or a parent with pyproject.toml)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(PROJECT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(root / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    return notebook


def images(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells
               if cell.cell_type == "code" for output in cell.outputs)


def printed(notebook) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream")


@pytest.mark.slow
def test_quickstart_runs_on_the_tiny_survey(project, monkeypatch):
    notebook = execute(project, "01_quickstart.ipynb", monkeypatch)
    text = printed(notebook)
    assert "mock: True" in text and "of which FLAG == 0" in text
    assert images(notebook) == 4  # samples, test split, Kiel, [Mg/Fe]-[Fe/H]


@pytest.mark.slow
def test_halo_notebook_runs_and_scores_the_selection(project, monkeypatch):
    notebook = execute(project, "02_halo_chemistry.ipynb", monkeypatch)
    assert images(notebook) == 3  # Toomre, halo plane, true vs recovered
    summary = json.loads(printed(notebook).strip().splitlines()[-1])
    assert summary["mock"] is True and summary["n_kinematic_halo"] > 0
    assert 0.0 < summary["recovered_fraction"] <= 1.0
    assert 0.0 <= summary["contamination"] < 1.0
    assert {"FE_H", "MG_FE", "CA_FE"} <= set(summary["n_halo_err_below_0.1_dex"])
