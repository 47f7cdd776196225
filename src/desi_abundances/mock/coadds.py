"""Simulated DESI healpix coadds of the mock survey: spectra through the instrument, sky
fibres, FIBERMAP/EXP_FIBERMAP/SCORES and the MOCK header; one file at a time."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi import instrument
from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.desi.healpix import DESI_NSIDE
from desi_abundances.io.desi_coadd import MOCK_COMMENT
from desi_abundances.mock.fibermap import exp_fibermap, fibermap
from desi_abundances.mock.observing import iter_partitions
from desi_abundances.mock.programmes import SPECPROD
from desi_abundances.spectra import ArmSpectra, CoaddSpectra
from desi_abundances.spectral_models.registry import SpectralModel
from desi_abundances.spectral_models.registry import build as build_spectral_model


class SurveySimulator:
    """Holds the spectral model and the LSF matrices (built once) and makes coadds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.model: SpectralModel = build_spectral_model(
            config.get("spectral_model", "analytic"), **(config.get("spectral_model_args") or {}))
        grid_resolution = getattr(self.model, "grid_resolution", None)
        wave = np.asarray(self.model.wavelength)
        if grid_resolution is None:
            grid_resolution = 1.0 / np.median(np.diff(np.log(wave)))
            if np.ptp(np.diff(np.log(wave))) > 1e-3 / grid_resolution:
                raise ValueError("the spectral model's grid must be uniform in ln(wavelength)")
        self.grid_resolution = float(grid_resolution)
        self.lsf = {arm: instrument.lsf_matrix(wave, arm_wavelength(arm),
                                               self.model.resolving_power) for arm in ARMS}
        self.settings = instrument.InstrumentSettings(**(config.get("instrument") or {}))
        self.batch_size = int(config.get("batch_size", 500))
        self.write_resolution = bool(config.get("write_resolution", False))

    def simulate_coadd(self, obs: pd.DataFrame, stars: pd.DataFrame, seed: int) -> CoaddSpectra:
        """The coadd of the spectra in ``obs`` (one healpix file), seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        n = len(obs)
        star = stars.set_index("star_id").reindex(obs["star_id"].to_numpy())
        is_star = obs["star_id"].to_numpy() >= 0
        arms = {arm: {k: np.empty((n, arm_wavelength(arm).size), dtype=dt)
                      for k, dt in (("flux", np.float32), ("ivar", np.float32), ("mask", np.int32))}
                for arm in ARMS}
        bad_columns = {arm: rng.integers(0, arm_wavelength(arm).size,
                                         self.settings.bad_columns_per_arm) for arm in ARMS}
        labels = star.reset_index()
        # binaries: the radial velocity of this epoch differs from the systemic one
        vrad = star["vrad_kms"].to_numpy() + np.where(star["binary"].fillna(False).to_numpy(),
                                                      rng.normal(0.0, 15.0, n), 0.0)
        for start in range(0, n, self.batch_size):
            rows = np.arange(start, min(start + self.batch_size, n))
            stellar = rows[is_star[rows]]
            if stellar.size:
                flux = self.model.normalised_flux(labels.iloc[stellar])
                out = instrument.observe(
                    flux, self.grid_resolution, self.lsf, vrad[stellar],
                    star["teff"].to_numpy()[stellar], star["g_mag"].to_numpy()[stellar],
                    star["ebv"].to_numpy()[stellar], obs["snr_r"].to_numpy()[stellar], rng,
                    self.settings, bad_columns=bad_columns,
                    dead_arm=obs["dead_arm"].to_numpy()[stellar])
                for arm in ARMS:
                    for key in ("flux", "ivar", "mask"):
                        arms[arm][key][stellar] = out[arm][key]
            sky_rows = rows[~is_star[rows]]
            if sky_rows.size:
                sky = instrument.sky_fibre_spectra(sky_rows.size, rng)
                for arm in ARMS:
                    for key in ("flux", "ivar", "mask"):
                        arms[arm][key][sky_rows] = sky[arm][key]
        arm_spectra = {}
        for arm in ARMS:
            wave = arm_wavelength(arm)
            resolution = None
            if self.write_resolution:
                resolution = np.broadcast_to(instrument.resolution_diagonals(wave),
                                             (n, 11, wave.size)).copy()
            arm_spectra[arm] = ArmSpectra(wavelength=wave, **arms[arm], resolution=resolution)
        hpx = int(obs["HEALPIX"].iloc[0])
        header = {
            "SPECPROD": SPECPROD, "SURVEY": obs["SURVEY"].iloc[0],
            "PROGRAM": obs["PROGRAM"].iloc[0], "SPGRP": "healpix", "SPGRPVAL": hpx,
            "HPXPIXEL": hpx, "HPXNSIDE": DESI_NSIDE, "HPXNEST": True,
            "MOCK": (True, MOCK_COMMENT),
        }
        coadd = CoaddSpectra(arms=arm_spectra, fibermap=fibermap(obs, stars, rng),
                             header=header, exp_fibermap=exp_fibermap(obs, rng))
        coadd.scores = scores(coadd, obs)
        return coadd


def scores(coadd: CoaddSpectra, obs: pd.DataFrame) -> pd.DataFrame:
    """SCORES table: median flux and S/N per arm, TSNR2 proxies (~ exposure time)."""
    table = {"TARGETID": coadd.fibermap["TARGETID"].to_numpy()}
    for arm, data in coadd.arms.items():
        good = (data.ivar > 0) & (data.mask == 0)
        table[f"MEDIAN_COADD_FLUX_{arm}"] = masked_median(data.flux, good)
        table[f"MEDIAN_COADD_SNR_{arm}"] = masked_median(data.flux * np.sqrt(data.ivar), good)
        table[f"INTEG_COADD_FLUX_{arm}"] = (np.where(good, data.flux, 0).sum(axis=1) * 0.8
                                            ).astype(np.float32)
    exptime = obs["EXPTIME"].to_numpy()
    table["TSNR2_BGS"] = (exptime * 1.2).astype(np.float32)
    table["TSNR2_GPBBRIGHT"] = (exptime * 0.12).astype(np.float32)
    table["TSNR2_GPBBACKUP"] = (exptime * 1.5).astype(np.float32)
    table["TSNR2_LRG"] = (exptime * 0.08).astype(np.float32)
    return pd.DataFrame(table)


def masked_median(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Row medians of ``values`` over ``good`` entries (0 for rows without any), float32.

    A sort-based replacement for ``np.nanmedian(axis=1)``, which is slow on 2-D arrays."""
    ordered = np.sort(np.where(good, values, np.inf), axis=1)
    count = good.sum(axis=1)
    rows = np.arange(values.shape[0])
    lo = ordered[rows, np.maximum((count - 1) // 2, 0)]
    hi = ordered[rows, np.maximum(count // 2, 0)]
    return np.where(count > 0, 0.5 * (lo + hi), 0.0).astype(np.float32)


def coadd_factories(stars: pd.DataFrame, observations: pd.DataFrame,
                    config: dict[str, Any]) -> dict[str, Callable[[], CoaddSpectra]]:
    """``{partition id: callable}`` that make each coadd when called (PartitionedDataset's
    lazy save writes them one at a time, so memory holds one file)."""
    simulator = SurveySimulator(config)
    seed = int(config["seed"])
    factories = {}
    for number, (pid, rows) in enumerate(iter_partitions(observations)):
        factories[pid] = (lambda rows=rows, s=seed * 1000 + 7 + number:
                          simulator.simulate_coadd(rows, stars, s))
    return factories
