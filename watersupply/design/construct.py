"""Feasible-first design of a failing scenario: follow the supply chain, size by hydraulics, then cut the cost.

A scenario such as the food-park expansion fails because water cannot reach a
part of the network fast enough: the nodes that fail are fed through a chain
of mains, a tank, the pump station that fills it, the mains on the station's
suction side, the tank upstream and its station, and so on up to the plant.
A blind search over a few dozen pipes (one EPANET run of 15–80 s each) cannot
find that chain; this module does it with a handful of runs.

1. **Supply chain** (:func:`supply_chain`): from each node below its target,
   follow the water upstream at its worst hour (at every node the link bringing
   the largest inflow) to the tank, pump or plant feeding it; from each tank to
   the pumps that fill it (their level controls name the tank), their suction
   mains (followed upstream the same way) and their delivery mains (shortest
   path to the tank), and on up the cascade. The pipes on these paths are the
   candidate pipes; the pumps of the chain whose zone's demand (mass balance
   over the day: the nodes each tank feeds, and the stations drawing from its
   zone, at a :data:`DUTY_TARGET` duty) exceeds their rating, or that run
   all the time, are the pump candidates; the chain's tanks that run dry get
   storage options.
2. **Construction** (:func:`construct`): the pumps at the smallest option that
   covers their zone's demand; then, run after run, every candidate pipe on a
   failing path (or on a grown pump's suction or delivery main) is sized to the
   cheapest option whose Hazen-Williams gradient at its peak flow is at most a
   target (:data:`GRADIENT_TARGET`, tightened by :data:`GRADIENT_SHRINK` each time
   the pipe is still on a failing path), and pumps still running all the time or
   letting their tank run dry go one option up, until the design is feasible.
3. **Cost reduction** (:func:`reduce_cost`): pymoo's GA seeded with the
   constructed design and seeded variations of it (some options lowered), then
   the local search of :func:`~watersupply.design.optimize.polish`, within a time
   budget. Every accepted design is feasible in the search model.

The search model may be a surrogate (:func:`surrogate_model`): the first day of
the scenario (the run's peak-day demand, tanks starting at their initial levels)
with the tanks required to end the day where they began. The final design is
always verified on the full run, and repaired there by the same construction if
the surrogate was optimistic.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
import wntr

from ..engine import quiet_stdout
from ..hydraulics import LS_TO_M3S, MM_TO_M, hazen_williams_headloss
from .optimize import polish, run_ga
from .problem import TANK_SLACK_M, DesignSpace, Evaluator, cycle_drop
from .works import production_valves, tank_level_actions

__all__ = ["COST_REDUCTION_EVALUATIONS", "DUTY_TARGET", "PRODUCTION_DUTY", "cycle_shortfalls", "GRADIENT_TARGET",
           "GRADIENT_SHRINK", "SURROGATE_HOURS", "Chain", "fill_tanks",
           "supply_chain", "surrogate_model", "construct", "reduce_cost", "pump_need_options", "simulate"]

log = logging.getLogger(__name__)

#: Share of the time a pump may run at its rated flow to carry its zone's daily demand (assumed; leaves the
#: tank room to refill after the peak).
DUTY_TARGET = 0.8
#: Hydraulic gradient (m/m) a candidate pipe on a failing path is sized to at its peak flow (5 m/km, a
#: usual upper value for trunk mains; assumed) …
GRADIENT_TARGET = 0.005
#: … times this factor each time the pipe is again on a failing path.
GRADIENT_SHRINK = 0.6
#: Share of the day a plant may produce at its capacity to carry the demand it feeds (assumed; the clear well's
#: level control stops production above its top band).
PRODUCTION_DUTY = 0.9
#: Length of the surrogate search run (one day).
SURROGATE_HOURS = 24
#: Default budget of the cost reduction (EPANET solves of the search model).
COST_REDUCTION_EVALUATIONS = 100


def simulate(wn: wntr.network.WaterNetworkModel) -> wntr.sim.SimulationResults:
    """A full EPANET 2.2 run of `wn` through WNTR, quietly, in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="ws_construct_") as tmp, quiet_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=os.path.join(tmp, "run"))


