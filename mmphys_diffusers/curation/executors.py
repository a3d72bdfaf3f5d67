"""Executors run `CurationWorker`s over sources: inline, a local process pool, or Ray Data.

Each executor takes a picklable factory (building one worker per process/actor, so
models load once there) and yields result dicts in completion order; the driver
writes the manifest and report.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections import deque
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

from ..errors import MMPhysInputError

logger = logging.getLogger(__name__)

WorkerFn = Callable[[dict[str, Any]], dict[str, Any]]


class Executor(ABC):
    @abstractmethod
    def map(self, factory: Callable[[], WorkerFn], items: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]: ...


def _crash_result(item: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    src = item["source"]
    return {"source": src["key"], "path": src["path"], "status": "failed", "reason": f"worker crashed: {type(exc).__name__}: {exc}", "clips": [], "seconds": 0.0}


class LocalExecutor(Executor):
    """``workers <= 1`` runs inline; otherwise a spawn-based process pool with one worker per process.

    Args:
        workers: processes.
        max_crashes: pool breakdowns (a worker killed by a segfault or the OOM killer) an item may be
            caught in before it is reported as failed; the others are retried in a fresh pool.
    """

    def __init__(self, workers: int = 1, max_crashes: int = 2):
        self.workers = max(1, int(workers))
        self.max_crashes = max(1, int(max_crashes))

    def map(self, factory, items):
        if not items:
            return
        if self.workers == 1 or len(items) == 1:
            worker = factory()
            for item in items:
                yield worker(item)
            return
        # spawn: forking a process that already holds torch/OpenMP threads can deadlock.
        ctx = multiprocessing.get_context("spawn")
        queue = deque(range(len(items)))
        crashes: dict[int, int] = {}
        while queue:
            # At most `workers` items are in flight, so a worker killed hard (segfault, OOM) only
            # takes the in-flight items down with it. Those are retried alone in a fresh pool;
            # an item caught in `max_crashes` breakdowns is reported as failed.
            pool = ProcessPoolExecutor(max_workers=min(self.workers, len(queue)), mp_context=ctx, initializer=_init_process, initargs=(factory,))
            in_flight: dict[Any, int] = {}
            broken = False
            try:
                while (queue or in_flight) and not broken:
                    while queue and len(in_flight) < self.workers:
                        suspect = crashes.get(queue[0], 0) > 0
                        if suspect and in_flight:
                            break  # a suspect runs alone
                        i = queue.popleft()
                        in_flight[pool.submit(_run_in_process, items[i])] = i
                        if suspect:
                            break
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = in_flight.pop(fut)
                        try:
                            yield fut.result()
                        except BrokenProcessPool:
                            broken = True
                            in_flight[fut] = i  # handled with the other casualties below
                        except WorkerStartError:
                            raise  # every item would fail the same way
                        except Exception as exc:  # e.g. an unpicklable result
                            yield _crash_result(items[i], exc)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            for i in sorted(in_flight.values(), reverse=True):
                crashes[i] = crashes.get(i, 0) + 1
                if crashes[i] >= self.max_crashes:
                    logger.warning("worker crashed %d times on %s", crashes[i], items[i]["source"]["path"])
                    yield _crash_result(items[i], BrokenProcessPool("a worker process was killed (segfault or out of memory?)"))
                else:
                    queue.appendleft(i)


_PROCESS_WORKER: WorkerFn | None = None
_PROCESS_INIT_ERROR: str | None = None


class WorkerStartError(MMPhysInputError):
    """A worker could not be built (bad backend options, missing model files): stops the run."""


def _init_process(factory: Callable[[], WorkerFn]) -> None:
    global _PROCESS_WORKER, _PROCESS_INIT_ERROR
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)  # one process per core already
    except Exception:  # pragma: no cover
        pass
    try:
        _PROCESS_WORKER = factory()
    except Exception as exc:  # reported by the first task instead of breaking the pool
        _PROCESS_INIT_ERROR = f"{type(exc).__name__}: {exc}"


def _run_in_process(item: dict[str, Any]) -> dict[str, Any]:
    if _PROCESS_WORKER is None:
        raise WorkerStartError(f"curation worker could not start: {_PROCESS_INIT_ERROR}")
    return _PROCESS_WORKER(item)


class _RayWorker:
    """Ray Data callable class: one `CurationWorker` per actor. Rows carry JSON strings so the
    variable, nested result structure never has to fit an Arrow schema."""

    def __init__(self, factory: Callable[[], WorkerFn]):
        self.worker = factory()

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"result": json.dumps(self.worker(json.loads(row["item"])), default=_np_default)}


def _np_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RayExecutor(Executor):
    """Ray Data: the same workers as actors across a cluster (`ray.init(address=...)` first to join one).

    Without a running Ray instance a local one starts with `workers` CPUs. The output folder
    must be on storage that every node can write (clip files are written by the actors).

    Args:
        workers: number of actors (and CPUs for a local instance).
        num_gpus: GPUs per actor (for model backends on GPU nodes).
        address: Ray cluster address (``"auto"`` joins the running cluster); None starts/uses a local one.
    """

    def __init__(self, workers: int = 1, num_gpus: float = 0.0, address: str | None = None):
        self.workers = max(1, int(workers))
        self.num_gpus = num_gpus
        self.address = address

    def map(self, factory, items):
        if not items:
            return
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise MMPhysInputError("--executor ray needs Ray Data: pip install 'mmphys-diffusers[ray]' (ray[data])") from exc
        started_here = not ray.is_initialized()
        if started_here:
            kwargs = {"address": self.address} if self.address else {"num_cpus": self.workers, "include_dashboard": False}
            ray.init(ignore_reinit_error=True, log_to_driver=False, **kwargs)
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False  # the driver shows its own bar
            ds = ray.data.from_items([{"item": json.dumps(it)} for it in items], override_num_blocks=len(items))
            remote_args = {"num_gpus": self.num_gpus} if self.num_gpus else {}
            ds = ds.map(
                _RayWorker,
                fn_constructor_kwargs={"factory": factory},
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=1,
                **remote_args,
            )
            for row in ds.iter_rows():
                yield json.loads(row["result"])
        finally:
            if started_here:
                ray.shutdown()


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def get_executor(name: str, workers: int = 1, **options: Any) -> Executor:
    if name not in EXECUTORS:
        raise MMPhysInputError(f"unknown executor {name!r}; expected one of {sorted(EXECUTORS)}")
    return EXECUTORS[name](workers=workers, **options)
