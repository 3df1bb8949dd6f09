"""Running several scenario files, in parallel processes, into ``out/<network>/<scenario name>/``.

All files are validated first (schema, then element ids against their network);
if any is invalid nothing runs and nothing is written. Each run solves in its
own temporary folder (EPANET's scratch files are per run), each worker process
loads a network and solves its baseline once and reuses them.

The reuse is a small per-process cache (:func:`clear_cache` empties it). A
network is keyed by its file's resolved path, modification time (ns) and size
(and the CRS of an INP), so an edited file is read again; a baseline is keyed by
its network's key and the run's start, duration and water-age switch. At most
:data:`CACHE_SIZE` of each are kept, least recently used dropped first.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ScenarioError
from ..schema import Network
from ..simulation import SimulationResult
from .spec import Scenario, check_scenario, load_scenario, resolve_scenario, scenario_network

__all__ = ["ScenarioJob", "prepare_scenarios", "run_scenario_files", "clear_cache", "CACHE_SIZE"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScenarioJob:
    """One scenario file to run: where it is, which network, where its outputs go."""

    path: Path
    name: str
    network: str | None      # override: a .gpkg/.inp path for every scenario (None: the scenario's own)
    crs: str | None          # CRS of an INP override's coordinates
    network_name: str
    out_dir: Path


#: Networks and baselines kept per process (each), least recently used dropped first.
CACHE_SIZE = 4

_NETS: OrderedDict[Hashable, tuple[Network, str]] = OrderedDict()
_BASES: OrderedDict[Hashable, SimulationResult] = OrderedDict()


def clear_cache() -> None:
    """Forget the networks and baselines this process has loaded (the next run reads and solves again).

    Not needed after editing a network file (its modification time and size are
    part of the key); useful to free memory.
    """
    _NETS.clear()
    _BASES.clear()


def _file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """Resolved path, modification time (ns) and size: changes when the file is edited or replaced."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:  # missing: the loader raises the error that names the file
        return (str(p), -1, -1)
    return (str(p), st.st_mtime_ns, st.st_size)


def _cached(cache: OrderedDict, key: Hashable, make: Callable[[], Any]) -> Any:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = make()
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _network_key(sc: Scenario, network: str | None, crs: str | None) -> tuple:
    if network is not None:
        return ("override", _file_key(network), crs)
    own = sc.network_path()
    if own is None:
        from ..io import get_path
        from ..loader import DEFAULT_NETWORK

        return ("bundled", _file_key(get_path(DEFAULT_NETWORK)))
    return ("own", _file_key(own))


def _network_of(sc: Scenario, network: str | None, crs: str | None) -> tuple[tuple, Network, str]:
    """The scenario's network, or the override, with its cache key; read again when its file changed."""
    key = _network_key(sc, network, crs)
    if network is None:
        net, name = _cached(_NETS, key, lambda: scenario_network(sc))
    else:
        from ..loader import load_network, network_name

        net, name = _cached(_NETS, key, lambda: (load_network(network=network, crs=crs),
                                                 network_name(network=network)))
    return key, net, name


def prepare_scenarios(files: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
                      network: str | os.PathLike | None = None, crs: str | None = None) -> list[ScenarioJob]:
    """Validate scenario files (or shipped scenario names) against their networks; plan their outputs.

    Parameters
    ----------
    files
        Scenario files, or names of shipped scenarios.
    out
        Parent output folder: each scenario writes to ``<out>/<name>/``; default
        ``out/<network name>``.
    network
        A network (.gpkg or .inp) to use for every scenario instead of theirs.
    crs
        CRS of the coordinates of an INP `network`.

    Raises
    ------
    ScenarioError, NetworkDataError
        The first invalid file or network, or two scenarios with the same name.
    """
    if not files:
        raise ScenarioError("no scenario files given; name files or shipped scenarios (watersupply scenario list)")
    override = str(Path(network).resolve()) if network is not None else None
    jobs: list[ScenarioJob] = []
    seen: dict[str, Path] = {}
    for f in files:
        path = resolve_scenario(f)
        sc = load_scenario(path)
        _, net, net_name = _network_of(sc, override, crs)
        check_scenario(sc, net)
        if sc.name in seen:
            raise ScenarioError(f"{path}: name {sc.name!r} is also the name of {seen[sc.name]}; both would write "
                                f"to the same folder — give one another name")
        seen[sc.name] = path
        parent = Path(out) if out is not None else Path("out") / net_name
        jobs.append(ScenarioJob(path=Path(path).resolve(), name=sc.name, network=override, crs=crs,
                                network_name=net_name, out_dir=parent / sc.name))
    return jobs