def surrogate_model(wn: wntr.network.WaterNetworkModel, *, hours: float = SURROGATE_HOURS
                    ) -> wntr.network.WaterNetworkModel:
    """`wn` cut to its first `hours` (same demands, patterns, controls and initial tank levels)."""
    out = copy.deepcopy(wn)
    out.options.time.duration = int(round(hours * 3600))
    return out


def fill_tanks(wn: wntr.network.WaterNetworkModel) -> dict[str, str]:
    """Pump → the tank whose level switches it (its ``IF TANK … LEVEL`` control): the tank the pump fills."""
    out: dict[str, str] = {}
    for tank, _action, target in tank_level_actions(wn):
        if target.name in wn.pump_name_list:
            out.setdefault(target.name, tank.name)
    return out


class _Tracer:
    """Follows water upstream at one time step: at each node, the link bringing the largest inflow (stateful
    only in its adjacency)."""

    def __init__(self, wn: wntr.network.WaterNetworkModel) -> None:
        self.adj: dict[str, list[tuple[str, str, int]]] = {}
        for name, link in wn.links():
            a, b = link.start_node_name, link.end_node_name
            self.adj.setdefault(b, []).append((name, a, 1))    # positive flow enters b
            self.adj.setdefault(a, []).append((name, b, -1))   # negative flow enters a
        self.stops = set(wn.tank_name_list) | set(wn.reservoir_name_list)
        self.pumps = set(wn.pump_name_list)

    def upstream(self, node: str, flows: pd.Series) -> tuple[list[str], str]:
        """Links from `node` up to the tank, reservoir or pump feeding it, and that element's name ("" if the
        trail ends at a node with no inflow)."""
        path: list[str] = []
        seen = {node}
        cur = node
        while cur not in self.stops:
            best, nxt, q_best = None, None, 1e-9
            for name, other, sign in self.adj.get(cur, ()):
                q = sign * float(flows.get(name, 0.0))
                if q > q_best:
                    best, nxt, q_best = name, other, q
            if best is None or nxt in seen:
                return path, ""
            if best in self.pumps:
                return path, best
            path.append(best)
            seen.add(nxt)
            cur = nxt
        return path, cur


@dataclass
class Chain:
    """The supply chain of the failing nodes.

    Attributes
    ----------
    pipes : list of str
        Candidate pipes, most head loss first.
    pumps : list of str
        Pumps of the chain (downstream first).
    tanks : list of str
        Tanks of the chain (downstream first).
    need_ls : dict
        Rated flow (L/s) each chain pump needs to carry its zone's demand at :data:`DUTY_TARGET`.
    suction, delivery : dict
        Pipes of each chain pump's suction and delivery mains.
    feeds : dict
        Failing node → the element feeding it (tank, pump or reservoir).
    production_need_m3d : dict
        Production valve of a plant whose clear well is in the chain → the production (m³/d) it needs to carry
        the demand downstream of the clear well at :data:`PRODUCTION_DUTY`.
    """

    pipes: list[str]
    pumps: list[str]
    tanks: list[str]
    need_ls: dict[str, float] = field(default_factory=dict)
    suction: dict[str, list[str]] = field(default_factory=dict)
    delivery: dict[str, list[str]] = field(default_factory=dict)
    feeds: dict[str, str] = field(default_factory=dict)
    production_need_m3d: dict[str, float] = field(default_factory=dict)


def _worst_times(res: wntr.sim.SimulationResults, nodes: list[str]) -> dict[str, float]:
    p = res.node["pressure"][nodes]
    return {n: float(p[n].idxmin()) for n in nodes}


def _delivery_path(g: nx.Graph, pump_end: str, tank: str) -> list[str]:
    try:
        nodes = nx.shortest_path(g, pump_end, tank, weight="length")
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return []
    return [g.edges[a, b]["name"] for a, b in zip(nodes[:-1], nodes[1:])]


