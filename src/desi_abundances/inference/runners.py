"""The driver: plan which coadds to do, run them here (``scheduler: synchronous``, with
reader threads preparing the next coadds) or on a ``dask.distributed`` cluster (a
LocalCluster or any scheduler address), and report. Workers get paths and settings (all
picklable) and read each coadd themselves; the outputs do not depend on where they were made.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from astropy.io import fits
from distributed import Client, LocalCluster, as_completed
from tqdm.auto import tqdm

from desi_abundances.desi.fibermap import GARBLED, garbled_columns
from desi_abundances.inference.errors import CoaddSkipped, InferenceError, MockModelError
from desi_abundances.inference.outputs import (
    PartitionResult,
    output_path,
    plan_partitions,
    run_fingerprint,
    source_signature,
    write_partition,
)
from desi_abundances.inference.predictor import LabelPredictor, check_labels
from desi_abundances.inference.prepare import PreparedPartition, prepare_partition, read_partition
from desi_abundances.inference.selection import select_partitions
from desi_abundances.inference.settings import InferenceSettings
from desi_abundances.inference.velocities import RadialVelocityLookup
from desi_abundances.io.atomic import remove_stale_temporaries
from desi_abundances.io.locks import output_lock

logger = logging.getLogger(__name__)

CoaddPaths = Mapping[str, "str | os.PathLike"]
"""``{partition_id: coadd file}``, e.g. ``desi.naming.list_coadds(root).coadds``."""


def set_torch_threads(n_threads: int | None) -> int | None:
    """``torch.set_num_threads(n_threads)`` when given (torch imported only then); returns
    the previous number of threads (None when nothing was changed)."""
    if not n_threads:
        return None

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    return previous


def synchronous_torch_threads(settings: InferenceSettings) -> int | None:
    """Torch threads of a synchronous run: ``torch_threads`` when set; otherwise, when a
    reader thread prepares the next coadds (``prefetch`` > 0), all cores but the one it
    uses, so that the two do not oversubscribe the CPU; else torch's default."""
    if settings.torch_threads:
        return int(settings.torch_threads)
    if settings.prefetch > 0:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (cores or 2) - 1)
    return None


def process_partition(
    partition_id: str,
    path: str | os.PathLike,
    read_options: Mapping[str, Any] | None,
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    per_coadd_dir: str,
    fingerprint: str,
) -> PartitionResult:
    """Read, prepare, predict and write one partition: the unit of work of a Dask task."""
    start = time.perf_counter()
    set_torch_threads(settings.torch_threads)
    source = source_signature(path)
    prepared = prepare_partition(read_partition(path, read_options), partition_id, predictor,
                                 velocities, settings)
    prepared.source = source
    result = write_partition(prepared, predictor, settings, per_coadd_dir, fingerprint)
    result.seconds = time.perf_counter() - start
    return result


OUTCOME_KEYS = ("spectra", GARBLED, "not_science_target", "not_in_mws_catalogue", "selected",
                "no_trusted_velocity", "bad_fibre")
"""Per-coadd target counts (``selection.target_outcomes``), summed in the report (with
``garbled_fibermap:<COLUMN>`` per column where any)."""


def log_outcome(result: PartitionResult) -> None:
    """One line per coadd: targets selected and why the others were not; a warning when a
    coadd yields nothing."""
    counts = result.counts or {}
    if not counts:
        return
    message = (
        "%s: %d of %d spectra selected (garbled FIBERMAP rows %d%s, not science targets %d, not"
        " in the MWS catalogue %d); of those, no trusted velocity %d, bad fibre %d (kept, flagged)"
    )
    args = (result.partition_id, counts["selected"], counts["spectra"], counts.get(GARBLED, 0),
            garbled_columns(counts), counts["not_science_target"],
            counts["not_in_mws_catalogue"], counts["no_trusted_velocity"], counts["bad_fibre"])
    if counts["selected"] == 0:
        logger.warning(message + ": this coadd yields no row", *args)
    else:
        logger.info(message, *args)


def header_is_mock(path: str | os.PathLike) -> bool | None:
    """The MOCK keyword of a coadd's primary header (None when unreadable)."""
    try:
        return bool(fits.getheader(path, 0).get("MOCK", False))
    except (OSError, ValueError):
        return None


