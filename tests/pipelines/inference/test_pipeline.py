"""inference on the session's tiny chain (tests/support/tiny_chain.py): one Parquet file per
coadd, the VAC (MOCK-stamped, one row per predicted spectrum) and both reports; and the
pipeline's structure (nodes, inputs, outputs)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from tiny_chain import file_outputs

from desi_abundances.pipelines import inference

pytestmark = pytest.mark.slow


def test_structure():
    pipeline = inference.create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {"predict_coadds", "build_vac"}
    assert pipeline.inputs() >= {"inference_coadds", "model_bundle", "mws_radial_velocities",
                                 "params:inference", "params:labels"}
    assert pipeline.all_outputs() >= {"inference_report", "vac_summary"}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(inference.create_pipeline(), tiny_chain.catalog)
    assert set(names) >= {"inference_report", "vac_summary"}
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_per_coadd_outputs_and_vac(tiny_chain):
    root = tiny_chain.root
    report = json.loads((root / "data/08_reporting/inference_report.json").read_text())
    summary = json.loads((root / "data/08_reporting/vac_summary.json").read_text())
    coadds = sorted((root / "data/01_raw/desi/healpix").rglob("coadd-*.fits"))
    per_coadd = sorted((root / "data/07_model_output/per_coadd").rglob("coadd-*.parquet"))
    assert report["n_processed"] == len(per_coadd) == len(coadds) and report["n_failed"] == 0
    assert summary["mock"] is True and summary["n_rows"] == report["n_spectra_predicted"] > 100
    with fits.open(root / "data/07_model_output/desi_abundances_vac.fits") as hdul:
        assert hdul[0].header["MOCK"] is True
        table = hdul["VAC"].data
        assert len(table) == summary["n_rows"]
        assert np.unique(table["TARGETID"]).size <= len(table)
        for label in tiny_chain.params["labels"]:
            assert label.upper() in table.columns.names, label