def supply_chain(wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults, failing: list[str], *,
                 demand_nodes: list[str] | None = None) -> Chain:
    """The pipes, pumps and tanks that feed the `failing` nodes in run `res` of `wn` (see the module docstring).

    `demand_nodes` (default: every junction) are traced at the first time step to split the demand into
    zones (a node belongs to the tank, or to the tank filled by the pump, its water comes from).
    """
    tr = _Tracer(wn)
    flows = res.link["flowrate"]
    fills = fill_tanks(wn)
    t0 = flows.index[0]
    # zones at the first time step (tanks at their initial levels, nothing run dry yet)
    zone_of: dict[str, str] = {}
    nodes = demand_nodes if demand_nodes is not None else list(wn.junction_name_list)
    f0 = flows.loc[t0]
    for n in nodes:
        _path, end = tr.upstream(n, f0)
        zone_of[n] = fills.get(end, "") if end in tr.pumps else end
    demand = res.node["demand"]
    demand = demand.iloc[:-1] if len(demand.index) > 1 else demand  # the last report time opens a new day
    zone_mean: dict[str, float] = {}
    for n, z in zone_of.items():
        if z and n in demand:
            zone_mean[z] = zone_mean.get(z, 0.0) + float(demand[n].clip(lower=0.0).mean())
    status = res.link["status"]
    # each pump's source: its suction side followed upstream while it runs
    source: dict[str, str] = {}
    suction: dict[str, list[str]] = {}
    for p in wn.pump_name_list:
        on = status.index[status[p] > 0] if p in status else []
        t = on[0] if len(on) else t0
        path, end = tr.upstream(wn.get_link(p).start_node_name, flows.loc[t])
        source[p] = fills.get(end, end) if end in tr.pumps else end
        suction[p] = path

    def downstream_demand(tank: str, seen: frozenset[str] = frozenset()) -> float:
        if tank in seen:
            return 0.0
        total = zone_mean.get(tank, 0.0)
        for p, src in source.items():
            if src == tank and p in fills:
                total += downstream_demand(fills[p], seen | {tank}) / max(
                    sum(1 for q in fills if fills[q] == fills[p]), 1)
        return total

    g = nx.Graph()
    for name in wn.pipe_name_list:
        link = wn.get_link(name)
        g.add_edge(link.start_node_name, link.end_node_name, name=name, length=float(link.length))

    feeds: dict[str, str] = {}
    crit: dict[str, None] = {}
    tanks: list[str] = []
    worst = _worst_times(res, failing) if failing else {}
    starts: list[str] = []
    for n in failing:
        for t in dict.fromkeys([worst[n], t0]):
            path, end = tr.upstream(n, flows.loc[t])
            crit.update(dict.fromkeys(path))
            if end:
                feeds.setdefault(n, end)
                starts.append(fills.get(end, end) if end in tr.pumps else end)
    pumps: list[str] = []
    queue = [s for s in dict.fromkeys(starts) if s]
    while queue:
        tank = queue.pop(0)
        if tank in tanks or tank not in wn.tank_name_list:
            continue
        tanks.append(tank)
        for p, tk in fills.items():
            if tk != tank or p in pumps:
                continue
            pumps.append(p)
            crit.update(dict.fromkeys(suction[p]))
            crit.update(dict.fromkeys(_delivery_path(g, wn.get_link(p).end_node_name, tank)))
            if source.get(p):
                queue.append(source[p])
    need = {}
    for p in pumps:
        sharing = max(sum(1 for q in fills if fills[q] == fills[p]), 1)
        need[p] = downstream_demand(fills[p]) / sharing / DUTY_TARGET / LS_TO_M3S
    delivery = {p: _delivery_path(g, wn.get_link(p).end_node_name, fills[p]) for p in pumps}
    hl = res.link["headloss"].abs().max()
    lengths = {p: float(wn.get_link(p).length) for p in crit if p in wn.pipe_name_list}
    ranked = sorted(lengths, key=lambda p: (-float(hl.get(p, 0.0)) * lengths[p], p))
    production = {v: downstream_demand(tk) * 86400.0 / PRODUCTION_DUTY
                  for v, (tk, _q) in production_valves(wn).items() if tk in tanks}
    return Chain(pipes=ranked, pumps=pumps, tanks=tanks, need_ls=need,
                 suction={p: suction[p] for p in pumps}, delivery=delivery, feeds=feeds,
                 production_need_m3d=production)


