"""Matching DESI spectra to a reference-label source: ``apogee`` (APOGEE DR17 allStar: Gaia
ids, then positions at a common epoch) and ``reference`` (any label table: TARGETID, then
positions)."""
