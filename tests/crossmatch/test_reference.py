"""Crossmatch against a generic reference-label table: TARGETID first, then position; cuts
after matching; the node branch on params:labels_source; the label table downstream."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from desi_abundances.crossmatch.apogee import CrossmatchError
from desi_abundances.crossmatch.reference import crossmatch_reference
from desi_abundances.ingestion import IngestionError
from desi_abundances.labels import reference_labels
from desi_abundances.nn.data import label_table
from desi_abundances.pipelines.crossmatch.nodes import crossmatch_desi_apogee
from desi_abundances.pipelines.data_ingestion.nodes import select_apogee_stars

LABELS = ["teff", "logg", "fe_h"]


def _spectra() -> pd.DataFrame:
    return pd.DataFrame({
        "TARGETID": np.array([11, 12, 13, 14], dtype=np.int64),
        "TARGET_RA": [10.0, 20.0, 30.0, 40.0], "TARGET_DEC": [0.0, 0.0, 0.0, 0.0],
        "snr": [50.0, 40.0, 30.0, 20.0],
    })


def _reference() -> pd.DataFrame:
    raw = pd.DataFrame({
        "REFERENCE_ID": ["by_id", "by_pos", "far", "cut"],
        "TARGETID": [11, -1, -1, 14],
        "RA": [np.nan, 20.0 + 0.3 / 3600, 30.01, np.nan], "DEC": [np.nan, 0.0, 0.0, np.nan],
        "TEFF": [5000.0, 5500.0, 6000.0, 8000.0], "TEFF_ERR": [50.0] * 4,
        "LOGG": [4.0] * 4, "LOGG_ERR": [0.1] * 4,
        "FE_H": [0.0, -0.5, 0.1, 0.0], "FE_H_ERR": [0.05] * 4, "FE_H_FLAG": [0, 4, 0, 0],
    })
    return reference_labels(raw, LABELS, where="ref.csv")


def test_targetid_then_position_then_cuts():
    params = {"match_radius_arcsec": 1.0, "reference_cuts": {"ranges": {"TEFF": [None, 7000.0]}}}
    table, report = crossmatch_reference(_spectra(), _reference(), params)
    assert table["REFERENCE_ID"].tolist() == ["by_id", "by_pos"]          # 'far' > 1", 'cut' hot
    assert table["match_method"].tolist() == ["targetid", "position"]
    assert table["TARGETID"].tolist() == [11, 12]
    assert report["matching"]["targetid_pairs"] == 2 and report["final"]["pairs"] == 2
    labels = label_table(table, LABELS)                                    # feature engineering
    assert labels["teff"].tolist() == [5000.0, 5500.0]
    assert np.isnan(labels["fe_h"][1])                                     # flag masks the label only


def test_node_branches_on_labels_source():
    reference = _reference()
    table, report = crossmatch_desi_apogee(_spectra(), reference, {}, {"kind": "table"})
    assert report["label_source"] == "table" and "REFERENCE_ID" in table
    with pytest.raises(CrossmatchError, match="APOGEE"):                   # default: allStar
        crossmatch_desi_apogee(_spectra(), reference, {})


def test_ingestion_node_reads_the_table_and_guards_the_prefilter():
    raw = _reference().drop(columns=["TEFF_FLAG", "LOGG_FLAG"])
    raw.attrs["source"] = "ref.csv"
    stars = select_apogee_stars(raw, {"prefilter_radius_arcsec": None}, {"kind": "table"}, LABELS)
    assert stars["REFERENCE_ID"].tolist() == ["by_id", "by_pos", "far", "cut"]
    with pytest.raises(IngestionError, match=r"ref\.csv.*prefilter_radius_arcsec: null"):
        select_apogee_stars(raw, {"prefilter_radius_arcsec": 5.0}, {"kind": "table"}, LABELS)
