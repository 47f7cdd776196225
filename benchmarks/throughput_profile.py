"""Per-stage profile of the inference throughput benchmark (``--profile``): each stage of
inference timed on a few coadds, one after the other, for whoever optimises the slowest.

CPU time (all threads: user + system) and wall time per spectrum, with torch on the threads
the end-to-end run gives it (``inference.runners.synchronous_torch_threads``: one, beside
the reader thread) and a warm-up coadd first (numba's cached kernels load, torch's first
call), so that the stages add up to what the end-to-end run spends per spectrum. The
network stage is split into its parts (standardisation + input distance, the network with
its refinement step, the reduced chi-square and the model variance) by timing
``nn.predict``'s helpers while it runs (:func:`_timed_helpers`).
"""
from __future__ import annotations

import contextlib
import cProfile
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from throughput_measure import coadd_loaders, inference_params
from throughput_setup import RVTAB_COLUMNS

from desi_abundances import inference
from desi_abundances.datasets.fits_table import FitsTableDataset
from desi_abundances.inference.runners import set_torch_threads, synchronous_torch_threads
from desi_abundances.nn import predict as nn_predict
from desi_abundances.nn.predict import predict_labels

STAGES = ["read", "select + velocities", "preprocess + S/N", "standardise + distance",
          "network (+ refinement step)", "chi2 + model variance", "rest of predict_labels",
          "flags + Parquet write"]
"""The stages, in order; the four after ``preprocess`` are ``predict_labels`` split."""

_HELPERS = {"standardise_with_distance": "standardise + distance",
            "reduced_chi2": "chi2 + model variance", "hessian_variance": "chi2 + model variance",
            "fisher_variance": "chi2 + model variance"}
"""``nn.predict`` helpers timed inside ``predict_labels`` (name -> stage)."""


def _now() -> np.ndarray:
    """(wall s, CPU s of all threads, system CPU s) now."""
    return np.array([time.perf_counter(), time.process_time(),
                     resource.getrusage(resource.RUSAGE_SELF).ru_stime])


@contextlib.contextmanager
def _timed_helpers(spent: dict[str, np.ndarray]) -> Iterator[None]:
    """While active, each call of an ``nn.predict`` helper of :data:`_HELPERS` adds its
    (wall, CPU, system) seconds to ``spent[stage]``; the module is restored on exit."""
    originals = {name: getattr(nn_predict, name) for name in _HELPERS}

    def timed(name):
        function = originals[name]

        def wrapper(*args, **kwargs):
            start = _now()
            try:
                return function(*args, **kwargs)
            finally:
                spent[_HELPERS[name]] += _now() - start
        return wrapper

    try:
        for name in _HELPERS:
            setattr(nn_predict, name, timed(name))
        yield
    finally:
        for name, function in originals.items():
            setattr(nn_predict, name, function)


