"""MLflow metric names: whose, which split / S/N range, headline first."""
from desi_abundances.evaluation import mlflow_names as names


def section(key: str) -> str:
    """MLflow's chart section of a metric: everything before the last '/'."""
    return key.rsplit("/", 1)[0]


def test_names_say_method_split_and_range():
    assert names.label_metric("ridge", "fe_h", "robust_std") == "ridge/test/fe_h.robust_std"
    assert names.headline_metric("network", "mg_fe", "z_std") == "0_headline/network/z_std/mg_fe"
    assert names.validation_metric("fe_h", "residual_std") == "network/validation/fe_h.residual_std"
    bin_ = {"name": "snr_20_40", "snr_min": 20.0, "snr_max": 40.0, "kind": "bin"}
    open_bin = {"name": "snr_40_up", "snr_min": 40.0, "snr_max": 1e9, "kind": "bin"}
    window = {"name": "snr_20", "snr_min": 15.0, "snr_max": 25.0, "kind": "window"}
    assert names.snr_range(bin_) == "snr_bin_20-40"
    assert names.snr_range(open_bin) == "snr_bin_40-up"
    assert names.snr_range(window) == "snr_window_15-25"
    assert names.information_metric("crb_ratio", "fe_h", "snr_window_15-25") == \
        "network/crb_ratio/fe_h.snr_window_15-25"
    assert names.information_metric("crb_median", "fe_h", "snr_bin_20-40") == \
        "information_limit/crb_median/fe_h.snr_bin_20-40"


def test_headline_section_sorts_first():
    keys = [names.label_metric(m, "fe_h", "bias") for m in ("cannon", "network", "ridge")]
    keys += [names.headline_metric("network", "fe_h", m) for m in names.HEADLINE_METRICS]
    keys += [names.LOSS_TRAIN, names.information_metric("crb_median", "fe_h", "x"),
             names.training_metric("best_epoch")]
    first = sorted({section(k) for k in keys})[0]  # MLflow sorts sections by code unit
    assert first.startswith(names.HEADLINE)
    assert sorted(keys, key=str.lower)[0].startswith(names.HEADLINE)  # case-blind sort too


def test_training_names_split_labels_from_bookkeeping():
    out = names.training_names({"fe_h_residual_std": 0.1, "c_fe_residual_mad": 0.2,
                                "best_epoch": 7.0}, ["fe_h", "c_fe"])
    assert out == {"network/validation/fe_h.residual_std": 0.1,
                   "network/validation/c_fe.residual_mad": 0.2,
                   "network/training/best_epoch": 7.0}
