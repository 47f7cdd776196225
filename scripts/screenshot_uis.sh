#!/usr/bin/env bash
# Screenshots of the two UIs a person opens, for a person to look at (not run by the tests):
#   MLflow  (experiment desi_abundances: runs table, and the first run's metric charts)
#   kedro-viz (the __default__ and inference pipelines: the flowchart with its layers)
# Needs Debian's chromium (`apt-get install -y chromium`) and a finished `make run`
# (mlflow.db and data/ in the project). Usage, from the project root:
#   scripts/screenshot_uis.sh [out_dir]            # default build/screenshots
# Both servers listen on 127.0.0.1 only and are stopped at the end.
set -euo pipefail
OUT=${1:-build/screenshots}
BIN=${BIN:-.venv/bin}
MLFLOW_PORT=${MLFLOW_PORT:-5055}
VIZ_PORT=${VIZ_PORT:-4155}
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
export KEDRO_DISABLE_TELEMETRY=true
mkdir -p "$OUT"

"$BIN/mlflow" server --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 \
  --port "$MLFLOW_PORT" --workers 1 > "$OUT/mlflow.log" 2>&1 &
MLFLOW_PID=$!
"$BIN/kedro" viz run --host 127.0.0.1 --port "$VIZ_PORT" --no-browser > "$OUT/viz.log" 2>&1 &
VIZ_PID=$!
trap 'kill $MLFLOW_PID $VIZ_PID 2>/dev/null || true' EXIT

wait_for() {  # url, seconds
  for _ in $(seq 1 "$2"); do curl -fs "$1" > /dev/null && return 0; sleep 1; done
  echo "no answer from $1 (see $OUT/*.log)" >&2; return 1
}
shot() {  # url, file: a tall window, time for the JavaScript to draw
  "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1600,1100 --virtual-time-budget=25000 --screenshot="$OUT/$2" "$1" \
    > /dev/null 2>&1
  echo "$OUT/$2"
}

wait_for "http://127.0.0.1:$MLFLOW_PORT/health" 120
EXPERIMENT=$(curl -fs "http://127.0.0.1:$MLFLOW_PORT/api/2.0/mlflow/experiments/get-by-name?experiment_name=desi_abundances" \
  | "$BIN/python" -c "import json,sys; print(json.load(sys.stdin)['experiment']['experiment_id'])")
RUN=$(curl -fs -X POST -H 'Content-Type: application/json' \
  -d "{\"experiment_ids\": [\"$EXPERIMENT\"], \"max_results\": 1}" \
  "http://127.0.0.1:$MLFLOW_PORT/api/2.0/mlflow/runs/search" \
  | "$BIN/python" -c "import json,sys; print(json.load(sys.stdin)['runs'][0]['info']['run_id'])")
# MLflow 3.17 keeps a UI-wide "GenAI / Model training" switch (default GenAI, remembered in the
# browser); workflowType=machine_learning selects "Model training": the runs table.
ML="workflowType=machine_learning"
shot "http://127.0.0.1:$MLFLOW_PORT/#/experiments/$EXPERIMENT/runs?$ML" mlflow_runs.png
shot "http://127.0.0.1:$MLFLOW_PORT/#/experiments/$EXPERIMENT/runs?$ML&compareRunsMode=CHART" mlflow_runs_charts.png
shot "http://127.0.0.1:$MLFLOW_PORT/#/experiments/$EXPERIMENT/runs/$RUN?$ML" mlflow_run.png
shot "http://127.0.0.1:$MLFLOW_PORT/#/experiments/$EXPERIMENT/runs/$RUN/model-metrics?$ML" mlflow_run_metrics.png

wait_for "http://127.0.0.1:$VIZ_PORT/api/main" 180
shot "http://127.0.0.1:$VIZ_PORT/" viz_default.png
shot "http://127.0.0.1:$VIZ_PORT/?pipeline_id=inference" viz_inference.png
