"""Running several scenario files, in parallel processes, into ``out/<network>/<scenario name>/``.

All files are validated first (schema, then element ids against their network);
if any is invalid nothing runs and nothing is written. Each run solves in its
own temporary folder (EPANET's scratch files are per run), each worker process
loads a network and solves its baseline once and reuses them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ScenarioError
from ..schema import Network
from ..simulation import SimulationResult
from .spec import Scenario, check_scenario, load_scenario, resolve_scenario, scenario_network

__all__ = ["ScenarioJob", "prepare_scenarios", "run_scenario_files"]

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


_NETS: dict[tuple[str, str | None], tuple[Network, str]] = {}
_BASES: dict[tuple, SimulationResult] = {}


def _network_of(sc: Scenario, network: str | None, crs: str | None) -> tuple[Network, str]:
    """The scenario's network, or the override; loaded once per process."""
    if network is None:
        own = sc.network_path()
        key = (str(own.resolve()) if own is not None else "<bundled>", None)
        if key not in _NETS:
            _NETS[key] = scenario_network(sc)
        return _NETS[key]
    key = (network, crs)
    if key not in _NETS:
        p = Path(network)
        if p.suffix.lower() == ".inp":
            from ..convert import read_inp

            _NETS[key] = (read_inp(p, crs=crs), p.stem)
        else:
            from ..io import read_network

            _NETS[key] = (read_network(p), p.stem)
    return _NETS[key]


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
        net, net_name = _network_of(sc, override, crs)
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
    net, _ = _network_of(sc, job.network, job.crs)
    bkey = (id(net), float(sc.start), float(sc.duration_h), age)
    if bkey not in _BASES:
        _BASES[bkey] = baseline_for(sc, net, age=age)
    run = run_scenario(sc, net=net, baseline=_BASES[bkey], age=age)
    run.network_name = job.network_name
    files = write_scenario(run, job.out_dir, make_map=make_map)
    return dict(name=job.name, out_dir=str(job.out_dir), files={k: str(v) for k, v in files.items()},
                headline=run.headline(), warnings=list(run.warnings))


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
