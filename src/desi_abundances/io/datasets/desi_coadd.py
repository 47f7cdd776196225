"""``DesiCoaddDataset``: the Kedro wrapper of ``io.desi_coadd`` (DESI coadd files)."""
from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from desi_abundances.io.datasets.common import TablePreview, as_dataset_error, local_path
from desi_abundances.io.desi_coadd import read_coadd, write_coadd
from desi_abundances.io.fits_table import read_tables
from desi_abundances.spectra import CoaddSpectra

LOAD_ARGS = ("arms", "read_resolution", "fibermap_columns", "read_exp_fibermap", "read_scores")
"""The options of :func:`~desi_abundances.io.desi_coadd.read_coadd`."""

PREVIEW_COLUMNS = ("TARGETID", "TARGET_RA", "TARGET_DEC", "OBJTYPE", "MWS_TARGET",
                   "GAIA_PHOT_G_MEAN_MAG", "COADD_FIBERSTATUS")


class DesiCoaddDataset(AbstractDataset[CoaddSpectra, CoaddSpectra]):
    """A DESI coadd file as a :class:`~desi_abundances.spectra.CoaddSpectra`.

    Args:
        filepath: the coadd FITS file.
        load_args: ``arms`` (default: every arm present), ``read_resolution`` (default False:
            RESOLUTION images are 11x the size of FLUX and training does not use them),
            ``fibermap_columns`` (default all), ``read_exp_fibermap`` (default True),
            ``read_scores`` (default True).
        save_args: ``header`` (extra primary keywords), ``write_resolution`` (default True:
            written when the arms carry a resolution matrix).
        metadata: free-form (kedro-viz layer...).

    Errors (missing/corrupt/truncated file, missing HDU or column, shapes of FLUX, IVAR, MASK,
    WAVELENGTH and FIBERMAP that disagree) are kedro ``DatasetError``s whose message names the
    file and the HDU/column.
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = local_path(filepath)
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata
        unknown = set(self._load_args) - set(LOAD_ARGS)
        if unknown:
            raise DatasetError(f"{filepath}: unknown DesiCoaddDataset load_args {sorted(unknown)}")

    def load(self) -> CoaddSpectra:
        with as_dataset_error():
            return read_coadd(self._filepath, **self._load_args)

    def save(self, data: CoaddSpectra) -> None:
        if not isinstance(data, CoaddSpectra):
            raise DatasetError(
                f"{self._filepath}: DesiCoaddDataset saves a CoaddSpectra, got {type(data).__name__}"
            )
        write_coadd(self._filepath, data, self._save_args.get("header"),
                    self._save_args.get("write_resolution", True))

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_args": self._load_args,
                "save_args": self._save_args}

    def preview(self, nrows: int = 10) -> TablePreview:
        """A small table for kedro-viz: the first FIBERMAP rows (a few columns)."""
        with as_dataset_error():
            fibermap = read_tables(self._filepath, "FIBERMAP")
        cols = [c for c in PREVIEW_COLUMNS if c in fibermap]
        return TablePreview(fibermap[cols].head(nrows).to_dict(orient="split"))
