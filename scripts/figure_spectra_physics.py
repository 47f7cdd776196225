"""Figure: the physics in the spectra, per DESI arm, for a dwarf, a giant and a metal-poor
halo giant.

For each target (Teff K, log g dex, [Fe/H] dex) the NEAREST star of the committed Turbospectrum
library (``data/spectral_library/chunks``; distance in units of 500 K, 0.5 dex, 0.25 dex) is
shown, degraded to DESI's resolution on each arm's pixels (``desi.instrument.lsf_matrix``),
beside the emulator's and the analytic model's spectra for the SAME labels (the library
star's), degraded the same way. The library spectra are synthetic (1D LTE Turbospectrum
with MARCS atmospheres), not observations. Wavelengths in vacuum Angstrom, flux continuum-
normalised.

    python scripts/figure_spectra_physics.py [--library data/spectral_library]
        [--output docs/figures/spectra_physics.png] [--dpi 80]

Prints which library star stands for each target and the rms flux difference (emulator -
library, analytic - library) per arm.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.desi.instrument import lsf_matrix
from desi_abundances.spectral_models import build as build_spectral_model
from desi_abundances.synthesis.library import LIBRARY_RESOLVING_POWER, read_library

TARGETS = {
    "dwarf": (5800.0, 4.4, 0.0),
    "giant": (4700.0, 2.5, 0.0),
    "metal-poor halo giant": (5000.0, 2.0, -2.0),
}
"""Target (Teff K, log g dex, [Fe/H] dex) of each row of the figure."""
DISTANCE_SCALE = np.array([500.0, 0.5, 0.25])
ANALYTIC_OFFSET = -0.8
"""The analytic model is drawn shifted down by this much so the curves do not overlap."""

FEATURES: dict[str, list[tuple[float, str]]] = {
    "B": [(3934.8, "Ca II K"), (3969.6, "H"), (4102.9, r"H$\delta$"), (4300.0, "CH G"),
          (4341.7, r"H$\gamma$"), (4862.7, r"H$\beta$"), (5175.0, "Mg b")],
    "R": [(5894.0, "Na D"), (6564.6, r"H$\alpha$"), (7055.0, "TiO")],
    "Z": [(8500.4, "Ca T"), (8544.4, "Ca T"), (8664.5, "Ca T"), (8434.0, "TiO")],
}
"""Features marked on each arm (vacuum Angstrom): Balmer lines, Ca II H&K, CH G band, Mg b,
Na D, the Ca II triplet and TiO band heads."""


def nearest_library_star(labels: pd.DataFrame, target: tuple[float, float, float]) -> int:
    """Row of ``labels`` nearest to (teff, logg, fe_h) in units of DISTANCE_SCALE."""
    values = labels[["teff", "logg", "fe_h"]].to_numpy(float)
    distance = np.sqrt((((values - np.asarray(target)) / DISTANCE_SCALE) ** 2).sum(axis=1))
    return int(np.argmin(distance))


def at_desi_resolution(flux: np.ndarray, wavelength: np.ndarray, resolving_power: float
                       ) -> dict[str, np.ndarray]:
    """{arm: flux on the arm's pixels after DESI's LSF}, from a model of native R."""
    return {arm: np.asarray(lsf_matrix(wavelength, arm_wavelength(arm), resolving_power)
                            @ flux.astype(np.float64)) for arm in ARMS}


def model_labels(library_labels: pd.Series) -> pd.DataFrame:
    """One-row frame for the analytic model and the emulator; C I and Ti II follow C and Ti
    (the library has no separate labels for them)."""
    row = library_labels.to_dict()
    row.setdefault("ci_fe", row.get("c_fe", 0.0))
    row.setdefault("tiii_fe", row.get("ti_fe", 0.0))
    return pd.DataFrame([row])


def spectra_for_targets(library_dir: Path) -> list[dict]:
    """Per target: name, the chosen library star and its three spectra per arm."""
    library = read_library(library_dir)
    labels = pd.DataFrame(library["labels"], columns=library["label_names"])
    analytic = build_spectral_model("analytic")
    emulator = build_spectral_model("emulator")
    trained_on = set(emulator.metadata.get("library_version", {}).get("chunks", {}))
    rows = []
    for name, target in TARGETS.items():
        k = nearest_library_star(labels, target)
        star = labels.iloc[k]
        frame = model_labels(star)
        chunk = chunk_name(int(library["star_index"][k]))
        rows.append({
            "name": name, "target": target, "star_index": int(library["star_index"][k]),
            "labels": star, "chunk": chunk, "in_emulator_training": chunk in trained_on,
            "library": at_desi_resolution(library["flux"][k], library["wavelength"],
                                          LIBRARY_RESOLVING_POWER),
            "emulator": at_desi_resolution(emulator.normalised_flux(frame)[0],
                                           emulator.wavelength, emulator.resolving_power),
            "analytic": at_desi_resolution(analytic.normalised_flux(frame)[0],
                                           analytic.wavelength, analytic.resolving_power),
        })
    return rows


def chunk_name(star_index: int) -> str:
    """The chunk file holding a library star (chunks hold 25 consecutive plan rows)."""
    first = star_index - star_index % 25
    return f"chunk_{first:06d}.npz"


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def make_figure(rows: list[dict]) -> Figure:
    """3 x 3 panels: stars down, DESI arms across."""
    fig = Figure(figsize=(19, 11))
    axes = fig.subplots(len(rows), len(ARMS), squeeze=False)
    for i, row in enumerate(rows):
        star = row["labels"]
        for j, arm in enumerate(ARMS):
            ax = axes[i, j]
            wave = arm_wavelength(arm)
            lib, emu, ana = row["library"][arm], row["emulator"][arm], row["analytic"][arm]
            ax.plot(wave, lib, c="k", lw=0.6, label="Turbospectrum library (synthetic)")
            ax.plot(wave, emu, c="C0", lw=0.5, alpha=0.85,
                    label=f"emulator (rms diff {100 * rms(emu, lib):.1f}%)")
            ax.plot(wave, ana + ANALYTIC_OFFSET, c="C3", lw=0.5,
                    label=f"analytic model {ANALYTIC_OFFSET:+.1f} (rms diff {100 * rms(ana, lib):.1f}%)")
            for centre, text in FEATURES[arm]:
                if wave[0] <= centre <= wave[-1]:
                    ax.axvline(centre, c="0.5", lw=0.5, ls=":", zorder=0)
                    ax.text(centre, 1.06, text, rotation=90, ha="center", va="bottom",
                            fontsize=7, color="0.25")
            ax.set_xlim(wave[0], wave[-1])
            ax.set_ylim(-0.85, 1.45)
            ax.tick_params(labelsize=8)
            ax.legend(loc="lower left", fontsize=6.5, frameon=False)
            if i == len(rows) - 1:
                ax.set_xlabel("vacuum wavelength [Angstrom]", fontsize=9)
            if j == 0:
                ax.set_ylabel("normalised flux", fontsize=9)
            ax.set_title(
                f"{arm} arm, {row['name']}: library star {row['star_index']} "
                f"(Teff {star['teff']:.0f} K, log g {star['logg']:.2f}, [Fe/H] "
                f"{star['fe_h']:+.2f}, vmic {star['vmic']:.1f} km/s)", fontsize=8)
    trained = ", ".join(f"star {r['star_index']}: {'yes' if r['in_emulator_training'] else 'no'}"
                        for r in rows)
    fig.suptitle(
        "Spectra at DESI resolution. Black: Turbospectrum 1D LTE library spectra (SYNTHETIC, "
        "not observed), the nearest library star to a dwarf (5800 K, 4.4, 0.0), a giant "
        "(4700 K, 2.5, 0.0) and a metal-poor halo giant (5000 K, 2.0, -2.0).\n"
        "Blue: the Payne-style emulator, red: the analytic mock model (shifted down by "
        f"{-ANALYTIC_OFFSET:.1f}), both at the library star's labels. "
        f"Library star in the emulator's training chunks: {trained}.", fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def save_atomically(fig: Figure, path: Path, dpi: int) -> None:
    """The figure as PNG at ``path``, written atomically (``io.atomic.atomic_write``)."""
    from desi_abundances.io.atomic import atomic_write

    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", type=Path, default=Path("data/spectral_library"))
    parser.add_argument("--output", type=Path, default=Path("docs/figures/spectra_physics.png"))
    parser.add_argument("--dpi", type=int, default=90)
    args = parser.parse_args()
    rows = spectra_for_targets(args.library)
    for row in rows:
        star = row["labels"]
        diffs = ", ".join(
            f"{arm}: emulator {100 * rms(row['emulator'][arm], row['library'][arm]):.2f}% "
            f"analytic {100 * rms(row['analytic'][arm], row['library'][arm]):.2f}%"
            for arm in ARMS)
        print(f"{row['name']} (target {row['target']}): library star {row['star_index']} in "
              f"{row['chunk']} (emulator trained on that chunk: {row['in_emulator_training']}), "
              f"Teff {star['teff']:.0f} K, log g {star['logg']:.2f}, [Fe/H] {star['fe_h']:+.2f}; "
              f"rms vs library: {diffs}")
    save_atomically(make_figure(rows), args.output, args.dpi)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
