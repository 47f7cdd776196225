"""Nodes of the evaluation pipeline: thin glue around ``metrics``, ``plots``, ``peers`` and
``nn.predict``.

Every method (network, ridge, The Cannon) is judged on the same test stars of
``data_split``, from the same ``training_spectra`` (flux, ivar, mask), against the same APOGEE
labels. Timings are measured here and reported in ``metrics.json`` under ``meta``.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from desi_abundances import metrics, peers, plots
from desi_abundances.spectra import Spectra

LOGGER = logging.getLogger(__name__)
METHODS = ("network", "ridge", "cannon")
SPLITS = ("train", "validation", "test")
REFERENCE = plots.REFERENCE


# --- inputs --------------------------------------------------------------------------------
def _split_rows(spectra: Spectra, data_split: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row indices of ``spectra`` in each split.

    Raises:
        KeyError / ValueError: when data_split lacks TARGETID or split, names an unknown
            split, or the test split is empty.
    """
    for column in ("TARGETID", "split"):
        if column not in data_split.columns:
            raise KeyError(f"data_split has no '{column}' column")
    unknown = set(data_split["split"].unique()) - set(SPLITS)
    if unknown:
        raise ValueError(f"data_split.split holds unknown values {sorted(unknown)}")
    split_of = dict(zip(data_split["TARGETID"].to_numpy(), data_split["split"].to_numpy()))
    assigned = np.array([split_of.get(t, "") for t in spectra.meta["TARGETID"].to_numpy()])
    rows = {split: np.nonzero(assigned == split)[0] for split in SPLITS}
    if rows["test"].size == 0:
        raise ValueError("data_split: no training_spectra star is in the test split")
    return rows


def _is_mock(spectra: Spectra, bundle: Any | None) -> bool:
    return bool(spectra.meta.attrs.get("is_mock", False)) or bool(
        getattr(bundle, "is_mock", False)
    )


def _predictions_frame(
    target_ids: np.ndarray, labels: list[str], values: np.ndarray, errors: np.ndarray
) -> pd.DataFrame:
    columns: dict[str, Any] = {"TARGETID": target_ids}
    for k, label in enumerate(labels):
        columns[label] = values[:, k]
        columns[f"{label}_err"] = errors[:, k]
    return pd.DataFrame(columns)


# --- methods -------------------------------------------------------------------------------
def predict_network(
    model_bundle: Any, training_spectra: Spectra, data_split: pd.DataFrame, labels: list[str],
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, float]:
    """Network labels of the test stars: ``nn.predict.predict_labels`` (TARGETID, ``<label>``,
    ``<label>_err``, input_distance) and the seconds it took."""
    from desi_abundances.nn.predict import predict_labels

    rows = _split_rows(training_spectra, data_split)["test"]
    test = training_spectra.select(rows)
    start = time.perf_counter()
    predictions = predict_labels(
        model_bundle,
        test,
        batch_size=int(settings.get("network", {}).get("batch_size", 1024)),
        preprocessing=training_spectra.meta.attrs.get("preprocessing"),
    )
    seconds = time.perf_counter() - start
    missing = [label for label in labels if label not in predictions.columns]
    if missing:
        raise ValueError(f"model_bundle predicts no {missing} (bundle labels: "
                         f"{list(model_bundle.label_names)}); retrain with params:labels")
    LOGGER.info("network: %d test stars in %.1f s", len(predictions), seconds)
    return predictions, seconds


