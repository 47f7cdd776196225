"""Survey-wide validation (MOCK only): the inference catalogue of the whole mock survey
scored against the mock truth, not only the APOGEE-like test split.

Every predicted spectrum is joined to its star's true labels (``mock_truth``, on TARGETID;
repeat spectra count once each). Per label and per group of spectra: bias (median residual),
robust scatter (1.4826 MAD), z = residual / predicted error with its plain std (``z_std``)
and robust std (``z_rstd``), and the fraction of |z| < 1 and < 2 (``cov68``, ``cov95``;
0.683 and 0.954 for honest Gaussian errors). Groups: all, dwarfs / giants (true log g >=
``DWARF_LOGG``), true [Fe/H] bins, true Teff bins, S/N bins, inside / outside the training
coverage, leverage bins (the epistemic term's input, when the catalogue has LEVERAGE) and
population x S/N. Residual = predicted - true (K for teff, dex otherwise).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from desi_abundances.maths.robust import robust_std

DWARF_LOGG = 3.5
"""True log g at and above which a star counts as a dwarf (dex)."""
METAL_POOR = -1.0
"""True [Fe/H] below which a star counts as metal-poor (dex)."""
SNR_EDGES = (5.0, 10.0, 20.0, 40.0, 80.0, np.inf)
"""S/N per pixel bins (lower edge inclusive)."""
FE_H_EDGES = (-np.inf, -2.0, -1.5, -1.0, -0.5, 0.0, np.inf)
TEFF_EDGES = (-np.inf, 4500.0, 5000.0, 5500.0, 6000.0, 6500.0, np.inf)
LEVERAGE_EDGES = (-np.inf, 0.1, 0.2, 0.4, 0.8, np.inf)
"""Leverage bins (``nn.feature_density``; ~0.1 for a training-like star of the default
network)."""
COVERAGE_LABELS = ("teff", "logg", "fe_h")
"""Labels whose true values place a star inside or outside the training coverage."""
COVERAGE_PERCENTILE = 99.0
"""A star is inside the coverage when its nearest training star (true labels, standardised
by the training spread) is closer than this percentile of the training stars' own
leave-one-out nearest-neighbour distances."""
MIN_STARS = 100
"""Groups with fewer spectra are reported but not judged against the z std goal."""
Z_GOAL = (0.85, 1.15)
"""The goal band of the robust z std (issue 15)."""


def join_truth(catalogue: pd.DataFrame, truth: pd.DataFrame, labels: Sequence[str]
               ) -> pd.DataFrame:
    """Catalogue rows (lower-case columns: ``<label>``, ``<label>_err``, snr, flag, ...) with
    ``true_<label>`` from ``truth`` (one row per TARGETID); rows without truth are dropped."""
    keep = ["TARGETID", *[label for label in labels if label in truth.columns]]
    true = truth[keep].drop_duplicates("TARGETID").rename(
        columns={label: f"true_{label}" for label in keep[1:]})
    return catalogue.merge(true, on="TARGETID", how="inner")


def training_coverage(table: pd.DataFrame, train_truth: pd.DataFrame,
                      labels: Sequence[str] = COVERAGE_LABELS,
                      percentile: float = COVERAGE_PERCENTILE) -> np.ndarray:
    """(n,) bool: the row's true labels lie inside the region the training stars cover
    (nearest-neighbour rule of :data:`COVERAGE_PERCENTILE`). ``train_truth`` holds the
    training split's true labels (plain label names)."""
    train = train_truth[list(labels)].to_numpy(np.float64)
    train = train[np.all(np.isfinite(train), axis=1)]
    if len(train) < 3:
        return np.zeros(len(table), bool)
    scale = train.std(axis=0)
    scale[scale == 0] = 1.0
    tree = cKDTree(train / scale)
    own, _ = tree.query(train / scale, k=2)
    radius = np.percentile(own[:, 1], percentile)
    points = table[[f"true_{label}" for label in labels]].to_numpy(np.float64) / scale
    finite = np.all(np.isfinite(points), axis=1)
    distance = np.full(len(table), np.inf)
    if finite.any():
        distance[finite], _ = tree.query(points[finite], k=1)
    return distance <= radius


