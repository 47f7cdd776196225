"""Save and load a trained emulator: safetensors weights with JSON metadata (no pickle).

Metadata (``metadata["emulator"]``, a JSON string): architecture (hidden widths, n_pixels),
label_names, label_min, label_max, resolving_power, wavelength_range (vacuum A), the
library version it was trained on (chunk names and sha256), held-out metrics, versions.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.torch import save_file

from desi_abundances.emulator.model import PayneNetwork
from desi_abundances.io.atomic import atomic_write

METADATA_KEY = "emulator"
FORMAT_VERSION = 1


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (identifies the library chunks an emulator was trained on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_emulator(path: Path, network: PayneNetwork, metadata: dict) -> None:
    """Atomically write weights + metadata. ``metadata`` needs label_names, hidden,
    resolving_power, wavelength_range; anything else JSON-serialisable is kept."""
    for key in ("label_names", "hidden", "resolving_power", "wavelength_range"):
        if key not in metadata:
            raise ValueError(f"emulator metadata lacks {key!r}")
    if len(metadata["label_names"]) != network.n_labels:
        raise ValueError(f"{len(metadata['label_names'])} label names for {network.n_labels} inputs")
    meta = {**metadata, "format_version": FORMAT_VERSION, "n_pixels": network.n_pixels,
            "label_min": network.scaler.label_min.tolist(),
            "label_max": (network.scaler.label_min + network.scaler.label_span).tolist()}
    state = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    with atomic_write(path) as tmp:  # temporary file, fsync, rename
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
        os.chmod(tmp, 0o644)  # readable like any other output (safetensors writes 0600)


def load_emulator(path: Path) -> tuple[PayneNetwork, dict]:
    """Read an emulator written by :func:`save_emulator`: (network in eval mode, metadata)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no emulator weights at {path}")
    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get(METADATA_KEY)
        if raw is None:
            raise ValueError(f"{path}: no '{METADATA_KEY}' metadata; not an emulator file")
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    meta = json.loads(raw)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
    network = PayneNetwork(np.asarray(meta["label_min"], dtype=np.float32),
                           np.asarray(meta["label_max"], dtype=np.float32),
                           meta["n_pixels"], hidden=meta["hidden"])
    network.load_state_dict(state)
    network.eval()
    return network, meta
