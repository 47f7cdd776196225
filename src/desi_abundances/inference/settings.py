"""``params:inference``, validated: :class:`InferenceSettings` and its :class:`FlagSettings`."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FlagSettings:
    """Thresholds of the quality flags.

    Attributes:
        min_snr: spectra with median S/N per pixel below this get LOW_SNR.
        range_labels: labels whose leaving the training range sets LABEL_OUT_OF_RANGE in
            ``flag`` (None: every label); ``label_range_flag`` always has every label's bit.
        max_rchi2_floor: spectra whose reduced chi-square against the spectrum model at
            their predicted labels with the model-error floor (``rchi2_floor``,
            ``nn.fit_quality``) exceeds this get POOR_FIT.
        max_composite_score: spectra whose ``composite_score`` (a second star's lines at
            another velocity, ``nn.binaries``) exceeds this get COMPOSITE.
    """

    min_snr: float = 10.0
    range_labels: tuple[str, ...] | None = None
    max_rchi2_floor: float = 2.0
    max_composite_score: float = 10.0

    def __post_init__(self) -> None:
        if self.range_labels is not None:
            object.__setattr__(self, "range_labels", tuple(self.range_labels))


@dataclass(frozen=True)
class InferenceSettings:
    """``params:inference``, validated. See ``conf/base/parameters_inference.yml``."""

    per_coadd_dir: str = "data/07_model_output/per_coadd"
    vac_filepath: str = "data/07_model_output/desi_abundances_vac.fits"
    partitions: tuple[str, ...] | None = None
    healpix: tuple[int, ...] | None = None
    only_mws_catalogue: bool = True
    allow_mock_model: bool = False
    flags: FlagSettings = field(default_factory=FlagSettings)
    scheduler: str = "synchronous"
    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    torch_threads: int | None = None
    prefetch: int = 2
    max_in_flight_per_thread: int = 2
    on_error: str = "raise"
    progress: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InferenceSettings:
        """Build from the ``inference`` parameters; unknown keys and bad values raise."""
        params = dict(params or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(params) - known
        if unknown:
            raise ValueError(
                f"params:inference has unknown keys {sorted(unknown)}; known: {sorted(known)}"
            )
        flags = FlagSettings(**(params.pop("flags", None) or {}))
        for key in ("partitions", "healpix"):
            # a list, one value, or (from `kedro run --params`, which splits on commas) a
            # string of values separated by spaces or semicolons
            value = params.get(key)
            if isinstance(value, str):
                value = [v for v in re.split(r"[\s;]+", value) if v]
            if value is not None:
                params[key] = tuple([value] if isinstance(value, int) else value)
        if params.get("healpix") is not None:
            params["healpix"] = tuple(int(h) for h in params["healpix"])
        settings = cls(flags=flags, **params)
        if settings.on_error not in ("raise", "skip"):
            raise ValueError(f"params:inference.on_error must be 'raise' or 'skip', got {settings.on_error!r}")
        if settings.n_workers < 1 or settings.threads_per_worker < 1:
            raise ValueError("params:inference.n_workers and threads_per_worker must be >= 1")
        if settings.prefetch < 0:
            raise ValueError("params:inference.prefetch must be >= 0")
        return settings
