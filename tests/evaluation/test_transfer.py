"""evaluation.transfer: train on one library, test on the other, OOD fraction reported."""
import json

import numpy as np
import pytest
from tiny_real_stars import EVALUATION, LABELS, STRATA, TRAINING, tiny_library_spectra

from desi_abundances.evaluation import transfer
from desi_abundances.nn.splits import star_strata


def test_transfer_split_trains_on_one_group_and_tests_on_the_other():
    ids = np.arange(100)
    group = np.where(ids < 60, "A", "B")
    split = transfer.transfer_split(ids, group, "A", "B", np.full(100, "s"), 0.2, seed=1)
    assert set(split.loc[split["TARGETID"] >= 60, "split"]) == {"test"}
    assert split.loc[split["TARGETID"] < 60, "split"].value_counts().to_dict() == {
        "train": 48, "validation": 12}
    with pytest.raises(ValueError, match="0 test stars"):
        transfer.transfer_split(ids, group, "A", "C", np.full(100, "s"), 0.2, seed=1)


def test_transfer_test_both_ways():
    spectra, crossmatch = tiny_library_spectra()
    keys = star_strata(spectra.meta, {"bins": STRATA["bins"]})
    table, content = transfer.transfer_test(
        spectra, crossmatch["LIBRARY"], keys, LABELS, TRAINING, EVALUATION,
        [("A", "B"), ("B", "A")], validation_fraction=0.2, seed=1)
    json.dumps(content, allow_nan=False)
    assert set(content["directions"]) == {"A->B", "B->A"}
    assert content["directions"]["A->B"]["n_test"] == 40
    assert content["directions"]["B->A"]["n_test"] == 120
    assert len(table) == 160 and set(table["train_group"]) == {"A", "B"}
    flat = transfer.flat_transfer_metrics(content)
    assert {"network/transfer_a_to_b/ood_fraction", "cannon/transfer_b_to_a/teff.robust_std"} <= set(flat)
    text = transfer.markdown(content, LABELS, "REAL (tiny)", {"pooled_ood_fraction": 0.01})
    assert "| A->B | teff | K |" in text and "within the libraries" in text
