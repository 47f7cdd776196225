"""Emulator: network, save/load round trip, spectral-model protocol, training on a toy."""
import numpy as np
import pandas as pd
import pytest
import torch

from desi_abundances.emulator import EmulatorSpectralModel, PayneNetwork, load_emulator, save_emulator
from desi_abundances.emulator import data as emu_data
from desi_abundances.emulator.train import TrainingSettings, meets_criterion, train_network
from desi_abundances.spectral_models import SpectralModel
from desi_abundances.synthesis.library import library_wavelength

RANGE = [5000.0, 5010.0]
R = 2000.0


def _tiny_network(n_labels=3):
    n_pix = library_wavelength(R, tuple(RANGE)).size
    lo, hi = np.array([4000.0, 1.0, -2.0][:n_labels]), np.array([6000.0, 5.0, 0.5][:n_labels])
    return PayneNetwork(lo, hi, n_pix, hidden=(8, 8))


def _save(tmp_path, network, names=("teff", "logg", "fe_h")):
    path = tmp_path / "emu.safetensors"
    save_emulator(path, network, {"label_names": list(names), "hidden": [8, 8],
                                  "resolving_power": R, "wavelength_range": RANGE,
                                  "library_version": {"n_spectra": 0}})
    return path


def test_scaler_maps_range_to_half_unit():
    net = _tiny_network()
    scaled = net.scaler(torch.tensor([[4000.0, 1.0, -2.0], [6000.0, 5.0, 0.5]]))
    assert torch.allclose(scaled, torch.tensor([[-0.5] * 3, [0.5] * 3]))


def test_round_trip_and_forward_shape(tmp_path):
    torch.manual_seed(0)
    net = _tiny_network()
    path = _save(tmp_path, net)
    loaded, meta = load_emulator(path)
    x = torch.tensor([[5000.0, 3.0, -0.5], [4500.0, 2.0, 0.1]])
    assert torch.allclose(net(x), loaded(x))
    assert meta["label_names"] == ["teff", "logg", "fe_h"] and meta["label_max"][0] == 6000.0
    assert loaded(x).shape == (2, net.n_pixels)


def test_spectral_model_protocol(tmp_path):
    torch.manual_seed(0)
    path = _save(tmp_path, _tiny_network())
    model = EmulatorSpectralModel(path)
    assert model.wavelength.size == model.network.n_pixels and model.resolving_power == R
    assert model.grid_resolution == pytest.approx(2 * R)
    labels = pd.DataFrame({"teff": [5000.0, 9000.0], "logg": [3.0, 3.0], "fe_h": [-0.5, -0.5],
                           "mg_fe": [0.1, 0.2]})  # extra columns ignored
    flux = model.normalised_flux(labels)
    assert flux.shape == (2, model.wavelength.size) and flux.dtype == np.float32
    assert flux.min() >= 0.0 and flux.max() <= 1.0
    assert model.last_clipped == 1  # 9000 K clipped to the 6000 K training edge
    edge = model.normalised_flux(labels.assign(teff=[5000.0, 6000.0]))
    assert np.allclose(flux, edge)
    with pytest.raises(KeyError, match="logg"):
        model.normalised_flux(labels.drop(columns="logg"))
    with pytest.raises(ValueError, match="fe_h"):
        model.normalised_flux(labels.assign(fe_h=[np.nan, 0.0]))
    assert isinstance(model, SpectralModel)


def test_save_rejects_inconsistent_metadata(tmp_path):
    with pytest.raises(ValueError, match="label names"):
        save_emulator(tmp_path / "x.safetensors", _tiny_network(),
                      {"label_names": ["teff"], "hidden": [8, 8], "resolving_power": R,
                       "wavelength_range": RANGE})
    with pytest.raises(FileNotFoundError):
        load_emulator(tmp_path / "missing.safetensors")


