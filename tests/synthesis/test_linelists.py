"""MOOG -> Turbospectrum line-list conversion."""
import numpy as np
import pytest

from desi_abundances.synthesis import linelists as ll


@pytest.mark.parametrize(
    "code, species_id, ionisation, name, molecule",
    [
        ("26.0", "26.000", 1, "Fe I", False),
        ("26.1", "26.000", 2, "Fe II", False),
        ("3.0006", "3.006", 1, "Li I", False),
        ("56.1", "56.000", 2, "Ba II", False),
        ("607.01214", "0607.012014", 1, "CN", True),
        ("607.01314", "0607.013014", 1, "CN", True),
        ("106.00112", "0106.001012", 1, "HC", True),
        ("822.01646", "0822.016046", 1, "OTi", True),
        ("126.0", "0126.001056", 1, "HFe", True),
    ],
)
def test_species_mapping(code, species_id, ionisation, name, molecule):
    species = ll.moog_species_to_turbospectrum(code)
    assert species.species_id == species_id
    assert species.ionisation == ionisation
    assert species.name == name
    assert species.is_molecule is molecule


@pytest.mark.parametrize("code", ["10108.0", "607.1", "abc", "130.0"])
def test_species_mapping_rejects_unsupported(code):
    with pytest.raises(ll.LineListFormatError):
        ll.moog_species_to_turbospectrum(code)


def test_unsold_factor_by_ionisation():
    assert ll.unsold_factor(1) == ll.UNSOLD_FACTOR_NEUTRAL == 2.5
    assert ll.unsold_factor(2) == ll.UNSOLD_FACTOR_ION == 1.5


MOOG_TEXT = """linemake test list
  3600.100      26.0     2.000    -1.000
  3600.050      26.1     3.000    -2.000    -7.500
  5000.000      26.0     1.000    -0.500
  3700.000 607.01214     0.005   -10.777               7.724          1500Ra0045
  9900.000      26.0     1.000    -0.500
  3610.000       1.0    10.199    -1.000
"""


def test_read_moog_keeps_range_and_damping():
    table = ll.read_moog_linelist(MOOG_TEXT.splitlines(), (3590.0, 9845.0))
    assert list(table["wavelength"]) == [3600.1, 3600.05, 5000.0, 3700.0, 3610.0]
    assert np.isnan(table.loc[0, "damping"]) and table.loc[1, "damping"] == -7.5
    assert table.loc[3, "species"] == "607.01214"


def test_exclusions():
    table = ll.read_moog_linelist(MOOG_TEXT.splitlines(), (3590.0, 9845.0))
    no_h = ll.exclude_species(table, ["1.0"])
    assert "1.0" not in set(no_h["species"]) and len(no_h) == 4
    outside = ll.exclude_wavelength_window(no_h, (4200.0, 9200.0))
    assert 5000.0 not in set(outside["wavelength"])


def test_turbospectrum_blocks():
    table = ll.read_moog_linelist(MOOG_TEXT.splitlines(), (3590.0, 9845.0))
    table = ll.exclude_species(table, ["1.0"])
    text = ll.format_turbospectrum_blocks(table, "test")
    lines = text.splitlines()
    headers = [l for l in lines if l.startswith("'") and l.split()[0].strip("'")[0].isdigit()]
    # Fe I, Fe II and CN blocks with their ionisation and line counts
    parsed = [(h.split("'")[1].strip(), int(h.split("'")[2].split()[0]), int(h.split("'")[2].split()[1]))
              for h in headers]
    assert ("26.000", 1, 2) in parsed and ("26.000", 2, 1) in parsed and ("0607.012014", 1, 1) in parsed
    fe_i_header = next(h for h, p in zip(headers, parsed) if p[:2] == ("26.000", 1))
    fe_i = lines[lines.index(fe_i_header) + 2]
    # sorted by wavelength; Unsold factor 2.5 for Fe I with no damping
    assert fe_i.split()[0] == "3600.100" and float(fe_i.split()[3]) == 2.5
    fe_ii = next(l for l in lines if l.strip().startswith("3600.050"))
    assert float(fe_ii.split()[3]) == -7.5  # MOOG's log gamma6 kept
    cn = next(l for l in lines if l.strip().startswith("3700.000"))
    assert cn.split()[1:3] == ["0.005", "-10.777"]


def test_classical_damping():
    assert ll.classical_radiative_damping(np.array([5000.0]))[0] == pytest.approx(8.892e7, rel=1e-3)
