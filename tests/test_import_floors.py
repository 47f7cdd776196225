"""Who may import whom, for the floors this re-cut made: the neutral maths and stellar
helpers at the bottom, the spectral-model registry low, the mock near the top."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "desi_abundances"

PENDING: set[str] = set()
"""Imports allowed for now although they break a floor (none left)."""


def _imports(path: Path) -> set[str]:
    """Every desi_abundances module a source file imports (module level or not)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.startswith("desi_abundances")}


def _files(*parts: str) -> list[Path]:
    return sorted(PACKAGE.joinpath(*parts).rglob("*.py"))


def test_only_the_mock_survey_imports_the_mock():
    allowed = {PACKAGE / "mock", PACKAGE / "pipelines" / "mock_survey"}
    offenders = {}
    for path in _files():
        if any(path.is_relative_to(folder) for folder in allowed):
            continue
        bad = {name for name in _imports(path) if name.startswith("desi_abundances.mock")
               and not any(name.startswith(p) for p in PENDING)}
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = sorted(bad)
    assert offenders == {}


@pytest.mark.parametrize("package, may_import", [
    ("maths", ()),
    ("stellar", ("constants", "stellar")),
    ("spectral_models", ("constants", "maths", "stellar", "spectral_models")),
])
def test_low_floors_import_only_lower_ones(package, may_import):
    allowed = tuple(f"desi_abundances.{name}" for name in may_import)
    for path in _files(package):
        bad = {name for name in _imports(path) if not name.startswith(allowed)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("package, upper", [
    ("evaluation", ("pipelines", "inference", "mock")),
    ("plots", ("pipelines", "inference", "mock")),
    ("nn", ("pipelines", "inference", "mock", "evaluation")),  # nor a comparison method
])
def test_middle_floors_do_not_import_upwards(package, upper):
    upper = tuple(f"desi_abundances.{name}" for name in upper)
    for path in _files(package):
        bad = {name for name in _imports(path) if name.startswith(upper)
               and not any(name.startswith(p) for p in PENDING)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
