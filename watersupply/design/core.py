"""Least-cost design of a network, or of the upgrades that make a failing scenario pass.

:func:`design_network` sizes (or upgrades, or duplicates) candidate pipes of a
WNTR model so that every checked node keeps its required pressure at every
report time, at least capital cost; :func:`design_scenario` does it for a
scenario file on the project's network (service head at every demand node for
every hour, pressure-dependent demand showing no shortfall, tanks still
cycling, velocity limits in the new pipes), then re-runs the scenario on the
designed network. Each answer is verified by a full EPANET run through WNTR's
``EpanetSimulator`` before it is reported.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import wntr

from .._errors import ConfigError, HydraulicError
from ..engine import quiet_stdout
from ..hydraulics import MM_TO_M
from .optimize import pareto_front, perturb, polish, run_ga
from .problem import PRESSURE_FLOOR_M, TANK_SLACK_M, DesignSpace, Evaluator, cycle_drop, design_space, dup_name
from .works import Extra, apply_extras, extras_rows, pump_extras, storage_extras

__all__ = ["DesignResult", "InfeasibleDesignError", "design_network", "apply_design", "works_table",
           "verify_design", "auto_candidates", "todini"]

log = logging.getLogger(__name__)

#: Candidate pipes picked by ``pipes="auto"`` (the ones whose head loss matters most).
AUTO_CANDIDATES = 30


class InfeasibleDesignError(HydraulicError):
    """Even the largest design cannot meet the target; ``binding`` lists the nodes that fail (worst first)."""

    def __init__(self, message: str, binding: pd.DataFrame) -> None:
        super().__init__(message)
        self.binding = binding


@dataclass
class DesignResult:
    """A verified least-cost design.

    Attributes
    ----------
    wn : WaterNetworkModel
        The designed model (the input model with the works applied; scenario events
        included when designing for a scenario).
    space : DesignSpace
        Candidate pipes and options.
    x : ndarray
        Chosen option of each candidate pipe.
    works : DataFrame
        One row per pipe laid (see :func:`works_table`).
    cost : float
        Total capital cost (table currency, ``currency``).
    evaluations : int
        EPANET solves during the search (distinct designs).
    time_s : float
        Search and verification time.
    verification : dict
        From the full EPANET run of the design: ``feasible``, ``min_pressure_m``,
        ``worst_node``, ``worst_margin_m``, ``max_velocity_ms``, ``unbalanced``.
    required : Series
        Required pressure at each checked node (m).
    pareto : DataFrame or None
        The cost–resilience front (cost, resilience, verified resilience, cost of each point).
    settings : dict
        The options used (seed, generations, population, action, engine, ...).
    """

    wn: wntr.network.WaterNetworkModel
    space: DesignSpace
    x: np.ndarray
    works: pd.DataFrame
    cost: float
    currency: str
    evaluations: int
    time_s: float
    verification: dict[str, Any]
    required: pd.Series
    pareto: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """Whether the full EPANET run of the design meets every constraint."""
        return bool(self.verification.get("feasible", False))

    def summary(self) -> pd.DataFrame:
        """One-row table: total cost, evaluations, time, minimum pressure, feasibility, options."""
        v = self.verification
        w = self.works
        is_pipe = w["pipe"].astype(str) != "" if len(w) else pd.Series(dtype=bool)
        row = {"total_cost": round(self.cost, 2), "currency": self.currency, "pipes_laid": int(is_pipe.sum()),
               "length_laid_m": round(float(w.loc[is_pipe, "length_m"].sum()) if len(w) else 0.0, 1),
               "evaluations": self.evaluations, "time_s": round(self.time_s, 1),
               "min_pressure_m": round(v["min_pressure_m"], 3), "worst_node": v["worst_node"],
               "worst_margin_m": round(v["worst_margin_m"], 3), "max_velocity_ms": round(v["max_velocity_ms"], 3),
               **({"pipe_cost": round(float(w.loc[is_pipe, "cost"].sum()), 2),
                   "pump_works": int(w["action"].astype(str).str.startswith("pump").sum()),
                   "storage_works": int((w["action"] == "storage").sum()),
                   "plant_works": int((w["action"] == "plant expansion").sum()),
                   "pump_storage_cost": round(float(w.loc[~is_pipe, "cost"].sum()), 2)} if self.space.extras else {}),
               "feasible": bool(v["feasible"]), "verified_by": "WNTR EpanetSimulator (EPANET 2.2), full run",
               **{k: v for k, v in self.settings.items() if not isinstance(v, (list, dict))}}
        return pd.DataFrame([row])


def apply_design(wn: wntr.network.WaterNetworkModel, space: DesignSpace, x: np.ndarray
                 ) -> wntr.network.WaterNetworkModel:
    """A copy of `wn` with design `x` built: pipes resized, replaced or duplicated (open); pumps and storage."""
    out = copy.deepcopy(wn)
    d = space.diameters_mm(x)
    c = space.roughness(x)
    for k, p in enumerate(space.pipes):
        if np.isnan(d[k]):
            continue
        link = out.get_link(p)
        if space.action == "parallel":
            out.add_pipe(dup_name(p), link.start_node_name, link.end_node_name, length=link.length,
                         diameter=float(d[k]) * MM_TO_M, roughness=float(c[k]), minor_loss=0.0)
        else:
            link.diameter = float(d[k]) * MM_TO_M
            link.roughness = float(c[k])
    if space.extras:
        apply_extras(out, space.extras, space.xe(x))
    return out


def works_table(space: DesignSpace, x: np.ndarray) -> pd.DataFrame:
    """One row per pipe laid (then per pump upgraded and reservoir enlarged): element, action, old and new size,
    length, unit cost, cost.

    Columns: ``element`` (the pipe, or its duplicate's id), ``pipe``, ``action``,
    ``old_diameter_mm``, ``new_diameter_mm``, ``nominal``, ``material``,
    ``roughness_c``, ``length_m``, ``unit_cost``, ``cost``; with pump or storage
    variables also ``old_size`` and ``new_size`` (pump duty and head, storage volume),
    their rows having ``action`` ``pump standby``, ``pump replace`` or ``storage``.
    """
    rows = space.rows(x)
    costs = space.pipe_costs(x)
    c = space.roughness(x)
    t = space.table
    out = []
    for k, p in enumerate(space.pipes):
        r = int(rows[k])
        if r < 0:
            continue
        out.append({"element": dup_name(p) if space.action == "parallel" else p, "pipe": p,
                    "action": space.action, "old_diameter_mm": round(float(space.old_diameter_mm[k]), 3),
                    "new_diameter_mm": float(t["diameter_mm"].iat[r]), "nominal": str(t["nominal"].iat[r]),
                    "material": str(t["material"].iat[r]), "roughness_c": float(c[k]),
                    "length_m": float(space.lengths_m[k]), "unit_cost": float(t["unit_cost"].iat[r]),
                    "cost": float(costs[k])})
    cols = ["element", "pipe", "action", "old_diameter_mm", "new_diameter_mm", "nominal", "material",
            "roughness_c", "length_m", "unit_cost", "cost"]
    if space.extras:
        for r in out:
            r["old_size"] = f"{r['old_diameter_mm']:g} mm"
            r["new_size"] = f"{r['nominal']} ({r['new_diameter_mm']:g} mm)"
        out += extras_rows(space.extras, space.xe(x))
        cols += ["old_size", "new_size"]
    return pd.DataFrame(out, columns=cols)


def todini(results: wntr.sim.SimulationResults, wn: wntr.network.WaterNetworkModel,
           required: pd.Series) -> pd.Series:
    """Todini's resilience index at each time, with a required pressure per junction (m).

    Same formula as :func:`wntr.metrics.todini_index` (which takes one required
    pressure for every junction): Σ q (h − h*) / (Σ Q_r H_r + Σ P_pump/γ − Σ q h*).
    """
    junc = wn.junction_name_list
    elev = pd.Series({j: wn.get_node(j).elevation for j in junc})
    hstar = elev + required.reindex(junc).fillna(0.0)
    q = results.node["demand"][junc]
    h = results.node["head"][junc]
    num = (q * (h - hstar)).sum(axis=1)
    res = wn.reservoir_name_list
    p_in = (-results.node["demand"][res] * results.node["head"][res]).sum(axis=1) if res else 0.0
    for p in wn.pump_name_list:
        link = wn.get_link(p)
        gain = results.node["head"][link.end_node_name] - results.node["head"][link.start_node_name]
        p_in = p_in + results.link["flowrate"][p].clip(lower=0.0) * gain
    den = p_in - (q * hstar).sum(axis=1)
    return (num / den).rename("todini")


def verify_design(wn: wntr.network.WaterNetworkModel, required: pd.Series, *, candidates: list[str] | None = None,
                  max_velocity_ms: float | None = None, tank_tolerance: float = 0.10,
                  tank_baseline_drop_m: dict[str, float] | None = None,
                  workdir: str | Path | None = None) -> tuple[dict[str, Any], wntr.sim.SimulationResults]:
    """Run `wn` in full with WNTR's EpanetSimulator and check the design constraints.

    Returns
    -------
    dict
        ``feasible``, ``min_pressure_m``, ``worst_node``, ``worst_margin_m`` (lowest
        pressure minus required, over nodes), ``max_velocity_ms`` (in `candidates`),
        ``tank_shortfall_m`` (and ``tanks_short_m``, by tank), ``binding`` (DataFrame of failing nodes), and
        the results.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ws_verify_", dir=workdir) as tmp, quiet_stdout(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(Path(tmp) / "verify"))
        except Exception as exc:  # EPANET errors come as several exception types
            raise HydraulicError(f"EPANET could not solve the designed network: {exc}") from None
    p = res.node["pressure"]
    start = float(wn.options.time.report_start or 0)
    p = p[p.index >= start]
    mins = p[list(required.index)].min()
    margin = mins - required
    tanks_short = 0.0
    by_tank: dict[str, float] = {}
    dur = wn.options.time.duration
    if wn.tank_name_list and dur >= 48 * 3600:
        for tname in wn.tank_name_list:
            tank = wn.get_node(tname)
            drop = cycle_drop(res.node["head"][tname], dur)
            if drop is None:
                continue
            allowed = max(tank_tolerance * (tank.max_level - tank.min_level),
                          (tank_baseline_drop_m or {}).get(tname, 0.0))
            tanks_short += max(0.0, drop - allowed - TANK_SLACK_M)
            if drop - allowed - TANK_SLACK_M > 1e-6:
                by_tank[tname] = drop - allowed - TANK_SLACK_M
    vmax = 0.0
    if candidates:
        v = res.link["velocity"][[c for c in candidates if c in res.link["velocity"].columns]]
        vmax = float(v.abs().max().max()) if v.size else 0.0
    v_ok = max_velocity_ms is None or vmax <= max_velocity_ms + 1e-6
    binding = pd.DataFrame({"required_m": required, "min_pressure_m": mins, "deficit_m": (-margin).clip(lower=0.0)})
    binding.index.name = "node"
    binding = binding[binding["deficit_m"] > 1e-6].sort_values("deficit_m", ascending=False, kind="stable")
    worst = str(margin.idxmin())
    out = {"feasible": bool((margin >= -1e-6).all() and v_ok and tanks_short <= 1e-6),
           "min_pressure_m": float(mins.min()), "worst_node": worst, "worst_margin_m": float(margin.min()),
           "max_velocity_ms": vmax, "tank_shortfall_m": tanks_short, "tanks_short_m": by_tank,
           "binding": binding}
    return out, res


def _graph(wn: wntr.network.WaterNetworkModel, weight: pd.Series) -> nx.Graph:
    g = nx.Graph()
    for name, link in wn.links():
        w = float(weight.get(name, 0.0))
        g.add_edge(link.start_node_name, link.end_node_name, name=name, w=max(w, 0.0) + 1e-6)
    return g


def auto_candidates(wn: wntr.network.WaterNetworkModel, results: wntr.sim.SimulationResults, required: pd.Series,
                    *, n: int = AUTO_CANDIDATES, pool: list[str] | None = None) -> list[str]:
    """The pipes whose head loss matters most: on the least-head-loss paths from the sources to the nodes
    below their required pressure, ranked by their largest head loss over the run.

    Falls back to the pipes with the largest head loss anywhere when no node fails.
    """
    p = results.node["pressure"][list(required.index)].min()
    failing = list(p[p < required - 1e-6].sort_values().index)
    hl = results.link["headloss"].abs().max()  # EPANET: m/km for pipes
    lengths = pd.Series({name: wn.get_link(name).length for name in wn.pipe_name_list})
    loss = (hl.reindex(lengths.index).fillna(0.0) * lengths / 1000.0)
    pool_set = set(pool) if pool is not None else set(wn.pipe_name_list)
    on_path: set[str] = set()
    if failing:
        g = _graph(wn, loss)
        # paths from the fixed-head sources (plants), through pumps and tanks: a tank that runs dry is fed
        # through the pipes upstream of it, and those are the ones that may need to grow
        sources = [s for s in wn.reservoir_name_list if s in g] or [s for s in wn.tank_name_list if s in g]
        _dist, paths = nx.multi_source_dijkstra(g, sources, weight="w")
        for node in failing:
            path = paths.get(node)
            if not path:
                continue
            for a, b in zip(path[:-1], path[1:]):
                on_path.add(g.edges[a, b]["name"])
    ranked = loss[[c for c in loss.index if c in pool_set and (not on_path or c in on_path)]]
    ranked = ranked.sort_values(ascending=False, kind="stable")
    return [str(c) for c in ranked.index[:n]]


def _search(ev: Evaluator, *, seed: int, pop_size: int, generations: int, kicks: int,
            progress: Callable[[str, int, float], None] | None = None) -> np.ndarray:
    """One seeded run: GA, polishing, optional kicks; the cheapest feasible design it met."""
    x = run_ga(ev, seed=seed, pop_size=pop_size, generations=generations, progress=progress)
    x = polish(ev, x, progress=progress)
    if kicks > 0:
        x = perturb(ev, x, seed=seed, kicks=kicks, progress=progress)
    return x


def _better(ev: Evaluator, a: np.ndarray, b: np.ndarray) -> bool:
    ea, eb = ev.evaluate(a), ev.evaluate(b)
    if ea.feasible != eb.feasible:
        return ea.feasible
    key_a = (ea.cost, tuple(a)) if ea.feasible else (ea.violation, ea.cost)
    key_b = (eb.cost, tuple(b)) if eb.feasible else (eb.violation, eb.cost)
    return key_a < key_b


def _worker_run(payload: dict[str, Any]) -> tuple[np.ndarray, int]:
    """A restart in a worker process: its own EPANET project, the same problem, another seed."""
    wn = wntr.network.WaterNetworkModel(payload["inp"])
    a = payload["args"]
    space = design_space(wn, payload["table"], pipes=payload["pipes"], action=payload["action"],
                         extras=payload["extras"])
    ev = Evaluator(wn, space, payload["required"], max_velocity_ms=a["max_velocity_ms"],
                   tank_tolerance=a["tank_tolerance"], tank_baseline_drop_m=a["tank_baseline_drop_m"],
                   engine=a["engine"])
    if a["deadline_s"] is not None:
        ev.deadline = time.perf_counter() + a["deadline_s"]
    try:
        x = _search(ev, seed=payload["seed"], pop_size=a["pop_size"], generations=a["generations"],
                    kicks=a["kicks"])
        return x, ev.evaluations
    finally:
        ev.close()


def _parallel_runs(wn: wntr.network.WaterNetworkModel, space: DesignSpace, required: pd.Series, seeds: list[int],
                   *, workers: int, args: dict[str, Any]) -> list[tuple[np.ndarray, int]]:
    """Start restarts with other seeds in worker processes (results in seed order)."""
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    with tempfile.TemporaryDirectory(prefix="ws_design_mp_") as tmp:
        inp = str(Path(tmp) / "problem.inp")
        model = copy.deepcopy(wn)
        wntr.network.write_inpfile(model, inp, units="LPS", version=2.2)
        payloads = [{"inp": inp, "args": args, "table": space.table, "pipes": list(space.pipes),
                     "action": space.action, "extras": space.extras, "required": required, "seed": sd} for sd in seeds]
        with ProcessPoolExecutor(max_workers=min(workers, len(seeds))) as pool:
            return list(pool.map(_worker_run, payloads))


def _pressure_text(p: float) -> str:
    return "no water (tank dry or cut off)" if p <= PRESSURE_FLOOR_M + 1e-9 else f"{p:.1f} m"


def _required_series(wn: wntr.network.WaterNetworkModel, min_pressure: float | pd.Series | None,
                     nodes: list[str] | None) -> pd.Series:
    if isinstance(min_pressure, pd.Series):
        return min_pressure.astype(float)
    if min_pressure is None:
        raise ConfigError("no pressure target: give min_pressure (m) or a scenario")
    if not np.isfinite(min_pressure) or min_pressure < 0:
        raise ConfigError(f"min_pressure must be a finite number ≥ 0 m, got {min_pressure!r}")
    ids = nodes if nodes is not None else list(wn.junction_name_list)
    return pd.Series(float(min_pressure), index=pd.Index([str(i) for i in ids], name="node"))


def design_network(wn: wntr.network.WaterNetworkModel, candidates: pd.DataFrame, *,
                   min_pressure: float | pd.Series | None = None, nodes: list[str] | None = None,
                   pipes: str | list[str] = "all", action: str = "size", max_velocity_ms: float | None = None,
                   tank_tolerance: float = 0.10, tank_baseline_drop_m: dict[str, float] | None = None,
                   seed: int = 1, pop_size: int = 200, generations: int = 250, time_limit_s: float | None = None,
                   kicks: int = 0, restarts: int = 1, workers: int = 1, pareto: bool = False, pareto_generations: int = 60,
                   engine: str = "epanet2.2", pumps: str | list[str] | None = None,
                   storage: str | list[str] | None = None, pump_efficiency: dict[str, float] | None = None,
                   progress: Callable[[str, int, float], None] | None = None) -> DesignResult:
    """Least-cost design: pymoo's GA on the candidate options, polishing, a full EPANET verification.

    Parameters
    ----------
    wn
        The model (not modified); its demands, patterns and controls are what the
        design must serve. Its run length sets the hours checked.
    candidates
        A checked candidate table (:func:`~watersupply.design.costs.check_candidates`).
    min_pressure
        Required pressure (m): one number for every node in `nodes` (default every
        junction), or a Series by node id.
    pipes
        Candidate pipes: ``"all"``, a comma-separated string or a list of ids.
    action
        ``"size"``, ``"replace"`` or ``"parallel"`` (see :mod:`watersupply.design.problem`).
    pumps, storage
        Also choose pump upgrades for these duty pumps and extra storage at these tanks
        (``"all"``, ids or a comma-separated string; None — the default — for pipes only):
        see :mod:`watersupply.design.works`. ``pump_efficiency`` gives η by pump for their
        motor rating (default 0.75).
    max_velocity_ms
        Velocity limit in the pipes laid; None for none.
    seed, pop_size, generations
        GA settings.
    time_limit_s
        Budget for the whole search (GA, polishing, kicks, front): a safety stop; the best
        feasible design found by then is returned (reproducible only when it does not bind).
    kicks
        Rounds of iterated local search after polishing (:func:`~watersupply.design.optimize.perturb`).
    restarts, workers
        Independent seeded runs (seeds ``seed``, ``seed + 1000``, …), the cheapest kept; with
        ``workers > 1`` the extra runs go to worker processes while this one runs the first.
    pareto
        Also trace the cost–resilience front (Todini's index) with NSGA-II.
    engine
        EPANET library for the search: ``"epanet2.2"`` or ``"epanet2.3"``.

    Returns
    -------
    DesignResult

    Raises
    ------
    InfeasibleDesignError
        Even the largest option on every candidate misses the target; its
        ``binding`` lists the nodes that still fail (and the message names them).
    ConfigError
        Bad options.

    Examples
    --------
    >>> from watersupply.design.costs import check_candidates
    >>> wn = wntr.network.WaterNetworkModel()
    >>> wn.add_reservoir("R", base_head=40.0); wn.add_junction("J", base_demand=0.02)
    >>> wn.add_pipe("P", "R", "J", length=1000.0, diameter=0.1, roughness=130.0)
    >>> t = check_candidates(pd.DataFrame({"diameter_mm": [100, 150, 200], "unit_cost": [10, 20, 30]}))
    >>> design_network(wn, t, min_pressure=30.0, generations=5, pop_size=10).works["new_diameter_mm"].tolist()
    [150.0]
    """
    if pop_size < 4 or generations < 1:
        raise ConfigError(f"pop_size must be ≥ 4 and generations ≥ 1, got {pop_size} and {generations}")
    t0 = time.perf_counter()
    required = _required_series(wn, min_pressure, nodes)
    extras: list[Extra] = pump_extras(wn, pumps, efficiency=pump_efficiency) + storage_extras(wn, storage)
    space = design_space(wn, candidates, pipes=pipes, action=action, extras=extras)
    ev = Evaluator(wn, space, required, max_velocity_ms=max_velocity_ms, tank_tolerance=tank_tolerance,
                   tank_baseline_drop_m=dict(tank_baseline_drop_m or {}), resilience=pareto, engine=engine)
    if time_limit_s is not None:
        ev.deadline = time.perf_counter() + time_limit_s
    try:
        # the largest design proves infeasibility only through pressure: a velocity limit or a tank's cycle
        # may fail there (e.g. huge pipes between two tanks) and still be met by smaller designs
        # with pumps among the variables the largest design proves nothing (a bigger pump can starve its suction
        # side): the search runs and an infeasible answer is reported as such after it
        top = ev.evaluate(space.upper)
        if not extras and top.deficit_m.sum() > 1e-9 and not ev.evaluate(np.zeros(space.n_var, dtype=int)).feasible:
            b = ev.binding(space.upper)
            names = ", ".join(f"{n} ({_pressure_text(r.min_pressure_m)} < {r.required_m:.1f} m)"
                              for n, r in b.head(8).iterrows())
            extra = ""
            if top.tank_shortfall_m > 0:
                extra += f"; tanks fall {top.tank_shortfall_m:.2f} m short of cycling"
            what = f"all {len(space.pipes)} candidate pipes"
            if extras:
                what += (f" with the largest upgrade of {sum(e.kind == 'pump' for e in extras)} pump(s) and "
                         f"storage at {sum(e.kind == 'storage' for e in extras)} reservoir(s)")
            raise InfeasibleDesignError(
                f"infeasible: even the largest candidate on {what} leaves "
                f"{len(b)} node(s) below the target — binding: {names}{' …' if len(b) > 8 else ''}{extra}. "
                "Add larger sizes, more candidate pipes, or other works (pumps, storage, a new source)", b)
        seeds = [seed + 1000 * r for r in range(max(restarts, 1))]
        others: list[tuple[np.ndarray, int]] = []
        cheapest = np.zeros(space.n_var, dtype=int)
        if ev.evaluate(cheapest).feasible:  # e.g. nothing to do: the network already meets the target
            seeds = []
            result_note = "the cheapest option on every candidate already meets the target: no search needed"
        else:
            result_note = ""
        if len(seeds) > 1 and workers > 1:
            others = _parallel_runs(wn, space, required, seeds[1:], workers=workers - 1,
                                    args=dict(max_velocity_ms=max_velocity_ms, tank_tolerance=tank_tolerance,
                                              tank_baseline_drop_m=dict(tank_baseline_drop_m or {}), engine=engine,
                                              pop_size=pop_size, generations=generations, kicks=kicks,
                                              deadline_s=time_limit_s))
            seeds = seeds[:1]
        x = cheapest if not seeds else None
        for sd in seeds:
            xs = _search(ev, seed=sd, pop_size=pop_size, generations=generations, kicks=kicks, progress=progress)
            x = xs if x is None or _better(ev, xs, x) else x
        for xs, n_ev in others:
            ev.evaluations += n_ev
            x = xs if _better(ev, xs, x) else x
        front = None
        if pareto:
            front = pareto_front(ev, seed=seed, generations=pareto_generations, seeds=[x], progress=progress)
        evaluations = ev.evaluations
        stopped = ev.expired()
    finally:
        ev.close()
    designed = apply_design(wn, space, x)
    laid = space.rows(x) >= 0  # velocity is checked in the pipes laid
    check_ids = [dup_name(p) if action == "parallel" else p for p, k in zip(space.pipes, laid) if k]
    ver, res = verify_design(designed, required, candidates=check_ids, max_velocity_ms=max_velocity_ms,
                             tank_tolerance=tank_tolerance, tank_baseline_drop_m=tank_baseline_drop_m)
    if front is not None and len(front):
        verified = []
        for xk in front["x"]:
            _v, r = verify_design(apply_design(wn, space, xk), required)
            verified.append(float(todini(r, wn, required).min()))
        front = front.assign(resilience_verified=verified)
    settings = {"action": action, "candidates": len(space.pipes),
                **({"pump_candidates": sum(e.kind == "pump" for e in extras),
                    "storage_candidates": sum(e.kind == "storage" for e in extras)} if extras else {}), "seed": seed, "pop_size": pop_size,
                "generations": generations, "kicks": kicks, "restarts": restarts, "engine": engine,
                "velocity_limit_ms": max_velocity_ms if max_velocity_ms is not None else np.nan}
    result = DesignResult(wn=designed, space=space, x=x, works=works_table(space, x), cost=space.cost(x),
                          currency=str(candidates.attrs.get("currency", "")), evaluations=evaluations,
                          time_s=time.perf_counter() - t0, verification=ver, required=required, pareto=front,
                          settings=settings)
    if result_note:
        result.notes.append(result_note)
    if stopped:
        result.notes.append(f"the search stopped at its time limit ({time_limit_s:g} s): the design is the best "
                            "found by then, not a converged answer")
    result.settings["stopped_at_time_limit"] = bool(stopped)
    searched = ev.cache.get(tuple(int(v) for v in x))
    if not result.feasible and extras and searched is not None and not searched.feasible:
        b = ver["binding"]
        names = ", ".join(f"{n} ({_pressure_text(r.min_pressure_m)} < {r.required_m:.1f} m)"
                          for n, r in b.head(8).iterrows())
        raise InfeasibleDesignError(
            f"infeasible: the search ({evaluations} EPANET evaluations) found no design of {len(space.pipes)} "
            f"candidate pipes and {len(extras)} pump/storage candidate(s) that keeps every node at its target; "
            "the best one "
            f"(cost {space.cost(x):,.0f}) leaves {len(b)} node(s) below it — binding: {names}"
            f"{' …' if len(b) > 8 else ''}. Add candidates, a larger budget, or other works (a new source)", b)
    if not result.feasible:
        result.notes.append("the full EPANET run of the design misses the target at "
                            f"{len(ver['binding'])} node(s) (worst {ver['worst_node']}, "
                            f"{ver['worst_margin_m']:.2f} m); the search and the check disagree")
    log.info("design: cost %.0f, %d evaluations, feasible %s", result.cost, evaluations, result.feasible)
    return result
