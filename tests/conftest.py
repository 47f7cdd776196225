"""Shared pytest set-up: no telemetry, no GUI backend, a private MLflow store."""
import os

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