def pump_need_options(space: DesignSpace, need_ls: dict[str, float],
                      production_m3d: dict[str, float] | None = None) -> dict[int, int]:
    """Variable index → the cheapest option of each pump extra whose rated flow covers its need (and of each
    plant extra whose production covers `production_m3d`)."""
    out = {}
    n = len(space.pipes)
    for j, e in enumerate(space.extras):
        if e.kind == "plant" and e.element in (production_m3d or {}):
            caps = e.base["capacity_m3d"] * np.asarray(e.values, dtype=float)
            ok = [k for k in range(len(caps)) if caps[k] >= production_m3d[e.element] - 1e-6]
            out[n + j] = ok[0] if ok else len(caps) - 1
            continue
        if e.kind != "pump" or e.element not in need_ls:
            continue
        flows = e.base["flow_ls"] * np.asarray(e.values, dtype=float)
        ok = [k for k in range(len(flows)) if flows[k] >= need_ls[e.element] - 1e-9]
        out[n + j] = ok[0] if ok else len(flows) - 1
    return out


def _gradient(q_m3s: float, d_mm: float, c: float) -> float:
    """Hazen-Williams head loss per metre (m/m) at `q_m3s` in a pipe of `d_mm` and roughness `c`."""
    return abs(float(hazen_williams_headloss(q_m3s, length_m=1.0, roughness_c=c, diameter_m=d_mm * MM_TO_M)))


def _size_for(space: DesignSpace, i: int, q_m3s: float, target: float) -> int:
    """Cheapest option of pipe `i` whose gradient at `q_m3s` is at most `target` (the largest if none)."""
    opts = len(space.options[i])
    for k in range(opts):
        x = np.zeros(space.n_var, dtype=int)
        x[i] = k
        d = float(space.diameters_mm(x)[i])
        d = float(space.old_diameter_mm[i]) if np.isnan(d) else d
        c = float(space.roughness(x)[i])
        if _gradient(q_m3s, d, c) <= target:
            return k
    return opts - 1


