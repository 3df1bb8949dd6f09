"""Least-cost pipe upgrades that make a failing scenario pass.

:func:`design_scenario` takes a scenario (e.g. ``food_park_expansion``), builds
its model with the scenario's events (:func:`watersupply.scenario.apply_events`),
and designs the cheapest pipe replacements (or duplicates) from a cost table so
that, for every hour of the run,

- every demand node keeps its **service head** (:func:`watersupply.metrics.service_heads`,
  GB 50013 / rural rule by settlement and storeys) and at least the PDD
  required pressure (``pdd_required_pressure_m``), so pressure-dependent demand
  shows no shortfall; a node already below that in the baseline (same network,
  no events) only has to do no worse than in the baseline;
- the velocity in the pipes laid stays under ``main_velocity_max_ms``;
- tanks still cycle: the highest level of the run's last day is not lower than
  the day before's by more than ``reservoir_cycle_tolerance`` of the operating
  range (or than in the baseline; :func:`~watersupply.design.problem.cycle_drop`).

The search runs demand-driven (deficits are measurable); the designed network
is then re-run through :func:`watersupply.scenario.run_scenario` with
pressure-dependent demand, and the verdict reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import wntr

from .._errors import ConfigError
from ..metrics import demand_nodes, service_heads
from ..model import to_wntr
from ..schema import Network
from ..standards import thresholds
from .construct import simulate
from .core import DesignResult, InfeasibleDesignError, auto_candidates, design_network
from .problem import cycle_drop
from .costs import pipe_costs
from .works import apply_extras_to_network, busy_pumps, dry_tanks

__all__ = ["ScenarioDesign", "design_scenario", "designed_network", "scenario_verdict"]

log = logging.getLogger(__name__)


@dataclass
class ScenarioDesign:
    """A scenario's least-cost design and the scenario re-run on the designed network.

    Attributes
    ----------
    design : DesignResult
    scenario : Scenario
    network_name : str
    net, designed_net : dict
        The network's layers before and after the works.
    before, after : ScenarioRun or None
        The scenario run on the existing and on the designed network.
    verdict_before, verdict_after : dict
        :func:`scenario_verdict` of each run.
    relaxed_nodes : list of str
        Demand nodes already below their target in the baseline (held to the baseline instead).
    """

    design: DesignResult
    scenario: Any
    network_name: str
    net: Network
    designed_net: Network
    before: Any = None
    after: Any = None
    verdict_before: dict[str, Any] = field(default_factory=dict)
    verdict_after: dict[str, Any] = field(default_factory=dict)
    relaxed_nodes: list[str] = field(default_factory=list)


def _model(net: Network, sc: Any, *, events: bool) -> wntr.network.WaterNetworkModel:
    from ..scenario import apply_events

    use = sc if events else sc.model_copy(update={"events": []})
    wn = apply_events(to_wntr(net, duration_h=sc.duration_h), net, use)
    wn.options.hydraulic.demand_model = "DDA"
    return wn


def scenario_verdict(run: Any, required: pd.Series) -> dict[str, Any]:
    """Does a scenario run pass? Every demand node at or above its required head every hour, demand fully served.

    Returns ``passes``, ``demand_served_pct`` (NaN where EPANET did not balance the hydraulics at
    some hour: delivered demand is then no result), ``unbalanced_hours``, ``person_hours_without_water``,
    ``nodes_below_target``, ``min_margin_m`` and ``worst_node`` (NaN and ``""`` where unbalanced).
    """
    head = run.headline()
    p = run.result.pressure.reindex(columns=required.index)
    margin = p.min() - required
    below = int((margin < -1e-3).sum())
    served = float(head["demand_served_pct"])  # NaN where EPANET did not balance: no figure, and no pass
    unbalanced = run.unbalanced_hours
    # an unbalanced solve's pressures are no result either (a margin of -4,281,604 m was printed once)
    worst = (math.nan, "") if unbalanced else (round(float(margin.min()), 3), str(margin.idxmin()))
    return {"passes": bool(below == 0 and served >= 99.9 and head["person_hours_without_water"] == 0),
            "demand_served_pct": round(served, 2), "unbalanced_hours": unbalanced,
            "person_hours_without_water": float(head["person_hours_without_water"]),
            "nodes_below_target": below, "min_margin_m": worst[0], "worst_node": worst[1]}


def designed_network(net: Network, result: DesignResult) -> Network:
    """The network's layers with the works built (pipe diameters, C and material; duplicates added; pumps
    re-rated or standby run as duty; reservoirs enlarged)."""
    out = dict(net)
    if result.space.extras:
        out = apply_extras_to_network(out, result.space.extras, result.space.xe(result.x))
    pipes = net["pipes"].copy()
    works = result.works
    if len(works) and "old_size" in works:
        works = works[works["pipe"].astype(str) != ""]
    if not len(works):
        return out
    ids = pipes["id"].astype(str)
    if result.space.action == "parallel":
        add = []
        for w in works.itertuples(index=False):
            row = pipes.loc[ids == w.pipe].iloc[0].copy()
            row["id"] = w.element
            row["diameter_mm"] = w.new_diameter_mm
            row["roughness_c"] = w.roughness_c
            if w.material:
                row["material"] = w.material
            add.append(row)
        pipes = pd.concat([pipes, pd.DataFrame(add)], ignore_index=True)
        pipes = pipes.set_geometry("geometry", crs=net["pipes"].crs) if hasattr(net["pipes"], "crs") else pipes
    else:
        by = works.set_index("pipe")
        hit = ids.isin(by.index)
        pipes.loc[hit, "diameter_mm"] = ids[hit].map(by["new_diameter_mm"]).to_numpy()
        pipes.loc[hit, "roughness_c"] = ids[hit].map(by["roughness_c"]).to_numpy()
        mats = ids[hit].map(by["material"])
        if "material" in pipes:
            pipes.loc[hit, "material"] = np.where(mats.astype(str) != "", mats, pipes.loc[hit, "material"])
    out["pipes"] = pipes
    return out


def _pool(net: Network, wn: wntr.network.WaterNetworkModel, pipes: str | list[str]) -> tuple[str | list[str], list[str]]:
    """Resolve the pipes option against the network's own pipes (not those a scenario adds)."""
    own = [p for p in net["pipes"]["id"].astype(str) if p in set(wn.pipe_name_list)]
    if isinstance(pipes, str) and pipes.startswith("zone:"):
        zone = pipes[5:]
        pz = net["pipes"]
        if "zone" not in pz:
            raise ConfigError("the network's pipes have no 'zone' column; give pipe ids or 'auto'")
        zones = sorted(pz["zone"].dropna().astype(str).unique())
        sel = pz.loc[pz["zone"].astype(str) == zone, "id"].astype(str).tolist()
        if not sel:
            raise ConfigError(f"no pipes in zone {zone!r}; zones: {', '.join(zones)}")
        return sel, own
    if pipes == "all":
        return own, own
    return pipes, own


