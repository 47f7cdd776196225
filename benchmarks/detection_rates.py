"""MOCK detection rates of the quality flags (issue 15): how often a spectrum that is not a
normal single star gets flagged, and how often a normal one does.

A sample of normal survey stars (MWS targets with a trusted VRAD and COADD_FIBERSTATUS 0,
from the default mock's coadds) is predicted through the code inference uses
(``nn.adapter.BundlePredictor.prepare`` / ``predict``, then ``inference.flags.quality_flags``),
and so are injected cases made from the same coadds:

* wrong velocity: the spectrum shifted to its rest frame with VRAD + dv, |dv| uniform in
  100-500 km/s, random sign;
* composite (double-lined) binaries of two random survey stars of one coadd
  (``tests/support/injected_spectra.composite``): the secondary scaled to ``q`` times the
  primary's median flux per arm, q uniform in 0.3-1, and moved to the primary's velocity
  plus dv. |dv| is drawn stratified, an equal number in each of the bins 0-50, 50-150,
  150-300 km/s (uniform within a bin, random sign): the bins are where a composite is
  unresolved at DESI's resolution (FWHM ~ 60-150 km/s), partly and wholly resolved; a
  physical distribution (most SB2s at |dv| < 100 km/s) would leave the resolved bins with
  few cases, and the result is reported per bin anyway;
* REAL galaxies: the coadds of ``--real-dir`` (when present), given an MWS entry with
  VRAD 0 (a star's catalogue velocity would have been used).

A case counts as flagged when any of POOR_FIT, FAR_FROM_TRAINING or COMPOSITE (when the
code has that bit) is set. Printed: the fraction flagged per case (with each bit's share),
per flux-ratio and |dv| bin for the composites, the false-positive rate of the normal stars
per S/N bin and (with ``--truth``) for the mock's single stars and its single-lined binaries
(whose VRAD is off by the orbit), the rates at other COMPOSITE thresholds, and the CPU time
(``time.process_time``, one torch thread, best of 5) of ``nn.binaries.composite_score`` per
spectrum beside that of the whole ``predict``. Runs on code without the COMPOSITE bit too
(the figures before it).

    PYTHONPATH=src python benchmarks/detection_rates.py [--n-stars 400] [--seed 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from desi_abundances.datasets.fits_table import FitsTableDataset
from desi_abundances.inference.flags import FLAG_BITS, quality_flags
from desi_abundances.inference.selection import target_outcomes
from desi_abundances.inference.settings import FlagSettings, InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup, radial_velocity_table
from desi_abundances.io.desi_coadd import read_coadd
from desi_abundances.nn.adapter import BundlePredictor
from desi_abundances.nn.bundle_io import load_bundle
from desi_abundances.nn.fit_quality import CHI2_BLOCK_ROWS
from desi_abundances.nn.predict import standardise_with_distance
from desi_abundances.spectra import missing_arm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from injected_spectra import composite  # noqa: E402

try:  # absent before the COMPOSITE bit: the benchmark then measures the other flags only
    from desi_abundances.nn.binaries import composite_score, composite_templates, floored_weight
except ImportError:  # pragma: no cover
    composite_score = composite_templates = floored_weight = None

SNR_BINS = (5.0, 10.0, 20.0, 40.0, 80.0, np.inf)
Q_BINS = (0.3, 0.5, 0.7, 1.0)
DV_BINS = (0.0, 50.0, 150.0, 300.0)
FLAGGING_BITS = ("POOR_FIT", "FAR_FROM_TRAINING", "COMPOSITE")
READ = {"read_exp_fibermap": False, "read_scores": False}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = ROOT / "data"
    parser.add_argument("--coadds", type=Path, default=data / "01_raw" / "desi")
    parser.add_argument("--mws", type=Path, default=data / "01_raw" / "mwsall-pix-mock.fits")
    parser.add_argument("--truth", type=Path, default=data / "01_raw" / "mock_truth.parquet")
    parser.add_argument("--bundle", type=Path,
                        default=data / "06_models" / "model_bundle.safetensors")
    parser.add_argument("--real-dir", type=Path, default=ROOT.parent / "shared" / "data" / "real_desi")
    parser.add_argument("--n-stars", type=int, default=400, help="normal stars")
    parser.add_argument("--n-coadds", type=int, default=4, help="coadds sampled from")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def flagging_mask() -> int:
    """The flag bits that count as 'flagged' (those this code has)."""
    return sum(1 << FLAG_BITS[name] for name in FLAGGING_BITS if name in FLAG_BITS)


def predict_flags(predictor: BundlePredictor, coadd, vrad: np.ndarray,
                  settings: InferenceSettings) -> pd.DataFrame:
    """Predictions and ``flag`` of every row of ``coadd`` at velocities ``vrad`` (km/s), as
    ``inference.prepare.finish_partition`` makes them."""
    prepared = predictor.prepare(coadd, vrad)
    table = predictor.predict(prepared)
    table["snr"] = prepared.meta["snr"].to_numpy(np.float64)
    table["vrad_kms"] = vrad
    table["COADD_FIBERSTATUS"] = np.zeros(len(table), np.int32)
    table["flag"], _ = quality_flags(table, predictor.label_names, predictor.label_min,
                                     predictor.label_max, predictor.ood_threshold, settings.flags,
                                     predictor.label_trained, missing_arm(coadd))
    return table


def normal_rows(coadd, lookup: RadialVelocityLookup) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vrad) of the coadd's MWS targets with a trusted VRAD and fibre status 0."""
    survey, program = (str(coadd.header.get(k, "")).lower() for k in ("SURVEY", "PROGRAM"))
    targetid = coadd.fibermap["TARGETID"].to_numpy(np.int64)
    vrad, found = lookup.lookup(survey, program, targetid)
    rows, _ = target_outcomes(coadd, found, vrad, True)
    good = np.isfinite(vrad[rows]) & (coadd.fibermap["COADD_FIBERSTATUS"].to_numpy()[rows] == 0)
    return rows[good], vrad[rows[good]]


