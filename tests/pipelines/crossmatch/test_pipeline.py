"""crossmatch on the session's tiny chain (tests/support/tiny_chain.py): the matched training
set recovers the true DESI x APOGEE pairs and holds no false match; and the pipeline's
structure (node, inputs, outputs)."""
from __future__ import annotations

import pytest
from tiny_chain import file_outputs

from desi_abundances.crossmatch.apogee import compare_with_truth
from desi_abundances.pipelines import crossmatch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_chain):
    """(catalog, parameters, root) of the session's tiny chain."""
    return tiny_chain.catalog, tiny_chain.params, tiny_chain.root


def test_structure():
    pipeline = crossmatch.create_pipeline()
    assert {node.name for node in pipeline.nodes} >= {"crossmatch_desi_apogee"}
    assert pipeline.inputs() >= {"apogee_stars", "spectra_metadata", "params:crossmatch",
                                 "params:labels_source"}
    assert pipeline.all_outputs() >= {"crossmatch", "crossmatch_report"}


def test_every_file_output_written(tiny_chain):
    names = file_outputs(crossmatch.create_pipeline(), tiny_chain.catalog)
    assert set(names) >= {"crossmatch", "crossmatch_report"}
    for name in names:
        assert tiny_chain.catalog.exists(name), name


def test_crossmatch_recovers_truth_without_false_match(run):
    catalog, params, _ = run
    matched = catalog.load("crossmatch")
    result = compare_with_truth(
        matched, catalog.load("mock_truth"), catalog.load("spectra_metadata"),
        catalog.load("apogee_stars"), params["crossmatch"]["apogee_cuts"],
    )
    print("truth check:", {k: result[k] for k in ("expected", "recovered", "matched", "false_matches")})
    print("report:", catalog.load("crossmatch_report")["matching"])
    assert result["expected"] >= 30
    assert result["false_matches"] == 0, result["false_pairs"]
    assert result["recovery"] >= 0.99, result["missed_apogee_ids"]
    assert matched["TARGETID"].is_unique and matched["APOGEE_ID"].is_unique
    assert set(matched["match_method"]) <= {"gaia_id", "position"}
    report = catalog.load("crossmatch_report")
    assert report["final"]["pairs"] == len(matched)
    assert [step["step"] for step in report["apogee_cuts"]][:2] == ["allstar_rows", "extratarg_duplicate"]
