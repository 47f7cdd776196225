"""Transfer across instruments: train on the stars of one group (a stellar library, e.g.
MILES), test on those of another (STELIB), and the reverse. Does the accuracy hold, and do
the out-of-distribution flags fire on the other instrument's spectra?

The training group's stars are split train / validation by a stratified split on the label
bins (``nn.splits``); every star of the other group is a test star. The three methods run as
in the cross-validation (``cross_validation.run_split``). Reported per direction: robust
std, bias and z std per method and label, and the fraction of test stars beyond the
network's ``ood_threshold`` (the VAC's FAR_FROM_TRAINING bit).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.constants import label_unit
from desi_abundances.evaluation import cross_validation, metrics, report
from desi_abundances.nn.splits import stratified_split
from desi_abundances.spectra import Spectra

logger = logging.getLogger(__name__)

SUMMARY_METRICS = ("robust_std", "bias", "z_std")
"""Per method, the columns of the Markdown table."""


def transfer_split(target_ids: np.ndarray, group: np.ndarray, train_group: str,
                   test_group: str, keys: np.ndarray, validation_fraction: float, seed: int
                   ) -> pd.DataFrame:
    """``data_split`` (TARGETID, split): ``train_group``'s stars train / validation (a
    stratified split by ``keys``), ``test_group``'s stars test, the others in no split.

    Raises:
        ValueError: when either group has no star.
    """
    ids = np.asarray(target_ids, np.int64)
    group = np.asarray(group).astype(str)
    train_rows, test_rows = group == train_group, group == test_group
    if not train_rows.any() or not test_rows.any():
        raise ValueError(f"transfer {train_group} -> {test_group}: {train_rows.sum()} training "
                         f"and {test_rows.sum()} test stars")
    fractions = {"train": 1.0 - float(validation_fraction),
                 "validation": float(validation_fraction), "test": 0.0}
    trained = stratified_split(ids[train_rows], np.asarray(keys)[train_rows], fractions, seed)
    tested = pd.DataFrame({"TARGETID": ids[test_rows], "split": "test"})
    return pd.concat([trained, tested], ignore_index=True).sort_values("TARGETID",
                                                                       ignore_index=True)


def direction_report(table: pd.DataFrame, labels: Sequence[str], settings: Mapping[str, Any],
                     n_train: int) -> dict[str, Any]:
    """Metrics of one direction: ``{n_train, n_test, ood_fraction, <method>: {label: stats}}``."""
    return {"n_train": int(n_train), "n_test": int(len(table)),
            "ood_fraction": float(np.mean(table["network_ood"].to_numpy(bool))),
            **cross_validation.table_metrics(table, labels, settings)}


def transfer_test(spectra: Spectra, group: pd.Series, keys: np.ndarray, labels: Sequence[str],
                  training: Mapping[str, Any], settings: Mapping[str, Any],
                  directions: Sequence[Sequence[str]], validation_fraction: float = 0.15,
                  seed: int = 0, min_iqr: float = 1e-3) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every ``(train_group, test_group)`` of ``directions``; ``group`` and ``keys`` are
    row-matched to ``spectra``.

    Returns:
        the test tables of all directions (columns ``train_group``, ``test_group``) and
        ``{"directions": {"MILES->STELIB": direction_report, ...}}``.
    """
    ids = spectra.meta["TARGETID"].to_numpy()
    tables, content = [], {}
    for train_group, test_group in directions:
        data_split = transfer_split(ids, np.asarray(group), train_group, test_group, keys,
                                    validation_fraction, seed)
        n_train = int((data_split["split"] == "train").sum())
        logger.info("transfer %s -> %s: %s", train_group, test_group,
                    data_split["split"].value_counts().to_dict())
        table, _ = cross_validation.run_split(spectra, data_split, labels, training, settings,
                                              min_iqr)
        table["train_group"], table["test_group"] = train_group, test_group
        tables.append(table)
        content[f"{train_group}->{test_group}"] = direction_report(table, labels, settings, n_train)
    return pd.concat(tables, ignore_index=True), metrics.json_safe({"directions": content})


def flat_transfer_metrics(content: Mapping[str, Any]) -> dict[str, float]:
    """MLflow metrics ``<method>/transfer_<train>_to_<test>/<label>.<metric>`` and
    ``network/transfer_<train>_to_<test>/ood_fraction`` (finite values only)."""
    flat: dict[str, float] = {}
    for direction, entry in content["directions"].items():
        section = "transfer_" + direction.replace("->", "_to_").lower()
        flat[f"network/{section}/ood_fraction"] = float(entry["ood_fraction"])
        for method in report.METHODS:
            for label, stats in entry[method].items():
                for suffix, value in metrics.finite_metrics(stats).items():
                    flat[f"{method}/{section}/{label}.{suffix}"] = value
    return flat


def markdown(content: Mapping[str, Any], labels: Sequence[str], data_name: str = "",
             reference: Mapping[str, Any] | None = None) -> str:
    """The transfer section: per direction and label, robust std / bias / z std of each
    method, and the out-of-distribution fraction (beside the cross-validation's when
    ``reference`` (cross-validation content) is given)."""
    title = "# Transfer across instruments" + (f" - {data_name}" if data_name else "")
    header = ["direction", "label", "unit"]
    for method in report.METHODS:
        header += [f"{method} {name.replace('_', ' ')}" for name in SUMMARY_METRICS]
    lines = [title, "", "Trained on one library (train + validation, stratified), tested on "
             "every star of the other. Residual = method - literature.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for direction, entry in content["directions"].items():
        for label in labels:
            row = [direction, label, label_unit(label)]
            for method in report.METHODS:
                stats = entry[method][label]
                row += [metrics.format_value(stats.get(name)) for name in SUMMARY_METRICS]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Test stars beyond the network's out-of-distribution threshold "
              "(FAR_FROM_TRAINING):"]
    for direction, entry in content["directions"].items():
        lines.append(f"- {direction}: {entry['ood_fraction']:.1%} of {entry['n_test']} "
                     f"(trained on {entry['n_train']} stars)")
    if reference and reference.get("pooled_ood_fraction") is not None:
        lines.append(f"- within the libraries (cross-validation, pooled): "
                     f"{reference['pooled_ood_fraction']:.1%}")
    return "\n".join(lines) + "\n"