# --------------------------------------------------------------------------------------
# per-stage profile (for whoever optimises the slowest stage)
# --------------------------------------------------------------------------------------
def profile_stages(survey: Path, bundle: Any, n_files: int, out: Path) -> None:
    """Time each stage on the first ``n_files`` coadds, one after the other (a warm-up
    coadd, the last one, first), torch on the end-to-end run's threads."""
    velocities = inference.RadialVelocityLookup(inference.radial_velocity_table(
        FitsTableDataset(str(survey / "mwsall-pix-mock.fits"), hdu="RVTAB", columns=RVTAB_COLUMNS).load()))
    predictor = inference.BundlePredictor(bundle)
    settings = inference.InferenceSettings.from_params(inference_params(out, {"progress": False}))
    tree = coadd_loaders(survey)
    previous_threads = set_torch_threads(synchronous_torch_threads(settings))
    try:
        pids = sorted(tree.paths)
        _profile_coadd(pids[-1], tree, predictor, velocities, settings, bundle, out, None, None)  # warm-up
        spent = {key: np.zeros(3) for key in STAGES}
        profiler = cProfile.Profile()
        n_spectra = 0
        for pid in pids[:n_files]:
            n_spectra += _profile_coadd(pid, tree, predictor, velocities, settings, bundle, out, spent,
                                        profiler)
    finally:
        set_torch_threads(previous_threads)
    total = sum(spent.values())
    print(f"\nper-stage profile (MOCK), {n_files} coadds, {n_spectra} spectra, one stage after the "
          f"other, after a warm-up coadd (wall, CPU of all threads and its system part; torch "
          f"{synchronous_torch_threads(settings) or torch.get_num_threads()} threads as in the "
          "end-to-end run):")
    for key, (wall, cpu, system) in spent.items():
        print(f"  {key:28s} wall {1e6 * wall / n_spectra:7.1f} us/spectrum {100 * wall / total[0]:5.1f} %"
              f"   CPU {1e6 * cpu / n_spectra:7.1f} us/spectrum {100 * cpu / total[1]:5.1f} %"
              f" (system {1e6 * system / n_spectra:5.1f})")
    print(f"  {'total':28s} wall {1e6 * total[0] / n_spectra:7.1f} us/spectrum {n_spectra / total[0]:6.0f}/s"
          f"   CPU {1e6 * total[1] / n_spectra:7.1f} us/spectrum (system {1e6 * total[2] / n_spectra:5.1f})")
    print("\nspectra.preprocess, top functions by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(8)


def _profile_coadd(pid: str, tree: Any, predictor: Any, velocities: Any, settings: Any, bundle: Any,
                   out: Path, spent: dict[str, np.ndarray] | None, profiler: Any) -> int:
    """Run one coadd stage by stage; add each stage's (wall, CPU, system) seconds to
    ``spent`` (None: a warm-up, nothing kept). Returns the rows written."""
    t0 = _now()
    coadd = inference.read_partition(tree.paths[pid], tree.read_options)
    t1 = _now()
    prepared = inference.prepare_partition(coadd, pid, _NoPrepare(predictor), velocities, settings)
    t2 = _now()
    if prepared.input_rows is None:  # the targets' rows are copied out (timed above)
        selected, vrad = coadd.select(_rows(coadd, prepared)), prepared.table["vrad_kms"].to_numpy()
    else:  # nearly all rows are targets: the whole coadd is preprocessed
        survey_name, program, _ = inference.coadd_survey_program(coadd, pid)
        selected = coadd
        vrad = velocities.lookup(survey_name, program, coadd.fibermap["TARGETID"].to_numpy())[0]
    t2b = _now()
    if profiler is not None:
        profiler.enable()
    spectra = predictor.prepare(selected, vrad)
    if profiler is not None:
        profiler.disable()
    t3 = _now()
    parts = {key: np.zeros(3) for key in STAGES}
    network = _TimedNetwork(predictor.network, parts["network (+ refinement step)"])
    with _timed_helpers(parts):
        predictions = predict_labels(bundle, spectra, batch_size=predictor.batch_size,
                                     network=network, check=False)
    t4 = _now()
    prepared.inputs = spectra
    inference.write_partition(prepared, _Fixed(predictor, predictions), settings, str(out / "profile"), "profile")
    t5 = _now()
    if spent is None:
        return 0
    spent["read"] += t1 - t0
    spent["select + velocities"] += t2 - t1
    spent["preprocess + S/N"] += t3 - t2b
    timed = 0.0
    for key in ("standardise + distance", "network (+ refinement step)", "chi2 + model variance"):
        spent[key] += parts[key]
        timed = timed + parts[key]
    spent["rest of predict_labels"] += (t4 - t3) - timed
    spent["flags + Parquet write"] += t5 - t4
    return len(prepared.table)


class _TimedNetwork:
    """The network, each call's (wall, CPU, system) seconds added to ``spent``; every
    attribute (``refinement``, ``eval``, ...) is the network's own."""
    def __init__(self, network: Any, spent: np.ndarray):
        self._network = network
        self._spent = spent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._network, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._network, *args, **kwargs)

    def outputs(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._network.outputs, *args, **kwargs)

    def _timed(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        start = _now()
        try:
            return function(*args, **kwargs)
        finally:
            self._spent += _now() - start


class _NoPrepare:
    """A predictor whose prepare does nothing (to time selection alone): it reports S/N 0,
    as ``spectra.preprocess`` reports the S/N (timed with the preprocessing)."""
    def __init__(self, predictor):
        self._predictor = predictor

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def prepare(self, coadd, vrad):
        return SimpleNamespace(meta=pd.DataFrame({"snr": np.zeros(coadd.n_spectra, np.float32)}))


class _Fixed(_NoPrepare):
    """A predictor returning precomputed predictions (to time flags and writing alone)."""
    def __init__(self, predictor, predictions):
        super().__init__(predictor)
        self._predictions = predictions

    def predict(self, prepared):
        return self._predictions


def _rows(coadd, prepared) -> np.ndarray:
    targetid = coadd.fibermap["TARGETID"].to_numpy()
    return np.flatnonzero(np.isin(targetid, prepared.table["TARGETID"].to_numpy()))
