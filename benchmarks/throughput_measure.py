"""Measurements of the inference throughput benchmark: peak memory, the ceiling (reading
alone, the network alone) and the end-to-end run through the inference nodes."""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
import yaml
from throughput_setup import ROOT, RVTAB_COLUMNS

from desi_abundances.datasets.coadd_tree import CoaddTreeDataset
from desi_abundances.datasets.desi_coadd import DesiCoaddDataset
from desi_abundances.datasets.fits_table import FitsTableDataset
from desi_abundances.io.desi_coadd import read_image
from desi_abundances.io.fits_table import open_fits
from desi_abundances.nn.adapter import BundlePredictor
from desi_abundances.nn.predict import input_inverse_variance, standardise
from desi_abundances.pipelines.inference.nodes import build_vac, predict_coadds
from desi_abundances.spectra import preprocess


# --------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------
class PeakRss:
    """Samples the RSS of this process and its children every ``interval`` s in a thread."""
    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


# --------------------------------------------------------------------------------------
# the ceiling
# --------------------------------------------------------------------------------------
def coadd_files(survey: Path) -> list[Path]:
    return sorted((survey / "healpix").rglob("*.fits"))


def set_page_cache(files: list[Path], state: str) -> None:
    """Put the coadds in the page-cache ``state`` before a measurement: ``cold`` evicts them
    (``posix_fadvise(DONTNEED)``: every read then comes from the disk, as for a data release
    far larger than memory), ``warm`` reads each file once (reads then come from memory, if
    the survey fits in it)."""
    for path in files:
        with open(path, "rb") as handle:
            if state == "cold":
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                while handle.read(1 << 24):
                    pass


def measure_read(files: list[Path]) -> tuple[float, int, float, float]:
    """(spectra/s, spectra, seconds, CPU seconds) reading FLUX/IVAR/MASK of every arm of
    every file."""
    n_spectra, start, cpu_start = 0, time.perf_counter(), time.process_time()
    for path in files:
        hdul = open_fits(path, memmap=False)
        try:
            for arm in "BRZ":
                for kind in ("FLUX", "IVAR", "MASK"):
                    image = read_image(hdul, f"{arm}_{kind}", path)
            n_spectra += image.shape[0]
        finally:
            hdul.close()
        del image
    seconds = time.perf_counter() - start
    return n_spectra / seconds, n_spectra, seconds, time.process_time() - cpu_start


def forward_inputs(bundle: Any, files: list[Path], n_rows: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Standardised network inputs of real preprocessed spectra (the first files), tiled, and
    their inverse variances (input units) when the network takes them (refinement step)."""
    with_ivar = int(bundle.architecture.get("refinement_pixels", 0)) > 0
    median = np.asarray(bundle.pixel_median, np.float32)
    iqr = np.asarray(bundle.pixel_iqr, np.float32)
    blocks, ivars, total = [], [], 0
    for path in files:
        coadd = DesiCoaddDataset(str(path), load_args={"read_exp_fibermap": False, "read_scores": False}).load()
        spectra = preprocess(coadd, np.zeros(coadd.n_spectra), bundle.preprocessing)
        blocks.append(standardise(spectra.flux, spectra.mask, median, iqr))
        if with_ivar:
            ivars.append(input_inverse_variance(spectra.ivar, spectra.mask, iqr))
        total += coadd.n_spectra
        if total >= n_rows:
            break
    inputs = np.concatenate(blocks)
    ivar = np.resize(np.concatenate(ivars), (n_rows, inputs.shape[1])) if with_ivar else None
    return np.resize(inputs, (n_rows, inputs.shape[1])), ivar


def measure_forward(bundle: Any, inputs: tuple[np.ndarray, np.ndarray | None], n_spectra: int,
                    batch_size: int | None = None) -> tuple[float, float, float]:
    """(spectra/s, seconds, CPU seconds of all threads) of the forward pass alone over
    ``n_spectra`` preloaded inputs (and inverse variances, for a refinement step)."""
    batch_size = batch_size or BundlePredictor(bundle).batch_size  # as inference runs it
    network = bundle.network()
    tensor = torch.from_numpy(inputs[0])
    ivar = None if inputs[1] is None else torch.from_numpy(inputs[1])

    def rows(first: int, last: int):
        return tensor[first:last], None if ivar is None else ivar[first:last]

    with torch.inference_mode():
        network(*rows(0, batch_size))  # warm-up
        done, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while done < n_spectra:
            for first in range(0, tensor.shape[0], batch_size):
                network(*rows(first, first + batch_size))
                done += min(batch_size, tensor.shape[0] - first)
                if done >= n_spectra:
                    break
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return done / seconds, seconds, cpu_seconds * n_spectra / done


# --------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------
def inference_params(out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_inference.yml").read_text())["inference"]
    params.update(per_coadd_dir=str(out / "per_coadd"), vac_filepath=str(out / "desi_abundances_vac.fits"))
    params.update(overrides)
    return params


def coadd_loaders(survey: Path) -> Any:
    """The coadds as the catalog's ``inference_coadds`` entry loads them (same load_args)."""
    entry = yaml.safe_load((ROOT / "conf" / "base" / "catalog_inference.yml").read_text())["inference_coadds"]
    return CoaddTreeDataset(path=str(survey / "healpix"), load_args=entry.get("load_args")).load()


def run_end_to_end(survey: Path, bundle: Any, out: Path,
                   overrides: dict[str, Any]) -> tuple[dict, dict, float, float]:
    """Both inference nodes, timed: (inference report, VAC summary, seconds, CPU seconds of
    this process's threads; Dask workers in other processes are not counted)."""
    shutil.rmtree(out, ignore_errors=True)
    params = inference_params(out, overrides)
    start, cpu_start = time.perf_counter(), time.process_time()
    velocities = FitsTableDataset(str(survey / "mwsall-pix-mock.fits"), hdu="RVTAB", columns=RVTAB_COLUMNS).load()
    report = predict_coadds(coadd_loaders(survey), velocities, bundle, list(bundle.label_names), params)
    summary, _ = build_vac(report, params)
    return report, summary, time.perf_counter() - start, time.process_time() - cpu_start
