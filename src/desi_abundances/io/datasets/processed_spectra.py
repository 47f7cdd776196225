"""``ProcessedSpectraDataset``: the Kedro wrapper of ``io.processed_spectra``."""
from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from desi_abundances.io.datasets.common import TablePreview, as_dataset_error, local_path
from desi_abundances.io.fits_table import read_tables
from desi_abundances.io.processed_spectra import read_processed_spectra, write_processed_spectra
from desi_abundances.spectra import Spectra


class ProcessedSpectraDataset(AbstractDataset[Spectra, Spectra]):
    """Preprocessed spectra (output of ``spectra.preprocess``) in one FITS file.

    Args:
        filepath: the FITS file.
        metadata: free-form (kedro-viz layer...).

    Errors name the file and HDU (a kedro ``DatasetError``).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = local_path(filepath)
        self.metadata = metadata

    def load(self) -> Spectra:
        with as_dataset_error():
            return read_processed_spectra(self._filepath)

    def save(self, data: Spectra) -> None:
        if not isinstance(data, Spectra):
            raise DatasetError(f"{self._filepath}: expected a Spectra, got {type(data)}")
        write_processed_spectra(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def preview(self, nrows: int = 10) -> TablePreview:
        """The first rows of META (kedro-viz table preview)."""
        with as_dataset_error():
            meta = read_tables(self._filepath, "META")
        return TablePreview(meta.head(nrows).to_dict(orient="split"))
