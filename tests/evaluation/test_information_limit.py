"""The information limit: finite-difference and autograd Jacobians, exact bounds on linear
toy models, "no information" labels, S/N ranges, and the evaluation node on tiny inputs."""
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.evaluation import cramer_rao as cr
from desi_abundances.evaluation import information_bounds as ib
from desi_abundances.evaluation import information_limit as il
from desi_abundances.evaluation import jacobians as jac
from desi_abundances.evaluation.split import split_spectra
from desi_abundances.pipelines.evaluation import nodes
from desi_abundances.spectra import Spectra
from desi_abundances.spectral_models.analytic import log_uniform_grid

RNG = np.random.default_rng(7)


# --- toy models ------------------------------------------------------------------------------
def gaussian_line(labels: pd.DataFrame, wavelength: np.ndarray) -> np.ndarray:
    """1 - depth exp(-(w - centre)^2 / 2 width^2): a non-linear model with known derivatives."""
    depth = labels["depth"].to_numpy()[:, None]
    centre = labels["centre"].to_numpy()[:, None]
    width = labels["width"].to_numpy()[:, None]
    return 1.0 - depth * np.exp(-0.5 * ((wavelength[None] - centre) / width) ** 2)


def test_finite_difference_jacobian_matches_the_analytic_derivative():
    wavelength = np.linspace(5000.0, 5010.0, 201)
    labels = pd.DataFrame({"depth": [0.3, 0.6], "centre": [5004.0, 5006.5], "width": [0.5, 0.8]})
    names = ["depth", "centre", "width"]
    jacobian = jac.finite_difference_jacobian(lambda f: gaussian_line(f, wavelength), labels,
                                              names, np.array([1e-4, 1e-4, 1e-4]))
    assert jacobian.shape == (2, wavelength.size, 3)
    for s, row in labels.iterrows():
        x = (wavelength - row.centre) / row.width
        profile = np.exp(-0.5 * x**2)
        exact = np.column_stack([-profile, -row.depth * profile * x / row.width,
                                 -row.depth * profile * x**2 / row.width])
        assert np.allclose(jacobian[s], exact, atol=1e-6)


MODEL_WAVE = log_uniform_grid(5000.0, 5100.0, 20_000.0)
PIXELS = 5010.0 + 0.8 * np.arange(100)
LABELS3 = ["teff", "logg", "fe_h"]
A = RNG.normal(scale=0.01, size=(MODEL_WAVE.size, 4))
A[:, 0] *= 1e-3  # per K
A[:, 3] = 0.0  # the model does not respond to the fourth label


def linear_flux(frame: pd.DataFrame) -> np.ndarray:
    return 1.0 + frame[LABELS3 + ["p_fe"]].to_numpy(float) @ A.T


@dataclass
class LinearProvider:
    """A FluxJacobianProvider built like the analytic one, on a linear model."""

    wavelength: np.ndarray
    name: str = "linear"
    model_labels: tuple = ("teff", "logg", "fe_h", "p_fe")

    def __post_init__(self):
        self.projection = jac.lattice_projection(MODEL_WAVE, 20_000.0, self.wavelength)

    def jacobian(self, labels, names):
        steps = jac.finite_difference_steps(names)
        model_jac = jac.finite_difference_jacobian(linear_flux, labels, names, steps)
        return cr.project_jacobian(model_jac, self.projection)


def test_bound_on_a_linear_model_is_exact_and_zero_columns_are_infinite():
    provider = LinearProvider(PIXELS)
    labels = pd.DataFrame({"teff": [4800.0, 5600.0], "logg": [2.5, 4.3],
                           "fe_h": [-0.2, 0.1], "p_fe": [0.0, 0.1]})
    ivar = RNG.uniform(400, 2500, size=(2, PIXELS.size))
    ivar[1, :30] = 0.0  # masked pixels carry no information
    bounds = ib.cramer_rao_bounds(provider, labels, ivar, ["teff", "logg", "fe_h", "p_fe"])
    projected = np.asarray(provider.projection @ A[:, :3])
    for s in range(2):
        exact = np.sqrt(np.diag(np.linalg.inv(projected.T @ (ivar[s][:, None] * projected))))
        assert np.allclose(bounds[s, :3], exact, rtol=1e-6)
    assert np.all(np.isinf(bounds[:, 3]))


def test_incomplete_labels_give_nan_bounds():
    provider = LinearProvider(PIXELS)
    labels = pd.DataFrame({"teff": [4800.0, np.nan], "logg": [2.5, 4.3], "fe_h": [-0.2, 0.1],
                           "p_fe": [0.0, 0.0]})
    bounds = ib.cramer_rao_bounds(provider, labels, np.full((2, PIXELS.size), 100.0), LABELS3)
    assert np.all(np.isfinite(bounds[0])) and np.all(np.isnan(bounds[1]))


