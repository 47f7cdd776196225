"""The plain io modules (and spectra) import without Kedro: inference, the VAC and the mock
survey use them outside any Kedro session."""
from __future__ import annotations

import subprocess
import sys

import pytest

PLAIN = ["desi_abundances.io.atomic", "desi_abundances.io.fits_table",
         "desi_abundances.io.desi_coadd", "desi_abundances.io.processed_spectra",
         "desi_abundances.spectra"]


@pytest.mark.parametrize("module", PLAIN)
def test_plain_module_does_not_import_kedro(module):
    code = f"import {module}, sys; assert 'kedro' not in sys.modules, sorted(m for m in sys.modules if m.startswith('kedro'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_wrappers_do_import_kedro():  # the check above can fail
    code = "import desi_abundances.io.datasets.desi_coadd, sys; assert 'kedro' in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
