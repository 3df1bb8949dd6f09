"""Planning the sweep in the calling process: the model, its baseline and the reduced model."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError, HydraulicError
from ..engine import ENGINES, engine_library
from ..hydraulics import expected_demand, hazen_williams_headloss, minor_headloss
from ..schema import Network
from ..topology import SourceGraph, link_table, source_graph
from .closures import _demand_people
from .graph import _tree_collapse
from .solver import _Solver

__all__: list[str] = []

log = logging.getLogger(__name__)

#: Extra head (m) a reduced-model screen demands above the exact requirement.
SCREEN_MARGIN_M = 0.05
#: Baseline head margin (m) a dead-end tree needs to be collapsed in the reduced model.
COLLAPSE_MARGIN_M = 1.0


def _hw_headloss(wn: Any, name: str, q: np.ndarray) -> np.ndarray:
    """EPANET's Hazen-Williams head loss (m) of pipe `name` at flows `q` (m³/s), plus minor loss."""
    pipe = wn.get_link(name)
    h = np.abs(hazen_williams_headloss(q, length_m=pipe.length, roughness_c=pipe.roughness,
                                       diameter_m=pipe.diameter))
    if pipe.minor_loss:
        h = h + np.abs(minor_headloss(q, k=pipe.minor_loss, diameter_m=pipe.diameter))
    return h


def _expected(wn: Any, times_s: np.ndarray, nodes: list[str]) -> np.ndarray:
    """Expected demand (m³/s), times × `nodes`."""
    return expected_demand(wn, np.asarray(times_s, dtype=float) / 3600.0).reindex(columns=nodes).to_numpy(float)


@dataclass
class _Plan:
    """Everything the sweep needs, built once in the calling process."""

    net: Network
    wn: Any
    payload: dict[str, Any]
    links: pd.DataFrame
    graph: SourceGraph
    sources: set[str]
    demand_ids: list[str]
    pop: np.ndarray
    settlement: list[str | None]
    baseline: dict[str, Any]
    solver: _Solver
    timings: dict[str, float] = field(default_factory=dict)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _plan(net: Network, *, duration_h: float, engine: str, shortcuts: bool) -> _Plan:
    from ..model import to_wntr, write_inp
    from ..standards import thresholds

    t0 = time.perf_counter()
    wn = to_wntr(net, duration_h=duration_h)
    wn.options.quality.parameter = "NONE"
    opts = wn.options
    step = int(opts.time.report_timestep)
    duration = int(opts.time.duration)
    if step <= 0 or duration % step or opts.time.report_start:
        raise ConfigError(f"criticality needs a duration that is a whole number of report steps "
                          f"(duration {duration} s, report step {step} s, report start {opts.time.report_start} s)")
    T = duration // step + 1
    engine_library(engine)  # fails early when the engine's library is missing
    tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
    try:
        inp_full = write_inp(wn, Path(tmp) / "full.inp", units="LPS").read_bytes()  # SI: m, L/s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    demand_ids, pop, settlement = _demand_people(net)
    expected = _expected(wn, np.arange(T) * step, demand_ids)

    links = link_table(wn)
    sources = set(wn.reservoir_name_list) | set(wn.tank_name_list)
    graph = source_graph(list(wn.node_name_list), sources, links)
    preq = float(opts.hydraulic.required_pressure)
    pmin = float(thresholds()["pdd_minimum_pressure_m"])
    payload: dict[str, Any] = dict(
        engine=engine, inp_full=inp_full, inp_reduced=None, demand_ids=demand_ids, pop=pop,
        expected=expected, pmin=pmin, preq=preq, step_h=step / 3600.0, report_step_s=step, n_reports=T,
        graph_full=graph, tank_ids=list(wn.tank_name_list), screen=False, duration_h=duration_h,
        pump_suction=[(x, wn.get_link(x).start_node_name) for x in wn.pump_name_list])
    solver = _Solver(payload)
    t1 = time.perf_counter()
    base = solver.run_full([], heads=True)
    if base["status"] == "error":
        raise HydraulicError(f"the baseline of {wn.name!r} cannot be solved: {base['message']}")
    if base["status"] == "unconverged":
        log.warning("baseline of %s: %s", wn.name, base["message"])
    payload["base_p"] = base["p"]
    plan = _Plan(net=net, wn=wn, payload=payload, links=links, graph=graph, sources=sources,
                 demand_ids=demand_ids, pop=pop, settlement=settlement, baseline=base, solver=solver)
    plan.timings["baseline_s"] = time.perf_counter() - t1
    if shortcuts:
        t2 = time.perf_counter()
        _add_reduced(plan)
        plan.timings["reduced_model_s"] = time.perf_counter() - t2
    plan.timings["plan_s"] = time.perf_counter() - t0
    return plan


