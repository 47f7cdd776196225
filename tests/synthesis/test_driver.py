"""Driver logic without running Turbospectrum: plans, inputs, chunk packing."""
import numpy as np
import pandas as pd
import pytest

from desi_abundances.synthesis import driver, library, turbospectrum
from desi_abundances.synthesis.build import BuildPaths


def test_plan_from_population_is_reproducible(tmp_path):
    plan = driver.load_or_create_plan(tmp_path, 5, seed=3, sampler="population")
    again = driver.load_or_create_plan(tmp_path, 99, seed=4, sampler="population")  # reuses the file
    pd.testing.assert_frame_equal(plan, again)
    assert list(plan["star_index"]) == [0, 1, 2, 3, 4]
    for column in ("teff", "logg", "fe_h", "vmic", "mg_fe", "ce_fe"):
        assert column in plan.columns
    fresh = driver.draw_label_plan(5, seed=3)
    assert np.allclose(fresh["teff"], plan["teff"], rtol=1e-4)


def test_star_inputs_and_linelists(tmp_path):
    row = pd.Series({"star_index": 0, "teff": 4000.0, "logg": 1.5, "fe_h": -1.0, "vmic": 1.6,
                     "mg_fe": 0.3, "si_fe": 0.3, "ca_fe": 0.3, "ti_fe": 0.3, "c_fe": -0.2})
    fe_h, alpha_fe, abundances = driver.star_abundance_inputs(row)
    assert fe_h == -1.0 and alpha_fe == pytest.approx(0.3)
    assert abundances[12] == pytest.approx(7.53 - 1.0 + 0.3) and abundances[26] == pytest.approx(6.45)
    paths = BuildPaths(tmp_path)
    assert any("tio" in p for p in driver.linelists_for(paths, 4000.0))
    assert not any("tio" in p for p in driver.linelists_for(paths, 4500.0))


def test_turbospectrum_inputs():
    settings = turbospectrum.SynthesisSettings(5000.0, 5100.0, 0.05)
    babsma = turbospectrum.babsma_input("m", "o", settings, -0.5, 0.2, {26: 6.95, 12: 7.23}, 1.3)
    assert "'MARCS-FILE:' '.false.'" in babsma and "'INDIVIDUAL ABUNDANCES:'  '2'" in babsma
    assert " 12    7.230" in babsma and babsma.rstrip().endswith("1.300")
    bsyn = turbospectrum.bsyn_input("o", "r", settings, -0.5, 0.2, {26: 6.95}, ["a", "b"], True)
    assert "'NFILES   :' '2'\na\nb\n'SPHERICAL:'  'T'" in bsyn and "'METALLICITY:'  '  -0.500'" in bsyn


def test_read_bsyn_spectrum(tmp_path):
    path = tmp_path / "s.txt"
    np.savetxt(path, np.c_[[5000.0, 5000.05], [0.9, 1.0], [2e6, 2.1e6]])
    w, n, a = turbospectrum.read_bsyn_spectrum(path)
    assert list(w) == [5000.0, 5000.05] and n[0] == 0.9
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(turbospectrum.SynthesisError):
        turbospectrum.read_bsyn_spectrum(tmp_path / "empty.txt")


def test_pack_chunks_waits_for_complete_chunks(tmp_path):
    plan = pd.DataFrame({"star_index": np.arange(5), "teff": np.linspace(4000, 6000, 5), "logg": 2.0})
    stars, lib_dir = tmp_path / "stars", tmp_path / "lib"
    w = library.library_wavelength()
    n_cont = library.continuum_wavelength(w).size

    def finish(i):
        library.write_star(stars / f"{i:06d}.npz", i, plan.iloc[i, 1:].to_numpy(float), np.ones(w.size),
                           np.ones(n_cont), np.zeros(5), False)

    finish(0)
    assert driver.pack_chunks(plan, stars, lib_dir, 2) == []
    (stars / "000001.failed").write_text("boom\n")
    finish(2)
    finish(3)
    written = driver.pack_chunks(plan, stars, lib_dir, 2)
    assert [p.name for p in written] == ["chunk_000000.npz", "chunk_000002.npz"]
    first = np.load(written[0])
    assert list(first["star_index"]) == [0]  # the failed star is left out
    assert driver.pack_chunks(plan, stars, lib_dir, 2) == []  # nothing rewritten; row 4 is a partial chunk
    assert driver.write_failures(plan, stars, lib_dir) == 1
    assert "boom" in (lib_dir / "failures.csv").read_text()


def test_a_clean_clone_keeps_the_committed_chunks_and_failures(tmp_path):
    """Committed chunks count as done and committed failures are kept, though build/ is empty."""
    plan = pd.DataFrame({"star_index": np.arange(10)})
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    (chunks / "chunk_000000.npz").write_bytes(b"")  # rows 0-4 packed (content not read)
    assert driver.packed_star_indices(plan, tmp_path, 5) == {0, 1, 2, 3, 4}
    (tmp_path / "failures.csv").write_text("star_index,reason\n3,bsyn crashed\n")
    stars = tmp_path / "stars"
    stars.mkdir()
    (stars / "000007.failed").write_text("timeout\n")
    assert driver.write_failures(plan, stars, tmp_path) == 2
    failures = pd.read_csv(tmp_path / "failures.csv")
    assert failures["star_index"].tolist() == [3, 7]
    assert failures["reason"].tolist() == ["bsyn crashed", "timeout"]
