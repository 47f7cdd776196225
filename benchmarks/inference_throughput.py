"""Inference throughput: how close does the pipeline come to reading + the network alone?

Usage (from the project root, venv active):

    python benchmarks/inference_throughput.py                 # 100,000 spectra
    python benchmarks/inference_throughput.py --profile       # + a per-stage breakdown

What it does, in one run:

1. The mock survey: built once with the mock survey's own code (``desi_abundances.mock.survey``:
   simulate_stars -> plan_observations -> coadd_factories -> mws_catalogue; no APOGEE-only
   stars, which it does not need) into ``benchmarks/.cache/mock_<n>/`` (gitignored), in DESI's
   healpix tree with ~``--spectra-per-coadd`` spectra per file (DESI's main-survey healpix
   coadds hold hundreds to a few thousand). Reused when complete (``survey.json`` marker).
2. The model bundle: ``data/06_models/model_bundle.safetensors`` when present and accepted by
   inference; otherwise a randomly initialised network of the default architecture
   (``nn.network.DEFAULT_ARCHITECTURE``) on the brz grid with the project's labels. Speed
   does not depend on the weights; the output says which was used.
3. The ceiling, two rates measured separately:
   - r_read: reading FLUX, IVAR and MASK of every arm of every file (the project's fast
     FITS image reader, nothing else: no FIBERMAP, no conversion);
   - r_forward: the network's forward pass alone (``torch.inference_mode``, in the batches
     ``nn.adapter.BundlePredictor`` uses; with the refinement step when the bundle has
     one) on inputs already in memory.
   ceiling = 1 / (1 / r_read + 1 / r_forward): the two run back to back. (The pipeline does
   read the next coadd in a thread while the network runs, but on two cores the forward pass
   already uses both, so back to back is the achievable bound; ``min(r_read, r_forward)`` is
   printed as well.)
4. End to end: FITS coadds to the FITS catalogue through the Kedro node functions
   (``pipelines.inference.nodes.predict_coadds`` then ``build_vac``) with the catalog's load
   arguments and ``conf/base/parameters_inference.yml``, into a fresh output folder: reading,
   target selection, MWS radial velocities, S/N, ``spectra.preprocess``, the network, input
   distance, flags, one Parquet file per coadd (atomic) and the merged FITS VAC.
   end_to_end_spectra_per_s = spectra predicted / wall time of both nodes.
5. Peak memory: resident set size of this process plus all its children (psutil, sampled
   every 20 ms) during the end-to-end run.

6. CPU time (``time.process_time``: all threads of this process) per spectrum of reading, of
   the forward pass and of the end-to-end run, and the rates they allow on idle cores:
   ``idle_cores_end_to_end_spectra_per_s`` = cores / end-to-end CPU time per spectrum (an upper
   bound: perfect overlap), ``idle_cores_ceiling_spectra_per_s`` = 1 / (read CPU + forward
   CPU / cores). On a shared machine the wall-clock rates measure the load as much as the
   code; these do not (much).

7. Page cache: steps 3a and 4 run once per ``--page-cache`` state (default both): ``cold``
   evicts the coadds from the page cache first (``posix_fadvise(DONTNEED)``), so reading comes
   from the disk, as it does for a data release of terabytes; ``warm`` reads every file once
   first, so reading comes from memory (the best case for reading: it needs the 9.3 GB survey
   to fit in the page cache). The ratio end-to-end / ceiling differs a lot between the two:
   when reads wait on the disk the pipeline's computing overlaps them (a reader thread); from
   memory the read is cheap and the computing shows.

Ends with one JSON line: ``{"end_to_end_spectra_per_s", "ceiling_spectra_per_s", "ratio",
"peak_rss_mb", "n_spectra", "page_cache", "runs": {state: {... the same and CPU times per
spectrum ...}}}``; the headline keys are those of the first ``--page-cache`` state (``cold``
by default). Other processes may load the CPU: the load average (``os.getloadavg``) is
printed before and after.

Measured 2026-11-25 (third session), two runs, defaults (``prefetch: 2``), trained bundle
(refinement on 2,048 pixels), load average 0.9-2.1:

- cold: read 12,800-13,500 spectra/s, forward 24,800-25,200 spectra/s, ceiling 8,500-8,750
  spectra/s; end to end 6,167-6,429 spectra/s (ratio 0.73), peak RSS 1,186-1,209 MB.
- warm: read 36,500-37,600 spectra/s, ceiling 14,900 spectra/s; end to end 6,812-6,883
  spectra/s (ratio 0.46), peak RSS 1,482-1,507 MB.
- CPU per spectrum: read 27-36 us, forward 72-73 us, end to end 265-294 us (was 334-371):
  ``spectra.kernels.preprocess_rows`` (one spectrum at a time from the arms to the outputs,
  the S/N with it), branch-free vectorised loops, an exact radix-select median instead of a
  row sort; ``--profile``: preprocess + S/N 93 us CPU (50 us wall on 2 threads), network +
  distance 93 us (2 torch threads), read 50 us (cold), flags + Parquet 12 us.

Measured 2026-11-25 (second session), background synthesis paused, both page-cache states in
one run each. With the refinement step on 2,048 pixels (the default), batches of 2,048, load
average 2.2-2.9 (other users):

- cold (files evicted, read from disk): ceiling 9,014-9,512 spectra/s, end to end 4,447-4,835
  spectra/s (ratio 0.47-0.54), peak RSS 1,040-1,113 MB.
- warm (files in memory): ceiling 14,416-15,829 spectra/s, end to end 5,267-5,479 spectra/s
  (ratio 0.35-0.37), peak RSS 1,343-1,359 MB.
- CPU per spectrum: read 23-37 us, forward 67-81 us, end to end 334-371 us. The end-to-end
  run is CPU-bound on both cores: preprocessing (continuum, merge, rest-frame shift) ~130-150
  us, S/N ~33 us, standardisation + input distance ~20-28 us, the network ~70 us,
  selection/flags/Parquet/VAC the rest.

Earlier the same day, the refinement step on 512 pixels (forward 43,668 spectra/s), load
1.8-1.9: cold 4,614 spectra/s (ceiling 9,923, ratio 0.46), warm 5,476 (ceiling 20,362, ratio
0.27).

First session, measured 2026-11-25 on the 2-core development machine, trained bundle (default architecture),
101,081 spectra in 80 coadds (wall-clock rates depend on the load more than on the code):

- before the compiled kernels (numpy preprocessing), load average 6.4-8.8: read 4,886
  spectra/s, forward 5,323 spectra/s, ceiling 2,547 spectra/s, end to end 707 spectra/s
  (ratio 0.28), peak RSS 1,060 MB. ``--profile`` CPU time per spectrum (load ~10, one torch
  thread): read 74 us, selection + S/N 147 us, preprocess 418 us, network + input distance
  242 us, flags + Parquet 10 us: 891 us in all.
- with the numba 0.68.1 kernels (``spectra.kernels``), nearly idle machine (load average
  1.2-1.7): read 21,633 spectra/s, forward 70,641 spectra/s, ceiling 16,561 spectra/s, end to
  end **5,533 spectra/s** (ratio 0.33), peak RSS 928 MB; CPU time per spectrum: read 42 us,
  forward 28 us, end to end 317 us. Four more runs at that load: 4,655 (a burst from another
  user), 5,521 and 5,508 spectra/s (S/N threaded; ceilings 14,900-20,500, peak RSS 888-1,007
  MB); ``prefetch=2``: 5,531 spectra/s, 1,109 MB (no gain).
  Under load 7.7-5.7: end to end 3,242 spectra/s, ceiling 5,356 (ratio 0.61), 894 MB, 326 us
  CPU per spectrum. ``--profile`` (load ~6, warm): read 42 us, selection + S/N 52 us,
  preprocess 95 us wall / 143 us CPU (two threads), network + input distance 77 us wall /
  88 us CPU, flags + Parquet 12 us; ~340 us CPU in all (2.6x less than before).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "benchmarks" / ".cache"
RVTAB_COLUMNS = ["TARGETID", "SURVEY", "PROGRAM", "VRAD", "RVS_WARN", "SUCCESS"]


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
    from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
    from desi_abundances.io.datasets.fits_table import FitsTableDataset
    from desi_abundances.mock import survey

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
    import torch

    from desi_abundances.constants import label_unit
    from desi_abundances.desi.grids import brz_wavelength
    from desi_abundances.nn.bundle import ModelBundle, current_versions
    from desi_abundances.nn.network import architecture_for, build_network

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
    from desi_abundances.nn.bundle_io import load_bundle
    from desi_abundances.nn.adapter import BundleMismatchError, BundlePredictor

    path = ROOT / "data" / "06_models" / "model_bundle.safetensors" if option == "auto" else Path(option)
    if option != "random" and path.exists():
        bundle = load_bundle(path)
        try:
            BundlePredictor(bundle)
            return bundle, f"trained bundle {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
        except BundleMismatchError as exc:
            print(f"{path} not usable ({exc}); using a random network", flush=True)
    return random_bundle(project_labels(), seed), "randomly initialised network, default architecture"


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
    from desi_abundances.io.desi_coadd import read_image
    from desi_abundances.io.fits_table import open_fits

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
    from desi_abundances.io.datasets.desi_coadd import DesiCoaddDataset
    from desi_abundances.nn.predict import input_inverse_variance, standardise
    from desi_abundances.spectra import preprocess

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
    import torch

    from desi_abundances.nn.adapter import BundlePredictor

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
    from desi_abundances.io.datasets.coadd_tree import CoaddTreeDataset

    entry = yaml.safe_load((ROOT / "conf" / "base" / "catalog_inference.yml").read_text())["inference_coadds"]
    return CoaddTreeDataset(path=str(survey / "healpix"), load_args=entry.get("load_args")).load()


def run_end_to_end(survey: Path, bundle: Any, out: Path,
                   overrides: dict[str, Any]) -> tuple[dict, dict, float, float]:
    """Both inference nodes, timed: (inference report, VAC summary, seconds, CPU seconds of
    this process's threads; Dask workers in other processes are not counted)."""
    from desi_abundances.io.datasets.fits_table import FitsTableDataset
    from desi_abundances.pipelines.inference.nodes import build_vac, predict_coadds

    shutil.rmtree(out, ignore_errors=True)
    params = inference_params(out, overrides)
    start, cpu_start = time.perf_counter(), time.process_time()
    velocities = FitsTableDataset(str(survey / "mwsall-pix-mock.fits"), hdu="RVTAB", columns=RVTAB_COLUMNS).load()
    report = predict_coadds(coadd_loaders(survey), velocities, bundle, list(bundle.label_names), params)
    summary = build_vac(report, params)
    return report, summary, time.perf_counter() - start, time.process_time() - cpu_start


# --------------------------------------------------------------------------------------
# per-stage profile (for whoever optimises the slowest stage)
# --------------------------------------------------------------------------------------
def profile_stages(survey: Path, bundle: Any, n_files: int, out: Path) -> None:
    """Time each stage on the first ``n_files`` coadds, one after the other, one thread."""
    from desi_abundances import inference
    from desi_abundances.io.datasets.fits_table import FitsTableDataset
    from desi_abundances.nn.predict import predict_labels

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
          f"(wall and CPU time of all threads; torch {__import__('torch').get_num_threads()} threads):")
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


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-spectra", type=int, default=100_000, help="target spectra in the mock survey")
    parser.add_argument("--spectra-per-coadd", type=int, default=1250)
    parser.add_argument("--seed", type=int, default=20251124)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--bundle", default="auto", help="auto (data/06_models if usable), random, or a path")
    parser.add_argument("--forward-spectra", type=int, default=40_960, help="spectra through the network for r_forward")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override params:inference for the end-to-end run (YAML values)")
    parser.add_argument("--page-cache", nargs="+", choices=["cold", "warm"], default=["cold", "warm"],
                        help="page-cache states to measure in (the first is the JSON headline): "
                             "cold = files evicted, read from disk (a whole release); warm = in memory")
    parser.add_argument("--profile", action="store_true", help="per-stage timing on a few coadds")
    parser.add_argument("--profile-files", type=int, default=6)
    args = parser.parse_args(argv)
    overrides = {"progress": True}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)

    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    import torch

    print(f"load average before: {load_average()}", flush=True)
    survey = ensure_mock_survey(args.cache, args.n_spectra, args.spectra_per_coadd, args.seed)
    files = coadd_files(survey)
    bundle, bundle_kind = choose_bundle(args.bundle, args.seed)
    print(f"mock survey: {survey} ({len(files)} coadds); model: {bundle_kind}; torch threads "
          f"{torch.get_num_threads()}", flush=True)

    inputs = forward_inputs(bundle, files, 8192)
    r_forward, forward_s, forward_cpu = measure_forward(bundle, inputs, args.forward_spectra)
    del inputs
    print(f"network forward pass: {args.forward_spectra} spectra in {forward_s:.1f} s = {r_forward:.0f} spectra/s",
          flush=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu_forward_us = 1e6 * forward_cpu / args.forward_spectra
    runs: dict[str, dict[str, Any]] = {}
    for state in args.page_cache:
        print(f"\n--- page cache {state} ---", flush=True)
        set_page_cache(files, state)
        r_read, n_read, read_s, read_cpu = measure_read(files)
        print(f"read FLUX/IVAR/MASK: {n_read} spectra in {read_s:.1f} s = {r_read:.0f} spectra/s", flush=True)
        ceiling = 1.0 / (1.0 / r_read + 1.0 / r_forward)
        print(f"ceiling (back to back) = {ceiling:.0f} spectra/s; if they overlapped perfectly: "
              f"{min(r_read, r_forward):.0f} spectra/s", flush=True)
        set_page_cache(files, state)
        out = args.cache / "inference_output"
        with PeakRss() as memory:
            report, summary, seconds, cpu_seconds = run_end_to_end(survey, bundle, out, overrides)
        n_spectra = int(report["n_spectra_predicted"])
        end_to_end = n_spectra / seconds
        print(f"end to end: {n_spectra} spectra ({report['n_processed']} coadds) to {summary['n_rows']} VAC rows "
              f"in {seconds:.1f} s = {end_to_end:.0f} spectra/s; inference node alone "
              f"{report['spectra_per_s']:.0f} spectra/s; peak RSS {memory.peak / 2**20:.0f} MB; "
              f"ratio to the ceiling {end_to_end / ceiling:.2f}", flush=True)
        # load-independent view: CPU time per spectrum, and what it allows on idle cores
        cpu_read_us = 1e6 * read_cpu / n_read
        cpu_end_to_end_us = 1e6 * cpu_seconds / max(n_spectra, 1)
        ceiling_idle = 1e6 / (cpu_read_us + cpu_forward_us / cores)
        end_to_end_idle = 1e6 * cores / cpu_end_to_end_us
        print(f"CPU time per spectrum: read {cpu_read_us:.0f} us, forward {cpu_forward_us:.0f} us, end to end "
              f"{cpu_end_to_end_us:.0f} us (all threads); on {cores} idle cores that allows at most "
              f"{end_to_end_idle:.0f} spectra/s end to end vs a ceiling of {ceiling_idle:.0f}", flush=True)
        runs[state] = {
            "end_to_end_spectra_per_s": round(end_to_end, 1),
            "ceiling_spectra_per_s": round(ceiling, 1),
            "ratio": round(end_to_end / ceiling, 3),
            "peak_rss_mb": round(memory.peak / 2**20, 1),
            "n_spectra": n_spectra,
            "read_spectra_per_s": round(r_read, 1),
            "scheduler": report["scheduler"],
            "cpu_us_per_spectrum": {"read": round(cpu_read_us, 1), "forward": round(cpu_forward_us, 1),
                                    "end_to_end": round(cpu_end_to_end_us, 1)},
            "idle_cores_end_to_end_spectra_per_s": round(end_to_end_idle, 1),
            "idle_cores_ceiling_spectra_per_s": round(ceiling_idle, 1),
        }
    if args.profile:
        profile_stages(survey, bundle, args.profile_files, args.cache / "profile_output")
    print(f"load average after: {load_average()}", flush=True)
    headline = runs[args.page_cache[0]]
    result = {
        **{key: headline[key] for key in ("end_to_end_spectra_per_s", "ceiling_spectra_per_s",
                                          "ratio", "peak_rss_mb", "n_spectra")},
        "page_cache": args.page_cache[0],
        "forward_spectra_per_s": round(r_forward, 1),
        "model": bundle_kind,
        "load_average": os.getloadavg()[0],
        "runs": runs,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
