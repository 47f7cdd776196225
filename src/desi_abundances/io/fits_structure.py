"""The structure of a FITS file read from its raw header blocks, before astropy parses it:
every HDU's header complete (an END card), every card parseable, every data unit wholly in
the file. astropy is lenient where this must not be (a header without END swallows the
next HDU, an unparsable card is a warning, a file cut at an HDU boundary is just a shorter
file), so a reader that needs all its HDUs checks them here first (``io.desi_coadd``).

Only headers are read (a few 2880-byte blocks per HDU): microseconds per HDU.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from desi_abundances.io.fits_table import FitsReadError

BLOCK = 2880
"""Bytes in a FITS block; headers and data units are padded to whole blocks."""

CARD = 80
"""Bytes in a header card."""

_KEYWORD_RE = re.compile(r"^[A-Z0-9_-]{0,8} *$")
_VALUE_RE = fits.Card._value_NFSC_RE  # astropy's own (non-standard tolerant) value syntax
_COMMENTARY = {"", "COMMENT", "HISTORY", "CONTINUE", "HIERARCH"}


@dataclass(frozen=True)
class HduLayout:
    """Where one HDU lies in the file and what its header says about its data.

    ``shape`` is numpy's order (NAXISn reversed: an image of n spectra x m pixels is (n, m);
    a table is (rows, row bytes)); ``data_bytes`` excludes the padding."""

    index: int
    name: str
    xtension: str
    header_start: int
    data_start: int
    data_bytes: int
    shape: tuple[int, ...]
    has_checksum: bool

    @property
    def label(self) -> str:
        """``'NAME' (HDU #i)`` for messages."""
        return f"{self.name!r} (HDU #{self.index})"

    @property
    def end(self) -> int:
        """Byte after the padded data unit (where the next HDU starts)."""
        return self.data_start + -(-self.data_bytes // BLOCK) * BLOCK


def _printable(cards: np.ndarray) -> np.ndarray:
    """Per card (rows of uint8), True when every byte is printable ASCII (32..126)."""
    return ((cards >= 32) & (cards <= 126)).all(axis=1)


def _read_header(handle, path: Path, index: int, start: int, size: int) -> list[str]:
    """The cards of the header starting at ``start`` up to (not including) END.

    Raises:
        FitsReadError: the file ends inside the header (truncated), the header has no END
            card (it runs into data or into the next HDU), or a card is unparsable.
    """
    where = f"{path}: header of HDU #{index}"
    cards: list[str] = []
    position = start
    while True:
        handle.seek(position)
        block = handle.read(BLOCK)
        if len(block) < BLOCK:
            raise FitsReadError(
                f"{where} is truncated: the file ends {len(block)} bytes into a header block "
                f"(file size {size} bytes)"
            )
        rows = np.frombuffer(block, dtype=np.uint8).reshape(-1, CARD)
        printable = _printable(rows)
        for number, (row, ok) in enumerate(zip(rows, printable)):
            text = row.tobytes().decode("latin-1")
            if text.startswith("END") and text[3:].strip() == "":
                return _checked_cards(cards, where)
            if cards and text.startswith("XTENSION="):
                raise FitsReadError(
                    f"{where} ({_name(cards)}) has no END card: it runs into the next HDU "
                    f"(card {len(cards)})"
                )
            if not ok and 2 * int((~printable[number:]).sum()) >= len(printable) - number:
                raise FitsReadError(
                    f"{where} ({_name(cards)}) has no END card: it runs into binary data "
                    f"(card {len(cards)})"
                )
            cards.append(text)
        position += BLOCK


def _name(cards: list[str]) -> str:
    """EXTNAME from raw cards, for messages ('?' when absent)."""
    for text in cards:
        if text.startswith("EXTNAME ="):
            match = _VALUE_RE.match(text[10:])
            if match and match.group("strg") is not None:
                return repr(match.group("strg").strip())
    return "no EXTNAME"


def _checked_cards(cards: list[str], where: str) -> list[str]:
    """``cards`` when each is printable with a valid keyword and a parseable value."""
    for number, text in enumerate(cards):
        keyword = text[:8].strip()
        problem = None
        if not (text.isascii() and text.isprintable()):  # every byte in 32..126
            problem = "holds bytes that are not printable ASCII"
        elif not _KEYWORD_RE.match(text[:8]):
            problem = f"has an invalid keyword {text[:8]!r}"
        elif text[8:10] == "= " and keyword not in _COMMENTARY and not _VALUE_RE.match(text[10:]):
            problem = f"has a value that cannot be parsed ({text[10:].rstrip()!r})"
        if problem:
            raise FitsReadError(
                f"{where} ({_name(cards)}): unparsable header card {number} "
                f"{keyword or '(blank keyword)'!r}: it {problem}"
            )
    return cards


def _value(cards: list[str], keyword: str, default: object = None) -> object:
    """Value of ``keyword`` in raw cards (int, float, bool or str); ``default`` if absent."""
    for text in cards:
        if text[:8].strip() == keyword and text[8:10] == "= ":
            match = _VALUE_RE.match(text[10:])
            if match.group("strg") is not None:
                return match.group("strg").rstrip()
            if match.group("bool") is not None:
                return match.group("bool") == "T"
            if match.group("numr") is not None:
                number = match.group("numr").replace(" ", "").replace("D", "E").replace("d", "e")
                return float(number) if any(c in number for c in ".eE") else int(number)
    return default


def _layout(cards: list[str], index: int, header_start: int, data_start: int,
            where: str) -> HduLayout:
    """The layout of one HDU from its header cards."""
    try:
        bitpix = int(_value(cards, "BITPIX"))
        naxis = int(_value(cards, "NAXIS"))
        axes = [int(_value(cards, f"NAXIS{i}")) for i in range(1, naxis + 1)]
        pcount = int(_value(cards, "PCOUNT", 0))
        gcount = int(_value(cards, "GCOUNT", 1))
    except (TypeError, ValueError) as exc:
        raise FitsReadError(
            f"{where}: BITPIX/NAXIS/NAXISn/PCOUNT/GCOUNT missing or not integers ({exc})"
        ) from exc
    n_values = int(np.prod(axes)) if naxis else 0
    data_bytes = abs(bitpix) // 8 * gcount * (pcount + n_values) if naxis else 0
    xtension = "PRIMARY" if index == 0 else str(_value(cards, "XTENSION", "")).strip()
    name = str(_value(cards, "EXTNAME", "PRIMARY" if index == 0 else "")).strip().upper()
    return HduLayout(index=index, name=name, xtension=xtension, header_start=header_start,
                     data_start=data_start, data_bytes=data_bytes, shape=tuple(reversed(axes)),
                     has_checksum=any(text.startswith(("CHECKSUM=", "DATASUM =")) for text in cards))


def scan_fits(path: str | os.PathLike) -> list[HduLayout]:
    """The HDUs of the FITS file ``path`` in order, from their raw headers.

    Raises:
        FitsReadError: naming the file, the HDU and the problem: missing file, not FITS,
            truncated (inside a header or a data unit), a header without END, an
            unparsable card.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise FitsReadError(f"{path}: file does not exist") from exc
    except OSError as exc:
        raise FitsReadError(f"{path}: cannot be opened ({exc.strerror or exc})") from exc
    layouts: list[HduLayout] = []
    with handle:
        if handle.read(9) != b"SIMPLE  =":
            raise FitsReadError(f"{path}: not a FITS file (no SIMPLE card at the start)")
        position = 0
        while position < size:
            index = len(layouts)
            cards = _read_header(handle, path, index, position, size)
            data_start = position + -(-(len(cards) + 1) * CARD // BLOCK) * BLOCK
            layout = _layout(cards, index, position, data_start, f"{path}: HDU #{index}")
            if layout.data_start + layout.data_bytes > size:
                found = max(size - layout.data_start, 0)
                raise FitsReadError(
                    f"{path}: file truncated in HDU {layout.label}: its data unit has "
                    f"{found} of {layout.data_bytes} bytes"
                )
            layouts.append(layout)
            position = layout.end
            if position > size and size - layout.data_start >= layout.data_bytes:
                break  # the last data unit lacks only its padding: tolerated (astropy is too)
    return layouts
