"""Library grid, air/vacuum, resolution degradation, chunk files."""
import json

import numpy as np
import pytest

from desi_abundances.synthesis import library as lib


def test_grid_covers_desi_and_is_log_uniform():
    w = lib.library_wavelength()
    assert w[0] == 3550.0 and 9899.0 < w[-1] <= 9900.0
    steps = np.diff(np.log(w))
    assert np.allclose(steps, 1 / (2 * lib.LIBRARY_RESOLVING_POWER))
    cw = lib.continuum_wavelength(w)
    assert cw[0] == w[0] and cw[-1] == w[-1]


def test_degrade_keeps_flat_and_equivalent_width():
    wave = np.arange(4990.0, 5010.0, 0.01)
    flux = 1 - 0.8 * np.exp(-0.5 * ((wave - 5000.0) / 0.02) ** 2)
    grid = lib.library_wavelength(20000.0, (4995.0, 5005.0))
    out = lib.degrade_to_grid(wave, flux, grid, 20000.0)
    assert out[0] == pytest.approx(1.0, abs=1e-6) and out[-1] == pytest.approx(1.0, abs=1e-6)
    ew_in = np.trapezoid(1 - flux, wave)
    ew_out = np.trapezoid(1 - out, grid)
    assert ew_out == pytest.approx(ew_in, rel=0.02)
    assert out.min() > flux.min()  # broadened, shallower
    with pytest.raises(ValueError):
        lib.degrade_to_grid(wave, flux, lib.library_wavelength(), 20000.0)


def test_chunk_round_trip_and_no_overwrite(tmp_path):
    w = lib.library_wavelength()
    n_cont = lib.continuum_wavelength(w).size
    files = []
    for i in range(3):
        f = tmp_path / "stars" / f"{i:06d}.npz"
        lib.write_star(f, i, np.array([5000.0 + i, 2.5, -0.1]), np.full(w.size, 0.9),
                       np.full(n_cont, 1e6), np.array([5000.0, 2.5, -0.1, 0.0, 1.0]), tio=False)
        files.append(f)
    (tmp_path / "provenance.json").write_text(json.dumps(
        {"wavelength_grid": {"resolving_power": lib.LIBRARY_RESOLVING_POWER,
                             "range_vacuum_angstrom": list(lib.LIBRARY_WAVELENGTH_RANGE)}}))
    chunk = tmp_path / "chunks" / "chunk_000000.npz"
    assert lib.write_chunk(chunk, files, ["teff", "logg", "fe_h"]) == 3
    with pytest.raises(FileExistsError):
        lib.write_chunk(chunk, files, ["teff", "logg", "fe_h"])
    data = lib.read_library(tmp_path)
    assert data["flux"].shape == (3, w.size) and data["label_names"] == ["teff", "logg", "fe_h"]
    assert np.allclose(data["flux"], 0.9, atol=1e-3) and list(data["star_index"]) == [0, 1, 2]
    assert data["labels"][2, 0] == 5002.0


def test_read_library_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="provenance"):
        lib.read_library(tmp_path)