def check_model_provenance(predictor: LabelPredictor, first_coadd: str | os.PathLike,
                           allow_mock_model: bool) -> None:
    """Say in the log whether a mock-trained model meets real coadds (first coadd to do);
    refuse it unless ``allow_mock_model`` (each coadd is checked again when prepared).

    Raises:
        MockModelError: a mock-trained model, a real coadd and ``allow_mock_model`` false.
    """
    model_mock = bool(getattr(predictor, "is_mock", False))
    coadd_mock = header_is_mock(first_coadd)
    if not model_mock:
        logger.info("model bundle trained on real data (MOCKMODL false)")
    elif coadd_mock or coadd_mock is None:
        logger.info("model bundle trained on mock data, applied to mock coadds")
    elif allow_mock_model:
        logger.warning("model bundle trained on MOCK data applied to REAL coadds: allowed by "
                       "inference.allow_mock_model: true; the catalogue says MOCKMODL = T")
    else:
        raise MockModelError(
            f"{first_coadd}: the model bundle was trained on mock data and the coadds are real:"
            " refused; retrain on real data or set inference.allow_mock_model: true"
        )


class _Progress:
    """tqdm bar over coadds, with spectra per second as a postfix."""

    def __init__(self, total: int, enabled: bool):
        self.bar = tqdm(total=total, unit="coadd", desc="inference", disable=not enabled, mininterval=1.0)
        self.n_spectra = 0
        self.start = time.perf_counter()

    def update(self, result: PartitionResult) -> None:
        self.n_spectra += result.n_spectra
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(spectra=self.n_spectra, spectra_per_s=f"{self.n_spectra / elapsed:.0f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _run_synchronous(
    todo: Sequence[str],
    prepare: Callable[[str], PreparedPartition],
    finish: Callable[[PreparedPartition], PartitionResult],
    prefetch: int,
) -> Iterator[PartitionResult | tuple[str, BaseException]]:
    """Process partitions in order in this process. With ``prefetch`` > 0, a background
    thread reads and prepares (preprocesses) the next ``prefetch`` coadds while the network
    runs on the current one: numpy and torch release the GIL, so the two overlap on two
    cores. At most ``prefetch + 1`` coadds are alive at once, whatever the number of
    partitions."""
    if prefetch == 0:
        for pid in todo:
            try:
                result = finish(prepare(pid))
            except Exception as exc:  # reported (then raised or skipped) by the caller
                yield pid, exc
                continue
            yield result
        return
    # one reader thread per coadd read ahead: with prefetch >= 2 the reads, selections and
    # S/N of consecutive coadds overlap too (the compiled preprocess is multi-threaded anyway)
    with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="coadd-reader") as reader:
        queue = iter(todo)
        pending: deque[tuple[str, Future]] = deque()

        def top_up() -> None:
            while len(pending) < prefetch:
                pid = next(queue, None)
                if pid is None:
                    return
                pending.append((pid, reader.submit(prepare, pid)))

        top_up()
        while pending:
            pid, future = pending.popleft()
            try:
                prepared = future.result()
            except Exception as exc:
                top_up()
                yield pid, exc
                continue
            finally:
                future = None
            top_up()  # the next reads run while this coadd is predicted
            try:
                result = finish(prepared)
            except Exception as exc:
                prepared = None
                yield pid, exc
                continue
            prepared = None
            yield result