def construct(ev: Evaluator, wn: wntr.network.WaterNetworkModel, space: DesignSpace, chain: Chain, *,
              start: np.ndarray | None = None, max_iter: int = 15,
              apply: Callable[[wntr.network.WaterNetworkModel, DesignSpace, np.ndarray],
                              wntr.network.WaterNetworkModel],
              progress: Callable[[str, int, float], None] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Grow a design until it is feasible in `ev` (the search model `wn`), with one or two EPANET runs a step.

    Returns the design (feasible unless every option ran out or `max_iter` was reached) and one record
    per step (``step``, ``cost``, ``failing``, ``violation``, ``changed``).
    """
    n = len(space.pipes)
    up = space.upper
    x = np.zeros(space.n_var, dtype=int) if start is None else np.asarray(start, dtype=int).copy()
    for i, k in pump_need_options(space, chain.need_ls, chain.production_need_m3d).items():
        x[i] = max(x[i], k)
    target = np.full(n, GRADIENT_TARGET)
    sized = np.zeros(n, dtype=bool)
    index = {p: i for i, p in enumerate(space.pipes)}
    fills = fill_tanks(wn)
    # a pump grown to its zone's demand gets suction and delivery mains for its rated flow before the first run
    for j, ex in enumerate(space.extras):
        if ex.kind == "pump" and x[n + j] > 0:
            q = float(ex.base["flow_ls"] * ex.values[x[n + j]]) * LS_TO_M3S
            for p in chain.suction.get(ex.element, []) + chain.delivery.get(ex.element, []):
                i = index.get(p)
                if i is not None:
                    x[i] = max(x[i], _size_for(space, i, q, target[i]))
                    sized[i] = True
    history: list[dict] = []
    tr = _Tracer(wn)
    for step in range(max_iter):
        e = ev.evaluate(x)
        failing = [str(nd) for nd, d in zip(ev.required_m.index, e.deficit_m) if d > 1e-9]
        history.append({"step": step, "cost": space.cost(x), "failing": len(failing), "violation": e.violation})
        if progress is not None:
            progress("construct", step, space.cost(x) if e.feasible else float("nan"))
        if e.feasible or ev.expired():
            break
        res = simulate(apply(wn, space, x))
        flows = res.link["flowrate"]
        qpeak = flows.abs().max()
        crit: set[str] = set()
        worst = _worst_times(res, failing) if failing else {}
        for nd in failing:
            for t in dict.fromkeys([worst[nd], flows.index[0]]):
                path, _end = tr.upstream(nd, flows.loc[t])
                crit.update(path)
        on_failing_path = set(crit)
        y = x.copy()
        pump_q: dict[str, float] = {}
        status = res.link["status"]
        short = cycle_shortfalls(ev, wn, res)
        for j, ex in enumerate(space.extras):
            if ex.kind == "plant":  # the clear well fails to cycle or runs dry: the plant produces too little
                v = n + j
                tank = ex.base["tank"]
                dry = float(res.node["pressure"][tank].min()) <= wn.get_node(tank).min_level + 0.05
                producing = float((flows[ex.element] > 1e-6).mean()) if ex.element in flows else 0.0
                if ((short.get(tank, 0.0) > 1e-6 and producing >= PRODUCTION_DUTY) or dry) and y[v] < up[v]:
                    y[v] += 1
                continue
            if ex.kind != "pump":
                continue
            v = n + j
            tank = fills.get(ex.element, "")
            on_t = status[ex.element] > 0 if ex.element in status else pd.Series(False, index=status.index)
            on = float(on_t.mean())
            dry = bool(tank) and float(res.node["pressure"][tank].min()) <= wn.get_node(tank).min_level + 0.05
            lines = [q for q in chain.suction.get(ex.element, []) + chain.delivery.get(ex.element, []) if q in index]
            # a tank that runs dry or fails to cycle is traced back to the pump that fills it
            # (only when the pump runs most of the time: a pump that idles half the day has the capacity, and
            # its tank's level at the end of the run is a matter of the on/off cycle's phase)
            if (on >= 0.95 or dry or (short.get(tank, 0.0) > 1e-6 and on >= DUTY_TARGET)) and y[v] < up[v]:
                flows_k = ex.base["flow_ls"] * np.asarray(ex.values, dtype=float)
                pumped = flows[ex.element] + (flows[ex.standby] if ex.standby and ex.modes[y[v]] == "standby"
                                              and ex.standby in flows else 0.0)
                q_on = float(pumped[on_t].mean()) / LS_TO_M3S if on_t.any() else 0.0
                if q_on < 0.85 * flows_k[y[v]] and any(target[index[q]] > GRADIENT_TARGET * 0.05 for q in lines):
                    for q in lines:  # the mains hold the pump back: larger mains first
                        target[index[q]] *= GRADIENT_SHRINK
                        sized[index[q]] = False
                else:
                    bigger = [k for k in range(y[v] + 1, len(flows_k)) if flows_k[k] > flows_k[y[v]] + 1e-9]
                    if bigger:
                        y[v] = bigger[0]
            if y[v] > 0:
                pump_q[ex.element] = float(ex.base["flow_ls"] * ex.values[y[v]]) * LS_TO_M3S
                crit.update(chain.suction.get(ex.element, []))
                crit.update(chain.delivery.get(ex.element, []))
        for p in crit:
            i = index.get(p)
            if i is None:
                continue
            q = float(qpeak.get(p, 0.0))
            for pump, qp in pump_q.items():
                if p in chain.suction.get(pump, []) or p in chain.delivery.get(pump, []):
                    q = max(q, qp)
            if sized[i] and p in on_failing_path:
                target[i] *= GRADIENT_SHRINK
            sized[i] = True
            y[i] = max(y[i], _size_for(space, i, q, target[i]))
        if (y == x).all():  # nothing moved: one option up on every failing path's pipe
            for p in crit:
                i = index.get(p)
                if i is not None and y[i] < up[i]:
                    y[i] += 1
        history[-1]["changed"] = int((y != x).sum())
        if (y == x).all():
            break
        x = y
    return x, history


def cycle_shortfalls(ev: Evaluator, wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults
                     ) -> dict[str, float]:
    """Tank → how far (m) its level falls short of cycling in run `res`, by the rule of `ev` (the fall of the
    daily high, or on a one-day search model from the start to the end, beyond the tolerance or the
    baseline's fall); only tanks that fall short."""
    dur = int(wn.options.time.duration)
    start = ev.cycle_from_s if ev.cycle_from_s is not None else (24 * 3600 if dur >= 48 * 3600 else None)
    out: dict[str, float] = {}
    if start is None:
        return out
    for tk in wn.tank_name_list:
        h = res.node["head"][tk]
        if start not in h.index:
            continue
        tank = wn.get_node(tk)
        allowed = max(ev.tank_tolerance * (tank.max_level - tank.min_level), ev.tank_baseline_drop_m.get(tk, 0.0))
        drop = cycle_drop(h, dur, start_s=ev.cycle_from_s)
        if drop is None:
            continue
        s = drop - allowed - TANK_SLACK_M
        if s > 1e-6:
            out[tk] = s
    return out


def _variations(x: np.ndarray, upper: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    rows = [x.copy()]
    for _ in range(size * 4):
        if len(rows) >= size:
            break
        y = x.copy()
        k = max(1, int(rng.integers(1, max(2, len(x) // 3 + 1))))
        for i in rng.choice(len(x), size=min(k, len(x)), replace=False):
            if y[i] > 0:
                y[i] = max(0, y[i] - int(rng.integers(1, 3)))
        if not any((y == r).all() for r in rows):
            rows.append(np.minimum(y, upper))
    return np.array(rows, dtype=int)


def reduce_cost(ev: Evaluator, x: np.ndarray, *, seed: int = 1, pop_size: int = 8, generations: int = 3,
                progress: Callable[[str, int, float], None] | None = None) -> np.ndarray:
    """Cheaper feasible designs near `x`: pymoo's GA started from `x` and seeded variations of it, then
    :func:`~watersupply.design.optimize.polish`; returns `x` when nothing cheaper is feasible."""
    x = np.asarray(x, dtype=int)
    if not x.any() or not ev.evaluate(x).feasible:  # nothing built (nothing to cut), or nothing feasible
        return x
    rng = np.random.default_rng(seed)
    best = x
    if generations > 0 and pop_size >= 4 and not ev.expired():
        start = _variations(x, ev.space.upper, pop_size, rng)
        y = run_ga(ev, seed=seed, pop_size=len(start), generations=generations, start=start, progress=progress)
        if ev.evaluate(y).feasible and ev.space.cost(y) < ev.space.cost(best):
            best = y
    return polish(ev, best, progress=progress)


def _tank_day_drops(wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults, hours: float
                    ) -> dict[str, float]:
    """How far each tank falls short of getting back up over the first `hours` of run `res` (≥ 0; the rule of
    the one-day search model, :func:`~watersupply.design.problem.cycle_drop` from 0)."""
    out = {}
    t_end = int(round(hours * 3600))
    for tk in wn.tank_name_list:
        h = res.node["head"][tk]
        h = h[h.index <= t_end]
        if t_end in h.index:
            d = cycle_drop(h, t_end, start_s=0)
            out[tk] = max(0.0, d) if d is not None else 0.0
    return out


def _reduced(space: DesignSpace, x: np.ndarray, wn: wntr.network.WaterNetworkModel, table: pd.DataFrame
             ) -> tuple[DesignSpace, np.ndarray]:
    """The design space cut to the pipes `x` builds (and every extra), and `x` in it."""
    n = len(space.pipes)
    keep = [i for i in range(n) if x[i] > 0]
    sp = _space(wn, table, [space.pipes[i] for i in keep], space.action, space.extras)
    return sp, np.concatenate([x[keep], x[n:]]).astype(int)


def _space(wn: wntr.network.WaterNetworkModel, table: pd.DataFrame, pipes: list[str], action: str,
           extras: list) -> DesignSpace:
    """A design space, possibly without candidate pipes (only pumps and storage, or nothing at all)."""
    from .problem import design_space

    if pipes:
        return design_space(wn, table, pipes=pipes, action=action, extras=extras)
    return DesignSpace(pipes=[], action=action, table=table, options=[], lengths_m=np.zeros(0),
                       old_diameter_mm=np.zeros(0), old_roughness_c=np.zeros(0), extras=list(extras))


def _expanded(space: DesignSpace, sub: DesignSpace, x_sub: np.ndarray) -> np.ndarray:
    """A design of the reduced space `sub` written in the full `space`."""
    x = np.zeros(space.n_var, dtype=int)
    index = {p: i for i, p in enumerate(space.pipes)}
    for k, p in enumerate(sub.pipes):
        x[index[p]] = x_sub[k]
    x[len(space.pipes):] = x_sub[len(sub.pipes):]
    return x


def design_by_construction(wn: wntr.network.WaterNetworkModel, table: pd.DataFrame, required: pd.Series, *,
                           pool: list[str] | None = None, action: str = "replace",
                           max_velocity_ms: float | None = None, tank_tolerance: float = 0.10,
                           tank_baseline_drop_m: dict[str, float] | None = None,
                           baseline: wntr.sim.SimulationResults | None = None, surrogate: bool = True,
                           seed: int = 1, pop_size: int = 8, generations: int = 3,
                           max_evaluations: int | None = COST_REDUCTION_EVALUATIONS,
                           time_limit_s: float | None = None, engine: str = "epanet2.2",
                           pump_efficiency: dict[str, float] | None = None, storage: bool = True,
                           production: bool = True, progress: Callable[[str, int, float], None] | None = None):
    """Feasible-first least-cost design of `wn` (a failing scenario's model) against `required` (m by node).

    Parameters
    ----------
    wn
        The scenario's model (demand-driven; not modified).
    table
        Checked candidate pipe table.
    required
        Required pressure (m) by demand node.
    pool
        Pipes that may be works (default: every pipe of `wn`).
    tank_baseline_drop_m
        Per tank, how far its level falls from 24 h to the end in the baseline (full-run tank check).
    baseline
        The baseline run (no events) of the same model, for the surrogate's tank check (how far each tank
        falls over the first day without the scenario); default: none allowed beyond the tolerance.
    surrogate
        Search on the first :data:`SURROGATE_HOURS` of the run (tanks must get back up to their initial levels);
        False: on the full run.
    seed, pop_size, generations
        pymoo GA of the cost reduction (:func:`reduce_cost`).
    max_evaluations
        Budget of the cost reduction in EPANET solves (deterministic; None for none).
    time_limit_s
        Time budget of the cost reduction, a safety stop (the answer is then reproducible only when it does
        not bind). The construction and the verification come on top of both budgets.
    storage
        Offer extra storage at the chain's tanks that run dry.
    production
        Offer a larger production at the plants whose clear wells are in the chain
        (:func:`~watersupply.design.works.plant_extras`).

    Returns
    -------
    DesignResult
        Verified by a full EPANET run of `wn` with the works (:func:`~watersupply.design.core.verify_design`).
    """
    import time

    from .core import DesignResult, apply_design, verify_design, works_table
    from .works import dry_tanks, plant_extras, pump_extras, storage_extras

    t0 = time.perf_counter()
    ws = surrogate_model(wn) if surrogate and wn.options.time.duration > SURROGATE_HOURS * 3600 else wn
    short = ws is not wn
    runs = 1
    res = simulate(ws)
    p = res.node["pressure"][list(required.index)].min()
    failing = [str(n) for n in p.index[(p < required - 1e-6).to_numpy()]]
    chain = supply_chain(ws, res, failing, demand_nodes=list(required.index))
    d_max = float(table["diameter_mm"].max())
    allowed = set(pool) if pool is not None else set(ws.pipe_name_list)
    pipes = [q for q in chain.pipes if q in allowed and ws.get_link(q).diameter / MM_TO_M < d_max - 1e-6]
    tanks = [tk for tk in dry_tanks(ws, res) if tk in chain.tanks] if storage else []
    plants = list(chain.production_need_m3d) if production else []
    extras = (pump_extras(ws, chain.pumps, efficiency=pump_efficiency) + storage_extras(ws, tanks)
              + plant_extras(ws, plants))
    space = _space(ws, table, pipes, action, extras)
    day_drop = _tank_day_drops(ws, baseline, SURROGATE_HOURS) if (short and baseline is not None) else {}
    kw = dict(max_velocity_ms=max_velocity_ms, tank_tolerance=tank_tolerance, engine=engine)
    ev = Evaluator(ws, space, required, tank_baseline_drop_m=day_drop if short else dict(tank_baseline_drop_m or {}),
                   cycle_from_s=0 if short else None, **kw)
    try:
        x, hist = construct(ev, ws, space, chain, apply=apply_design, progress=progress)
        runs += len(hist) - 1
        constructed_cost = space.cost(x)
        evaluations = ev.evaluations
    finally:
        ev.close()
    sub, xs = _reduced(space, x, ws, table)
    ev2 = Evaluator(ws, sub, required, tank_baseline_drop_m=day_drop if short else dict(tank_baseline_drop_m or {}),
                    cycle_from_s=0 if short else None, **kw)
    if time_limit_s is not None:
        ev2.deadline = time.perf_counter() + time_limit_s
    ev2.max_evaluations = max_evaluations
    try:
        xs = reduce_cost(ev2, xs, seed=seed, pop_size=pop_size, generations=generations, progress=progress)
        evaluations += ev2.evaluations
        stopped = ev2.expired()
        timed_out = ev2.deadline is not None and time.perf_counter() > ev2.deadline
    finally:
        ev2.close()
    notes: list[str] = []

    def check(sp: DesignSpace, xx: np.ndarray):
        laid = sp.rows(xx) >= 0
        ids = [q for q, k in zip(sp.pipes, laid) if k]
        return verify_design(apply_design(wn, sp, xx), required, candidates=ids, max_velocity_ms=max_velocity_ms,
                             tank_tolerance=tank_tolerance, tank_baseline_drop_m=tank_baseline_drop_m)

    ver, _res = check(sub, xs)
    runs += 1
    repaired = False
    if not ver["feasible"] and short:
        # the one-day search model was optimistic: grow the design on the full run, then cut again
        notes.append("the design found on the one-day search model failed the full run; it was grown on the "
                     "full run (same construction) and verified again")
        evf = Evaluator(wn, space, required, tank_baseline_drop_m=dict(tank_baseline_drop_m or {}), **kw)
        try:
            xf, hist_f = construct(evf, wn, space, chain, start=_expanded(space, sub, xs), max_iter=8,
                                   apply=apply_design, progress=progress)
            evaluations += evf.evaluations
            runs += len(hist_f) - 1
        finally:
            evf.close()
        sub, xs = _reduced(space, xf, wn, table)
        ver, _res = check(sub, xs)
        runs += 1
        repaired = True
    designed = apply_design(wn, sub, xs)
    if not xs.any() and ver["feasible"]:
        notes.append("the existing network already meets every target: no works needed")
    settings = {"method": "construct", "action": action, "candidates": len(sub.pipes),
                "chain_pipes": len(space.pipes), "pump_candidates": sum(e.kind == "pump" for e in extras),
                "storage_candidates": sum(e.kind == "storage" for e in extras),
                "plant_candidates": sum(e.kind == "plant" for e in extras),
                "search_model": (f"first {SURROGATE_HOURS} h of the run (tanks from their initial levels, must get back "
                                 "up to them in the day's second half)") if short else "full run",
                "constructed_cost": round(constructed_cost, 2), "construction_steps": len(hist),
                "repaired_on_full_run": repaired, "diagnostic_runs": runs,
                "seed": seed, "pop_size": pop_size, "generations": generations, "kicks": 0, "restarts": 1,
                "max_evaluations": max_evaluations if max_evaluations is not None else np.nan,
                "engine": engine, "stopped_at_time_limit": bool(timed_out), "stopped_at_budget": bool(stopped),
                "velocity_limit_ms": max_velocity_ms if max_velocity_ms is not None else np.nan}
    if timed_out:
        notes.append(f"the cost reduction stopped at its time limit ({time_limit_s:g} s): the design is the "
                     "cheapest feasible one found by then, not a converged answer (and depends on the machine)")
    elif stopped:
        notes.append(f"the cost reduction stopped at its budget of {max_evaluations} EPANET solves "
                     "(reproducible): a cheaper design may exist")
    result = DesignResult(wn=designed, space=sub, x=xs, works=works_table(sub, xs), cost=sub.cost(xs),
                          currency=str(table.attrs.get("currency", "")), evaluations=evaluations,
                          time_s=time.perf_counter() - t0, verification=ver, required=required, settings=settings,
                          notes=notes)
    log.info("construct: %d candidates, constructed %.0f, reduced %.0f, feasible %s", len(space.pipes),
             constructed_cost, result.cost, result.feasible)
    return result
