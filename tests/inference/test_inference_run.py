"""The inference driver end to end on tiny coadds: outputs, VAC, resumability, bounded
memory, Dask equality. The network is a fake (tests/inference/inference_fakes.py)."""
from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from inference_fakes import (
    LABELS,
    CountingReader,
    FakePredictor,
    coadd_partitions,
    partition_id,
    rvtab,
    write_survey,
)

from desi_abundances.inference import (
    InferenceError,
    InferenceSettings,
    RadialVelocityLookup,
    build_value_added_catalogue,
    output_path,
    radial_velocity_table,
    run_inference,
)

HEALPIXELS = [10010, 10011, 10012, 10013, 10014, 10015]


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("healpix")
    coadds = write_survey(root, HEALPIXELS)
    return root, coadds


def settings_for(tmp_path, **overrides) -> InferenceSettings:
    return InferenceSettings(
        per_coadd_dir=str(tmp_path / "per_coadd"),
        vac_filepath=str(tmp_path / "vac.fits"),
        progress=False,
        **overrides,
    )


def velocities(coadds) -> RadialVelocityLookup:
    return RadialVelocityLookup(radial_velocity_table(rvtab(coadds)))


def read_outputs(settings, healpixels=HEALPIXELS) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(output_path(settings.per_coadd_dir, partition_id(h))) for h in healpixels],
        ignore_index=True,
    )


def test_run_writes_per_coadd_tables_and_vac(survey, tmp_path):
    root, coadds = survey
    settings = settings_for(tmp_path)
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
    assert report["n_processed"] == 6 and report["n_spectra_predicted"] == 6 * 3
    table = read_outputs(settings)
    assert list(table.columns[:9]) == [
        "TARGETID", "TARGET_RA", "TARGET_DEC", "SURVEY", "PROGRAM", "HEALPIX",
        "COADD_FIBERSTATUS", "snr", "vrad_kms",
    ]
    # the fake predicts teff = mean B flux: check it went through the real reader
    coadd = coadds[10010]
    np.testing.assert_allclose(table["teff"][:3], coadd.arms["B"].flux[:3].mean(axis=1), rtol=1e-6)

    summary = build_value_added_catalogue(report, settings.vac_filepath)
    assert summary["rebuilt"] and summary["n_rows"] == 18
    with fits.open(settings.vac_filepath) as hdul:
        assert hdul[0].header["MOCK"] is True
        header, data = hdul[1].header, hdul[1].data
        assert header["EXTNAME"] == "VAC" and header["MOCK"] is True
        names = data.columns.names
        units = dict(zip(names, data.columns.units))
        assert units["TEFF"] == "K" and units["VRAD"] == "km s-1" and units["TARGET_RA"] == "deg"
        assert not units["FE_H_ERR"] and not units["LOGG"]  # DESI: no TUNIT on dex columns
        index = names.index("FE_H_ERR") + 1
        assert "[dex]" in header[f"TCOMM{index}"] and "[dex]" in header.comments[f"TTYPE{index}"]
        assert data["PRIMARY"].dtype == bool and data["PRIMARY"].all()  # one spectrum per star here
        assert (data["NSPEC"] == 1).all()
        assert header["FLAGB0"] == "LOW_SNR" and header["LRNGB2"] == "FE_H"
        np.testing.assert_array_equal(data["TARGETID"], table["TARGETID"])
        np.testing.assert_array_equal(data["TEFF"], table["teff"])
        np.testing.assert_array_equal(data["FLAG"], table["flag"])
        assert list(data["SURVEY"][:2]) == ["main", "main"]
        hdul.verify("exception")


def test_rerun_does_nothing_new(survey, tmp_path, caplog, monkeypatch):
    root, coadds = survey
    settings = settings_for(tmp_path)
    first = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
    build_value_added_catalogue(first, settings.vac_filepath)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}

    predictor = FakePredictor()
    loaders = CountingReader(monkeypatch, root)
    with caplog.at_level(logging.INFO, logger="desi_abundances"):
        again = run_inference(coadd_partitions(root), predictor, velocities(coadds), settings, LABELS)
        summary = build_value_added_catalogue(again, settings.vac_filepath)
    assert again["n_processed"] == 0 and again["n_already_complete"] == 6
    assert loaders.loaded == [] and predictor.calls == 0 and not summary["rebuilt"]
    assert "Nothing new" in caplog.text and "up to date" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == mtimes