def _capacity_hint(wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults) -> str:
    """Pumps that run all the time and tanks that run dry in the scenario: where pipe works cannot help."""
    parts = []
    if wn.pump_name_list:
        on = (res.link["status"][wn.pump_name_list] > 0).mean()
        busy = [p for p in wn.pump_name_list if on[p] >= 0.95]
        if busy:
            parts.append("pumps running ≥ 95 % of the time: " + ", ".join(busy))
    dry = []
    for tk in wn.tank_name_list:
        level = res.node["pressure"][tk]
        if float(level.min()) <= wn.get_node(tk).min_level + 0.05:
            dry.append(tk)
    if dry:
        parts.append("tanks reaching their minimum level: " + ", ".join(dry))
    return (" — in the scenario on the existing network, " + "; ".join(parts) +
            " (pumping or storage capacity, which pipe works cannot add)") if parts else ""


def _design(wn, table, required, sel, action, vmax, t, tank_drop, seed, pop_size, generations, kicks, restarts,
            workers, time_limit_s, pareto, engine, progress, pumps=None, storage=None, eff=None) -> DesignResult:
    return design_network(wn, table, min_pressure=required, pipes=sel, action=action, max_velocity_ms=vmax,
                          tank_tolerance=float(t["reservoir_cycle_tolerance"]), tank_baseline_drop_m=tank_drop,
                          seed=seed, pop_size=pop_size, generations=generations, kicks=kicks, restarts=restarts,
                          workers=workers, time_limit_s=time_limit_s, pareto=pareto, engine=engine, progress=progress,
                          pumps=pumps, storage=storage, pump_efficiency=eff)


