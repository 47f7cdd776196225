"""Errors of inference: each message names the partition, file or bundle field at fault."""
from __future__ import annotations

from desi_abundances.nn.adapter import BundleMismatchError

__all__ = ["BundleMismatchError", "CoaddSkipped", "InferenceError", "MockModelError"]


class InferenceError(RuntimeError):
    """Inference cannot go on; the message names the partition, file or bundle field."""


class CoaddSkipped(InferenceError):
    """One coadd cannot be used (e.g. a tile-based coadd that names no survey/program): it is
    skipped with this reason, whatever ``on_error`` says; the run goes on."""


class MockModelError(InferenceError):
    """A model trained on mock data met real (non-mock) coadds and
    ``inference.allow_mock_model`` is false."""
