"""Tiny coadds, a tiny MWS table and a fake predictor for the inference tests.

The coadds are real DESI-layout FITS files (written by ``DesiCoaddDataset``) on short
wavelength grids, so the tests exercise the real listing (``desi.naming``) and reader.
"""
from __future__ import annotations

import hashlib
import weakref
from pathlib import Path

import numpy as np
import pandas as pd

from desi_abundances.desi.naming import list_coadds
from desi_abundances.inference import prepare
from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.io.desi_coadd import read_coadd
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

LABELS = ["teff", "logg", "fe_h"]
N_PIXELS = 16
SURVEY, PROGRAM = "main", "bright"


def partition_id(healpix: int, survey: str = SURVEY, program: str = PROGRAM) -> str:
    return f"{survey}/{program}/{healpix // 100}/{healpix}/coadd-{survey}-{program}-{healpix}"


def make_coadd(healpix: int, n_spectra: int = 4, seed: int = 0, mock: bool = True) -> CoaddSpectra:
    """A small coadd: three arms of N_PIXELS pixels; row 1 has a bad fibre status."""
    rng = np.random.default_rng(seed + healpix)
    arms = {}
    for index, arm in enumerate("BRZ"):
        flux = (rng.uniform(5, 50, (n_spectra, 1)) * np.ones((1, N_PIXELS))).astype(np.float32)
        flux += rng.normal(0, 0.5, flux.shape).astype(np.float32)
        arms[arm] = ArmSpectra(
            wavelength=4000.0 + 2000.0 * index + 0.8 * np.arange(N_PIXELS),
            flux=flux,
            ivar=np.full(flux.shape, 4.0, np.float32),
            mask=np.zeros(flux.shape, np.int32),
        )
    targetid = 39_000_000_000_000 + healpix * 1000 + np.arange(n_spectra)
    fibermap = pd.DataFrame(
        {
            "TARGETID": targetid.astype(np.int64),
            "TARGET_RA": rng.uniform(0, 360, n_spectra),
            "TARGET_DEC": rng.uniform(-20, 80, n_spectra),
            "COADD_FIBERSTATUS": np.where(np.arange(n_spectra) == 1, 8, 0).astype(np.int32),
            "OBJTYPE": ["TGT"] * n_spectra,
        }
    )
    header = {"SURVEY": SURVEY, "PROGRAM": PROGRAM, "HPXPIXEL": healpix, "SPECPROD": "test"}
    if mock:
        header["MOCK"] = True
    return CoaddSpectra(arms=arms, fibermap=fibermap, header=header)


def write_survey(root: Path, healpixels: list[int], n_spectra: int = 4) -> dict[int, CoaddSpectra]:
    """Write coadds in DESI's healpix tree under ``root``; return them by HEALPix."""
    coadds = {}
    for healpix in healpixels:
        coadd = make_coadd(healpix, n_spectra)
        DesiCoaddDataset(str(root / f"{partition_id(healpix)}.fits")).save(coadd)
        coadds[healpix] = coadd
    return coadds


def coadd_partitions(root: Path) -> dict[str, Path]:
    """The coadds under ``root`` as inference gets them: ``{partition_id: path}``."""
    return dict(list_coadds(root).coadds)


def rvtab(coadds: dict[int, CoaddSpectra]) -> pd.DataFrame:
    """An RVTAB for the coadds: every target present; row 2 of each coadd has RVS_WARN set,
    and the last target of each coadd is missing (so it is not in the catalogue)."""
    rows = []
    for coadd in coadds.values():
        for i, targetid in enumerate(coadd.fibermap["TARGETID"][:-1]):
            rows.append(
                {
                    "TARGETID": int(targetid),
                    "SURVEY": SURVEY,
                    "PROGRAM": PROGRAM,
                    "VRAD": -20.0 + 5.0 * i,
                    "RVS_WARN": 4 if i == 2 else 0,
                    "SUCCESS": True,
                }
            )
    return pd.DataFrame(rows)


class FakePredictor:
    """Deterministic stand-in for the network: labels from the mean flux of each arm."""

    def __init__(self, labels=LABELS, ood_threshold: float = 30.0, version: str = "v1"):
        self.label_names = list(labels)
        self.label_min = np.array([10.0, 10.0, 10.0])[: len(labels)]
        self.label_max = np.array([45.0, 45.0, 45.0])[: len(labels)]
        self.ood_threshold = ood_threshold
        self.is_mock = True
        self.fingerprint = hashlib.sha256(f"fake-{version}-{labels}".encode()).hexdigest()
        self.calls = 0

    def prepare(self, coadd: CoaddSpectra, vrad_kms: np.ndarray):
        return coadd, vrad_kms

    def predict(self, prepared) -> pd.DataFrame:
        coadd, vrad_kms = prepared
        self.calls += 1
        table = {"TARGETID": coadd.fibermap["TARGETID"].to_numpy()}
        for label, arm in zip(self.label_names, "BRZ"):
            table[label] = coadd.arms[arm].flux.mean(axis=1)
            table[f"{label}_err"] = np.full(coadd.n_spectra, 0.1, np.float32)
        table["input_distance"] = coadd.arms["B"].flux.mean(axis=1) + np.nan_to_num(vrad_kms)
        return pd.DataFrame(table)


class CountingReader:
    """Replaces inference's coadd reader: counts the coadds read (``loaded``: partition ids
    below ``root``) and those alive at once (weakrefs); ``fail``: ids whose read raises."""

    def __init__(self, monkeypatch, root: Path, fail: tuple[str, ...] = ()):
        self.root = Path(root)
        self.fail = set(fail)
        self.alive = 0
        self.max_alive = 0
        self.loaded: list[str] = []
        monkeypatch.setattr(prepare, "read_coadd", self.read)

    def read(self, path, **options):
        pid = Path(path).relative_to(self.root).with_suffix("").as_posix()
        if pid in self.fail:
            raise OSError("disk on fire")
        coadd = read_coadd(path, **options)
        self.loaded.append(pid)
        self.alive += 1
        self.max_alive = max(self.max_alive, self.alive)
        weakref.finalize(coadd, self._release)
        return coadd

    def _release(self) -> None:
        self.alive -= 1