def _run_on_dask(
    todo: Sequence[str],
    coadds: CoaddPaths,
    read_options: Mapping[str, Any],
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    per_coadd_dir: str,
    fingerprint: str,
) -> Iterator[PartitionResult | tuple[str, BaseException]]:
    """Process partitions on a dask.distributed cluster: the model and the velocity table are
    scattered once to every worker; at most ``max_in_flight_per_thread`` tasks per worker
    thread are queued at a time, so neither the scheduler nor the workers hold more."""

    cluster = None
    if settings.scheduler == "local":
        cluster = LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            processes=settings.processes,
            dashboard_address="127.0.0.1:0",  # this host only; any free port (8787 may be taken)
        )
        client = Client(cluster)
    else:
        client = Client(settings.scheduler)
    try:
        n_threads = max(sum(client.nthreads().values()), 1)
        logger.info(
            "Dask scheduler %s: %d workers, %d threads; dashboard %s",
            client.scheduler.address, len(client.nthreads()), n_threads, client.dashboard_link,
        )
        predictor_future = client.scatter(predictor, broadcast=True, hash=False)
        velocities_future = client.scatter(velocities, broadcast=True, hash=False)
        window = n_threads * max(settings.max_in_flight_per_thread, 1)
        queue = iter(todo)
        futures: dict[Any, str] = {}

        def submit(pid: str) -> Any:
            future = client.submit(
                process_partition,
                pid,
                str(coadds[pid]),
                dict(read_options),
                predictor_future,
                velocities_future,
                settings,
                per_coadd_dir,
                fingerprint,
                key=f"infer-{fingerprint[:12]}-{pid}",
                pure=False,
            )
            futures[future] = pid
            return future

        completed = as_completed([submit(pid) for _, pid in zip(range(window), queue)])
        for future in completed:
            pid = futures.pop(future)
            try:
                outcome: PartitionResult | tuple[str, BaseException] = future.result()
            except Exception as exc:
                outcome = (pid, exc)
            future.release()
            nxt = next(queue, None)
            if nxt is not None:
                completed.add(submit(nxt))
            yield outcome
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def drop_stale_output(per_coadd_dir: str, partition_id: str) -> None:
    """Remove the output a coadd had before it failed (made from an earlier version of the
    file, or with other settings): the catalogue must not merge it as if it were current."""
    path = output_path(per_coadd_dir, partition_id)
    if path.exists():
        path.unlink()
        logger.warning("partition %s: its earlier output %s removed (the coadd now fails)",
                       partition_id, path)


def check_velocities(velocities: RadialVelocityLookup) -> None:
    """Refuse, before anything is written, a velocity table in which no row is trusted: every
    output would be all-NaN and replace good ones.

    Raises:
        InferenceError: with the rows left after each cut of the velocity rule.
    """
    if getattr(velocities, "n_trusted", 1) == 0:
        raise InferenceError(
            "no target has a usable radial velocity: the MWS catalogue RVTAB has no trusted "
            f"VRAD (rows after each cut: {velocities.counts}); nothing written, earlier "
            "outputs kept"
        )


