"""The atomic Parquet/JSON datasets round-trip and never leave a partial file behind."""
import json

import pandas as pd
import pytest

from desi_abundances.io.datasets.atomic import AtomicJSONDataset, AtomicParquetDataset


def test_parquet_round_trip_and_no_temp_left(tmp_path):
    path = tmp_path / "sub" / "table.parquet"
    dataset = AtomicParquetDataset(filepath=str(path))
    frame = pd.DataFrame({"TARGETID": [1, 2, 3], "fe_h": [-0.5, 0.0, 0.2]})
    dataset.save(frame)
    pd.testing.assert_frame_equal(dataset.load(), frame)
    assert [p.name for p in path.parent.iterdir()] == ["table.parquet"]


def test_parquet_failed_save_keeps_previous_version(tmp_path):
    path = tmp_path / "table.parquet"
    dataset = AtomicParquetDataset(filepath=str(path))
    frame = pd.DataFrame({"a": [1, 2]})
    dataset.save(frame)

    class Unwritable(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):
            with open(args[0], "wb") as handle:
                handle.write(b"PAR1 half a file")
            raise OSError("disk full")

    with pytest.raises(Exception, match="disk full"):
        dataset.save(Unwritable({"a": [9]}))
    pd.testing.assert_frame_equal(AtomicParquetDataset(filepath=str(path)).load(), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_json_round_trip(tmp_path):
    path = tmp_path / "report.json"
    AtomicJSONDataset(filepath=str(path), save_args={"indent": 2}).save({"n": 3})
    assert json.loads(path.read_text()) == {"n": 3}
