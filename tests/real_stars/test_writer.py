"""Library spectra -> DESI coadd arms: vacuum wavelengths, coverage, tellurics, noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
from fake_wheel import LINE_AIR

from desi_abundances.desi.grids import arm_wavelength
from desi_abundances.maths.air_vacuum import air_to_vacuum
from desi_abundances.real_stars import writer
from desi_abundances.real_stars.libraries import Library

NODATA = 1 << writer.NODATA_BIT
TELLURIC = 1 << writer.TELLURIC_BIT


def _miles_like(n=2) -> Library:
    wave = 3540.5 + 0.9 * np.arange(4300)
    flux = 1.0 - 0.6 * np.exp(-0.5 * ((wave - LINE_AIR) / 1.0) ** 2)
    labels = pd.DataFrame({"TEFF": [5000.0, np.nan][:n], "LOGG": [4.5, 2.0][:n], "FE_H": [0.0, -1.0][:n]})
    return Library("MILES", np.array([f"m{i:04d}" for i in range(1, n + 1)]), [wave] * n,
                   [flux] * n, labels, False, "test", 2.5)


SETTINGS = {"snr": 50.0, "flux_level": 100.0, "seed": 1, "survey": "special",
            "program": "other", "centre": [150.0, 2.0]}


def test_miles_like_outside_coverage_ivar_zero_and_nodata():
    arms = writer.star_arms(air_to_vacuum(_miles_like().wavelength[0]), _miles_like().flux[0],
                            50.0, 100.0, np.random.default_rng(0))
    z = arms["Z"]
    assert (z["ivar"] == 0).all() and (z["mask"] & NODATA).all() and (z["flux"] == 0).all()
    red = arm_wavelength("R")
    beyond = red > air_to_vacuum(np.array([3540.5 + 0.9 * 4299]))[0]
    assert (arms["R"]["ivar"][beyond] == 0).all() and (arms["R"]["mask"][beyond] & NODATA).all()
    assert (arms["R"]["ivar"][~beyond] > 0).all() and (arms["R"]["mask"][~beyond] == 0).all()
    assert (arms["B"]["mask"] == 0).all()                              # 3600-5800 covered


def test_air_to_vacuum_is_applied():
    library = _miles_like()
    flux = library.flux[0]
    arms = writer.star_arms(writer.vacuum_wavelength(library, 0), flux, 1e6, 100.0,
                            np.random.default_rng(0))                   # ~noiseless
    blue = arm_wavelength("B")
    found = blue[np.argmin(arms["B"]["flux"])]
    expected = air_to_vacuum(np.array([LINE_AIR]))[0]                   # 5001.39 A
    assert abs(found - expected) <= 0.4 and abs(found - LINE_AIR) > 1.0


def test_noise_matches_the_snr_and_ivar():
    wave = np.linspace(3500.0, 9900.0, 8000)
    flat = np.ones(wave.size)
    arms = writer.star_arms(wave, flat, 50.0, 100.0, np.random.default_rng(3))
    flux = np.concatenate([a["flux"] for a in arms.values()])
    ivar = np.concatenate([a["ivar"] for a in arms.values()])
    pulls = (flux - 100.0) * np.sqrt(ivar)
    assert abs(np.std(pulls) - 1.0) < 0.03                              # IVAR matches the noise
    assert abs(np.median(flux * np.sqrt(ivar)) - 50.0) < 0.5            # S/N per pixel 50
    again = writer.star_arms(wave, flat, 50.0, 100.0, np.random.default_rng(3))
    assert np.array_equal(again["B"]["flux"], arms["B"]["flux"])        # seeded


def test_stelib_like_zero_flux_and_tellurics_masked():
    wave = 3200.0 + np.arange(6700.0)
    flux = np.full(wave.size, 3e-14)
    flux[:500] = 0.0                                                    # no data below 3700 A
    arms = writer.star_arms(wave, flux, 50.0, 100.0, np.random.default_rng(0),
                            writer.DEFAULT_TELLURIC_BANDS)
    blue, red = arm_wavelength("B"), arm_wavelength("R")
    assert (arms["B"]["mask"][blue < 3699] & NODATA).all() and (arms["B"]["ivar"][blue < 3699] == 0).all()
    o2 = (red > 7600) & (red < 7700)
    assert (arms["R"]["ivar"][o2] == 0).all() and (arms["R"]["mask"][o2] & TELLURIC).all()
    assert not (arms["R"]["mask"][o2] & NODATA).any()                   # covered, but telluric
    clean = (red > 6000) & (red < 6800)
    assert (arms["R"]["ivar"][clean] > 0).all() and (arms["R"]["mask"][clean] == 0).all()


def test_library_coadds_catalogue_and_reference_table():
    library = _miles_like()
    coadds, stars = writer.library_coadds(library, SETTINGS, np.random.default_rng(0))
    (partition, coadd), = coadds.items()
    assert partition.startswith("special/other/") and partition.endswith(f"-{stars['HEALPIX'][0]}")
    assert coadd.header["REAL"][0] is True and coadd.header["LIBFWHM"][0] == 2.5
    assert coadd.header["MOCK"][0] is False and coadd.header["WAVEORIG"][0] == "air->vacuum"
    assert (coadd.fibermap["MWS_TARGET"] > 0).all() and (coadd.fibermap["COADD_FIBERSTATUS"] == 0).all()
    mws = writer.mws_catalogue(stars, coadds)
    assert (mws["RVTAB"]["VRAD"] == 0).all() and mws["RVTAB"]["SUCCESS"].all()
    assert mws["FIBERMAP"]["TARGETID"].tolist() == mws["RVTAB"]["TARGETID"].tolist()
    table = writer.reference_table(library, stars, {"teff": 70.0, "logg": 0.15, "fe_h": 0.08})
    assert table["REFERENCE_ID"].tolist() == ["MILES_m0001", "MILES_m0002"]
    assert table["TEFF"][0] == 5000.0 and np.isnan(table["TEFF_ERR"][1])  # no label, no error
    assert (table["TARGETID"] == stars["TARGETID"]).all()
