"""Reference-label sources (Kedro-free): :mod:`desi_abundances.labels.apogee` holds APOGEE
allStar's quality cuts and label columns; :mod:`desi_abundances.labels.table` reads any other label table (GALAH, LAMOST, a cluster
sample, a stellar library) into one canonical form."""
from desi_abundances.labels.table import (
    LABEL_SOURCE_APOGEE,
    LABEL_SOURCE_TABLE,
    NO_TARGETID,
    REFERENCE_ID,
    LabelTableError,
    label_source_kind,
    read_label_table,
    read_table_file,
    reference_labels,
    write_table_file,
)

__all__ = [
    "LABEL_SOURCE_APOGEE",
    "LABEL_SOURCE_TABLE",
    "NO_TARGETID",
    "REFERENCE_ID",
    "LabelTableError",
    "label_source_kind",
    "read_label_table",
    "read_table_file",
    "reference_labels",
    "write_table_file",
]
