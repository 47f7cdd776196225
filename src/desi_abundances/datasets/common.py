"""What the Kedro wrappers share: local paths, plain read errors as ``DatasetError``s."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NewType

from kedro.io import DatasetError
from kedro.io.core import get_protocol_and_path

from desi_abundances.io.fits_table import FitsReadError

TablePreview = NewType("TablePreview", dict)
"""Return type of a table ``preview`` (kedro-viz picks the table renderer by this name; the
same as kedro-datasets' own, which lives in a private module)."""

JSONPreview = NewType("JSONPreview", str)
"""Return type of a JSON-text ``preview`` (kedro-viz's JSON renderer; same name rule)."""


def local_path(filepath: str) -> Path:
    """The local path of ``filepath`` (``file://`` prefixes allowed; remote ones are not)."""
    protocol, path = get_protocol_and_path(str(filepath))
    if protocol not in ("file", ""):
        raise DatasetError(f"{filepath}: only local files are supported, got '{protocol}://'")
    return Path(path)


@contextlib.contextmanager
def as_dataset_error(*errors: type[Exception]) -> Iterator[None]:
    """Re-raise a plain reader's error (``errors``, default :class:`FitsReadError`) as a
    ``DatasetError`` with the same message (it names the file, HDU and column)."""
    caught = errors or (FitsReadError,)
    try:
        yield
    except caught as error:
        raise DatasetError(str(error)) from error
