"""``DesiCoaddDataset``: a DESI coadd FITS file <-> :class:`spectra.CoaddSpectra`.

The layout is DESI's (desidatamodel ``healpix/.../coadd-*.fits``): PRIMARY, FIBERMAP,
EXP_FIBERMAP, then per arm X in B, R, Z: X_WAVELENGTH, X_FLUX, X_IVAR, X_MASK,
[X_RESOLUTION], and SCORES. Images are big-endian in the file (FITS); the reader takes the
raw bytes of each image at its offset and converts them to native order in one copy, several times
faster than going through astropy's data objects (headers are still parsed by astropy).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from astropy.io import fits
from kedro.io import AbstractDataset, DatasetError
from kedro_datasets._typing import TablePreview

from desi_abundances.constants import ARMS, FLUX_UNIT
from desi_abundances.io.atomic import atomic_write
from desi_abundances.io.fits_table import (
    FitsReadError,
    dataframe_to_hdu,
    get_hdu,
    local_path,
    open_fits,
    read_table,
)
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

IVAR_UNIT = "10**+34 (s2 cm4 Angstrom2) / erg2"
"""BUNIT of IVAR images in real DESI coadds."""

MOCK_COMMENT = "mock data (desi_abundances.mock), not DESI"
"""Comment of the MOCK header keyword (fits in one 80-character card)."""

FIBERMAP_UNITS: dict[str, str] = {
    "TARGET_RA": "deg", "TARGET_DEC": "deg", "PMRA": "mas yr-1", "PMDEC": "mas yr-1",
    "REF_EPOCH": "yr", "EBV": "mag", "FLUX_G": "nanomaggy", "FLUX_R": "nanomaggy",
    "FLUX_Z": "nanomaggy", "GAIA_PHOT_G_MEAN_MAG": "mag", "GAIA_PHOT_BP_MEAN_MAG": "mag",
    "GAIA_PHOT_RP_MEAN_MAG": "mag", "PARALLAX": "mas", "COADD_EXPTIME": "s",
}
"""TUNITn written for FIBERMAP columns (those of real coadds)."""

_SKIP_HEADER_KEYS = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "COMMENT", "HISTORY", "", "CHECKSUM",
                     "DATASUM"}


def header_to_dict(header: fits.Header) -> dict[str, Any]:
    """Primary-header keywords as a plain dict (structural keywords, COMMENT/HISTORY dropped)."""
    return {key: header[key] for key in header if key not in _SKIP_HEADER_KEYS}


def _image_shape(hdu: Any) -> tuple[int, ...]:
    """Numpy shape of an image HDU from its header (NAXISn reversed)."""
    header = hdu.header
    return tuple(int(header[f"NAXIS{i}"]) for i in range(int(header["NAXIS"]), 0, -1))


_BITPIX_DTYPE = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def read_image(hdul: fits.HDUList, name: str, path: Path) -> np.ndarray:
    """Read image HDU ``name`` as a native-endian array, fast: memmap + one converting copy.

    Falls back to astropy when the image is scaled (BZERO/BSCALE).
    The bytes are memory-mapped and converted to native order while copied (one pass).
    """
    hdu = get_hdu(hdul, name, path)
    if not hdu.is_image or isinstance(hdu, fits.PrimaryHDU) and hdu.header.get("NAXIS", 0) == 0:
        raise FitsReadError(f"{path}: HDU {name!r} is not an image")
    header = hdu.header
    shape = _image_shape(hdu)
    scaled = header.get("BZERO", 0) != 0 or header.get("BSCALE", 1) != 1
    if scaled:
        try:
            data = np.asarray(hdu.data)
        except Exception as exc:
            raise FitsReadError(f"{path}: HDU {name!r} cannot be read ({exc})") from exc
        return data.astype(data.dtype.newbyteorder("="), copy=False)
    dtype = np.dtype(_BITPIX_DTYPE[int(header["BITPIX"])])
    count = int(np.prod(shape)) if shape else 0
    offset = hdul.fileinfo(hdul.index_of(name))["datLoc"]
    available = (path.stat().st_size - offset) // dtype.itemsize
    if available < count:
        raise FitsReadError(
            f"{path}: HDU {name!r} is truncated: expected {count} values of shape {shape}, "
            f"found {max(available, 0)}"
        )
    if count == 0:
        return np.zeros(shape, dtype=dtype.newbyteorder("="))
    # one pass over the page cache: memory-map the big-endian bytes, convert while copying
    raw = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    try:
        # np.array (subok=False): a plain ndarray, not an in-memory np.memmap whose every
        # slice goes through memmap.__getitem__
        array = np.array(raw, dtype=dtype.newbyteorder("="))
    finally:
        del raw
    return array


def _check_shape(path: Path, name: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(shape) != tuple(expected):
        raise FitsReadError(f"{path}: HDU {name!r} has shape {shape}, expected {expected}")


def read_coadd(
    path: Path,
    arms: Sequence[str] | None = None,
    read_resolution: bool = False,
    fibermap_columns: Sequence[str] | None = None,
    read_exp_fibermap: bool = True,
    read_scores: bool = True,
) -> CoaddSpectra:
    """Read a DESI coadd file; every error names the file and the HDU/column at fault."""
    hdul = open_fits(path, memmap=False)
    try:
        header = header_to_dict(get_hdu(hdul, 0, path).header)
        fibermap = read_table(hdul, "FIBERMAP", path, fibermap_columns)
        n_rows = len(fibermap)
        names = _extnames(hdul, path)
        if arms is None:
            arms = [arm for arm in ARMS if f"{arm}_FLUX" in names]
            if not arms:
                raise FitsReadError(f"{path}: no arm found (HDU 'B_FLUX'/'R_FLUX'/'Z_FLUX' missing)")
        spectra = {}
        for arm in arms:
            wavelength = read_image(hdul, f"{arm}_WAVELENGTH", path).astype(np.float64, copy=False)
            if wavelength.ndim != 1:
                raise FitsReadError(f"{path}: HDU '{arm}_WAVELENGTH' is not 1-D ({wavelength.shape})")
            expected = (n_rows, wavelength.size)
            arrays = {}
            for kind in ("FLUX", "IVAR", "MASK"):
                name = f"{arm}_{kind}"
                _check_shape(path, name, _image_shape(get_hdu(hdul, name, path)), expected)
                arrays[kind] = read_image(hdul, name, path)
            resolution = None
            if read_resolution:
                name = f"{arm}_RESOLUTION"
                resolution = read_image(hdul, name, path)
                if resolution.ndim != 3 or resolution.shape[0] != n_rows or \
                        resolution.shape[2] != wavelength.size:
                    raise FitsReadError(
                        f"{path}: HDU {name!r} has shape {resolution.shape}, expected "
                        f"({n_rows}, n_diagonals, {wavelength.size})"
                    )
            spectra[arm] = ArmSpectra(
                wavelength=wavelength,
                flux=arrays["FLUX"].astype(np.float32, copy=False),
                ivar=arrays["IVAR"].astype(np.float32, copy=False),
                mask=arrays["MASK"].astype(np.int32, copy=False),
                resolution=resolution,
            )
        scores = read_table(hdul, "SCORES", path) if read_scores and "SCORES" in names else None
        if scores is not None and len(scores) != n_rows:
            raise FitsReadError(f"{path}: HDU 'SCORES' has {len(scores)} rows, FIBERMAP {n_rows}")
        exp_fibermap = (
            read_table(hdul, "EXP_FIBERMAP", path)
            if read_exp_fibermap and "EXP_FIBERMAP" in names
            else None
        )
    finally:
        hdul.close()
    return CoaddSpectra(arms=spectra, fibermap=fibermap, header=header, scores=scores,
                        exp_fibermap=exp_fibermap)


def _extnames(hdul: fits.HDUList, path: Path) -> set[str]:
    try:
        hdul.readall()
    except Exception as exc:
        raise FitsReadError(f"{path}: file corrupt or truncated while scanning HDUs ({exc})") from exc
    return {str(hdu.name).upper() for hdu in hdul}


def coadd_to_hdulist(coadd: CoaddSpectra, extra_header: dict[str, Any] | None = None,
                     write_resolution: bool = True) -> fits.HDUList:
    """The HDUs of a DESI coadd file (real layout, dtypes and BUNITs) holding ``coadd``."""
    primary = fits.PrimaryHDU()
    for key, value in {**coadd.header, **(extra_header or {})}.items():
        if key == "MOCK" and not isinstance(value, (tuple, list)):
            value = (bool(value), MOCK_COMMENT)
        primary.header[key] = tuple(value) if isinstance(value, list) else value
    hdus: list[Any] = [primary, dataframe_to_hdu(coadd.fibermap, "FIBERMAP", units=FIBERMAP_UNITS)]
    if coadd.exp_fibermap is not None:
        hdus.append(dataframe_to_hdu(coadd.exp_fibermap, "EXP_FIBERMAP"))
    for arm, data in coadd.arms.items():
        wave = fits.ImageHDU(np.asarray(data.wavelength, dtype=np.float64), name=f"{arm}_WAVELENGTH")
        wave.header["BUNIT"] = "Angstrom"
        flux = fits.ImageHDU(np.asarray(data.flux, dtype=np.float32), name=f"{arm}_FLUX")
        flux.header["BUNIT"] = FLUX_UNIT
        ivar = fits.ImageHDU(np.asarray(data.ivar, dtype=np.float32), name=f"{arm}_IVAR")
        ivar.header["BUNIT"] = IVAR_UNIT
        mask = fits.ImageHDU(np.asarray(data.mask, dtype=np.int32), name=f"{arm}_MASK")
        hdus += [wave, flux, ivar, mask]
        if write_resolution and data.resolution is not None:
            hdus.append(fits.ImageHDU(np.asarray(data.resolution, dtype=np.float32),
                                      name=f"{arm}_RESOLUTION"))
    if coadd.scores is not None:
        hdus.append(dataframe_to_hdu(coadd.scores, "SCORES"))
    return fits.HDUList(hdus)


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
    WAVELENGTH and FIBERMAP that disagree) are :class:`FitsReadError`, a kedro
    ``DatasetError``, whose message names the file and the HDU/column.
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
        unknown = set(self._load_args) - {"arms", "read_resolution", "fibermap_columns",
                                          "read_exp_fibermap", "read_scores"}
        if unknown:
            raise DatasetError(f"{filepath}: unknown DesiCoaddDataset load_args {sorted(unknown)}")

    def load(self) -> CoaddSpectra:
        return read_coadd(self._filepath, **self._load_args)

    def save(self, data: CoaddSpectra) -> None:
        if not isinstance(data, CoaddSpectra):
            raise DatasetError(
                f"{self._filepath}: DesiCoaddDataset saves a CoaddSpectra, got {type(data).__name__}"
            )
        hdul = coadd_to_hdulist(data, self._save_args.get("header"),
                                self._save_args.get("write_resolution", True))
        with atomic_write(self._filepath) as tmp:
            hdul.writeto(tmp, overwrite=True)

    def _exists(self) -> bool:
        return self._filepath.exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_args": self._load_args,
                "save_args": self._save_args}

    def preview(self, nrows: int = 10) -> TablePreview:
        """A small table for kedro-viz: the first FIBERMAP rows (a few columns)."""
        hdul = open_fits(self._filepath)
        try:
            fibermap = read_table(hdul, "FIBERMAP", self._filepath)
        finally:
            hdul.close()
        cols = [c for c in ("TARGETID", "TARGET_RA", "TARGET_DEC", "OBJTYPE", "MWS_TARGET",
                            "GAIA_PHOT_G_MEAN_MAG", "COADD_FIBERSTATUS") if c in fibermap]
        return TablePreview(fibermap[cols].head(nrows).to_dict(orient="split"))
