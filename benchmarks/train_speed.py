"""Training speed of the default label network on this machine.

Synthetic inputs of the real shape (7781 brz pixels, the configured labels) are pushed
through the real training loop (``nn.training.train_network``: AdamW, augmentation, loss,
validation pass) for a few epochs; also times the no-grad forward pass used by inference and
the one-off set-up (the SVD behind the PCA projection and the ridge skip path).

Use ``--threads 1`` on a shared machine: with other processes on the cores, torch's OpenMP
threads wait on each other and 2 threads ran 40x slower than 1 here.

    python benchmarks/train_speed.py [--train 2000] [--epochs 3] [--threads 2]

Ends with one JSON line: seconds per epoch, seconds per 1,000 training spectra (per epoch),
forward-pass spectra per second, and the set-up.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from desi_abundances.desi.grids import brz_wavelength
from desi_abundances.nn.network import architecture_for, build_network
from desi_abundances.nn.training import TrainingArrays, select_device, train_network

ROOT = Path(__file__).resolve().parents[1]


def synthetic_arrays(n: int, n_pixels: int, n_labels: int, seed: int) -> TrainingArrays:
    rng = np.random.default_rng(seed)
    labels = rng.standard_normal((n, n_labels)).astype(np.float32)
    labels[rng.random(labels.shape) < 0.1] = np.nan
    mixing = rng.standard_normal((n_labels, n_pixels)).astype(np.float32) / np.sqrt(n_labels)
    inputs = np.nan_to_num(labels) @ mixing + rng.standard_normal((n, n_pixels), np.float32)
    return TrainingArrays(inputs=inputs.astype(np.float32),
                          input_noise=np.full((n, n_pixels), 0.3, np.float32),
                          labels=labels, label_errors=np.full(labels.shape, 0.05, np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000, help="training spectra")
    parser.add_argument("--validation", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "conf/base/parameters_training.yml").read_text())["training"]
    labels = yaml.safe_load((ROOT / "conf/base/parameters.yml").read_text())["labels"]
    n_pixels = brz_wavelength().size
    architecture = architecture_for(n_pixels, len(labels), params["architecture"])
    optimisation = {**params["optimisation"], "max_epochs": args.epochs, "patience": 10**6,
                    "num_threads": args.threads, "progress_bar": False}
    torch.set_num_threads(args.threads)
    train = synthetic_arrays(args.train, n_pixels, len(labels), 0)
    validation = synthetic_arrays(args.validation, n_pixels, len(labels), 1)
    start = time.perf_counter()
    result = train_network(architecture, train, validation, optimisation)
    setup_seconds = time.perf_counter() - start - result.seconds  # PCA/ridge (SVD), once
    seconds_per_epoch = result.seconds / result.epochs_run

    network = build_network(architecture).eval()
    batch = torch.from_numpy(train.inputs[:2000])
    with torch.inference_mode():
        network(batch)
        start = time.perf_counter()
        network(batch)
        forward_rate = batch.shape[0] / (time.perf_counter() - start)

    n_parameters = sum(p.numel() for p in network.parameters())
    figures = {
        "seconds_per_epoch": round(seconds_per_epoch, 3),
        "seconds_per_1000_training_spectra": round(seconds_per_epoch / args.train * 1000, 3),
        "forward_spectra_per_second": round(forward_rate, 1),
        "setup_seconds": round(setup_seconds, 2),
        "n_train": args.train, "n_validation": args.validation, "epochs": result.epochs_run,
        "n_pixels": n_pixels, "n_labels": len(labels), "n_parameters": n_parameters,
        "hidden_sizes": architecture["hidden_sizes"], "batch_size": optimisation["batch_size"],
        "threads": args.threads, "device": str(select_device(optimisation["device"])),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
