"""Choosing MARCS corners, alpha variants and interpolator inputs (no Fortran needed)."""
import itertools

import pandas as pd
import pytest

from desi_abundances.synthesis import atmospheres as at

NAME = "s4750_g+2.5_m1.0_t02_x3_z-0.50_a+0.00_c+0.00_n+0.00_o+0.00_r+0.00_s+0.00"


def test_parse_model_name():
    p = at.parse_model_name(NAME)
    assert (p["geometry"], p["teff"], p["logg"], p["metal"], p["alpha"]) == ("s", 4750.0, 2.5, -0.5, 0.0)
    with pytest.raises(at.AtmosphereGridError):
        at.parse_model_name("not_a_model")


def test_split_concatenated_models():
    lines = [NAME + "\n", "  4750. Teff\n", "  1.0 x\n", NAME.replace("s4750", "s5000") + "\n", " 5000.\n"]
    models = list(at.split_concatenated_models(lines))
    assert [m[0] for m in models] == [NAME, NAME.replace("s4750", "s5000")]
    assert models[0][1] == ["  4750. Teff\n", "  1.0 x\n"]


@pytest.mark.parametrize(
    "value, expected",
    [(4800.0, (4750.0, 5000.0)), (4750.0, (4750.0, 5000.0)), (5250.0, (5000.0, 5250.0)), (4500.0, (4500.0, 4750.0))],
)
def test_bracket(value, expected):
    assert at.bracket(value, [4500.0, 4750.0, 5000.0, 5250.0], "teff") == expected


def test_bracket_outside_raises():
    with pytest.raises(at.AtmosphereGridError, match="teff"):
        at.bracket(9000.0, [4500.0, 4750.0], "teff")


def test_choose_alpha_variant():
    assert at.choose_alpha_variant(0.32, [0.0, 0.25, 0.5]) == 0.25
    assert at.choose_alpha_variant(-0.4, [0.0, 0.25]) == 0.0
    assert at.choose_alpha_variant(float("nan"), [0.0, 0.4]) == 0.0


def _grid(alphas=(0.0,), drop=()):
    rows = []
    for alpha, teff, logg, metal in itertools.product(alphas, (4500.0, 4750.0, 5000.0), (2.5, 3.0, 3.5), (-0.5, -0.25, 0.0)):
        if (alpha, teff, logg, metal) in drop:
            continue
        geometry = "s" if logg <= 3.0 else "p"
        rows.append({"filename": f"{geometry}{teff:.0f}_g{logg:+.1f}_z{metal:+.2f}_a{alpha:+.2f}", "geometry": geometry,
                     "teff": teff, "logg": logg, "metal": metal, "alpha": alpha, "carbon": 0.0, "nitrogen": 0.0})
    return pd.DataFrame(rows)


def test_choose_corners_order_and_geometry():
    corners = at.choose_corners(_grid(), 4800.0, 2.7, -0.3, 0.0)
    assert corners.teff == (4750.0, 5000.0) and corners.logg == (2.5, 3.0) and corners.metal == (-0.5, -0.25)
    # [M/H] fastest, then log g, then Teff (interpol_modeles' order)
    assert corners.filenames[0].startswith("s4750_g+2.5_z-0.50")
    assert corners.filenames[1].startswith("s4750_g+2.5_z-0.25")
    assert corners.filenames[2].startswith("s4750_g+3.0_z-0.50")
    assert corners.filenames[4].startswith("s5000_g+2.5_z-0.50")
    assert corners.filenames[7].startswith("s5000_g+3.0_z-0.25")
    assert corners.spherical
    mixed = at.choose_corners(_grid(), 4800.0, 3.2, -0.3, 0.0)
    assert mixed.logg == (3.0, 3.5) and not mixed.spherical


def test_alpha_variant_follows_alpha_fe_and_falls_back():
    grid = _grid(alphas=(0.0, 0.25))
    assert at.choose_corners(grid, 4800.0, 2.7, -0.3, 0.3).alpha == 0.25
    assert at.choose_corners(grid, 4800.0, 2.7, -0.3, 0.05).alpha == 0.0
    holey = _grid(alphas=(0.0, 0.25), drop={(0.25, 5000.0, 3.0, -0.25)})
    assert at.choose_corners(holey, 4800.0, 2.7, -0.3, 0.3).alpha == 0.0  # incomplete cube skipped


def test_missing_corner_raises():
    with pytest.raises(at.AtmosphereGridError, match="missing corners"):
        at.choose_corners(_grid(drop={(0.0, 5000.0, 3.0, -0.25)}), 4800.0, 2.7, -0.3, 0.0)


def test_inside_cube_and_stdin():
    corners = at.choose_corners(_grid(), 4750.0, 2.5, -0.5, 0.0)
    teff, logg, metal = at.inside_cube(corners, 4750.0, 2.5, -0.5)
    assert corners.teff[0] < teff < 4751.0 and 2.5 < logg < 2.51 and -0.5 < metal < -0.49
    stdin = at.interpolator_stdin([f"/m/{f}" for f in corners.filenames], "/o/out", teff, logg, metal).splitlines()
    assert len(stdin) == 16 and stdin[0] == f"'/m/{corners.filenames[0]}'" and stdin[8] == "'/o/out'"
    assert stdin[13:15] == [".false.", ".false."]
    with pytest.raises(ValueError):
        at.interpolator_stdin(["a"] * 7, "o", 1, 1, 1)


def test_as_plane_parallel():
    assert at.as_plane_parallel("'sphINTERPOL'  56 5000.\n1 2").startswith("'ppINTERPOL'")


def test_relabel_plane_parallel():
    text = NAME + "\n  4750. Teff\n"
    assert at.relabel_plane_parallel(text).startswith("p4750_g+2.5") and at.relabel_plane_parallel(text)[1:] == text[1:]
    with pytest.raises(at.AtmosphereGridError):
        at.relabel_plane_parallel("p4750_g+4.0 ...")