def draw_dv(rng: np.random.Generator, n: int) -> np.ndarray:
    """|dv| stratified over :data:`DV_BINS` (equal numbers, uniform within), random sign."""
    which = rng.integers(0, len(DV_BINS) - 1, n)
    low, high = np.asarray(DV_BINS)[which], np.asarray(DV_BINS)[which + 1]
    return rng.uniform(low, high) * rng.choice([-1.0, 1.0], n)


def run_cases(args, predictor, settings, rng) -> dict[str, pd.DataFrame]:
    """Predicted tables of the normal sample and of each injected case."""
    rvtab = FitsTableDataset(str(args.mws), hdu="RVTAB").load()
    lookup = RadialVelocityLookup(radial_velocity_table(rvtab))
    paths = sorted(args.coadds.rglob("coadd-*.fits"))
    paths = [paths[i] for i in sorted(rng.choice(len(paths), min(args.n_coadds, len(paths)),
                                                 replace=False))]
    per_coadd = max(1, args.n_stars // len(paths))
    parts: dict[str, list[pd.DataFrame]] = {"normal": [], "wrong_velocity": [], "composite": []}
    cpu: list[tuple[float, float, int]] = []
    for path in paths:
        coadd = read_coadd(path, **READ)
        rows, vrad = normal_rows(coadd, lookup)
        pick = rng.choice(rows.size, min(per_coadd, rows.size), replace=False)
        sample = coadd.select(rows[pick])
        v1 = vrad[pick]
        parts["normal"].append(predict_flags(predictor, sample, v1, settings))
        cpu.append(composite_cpu(predictor, predictor.prepare(sample, v1)))
        dv = rng.uniform(100.0, 500.0, pick.size) * rng.choice([-1.0, 1.0], pick.size)
        wrong = predict_flags(predictor, sample, v1 + dv, settings)
        wrong["dv_kms"] = dv
        parts["wrong_velocity"].append(wrong)
        for _ in range(2):  # two composites per normal star: finer flux-ratio/dv bins
            other = rng.choice(rows.size, pick.size)
            other = np.where(other == pick, (other + 1) % rows.size, other)
            q = rng.uniform(0.3, 1.0, pick.size)
            dv = draw_dv(rng, pick.size)
            both = coadd.select(np.concatenate([rows[pick], rows[other]]))
            shift = v1 + dv - vrad[other]  # the secondary moved to the primary's VRAD + dv
            binary = composite(both, np.arange(pick.size), pick.size + np.arange(pick.size),
                               q, shift)
            table = predict_flags(predictor, binary, v1, settings)
            table["flux_ratio"], table["dv_kms"] = q, dv
            parts["composite"].append(table)
        print(f"  {path.name}: {pick.size} stars", flush=True)
    cases = {name: pd.concat(tables, ignore_index=True) for name, tables in parts.items()}
    real = sorted(args.real_dir.glob("coadd-*.fits")) if args.real_dir.is_dir() else []
    if real:
        tables = []
        for path in real:
            coadd = read_coadd(path, **READ)
            tables.append(predict_flags(predictor, coadd, np.zeros(coadd.n_spectra), settings))
        cases["REAL galaxies"] = pd.concat(tables, ignore_index=True)
    if cpu and cpu[0][2]:
        n = sum(c[2] for c in cpu)
        print(f"CPU (time.process_time, best of {CPU_REPEATS}, {torch.get_num_threads()} "
              f"threads): composite score {1e6 * sum(c[0] for c in cpu) / n:.1f} us per spectrum, "
              f"whole predict (network, chi-square, score) {1e6 * sum(c[1] for c in cpu) / n:.0f} us")
    return cases


CPU_REPEATS = 5


def composite_cpu(predictor: BundlePredictor, prepared) -> tuple[float, float, int]:
    """(seconds in ``nn.binaries.composite_score``, seconds in the whole ``predict``, spectra)
    of prepared spectra, each the best of :data:`CPU_REPEATS` runs; (0, 0, 0) without it. The
    floored weights and RCHI2_FLOOR it reads are POOR_FIT's too, made once by
    ``nn.fit_quality``: not counted in the score's seconds."""
    refinement = getattr(predictor.network, "refinement", None)
    if composite_score is None or refinement is None:
        return 0.0, 0.0, 0
    bundle = predictor.bundle
    inputs, _, ivar = standardise_with_distance(prepared.flux, prepared.ivar, prepared.mask,
                                                bundle.pixel_median, bundle.pixel_iqr, True)
    inputs, ivar = torch.from_numpy(inputs), torch.from_numpy(ivar)
    best_score, best_predict = np.inf, np.inf
    with torch.inference_mode():
        labels = predictor.network(inputs, ivar)[0]
        pixels = refinement.pixel_index
        residual = (torch.index_select(inputs, 1, pixels) - refinement.design(
            labels[:, refinement.label_index]) @ refinement.coefficients)
        pixel_ivar = torch.index_select(ivar, 1, pixels)
        # shared with POOR_FIT (RCHI2_FLOOR): computed once by nn.fit_quality, not timed here
        weight = floored_weight(pixel_ivar)
        rchi2_floor = (residual * weight * residual).sum(dim=1) / (pixel_ivar > 0).sum(dim=1)
        templates = composite_templates(bundle.wavelength, bundle.pixel_median, bundle.pixel_iqr,
                                        pixels.numpy(), refinement.jacobian.numpy())
        for _ in range(CPU_REPEATS):
            start = time.process_time()
            for block in range(0, residual.shape[0], CHI2_BLOCK_ROWS):
                rows = slice(block, block + CHI2_BLOCK_ROWS)
                composite_score(residual[rows], weight[rows], rchi2_floor[rows], templates)
            best_score = min(best_score, time.process_time() - start)
    for _ in range(CPU_REPEATS):
        start = time.process_time()
        predictor.predict(prepared)
        best_predict = min(best_predict, time.process_time() - start)
    return best_score, best_predict, residual.shape[0]


def rate(flag: np.ndarray, mask: int) -> str:
    if flag.size == 0:
        return "     -      "
    hit = (flag & mask) != 0
    return f"{hit.mean():6.1%} ({hit.sum():3d}/{flag.size:3d})"


def report(cases: dict[str, pd.DataFrame]) -> None:
    mask = flagging_mask()
    names = [name for name in FLAGGING_BITS if name in FLAG_BITS]
    print(f"\nMOCK detection rates (flagged = any of {', '.join(names)})")
    print(f"{'case':<16s} {'flagged':>16s}  " + "  ".join(f"{n:>17s}" for n in names))
    for case, table in cases.items():
        flag = table["flag"].to_numpy()
        bits = "  ".join(f"{rate(flag, 1 << FLAG_BITS[n]):>17s}" for n in names)
        print(f"{case:<16s} {rate(flag, mask):>16s}  {bits}")
    binaries = cases["composite"]
    flag = binaries["flag"].to_numpy()
    q, dv = binaries["flux_ratio"].to_numpy(), np.abs(binaries["dv_kms"].to_numpy())
    print("\nMOCK composites: fraction flagged by flux ratio (rows) and |dv| km/s (columns)")
    print(f"{'q':<10s}" + "".join(f"{f'{a:.0f}-{b:.0f}':>18s}" for a, b in zip(DV_BINS, DV_BINS[1:]))
          + f"{'all':>18s}")
    for qa, qb in zip(Q_BINS, Q_BINS[1:]):
        in_q = (q >= qa) & (q < qb + (qb == Q_BINS[-1]))
        cells = [rate(flag[in_q & (dv >= a) & (dv < b)], mask) for a, b in zip(DV_BINS, DV_BINS[1:])]
        print(f"{f'{qa:.1f}-{qb:.1f}':<10s}" + "".join(f"{c:>18s}" for c in cells)
              + f"{rate(flag[in_q], mask):>18s}")
    cells = [rate(flag[(dv >= a) & (dv < b)], mask) for a, b in zip(DV_BINS, DV_BINS[1:])]
    print(f"{'all':<10s}" + "".join(f"{c:>18s}" for c in cells) + f"{rate(flag, mask):>18s}")
    print("\nMOCK by S/N bin: false positives (normal stars) and composites / wrong velocity flagged")
    print(f"{'S/N':<10s}{'normal (FP)':>18s}{'composite':>18s}{'composite dv>50':>18s}"
          f"{'wrong velocity':>18s}")
    for a, b in zip(SNR_BINS, SNR_BINS[1:]):
        cells = []
        for case, extra in (("normal", None), ("composite", None), ("composite", 50.0),
                            ("wrong_velocity", None)):
            table = cases[case]
            snr = table["snr"].to_numpy()
            keep = (snr >= a) & (snr < b)
            if extra is not None:
                keep &= np.abs(table["dv_kms"].to_numpy()) >= extra
            cells.append(rate(table["flag"].to_numpy()[keep], mask))
        print(f"{f'{a:.0f}-{b:.0f}':<10s}" + "".join(f"{c:>18s}" for c in cells))
    normal = cases["normal"]
    if "mock_binary" in normal.columns:
        single = ~normal["mock_binary"].to_numpy(bool)
        print(f"normal stars, MOCK truth single: {rate(normal['flag'].to_numpy()[single], mask)}; "
              f"MOCK single-lined binaries (VRAD off by ~N(0, 21) km/s): "
              f"{rate(normal['flag'].to_numpy()[~single], mask)}")
    snr = normal["snr"].to_numpy()
    below = snr < SNR_BINS[0]
    print(f"(normal stars with S/N < {SNR_BINS[0]:.0f}: {below.sum()}, "
          f"flagged {rate(cases['normal']['flag'].to_numpy()[below], mask).strip()})")


def threshold_scan(cases: dict[str, pd.DataFrame], current: float) -> None:
    """Rates flagged at other ``flags.max_composite_score`` values (the other bits as set)."""
    if "composite_score" not in cases["normal"].columns:
        return
    others = flagging_mask() & ~(1 << FLAG_BITS["COMPOSITE"])
    print(f"\nMOCK flagged at other COMPOSITE thresholds (now {current:g}): normal (FP), "
          "composites by |dv|, wrong velocity")
    print(f"{'threshold':<10s}{'normal':>9s}{'dv 0-50':>9s}{'50-100':>9s}{'100-150':>9s}"
          f"{'150-300':>9s}{'wrong v':>9s}")
    for threshold in (5.0, 8.0, 10.0, 15.0, 20.0, 30.0):
        cells = []
        for case, low, high in (("normal", None, None), ("composite", 0, 50), ("composite", 50, 100),
                                ("composite", 100, 150), ("composite", 150, 300),
                                ("wrong_velocity", None, None)):
            table = cases[case]
            hit = ((table["flag"].to_numpy() & others) != 0) | (
                table["composite_score"].to_numpy() > threshold)
            if low is not None:
                dv = np.abs(table["dv_kms"].to_numpy())
                hit = hit[(dv >= low) & (dv < high)]
            cells.append(f"{hit.mean():9.1%}")
        print(f"{threshold:<10g}" + "".join(cells))


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)  # as a Dask worker (and CPU time without idle threads' spinning)
    rng = np.random.default_rng(args.seed)
    bundle = load_bundle(args.bundle)
    predictor = BundlePredictor(bundle)
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_inference.yml").read_text())
    params = dict(params["inference"])
    known = FlagSettings.__dataclass_fields__  # code before a flag's threshold: left out
    params["flags"] = {k: v for k, v in (params.get("flags") or {}).items() if k in known}
    settings = InferenceSettings.from_params(params)
    print(f"MOCK bundle {args.bundle}; flags {settings.flags}")
    start = time.process_time()
    cases = run_cases(args, predictor, settings, rng)
    if args.truth.is_file():
        truth = pd.read_parquet(args.truth, columns=["TARGETID", "binary"])
        binary = truth.drop_duplicates("TARGETID").set_index("TARGETID")["binary"]
        cases["normal"]["mock_binary"] = binary.reindex(cases["normal"]["TARGETID"]).fillna(
            False).to_numpy(bool)
    print(f"cases predicted in {time.process_time() - start:.0f} s CPU")
    report(cases)
    threshold_scan(cases, settings.flags.max_composite_score
                   if hasattr(settings.flags, "max_composite_score") else np.nan)


if __name__ == "__main__":
    main()
