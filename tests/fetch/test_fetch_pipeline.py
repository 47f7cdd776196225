"""The fetch pipeline through Kedro against a local HTTP server: the MWS catalogue and allStar
are fetched, the plan holds only the coadds of the APOGEE overlap (training) or every MWS
pixel (inference), and the coadds land in the healpix tree."""
from __future__ import annotations

import numpy as np
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from desi_abundances.fetch.plan import inference_coadds, training_coadds
from desi_abundances.io.datasets.fits_table import FitsTableDataset
from desi_abundances.pipelines.fetch import create_pipeline

RVTAB = pd.DataFrame({
    "TARGETID": np.arange(5, dtype=np.int64),
    "SURVEY": ["main", "main", "main", "MAIN ", "sv1"],
    "PROGRAM": ["bright", "backup", "dark", "bright", "bright"],
    "HEALPIX": np.array([10010, 10011, 10012, 10010, 7], dtype=np.int32),
})
GAIA = pd.DataFrame({"SOURCE_ID": np.array([11, 12, -1, 14, 15], dtype=np.int64)})


def test_plans():
    assert inference_coadds(RVTAB) == [
        "main/backup/100/10011/coadd-main-backup-10011.fits",
        "main/bright/100/10010/coadd-main-bright-10010.fits",
        "main/dark/100/10012/coadd-main-dark-10012.fits",
        "sv1/bright/0/7/coadd-sv1-bright-7.fits",
    ]
    assert inference_coadds(RVTAB, ["main/b*"]) == inference_coadds(RVTAB)[:2]
    apogee = pd.Series([12.0, np.nan, 14.0, 0.0])
    assert training_coadds(RVTAB, GAIA["SOURCE_ID"], apogee) == [
        "main/backup/100/10011/coadd-main-backup-10011.fits",
        "main/bright/100/10010/coadd-main-bright-10010.fits",
    ]


def test_fetch_pipeline_for_training(server, tmp_path):  # noqa: F811
    base, local = server
    release = tmp_path / "release" / "healpix" / "vac"
    FitsTableDataset(str(release / "mwsall-pix-test.fits"), hdu=["RVTAB", "GAIA"]).save({"RVTAB": RVTAB, "GAIA": GAIA})
    FitsTableDataset(str(release / "allStar-test.fits"), hdu=1).save(
        pd.DataFrame({"GAIAEDR3_SOURCE_ID": np.array([12, 14, 99], dtype=np.int64)}))
    params = {
        "purpose": "training", "release_url": base, "specprod": "x", "healpix_url": base,
        "mws_catalogue_url": f"{base}/vac/mwsall-pix-test.fits", "apogee_allstar_url": f"{base}/vac/allStar-test.fits",
        "destination": str(local / "healpix"), "mws_catalogue": str(local / "mws.fits"),
        "apogee_allstar": str(local / "allStar.fits"), "partitions": None, "n_workers": 2,
        "timeout_s": 10, "progress": False,
    }
    catalog = DataCatalog({"params:fetch": MemoryDataset(params), "fetch_report": MemoryDataset()})
    SequentialRunner().run(create_pipeline(), catalog)
    report = catalog.load("fetch_report")
    assert report["downloaded"] == 2 and report["n_failed"] == 0 and report["checksum_verified"] == 2
    assert sorted(p.relative_to(local / "healpix").as_posix() for p in (local / "healpix").rglob("*.fits")) == [
        "main/backup/100/10011/coadd-main-backup-10011.fits",
        "main/bright/100/10010/coadd-main-bright-10010.fits",
    ]
    assert (local / "mws.fits").is_file() and (local / "allStar.fits").is_file()
