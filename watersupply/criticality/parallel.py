"""Running the closures: in this process, in local worker processes, or on a Dask cluster."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import ConfigError
from .plan import _Plan
from .solver import _Solver

__all__: list[str] = []

#: Solvers of this process, by (payload key, thread): an EPANET project is not shared between threads.
#: Entries live as long as the worker; a new sweep's payload key replaces a thread's older entry.
_WORKER: dict[tuple[str, int], _Solver] = {}
_WORKER_LOCK = threading.Lock()


def _init_worker(payload: Mapping[str, Any]) -> None:
    _WORKER[("local", threading.get_ident())] = _Solver(payload)


def _local_chunk(items: Sequence[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    solver = _WORKER[("local", threading.get_ident())]
    return [solver.solve(cid, links) for cid, links in items]


def _dask_chunk(payload: Mapping[str, Any], items: Sequence[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    """Dask task: open (once per worker thread) the EPANET projects shipped in `payload`, solve `items`."""
    me = (payload["key"], threading.get_ident())
    with _WORKER_LOCK:
        solver = _WORKER.get(me)
        if solver is None:
            for old in [k for k in _WORKER if k[1] == me[1] and k[0] not in ("local", me[0])]:
                _WORKER.pop(old).close()  # this thread's projects of an earlier sweep
    if solver is None:
        solver = _Solver(payload)
        with _WORKER_LOCK:
            _WORKER[me] = solver
    return [solver.solve(cid, links) for cid, links in items]


def _connect(scheduler: str, timeout_s: float = 5.0) -> Any:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        return Client(scheduler, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}); "
                          "start one with `dask scheduler` and workers with `dask worker <address>`, "
                          "or run without --scheduler") from None


def _chunks(items: list[tuple[str, tuple[str, ...]]], workers: int) -> list[list[tuple[str, tuple[str, ...]]]]:
    """Small chunks (the slow elements come first, so the tail of the sweep stays balanced)."""
    if not items:
        return []
    size = max(1, min(8, math.ceil(len(items) / (10 * max(workers, 1)))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run(plan: _Plan, items: list[tuple[str, tuple[str, ...]]], *, workers: int, client: Any,
         progress: Callable[[int, int], None] | None, done0: int, total: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    done = done0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if not items:
        return out
    if client is not None:
        from distributed import as_completed

        payload = dict(plan.payload, key=hashlib.sha1(plan.payload["inp_full"] + (plan.payload["inp_reduced"] or b"")
                                                      + plan.payload["engine"].encode()).hexdigest())
        fut_payload = client.scatter([payload], broadcast=True)[0]
        nworkers = max(1, len(client.scheduler_info().get("workers", {})))
        futures = [client.submit(_dask_chunk, fut_payload, chunk, pure=False) for chunk in _chunks(items, nworkers)]
        try:
            for fut in as_completed(futures, loop=client.loop):
                res = fut.result()
                out.extend(res)
                tick(len(res))
        finally:
            client.cancel(futures)
        return out
    if workers <= 1 or len(items) <= 2:
        solver = plan.solver
        for cid, links in items:
            out.append(solver.solve(cid, links))
            tick(1)
        return out
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    chunks = _chunks(items, workers)
    # forkserver: workers start from a clean server process (no threads inherited, no re-run of an
    # unguarded __main__); spawn where forkserver does not exist (Windows)
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx, initializer=_init_worker,
                             initargs=(plan.payload,)) as pool:
        pending = {pool.submit(_local_chunk, c) for c in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                res = fut.result()
                out.extend(res)
                tick(len(res))
    return out