def _ids(spec: str | list[str] | None) -> str:
    return spec if isinstance(spec, str) else (", ".join(spec) if spec else "none")


def _efficiency(net: Network) -> dict[str, float]:
    pumps = net.get("pumps")
    if pumps is None or "efficiency" not in pumps:
        return {}
    eff = pd.to_numeric(pumps["efficiency"], errors="coerce")
    return {str(i): float(e) for i, e in zip(pumps["id"], eff) if np.isfinite(e) and e > 0}


def design_scenario(scenario: Any, *, net: Network | None = None, candidates: pd.DataFrame | None = None,
                    pipes: str | list[str] = "auto", n_auto: int = 30, action: str = "replace",
                    max_velocity_ms: float | None = None, seed: int = 1, pop_size: int | None = None, generations: int | None = None,
                    kicks: int = 0, restarts: int = 1, workers: int = 1,
                    time_limit_s: float | None = None, pareto: bool = False, engine: str | None = None,
                    pumps: str | list[str] | None = "auto", storage: str | list[str] | None = "auto",
                    rerun: bool = True, t: dict[str, float] | None = None, method: str = "construct",
                    surrogate: bool = True, max_evaluations: int | None = 100,
                    progress: Callable[[str, int, float], None] | None = None) -> ScenarioDesign:
    """Design the least-cost pipe works that make `scenario` pass, verify them and re-run the scenario.

    Parameters
    ----------
    scenario
        A :class:`~watersupply.scenario.Scenario`, a scenario file or a shipped scenario's name.
    net
        The network (default: the scenario's).
    candidates
        Candidate table (default: the shipped PE100 and ductile-iron tables, ``pipe_costs("pe+di")``).
    pipes
        ``"auto"`` (the `n_auto` pipes whose head loss matters most on the paths to
        the failing nodes), ``"all"``, ``"zone:<zone>"``, or pipe ids.
    action
        ``"replace"`` (default) or ``"parallel"`` (``"size"`` re-sizes and pays for every candidate).
    max_velocity_ms
        Velocity limit in the pipes laid (default ``main_velocity_max_ms``).
    pumps, storage
        Pump upgrades and extra storage the design may choose (:mod:`watersupply.design.works`):
        ``"auto"`` (default: the duty pumps running ≥ 95 % of the time and the tanks reaching their
        minimum level in the scenario on the existing network), ``"all"``, ids, or None / ``"none"``
        for pipe works only.
    rerun
        Re-run the scenario (pressure-dependent demand) on the existing and designed networks.
    method
        ``"construct"`` (default): feasible-first construction along the supply chain of the failing
        nodes, then pymoo's GA and local search to cut the cost (:mod:`watersupply.design.construct`;
        `pipes`, `n_auto`, `pumps`, `restarts`, `kicks` and `pareto` do not apply, `storage` only on/off);
        ``"ga"``: pymoo's GA over the `pipes`, `pumps` and `storage` candidates from scratch
        (:func:`~watersupply.design.core.design_network`).
    engine
        EPANET library of the search (default ``"epanet2.2"``, the one of the verification).
    surrogate
        With ``"construct"``, search on the first day of the run (tanks from their initial levels, ending the
        day where they began) when every event lasts the whole run; the answer is always verified (and if
        need be grown) on the full run.
    max_evaluations
        With ``"construct"``, the cost reduction's budget of EPANET solves (deterministic).

    Raises
    ------
    InfeasibleDesignError
        Pipe works alone cannot make it pass (binding nodes named).
    ScenarioError, ConfigError
        Bad scenario or options.
    """
    from ..scenario import Scenario, load_scenario, resolve_scenario, scenario_network

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(resolve_scenario(scenario))
    t = t or thresholds()
    net, name = scenario_network(sc, net=net)
    table = candidates if candidates is not None else pipe_costs("pe+di")
    vmax = float(t["main_velocity_max_ms"]) if max_velocity_ms is None else max_velocity_ms

    # targets: service head and PDD full-demand pressure, relaxed where the baseline already fails
    ids = demand_nodes(net)
    target = np.maximum(service_heads(net, t).reindex(ids), float(t["pdd_required_pressure_m"]))
    base_wn = _model(net, sc, events=False)
    base = simulate(base_wn)
    base_min = base.node["pressure"][list(ids)].min()
    relaxed = target.index[base_min < target - 1e-6]
    required = target.copy()
    required[relaxed] = np.maximum(base_min[relaxed] - 1e-3, 0.0)
    tank_drop = {}
    if sc.duration_h >= 48:
        for tk in base_wn.tank_name_list:
            drop = cycle_drop(base.node["head"][tk], int(base_wn.options.time.duration))
            if drop is not None:
                tank_drop[tk] = max(0.0, drop)

    wn = _model(net, sc, events=True)
    if method not in ("construct", "ga"):
        raise ConfigError(f"method must be 'construct' or 'ga', got {method!r}")
    engine = engine or "epanet2.2"
    pop_size = pop_size or (8 if method == "construct" else 40)
    generations = generations or (3 if method == "construct" else 40)
    if method == "construct":
        result = _construct(sc, net, wn, table, required, base, tank_drop, t, vmax, action, surrogate, seed,
                            pop_size, generations, time_limit_s, engine, storage, progress, max_evaluations)
        return _finish(sc, net, name, result, required, relaxed, pipes, rerun)
    sel, own = _pool(net, wn, pipes)
    res = simulate(wn)
    if sel == "auto":
        sel = auto_candidates(wn, res, required, n=n_auto, pool=own)
        log.info("design %s: %d automatic candidate pipes", sc.name, len(sel))
    if pumps == "auto":
        pumps = busy_pumps(wn, res)
    if storage == "auto":
        storage = dry_tanks(wn, res)
    log.info("design %s: pump candidates %s, storage candidates %s", sc.name, pumps, storage)
    offered = bool(pumps) or bool(storage)
    try:
        result = _design(wn, table, required, sel, action, vmax, t, tank_drop, seed, pop_size, generations, kicks,
                         restarts, workers, time_limit_s, pareto, engine, progress, pumps=pumps or None,
                         storage=storage or None, eff=_efficiency(net))
    except InfeasibleDesignError as exc:
        hint = _capacity_hint(wn, res)
        if offered:
            hint = hint.replace("(pumping or storage capacity, which pipe works cannot add)",
                                f"(offered as works: pumps {_ids(pumps)}, storage at {_ids(storage)})")
        raise InfeasibleDesignError(f"{sc.name}: {exc}{hint}", exc.binding) from None
    return _finish(sc, net, name, result, required, relaxed, pipes, rerun)


