"""Per-stage profile of the inference throughput benchmark (``--profile``): each stage of
inference timed on a few coadds, one after the other, for whoever optimises the slowest."""
from __future__ import annotations

import cProfile
import pstats
import sys
import time
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
from desi_abundances.nn.predict import predict_labels


# --------------------------------------------------------------------------------------
# per-stage profile (for whoever optimises the slowest stage)
# --------------------------------------------------------------------------------------
def profile_stages(survey: Path, bundle: Any, n_files: int, out: Path) -> None:
    """Time each stage on the first ``n_files`` coadds, one after the other, one thread."""
    velocities = inference.RadialVelocityLookup(inference.radial_velocity_table(
        FitsTableDataset(str(survey / "mwsall-pix-mock.fits"), hdu="RVTAB", columns=RVTAB_COLUMNS).load()))
    predictor = inference.BundlePredictor(bundle)
    settings = inference.InferenceSettings.from_params(inference_params(out, {"progress": False}))
    tree = coadd_loaders(survey)
    stages = ["read", "select + velocities", "preprocess + S/N", "network + distance",
              "flags + Parquet write"]
    times = dict.fromkeys(stages, 0.0)
    cpu = dict.fromkeys(stages, 0.0)

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    profiler = cProfile.Profile()
    n_spectra = 0
    for pid in sorted(tree.paths)[:n_files]:
        t0 = now()
        coadd = inference.read_partition(tree.paths[pid], tree.read_options)
        t1 = now()
        prepared = inference.prepare_partition(coadd, pid, _NoPrepare(predictor), velocities, settings)
        t2 = now()
        if prepared.input_rows is None:  # the targets' rows are copied out (timed above)
            selected, vrad = coadd.select(_rows(coadd, prepared)), prepared.table["vrad_kms"].to_numpy()
        else:  # nearly all rows are targets: the whole coadd is preprocessed
            survey_name, program, _ = inference.coadd_survey_program(coadd, pid)
            selected = coadd
            vrad = velocities.lookup(survey_name, program, coadd.fibermap["TARGETID"].to_numpy())[0]
        untimed = np.subtract(now(), t2)
        profiler.enable()
        spectra = predictor.prepare(selected, vrad)
        profiler.disable()
        t3 = now()
        predictions = predict_labels(bundle, spectra, network=predictor.network, check=False)
        t4 = now()
        prepared.inputs = spectra
        inference.write_partition(prepared, _Fixed(predictor, predictions), settings, str(out / "profile"), "profile")
        t5 = now()
        marks = [np.asarray(t) for t in (t0, t1, t2, t3, t4, t5)]
        marks[3] = marks[3] - untimed
        for key, start, stop in zip(stages, marks[:-1], marks[1:]):
            times[key] += stop[0] - start[0]
            cpu[key] += stop[1] - start[1]
        marks[3] = marks[3] + untimed
        n_spectra += len(prepared.table)
    total, total_cpu = sum(times.values()), sum(cpu.values())
    print(f"\nper-stage profile, {n_files} coadds, {n_spectra} spectra, one stage after the other "
          f"(wall and CPU time of all threads; torch {torch.get_num_threads()} threads):")
    for key, seconds in times.items():
        print(f"  {key:28s} wall {1e6 * seconds / n_spectra:7.1f} us/spectrum {100 * seconds / total:5.1f} %"
              f"   CPU {1e6 * cpu[key] / n_spectra:7.1f} us/spectrum {100 * cpu[key] / total_cpu:5.1f} %")
    print(f"  {'total':28s} wall {1e6 * total / n_spectra:7.1f} us/spectrum {n_spectra / total:6.0f}/s"
          f"   CPU {1e6 * total_cpu / n_spectra:7.1f} us/spectrum")
    print("\nspectra.preprocess, top functions by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(8)


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
