"""data_ingestion on the session's tiny chain (tests/support/tiny_chain.py): the stacked
spectra, their metadata and the APOGEE stars are written where the catalog says, row-matched
and stamped MOCK; and the pipeline's structure (nodes, inputs, outputs)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from tiny_chain import file_outputs

from desi_abundances.pipelines import data_ingestion
from desi_abundances.spectra import median_snr

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_chain):
    """(catalog, parameters, root) of the session's tiny chain."""
    return tiny_chain.catalog, tiny_chain.params, tiny_chain.root


def test_structure():
    pipeline = data_ingestion.create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {"select_apogee_stars", "ingest_spectra"}
    assert pipeline.inputs() >= {"apogee_allstar", "desi_coadds", "mws_catalogue",
                                 "params:data_ingestion", "params:labels"}
    assert pipeline.all_outputs() >= {"apogee_stars", "spectra_metadata", "stacked_spectra"}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(data_ingestion.create_pipeline(), tiny_chain.catalog)
    assert set(names) >= {"apogee_stars", "spectra_metadata", "stacked_spectra"}
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_stacked_spectra_are_stamped_mock(run):
    _, _, root = run
    with fits.open(root / "data/02_intermediate/stacked_spectra.fits") as hdul:
        assert hdul[0].header["MOCK"] is True
        assert hdul["B_FLUX"].data.shape[0] == hdul["FIBERMAP"].data.shape[0] > 0


def test_outputs_written_where_the_catalog_says(run):
    _, _, root = run
    for path in ("data/02_intermediate/stacked_spectra.fits", "data/02_intermediate/spectra_metadata.parquet",
                 "data/02_intermediate/apogee_stars.parquet", "data/03_primary/crossmatch.parquet",
                 "data/08_reporting/crossmatch_report.json"):
        assert (root / path).exists(), path


def test_stacked_spectra_row_matched_to_metadata(run):
    catalog, _, _ = run
    stacked = catalog.load("stacked_spectra")
    meta = catalog.load("spectra_metadata")
    assert stacked.n_spectra == len(meta) > 0
    np.testing.assert_array_equal(stacked.fibermap["TARGETID"], meta["TARGETID"])
    np.testing.assert_allclose(median_snr(stacked), meta["snr"], rtol=1e-6)
    assert (meta["COADD_FIBERSTATUS"] == 0).all() and (meta["MWS_TARGET"] != 0).all()
    assert (meta["GAIA_SOURCE_ID"] > 0).all()  # every mock star has an EDR3 id in the MWS GAIA HDU
    assert meta.groupby("TARGETID").size().max() == 2  # repeat observations kept for the crossmatch
