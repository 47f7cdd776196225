"""desi.provenance: one rule for survey/program/healpix and the join keys."""
from __future__ import annotations

import numpy as np
import pytest

from desi_abundances.desi.provenance import (
    ProvenanceError,
    coadd_provenance,
    normalise_key,
    normalise_keys,
)

NAME = "sv3/bright/272/27247/coadd-sv3-bright-27247"


def test_header_wins_and_is_lower_cased_and_stripped():
    header = {"SURVEY": "Main ", "PROGRAM": b"BACKUP", "HPXPIXEL": 5}
    assert coadd_provenance(header, NAME) == ("main", "backup", 5)


def test_file_name_fills_what_the_header_lacks():
    assert coadd_provenance({}, NAME) == ("sv3", "bright", 27247)
    assert coadd_provenance({"SURVEY": "  ", "HPXPIXEL": 1}, NAME) == ("sv3", "bright", 1)
    assert coadd_provenance(None, NAME + ".fits") == ("sv3", "bright", 27247)


def test_neither_header_nor_name_raises_naming_the_coadd():
    with pytest.raises(ProvenanceError, match="odd-name"):
        coadd_provenance({}, "odd-name")
    with pytest.raises(ProvenanceError, match="coadd-5-169"):
        coadd_provenance({"SURVEY": "main"}, "coadd-5-169-thru20210419")


def test_catalogue_keys_normalise_like_headers():
    values = np.array(["MAIN", "main  ", b"Main", "sv3"], dtype=object)
    assert list(normalise_keys(values)) == ["main", "main", "main", "sv3"]
    assert normalise_key(" Bright ") == "bright"
    assert normalise_keys([]).size == 0


TILE = "tiles/cumulative/169/20210419/coadd-5-169-thru20210419"


def test_tile_coadd_takes_survey_program_from_header_or_fibermap():
    import pandas as pd

    from desi_abundances.desi.provenance import NO_HEALPIX

    assert coadd_provenance({"SURVEY": "main", "PROGRAM": "Bright"}, TILE) == ("main", "bright", NO_HEALPIX)
    assert coadd_provenance({"SURVEY": "sv1", "FAPRGRM": "dark"}, TILE) == ("sv1", "dark", NO_HEALPIX)
    fibermap = pd.DataFrame({"SURVEY": ["main", "main "], "PROGRAM": ["backup", "BACKUP"]})
    assert coadd_provenance({}, TILE, fibermap) == ("main", "backup", NO_HEALPIX)


def test_tile_coadd_without_provenance_raises_with_the_reason():
    import pandas as pd

    mixed = pd.DataFrame({"SURVEY": ["main", "sv1"], "PROGRAM": ["dark", "dark"]})
    for header, fibermap in (({}, None), ({"TILEID": 169}, mixed), ({"FAPRGRM": "m31"}, None)):
        with pytest.raises(ProvenanceError, match="tile-based coadd .*coadd-5-169.*MWS catalogue"):
            coadd_provenance(header, TILE, fibermap)
