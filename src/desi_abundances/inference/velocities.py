"""Radial velocities from the MWS catalogue's RVTAB, looked up by (TARGETID, SURVEY,
PROGRAM). The trusted-velocity rule and the key normalisation are DESI's, in
:mod:`desi_abundances.desi` (the same as data_ingestion's)."""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from desi_abundances.desi.provenance import normalise_key, normalise_keys
from desi_abundances.desi.velocity import trusted_vrad
from desi_abundances.inference.errors import InferenceError

logger = logging.getLogger(__name__)


def radial_velocity_table(rvtab: pd.DataFrame) -> pd.DataFrame:
    """Usable radial velocities from the MWS catalogue's RVTAB.

    Returns:
        TARGETID, SURVEY, PROGRAM (``desi.provenance.normalise_key``: stripped, lower case)
        and ``vrad_kms``: ``desi.velocity.trusted_vrad`` (VRAD in km/s where RVS_WARN == 0,
        SUCCESS and VRAD finite, else NaN). One row per (TARGETID, SURVEY, PROGRAM): the
        first is kept when the catalogue repeats one.

    Raises:
        InferenceError: when a required column is missing.
    """
    required = ("TARGETID", "SURVEY", "PROGRAM", "VRAD", "RVS_WARN", "SUCCESS")
    missing = [c for c in required if c not in rvtab.columns]
    if missing:
        raise InferenceError(f"mws_catalogue RVTAB lacks columns {missing}")
    vrad = trusted_vrad(rvtab["VRAD"], rvtab["RVS_WARN"], rvtab["SUCCESS"])
    counts = velocity_counts(rvtab, vrad)
    table = pd.DataFrame(
        {
            "TARGETID": np.asarray(rvtab["TARGETID"], dtype=np.int64),
            "SURVEY": normalise_keys(rvtab["SURVEY"]),
            "PROGRAM": normalise_keys(rvtab["PROGRAM"]),
            "vrad_kms": vrad,
        }
    )
    duplicated = table.duplicated(["TARGETID", "SURVEY", "PROGRAM"])
    if duplicated.any():
        logger.warning(
            "mws_catalogue RVTAB repeats %d (TARGETID, SURVEY, PROGRAM) keys; keeping the first",
            int(duplicated.sum()),
        )
        table = table[~duplicated].reset_index(drop=True)
    table.attrs["counts"] = counts
    return table


def velocity_counts(rvtab: pd.DataFrame, vrad: np.ndarray) -> dict[str, int]:
    """RVTAB rows left after each cut of the trusted-velocity rule (for messages)."""
    warn = pd.to_numeric(rvtab["RVS_WARN"], errors="coerce").to_numpy(np.float64) == 0
    finite = np.isfinite(pd.to_numeric(rvtab["VRAD"], errors="coerce").to_numpy(np.float64))
    return {"rows": len(rvtab), "vrad_finite": int(finite.sum()),
            "and_rvs_warn_0": int((finite & warn).sum()),
            "and_success (trusted)": int(np.isfinite(vrad).sum())}


class RadialVelocityLookup:
    """Radial velocity (km/s) of (TARGETID, SURVEY, PROGRAM); small and picklable."""

    def __init__(self, table: pd.DataFrame):
        self._by_program: dict[tuple[str, str], pd.Series] = {
            (survey, program): pd.Series(
                group["vrad_kms"].to_numpy(), index=group["TARGETID"].to_numpy()
            )
            for (survey, program), group in table.groupby(["SURVEY", "PROGRAM"], sort=True)
        }
        self.fingerprint = hash_frame(table)
        self.n_trusted = int(np.isfinite(table["vrad_kms"].to_numpy(np.float64)).sum())
        """Rows with a trusted velocity (0: no target can be shifted to its rest frame)."""
        self.counts: dict[str, int] = dict(table.attrs.get("counts") or {"rows": len(table)})
        """Rows after each cut of the velocity rule (``velocity_counts``)."""

    def lookup(self, survey: str, program: str, targetid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vrad_kms, in_catalogue)`` for ``targetid``: NaN/False where absent."""
        series = self._by_program.get((normalise_key(survey), normalise_key(program)))
        targetid = np.asarray(targetid, dtype=np.int64)
        if series is None:
            return np.full(targetid.size, np.nan), np.zeros(targetid.size, dtype=bool)
        position = series.index.get_indexer(targetid)
        found = position >= 0
        vrad = np.where(found, series.to_numpy()[np.maximum(position, 0)], np.nan)
        return vrad.astype(np.float64), found


def hash_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's values (pandas row hashes; index ignored)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()
