"""Set-up of the inference throughput benchmark (``inference_throughput.py``): the cached
mock survey it reads and the model bundle it runs."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from desi_abundances.constants import label_unit
from desi_abundances.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.datasets.fits_table import FitsTableDataset
from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.mock import survey
from desi_abundances.nn.adapter import BundleMismatchError, BundlePredictor
from desi_abundances.nn.bundle import ModelBundle, current_versions
from desi_abundances.nn.bundle_io import load_bundle
from desi_abundances.nn.network import architecture_for, build_network

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "benchmarks" / ".cache"
RVTAB_COLUMNS = ["TARGETID", "SURVEY", "PROGRAM", "VRAD", "RVS_WARN", "SUCCESS"]


# --------------------------------------------------------------------------------------
# the mock survey (cached)
# --------------------------------------------------------------------------------------
def healpix_centres(n_pixels: int) -> list[list[float]]:
    """``n_pixels`` sky positions far apart (distinct nside-64 pixels), away from the poles."""
    decs = [-5.0, 10.0, 25.0, 40.0, 55.0]
    return [[(7.0 + 360.0 * i / n_pixels) % 360.0, decs[i % len(decs)]] for i in range(n_pixels)]


def mock_config(n_spectra: int, spectra_per_coadd: int, seed: int) -> dict[str, Any]:
    """The mock survey configuration: the project's (``parameters_mock_survey.yml`` when it
    exists), resized to ``n_spectra`` target spectra in files of ~``spectra_per_coadd``."""
    config: dict[str, Any] = {}
    params_file = ROOT / "conf" / "base" / "parameters_mock_survey.yml"
    if params_file.exists():
        params = yaml.safe_load(params_file.read_text()) or {}
        config = dict(params.get("mock_survey") or {})
        config = dict(config.get("survey", config))
    repeat = float(config.get("repeat_fraction", 0.06))
    n_programmes = len(config.get("programs") or {"backup": 0, "bright": 0})
    n_stars = int(np.ceil(n_spectra / (1.0 + repeat) * 1.01))
    n_files = max(1, round(n_spectra / spectra_per_coadd))
    config.update(
        seed=seed,
        n_stars=n_stars,
        n_apogee_only=0,
        healpix_centres=healpix_centres(max(1, round(n_files / n_programmes))),
        write_resolution=False,
    )
    return config


def ensure_mock_survey(cache: Path, n_spectra: int, spectra_per_coadd: int, seed: int) -> Path:
    """The cached mock survey folder; built (resumably, one file at a time) when incomplete."""
    folder = cache / f"mock_{n_spectra}_s{seed}"
    marker = folder / "survey.json"
    if marker.exists():
        return folder
    config = mock_config(n_spectra, spectra_per_coadd, seed)
    print(f"building the mock survey in {folder} (once) ...", flush=True)
    start = time.perf_counter()
    stars = survey.simulate_stars(config)
    observations = survey.plan_observations(stars, config)
    factories = survey.coadd_factories(stars, observations, config)
    healpix = folder / "healpix"
    for number, (pid, make) in enumerate(sorted(factories.items()), start=1):
        path = healpix / f"{pid}.fits"
        if not path.exists():  # written atomically: an existing file is complete
            DesiCoaddDataset(str(path)).save(make())
        print(f"  coadd {number}/{len(factories)} {pid} ({time.perf_counter() - start:.0f} s)", flush=True)
    loaders = {pid: DesiCoaddDataset(str(healpix / f"{pid}.fits"), load_args={
        "read_exp_fibermap": False, "read_scores": False}).load for pid in factories}
    snr = survey.spectrum_snr(loaders)
    mws = survey.mws_catalogue(observations, stars, snr, config)
    FitsTableDataset(str(folder / "mwsall-pix-mock.fits"), hdu=list(mws),
                     save_args={"header": {"MOCK": True}}).save(mws)
    summary = {
        "n_files": len(factories),
        "n_spectra_in_files": int(len(observations)),
        "n_target_spectra": int((observations["OBJTYPE"] == "TGT").sum()),
        "seconds": round(time.perf_counter() - start, 1),
        "config": {k: v for k, v in config.items() if k != "healpix_centres"},
    }
    marker.write_text(json.dumps(summary, indent=1, default=str))
    print(f"mock survey built in {summary['seconds']} s", flush=True)
    return folder


# --------------------------------------------------------------------------------------
# the model bundle
# --------------------------------------------------------------------------------------
def project_labels() -> list[str]:
    return list(yaml.safe_load((ROOT / "conf" / "base" / "parameters.yml").read_text())["labels"])


def random_bundle(labels: list[str], seed: int) -> Any:
    """A randomly initialised network of the default architecture on the brz grid."""
    torch.manual_seed(seed)
    wavelength = brz_wavelength()
    architecture = architecture_for(wavelength.size, len(labels), {})
    n = len(labels)
    teff = np.array([label_unit(label) == "K" for label in labels])
    return ModelBundle(
        state_dict=build_network(architecture).state_dict(),
        architecture=architecture,
        label_names=labels,
        wavelength=wavelength,
        pixel_median=np.full(wavelength.size, 0.9),
        pixel_iqr=np.full(wavelength.size, 0.1),
        label_offset=np.where(teff, 5000.0, 0.0),
        label_scale=np.where(teff, 700.0, 0.2),
        label_min=np.where(teff, 3500.0, -2.5),
        label_max=np.where(teff, 7500.0, 1.0),
        preprocessing={},
        ood_threshold=10.0,
        versions=current_versions(),
        is_mock=True,
        label_n_train=np.ones(n, np.int64),
    )


def choose_bundle(option: str, seed: int) -> tuple[Any, str]:
    path = ROOT / "data" / "06_models" / "model_bundle.safetensors" if option == "auto" else Path(option)
    if option != "random" and path.exists():
        bundle = load_bundle(path)
        try:
            BundlePredictor(bundle)
            return bundle, f"trained bundle {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
        except BundleMismatchError as exc:
            print(f"{path} not usable ({exc}); using a random network", flush=True)
    return random_bundle(project_labels(), seed), "randomly initialised network, default architecture"