def _whole_run_events(sc: Any) -> bool:
    return all(ev.window(sc.duration_h) == (0.0, float(sc.duration_h)) for ev in sc.events)


def _construct(sc, net, wn, table, required, base, tank_drop, t, vmax, action, surrogate, seed, pop_size,
               generations, time_limit_s, engine, storage, progress, max_evaluations) -> DesignResult:
    from .construct import design_by_construction

    own = [p for p in net["pipes"]["id"].astype(str) if p in set(wn.pipe_name_list)]
    result = design_by_construction(
        wn, table, required, pool=own, action=action, max_velocity_ms=vmax,
        tank_tolerance=float(t["reservoir_cycle_tolerance"]), tank_baseline_drop_m=tank_drop, baseline=base,
        surrogate=surrogate and _whole_run_events(sc), seed=seed, pop_size=pop_size, generations=generations,
        max_evaluations=max_evaluations, time_limit_s=time_limit_s, engine=engine, pump_efficiency=_efficiency(net),
        storage=storage not in (None, "none", []), progress=progress)
    if not result.feasible:
        b = result.verification["binding"]
        names = ", ".join(f"{n} ({r.min_pressure_m:.1f} m < {r.required_m:.1f} m)" for n, r in b.head(8).iterrows())
        what = f"{len(b)} node(s) below the target" if len(b) else "the tanks or velocities out of bounds"
        pumps_offered = ", ".join(e.element for e in result.space.extras if e.kind == "pump")
        plants_offered = ", ".join(e.element for e in result.space.extras if e.kind == "plant")
        raise InfeasibleDesignError(
            f"{sc.name}: infeasible: the construction along the supply chain of the failing nodes "
            f"({result.settings['candidates']} candidate pipes, pumps {pumps_offered or 'none'}, plant production "
            f"{plants_offered or 'none'}) ends with {what}{' — binding: ' + names if names else ''}"
            f" (tank shortfall {result.verification['tank_shortfall_m']:.2f} m)"
            f"{_tank_reasons(wn, result)}. Add larger sizes or other works (a new source)", b)
    return result


