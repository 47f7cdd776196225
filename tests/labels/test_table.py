"""The generic reference-label table: each format, the canonical form, clear errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from desi_abundances.labels import (
    LabelTableError,
    label_source_kind,
    read_label_table,
    reference_labels,
    write_table_file,
)

LABELS = ["teff", "logg", "fe_h"]


def _raw() -> pd.DataFrame:
    return pd.DataFrame({
        "REFERENCE_ID": ["a", "b", "c"],
        "RA": [10.0, 10.1, 10.2], "DEC": [-5.0, -5.1, -5.2],
        "TARGETID": [101, 102, -1],
        "TEFF": [5000.0, -9999.0, 6000.0], "TEFF_ERR": [50.0, 50.0, 60.0],
        "LOGG": [4.5, 2.5, 4.0], "LOGG_ERR": [0.1, 0.1, 0.1],
        "FE_H": [0.0, -1.0, 0.2], "FE_H_ERR": [0.05, 0.05, 0.05], "FE_H_FLAG": [0, 1, 0],
    })


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits"])
def test_each_format_reads_to_the_canonical_form(tmp_path, suffix):
    path = tmp_path / f"labels{suffix}"
    write_table_file(_raw(), path)
    table = read_label_table(path, LABELS, {"missing_values": [-9999]})
    assert list(table.columns[:4]) == ["REFERENCE_ID", "RA", "DEC", "TARGETID"]
    assert table["REFERENCE_ID"].tolist() == ["a", "b", "c"]
    assert table["TARGETID"].tolist() == [101, 102, -1]
    assert np.isnan(table["TEFF"][1])                      # sentinel -> NaN, not a value
    assert table["TEFF"][0] == 5000.0 and table["TEFF_ERR"][2] == 60.0
    assert table["FE_H_FLAG"].tolist() == [0, 1, 0]
    assert table["TEFF_FLAG"].tolist() == [0, 0, 0]        # no flag column: good


def test_missing_label_column_names_file_and_column(tmp_path):
    path = tmp_path / "labels.csv"
    write_table_file(_raw().drop(columns=["LOGG"]), path)
    with pytest.raises(LabelTableError, match=r"labels\.csv.*'LOGG'.*logg"):
        read_label_table(path, LABELS)


def test_missing_error_column_unless_a_default_error_is_given():
    raw = _raw().drop(columns=["TEFF_ERR"])
    raw.attrs["source"] = "survey.fits"
    with pytest.raises(LabelTableError, match=r"survey\.fits.*'TEFF_ERR'"):
        reference_labels(raw, LABELS)
    table = reference_labels(raw, LABELS, {"default_errors": {"teff": 80.0}})
    assert (table["TEFF_ERR"] == 80.0).all()


def test_duplicate_id_is_an_error(tmp_path):
    raw = _raw()
    raw.loc[2, "REFERENCE_ID"] = "a"
    path = tmp_path / "dup.parquet"
    write_table_file(raw, path)
    with pytest.raises(LabelTableError, match=r"dup\.parquet.*duplicate id.*'a'"):
        read_label_table(path, LABELS)


def test_renamed_columns_and_no_position():
    raw = _raw().rename(columns={"REFERENCE_ID": "sobject_id", "TEFF": "teff_x"}).drop(columns=["RA", "DEC"])
    spec = {"columns": {"id": "sobject_id"}, "label_columns": {"teff": {"value": "teff_x"}}}
    table = reference_labels(raw, LABELS, spec, where="galah.csv")
    assert table["TEFF"][0] == 5000.0
    assert np.isnan(table["RA"]).all()


def test_needs_targetid_or_position_and_a_known_format(tmp_path):
    raw = _raw().drop(columns=["RA", "DEC", "TARGETID"])
    with pytest.raises(LabelTableError, match="TARGETID"):
        reference_labels(raw, LABELS, where="x.csv")
    with pytest.raises(LabelTableError, match=r"labels\.txt.*unknown"):
        read_label_table(tmp_path / "labels.txt", LABELS)
    with pytest.raises(LabelTableError, match="does not exist"):
        read_label_table(tmp_path / "absent.csv", LABELS)


def test_label_source_kind():
    assert label_source_kind(None) == "apogee"
    assert label_source_kind({"kind": "table"}) == "table"
    with pytest.raises(LabelTableError, match="kind"):
        label_source_kind({"kind": "galah"})
