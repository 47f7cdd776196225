"""The real_star_evaluation pipeline on tiny two-library spectra (MemoryDatasets, no MLflow)."""
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from tiny_real_stars import EVALUATION, LABELS, STRATA, TRAINING, tiny_library_spectra

from desi_abundances.pipelines.real_star_evaluation import create_pipeline

PARAMS = {"group_column": "LIBRARY",
          "cross_validation": {"folds": 3, "seed": 1, "validation_fraction": 0.15},
          "transfer": {"directions": [["A", "B"], ["B", "A"]], "validation_fraction": 0.2,
                       "seed": 1}}


class KeptDataset(MemoryDataset):
    def _release(self) -> None:
        pass


def test_structure():
    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {
        "make_real_star_folds", "cross_validate_real_stars", "transfer_across_libraries",
        "write_real_star_report"}
    assert pipeline.inputs() == {
        "training_spectra", "crossmatch", "params:labels", "params:training",
        "params:feature_engineering", "params:evaluation", "params:real_star_evaluation"}


def test_pipeline_writes_cross_validation_transfer_and_report():
    spectra, crossmatch = tiny_library_spectra()
    catalog = DataCatalog({
        "training_spectra": MemoryDataset(spectra, copy_mode="assign"),
        "crossmatch": MemoryDataset(crossmatch),
        "params:labels": MemoryDataset(LABELS),
        "params:training": MemoryDataset(TRAINING),
        "params:feature_engineering": MemoryDataset({"split": {"strata": STRATA}}),
        "params:evaluation": MemoryDataset(EVALUATION),
        "params:real_star_evaluation": MemoryDataset(PARAMS),
    })
    pipeline = create_pipeline()
    for name in pipeline.all_outputs():
        catalog[name] = KeptDataset(copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    folds = catalog.load("real_star_folds")
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    assert catalog.load("real_star_cross_validation")["n_folds"] == 3
    assert set(catalog.load("real_star_transfer")["directions"]) == {"A->B", "B->A"}
    assert "network/cv/teff.robust_std" in catalog.load("real_star_cv_mlflow_metrics")
    report = catalog.load("real_star_report")
    assert "# k-fold cross-validation - REAL (tiny test libraries)" in report
    assert "# Transfer across instruments - REAL (tiny test libraries)" in report
