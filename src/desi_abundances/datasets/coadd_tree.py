"""``CoaddTreeDataset``: the healpix coadds below a folder, as paths (load only).

Loading lists the tree by DESI's naming rule (``desi.naming.list_coadds``: only
``coadd-{survey}-{program}-{healpix}.fits`` files are coadds; the others are counted in the
log and ignored) and returns a :class:`CoaddTree`: ``{partition_id: Path}`` and the reader
options (``load_args`` of ``io.desi_coadd.read_coadd``). Nothing is read: callers (inference,
possibly on Dask workers) read each coadd with ``read_coadd(path, **read_options)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from desi_abundances.datasets.common import TablePreview
from desi_abundances.desi.naming import list_coadds

logger = logging.getLogger(__name__)

READ_OPTIONS = {"arms", "read_resolution", "fibermap_columns", "read_exp_fibermap", "read_scores"}
"""Keyword arguments of ``read_coadd`` accepted in ``load_args``."""


@dataclass(frozen=True)
class CoaddTree:
    """The coadds of a tree: ``paths`` ``{partition_id: Path}`` (sorted), the options to read
    them with, the root and how many other files were ignored. Picklable."""

    root: Path
    paths: dict[str, Path] = field(default_factory=dict)
    read_options: dict[str, Any] = field(default_factory=dict)
    n_ignored: int = 0


class CoaddTreeDataset(AbstractDataset[CoaddTree, None]):
    """The healpix coadds below ``path`` (load only; see the module docstring).

    Args:
        path: the ``healpix/`` folder of a production (or the mock's).
        load_args: options of ``read_coadd`` (arms, read_resolution, fibermap_columns,
            read_exp_fibermap, read_scores), handed to the reader of each coadd.
        metadata: free-form (kedro-viz layer...).
    """

    def __init__(self, path: str, load_args: dict[str, Any] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._load_args = dict(load_args or {})
        self.metadata = metadata
        unknown = set(self._load_args) - READ_OPTIONS
        if unknown:
            raise DatasetError(f"{path}: unknown CoaddTreeDataset load_args {sorted(unknown)}")

    def load(self) -> CoaddTree:
        listing = list_coadds(self._path)
        if listing.ignored:
            logger.info(
                "%s: %d files are not healpix coadds and are ignored (e.g. %s)",
                self._path, len(listing.ignored), list(listing.ignored[:3]),
            )
        if listing.tiles:
            logger.info("%s: %d tile-based coadds (provenance from their headers)", self._path,
                        len(listing.tiles))
        if not listing.coadds and not listing.tiles:
            raise DatasetError(
                f"{self._path}: no healpix coadd (coadd-<survey>-<program>-<healpix>.fits) found"
                f" ({len(listing.ignored)} other files)"
            )
        logger.info("%s: %d healpix coadds", self._path, len(listing.coadds))
        return CoaddTree(self._path, listing.all_coadds, dict(self._load_args), len(listing.ignored))

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._path}: CoaddTreeDataset is read-only (write coadds with "
                           "DesiCoaddDataset / a PartitionedDataset)")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "load_args": self._load_args}

    def preview(self, nrows: int = 20) -> TablePreview:
        """The first coadds of the tree for kedro-viz: partition id, file, size in MB."""
        tree = self.load()
        rows = [[pid, path.name, round(path.stat().st_size / 1e6, 2)]
                for pid, path in list(tree.paths.items())[:nrows]]
        return TablePreview({"columns": ["partition", "file", "MB"], "data": rows,
                             "index": list(range(len(rows)))})