def _add_reduced(plan: _Plan) -> None:
    """Build the reduced model (dead-end trees collapsed into their roots) and its screen."""
    import networkx as nx

    from ..model import to_wntr, write_inp

    wn, pl = plan.wn, plan.payload
    opts = wn.options
    pstep = int(opts.time.pattern_timestep)
    if opts.hydraulic.headloss != "H-W" or pstep <= 0 or opts.time.pattern_start % pstep \
            or str(opts.hydraulic.demand_model).upper() not in ("PDD", "PDA"):
        log.info("reduced model not used (needs Hazen-Williams head loss, PDD and aligned pattern steps)")
        return
    info = _tree_collapse(wn, plan.links, plan.sources)
    if not info["trees"]:
        return
    duration = int(opts.time.duration)
    K = duration // pstep + 1
    tree_nodes = sorted({n for t in info["trees"] for n in t["nodes"]})
    dem_arr = _expected(wn, np.arange(K) * pstep, tree_nodes)
    dem = {n: dem_arr[:, i] for i, n in enumerate(tree_nodes)}
    screen_p = max(float(pl["preq"]), float(pl["pmin"]) + 1.0) + SCREEN_MARGIN_M
    node_pos = {n: i for i, n in enumerate(wn.node_name_list)}
    base_heads = plan.baseline["heads"]              # report times × all nodes (full model order)
    f_order = [plan.solver.full.node_index(n) - 1 for n in wn.node_name_list]
    base_heads = base_heads[:, f_order]
    T, step = pl["n_reports"], pl["report_step_s"]
    k_of_report = np.minimum((np.arange(T) * step) // pstep, K - 1)
    collapsed: list[dict[str, Any]] = []
    need: dict[str, np.ndarray] = {}
    for tree in info["trees"]:
        root, g = tree["root"], tree["graph"]
        demand = {n: dem[n] for n in tree["nodes"]}
        if not any(np.any(v > 0) for v in demand.values()):
            crit = np.full(K, -np.inf)
        else:
            order = list(nx.bfs_edges(g, root))
            below = {n: demand[n].copy() for n in tree["nodes"]}
            for u, v in reversed(order):
                if u != root:
                    below[u] += below[v]
            hl = {root: np.zeros(K)}
            for u, v in order:
                hl[v] = hl[u] + _hw_headloss(wn, g.edges[u, v]["name"], below[v])
            crit = np.full(K, -np.inf)
            for n in tree["nodes"]:
                if np.any(demand[n] > 0):
                    crit = np.maximum(crit, wn.get_node(n).elevation + hl[n] + screen_p)
        margin = base_heads[:, node_pos[root]] - crit[k_of_report]
        if np.all(margin >= COLLAPSE_MARGIN_M):
            collapsed.append(dict(tree, crit=crit, demand=demand))
            need[root] = np.maximum(need.get(root, np.full(K, -np.inf)), crit)
    if not collapsed:
        return
    red = to_wntr(plan.net, duration_h=pl["duration_h"])
    red.options.quality.parameter = "NONE"
    drop_links, drop_nodes = set(), set()
    for tree in collapsed:
        drop_links.update(tree["links"])
        drop_nodes.update(tree["nodes"])
    for name, row in plan.links.iterrows():  # closed links touching dropped nodes go too
        if row["u"] in drop_nodes or row["v"] in drop_nodes:
            drop_links.add(name)
    root_extra: dict[str, dict[str | None, float]] = {}
    for tree in collapsed:
        acc = root_extra.setdefault(tree["root"], {})
        for n in tree["nodes"]:
            for d in wn.get_node(n).demand_timeseries_list:
                if d.base_value:
                    pat = d.pattern.name if d.pattern is not None else None
                    acc[pat] = acc.get(pat, 0.0) + float(d.base_value)
    for name in sorted(drop_links):
        red.remove_link(name, force=True)
    for name in sorted(drop_nodes):
        red.remove_node(name, force=True)
    for root in sorted(root_extra):
        j = red.get_node(root)
        for pat, base in sorted(root_extra[root].items(), key=lambda kv: str(kv[0])):
            j.add_demand(base, pat)
    tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
    try:
        inp_red = write_inp(red, Path(tmp) / "reduced.inp", units="LPS").read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rnodes = list(red.node_name_list)
    rgraph = source_graph(rnodes, plan.sources, link_table(red))
    dset = set(plan.demand_ids)
    root_of = {n: t["root"] for t in collapsed for n in t["nodes"]}
    watch = [n for n in rnodes if n in need or n in dset or n in root_extra]
    wpos = {n: i for i, n in enumerate(watch)}
    hcrit = np.full((K, len(watch)), -np.inf)
    for n in watch:
        c = np.full(K, -np.inf)
        if n in dset or n in root_extra:
            c = np.maximum(c, red.get_node(n).elevation + screen_p)
        if n in need:
            c = np.maximum(c, need[n])
        hcrit[:, wpos[n]] = c
    demand_watch = np.array([wpos[root_of.get(n, n)] for n in plan.demand_ids], dtype=np.int64)
    pl.update(inp_reduced=inp_red, graph_reduced=rgraph, watch_ids=watch, hcrit=hcrit, pattern_step_s=pstep,
              reduced_links=[x for x in red.link_name_list], demand_watch=demand_watch)
    solver = None
    try:
        solver = _Solver(pl)
        base = solver.run_reduced([], keep=True)
    except Exception as exc:
        log.info("reduced model not used: %s", exc)
        base = None
    if base is None:
        if solver is not None:
            solver.close()
        log.info("reduced model not used: its baseline fails the screen")
        pl.update(inp_reduced=None, screen=False)
        for k in ("graph_reduced", "watch_ids", "hcrit", "reduced_links", "demand_watch"):
            pl.pop(k, None)
        return
    plan.solver.close()
    plan.solver = solver
    pl.update(base_heads_reduced=base["heads"], screen=True)
    plan.timings["reduced_nodes"] = len(rnodes)
    plan.timings["reduced_links"] = len(red.link_name_list)
    log.info("reduced model: %d of %d nodes, %d trees collapsed", len(rnodes), len(wn.node_name_list), len(collapsed))

