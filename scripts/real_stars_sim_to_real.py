"""Sim-to-real gap, measured: a (MOCK-trained) model bundle applied to the REAL test split of
the real-star survey (`make real-stars` first). Prints robust scatter, bias, z std, the
slope of residual vs reference (compression) and the fraction beyond the bundle's
out-of-distribution threshold, for teff, logg and fe_h.

    python scripts/real_stars_sim_to_real.py data/06_models/model_bundle.safetensors
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from desi_abundances.datasets.model_bundle import ModelBundleDataset
from desi_abundances.datasets.processed_spectra import ProcessedSpectraDataset
from desi_abundances.nn.predict import predict_labels


def robust_std(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="model_bundle.safetensors (e.g. the mock's)")
    parser.add_argument("--root", default="data/real_stars", help="the real-star data root")
    args = parser.parse_args()
    bundle = ModelBundleDataset(args.bundle).load()
    spectra = ProcessedSpectraDataset(f"{args.root}/04_feature/training_spectra.fits").load()
    split = pd.read_parquet(f"{args.root}/05_model_input/data_split.parquet")
    test_ids = split.loc[split["split"] == "test", "TARGETID"]
    test = spectra.select(np.flatnonzero(spectra.meta["TARGETID"].isin(test_ids).to_numpy()))
    pred = predict_labels(bundle, test)
    print(f"REAL test split ({test.n_spectra} stellar-library stars, not DESI); bundle "
          f"is_mock={getattr(bundle, 'is_mock', None)}")
    for label in ("teff", "logg", "fe_h"):
        ref = test.meta[label].to_numpy()
        resid = pred[label].to_numpy() - ref
        z = resid / np.hypot(pred[f"{label}_err"].to_numpy(), test.meta[f"{label}_err"].to_numpy())
        ok = np.isfinite(resid)
        print(f"{label}: robust std {robust_std(resid):.3g}, bias {np.median(resid[ok]):.3g}, "
              f"z std {np.std(z[ok]):.2f}, slope {np.polyfit(ref[ok], resid[ok], 1)[0]:.2f}")
    beyond = float(np.mean(pred["input_distance"] > bundle.ood_threshold))
    print(f"beyond the OOD threshold {bundle.ood_threshold:.3g}: {beyond:.1%}")


if __name__ == "__main__":
    main()
