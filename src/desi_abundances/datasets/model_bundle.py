"""``ModelBundleDataset``: the Kedro wrapper of ``nn.bundle_io`` (one safetensors file)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from desi_abundances.datasets.common import JSONPreview, as_dataset_error
from desi_abundances.nn.bundle import ModelBundle
from desi_abundances.nn.bundle_io import BundleReadError, load_bundle, save_bundle


class ModelBundleDataset(AbstractDataset[ModelBundle, ModelBundle]):
    """A :class:`ModelBundle` in one ``.safetensors`` file (no pickle).

    Args:
        filepath: the ``.safetensors`` file.
        metadata: free-form (kedro-viz layer...).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> ModelBundle:
        with as_dataset_error(BundleReadError):
            return load_bundle(self._filepath)

    def save(self, data: ModelBundle) -> None:
        if not isinstance(data, ModelBundle):
            raise DatasetError(f"{self._filepath}: expected a ModelBundle, got {type(data)}")
        save_bundle(data, self._filepath)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def preview(self) -> JSONPreview:
        """Summary for kedro-viz (JSON text): labels, architecture, OOD threshold, is_mock."""
        bundle = self.load()
        return JSONPreview(json.dumps(
            {"label_names": bundle.label_names, "architecture": bundle.architecture,
             "ood_threshold": bundle.ood_threshold, "is_mock": bundle.is_mock}, default=str))