def run_inference(
    coadds: CoaddPaths,
    predictor: LabelPredictor,
    velocities: RadialVelocityLookup,
    settings: InferenceSettings,
    labels: Sequence[str] | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict every selected partition that has no complete output; return a report.

    Args:
        coadds: ``{partition_id: coadd file path}`` (``desi.naming.list_coadds``).
        predictor: the model (see :class:`LabelPredictor`, :class:`BundlePredictor`).
        velocities: radial velocities from the MWS catalogue.
        settings: ``params:inference``.
        labels: ``params:labels``; the model must predict exactly these.
        read_options: keyword arguments of ``io.desi_coadd.read_coadd`` (arms,
            read_resolution, fibermap_columns, ...).

    Returns:
        A JSON-able report: counts of partitions selected/skipped/done/failed, spectra
        predicted, seconds, spectra per second, the run fingerprint and the selected
        partition ids (the VAC is built from those).

    Raises:
        BundleMismatchError: when the model's labels differ from ``labels``.
        InferenceError: when a partition fails and ``on_error`` is ``raise`` (the message
            names it; outputs already written are kept).
    """
    check_labels(predictor, labels)
    read_options = dict(read_options or {})
    selected = select_partitions(coadds, settings.partitions, settings.healpix)
    if not selected:
        raise InferenceError(
            f"no coadd selected: {len(coadds)} partitions, patterns {settings.partitions}, "
            f"healpix {settings.healpix}"
        )
    check_velocities(velocities)
    per_coadd_dir = str(Path(settings.per_coadd_dir).resolve())
    with output_lock(per_coadd_dir, "per-coadd outputs"):
        remove_stale_temporaries(per_coadd_dir)
        return _run_selected(coadds, selected, predictor, velocities, settings, read_options,
                             per_coadd_dir)


def _run_selected(coadds: CoaddPaths, selected: list[str], predictor: LabelPredictor,
                  velocities: RadialVelocityLookup, settings: InferenceSettings,
                  read_options: dict[str, Any], per_coadd_dir: str) -> dict[str, Any]:
    """:func:`run_inference` once its checks pass and the output folder is locked."""
    fingerprint = run_fingerprint(predictor, velocities, settings)
    plan = plan_partitions(selected, per_coadd_dir, fingerprint, coadds)
    report: dict[str, Any] = {
        "fingerprint": fingerprint,
        "bundle_fingerprint": predictor.fingerprint,
        "per_coadd_dir": per_coadd_dir,
        "scheduler": settings.scheduler,
        "on_error": settings.on_error,
        "n_selected": len(plan.selected),
        "n_already_complete": len(plan.complete),
        "n_processed": 0,
        "n_failed": 0,
        "failed": {},
        "n_skipped": 0,
        "skipped": {},
        "targets": dict.fromkeys(OUTCOME_KEYS, 0),
        "n_spectra_predicted": 0,
        "seconds": 0.0,
        "spectra_per_s": 0.0,
        "labels": list(predictor.label_names),
        "bundle_is_mock": bool(predictor.is_mock),
        "ood_threshold": float(predictor.ood_threshold),
        "min_snr": float(settings.flags.min_snr),
        "max_rchi2_floor": float(settings.flags.max_rchi2_floor),
        "max_composite_score": float(settings.flags.max_composite_score),
        "partitions": plan.selected,
    }
    if not plan.todo:
        logger.info(
            "Nothing new: all %d selected coadds already have complete outputs in %s",
            len(plan.selected), per_coadd_dir,
        )
        return report
    logger.info(
        "Inference on %d coadds (%d of %d selected already complete) with scheduler '%s'",
        len(plan.todo), len(plan.complete), len(plan.selected), settings.scheduler,
    )
    check_model_provenance(predictor, coadds[plan.todo[0]], settings.allow_mock_model)

    def prepare(pid: str) -> PreparedPartition:
        source = source_signature(coadds[pid])
        coadd = read_partition(coadds[pid], read_options)
        prepared = prepare_partition(coadd, pid, predictor, velocities, settings)
        prepared.source = source
        return prepared

    def finish(prepared: PreparedPartition) -> PartitionResult:
        return write_partition(prepared, predictor, settings, per_coadd_dir, fingerprint)

    previous_torch_threads = None
    if settings.scheduler == "synchronous":
        previous_torch_threads = set_torch_threads(synchronous_torch_threads(settings))
        results = _run_synchronous(plan.todo, prepare, finish, settings.prefetch)
    else:
        results = _run_on_dask(plan.todo, coadds, read_options, predictor, velocities, settings,
                               per_coadd_dir, fingerprint)
    progress = _Progress(len(plan.todo), settings.progress)
    start = time.perf_counter()
    try:
        for outcome in results:
            if isinstance(outcome, tuple):
                pid, exc = outcome
                if isinstance(exc, CoaddSkipped):
                    report["n_skipped"] += 1
                    report["skipped"][pid] = str(exc)
                    logger.warning("coadd skipped: %s", exc)
                    continue
                if isinstance(exc, MockModelError):
                    raise exc
                report["n_failed"] += 1
                report["failed"][pid] = f"{type(exc).__name__}: {exc}"
                if settings.on_error == "raise":
                    raise InferenceError(f"partition {pid} failed: {type(exc).__name__}: {exc}") from exc
                logger.error("partition %s failed, skipped: %s: %s", pid, type(exc).__name__, exc)
                drop_stale_output(per_coadd_dir, pid)
                continue
            report["n_processed"] += 1
            report["n_spectra_predicted"] += outcome.n_spectra
            for key, value in (outcome.counts or {}).items():
                report["targets"][key] = report["targets"].get(key, 0) + value
            log_outcome(outcome)
            progress.update(outcome)
    finally:
        progress.close()
        if hasattr(results, "close"):
            results.close()
        set_torch_threads(previous_torch_threads)
    seconds = time.perf_counter() - start
    report["seconds"] = round(seconds, 3)
    report["spectra_per_s"] = round(report["n_spectra_predicted"] / max(seconds, 1e-9), 1)
    logger.info(
        "Inference done: %d coadds, %d spectra in %.1f s (%.0f spectra/s), %d failed, %d skipped;"
        " targets %s",
        report["n_processed"], report["n_spectra_predicted"], seconds, report["spectra_per_s"],
        report["n_failed"], report["n_skipped"], report["targets"],
    )
    return report