def _run_job(job: ScenarioJob, make_map: bool, age: bool) -> dict[str, Any]:
    """Worker: run one scenario and write its files; return a small summary."""
    from .impact import baseline_for, run_scenario
    from .output import write_scenario

    sc = load_scenario(job.path)
    nkey, net, _ = _network_of(sc, job.network, job.crs)
    bkey = (nkey, float(sc.start), float(sc.duration_h), age)
    baseline = _cached(_BASES, bkey, lambda: baseline_for(sc, net, age=age))
    run = run_scenario(sc, net=net, baseline=baseline, age=age)
    run.network_name = job.network_name
    files = write_scenario(run, job.out_dir, make_map=make_map)
    return dict(name=job.name, out_dir=str(job.out_dir), files={k: str(v) for k, v in files.items()},
                headline=run.headline(), unbalanced_hours=run.unbalanced_hours, warnings=list(run.warnings))


def run_scenario_files(files: Sequence[str | os.PathLike], *, out: str | os.PathLike | None = None,
                       network: str | os.PathLike | None = None, crs: str | None = None,
                       workers: int | None = None,
                       make_map: bool = True, age: bool = True,
                       on_start: Callable[[list[ScenarioJob]], None] | None = None,
                       on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Validate, then run scenario files in parallel processes and write their outputs.

    Parameters
    ----------
    files
        Scenario files or shipped scenario names.
    out
        Parent output folder (default ``out/<network name>``); each scenario
        writes into ``<out>/<scenario name>/``.
    network
        Use this network (.gpkg or .inp) for every scenario.
    crs
        CRS of the coordinates of an INP `network`.
    workers
        Processes; default ``min(2, number of scenarios)``. 1 runs in this process.
    make_map, age
        Write ``map.html``; compute water age.
    on_start, on_done
        Callbacks: the planned jobs before running; each job's summary as it ends
        (summaries have ``name``, ``out_dir``, ``files``, ``headline`` or ``error``).

    Returns
    -------
    list of dict
        One summary per scenario, in the order given.

    Raises
    ------
    ScenarioError
        A file is invalid (nothing is run or written).
    """
    jobs = prepare_scenarios(files, out=out, network=network, crs=crs)
    if on_start is not None:
        on_start(jobs)
    n = len(jobs)
    if workers is None:
        workers = min(2, n)
    if workers < 1:
        raise ScenarioError(f"workers must be >= 1, got {workers}")
    results: dict[str, dict[str, Any]] = {}

    def done(job: ScenarioJob, summary: dict[str, Any]) -> None:
        results[job.name] = summary
        if on_done is not None:
            on_done(summary)

    if workers == 1 or n == 1:
        for job in jobs:
            try:
                done(job, _run_job(job, make_map, age))
            except Exception as exc:  # keep going: report the failure with the others
                if not isinstance(exc, ValueError):
                    raise
                done(job, dict(name=job.name, out_dir=str(job.out_dir), error=str(exc)))
        return [results[j.name] for j in jobs]
    with cf.ProcessPoolExecutor(max_workers=min(workers, n)) as pool:
        futures = {pool.submit(_run_job, job, make_map, age): job for job in jobs}
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                done(job, fut.result())
            except ValueError as exc:  # WatersupplyError (HydraulicError, ScenarioError) are ValueErrors
                done(job, dict(name=job.name, out_dir=str(job.out_dir), error=str(exc)))
    return [results[j.name] for j in jobs]
