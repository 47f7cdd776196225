"""Errors of inference: each message names the partition, file or bundle field at fault."""
from __future__ import annotations

from desi_abundances.nn.adapter import BundleMismatchError

__all__ = ["BundleMismatchError", "InferenceError"]


class InferenceError(RuntimeError):
    """Inference cannot go on; the message names the partition, file or bundle field."""