def _tank_reasons(wn: wntr.network.WaterNetworkModel, result: DesignResult) -> str:
    """Each tank short of cycling in the verification, with what fills it and what the design chose there."""
    from .construct import fill_tanks
    from .works import production_valves

    short = result.verification.get("tanks_short_m") or {}
    if not short:
        return ""
    fillers: dict[str, list[tuple[str, str]]] = {}
    for p, tk in fill_tanks(wn).items():
        fillers.setdefault(tk, []).append((f"pump {p}", p))
    for v, (tk, q) in production_valves(wn).items():
        fillers.setdefault(tk, []).append((f"plant production {v} ({q * 86400.0:,.0f} m³/d)", v))
    chosen = {e.element: e.labels[k] for e, k in zip(result.space.extras, result.space.xe(result.x).tolist())}
    largest = {e.element: e.labels[-1] for e in result.space.extras}
    parts = []
    for tk, m in sorted(short.items(), key=lambda kv: -kv[1]):
        fill = []
        for what, el in fillers.get(tk, []):
            state = ("not offered" if el not in chosen else
                     chosen[el] + (" (the largest option)" if chosen[el] == largest[el] else ""))
            fill.append(f"{what}: {state}")
        parts.append(f"tank {tk} falls {m:.2f} m more than allowed over the run"
                     + (f" (filled by {'; '.join(fill)})" if fill else " (no pump or plant fills it)"))
    return " — " + "; ".join(parts)


def _finish(sc, net, name, result, required, relaxed, pipes, rerun) -> ScenarioDesign:
    from ..scenario import run_scenario

    result.settings.update({"scenario": sc.name, "pipes_option": pipes if isinstance(pipes, str) else "list",
                            "relaxed_nodes": len(relaxed)})
    if len(relaxed):
        result.notes.append(f"{len(relaxed)} demand node(s) are below their target head already in the baseline; "
                            "they are held to their baseline minimum instead (the design fixes the scenario, "
                            "not the baseline)")
    out = ScenarioDesign(design=result, scenario=sc, network_name=name, net=net,
                         designed_net=designed_network(net, result), relaxed_nodes=[str(n) for n in relaxed])
    if rerun:
        out.before = run_scenario(sc, net=net, age=False)
        out.after = run_scenario(sc, net=out.designed_net, age=False)
        out.verdict_before = scenario_verdict(out.before, required)
        out.verdict_after = scenario_verdict(out.after, required)
        result.settings["rerun_passes"] = out.verdict_after["passes"]
    return out

