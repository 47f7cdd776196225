"""Who may import whom: every module of the package sits on a floor and imports only from its
own floor or lower ones (docs/architecture.md draws the same floors). A module the table does
not place fails the test, so a new package has to be given a floor."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "desi_abundances"

FLOORS: dict[str, int] = {
    # 0: facts and neutral maths
    "physics": 0, "defaults": 0, "maths": 0, "constants": 0,
    # 1: DESI's rules
    "desi": 1,
    # 2: stellar physics, spectral models, spectra containers and preprocessing
    "stellar": 2, "spectral_models": 2, "spectra": 2,
    # 3: plain readers and writers (no Kedro)
    "io": 3,
    # 4: the science of the stages
    "nn": 4, "ingestion": 4, "crossmatch": 4, "labels": 4, "synthesis": 4, "fetch": 4,
    # 5: evaluation, figures, the emulator (registers itself as a spectral model)
    "evaluation": 5, "plots": 5, "emulator": 5,
    # 5: science from the catalogue (the notebooks' helpers: halo selection, sequences)
    "galactic": 5,
    # 6: applications: inference, the mock survey, the real-star library, Kedro dataset wrappers
    "inference": 6, "mock": 6, "real_stars": 6, "datasets": 6,
    # 7: Kedro glue
    "pipelines": 7, "pipeline_registry": 7, "settings": 7, "hooks": 7, "__main__": 7,
}


def floor_of(module: str) -> int | None:
    """Floor of a ``desi_abundances`` module (the longest matching entry wins); the package
    root itself (``__version__``) is the ground."""
    if module == "desi_abundances":
        return 0
    name = module.removeprefix("desi_abundances.")
    matches = [key for key in FLOORS if name == key or name.startswith(key + ".")]
    return FLOORS[max(matches, key=len)] if matches else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("desi_abundances", *parts)).removesuffix(".__init__")


def imported_modules(path: Path) -> set[str]:
    """Every ``desi_abundances`` module a file imports, at module level or not."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "desi_abundances":
            names |= {f"desi_abundances.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] == "desi_abundances"}


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_import_runs_back_up(path):
    own = floor_of(module_name(path))
    assert own is not None, f"{module_name(path)} has no floor: add its package to FLOORS"
    upward = {name: floor_of(name) for name in imported_modules(path)
              if floor_of(name) is None or floor_of(name) > own}
    assert upward == {}, f"{module_name(path)} (floor {own}) imports from above: {upward}"


def test_only_the_mock_survey_pipeline_imports_the_mock():
    allowed = ("desi_abundances.mock", "desi_abundances.pipelines.mock_survey")
    offenders = {module_name(path): sorted(names) for path in SOURCES
                 if not module_name(path).startswith(allowed)
                 and (names := {n for n in imported_modules(path) if n.startswith("desi_abundances.mock")})}
    assert offenders == {}


def test_the_floor_table_catches_an_upward_import():
    """The check can fail: a desi/ module importing inference is reported."""
    assert floor_of("desi_abundances.desi.naming") < floor_of("desi_abundances.inference.runners")
    assert floor_of("desi_abundances.datasets.fits_table") > floor_of("desi_abundances.nn.bundle")
    assert floor_of("desi_abundances.unknown_package") is None
