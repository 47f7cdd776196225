"""The mock survey's observing plan: one row per DESI spectrum (repeat observations, sky
fibres, exposure, S/N, fibre status), grouped into healpix coadd files."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.bitmasks import FIBERSTATUS_BITS
from desi_abundances.desi.naming import partition_id
from desi_abundances.mock.programmes import survey_programmes


def snr_per_pixel(g_mag: np.ndarray, exptime_s: np.ndarray, snr_at_g15: float = 60.0,
                  sky_g_mag: float = 18.5) -> np.ndarray:
    """Median S/N per pixel in the R arm: photon noise of the star plus sky background
    (equivalent to a G = ``sky_g_mag`` source) for an exposure of ``exptime_s`` seconds."""
    flux = 10.0 ** (-0.4 * (np.asarray(g_mag) - 15.0))
    sky = 10.0 ** (-0.4 * (sky_g_mag - 15.0))
    return snr_at_g15 * flux * np.sqrt(np.asarray(exptime_s) / 1000.0) / np.sqrt(flux + sky) * \
        np.sqrt(1.0 + sky)


def plan_observations(stars: pd.DataFrame, config: dict[str, Any]) -> pd.DataFrame:
    """One row per DESI spectrum: every DESI star in its programme, a fraction of backup
    stars observed again in the bright programme (or vice versa) at a different S/N, and
    sky fibres. Columns: star_id (-1 for sky), TARGETID, SURVEY, PROGRAM, HEALPIX,
    partition, OBJTYPE, EXPTIME, NUMEXP, snr_r, FIBERSTATUS, dead_arm."""
    rng = np.random.default_rng(int(config["seed"]) + 1)
    desi = stars[stars["in_desi"]]
    programmes = {p.name: p for p in survey_programmes(config)}
    rows = pd.DataFrame({
        "star_id": desi["star_id"].to_numpy(),
        "TARGETID": desi["TARGETID"].to_numpy(),
        "PROGRAM": desi["programme"].to_numpy(),
        "HEALPIX": desi["healpix"].to_numpy(),
        "g_mag": desi["g_mag"].to_numpy(),
    })
    repeat = rng.random(len(rows)) < float(config.get("repeat_fraction", 0.06))
    repeats = rows[repeat].copy()
    names = list(programmes)
    repeats["PROGRAM"] = [names[(names.index(p) + 1) % len(names)] for p in repeats["PROGRAM"]]
    rows = pd.concat([rows, repeats], ignore_index=True)
    n_sky = int(round(float(config.get("sky_fraction", 0.02)) * len(rows)))
    sky = pd.DataFrame({
        "star_id": -1, "TARGETID": 0,
        "PROGRAM": rng.choice(names, n_sky),
        "HEALPIX": rng.choice(np.unique(rows["HEALPIX"]), n_sky),
        "g_mag": np.nan,
    })
    sky["TARGETID"] = 39_628_000_000_000_000 + rng.choice(10**12, n_sky, replace=False)
    rows = pd.concat([rows, sky], ignore_index=True)
    rows["OBJTYPE"] = np.where(rows["star_id"] >= 0, "TGT", "SKY")
    rows["SURVEY"] = "main"
    base_exp = rows["PROGRAM"].map({k: p.exptime_s for k, p in programmes.items()}).to_numpy()
    numexp = rng.integers(1, 4, len(rows))
    rows["NUMEXP"] = numexp.astype(np.int16)
    rows["EXPTIME"] = (base_exp * rng.uniform(0.6, 1.6, len(rows))).astype(np.float32)
    snr = snr_per_pixel(rows["g_mag"].to_numpy(), rows["EXPTIME"].to_numpy(),
                        float(config.get("snr_at_g15", 60.0)))
    rows["snr_r"] = np.clip(snr * rng.lognormal(0.0, 0.15, len(rows)), 3.0, 150.0)
    bad = rng.random(len(rows)) < float(config.get("bad_fiber_fraction", 0.03))
    bits = rng.choice([FIBERSTATUS_BITS["BADPOSITION"], FIBERSTATUS_BITS["BADFIBER"],
                       FIBERSTATUS_BITS["MANYREJECTED"], FIBERSTATUS_BITS["BADAMPZ"]], len(rows))
    rows["FIBERSTATUS"] = np.where(bad, 1 << bits, 0).astype(np.int32)
    rows["dead_arm"] = np.where(bad & (bits == FIBERSTATUS_BITS["BADAMPZ"]), "Z", "")
    rows["partition"] = [partition_id(s, p, h) for s, p, h in
                         zip(rows["SURVEY"], rows["PROGRAM"], rows["HEALPIX"])]
    # order inside each file by TARGETID like DESI; keep a stable order of files
    rows = rows.sort_values(["partition", "TARGETID"], kind="stable").reset_index(drop=True)
    rows["FIBER"] = rows.groupby("partition").cumcount().astype(np.int32)
    return rows


def iter_partitions(observations: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """(partition id, rows) of every coadd file, in a stable order."""
    for pid, rows in observations.groupby("partition", sort=True):
        yield str(pid), rows.reset_index(drop=True)