def predict_ridge(
    training_spectra: Spectra, data_split: pd.DataFrame, model_bundle: Any, labels: list[str],
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ridge peer: fitted on the train split, alpha per label on validation, applied to test.
    Its inputs are the network's: pixels standardised by the bundle's median and IQR.

    Returns:
        predictions (TARGETID, ``<label>``, ``<label>_err``) and info (chosen alphas,
        validation scatter, seconds).
    """
    ridge_settings = settings.get("ridge", {})
    rows = _split_rows(training_spectra, data_split)
    test_ids = training_spectra.meta["TARGETID"].to_numpy()[rows["test"]]
    if not ridge_settings.get("enabled", True):
        nan = np.full((test_ids.size, len(labels)), np.nan)
        return _predictions_frame(test_ids, labels, nan, nan), {"enabled": False}
    if rows["validation"].size == 0:
        raise ValueError("ridge: data_split has no validation star to choose alpha")
    start = time.perf_counter()
    parts = {s: training_spectra.select(rows[s]) for s in ("train", "validation", "test")}
    label_values = {s: peers.label_matrix(parts[s].meta, labels) for s in ("train", "validation")}
    peer = peers.fit_ridge(
        parts["train"].flux, parts["train"].ivar, parts["train"].mask, label_values["train"],
        parts["validation"].flux, parts["validation"].ivar, parts["validation"].mask,
        label_values["validation"], labels,
        alphas=[float(a) for a in ridge_settings.get("alphas", [0.1, 1, 10, 100, 1000])],
        scaling=peers.PixelScaling(
            median=np.asarray(model_bundle.pixel_median, np.float64),
            iqr=np.asarray(model_bundle.pixel_iqr, np.float64),
        ) if model_bundle is not None else None,
    )
    values, errors = peer.predict(parts["test"].flux, parts["test"].ivar, parts["test"].mask)
    seconds = time.perf_counter() - start
    LOGGER.info("ridge: fitted and applied in %.1f s", seconds)
    info = {
        "enabled": True,
        "alpha": peer.alphas,
        "validation_robust_std": peer.validation_scatter,
        "n_train": int(rows["train"].size),
        "seconds": seconds,
    }
    return _predictions_frame(test_ids, labels, values, errors), info


def predict_cannon(
    training_spectra: Spectra, data_split: pd.DataFrame, labels: list[str],
    settings: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The Cannon peer: trained on train-split stars with all modelled labels known (see
    ``evaluation.cannon``), labels of the test stars by LM with inverse-Hessian errors.

    Returns:
        predictions (TARGETID, ``<label>``, ``<label>_err`` for every label, NaN for labels
        the Cannon does not model, plus ``chi2_reduced`` and ``converged``) and info.
    """
    cannon_settings = dict(settings.get("cannon", {}))
    rows = _split_rows(training_spectra, data_split)
    test_ids = training_spectra.meta["TARGETID"].to_numpy()[rows["test"]]
    nan = np.full((test_ids.size, len(labels)), np.nan)
    if not cannon_settings.get("enabled", True):
        return _predictions_frame(test_ids, labels, nan, nan), {"enabled": False}
    modelled = list(cannon_settings.get("labels") or labels)
    unknown = [label for label in modelled if label not in labels]
    if unknown:
        raise ValueError(f"evaluation.cannon.labels {unknown} are not in params:labels")
    train = training_spectra.select(rows["train"])
    train_labels = peers.label_matrix(train.meta, modelled)
    modelled, train_labels, dropped = peers.cannon_training_labels(
        train_labels, modelled, cannon_settings
    )
    complete = np.nonzero(peers.complete_label_rows(train_labels))[0]
    limit = cannon_settings.get("max_training_stars")
    if limit and complete.size > int(limit):
        rng = np.random.default_rng(int(settings.get("seed", 0)))
        complete = np.sort(rng.choice(complete, size=int(limit), replace=False))
    start = time.perf_counter()
    model = peers.fit_cannon_peer(
        train.flux[complete], train.ivar[complete], train.mask[complete],
        train_labels[complete], modelled, cannon_settings,
    )
    train_seconds = time.perf_counter() - start
    test = training_spectra.select(rows["test"])
    start = time.perf_counter()
    fit = peers.predict_cannon_peer(
        model, test.flux, test.ivar, test.mask, cannon_settings,
        train_labels=train_labels[complete], seed=int(settings.get("seed", 0)),
    )
    test_seconds = time.perf_counter() - start
    LOGGER.info(
        "The Cannon: %d labels, %d training stars, trained in %.1f s, %d test stars in %.1f s",
        len(modelled), complete.size, train_seconds, test_ids.size, test_seconds,
    )
    values, errors = nan.copy(), nan.copy()
    for k, label in enumerate(modelled):
        values[:, labels.index(label)] = fit.labels[:, k]
        errors[:, labels.index(label)] = fit.errors[:, k]
    frame = _predictions_frame(test_ids, labels, values, errors)
    frame["chi2_reduced"] = fit.reduced_chi2
    frame["converged"] = fit.converged
    info = {
        "enabled": True,
        "labels": modelled,
        "labels_not_modelled": [label for label in labels if label not in modelled],
        "labels_dropped_for_missing_values": dropped,
        "n_train": int(complete.size),
        "n_terms": int(model.theta.shape[1]),
        "n_pixels_modelled": int(model.pixel_used.sum()),
        "median_scatter": float(np.median(model.scatter[model.pixel_used])),
        "converged_fraction": float(np.mean(fit.converged)),
        "train_seconds": train_seconds,
        "test_seconds": test_seconds,
    }
    return frame, info


# --- assembling ----------------------------------------------------------------------------
def assemble_test_predictions(
    training_spectra: Spectra,
    data_split: pd.DataFrame,
    network: pd.DataFrame,
    ridge: pd.DataFrame,
    cannon: pd.DataFrame,
    labels: list[str],
) -> pd.DataFrame:
    """One row per test star: TARGETID, snr, ``apogee_<label>`` / ``apogee_<label>_err`` and
    ``<method>_<label>`` / ``<method>_<label>_err`` for network, ridge and cannon, plus
    ``network_input_distance``, ``cannon_chi2_reduced`` and ``cannon_converged``."""
    rows = _split_rows(training_spectra, data_split)["test"]
    meta = training_spectra.meta.iloc[rows].reset_index(drop=True)
    table = pd.DataFrame({"TARGETID": meta["TARGETID"].to_numpy(),
                          "snr": meta["snr"].to_numpy(np.float64)})
    for label in labels:
        table[f"{REFERENCE}_{label}"] = meta[label].to_numpy(np.float64)
        err = f"{label}_err"
        table[f"{REFERENCE}_{err}"] = (
            meta[err].to_numpy(np.float64) if err in meta else np.full(len(meta), np.nan)
        )
    for method, predictions in (("network", network), ("ridge", ridge), ("cannon", cannon)):
        if len(predictions) != len(table) or set(predictions["TARGETID"]) != set(
            table["TARGETID"]
        ):
            raise ValueError(f"{method} predictions do not cover the {len(table)} test stars")
        renamed = predictions.rename(
            columns={c: f"{method}_{c}" for c in predictions.columns if c != "TARGETID"}
        )
        table = table.merge(renamed, on="TARGETID", how="left", validate="1:1")
    return table


def common_stars(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Copy of ``table`` where, per label, a prediction is NaN unless every method that
    predicts the label at all has a finite value for that star: all methods are then scored
    on the same stars (a method that does not model a label, e.g. a label the Cannon drops,
    is ignored for it)."""
    table = table.copy()
    for label in labels:
        columns = [f"{m}_{label}" for m in METHODS if f"{m}_{label}" in table]
        active = [c for c in columns if table[c].notna().any()]
        if not active:
            continue
        shared = np.all(np.isfinite(table[active].to_numpy(np.float64)), axis=1)
        for column in active:
            table.loc[~shared, column] = np.nan
            if f"{column}_err" in table:
                table.loc[~shared, f"{column}_err"] = np.nan
    return table


def _method_frames(table: pd.DataFrame, labels: list[str]) -> dict[str, pd.DataFrame]:
    frames = {}
    for method in (REFERENCE,) + METHODS:
        columns = {"TARGETID": "TARGETID"}
        if method == REFERENCE:
            columns["snr"] = "snr"
        for label in labels:
            for suffix in ("", "_err"):
                name = f"{method}_{label}{suffix}"
                if name in table:
                    columns[name] = f"{label}{suffix}"
        frames[method] = table[list(columns)].rename(columns=columns)
    return frames


def compute_metrics(
    test_predictions: pd.DataFrame,
    labels: list[str],
    settings: dict[str, Any],
    is_mock: bool,
    network_seconds: float,
    ridge_info: dict[str, Any],
    cannon_info: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict], str]:
    """Metrics of every method, their flat MLflow form and the Markdown summary.

    Returns:
        ``metrics.json`` content ``{"network": {label: {...}}, "ridge": ..., "cannon": ...,
        "meta": {...}}`` (strict JSON: NaN -> null), the ``MlflowMetricsHistoryDataset``
        dict, and the Markdown text.
    """
    outliers = settings.get("outliers", {})
    frames = _method_frames(common_stars(test_predictions, labels), labels)
    per_method = {
        method: metrics.evaluate_predictions(
            frames[method], frames[REFERENCE], labels,
            snr_bin_edges=settings["snr_bin_edges"],
            outlier_nsigma=float(outliers.get("nsigma", 3.0)),
            outlier_absolute=outliers.get("absolute") or {},
        )
        for method in METHODS
    }
    criterion = settings.get("best_criterion", "robust_std")
    best = metrics.best_method_per_label(per_method, labels, criterion)
    meta = {
        "is_mock": bool(is_mock),
        "n_test": int(len(test_predictions)),
        "snr_bin_edges": list(settings["snr_bin_edges"]),
        "outliers": outliers,
        "best_criterion": criterion,
        "best_method": best,
        "layout": "method -> label -> metrics (residual = method - APOGEE, test split; per "
                  "label only stars every method predicts)",
        "network": {"seconds": network_seconds},
        "ridge": ridge_info,
        "cannon": cannon_info,
    }
    report = {**per_method, "meta": meta}
    flat = metrics.flat_metrics(per_method, primary_method="network")
    for method in METHODS:
        flat[f"{method}_labels_won"] = float(sum(v == method for v in best.values()))
    notes = []
    if cannon_info.get("enabled") and cannon_info.get("labels_not_modelled"):
        notes.append("The Cannon does not model " + ", ".join(cannon_info["labels_not_modelled"])
                     + " (too many missing training labels or excluded by parameters).")
    if ridge_info.get("enabled"):
        notes.append("Ridge uncertainties are the validation robust std per label (the same "
                     "for every star; they include APOGEE's noise).")
    if cannon_info.get("enabled"):
        notes.append(
            f"The Cannon: {cannon_info['n_train']} training stars with complete labels, "
            f"{cannon_info['n_terms']} terms, trained in {cannon_info['train_seconds']:.0f} s; "
            f"uncertainties from the inverse Hessian (formal)."
        )
    markdown = metrics.summary_markdown(per_method, labels, is_mock, criterion=criterion,
                                        notes=notes)
    if settings.get("data_label"):  # e.g. REAL stellar-library spectra (conf/real_stars)
        meta["data_label"] = str(settings["data_label"])
        title, _, rest = markdown.partition("\n")
        markdown = (f"{title} ({settings.get('data_tag', 'REAL')})\n\n"
                    f"**{settings['data_label']}**\n{rest}")
    return metrics.json_safe(report), metrics.mlflow_metrics_history(flat), markdown


def evaluation_is_mock(training_spectra: Spectra, model_bundle: Any) -> bool:
    """True when the spectra (header MOCK) or the bundle (is_mock) come from the mock."""
    return _is_mock(training_spectra, model_bundle)


# --- figures -------------------------------------------------------------------------------
def plot_one_to_one(table: pd.DataFrame, labels: list[str], is_mock: bool) -> Figure:
    return plots.one_to_one(table, labels, "network", is_mock)


def plot_residuals_vs_snr(
    table: pd.DataFrame, labels: list[str], settings: dict[str, Any], is_mock: bool
) -> Figure:
    return plots.residuals_vs_snr(table, labels, "network", settings.get("snr_bin_edges"),
                                  is_mock)


def plot_kiel(table: pd.DataFrame, is_mock: bool) -> Figure:
    return plots.kiel_diagram(table, "network", is_mock)


def plot_mg_fe_vs_fe_h(table: pd.DataFrame, is_mock: bool) -> Figure:
    return plots.mg_fe_vs_fe_h(table, "network", is_mock)


def plot_calibration(table: pd.DataFrame, labels: list[str], is_mock: bool) -> Figure:
    return plots.uncertainty_calibration(table, labels, METHODS, is_mock)


def plot_method_comparison(report: dict[str, Any], labels: list[str], is_mock: bool) -> Figure:
    per_method = {m: report[m] for m in METHODS}
    return plots.method_comparison(per_method, labels, is_mock)


# --- information limit (Cramer-Rao bound) --------------------------------------------------
def _information_limit_skipped(reason: str, is_mock: bool, labels: list[str], settings: dict,
                               ) -> tuple[dict[str, Any], pd.DataFrame, dict[str, dict], Figure]:
    from desi_abundances import information_limit

    LOGGER.warning("information limit (Cramer-Rao bound) not computed: %s", reason)
    report = {"status": "skipped", "reason": reason, "is_mock": bool(is_mock)}
    table = pd.DataFrame({"TARGETID": pd.Series([], dtype=np.int64),
                          "snr": pd.Series([], dtype=np.float64)})
    for label in labels:
        table[f"{label}_crb"] = pd.Series([], dtype=np.float64)
    figure = information_limit.plot_information_limit(table, report, labels, is_mock)
    return report, table, {}, figure


def compute_information_limit(
    training_spectra: Spectra, data_split: pd.DataFrame, test_predictions: pd.DataFrame,
    labels: list[str], settings: dict[str, Any], is_mock: bool,
    mock_survey: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, dict], Figure]:
    """The Cramer-Rao bound of every test star (``information_limit``) and the network's
    scatter over it per label and S/N range (``evaluation.cramer_rao``).

    The spectral model: ``evaluation.cramer_rao.spectral_model``; "mock_survey" = the one
    that generated the mock (``params:mock_survey``), the emulator on real spectra.

    Skips (logged reason, ``status: skipped`` in the report, empty table, no metrics) when
    disabled, when the spectra are real and the spectral model is the analytic toy (it did
    not make them), or when the spectral model cannot be built (e.g. no emulator weights)
    or does not cover the spectra's wavelengths.

    Returns:
        report (cramer_rao.json), per-star bounds (TARGETID, snr, ``<label>_crb``; inf = no
        information), MLflow metrics (``crb_ratio.<label>.<range>``, ...) and the figure.
    """
    from desi_abundances import information_limit

    crb = dict(settings.get("cramer_rao") or {})
    crb.setdefault("seed", int(settings.get("seed", 0)))
    if not crb.get("enabled", False):
        return _information_limit_skipped("disabled (evaluation.cramer_rao.enabled)", is_mock,
                                          labels, settings)
    model_name, model_args, mismatch = information_limit.resolve_spectral_model(
        str(crb.get("spectral_model", information_limit.FOLLOW_MOCK_SURVEY)),
        crb.get("spectral_model_args"), mock_survey, is_mock)
    if mismatch:
        LOGGER.warning("information limit: %s", mismatch)
    if model_name == "analytic" and not is_mock:
        return _information_limit_skipped(
            "real spectra: the analytic model is a toy that did not generate them; set "
            "evaluation.cramer_rao.spectral_model: emulator", is_mock, labels, settings)
    start = time.perf_counter()
    try:
        provider = information_limit.build_jacobian_provider(
            model_name, training_spectra.wavelength, model_args,
            steps=crb.get("finite_difference_steps"))
    except (FileNotFoundError, ValueError, KeyError, ImportError) as error:
        return _information_limit_skipped(
            f"spectral model {model_name!r} cannot be used: {error}", is_mock, labels, settings)
    test = training_spectra.select(_split_rows(training_spectra, data_split)["test"])
    rows = information_limit.subsample_rows(test.n_spectra, crb.get("max_stars"),
                                            int(settings.get("seed", 0)))
    bounded = test.select(rows)
    report, table = information_limit.information_limit(
        provider, bounded.meta, bounded.ivar, test_predictions, labels, crb,
        settings["snr_bin_edges"], is_mock)
    report["max_stars"] = crb.get("max_stars")
    report["spectral_model_args"] = model_args
    report["spectral_model_warning"] = mismatch
    report["seconds"] = time.perf_counter() - start
    flat = information_limit.mlflow_metrics(report["labels"], report["windows"])
    flat["cramer_rao_seconds"] = report["seconds"]
    LOGGER.info("information limit: %d test stars bounded with the %s model in %.1f s; "
                "no information on %s", report["n_bounded"], model_name, report["seconds"],
                report["labels_without_information"] or "none")
    figure = information_limit.plot_information_limit(table, report, labels, is_mock)
    return (metrics.json_safe(report), table, metrics.mlflow_metrics_history(flat), figure)


def summary_with_information_limit(summary: str, cramer_rao: dict[str, Any],
                                   labels: list[str]) -> str:
    """metrics_summary.md: the methods' table followed by the information-limit section."""
    from desi_abundances import information_limit

    return summary.rstrip("\n") + "\n\n" + information_limit.summary_markdown(cramer_rao, labels)
