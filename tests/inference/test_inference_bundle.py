"""Inference with a real (tiny, randomly initialised) model bundle through the Kedro pipeline:
real coadd files on DESI's grids, the MWS RVTAB as FITS, the bundle as safetensors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from astropy.io import fits
from inference_fakes import partition_id, rvtab
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from desi_abundances.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.datasets.fits_table import FitsTableDataset
from desi_abundances.datasets.model_bundle import ModelBundleDataset
from desi_abundances.desi.grids import arm_wavelength, brz_wavelength
from desi_abundances.inference import FLAG_BITS
from desi_abundances.nn.adapter import BundleMismatchError, BundlePredictor, bundle_fingerprint
from desi_abundances.nn.bundle import ModelBundle, current_versions
from desi_abundances.nn.network import architecture_for, build_network
from desi_abundances.pipelines.inference.pipeline import create_pipeline
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

LABELS = ["teff", "logg", "fe_h"]
PROJECT = Path(__file__).resolve().parents[2]


def tiny_bundle(n_pixels: int | None = None, labels=LABELS, seed: int = 0) -> ModelBundle:
    """A randomly initialised bundle of a small network on the brz grid (or ``n_pixels``)."""
    wavelength = brz_wavelength() if n_pixels is None else brz_wavelength()[:n_pixels]
    torch.manual_seed(seed)
    architecture = architecture_for(wavelength.size, len(labels), {"hidden_sizes": [8], "dropout": 0.0})
    n = len(labels)
    return ModelBundle(
        state_dict=build_network(architecture).state_dict(),
        architecture=architecture,
        label_names=list(labels),
        wavelength=wavelength,
        pixel_median=np.ones(wavelength.size),
        pixel_iqr=np.full(wavelength.size, 0.1),
        label_offset=np.array([5000.0, 3.0, -0.5])[:n],
        label_scale=np.array([500.0, 1.0, 0.3])[:n],
        label_min=np.array([3500.0, 0.0, -2.5])[:n],
        label_max=np.array([7000.0, 5.0, 0.5])[:n],
        preprocessing={},
        ood_threshold=5.0,
        versions=current_versions(),
        is_mock=True,
    )


def desi_coadd(healpix: int, n_spectra: int = 4) -> CoaddSpectra:
    """A coadd on DESI's real arm grids: a continuum with absorption lines, some noise."""
    rng = np.random.default_rng(healpix)
    arms = {}
    for arm in "BRZ":
        wavelength = arm_wavelength(arm)
        lines = 1 - 0.3 * np.exp(-0.5 * ((wavelength[None, :] % 37.0 - 18) / 0.8) ** 2)
        flux = (50 * lines * np.ones((n_spectra, 1)) + rng.normal(0, 1, (n_spectra, wavelength.size)))
        arms[arm] = ArmSpectra(
            wavelength=wavelength,
            flux=flux.astype(np.float32),
            ivar=np.ones(flux.shape, np.float32),
            mask=np.zeros(flux.shape, np.int32),
        )
    fibermap = pd.DataFrame(
        {
            "TARGETID": (39_000_000_000_000 + healpix * 1000 + np.arange(n_spectra)).astype(np.int64),
            "TARGET_RA": rng.uniform(0, 360, n_spectra),
            "TARGET_DEC": rng.uniform(-20, 80, n_spectra),
            "COADD_FIBERSTATUS": np.zeros(n_spectra, np.int32),
            "OBJTYPE": ["TGT"] * n_spectra,
            "MWS_TARGET": np.ones(n_spectra, np.int64),
        }
    )
    header = {"SURVEY": "main", "PROGRAM": "bright", "HPXPIXEL": healpix, "MOCK": True}
    return CoaddSpectra(arms=arms, fibermap=fibermap, header=header)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    coadds = {}
    for healpix in (10010, 10011):
        coadds[healpix] = desi_coadd(healpix)
        DesiCoaddDataset(str(root / "healpix" / f"{partition_id(healpix)}.fits")).save(coadds[healpix])
    FitsTableDataset(str(root / "mws.fits"), hdu=["RVTAB"]).save({"RVTAB": rvtab(coadds)})
    ModelBundleDataset(str(root / "bundle.safetensors")).save(tiny_bundle())
    return root


def catalog_for(root, bundle_path=None, **params) -> DataCatalog:
    """The entries of conf/base/catalog_inference.yml with paths under ``root``."""
    config = yaml.safe_load((PROJECT / "conf" / "base" / "catalog_inference.yml").read_text())
    config["inference_coadds"]["path"] = str(root / "healpix")
    config["mws_radial_velocities"]["filepath"] = str(root / "mws.fits")
    config["inference_report"]["filepath"] = str(root / "out" / "inference_report.json")
    config["vac_summary"]["filepath"] = str(root / "out" / "vac_summary.json")
    config["model_bundle"] = {
        "type": "desi_abundances.datasets.model_bundle.ModelBundleDataset",
        "filepath": str(bundle_path or root / "bundle.safetensors"),
    }
    catalog = DataCatalog.from_config(config)
    catalog["params:labels"] = LABELS
    catalog["params:inference"] = {
        "per_coadd_dir": str(root / "out" / "per_coadd"),
        "vac_filepath": str(root / "out" / "vac.fits"),
        "progress": False,
        **params,
    }
    return catalog


