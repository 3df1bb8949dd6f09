"""The fast sweep: :func:`pipe_criticality`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError
from ..schema import Network
from ..topology import SourceGraph
from .closures import closure_sets
from .graph import _BridgeIndex, _bridges, _series_groups, _topology_answer
from .output import _table
from .parallel import _connect, _run
from .plan import _check_engine, _plan

__all__ = ["pipe_criticality"]

log = logging.getLogger(__name__)


def pipe_criticality(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                     duration_h: float = 24, workers: int | None = None, scheduler: str | None = None,
                     progress: Callable[[int, int], None] | None = None, engine: str = "epanet2.2",
                     shortcuts: bool = True, timings: dict[str, float] | None = None) -> pd.DataFrame:
    """Rank pipes (or valve-isolation segments) by the people left without water when they are lost.

    Parameters
    ----------
    net
        Network layers (see :mod:`watersupply.schema`).
    pipes
        ``"all"``, ``"main"``, ``"branch"``, a comma-separated string or an iterable of pipe ids.
    segments
        Analyse valve-isolation segments (needs the ``valves`` layer) holding the selected pipes.
    duration_h
        Simulated hours; each element is lost for the whole run.
    workers
        Local worker processes (default: the number of cores); 1 runs in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``); the work then runs on
        its workers and `workers` is ignored.
    progress
        Called as ``progress(done, total)`` while elements are answered.
    engine
        ``"epanet2.2"`` (WNTR's bundled library, the recipe's engine) or ``"epanet2.3"`` (owa-epanet).
    shortcuts
        Use the topology answers and the reduced-model screen (default). ``False`` solves every
        element on the full model — slower, for verification.
    timings
        If given, filled with wall times (s) and counts of the phases.

    Returns
    -------
    DataFrame
        Indexed by element id, ranked (``rank``) by people without water, then person-hours, then
        demand not served; columns :data:`CONSEQUENCE_COLUMNS` plus ``kind``, ``class``,
        ``length_m``, ``method`` (topology, reduced, series, full, full+cutoff, full-2.3; ``+retry`` where the
        model's UNBALANCED STOP halted EPANET and the closure was solved again), ``status``
        (ok, unconverged, error), ``message`` (EPANET's warnings by element and hour), ``n_links``, ``links``
        and ``nodes_without_water_ids``.

    Raises
    ------
    NetworkDataError
        Unknown pipe ids, or segments without a valves layer.
    ConfigError
        ``workers`` < 1, a bad engine or duration, or an unreachable scheduler (within 10 s).
    HydraulicError
        The baseline itself cannot be solved.

    Examples
    --------
    >>> from watersupply.io import get_path, read_network
    >>> table = pipe_criticality(read_network(get_path("tonghui")), pipes="M00001,M00002", workers=1)
    >>> list(table.columns[:3])
    ['rank', 'kind', 'class']
    """
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    if not (isinstance(duration_h, (int, float)) and duration_h > 0):
        raise ConfigError(f"duration_h must be > 0, got {duration_h!r}")
    _check_engine(engine)
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    client = _connect(scheduler) if scheduler else None
    try:
        from ..model import to_wntr

        closures = closure_sets(net, pipes=pipes, segments=segments,
                                wn=to_wntr(net, duration_h=duration_h) if segments else None)
        plan = _plan(net, duration_h=float(duration_h), engine=engine, shortcuts=shortcuts)
        timings.update(plan.timings)
        t1 = time.perf_counter()
        answers: dict[str, dict[str, Any]] = {}
        todo: list[tuple[str, tuple[str, ...]]] = []
        same_as: dict[str, str] = {}
        if shortcuts:
            bridges = _bridges(plan.graph)
            base_fed = _fed_count(plan.graph)
            index = _BridgeIndex(plan, bridges)
            for cid, links in closures.items():
                ans = index.answer(links[0]) if len(links) == 1 and links[0] in bridges else None
                if ans is None:
                    ans = _topology_answer(plan, links, base_fed, bridges)
                if ans is None:
                    todo.append((cid, links))
                else:
                    answers[cid] = ans
            # links in series through nodes without demand: losing one or several of a chain is the
            # same as losing the chain, so closures that cut the same chains share one solve
            groups = _series_groups(plan.wn, plan.links, plan.demand_ids)
            first: dict[frozenset[str], str] = {}
            keep = []
            for cid, links in todo:
                rep = first.setdefault(frozenset(groups.get(x, x) for x in links), cid)
                if rep == cid:
                    keep.append((cid, links))
                else:
                    same_as[cid] = rep
            todo = keep
            # closures that split the supplied network (a tank behind the cut) are the slow ones: first
            todo.sort(key=lambda item: 0 if len(item[1]) > 1 or item[1][0] in bridges else 1)
        else:
            todo = list(closures.items())
        timings["topology_s"] = time.perf_counter() - t1
        timings["topology_answers"] = len(answers)
        timings["series_answers"] = len(same_as)
        total = len(closures)
        if progress is not None:
            progress(len(answers), total)
        t2 = time.perf_counter()
        nworkers = workers if workers is not None else (os.cpu_count() or 1)
        for res in _run(plan, todo, workers=nworkers, client=client, progress=progress, done0=len(answers),
                        total=total - len(same_as)):
            answers[res["id"]] = res
        for cid, rep in same_as.items():
            a = answers[rep]
            note = f"same as {rep} (cuts the same chain of links in series through nodes without demand)"
            answers[cid] = dict(a, id=cid, method="series", message=f"{note}; {a['message']}" if a.get("message")
                                else note)
        if progress is not None and same_as:
            progress(total, total)
        timings["hydraulic_s"] = time.perf_counter() - t2
        timings["hydraulic_answers"] = len(todo)
        timings["reduced_answers"] = sum(1 for a in answers.values() if a.get("method") == "reduced")
        timings["full_answers"] = sum(1 for a in answers.values() if a.get("method") == "full")
        table = _table(plan, closures, answers, segments=segments)
        plan.solver.close()
    finally:
        if client is not None:
            client.close()
    timings["total_s"] = time.perf_counter() - t0
    bad = table[table["status"] != "ok"]
    if len(bad):
        log.warning("%d of %d elements did not solve cleanly (status column): %s", len(bad), len(table),
                    ", ".join(bad.index[:5]))
    return table


def _fed_count(graph: SourceGraph) -> int:
    """Number of components of the open-link graph (all switchable links open) holding a source."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, nc = graph.base([])
    uv = graph.switch_uv
    if len(uv):
        a, b = labels[uv[:, 0]], labels[uv[:, 1]]
        _, sup = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(nc, nc)), directed=False)
    else:
        sup = np.arange(nc)
    return int(len(np.unique(sup[labels][graph.sources])))

