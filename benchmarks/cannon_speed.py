"""Time The Cannon (training and test step) on a synthetic quadratic truth and compare its
label errors with the noise limit (Cramer-Rao bound of the true model).

    python benchmarks/cannon_speed.py --labels 24 --pixels 7781 --train 2500 --test 400

Prints seconds for training and for the test step, and per label the ratio of the residual
spread to the noise limit (1 = as good as the noise allows).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from desi_abundances.evaluation import cannon, cannon_fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=24)
    parser.add_argument("--pixels", type=int, default=7781)
    parser.add_argument("--train", type=int, default=2500)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--snr", type=float, default=50.0)
    parser.add_argument("--regularization", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n_labels = args.labels
    n_terms = cannon.term_exponents(n_labels).shape[0]
    theta = rng.normal(scale=0.02, size=(args.pixels, n_terms))
    theta[:, 0] = 1.0
    theta[:, 1 + n_labels:] *= 0.3
    names = [f"label{k}" for k in range(n_labels)]

    def make(n: int):
        x = rng.normal(size=(n, n_labels))
        flux = cannon.design_matrix(x) @ theta.T + rng.normal(size=(n, args.pixels)) / args.snr
        return x, flux, np.full(flux.shape, args.snr**2)

    x_train, flux_train, ivar_train = make(args.train)
    x_test, flux_test, ivar_test = make(args.test)
    start = time.perf_counter()
    model = cannon.train_cannon(x_train, flux_train, ivar_train, names,
                                regularization=args.regularization)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    fit = cannon_fit.fit_labels(model, flux_test, ivar_test)
    test_seconds = time.perf_counter() - start

    truth = cannon.CannonModel(names, np.zeros(n_labels), np.ones(n_labels), 2, theta,
                               np.zeros(args.pixels), np.ones(args.pixels, bool), 0.0)
    _, jacobian = cannon_fit._model_and_jacobian(x_test, *truth.quadratic_form())
    fisher = np.einsum("npk,npl->nkl", jacobian, jacobian) * args.snr**2
    bound = np.sqrt(np.einsum("nkk->nk", np.linalg.inv(fisher)))
    ratio = ((fit.labels - x_test) / bound).std(axis=0)
    print(f"labels {n_labels}, terms {n_terms}, pixels {args.pixels}, train {args.train}, "
          f"test {args.test}, S/N {args.snr}")
    print(f"training {train_seconds:.1f} s; test step {test_seconds:.1f} s "
          f"({1000 * test_seconds / args.test:.1f} ms/star); converged "
          f"{fit.converged.mean():.3f}")
    print("residual / noise limit per label: " + " ".join(f"{r:.2f}" for r in ratio))
    print(f"median {np.median(ratio):.2f}; z std (formal errors) median "
          f"{np.median(((fit.labels - x_test) / fit.errors).std(axis=0)):.2f}")


if __name__ == "__main__":
    main()
