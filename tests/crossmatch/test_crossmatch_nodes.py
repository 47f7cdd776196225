"""The crossmatch node and the wiring of both pipelines."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from survey_tables import make_apogee

from desi_abundances.pipelines.crossmatch import create_pipeline as crossmatch_pipeline
from desi_abundances.pipelines.crossmatch.nodes import crossmatch_desi_apogee
from desi_abundances.pipelines.data_ingestion import create_pipeline as ingestion_pipeline

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def test_node_with_project_parameters_gives_json_report():
    params = yaml.safe_load((CONF / "parameters_crossmatch.yml").read_text())["crossmatch"]
    stars = make_apogee(
        [
            {"APOGEE_ID": "2M-1", "RA": 10.0, "DEC": 20.0, "GAIAEDR3_SOURCE_ID": 11},
            {"APOGEE_ID": "2M-2", "RA": 11.0, "DEC": 20.0, "GAIAEDR3_SOURCE_ID": 12, "SNR": 40.0},
        ]
    )
    spectra = pd.DataFrame(
        {
            "TARGETID": np.array([101, 102], dtype=np.int64), "TARGET_RA": [10.0, 11.0],
            "TARGET_DEC": [20.0, 20.0], "PMRA": [1.0, 1.0], "PMDEC": [2.0, 2.0],
            "REF_EPOCH": [2015.5, 2015.5], "REF_ID": np.array([11, 12], dtype=np.int64),
            "REF_CAT": ["G2", "G2"], "GAIA_SOURCE_ID": np.array([11, 12], dtype=np.int64),
            "snr": [50.0, 60.0],
        }
    )
    table, report = crossmatch_desi_apogee(spectra, stars, params)
    assert table["APOGEE_ID"].tolist() == ["2M-1"]  # 2M-2 fails snr_min
    assert report["matched_after_cuts"][-1]["remaining"] == 1
    json.dumps(report)  # what json.JSONDataset will write
    assert report["parameters"]["match_radius_arcsec"] == 1.0


def test_pipelines_read_and_write_the_contracted_datasets():
    ingestion = ingestion_pipeline()
    assert ingestion.inputs() == {"desi_coadds", "mws_catalogue", "apogee_allstar", "params:data_ingestion"}
    assert ingestion.all_outputs() == {"stacked_spectra", "spectra_metadata", "apogee_stars"}
    crossmatch = crossmatch_pipeline()
    assert crossmatch.inputs() == {"spectra_metadata", "apogee_stars", "params:crossmatch"}
    assert crossmatch.outputs() == {"crossmatch", "crossmatch_report"}
    catalog = {
        **yaml.safe_load((CONF / "catalog_data_ingestion.yml").read_text()),
        **yaml.safe_load((CONF / "catalog_crossmatch.yml").read_text()),
    }
    assert catalog["stacked_spectra"]["filepath"] == "data/02_intermediate/stacked_spectra.fits"
    assert catalog["crossmatch_report"]["filepath"] == "data/08_reporting/crossmatch_report.json"
    for entry in catalog.values():
        assert entry["metadata"]["kedro-viz"]["layer"]