def test_rerun_after_crash_redoes_only_missing_partial_and_stale(survey, tmp_path, monkeypatch):
    root, coadds = survey
    settings = settings_for(tmp_path)
    reference = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
    build_value_added_catalogue(reference, settings.vac_filepath)
    expected = read_outputs(settings)
    paths = {h: output_path(settings.per_coadd_dir, partition_id(h)) for h in HEALPIXELS}
    # a crash: one output never written, one half-written (not Parquet), a temp file left
    # behind by an interrupted atomic write, and the VAC lost
    paths[10011].unlink()
    paths[10012].write_bytes(paths[10012].read_bytes()[:100])
    (paths[10013].parent / f".{paths[10013].name}.abc123.parquet.tmp").write_bytes(b"partial")
    os.remove(settings.vac_filepath)
    kept = {h: paths[h].stat().st_mtime_ns for h in (10010, 10013, 10014, 10015)}

    loaders = CountingReader(monkeypatch, root)
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
    assert sorted(loaders.loaded) == sorted([partition_id(10011), partition_id(10012)])
    assert report["n_processed"] == 2 and report["n_already_complete"] == 4
    assert {h: paths[h].stat().st_mtime_ns for h in kept} == kept
    pd.testing.assert_frame_equal(read_outputs(settings), expected)
    summary = build_value_added_catalogue(report, settings.vac_filepath)
    assert summary["rebuilt"] and summary["n_rows"] == len(expected)

    # a coadd file rewritten (a new data release, a rebuilt mock): only its output is redone
    from inference_fakes import make_coadd

    from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset

    rewritten = root / f"{partition_id(10014)}.fits"
    changed = make_coadd(10014, n_spectra=4, seed=99)
    DesiCoaddDataset(str(rewritten)).save(changed)
    try:
        loaders = CountingReader(monkeypatch, root)
        report = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
        assert loaders.loaded == [partition_id(10014)] and report["n_processed"] == 1
        np.testing.assert_allclose(
            pd.read_parquet(paths[10014])["teff"], changed.arms["B"].flux[:3].mean(axis=1), rtol=1e-6
        )
    finally:
        DesiCoaddDataset(str(rewritten)).save(coadds[10014])

    # another bundle: every output is stale and redone
    loaders = CountingReader(monkeypatch, root)
    report = run_inference(coadd_partitions(root), FakePredictor(version="v2"), velocities(coadds), settings, LABELS)
    assert report["n_processed"] == 6 and len(loaders.loaded) == 6


def test_selection_and_failed_partition(survey, tmp_path, monkeypatch):
    root, coadds = survey
    loaders = coadd_partitions(root)
    CountingReader(monkeypatch, root, fail=(partition_id(10012),))
    settings = settings_for(tmp_path, healpix=(10011, 10012, 10013))
    with pytest.raises(InferenceError, match=f"partition {partition_id(10012)} failed.*disk on fire"):
        run_inference(loaders, FakePredictor(), velocities(coadds), settings, LABELS)
    skip = settings_for(tmp_path, healpix=(10011, 10012, 10013), on_error="skip")
    report = run_inference(loaders, FakePredictor(), velocities(coadds), skip, LABELS)
    assert report["n_failed"] == 1 and report["n_selected"] == 3
    summary = build_value_added_catalogue(report, skip.vac_filepath)
    assert summary["n_coadds"] == 2 and summary["n_missing"] == 1
    with pytest.raises(InferenceError, match="no coadd selected"):
        run_inference(loaders, FakePredictor(), velocities(coadds), settings_for(tmp_path, healpix=(1,)), LABELS)


@pytest.fixture(scope="module")
def surveys_of_3_and_12(tmp_path_factory):
    surveys = {}
    for n in (3, 12):
        root = tmp_path_factory.mktemp(f"survey{n}")
        surveys[n] = root, write_survey(root, list(range(20000, 20000 + n)), n_spectra=3)
    return surveys


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_memory_does_not_grow_with_partitions(surveys_of_3_and_12, tmp_path, prefetch, monkeypatch):
    """At most prefetch + 1 coadds are alive at once, for 3 or 12 partitions alike."""
    max_alive = {}
    for n, (root, coadds) in surveys_of_3_and_12.items():
        loaders = CountingReader(monkeypatch, root)
        settings = settings_for(tmp_path / f"out{n}", prefetch=prefetch)
        run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), settings, LABELS)
        assert len(loaders.loaded) == n and loaders.alive == 0
        max_alive[n] = loaders.max_alive
    assert 1 <= max_alive[3] <= prefetch + 1 and 1 <= max_alive[12] <= prefetch + 1


def test_dask_local_cluster_gives_identical_outputs(survey, tmp_path):
    """A 2-worker LocalCluster (threads: processes=False, fast to start) = synchronous."""
    pytest.importorskip("distributed")
    root, coadds = survey
    sync = settings_for(tmp_path / "sync")
    dask = settings_for(
        tmp_path / "dask", scheduler="local", n_workers=2, threads_per_worker=1, processes=False
    )
    run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), sync, LABELS)
    report = run_inference(coadd_partitions(root), FakePredictor(), velocities(coadds), dask, LABELS)
    assert report["n_processed"] == 6
    pd.testing.assert_frame_equal(read_outputs(dask), read_outputs(sync), check_exact=True)
    a = build_value_added_catalogue(report, dask.vac_filepath)
    with fits.open(sync.vac_filepath if os.path.exists(sync.vac_filepath) else dask.vac_filepath) as hdul:
        assert len(hdul[1].data) == a["n_rows"]
