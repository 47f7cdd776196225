"""Nodes of the data_ingestion pipeline: thin glue over :mod:`desi_abundances.ingestion`."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from desi_abundances.desi.fibermap import GARBLED, describe_garbled, garbled_columns
from desi_abundances.desi.naming import split_partitions
from desi_abundances.desi.velocity import trusted_vrad_kms
from desi_abundances.ingestion import (
    ApogeeNeighbours,
    CoaddSkipped,
    CoaddStack,
    IngestionError,
    apogee_columns,
    coadd_provenance,
    garbled_fibermap_rows,
    join_mws,
    mws_keys,
    mws_table,
    rejection_counts,
    require_columns,
    stellar_target_mask,
    strip_strings,
)
from desi_abundances.labels import LABEL_SOURCE_TABLE, label_source_kind, reference_labels
from desi_abundances.spectra import CoaddSpectra, median_snr

logger = logging.getLogger(__name__)


def select_apogee_stars(apogee_allstar: pd.DataFrame, params: dict[str, Any],
                        labels_source: dict[str, Any] | None = None,
                        labels: list[str] | None = None) -> pd.DataFrame:
    """The allStar columns used downstream (``ingestion.apogee_columns``), text stripped.

    Required: APOGEE_ID, RA, DEC, TEFF, LOGG, FE_H; other absent columns are logged and
    skipped (e.g. an element missing from a release). With ``labels_source.kind: table``
    the input is a generic reference-label table instead (``labels.reference_labels``).
    """
    if label_source_kind(labels_source) == LABEL_SOURCE_TABLE:
        return _select_reference_stars(apogee_allstar, params, labels_source, labels or [])
    wanted = apogee_columns(params.get("apogee_elements"))
    require_columns(
        apogee_allstar, ["APOGEE_ID", "RA", "DEC", "TEFF", "LOGG", "FE_H"], "APOGEE allStar HDU 1"
    )
    absent = [c for c in wanted if c not in apogee_allstar.columns]
    if absent:
        logger.warning("APOGEE allStar lacks %d expected column(s): %s", len(absent), absent)
    stars = strip_strings(apogee_allstar[[c for c in wanted if c in apogee_allstar.columns]])
    logger.info("APOGEE allStar: %d rows, %d columns kept", len(stars), stars.shape[1])
    return stars.reset_index(drop=True)


def _select_reference_stars(table: pd.DataFrame, params: dict[str, Any],
                            labels_source: dict[str, Any], labels: list[str]) -> pd.DataFrame:
    """The canonical reference-label table; a table with rows without RA/Dec cannot drive
    the positional pre-selection (``prefilter_radius_arcsec`` must then be null)."""
    stars = reference_labels(table, labels, labels_source)
    unpositioned = int((~np.isfinite(stars["RA"].to_numpy(float))).sum())
    if unpositioned and params.get("prefilter_radius_arcsec") is not None:
        raise IngestionError(
            f"{table.attrs.get('source', 'reference label table')}: {unpositioned} row(s) "
            "without RA/Dec; set data_ingestion.prefilter_radius_arcsec: null to match them "
            "by TARGETID")
    return stars


def _select_from_coadd(
    partition_id: str,
    coadd: CoaddSpectra,
    mws: pd.DataFrame,
    keys: pd.MultiIndex,
    apogee: ApogeeNeighbours,
    params: Mapping[str, Any],
) -> tuple[CoaddSpectra, pd.DataFrame, dict[str, int]]:
    """The candidate spectra of one coadd and their metadata rows."""
    fibermap = coadd.fibermap
    provenance = coadd_provenance(partition_id, coadd.header, fibermap)
    selection = params.get("selection", {})
    garbled = garbled_fibermap_rows(fibermap, selection)
    try:
        stellar = stellar_target_mask(fibermap, selection, partition_id, garbled)
    except IngestionError as exc:  # e.g. an SV tile coadd without MWS_TARGET
        raise CoaddSkipped(str(exc)) from exc
    if garbled:
        logger.warning("%s", describe_garbled(partition_id, fibermap, garbled))
    rows = np.flatnonzero(stellar)
    table = strip_strings(fibermap.iloc[rows]).reset_index(drop=True)
    require_columns(table, ["TARGETID", "TARGET_RA", "TARGET_DEC"], f"{partition_id} FIBERMAP")
    table["TARGETID"] = table["TARGETID"].astype(np.int64)
    for key, value in provenance.items():
        table[key] = value
    table["source_file"] = partition_id
    table["source_row"] = rows.astype(np.int64)
    table = join_mws(table, mws, keys)
    near = apogee.near(
        table, params.get("prefilter_radius_arcsec"), float(params.get("apogee_epoch_yr", 2000.0))
    )
    table = table[near].reset_index(drop=True)
    selected = coadd.select(rows[near])
    table["vrad_kms"] = trusted_vrad_kms(table)
    table["snr"] = median_snr(selected)
    counts = {"spectra": coadd.n_spectra, "stellar_targets": len(rows), "near_apogee": len(table)}
    counts.update(rejection_counts(fibermap, selection, garbled))
    counts["not_in_mws_catalogue"] = int(table["VRAD"].isna().sum()) if "VRAD" in table else len(table)
    counts["no_trusted_velocity"] = int((~np.isfinite(table["vrad_kms"])).sum())
    return selected, table, counts


def log_coadd_outcome(partition_id: str, counts: Mapping[str, int]) -> None:
    """One line per coadd: candidates kept and why the others were not; a warning when a coadd
    yields nothing."""
    message = (
        "%s: %d of %d spectra kept (near an APOGEE star); rejected: garbled FIBERMAP row %d%s, "
        "bad fibre %d, not a science target %d, not an MWS target %d (may overlap), far from "
        "APOGEE %d; of those kept, not in the MWS catalogue %d, no trusted velocity %d"
    )
    args = (partition_id, counts["near_apogee"], counts["spectra"], counts.get(GARBLED, 0),
            garbled_columns(counts), counts["bad_fibre"],
            counts["not_science_target"], counts["not_mws_target"],
            counts["stellar_targets"] - counts["near_apogee"], counts["not_in_mws_catalogue"],
            counts["no_trusted_velocity"])
    if counts["near_apogee"] == 0:
        logger.warning(message + ": this coadd yields nothing", *args)
    else:
        logger.info(message, *args)


def check_unique_targets(metadata: pd.DataFrame) -> None:
    """Refuse a TARGETID that two healpix coadds of one (SURVEY, PROGRAM) both hold (an
    impostor would take the other's velocity and labels); tile-based coadds (HEALPIX -1)
    may share targets.

    Raises:
        IngestionError: naming the TARGETID and both places (coadd, FIBERMAP row).
    """
    keys = ["TARGETID", "SURVEY", "PROGRAM"]
    healpix = metadata[metadata["HEALPIX"].to_numpy() >= 0] if "HEALPIX" in metadata else metadata
    repeated = healpix[healpix.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        places = repeated[(repeated[keys] == first[keys]).all(axis=1)]
        where = " and ".join(f"{row.source_file} row {row.source_row}"
                             for row in places.itertuples(index=False))
        raise IngestionError(
            f"TARGETID {first['TARGETID']} of {first['SURVEY']}/{first['PROGRAM']} is in {where} "
            f"({repeated[keys].drop_duplicates().shape[0]} repeated TARGETIDs in all): a TARGETID "
            "names one target per survey and program"
        )


def ingest_spectra(
    desi_coadds: Mapping[str, Callable[[], CoaddSpectra]],
    mws_catalogue: Mapping[str, pd.DataFrame],
    apogee_stars: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[CoaddSpectra, pd.DataFrame]:
    """Stack the candidate training spectra of every coadd, loading one coadd at a time.

    Keeps good stellar targets (``params.selection``) with an APOGEE star near or a Gaia id
    in common (``params.prefilter_radius_arcsec``; null keeps all).

    Returns:
        (``stacked_spectra``, ``spectra_metadata``: row-matched table of FIBERMAP columns,
        HEALPIX, SURVEY, PROGRAM, source_file, source_row, MWS RVTAB columns,
        GAIA_SOURCE_ID, vrad_kms, snr).

    Raises:
        IngestionError: when there is no coadd or no spectrum survives.
    """
    partitions, ignored = split_partitions(list(desi_coadds), include_tiles=True)
    if ignored:
        logger.info(
            "desi_coadds: %d files are not coadds (coadd-<survey>-<program>-<healpix>.fits or "
            "tile-based coadd-<petal>-<tileid>-thru<night>.fits) and are ignored, e.g. %s",
            len(ignored), ignored[:3],
        )
    if not partitions:
        raise IngestionError(
            f"desi_coadds holds no coadd file: no healpix coadd ({len(ignored)} other files ignored)"
        )
    mws = mws_table(mws_catalogue, params.get("mws_rvtab_columns", []))
    logger.info("MWS catalogue: %d spectra, %d with a Gaia EDR3 id", len(mws), int((mws["GAIA_SOURCE_ID"] > 0).sum()))
    keys = mws_keys(mws)
    apogee = ApogeeNeighbours(apogee_stars)
    stack, tables, is_mock, specprod = CoaddStack(), [], False, None
    totals = {"spectra": 0, "stellar_targets": 0, "near_apogee": 0}
    skipped: dict[str, str] = {}
    for partition_id in partitions:
        coadd = desi_coadds[partition_id]()
        try:
            selected, table, counts = _select_from_coadd(partition_id, coadd, mws, keys, apogee, params)
        except CoaddSkipped as exc:
            skipped[partition_id] = str(exc)
            logger.warning("coadd skipped: %s", exc)
            continue
        is_mock |= coadd.is_mock
        specprod = specprod or coadd.header.get("SPECPROD")
        del coadd
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        log_coadd_outcome(partition_id, counts)
        if len(table):
            stack.add(selected, partition_id)
            tables.append(table)
    logger.info(
        "data_ingestion: %d coadds (%d skipped), %d spectra, %d good stellar targets, %d near an "
        "APOGEE star, %d garbled FIBERMAP rows skipped%s", len(partitions), len(skipped),
        totals["spectra"], totals["stellar_targets"], totals["near_apogee"],
        totals.get(GARBLED, 0), garbled_columns(totals),
    )
    if not tables:
        raise IngestionError(
            f"no spectrum survived the selection ({totals}; {len(skipped)} coadds skipped: "
            f"{list(skipped.values())[:3]})"
        )
    metadata = pd.concat(tables, ignore_index=True)
    check_unique_targets(metadata)
    n_mws = int(metadata["VRAD"].notna().sum()) if "VRAD" in metadata else 0
    logger.info(
        "spectra_metadata: %d rows, %d with an MWS row, %d with a trusted vrad, %d with an EDR3 id",
        len(metadata), n_mws, int(np.isfinite(metadata["vrad_kms"]).sum()),
        int((metadata["GAIA_SOURCE_ID"] > 0).sum()),
    )
    header = {"MOCK": is_mock, "STACKED": True, "NCOADDS": len(partitions) - len(skipped)}
    if specprod:
        header["SPECPROD"] = specprod
    return stack.build(header), metadata
