"""Issue 11's done-when: a tree laid out as a real DESI release (coadd, redrock and spectra
files side by side, tile-based coadds) runs through data_ingestion and inference without
error; the log says what was ignored and skipped, and why."""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from kedro_datasets.partitions import PartitionedDataset

from desi_abundances.inference import (
    InferenceSettings,
    MockModelError,
    RadialVelocityLookup,
    build_value_added_catalogue,
    radial_velocity_table,
    run_inference,
)
from desi_abundances.io.datasets.coadd_tree import CoaddTreeDataset
from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.pipelines.data_ingestion.nodes import ingest_spectra, select_apogee_stars

sys.path.insert(0, str(Path(__file__).parent / "inference"))
sys.path.insert(0, str(Path(__file__).parent / "ingestion"))
from inference_fakes import LABELS, FakePredictor, make_coadd, partition_id, rvtab  # noqa: E402
from survey_tables import make_apogee, make_mws  # noqa: E402

REAL_TILE = Path(__file__).resolve().parents[1] / "../shared/data/real_desi/coadd-4-80613-thru20210324.fits"
TILE_BARE = "tiles/cumulative/169/20210419/coadd-5-169-thru20210419"
TILE_NAMED = "tiles/cumulative/170/20210420/coadd-3-170-thru20210420"


def _side_files(folder: Path, stem: str) -> None:
    """redrock- (REDSHIFTS, no arms), spectra- and emline- files beside a coadd."""
    table = fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=np.arange(2))], name="REDSHIFTS")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(folder / f"redrock-{stem}.fits")
    shutil.copy(folder / f"coadd-{stem}.fits", folder / f"spectra-{stem}.fits")
    (folder / f"emline-{stem}.fits").write_bytes(b"")
    (folder / f"rrdetails-{stem}.h5").write_bytes(b"")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("release") / "healpix"
    coadds = {}
    for healpix in (10010, 10011):
        coadd = make_coadd(healpix, mock=False)
        coadd.fibermap["MWS_TARGET"] = np.int64(1)
        path = root / f"{partition_id(healpix)}.fits"
        DesiCoaddDataset(str(path)).save(coadd)
        _side_files(path.parent, f"main-bright-{healpix}")
        coadds[healpix] = coadd
    bare = make_coadd(169, mock=False)
    bare.header = {"TILEID": 169, "SPGRP": "cumulative"}
    DesiCoaddDataset(str(root / f"{TILE_BARE}.fits")).save(bare)
    named = make_coadd(170, mock=False)
    named.header = {"TILEID": 170, "SURVEY": "main", "PROGRAM": "bright"}
    named.fibermap["MWS_TARGET"] = np.int64(1)
    DesiCoaddDataset(str(root / f"{TILE_NAMED}.fits")).save(named)
    coadds[170] = named
    if REAL_TILE.is_file():
        real = root / "tiles/cumulative/80613/20210324/coadd-4-80613-thru20210324.fits"
        real.parent.mkdir(parents=True)
        shutil.copy(REAL_TILE, real)
    return root, coadds


def _settings(tmp_path, **kw):
    return InferenceSettings(per_coadd_dir=str(tmp_path / "per_coadd"), vac_filepath=str(tmp_path / "vac.fits"),
                             progress=False, **kw)


def test_inference_on_a_real_layout(tree, tmp_path, caplog):
    root, coadds = tree
    caplog.set_level(logging.INFO)
    listing = CoaddTreeDataset(str(root), load_args={"read_scores": False}).load()
    assert all("redrock" not in p and "spectra-" not in p for p in listing.paths)
    assert TILE_BARE in listing.paths and listing.n_ignored >= 8
    velocities = RadialVelocityLookup(radial_velocity_table(rvtab(coadds)))
    predictor = FakePredictor()
    predictor.is_mock = False
    report = run_inference(listing.paths, predictor, velocities, _settings(tmp_path), LABELS,
                           read_options=listing.read_options)
    assert report["n_failed"] == 0 and report["n_processed"] == len(listing.paths) - report["n_skipped"]
    assert TILE_BARE in report["skipped"] and "SURVEY/PROGRAM" in report["skipped"][TILE_BARE]
    assert report["targets"]["selected"] == report["n_spectra_predicted"] == 9
    summary = build_value_added_catalogue(report, _settings(tmp_path).vac_filepath)
    assert summary["n_missing"] == 0 and summary["n_rows"] == 9
    vac = fits.getdata(summary["vac_filepath"], 1)
    assert sorted(set(vac["HEALPIX"])) == [-1, 10010, 10011]  # the named tile coadd: HEALPIX -1
    text = caplog.text
    assert "not healpix coadds and are ignored" in text and "coadd skipped" in text
    assert "3 of 4 spectra selected" in text
    if REAL_TILE.is_file():
        assert "yields no row" in text or any("80613" in k for k in report["skipped"])


def test_mock_model_on_real_coadds_refused_unless_allowed(tree, tmp_path, caplog):
    root, coadds = tree
    listing = CoaddTreeDataset(str(root)).load()
    velocities = RadialVelocityLookup(radial_velocity_table(rvtab(coadds)))
    with pytest.raises(MockModelError, match="allow_mock_model"):
        run_inference(listing.paths, FakePredictor(), velocities, _settings(tmp_path), LABELS)
    caplog.set_level(logging.INFO)
    report = run_inference(listing.paths, FakePredictor(), velocities,
                           _settings(tmp_path, allow_mock_model=True), LABELS)
    assert report["n_processed"] > 0 and "MOCK data applied to REAL coadds" in caplog.text


def test_data_ingestion_on_a_real_layout(tree, caplog):
    root, coadds = tree
    caplog.set_level(logging.INFO)
    dataset = PartitionedDataset(path=str(root), dataset={"type": "desi_abundances.io.datasets.desi_coadd.DesiCoaddDataset"},
                                 filename_suffix=".fits")
    loaders = dataset.load()
    assert any("redrock" in p for p in loaders)  # the PartitionedDataset sees everything
    table = rvtab(coadds)
    mws = make_mws([dict(row, SOURCE_ID=-1) for row in table.to_dict("records")])
    targets = pd.concat([c.fibermap for c in coadds.values()])
    apogee = make_apogee([{"APOGEE_ID": f"2M{i}", "RA": ra, "DEC": dec}
                          for i, (ra, dec) in enumerate(zip(targets["TARGET_RA"], targets["TARGET_DEC"]))])
    params = {"selection": {"require_good_fiberstatus": True, "objtype": "TGT",
                            "target_bitmask_columns": ["MWS_TARGET"]},
              "prefilter_radius_arcsec": 5.0, "mws_rvtab_columns": ["VRAD", "RVS_WARN", "SUCCESS"]}
    stacked, meta = ingest_spectra(loaders, mws, select_apogee_stars(apogee, params), params)
    assert len(meta) == stacked.n_spectra == 9  # 3 good fibres in each of 3 usable coadds
    assert set(meta["HEALPIX"]) == {-1, 10010, 10011}
    text = caplog.text
    assert "are not coadds" in text and "coadd skipped" in text and "coadd-5-169" in text
    assert "bad fibre 1" in text
