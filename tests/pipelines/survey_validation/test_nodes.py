"""survey_validation nodes: mock only, and the metrics_summary section replaced on rerun."""
from __future__ import annotations

import pandas as pd

from desi_abundances.pipelines.survey_validation import nodes


def test_summary_section_is_replaced_not_appended():
    first = nodes.summary_with_survey("# methods\n\ntable\n", "## Survey-wide validation (MOCK)\nold")
    second = nodes.summary_with_survey(first, "## Survey-wide validation (MOCK)\nnew")
    assert second.count("## Survey-wide validation") == 1 and "new" in second and "old" not in second
    assert second.startswith("# methods\n\ntable")
    assert nodes.summary_with_survey(first, "") == "# methods\n\ntable\n"


def test_a_catalogue_without_truth_is_not_scored(tmp_path):
    content, flat, _, section = nodes.score_survey(
        {}, pd.DataFrame({"TARGETID": [], "split": []}), ["teff"],
        {"vac_filepath": str(tmp_path / "missing.fits")},
        {"truth_filepath": str(tmp_path / "missing.parquet")})
    assert content == {"mock": False} and flat == {} and section == ""