def test_training_fits_a_smooth_toy():
    rng = np.random.default_rng(1)
    x = rng.uniform([4000, 1, -2], [6000, 5, 0.5], size=(200, 3)).astype(np.float32)
    centre = np.linspace(0, 1, 30)
    depth = 0.3 + 0.2 * (x[:, 2:3] + 2) / 2.5 - 0.1 * (x[:, 0:1] - 5000) / 1000
    y = (1 - depth * np.exp(-0.5 * ((centre - 0.5) / 0.1) ** 2)).astype(np.float32)
    settings = TrainingSettings(hidden=(16, 16), max_epochs=500, patience=200, learning_rate=1e-2)
    net, fit = train_network(x[:150], y[:150], x[150:], y[150:], settings)
    with torch.no_grad():
        err = np.abs(net(torch.from_numpy(x[150:])).numpy() - y[150:])
    baseline = np.abs(y[:150].mean(0) - y[150:])
    assert np.median(err) < 0.2 * np.median(baseline)
    assert fit["best_epoch"] > 0


def test_degrade_flat_stays_flat_and_grid_sizes():
    from desi_abundances.synthesis.library import library_wavelength as lw
    flux = np.ones((2, lw().size))
    out = emu_data.degrade_library_flux(flux, 20000.0, 7000.0)
    assert out.shape == (2, emu_data.emulator_wavelength().size)
    assert np.allclose(out, 1.0)
    with pytest.raises(ValueError):
        emu_data.difference_kernel_sigma(1e-5, 5000.0, 7000.0)


def test_split_is_fixed_by_star_index():
    split = emu_data.split_by_star_index(np.arange(25))
    assert split[0] == "test" and split[11] == "validation" and split[12] == "train"
    assert (split == "test").sum() == 3


def test_flux_error_summary_and_criterion():
    w = np.array([4000.0, 6000.0, 8000.0])
    truth = np.ones((2, 3))
    predicted = truth + np.array([[0.001, 0.02, 0.003], [0.001, 0.02, 0.003]])
    s = emu_data.flux_error_summary(predicted, truth, w)
    assert s["B"]["median_abs_error"] == pytest.approx(0.001)
    assert s["R"]["median_abs_error"] == pytest.approx(0.02)
    assert not meets_criterion(s)  # R arm median 2% > 1%
    assert meets_criterion({k: {"median_abs_error": 0.001, "p95_abs_error": 0.01} for k in "BRZ"})


def test_train_emulator_end_to_end_on_a_tiny_library(tmp_path):
    """Chunks -> emulator grid -> training -> held-out report -> weights a model can load."""
    import json

    from desi_abundances.emulator.train import train_emulator
    from desi_abundances.synthesis import library as lib

    w = lib.library_wavelength()
    n_cont = lib.continuum_wavelength(w).size
    names = ["teff", "logg", "fe_h", "ci_fe"]
    rng = np.random.default_rng(0)
    files = []
    for i in range(20):
        labels = np.array([rng.uniform(4000, 6000), rng.uniform(1, 5), rng.uniform(-1, 0.3), 0.0])
        depth = 0.2 + 0.1 * labels[2]
        flux = 1 - depth * np.exp(-0.5 * ((w - 5183.6) / 0.5) ** 2)
        f = tmp_path / "stars" / f"{i:06d}.npz"
        lib.write_star(f, i, labels, flux, np.ones(n_cont), np.zeros(5), False)
        files.append(f)
    library_dir = tmp_path / "lib"
    lib.write_chunk(library_dir / "chunks" / "chunk_000000.npz", files, names)
    (library_dir / "provenance.json").write_text(json.dumps({"wavelength_grid": {
        "resolving_power": lib.LIBRARY_RESOLVING_POWER,
        "range_vacuum_angstrom": list(lib.LIBRARY_WAVELENGTH_RANGE)}}))
    out = tmp_path / "emu" / "payne_emulator.safetensors"
    report = train_emulator(library_dir, out, TrainingSettings(hidden=(4,), max_epochs=20, patience=10))
    assert report["n_spectra"] == {"train": 16, "validation": 2, "test": 2}
    assert set(report["test_flux_error"]) == {"B", "R", "Z"}
    desi = report["test_flux_error_desi_resolution"]
    assert desi is None or set(desi) == {"B", "R", "Z"}
    model = EmulatorSpectralModel(out)
    assert model.label_names == ["teff", "logg", "fe_h"]  # ci_fe is not an input
    assert model.metadata["library_version"]["n_spectra"] == 20
    assert "chunk_000000.npz" in model.metadata["library_version"]["chunks"]
    assert json.loads(out.with_suffix(".json").read_text())["report"]["n_spectra"]["test"] == 2
