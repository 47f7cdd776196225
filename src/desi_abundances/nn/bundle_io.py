"""A :class:`~desi_abundances.nn.bundle.ModelBundle` <-> ONE ``.safetensors`` file; no Kedro
(the catalog wrapper is ``datasets.model_bundle.ModelBundleDataset``).

Tensors: the network weights under ``state_dict.<name>`` and the arrays (wavelength, pixel and
label scalings, label range) under their field names; everything else (architecture, label
names, preprocessing settings, OOD threshold, versions, is_mock, metrics) is JSON in the
file's string metadata under ``bundle``. Loading never unpickles anything, so a bundle from
an untrusted source cannot run code.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from desi_abundances.io.atomic import atomic_write
from desi_abundances.nn.bundle import BUNDLE_FORMAT_VERSION, ModelBundle

STATE_PREFIX = "state_dict."
ARRAY_FIELDS = ("wavelength", "pixel_median", "pixel_iqr", "label_offset", "label_scale",
                "label_min", "label_max", "label_n_train")
JSON_FIELDS = ("architecture", "label_names", "preprocessing", "ood_threshold", "versions",
               "is_mock", "metrics")
OPTIONAL_JSON_FIELDS = ("error_calibration",)
"""JSON fields a bundle may lack (written by older code): their defaults apply."""


class BundleReadError(OSError):
    """A model bundle file cannot be read; the message names the file. (The Kedro dataset
    re-raises it as a ``DatasetError`` with the same message.)"""


def save_bundle(bundle: ModelBundle, path: str | Path) -> None:
    """Write ``bundle`` to ``path`` (one safetensors file), atomically."""
    tensors: dict[str, torch.Tensor] = {
        STATE_PREFIX + name: tensor.detach().cpu().contiguous()
        for name, tensor in bundle.state_dict.items()
    }
    for name in ARRAY_FIELDS:
        tensors[name] = torch.from_numpy(np.array(getattr(bundle, name)))  # a writable copy
    meta = {name: getattr(bundle, name) for name in JSON_FIELDS + OPTIONAL_JSON_FIELDS}
    meta["ood_threshold"] = float(meta["ood_threshold"])
    meta["is_mock"] = bool(meta["is_mock"])
    metadata = {"bundle": json.dumps(meta, allow_nan=True), "format": str(BUNDLE_FORMAT_VERSION)}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)  # readable like any other output (safetensors writes 0600)


def load_bundle(path: str | Path) -> ModelBundle:
    """Read a bundle written by :func:`save_bundle`.

    Raises:
        BundleReadError: naming the file when it is missing, not a safetensors file, or lacks a
            field.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleReadError(f"{path}: model bundle not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises its own error types
        raise BundleReadError(f"{path}: not a readable safetensors model bundle ({error})") from error
    if "bundle" not in metadata:
        raise BundleReadError(f"{path}: safetensors file has no 'bundle' metadata")
    if metadata.get("format") != str(BUNDLE_FORMAT_VERSION):
        raise BundleReadError(f"{path}: bundle format {metadata.get('format')!r}, this code reads "
                           f"{BUNDLE_FORMAT_VERSION}")
    try:
        meta = json.loads(metadata["bundle"])
    except ValueError as error:
        raise BundleReadError(f"{path}: the 'bundle' metadata is not valid JSON ({error}): "
                              "the file is damaged or was not written by save_bundle") from error
    if not isinstance(meta, dict):
        raise BundleReadError(f"{path}: the 'bundle' metadata is a JSON {type(meta).__name__}, "
                              "not an object of bundle fields")
    known = {item.name for item in fields(ModelBundle)} - set(ARRAY_FIELDS) - {"state_dict"}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise BundleReadError(f"{path}: the 'bundle' metadata has unknown field(s) {unknown}; "
                              f"a bundle has {sorted(known)}")
    missing = [name for name in ARRAY_FIELDS if name not in tensors] + [
        name for name in JSON_FIELDS if name not in meta]
    if missing:
        raise BundleReadError(f"{path}: model bundle lacks {missing}")
    state_dict = {name[len(STATE_PREFIX):]: tensor for name, tensor in tensors.items()
                  if name.startswith(STATE_PREFIX)}
    arrays = {name: tensors[name].numpy() for name in ARRAY_FIELDS}
    meta = {name: value for name, value in meta.items()
            if name in JSON_FIELDS + OPTIONAL_JSON_FIELDS}
    return ModelBundle(state_dict=state_dict, **arrays, **meta)