class LinearEmulator:
    """The attributes of emulator.EmulatorSpectralModel that the provider uses."""

    label_names = ["teff", "logg", "fe_h"]
    wavelength = MODEL_WAVE
    resolving_power = 20_000.0

    def label_array(self, frame):
        return frame[self.label_names].to_numpy(np.float32)

    def flux_torch(self, labels):
        return 1.0 + labels @ torch.as_tensor(A[:, :3].T, dtype=labels.dtype)


def test_autograd_provider_agrees_with_finite_differences():
    labels = pd.DataFrame({"teff": [5000.0], "logg": [3.0], "fe_h": [0.0], "p_fe": [0.0]})
    autograd = jac.EmulatorJacobianProvider(LinearEmulator(), PIXELS)
    names = ["teff", "logg", "fe_h", "p_fe"]  # p_fe: not an emulator input -> zero column
    jac_ad = autograd.jacobian(labels, names)
    jac_fd = LinearProvider(PIXELS).jacobian(labels, names)
    assert np.allclose(jac_ad[..., :3], jac_fd[..., :3], rtol=1e-4, atol=1e-9)
    assert np.all(jac_ad[..., 3] == 0)


def test_evaluation_labels_fill_what_the_table_lacks():
    reference = pd.DataFrame({"teff": [4700.0, 5800.0], "logg": [2.5, 4.4],
                              "fe_h": [0.0, -0.5], "mg_fe": [0.1, np.nan]})
    frame = jac.evaluation_labels(reference, ["teff", "logg", "fe_h", "vmic", "mg_fe", "ca_fe"])
    # vmic: the population's mean relation (2.24 - 0.3 logg for giants, ~1 km/s for dwarfs)
    assert frame.loc[0, "vmic"] == pytest.approx(2.24 - 0.3 * 2.5)
    assert frame.loc[1, "vmic"] == pytest.approx(1.0 + 4e-4 * 300.0)
    assert frame.loc[1, "mg_fe"] == 0.1  # median of the stars that have it
    assert np.all(frame["ca_fe"] == 0.0)  # nobody has it


def test_snr_ranges_and_their_names():
    windows = ib.snr_windows([0.0, 20.0, 1.0e6], {"snr_20": [15.0, 25.0]})
    assert [w["name"] for w in windows] == ["snr_0_20", "snr_20_up", "snr_20"]
    assert [il.range_text(w) for w in windows] == ["0-20", "20+", "15-25"]
    with pytest.raises(ValueError, match="snr_20"):
        ib.snr_windows([0.0, 1.0], {"snr_20": [25.0, 15.0]})


def test_ratios_report_no_information_and_scatter_over_bound():
    n = 200
    snr = np.r_[np.full(100, 20.0), np.full(100, 50.0)]
    truth = RNG.normal(0.0, 0.2, n)
    table = pd.DataFrame({"TARGETID": np.arange(n), "snr": snr,
                          "apogee_fe_h": truth, "apogee_fe_h_err": np.full(n, 0.03),
                          "network_fe_h": truth + RNG.normal(0.0, 0.1, n),
                          "apogee_p_fe": truth, "apogee_p_fe_err": np.full(n, 0.1),
                          "network_p_fe": truth + RNG.normal(0.0, 0.1, n)})
    bounds = pd.DataFrame({"TARGETID": np.arange(n), "snr": snr,
                           "fe_h_crb": np.where(snr < 30, 0.05, 0.02), "p_fe_crb": np.inf})
    windows = ib.snr_windows([0.0, 30.0, 1e6])
    ratios = ib.information_ratios(table, bounds, ["fe_h", "p_fe"], windows, min_stars=10)
    low = ratios["fe_h"]["by_snr"]["snr_0_30"]
    assert low["status"] == "ok" and low["median_crb"] == pytest.approx(0.05)
    assert low["ratio"] == pytest.approx(low["network_robust_std"] / 0.05)
    assert low["ratio"] == pytest.approx(2.0, rel=0.25)  # scatter 0.1 over bound 0.05
    lo, hi = low["ratio_68"]  # bootstrap interval of the scatter, in units of the bound
    assert lo < low["ratio"] < hi and hi - lo < 0.5 * low["ratio"]
    assert low["network_scatter_net_of_apogee"] == pytest.approx(
        np.sqrt(low["network_robust_std"] ** 2 - 0.03**2))
    assert ratios["p_fe"]["no_information"]
    assert all(v["status"] == ib.NO_INFORMATION for v in ratios["p_fe"]["by_snr"].values())
    flat = ib.mlflow_metrics(ratios, windows)
    assert "network/crb_ratio/fe_h.snr_bin_30-up" in flat and not any("p_fe" in k for k in flat)


# --- the evaluation node on tiny inputs ------------------------------------------------------
LABELS = ["teff", "logg", "fe_h", "mg_fe", "p_fe"]


