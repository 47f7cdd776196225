"""Kinematic halo selection, the clean-star rule and the alpha-sequence split."""
import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord

from desi_abundances.galactic.halo import (
    alpha_sequence_of,
    gaia_by_targetid,
    galactocentric_frame,
    galactocentric_velocities,
    kinematic_halo,
    lsr_speed_kms,
    one_row_per_star,
    precise_counts,
    recovery_and_contamination,
    sequence_split_line,
    usable_astrometry,
)

# a star 1 kpc towards the Galactic north pole (ICRS position of b = +90 deg)
NGP_RA, NGP_DEC = 192.85948, 27.12825


def test_a_star_moving_with_the_sun_sits_near_the_lsr():
    """Zero heliocentric motion: v_phi = the Sun's 245.6 km/s, i.e. 12.24 km/s ahead of the LSR."""
    v = galactocentric_velocities([NGP_RA], [NGP_DEC], [1.0], [0.0], [0.0], [0.0])
    assert v["v_phi"].iloc[0] == pytest.approx(245.6, abs=1.0)
    assert v["toomre_v"].iloc[0] == pytest.approx(12.24, abs=1.0)
    assert v["z_kpc"].iloc[0] == pytest.approx(1.02, abs=0.01)
    assert lsr_speed_kms() == pytest.approx(233.36)


def test_a_star_at_rest_in_the_galaxy_is_halo():
    """A star 1 kpc above the Sun at rest in the Galactocentric frame (no rotation):
    |v - v_LSR| ~ 233 km/s > 220 km/s; a star moving with the Sun is not halo."""
    frame = galactocentric_frame()
    rest = SkyCoord(x=-8.122 * u.kpc, y=0 * u.kpc, z=1.0 * u.kpc, v_x=0 * u.km / u.s,
                    v_y=0 * u.km / u.s, v_z=0 * u.km / u.s, frame=frame).icrs
    v = galactocentric_velocities([rest.ra.deg], [rest.dec.deg], [1.0 / rest.distance.to_value(u.kpc)],
                                  [rest.pm_ra_cosdec.to_value(u.mas / u.yr)],
                                  [rest.pm_dec.to_value(u.mas / u.yr)],
                                  [rest.radial_velocity.to_value(u.km / u.s)])
    assert abs(v["v_phi"].iloc[0]) < 1.0 and abs(v["v_z"].iloc[0]) < 1.0
    assert v["speed_lsr"].iloc[0] == pytest.approx(233.36, abs=1.0)
    assert kinematic_halo(v)[0]
    disk = galactocentric_velocities([NGP_RA], [NGP_DEC], [1.0], [0.0], [0.0], [0.0])
    assert not kinematic_halo(disk)[0]


def test_one_row_per_star_keeps_primary_unflagged_rows():
    vac = pd.DataFrame({"TARGETID": [1, 1, 2, 3], "PRIMARY": [True, False, True, True],
                        "FLAG": [0, 0, 1, 0], "SNR": [30.0, 50.0, 40.0, 12.0]})
    assert one_row_per_star(vac)["TARGETID"].tolist() == [1, 3]
    assert one_row_per_star(vac, min_snr=20)["TARGETID"].tolist() == [1]


def test_gaia_by_targetid_and_usable_astrometry():
    mws = {"RVTAB": pd.DataFrame({"TARGETID": [5, 5, 6, 7]}),
           "GAIA": pd.DataFrame({"PARALLAX": [0.5, 0.5, -0.1, 0.2], "PMRA": [1.0, 1.0, 2.0, np.nan],
                                 "PMDEC": [0.0, 0.0, 0.0, 0.0]})}
    gaia = gaia_by_targetid(mws)
    assert gaia["TARGETID"].tolist() == [5, 6, 7]
    assert usable_astrometry(gaia).tolist() == [True, False, False]
    gaia["PARALLAX_ERROR"] = [0.2, 0.01, 0.01]  # 0.5/0.2 = 2.5 < 5
    assert usable_astrometry(gaia).tolist() == [False, False, False]


def test_sequence_split_and_counts():
    assert sequence_split_line([-1.0])[0] == pytest.approx(0.18)
    seq = alpha_sequence_of([-1.0, -1.0, np.nan], [0.30, 0.05, 0.2])
    assert seq.tolist() == ["high", "low", ""]
    stars = pd.DataFrame({"MG_FE_ERR": [0.05, 0.2, 0.09], "FE_H_ERR": [0.01, 0.02, 0.03]})
    counts = precise_counts(stars, ["FE_H", "MG_FE", "CA_FE"])
    assert counts.to_dict() == {"FE_H": 3, "MG_FE": 2}


def test_recovery_and_contamination():
    out = recovery_and_contamination([True, True, False, False], [True, False, True, False])
    assert out["recovered_fraction"] == 0.5 and out["contamination"] == 0.5
    assert np.isnan(recovery_and_contamination([False], [False])["recovered_fraction"])
