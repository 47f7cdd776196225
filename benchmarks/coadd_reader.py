"""Coadd reader speed: the project's ``io.desi_coadd.read_coadd`` against plain
``astropy.io.fits`` (memmap) reading the same FLUX/IVAR/MASK of every arm + FIBERMAP.

Builds a mock-layout coadd (``--n-spectra`` spectra on DESI's B/R/Z grids, a 25-column
FIBERMAP like the mock survey's) with the project's writer in a temporary folder, reads it
warm (page cache hot, best of ``--repeats``) and prints both figures in ms and spectra/s.
The inference throughput benchmark depends on this reader (~36,000 spectra/s warm there).

    python benchmarks/coadd_reader.py [--n-spectra 2000] [--repeats 9]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from astropy.io import fits

from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.io.desi_coadd import read_coadd, write_coadd
from desi_abundances.spectra import ArmSpectra, CoaddSpectra


def mock_coadd(n_spectra: int, seed: int = 0) -> CoaddSpectra:
    """Random spectra in the real layout (float32 flux/ivar, int32 mask, 25 FIBERMAP columns)."""
    rng = np.random.default_rng(seed)
    arms = {}
    for arm in ARMS:
        wave = arm_wavelength(arm)
        shape = (n_spectra, wave.size)
        arms[arm] = ArmSpectra(wavelength=wave,
                               flux=rng.normal(10, 1, shape).astype(np.float32),
                               ivar=rng.uniform(0.5, 2, shape).astype(np.float32),
                               mask=(rng.random(shape) < 0.01).astype(np.int32))
    columns: dict[str, np.ndarray] = {"TARGETID": np.arange(n_spectra, dtype=np.int64),
                                      "COADD_FIBERSTATUS": np.zeros(n_spectra, np.int32),
                                      "TARGET_RA": rng.uniform(0, 360, n_spectra),
                                      "TARGET_DEC": rng.uniform(-30, 80, n_spectra),
                                      "OBJTYPE": np.array(["TGT"] * n_spectra, object),
                                      "PHOTSYS": np.array(["S"] * n_spectra, object)}
    for i in range(13):
        columns[f"FLOAT_{i}"] = rng.normal(size=n_spectra).astype(np.float32)
    for i in range(6):
        columns[f"INT_{i}"] = rng.integers(0, 1 << 40, n_spectra)
    return CoaddSpectra(arms=arms, fibermap=pd.DataFrame(columns), header={"MOCK": True})


def project_reader(path: Path) -> None:
    read_coadd(path, read_exp_fibermap=False, read_scores=False)


def astropy_reader(path: Path) -> None:
    """What plain astropy does: memmap, native-endian copies of images and FIBERMAP columns."""
    with fits.open(path, memmap=True) as hdul:
        for arm in ARMS:
            for kind in ("FLUX", "IVAR", "MASK"):
                data = hdul[f"{arm}_{kind}"].data
                np.array(data, dtype=data.dtype.newbyteorder("="))
        table = hdul["FIBERMAP"].data
        columns = {}
        for name in table.names:
            values = table.field(name)
            columns[name] = values.astype(values.dtype.newbyteorder("="))
        pd.DataFrame(columns)


def best_ms(read: Callable[[Path], None], path: Path, repeats: int) -> float:
    read(path)  # warm the page cache and any lazy import
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read(path)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-spectra", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--coadd", type=Path, help="an existing coadd file instead of a new one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coadd-reader-") as folder:
        path = args.coadd or Path(folder) / "coadd-main-bright-1.fits"
        if args.coadd is None:
            write_coadd(path, mock_coadd(args.n_spectra))
        else:
            args.n_spectra = len(read_coadd(path, arms=[], read_exp_fibermap=False).fibermap)
        size_mb = path.stat().st_size / 1e6
        print(f"coadd: {args.n_spectra} spectra, {size_mb:.0f} MB; warm, best of {args.repeats}")
        for name, read in (("io.desi_coadd.read_coadd", project_reader),
                           ("plain astropy.io.fits (memmap)", astropy_reader)):
            ms = best_ms(read, path, args.repeats)
            print(f"  {name:32s} {ms:7.1f} ms  {args.n_spectra / ms * 1e3:9,.0f} spectra/s")


if __name__ == "__main__":
    main()
