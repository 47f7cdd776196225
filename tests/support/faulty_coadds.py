"""Tiny DESI coadd files and the faults a bad day brings to them (fault-injection tests):
cut at an HDU boundary or inside a data unit, an HDU dropped, a header card garbled, the END
card destroyed, a data unit corrupted under a CHECKSUM, repeated TARGETIDs, a bad arm, garbled
FIBERMAP rows (a value no DESI file holds, bytes that do not decode)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from desi_abundances.desi.grids import ARMS, arm_wavelength
from desi_abundances.io.desi_coadd import coadd_to_hdulist, write_coadd
from desi_abundances.spectra import ArmSpectra, CoaddSpectra

N_PIXELS = 40


def tiny_coadd(n: int = 3, first_id: int = 39627000000000000, survey: str = "main",
               program: str = "bright", healpix: int = 1234, seed: int = 0) -> CoaddSpectra:
    """``n`` spectra of ``N_PIXELS`` pixels per arm, flux ~ 10, IVAR ~ 1, MASK 0."""
    rng = np.random.default_rng(seed)
    arms = {
        arm: ArmSpectra(
            wavelength=arm_wavelength(arm)[:N_PIXELS],
            flux=rng.normal(10, 0.1, (n, N_PIXELS)).astype(np.float32),
            ivar=np.ones((n, N_PIXELS), np.float32),
            mask=np.zeros((n, N_PIXELS), np.int32),
        )
        for arm in ARMS
    }
    fibermap = pd.DataFrame({
        "TARGETID": np.arange(n, dtype=np.int64) + first_id,
        "TARGET_RA": rng.uniform(0, 1, n), "TARGET_DEC": rng.uniform(0, 1, n),
        "OBJTYPE": ["TGT"] * n, "COADD_FIBERSTATUS": np.zeros(n, np.int32),
    })
    return CoaddSpectra(arms=arms, fibermap=fibermap,
                        header={"SURVEY": survey, "PROGRAM": program, "HPXPIXEL": healpix,
                                "MOCK": True})


def write_tiny(path: Path, coadd: CoaddSpectra | None = None, checksum: bool = False) -> Path:
    """Write ``coadd`` (default :func:`tiny_coadd`) at ``path``; ``checksum`` adds
    CHECKSUM/DATASUM cards to every HDU."""
    coadd = coadd if coadd is not None else tiny_coadd()
    path.parent.mkdir(parents=True, exist_ok=True)
    if checksum:
        coadd_to_hdulist(coadd).writeto(path, checksum=True, overwrite=True)
    else:
        write_coadd(path, coadd)
    return path


def hdu_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """``{EXTNAME: (header start, data start)}`` in bytes."""
    with fits.open(path) as hdul:
        return {hdu.name: (hdu.fileinfo()["hdrLoc"], hdu.fileinfo()["datLoc"]) for hdu in hdul}


def truncate_before(path: Path, extname: str) -> None:
    """Cut the file where HDU ``extname`` starts (an HDU boundary)."""
    path.write_bytes(path.read_bytes()[: hdu_offsets(path)[extname][0]])


def truncate_inside(path: Path, extname: str, keep: int = 100) -> None:
    """Cut the file ``keep`` bytes into HDU ``extname``'s data unit."""
    path.write_bytes(path.read_bytes()[: hdu_offsets(path)[extname][1] + keep])


def drop_hdu(path: Path, extname: str) -> None:
    """Rewrite the file without HDU ``extname``."""
    with fits.open(path) as hdul:
        kept = fits.HDUList([hdu.copy() for hdu in hdul if hdu.name != extname])
        kept.writeto(path, overwrite=True)


def corrupt_card(path: Path, extname: str, card: int = 5,
                 text: bytes = b"BUNIT   = 'erg / unterminated \x00 garbage") -> None:
    """Overwrite card number ``card`` of HDU ``extname``'s header with ``text``."""
    start = hdu_offsets(path)[extname][0] + 80 * card
    data = bytearray(path.read_bytes())
    data[start:start + 80] = text.ljust(80)[:80]
    path.write_bytes(bytes(data))


def destroy_end(path: Path, extname: str) -> None:
    """Overwrite the END card of HDU ``extname``'s header."""
    header_start, data_start = hdu_offsets(path)[extname]
    data = bytearray(path.read_bytes())
    end = data.rfind(b"END" + b" " * 77, header_start, data_start)
    data[end:end + 3] = b"XXX"
    path.write_bytes(bytes(data))


def flip_data_byte(path: Path, extname: str, offset: int = 10) -> None:
    """Change one byte of HDU ``extname``'s data unit (a checksum then fails)."""
    position = hdu_offsets(path)[extname][1] + offset
    data = bytearray(path.read_bytes())
    data[position] ^= 0x5A
    path.write_bytes(bytes(data))


GARBLED_VALUES = {
    "TARGETID": -5,                 # a target's TARGETID is positive
    "TARGET_RA": np.nan,            # not a finite angle
    "TARGET_DEC": 95.0,             # beyond the pole
    "OBJTYPE": "XYZ",               # not a fibre code TGT/SKY/NON/BAD
    "COADD_FIBERSTATUS": 0.5,       # not an integer (the column becomes float)
}
"""One garbled value per column: :func:`garble_fibermap` puts the i-th in row ``rows[i]``."""


def garble_fibermap(coadd: CoaddSpectra, rows: list[int],
                    values: dict[str, object] | None = None) -> dict[str, int]:
    """Put one garbled value of ``values`` (default :data:`GARBLED_VALUES`) in each of
    ``rows`` of ``coadd``'s FIBERMAP (in place); ``{column: row}``."""
    values = GARBLED_VALUES if values is None else values
    where = dict(zip(values, rows))
    for column, row in where.items():
        value = values[column]
        if isinstance(value, float) and coadd.fibermap[column].dtype.kind in "iu":
            coadd.fibermap[column] = coadd.fibermap[column].astype(np.float64)
        coadd.fibermap.loc[row, column] = value
    return where


def garble_text(path: Path, column: str, row: int, raw: bytes = b"\xff\xfe") -> None:
    """Overwrite the first bytes of text column ``column`` of FIBERMAP row ``row`` in the
    file with ``raw`` (bytes that do not decode as ASCII)."""
    with fits.open(path) as hdul:
        hdu = hdul["FIBERMAP"]
        start = (hdu.fileinfo()["datLoc"] + row * hdu.header["NAXIS1"]
                 + hdu.data.dtype.fields[column][1])
    data = bytearray(path.read_bytes())
    data[start:start + len(raw)] = raw
    path.write_bytes(bytes(data))