def test_pipeline_runs_with_a_real_bundle_and_reruns_as_a_no_op(project):
    SequentialRunner().run(create_pipeline(), catalog_for(project))
    report = json.loads((project / "out" / "inference_report.json").read_text())
    assert report["n_processed"] == 2 and report["n_spectra_predicted"] == 6
    with fits.open(project / "out" / "vac.fits") as hdul:
        data = hdul[1].data
        assert len(data) == 6 and hdul[0].header["MOCK"] is True
        usable = np.isfinite(data["VRAD"])
        assert usable.sum() == 4  # one RVS_WARN target per coadd
        assert np.isfinite(data["TEFF"][usable]).all() and np.isfinite(data["FE_H_ERR"][usable]).all()
        # no radial velocity: preprocess masks the spectrum, the network gives NaN
        no_rv = 1 << FLAG_BITS["NO_RADIAL_VELOCITY"]
        no_prediction = 1 << FLAG_BITS["NO_PREDICTION"]
        assert (data["FLAG"][~usable] & no_rv).all() and (data["FLAG"][~usable] & no_prediction).all()
        assert np.isnan(data["TEFF"][~usable]).all()
        assert (data["SNR"] > 30).all()
        # a network without a refinement layer has no spectrum model: no fit statistics
        assert np.isnan(data["RCHI2"]).all() and np.isnan(data["COMPOSITE_SCORE"]).all()
        assert hdul[1].columns["COMPOSITE_DV"].unit == "km s-1"
        assert hdul[1].header["MAXCOMP"] == 10.0 and hdul[1].header["FLAGB8"] == "COMPOSITE"
    mtime = (project / "out" / "vac.fits").stat().st_mtime_ns
    SequentialRunner().run(create_pipeline(), catalog_for(project))
    again = json.loads((project / "out" / "inference_report.json").read_text())
    summary = json.loads((project / "out" / "vac_summary.json").read_text())
    assert again["n_processed"] == 0 and again["n_already_complete"] == 2 and not summary["rebuilt"]
    assert (project / "out" / "vac.fits").stat().st_mtime_ns == mtime


def test_bundle_fingerprint_survives_save_and_load(project, tmp_path):
    bundle = ModelBundleDataset(str(project / "bundle.safetensors")).load()
    assert bundle_fingerprint(bundle) == bundle_fingerprint(tiny_bundle())
    assert bundle_fingerprint(tiny_bundle(seed=1)) != bundle_fingerprint(tiny_bundle())


def test_mismatched_bundles_are_refused(project, tmp_path):
    with pytest.raises(BundleMismatchError, match="grid"):
        BundlePredictor(tiny_bundle(n_pixels=7000))
    wrong_settings = tiny_bundle()
    wrong_settings.preprocessing = {"continuum_sigma": 20}
    with pytest.raises(BundleMismatchError, match="continuum_sigma"):
        BundlePredictor(wrong_settings)
    # a bundle for other labels than params:labels, through the pipeline
    other = tmp_path / "other.safetensors"
    ModelBundleDataset(str(other)).save(tiny_bundle(labels=["teff", "logg"]))
    with pytest.raises(Exception, match=r"missing from the bundle \['fe_h'\]"):
        SequentialRunner().run(create_pipeline(), catalog_for(project, bundle_path=other))


def test_a_bundle_predicts_the_same_after_pickling(project):
    """What a Dask worker receives (a pickled predictor, network rebuilt) predicts the same."""
    import pickle

    from desi_abundances.inference import (
        InferenceSettings,
        RadialVelocityLookup,
        finish_partition,
        prepare_partition,
        radial_velocity_table,
    )

    coadd = desi_coadd(10010)
    predictor = BundlePredictor(tiny_bundle())
    velocities = RadialVelocityLookup(radial_velocity_table(rvtab({10010: coadd})))
    settings = InferenceSettings(only_mws_catalogue=False)
    expected = finish_partition(prepare_partition(coadd, partition_id(10010), predictor, velocities, settings), predictor, settings)
    assert predictor.network is not None  # built; must not travel
    clone = pickle.loads(pickle.dumps(predictor))
    assert clone._network is None
    got = finish_partition(prepare_partition(coadd, partition_id(10010), clone, velocities, settings), clone, settings)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.slow
def test_dask_process_workers_give_identical_outputs(project, tmp_path):
    """A LocalCluster of 2 worker processes (the bundle scattered to them, the network rebuilt
    there, one torch thread each) writes exactly what the synchronous run writes."""
    outputs = {}
    for name, extra in {
        "synchronous": {},
        "dask": {"scheduler": "local", "n_workers": 2, "threads_per_worker": 1, "processes": True},
    }.items():
        catalog = catalog_for(
            project,
            per_coadd_dir=str(tmp_path / name / "per_coadd"),
            vac_filepath=str(tmp_path / name / "vac.fits"),
            **extra,
        )
        SequentialRunner().run(create_pipeline(), catalog)
        outputs[name] = {
            path.relative_to(tmp_path / name): pd.read_parquet(path)
            for path in sorted((tmp_path / name).rglob("*.parquet"))
        }
    assert list(outputs["dask"]) == list(outputs["synchronous"]) and len(outputs["dask"]) == 2
    for path, table in outputs["synchronous"].items():
        pd.testing.assert_frame_equal(outputs["dask"][path], table, check_exact=True)
    with fits.open(tmp_path / "dask" / "vac.fits") as a, fits.open(tmp_path / "synchronous" / "vac.fits") as b:
        assert a[1].data.tobytes() == b[1].data.tobytes()