def _tiny_evaluation(n=12):
    wavelength = brz_wavelength()
    snr = np.linspace(15.0, 60.0, n)
    meta = pd.DataFrame({"TARGETID": np.arange(100, 100 + n), "snr": snr,
                         "teff": RNG.uniform(4500, 6000, n), "logg": RNG.uniform(2.0, 4.5, n),
                         "fe_h": RNG.uniform(-1.0, 0.2, n), "mg_fe": RNG.uniform(0.0, 0.3, n),
                         "p_fe": np.nan})
    for label in LABELS:
        meta[f"{label}_err"] = 0.02
    meta.attrs["is_mock"] = True
    ivar = (np.ones((n, wavelength.size)) * snr[:, None] ** 2).astype(np.float32)
    mask = np.zeros(ivar.shape, bool)
    mask[:, :500] = True
    ivar[mask] = 0.0
    spectra = Spectra(wavelength=wavelength, flux=np.ones(ivar.shape, np.float32), ivar=ivar,
                      mask=mask, meta=meta)
    split = pd.DataFrame({"TARGETID": meta["TARGETID"], "split": "test"})
    table = pd.DataFrame({"TARGETID": meta["TARGETID"], "snr": snr})
    for label in LABELS:
        table[f"apogee_{label}"] = meta[label]
        table[f"apogee_{label}_err"] = 0.02
        table[f"network_{label}"] = meta[label] + RNG.normal(0, 0.1, n)
    settings = {"seed": 1, "snr_bin_edges": [0.0, 30.0, 1e6],
                "cramer_rao": {"enabled": True, "spectral_model": "analytic", "min_stars": 3,
                               "max_stars": 8, "nuisance_labels": ["vmic"],
                               "snr_windows": {"snr_20": [15.0, 25.0]}}}
    return spectra, split, table, settings


def test_node_writes_its_outputs_on_tiny_inputs():
    spectra, split, table, settings = _tiny_evaluation()
    settings["cramer_rao"]["spectral_model"] = "mock_survey"
    test = split_spectra(spectra, split)[2]
    report, bounds, flat, figure = nodes.compute_information_limit(
        test, table, LABELS, settings, True, {"spectral_model": "analytic"})
    json.dumps(report, allow_nan=False)
    assert report["spectral_model"] == "analytic" and report["spectral_model_warning"] is None
    assert report["status"] == "ok" and report["n_bounded"] == 8  # max_stars
    assert report["labels_without_information"] == ["p_fe"]  # no P lines in the analytic model
    assert list(bounds.columns) == ["TARGETID", "snr"] + [f"{label}_crb" for label in LABELS]
    assert np.all(np.isinf(bounds["p_fe_crb"]))
    assert np.all((bounds["fe_h_crb"] > 0) & (bounds["fe_h_crb"] < 0.5))
    assert np.all((bounds["teff_crb"] > 0) & (bounds["teff_crb"] < 500))
    assert "network/crb_ratio/fe_h.snr_bin_30-up" in flat
    assert "information_limit/seconds" in flat
    assert all(set(v) == {"value", "step"} for v in flat.values())
    assert isinstance(figure, Figure)
    markdown = nodes.summary_with_information_limit("# table\n", report, LABELS)
    assert "MOCK" in markdown and "| p_fe | dex |" in markdown and ib.NO_INFORMATION in markdown


def test_the_bound_follows_the_model_that_made_the_mock():
    mock = {"spectral_model": "emulator", "spectral_model_args": {"path": "e.safetensors"}}
    assert jac.resolve_spectral_model("mock_survey", {}, mock, True) == (
        "emulator", {"path": "e.safetensors"}, None)
    assert jac.resolve_spectral_model("mock_survey", {}, mock, False)[0] == "emulator"
    name, _, warning = jac.resolve_spectral_model("analytic", {}, mock, True)
    assert name == "analytic" and "generated with 'emulator'" in warning
    assert jac.resolve_spectral_model("analytic", {}, {"spectral_model": "analytic"}, True)[2] is None


@pytest.mark.parametrize("change, is_mock, reason", [
    ({"enabled": False}, True, "disabled"),
    ({"spectral_model": "analytic"}, False, "real spectra"),
    ({"spectral_model": "mock_survey"}, False, "cannot be used"),  # real: emulator, no weights
    ({"spectral_model": "emulator", "spectral_model_args": {"path": "/nonexistent/e.safetensors"}},
     True, "cannot be used"),
])
def test_node_skips_with_a_reason(change, is_mock, reason):
    spectra, split, table, settings = _tiny_evaluation(n=4)
    settings["cramer_rao"].update(change)
    settings["cramer_rao"].setdefault("spectral_model_args",
                                      {"path": "/nonexistent/e.safetensors"})
    test = split_spectra(spectra, split)[2]
    report, bounds, flat, figure = nodes.compute_information_limit(
        test, table, LABELS, settings, is_mock)
    assert report["status"] == "skipped" and reason in report["reason"]
    assert len(bounds) == 0 and flat == {} and isinstance(figure, Figure)
    assert "Not computed" in nodes.summary_with_information_limit("# t\n", report, LABELS)
