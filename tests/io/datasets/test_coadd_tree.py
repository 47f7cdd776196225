"""io.datasets.coadd_tree: the inference coadds as paths plus reader options (load only)."""
from __future__ import annotations

import pickle

import pytest
from kedro.io import DatasetError

from desi_abundances.io.datasets.coadd_tree import CoaddTreeDataset


def test_load_lists_only_coadds_and_carries_the_reader_options(tmp_path, caplog):
    for name in ("main/bright/100/10010/coadd-main-bright-10010.fits",
                 "main/bright/100/10010/redrock-main-bright-10010.fits"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    options = {"read_resolution": False, "fibermap_columns": ["TARGETID"]}
    with caplog.at_level("INFO", logger="desi_abundances"):
        tree = CoaddTreeDataset(str(tmp_path), load_args=options).load()
    assert list(tree.paths) == ["main/bright/100/10010/coadd-main-bright-10010"]
    assert tree.read_options == options and tree.n_ignored == 1 and "1 files are not" in caplog.text
    assert pickle.loads(pickle.dumps(tree)) == tree


def test_errors_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="unknown CoaddTreeDataset load_args"):
        CoaddTreeDataset(str(tmp_path), load_args={"read_everything": True})
    with pytest.raises(DatasetError, match="no healpix coadd"):
        CoaddTreeDataset(str(tmp_path)).load()
    with pytest.raises(DatasetError, match="read-only"):
        CoaddTreeDataset(str(tmp_path)).save({})