def _bins(values: np.ndarray, edges: Sequence[float], name: str, fmt: str
          ) -> dict[str, np.ndarray]:
    groups = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        if np.isinf(lo):
            key = f"{name}<{hi:{fmt}}"
        elif np.isinf(hi):
            key = f"{name}>={lo:{fmt}}"
        else:
            key = f"{name}{lo:{fmt}}-{hi:{fmt}}"
        groups[key] = (values >= lo) & (values < hi)
    return groups


def snr_groups(snr: np.ndarray) -> dict[str, np.ndarray]:
    """``snr5-10`` ... ``snr>=80`` masks (:data:`SNR_EDGES`)."""
    return _bins(snr, SNR_EDGES, "snr", "g")


def population_masks(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """dwarfs, giants and metal-poor dwarfs by true labels."""
    logg = table["true_logg"].to_numpy(np.float64)
    fe_h = table["true_fe_h"].to_numpy(np.float64)
    dwarf = logg >= DWARF_LOGG
    return {"dwarfs": dwarf, "giants": logg < DWARF_LOGG,
            "metal_poor_dwarfs": dwarf & (fe_h < METAL_POOR)}


def groups_of(table: pd.DataFrame, inside: np.ndarray) -> dict[str, np.ndarray]:
    """Every group's row mask, by name (``all``, populations, bins, coverage,
    ``<population>/<snr bin>``)."""
    snr = snr_groups(table["snr"].to_numpy(np.float64))
    populations = population_masks(table)
    groups: dict[str, np.ndarray] = {"all": np.ones(len(table), bool), **populations}
    groups.update(_bins(table["true_fe_h"].to_numpy(np.float64), FE_H_EDGES, "feh", "g"))
    groups.update(_bins(table["true_teff"].to_numpy(np.float64), TEFF_EDGES, "teff", ".0f"))
    groups.update(snr)
    groups["inside_training"] = inside
    groups["outside_training"] = ~inside
    if "leverage" in table.columns and np.isfinite(table["leverage"].to_numpy(float)).any():
        groups.update(_bins(table["leverage"].to_numpy(np.float64), LEVERAGE_EDGES,
                            "leverage", "g"))
    for population, rows in populations.items():
        for bin_name, in_bin in snr.items():
            groups[f"{population}/{bin_name}"] = rows & in_bin
    return groups


def label_stats(residual: np.ndarray, error: np.ndarray) -> dict[str, float]:
    """n, bias, robust_std, z_std, z_rstd, cov68, cov95 of finite (residual, error > 0)."""
    keep = np.isfinite(residual) & np.isfinite(error) & (error > 0)
    n = int(keep.sum())
    if n == 0:
        return {"n": 0}
    r, z = residual[keep], residual[keep] / error[keep]
    return {
        "n": n,
        "bias": float(np.median(r)),
        "robust_std": float(robust_std(r)),
        "z_std": float(np.std(z)),
        "z_rstd": float(robust_std(z)),
        "cov68": float(np.mean(np.abs(z) < 1.0)),
        "cov95": float(np.mean(np.abs(z) < 2.0)),
    }


def survey_metrics(table: pd.DataFrame, labels: Sequence[str], inside: np.ndarray
                   ) -> dict[str, dict[str, dict[str, float]]]:
    """``{group: {label: label_stats}}`` over :func:`groups_of` (labels with truth only)."""
    labels = [label for label in labels if f"true_{label}" in table.columns]
    residuals = {label: table[label].to_numpy(np.float64)
                 - table[f"true_{label}"].to_numpy(np.float64) for label in labels}
    errors = {label: table[f"{label}_err"].to_numpy(np.float64) for label in labels}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, rows in groups_of(table, inside).items():
        out[name] = {label: label_stats(residuals[label][rows], errors[label][rows])
                     for label in labels}
    return out


def goal_check(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
               labels: Sequence[str] = ("teff", "logg", "fe_h")) -> dict[str, Any]:
    """The z std goal: in every population x S/N group (dwarfs, giants) with >= MIN_STARS
    spectra, the robust z std of each of ``labels`` within :data:`Z_GOAL`. Returns the
    number of cells judged, those passing and the failing ``group/label: z_rstd``."""
    failing, judged = {}, 0
    for group, per_label in metrics.items():
        if not group.startswith(("dwarfs/", "giants/")):
            continue
        for label in labels:
            stats = per_label.get(label, {})
            if stats.get("n", 0) < MIN_STARS:
                continue
            judged += 1
            if not Z_GOAL[0] <= stats["z_rstd"] <= Z_GOAL[1]:
                failing[f"{group}/{label}"] = round(stats["z_rstd"], 3)
    return {"cells": judged, "passing": judged - len(failing), "failing": failing}


def flat_survey_metrics(metrics: Mapping[str, Mapping[str, Mapping[str, float]]]
                        ) -> dict[str, float]:
    """MLflow names ``survey/<label>/<group>/<stat>`` (``/`` in a group name becomes ``.``;
    ``<`` and ``>=`` become ``lt`` and ``ge``, which MLflow accepts)."""
    flat = {}
    for group, per_label in metrics.items():
        name = group.replace("/", ".").replace(">=", "ge").replace("<", "lt")
        for label, stats in per_label.items():
            for stat, value in stats.items():
                if np.isfinite(value):
                    flat[f"survey/{label}/{name}/{stat}"] = float(value)
    return flat


def _row(group: str, stats: Mapping[str, float], unit_digits: int) -> str:
    if stats.get("n", 0) == 0:
        return f"| {group} | 0 | | | | | |"
    return (f"| {group} | {stats['n']} | {stats['bias']:.{unit_digits}f} | "
            f"{stats['robust_std']:.{unit_digits}f} | {stats['z_rstd']:.2f} | "
            f"{stats['z_std']:.2f} | {stats['cov68']:.2f} / {stats['cov95']:.2f} |")


def summary_markdown(metrics: Mapping[str, Mapping[str, Mapping[str, float]]],
                     labels: Sequence[str], goal: Mapping[str, Any], n_spectra: int) -> str:
    """The ``metrics_summary.md`` section: one table per stellar parameter over every group,
    then the abundance ratios over the main groups, then the goal."""
    lines = [
        "## Survey-wide validation (MOCK data: whole mock survey against the mock truth)",
        "",
        f"{n_spectra} catalogue spectra joined to the mock truth. bias = median(pred - true), "
        "rscatter = 1.4826 MAD, z = (pred - true) / err: robust std (z rstd) and std, "
        "coverage = fraction |z| < 1 / < 2 (0.68 / 0.95 if honest). Dwarfs: true log g >= "
        f"{DWARF_LOGG}; metal-poor: true [Fe/H] < {METAL_POOR}; training coverage: "
        "nearest-neighbour rule on true (Teff, log g, [Fe/H]) of the training split.",
        "",
    ]
    header = ["| group | n | bias | rscatter | z rstd | z std | cov68 / cov95 |",
              "|---|---|---|---|---|---|---|"]
    for label in [lab for lab in ("teff", "logg", "fe_h") if lab in labels]:
        lines += [f"### {label}", "", *header]
        digits = 0 if label == "teff" else 3
        lines += [_row(group, per_label.get(label, {}), digits)
                  for group, per_label in metrics.items()]
        lines.append("")
    groups = ["all", "dwarfs", "giants", "inside_training", "outside_training"]
    lines += ["### abundance ratios (rscatter dex, z rstd)", "",
              "| label | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for label in labels:
        if label in ("teff", "logg", "fe_h"):
            continue
        cells = []
        for group in groups:
            stats = metrics.get(group, {}).get(label, {})
            cells.append(f"{stats['robust_std']:.3f}, {stats['z_rstd']:.2f}"
                         if stats.get("n", 0) else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Goal (z rstd in {Z_GOAL[0]}-{Z_GOAL[1]} for Teff, log g, [Fe/H] in every "
              f"population x S/N cell with >= {MIN_STARS} spectra): {goal['passing']} of "
              f"{goal['cells']} cells pass.", ""]
    if goal["failing"]:
        lines += ["Failing: " + ", ".join(f"{k} {v}" for k, v in goal["failing"].items()), ""]
    return "\n".join(lines)
