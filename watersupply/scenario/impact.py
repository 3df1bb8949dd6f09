"""Running a scenario and measuring its impact against the baseline.

:func:`run_scenario` builds a fresh WNTR model of the network, applies the
events (:func:`~watersupply.scenario.apply_events`), solves it with EPANET
under pressure-dependent demand and compares it with the baseline run of the
same network, start hour and duration.

Definitions (all from the hourly results; a person is *without water* in an
hour when their demand node's pressure is below the PDD minimum pressure,
``pdd_minimum_pressure_m`` = 1 m, as in :func:`watersupply.metrics.without_water`):

person-hours without water
    Σ over the hourly samples of the people without water × the step (1 h).
time to recovery
    Hours from the end of the last event until the settlement is back for the
    rest of the run: every one of its demand nodes has water (where the
    baseline has) and a pressure within :data:`RECOVERY_TOLERANCE_M` (1 m) of the
    baseline's at the same hour, or at least its service head (after an outage
    the reservoirs may cycle out of phase with the baseline for days while
    service is normal). 0 when the settlement is back as soon as the events
    end; NaN when it is not back by the end of the run, or when an event lasts
    to the end of the run.
storage autonomy
    For outage-type events (pipe break, pump-station, plant, reservoir outage):
    hours from the start of the earliest outage until someone in the settlement
    first loses water (who had water in the baseline at that hour). NaN when
    nobody does within the run (reported as "> N h", N = hours left in the run).
downstream
    The settlement has a demand node whose every path from a plant passes
    through a link the outage-type events close (pipes both ways, pumps one
    way; reservoirs are not sources here, so "downstream" = fed through the
    closed element).
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import wntr
from shapely.geometry import LineString, Point

from .. import metrics
from .._errors import ScenarioError
from ..model import to_wntr
from ..schema import Network
from ..simulation import SimulationResult, run_simulation, unbalanced_hours, unbalanced_steps
from ..standards import thresholds
from ..topology import link_table, reachable, supply_graph
from .events import AppliedEvents, _apply
from .spec import OUTAGE_TYPES, NewSource, Scenario, load_scenario, scenario_network

__all__ = [
    "ScenarioRun",
    "run_scenario",
    "scenario_settlement_table",
    "downstream_settlements",
    "RECOVERY_TOLERANCE_M",
    "DIFF_COLUMNS",
]

log = logging.getLogger(__name__)

#: Pressure within this many metres of the baseline counts as recovered (assumed).
RECOVERY_TOLERANCE_M = 1.0

#: Settlement figures compared with the baseline in ``diff.csv``.
DIFF_COLUMNS = ("demand_served_pct", "unserved_m3", "min_pressure_m", "mean_pressure_m", "pressure_compliance",
                "hours_below_service", "hours_without_water", "people_without_water_max",
                "person_hours_without_water", "min_chlorine_mgL", "max_age_h")


@dataclass
class ScenarioRun:
    """A scenario's run, its comparison with the baseline, and the files written (if any).

    Attributes
    ----------
    scenario : Scenario
    net : dict
        The network's layers, with the scenario's new sources and mains added.
    network_name : str
        Short name of the network (the output folder).
    result, baseline : SimulationResult
        The scenario's and the baseline's results (same hours).
    settlements : DataFrame
        One row per settlement (see :func:`scenario_settlement_table`).
    diff : DataFrame
        Per settlement, scenario − baseline for :data:`DIFF_COLUMNS` (``delta_<figure>``).
    nodes, pipes : DataFrame
        Node and pipe summaries with deltas against the baseline.
    people_without_water : DataFrame
        Hours × settlements: people without water.
    events : DataFrame
        One row per event: type, target, start/end hour and what was done.
    tanks, fires, leaks : DataFrame
        Reservoir levels, fire-flow checks and leak outflows.
    stations, sources : DataFrame
        Pumping per station (volume, energy, hours, with deltas) and outflow of
        each plant (fixed-head source), new ones included.
    """

    scenario: Scenario
    net: Network
    network_name: str
    result: SimulationResult
    baseline: SimulationResult
    settlements: pd.DataFrame
    diff: pd.DataFrame
    nodes: pd.DataFrame
    pipes: pd.DataFrame
    people_without_water: pd.DataFrame
    events: pd.DataFrame
    tanks: pd.DataFrame
    fires: pd.DataFrame
    leaks: pd.DataFrame
    stations: pd.DataFrame = field(default_factory=pd.DataFrame)
    sources: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.scenario.name

    def headline(self) -> dict[str, float]:
        """Whole-system figures: person-hours and peak people without water, demand served (%; NaN where
        EPANET did not balance, see :attr:`unbalanced_hours`) and the number of steps that did not balance."""
        st = self.settlements
        pw = self.people_without_water.sum(axis=1) if len(self.people_without_water.columns) else pd.Series(0.0)
        exp = float(self.result.expected_demand.reindex(columns=metrics.demand_nodes(self.net)).sum().sum())
        got = float(self.result.demand.reindex(columns=metrics.demand_nodes(self.net)).sum().sum())
        unbalanced = self.unbalanced_hours
        return {
            "person_hours_without_water": float(st["person_hours_without_water"].sum()),
            "people_without_water_max": float(pw.max()) if len(pw) else 0.0,
            "settlements_affected": int((st["person_hours_without_water"] > 0).sum()),
            # at hours EPANET did not balance, delivered demand is not a result (576 % was printed once):
            # no figure then, and the hours say why (:func:`watersupply.report.served_text`)
            "demand_served_pct": 100.0 * got / exp if exp > 0 and not unbalanced else float("nan"),
            "unbalanced_steps": float(unbalanced_steps(self.result)),
        }

    @property
    def unbalanced_hours(self) -> str:
        """Hours (ranges) at which EPANET could not balance this run's hydraulics; ``""`` if none."""
        return unbalanced_hours(self.result)


# ----------------------------------------------------------------------------- topology

def downstream_settlements(net: Network, links: list[str], *, wn: wntr.network.WaterNetworkModel | None = None
                           ) -> list[str]:
    """Settlements with a demand node cut off from every plant when `links` are closed.

    The topology rules of :mod:`watersupply.topology` (pumps, check-valve pipes and
    PRV/PSV/FCV one way; initially closed links out); reservoirs (tanks) are not
    sources, so a settlement fed by a tank that a closed pump station fills is
    downstream of that station.

    Examples
    --------
    >>> from watersupply.io import get_path, read_network
    >>> net = read_network(get_path("tonghui"))
    >>> downstream_settlements(net, ["PS3-P1", "PS3-P2"])
    ['V2', 'V5']
    """
    wn = wn if wn is not None else to_wntr(net)
    reach = reachable(supply_graph(link_table(wn), nodes=wn.node_name_list, closed=links), wn.reservoir_name_list)
    nodes = net["nodes"].set_index("id")
    ids = metrics.demand_nodes(net)
    cut = [n for n in ids if n not in reach]
    if "settlement_id" not in nodes:
        return []
    sid = nodes.loc[cut, "settlement_id"].dropna().astype(str)
    return sorted(set(sid))


# ----------------------------------------------------------------------------- settlement figures

def _members(net: Network) -> dict[str, pd.Index]:
    nodes = net["nodes"].set_index("id")
    ids = metrics.demand_nodes(net)
    st = net.get("settlements")
    out: dict[str, pd.Index] = {}
    if st is None or "settlement_id" not in nodes:
        return out
    sid = nodes.loc[ids, "settlement_id"].astype(str)
    for s in st["id"].astype(str):
        out[s] = sid.index[sid == s]
    return out


def _first(mask: pd.Series) -> float:
    hit = mask[mask]
    return float(hit.index[0]) if len(hit) else math.nan


def _settlement_table(net: Network, res: SimulationResult, base: SimulationResult, sc: Scenario,
                      t: dict[str, float], downstream: set[str], people: pd.DataFrame) -> pd.DataFrame:
    table = metrics.settlement_summary(res, net, t)
    if not len(table):
        return table
    members = _members(net)
    hours = res.hours
    step = float(np.median(np.diff(hours))) if len(hours) > 1 else 1.0
    sh = metrics.service_heads(net, t)
    ww_s = metrics.without_water(res, net, t)
    ww_b = metrics.without_water(base, net, t)
    t0 = sc.outage_start_h()
    t_end = sc.end_h()
    starts = [e.at_h for e in sc.events]
    ev_start = min(starts) if starts else None
    ev_stop = t_end if t_end is not None else float(hours.max())
    extra = defaultdict(dict)
    for s, ids in members.items():
        if not len(ids):
            continue
        ps, pb = res.pressure[ids], base.pressure[ids]
        pw = people[s] if s in people else pd.Series(0.0, index=hours)
        rec = extra[s]
        rec["people_without_water_max"] = float(pw.max())
        rec["person_hours_without_water"] = float(pw.sum() * step)
        rec["hours_without_water"] = float((pw > 0).sum() * step)
        short = (res.expected_demand[ids] - res.demand[ids]).clip(lower=0.0).to_numpy().sum()
        rec["unserved_m3"] = float(short * step * 3600.0)
        if ev_start is not None:
            win = (hours >= ev_start) & (hours <= ev_stop)
            exp = res.expected_demand.loc[win, ids].to_numpy().sum()
            got = res.demand.loc[win, ids].to_numpy().sum()
            rec["demand_served_event_pct"] = 100.0 * got / exp if exp > 0 else math.nan
        else:
            rec["demand_served_event_pct"] = math.nan
        has_water = ~ww_s[ids] | ww_b[ids]
        good = has_water & ((ps >= pb - RECOVERY_TOLERANCE_M) | ps.ge(sh.reindex(ids), axis=1))
        good_all = good.all(axis=1)
        if t_end is None:
            # an event lasts to the end of the run: no recovery time; "recovered" = normal at the end
            rec["recovery_h"], rec["recovered"] = math.nan, bool(good_all.iloc[-1])
        else:
            after = good_all[hours >= t_end]
            bad = after.index[~after.to_numpy()]
            if not len(bad):
                rec["recovery_h"], rec["recovered"] = 0.0, True
            elif bool(after.iloc[-1]):
                rec["recovery_h"], rec["recovered"] = float(bad.max() + step - t_end), True
            else:
                rec["recovery_h"], rec["recovered"] = math.nan, False
        if t0 is not None:
            lost = (ww_s[ids] & ~ww_b[ids]).any(axis=1)
            first = _first(lost[hours >= t0])
            rec["autonomy_h"] = first - t0 if not math.isnan(first) else math.nan
        else:
            rec["autonomy_h"] = math.nan
        rec["downstream"] = s in downstream
    add = pd.DataFrame.from_dict(extra, orient="index")
    out = table.join(add, how="left")
    out.index.name = "id"
    return out


def _diff(st: pd.DataFrame, base_st: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in DIFF_COLUMNS if c in st.columns and c in base_st.columns]
    d = st[cols].astype(float) - base_st.reindex(st.index)[cols].astype(float)
    d.columns = [f"delta_{c}" for c in cols]
    lead = st[[c for c in ("name_zh", "name_en", "kind", "population") if c in st.columns]]
    tail = st[[c for c in ("downstream", "autonomy_h", "recovery_h", "recovered") if c in st.columns]]
    out = pd.concat([lead, d, tail], axis=1)
    out.index.name = "id"
    return out


def _node_table(net: Network, res: SimulationResult, base: SimulationResult, t: dict[str, float]) -> pd.DataFrame:
    ns = metrics.node_summary(res, net, t)
    nb = metrics.node_summary(base, net, t)
    for c in ("min_pressure_m", "mean_pressure_m", "demand_served_pct", "hours_below_service", "min_chlorine_mgL",
              "max_age_h"):
        if c in ns and c in nb:
            ns[f"delta_{c}"] = ns[c] - nb[c].reindex(ns.index)
    ww = metrics.without_water(res, net, t)
    hours = res.hours
    step = float(np.median(np.diff(hours))) if len(hours) > 1 else 1.0
    ns["hours_without_water"] = (ww.sum() * step).reindex(ns.index)
    pw = metrics.people_without_water(res, net, t, by="node")
    ns["person_hours_without_water"] = (pw.sum() * step).reindex(ns.index)
    return ns


def _pipe_table(net: Network, res: SimulationResult, base: SimulationResult) -> pd.DataFrame:
    ps = metrics.pipe_summary(res, net)
    pb = metrics.pipe_summary(base, net)
    for c in ("mean_flow_ls", "max_velocity_ms", "hours_closed"):
        ps[f"delta_{c}"] = ps[c] - pb[c].reindex(ps.index)
    return ps


def _tank_table(wn: wntr.network.WaterNetworkModel, res: SimulationResult, base: SimulationResult,
                sc: Scenario) -> pd.DataFrame:
    rows = []
    t0 = sc.outage_start_h()
    t_ref = t0 if t0 is not None else (min(e.at_h for e in sc.events) if sc.events else 0.0)
    hours = res.hours
    for name in wn.tank_name_list:
        tank = wn.get_node(name)
        if name not in res.tank_level:
            continue
        lv = res.tank_level[name]
        lb = base.tank_level[name] if name in base.tank_level else pd.Series(np.nan, index=hours)
        area = math.pi * tank.diameter ** 2 / 4.0
        at_ref = float(lv.iloc[int(np.argmin(np.abs(hours - t_ref)))])
        empty = lv <= tank.min_level + 0.01
        first_empty = _first(empty[hours >= t_ref])
        rows.append(dict(id=name, min_level_m=tank.min_level, max_level_m=tank.max_level,
                         level_at_event_m=at_ref, usable_volume_at_event_m3=max(at_ref - tank.min_level, 0.0) * area,
                         lowest_level_m=float(lv.min()), lowest_level_baseline_m=float(lb.min()),
                         max_drop_vs_baseline_m=float((lb - lv).max()),
                         hours_empty=float(empty.sum()),
                         time_to_empty_h=first_empty - t_ref if not math.isnan(first_empty) else math.nan))
    return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()


def _station_table(net: Network, res: SimulationResult, base: SimulationResult, t: dict[str, float]
                   ) -> pd.DataFrame:
    pumps = net.get("pumps")
    if pumps is None or not len(pumps):
        return pd.DataFrame()
    cols = ["volume_m3", "energy_kwh", "hours_running"]
    es = metrics.pump_energy(res, net, t).groupby("station_id")[cols].agg(
        {"volume_m3": "sum", "energy_kwh": "sum", "hours_running": "max"})
    eb = metrics.pump_energy(base, net, t).groupby("station_id")[cols].agg(
        {"volume_m3": "sum", "energy_kwh": "sum", "hours_running": "max"})
    for c in cols:
        es[f"delta_{c}"] = es[c] - eb[c].reindex(es.index)
    es.index.name = "station"
    return es


def _source_table(wn: wntr.network.WaterNetworkModel, res: SimulationResult, base: SimulationResult
                  ) -> pd.DataFrame:
    rows = []
    for name in wn.reservoir_name_list:
        out = -res.demand[name] if name in res.demand else pd.Series(np.nan)
        outb = -base.demand[name] if name in base.demand else None
        rows.append(dict(id=name, mean_outflow_m3d=float(out.iloc[:-1].mean() * 86400.0),
                         max_outflow_ls=float(out.max() * 1000.0),
                         mean_outflow_baseline_m3d=float(outb.iloc[:-1].mean() * 86400.0) if outb is not None
                         else np.nan))
    return pd.DataFrame(rows).set_index("id") if rows else pd.DataFrame()


def _fire_table(applied: AppliedEvents, net: Network, res: SimulationResult, sc: Scenario,
                t: dict[str, float]) -> pd.DataFrame:
    rows = []
    nodes = net["nodes"].set_index("id")
    members = _members(net)
    for i, node in applied.fires.items():
        ev = sc.events[i]
        a, b = ev.window(sc.duration_h)
        win = (res.hours >= a) & (res.hours < b)
        p = res.pressure.loc[win, node]
        exp = res.expected_demand.loc[win, node]
        got = res.demand.loc[win, node]
        ratio = (got / exp.where(exp > 0)).fillna(1.0).clip(upper=1.0)
        delivered = ev.flow_ls * ratio
        s = nodes.loc[node, "settlement_id"] if "settlement_id" in nodes else None
        s = None if s is None or (isinstance(s, float) and math.isnan(s)) else str(s)
        sp = res.pressure.loc[win, members[s]].min().min() if s in members and len(members[s]) else math.nan
        need = float(t["hydrant_residual_head_m"])
        rows.append(dict(event=i, node=node, settlement=s, start_h=a, end_h=b, flow_ls=ev.flow_ls,
                         delivered_min_ls=float(delivered.min()), delivered_mean_ls=float(delivered.mean()),
                         min_residual_pressure_m=float(p.min()), required_residual_m=need,
                         passed=bool(p.min() >= need), settlement_min_pressure_m=float(sp)))
    return pd.DataFrame(rows).set_index("event") if rows else pd.DataFrame()


def _leak_table(applied: AppliedEvents, res: SimulationResult, sc: Scenario) -> pd.DataFrame:
    rows = []
    step = float(np.median(np.diff(res.hours))) if len(res.hours) > 1 else 1.0
    for i, orifice in applied.leaks.items():
        ev = sc.events[i]
        q = res.demand[orifice].clip(lower=0.0)
        rows.append(dict(event=i, pipe=ev.pipe, leak_area_m2=ev.leak_area_m2, discharge_coeff=ev.discharge_coeff,
                         max_flow_ls=float(q.max() * 1000), mean_flow_in_event_ls=float(
                             q[(res.hours >= ev.at_h) & (res.hours < ev.window(sc.duration_h)[1])].mean() * 1000),
                         volume_m3=float(q.to_numpy()[:-1].sum() * step * 3600)))
    return pd.DataFrame(rows).set_index("event") if rows else pd.DataFrame()


def _with_new_sources(net: Network, wn: wntr.network.WaterNetworkModel, applied: AppliedEvents,
                      sc: Scenario) -> Network:
    if not applied.new_sources:
        return net
    out = dict(net)
    nodes, pipes = net["nodes"], net["pipes"]
    fac = net.get("facilities")
    new_nodes, new_pipes, new_fac = [], [], []
    for i, (node, main) in applied.new_sources.items():
        ev: NewSource = sc.events[i]
        n = wn.get_node(node)
        link = wn.get_link(main)
        x, y = n.coordinates
        to = wn.get_node(ev.connect_to).coordinates
        kind = "plant" if ev.kind == "plant" else "reservoir"
        new_nodes.append(dict(id=node, kind=kind, elevation_m=ev.elevation_m, zone=f"new:{node}",
                              settlement_id=None, base_demand_m3d=0.0, pattern=None, population=0,
                              demand_category="none", head_m=ev.head_m, geometry=Point(x, y)))
        new_pipes.append({"id": main, "from_node": node, "to_node": ev.connect_to, "class": "main",
                          "diameter_mm": ev.diameter_mm, "material": "DI", "roughness_c": ev.roughness_c,
                          "length_m": link.length, "zone": f"new:{node}", "status": "OPEN",
                          "geometry": LineString([(x, y), tuple(to)])})
        new_fac.append(dict(id=node, kind=kind, name_zh=ev.name_zh or node, name_en=ev.name_en or node,
                            node_id=node, zone=f"new:{node}", geometry=Point(x, y)))
    out["nodes"] = gpd.GeoDataFrame(pd.concat([nodes, gpd.GeoDataFrame(new_nodes, crs=nodes.crs)],
                                              ignore_index=True), crs=nodes.crs)
    out["pipes"] = gpd.GeoDataFrame(pd.concat([pipes, gpd.GeoDataFrame(new_pipes, crs=pipes.crs)],
                                              ignore_index=True), crs=pipes.crs)
    if fac is not None:
        out["facilities"] = gpd.GeoDataFrame(pd.concat([fac, gpd.GeoDataFrame(new_fac, crs=fac.crs)],
                                                       ignore_index=True), crs=fac.crs)
    return out


# ----------------------------------------------------------------------------- run

def _as_result(baseline: Any) -> SimulationResult | None:
    if baseline is None:
        return None
    res = getattr(baseline, "result", baseline)
    if not isinstance(res, SimulationResult):
        raise TypeError(f"'baseline' should be a SimulationResult, BaselineRun or ScenarioRun, got "
                        f"{type(baseline).__name__}")
    return res


class _EpanetWarnings(logging.Handler):
    """Collects the warnings WNTR logs from EPANET (e.g. "system hydraulically unbalanced")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("EPANET warning"):
            self.messages.append(msg)


def _solve(net: Network, sc: Scenario, *, workdir: str | os.PathLike | None, age: bool,
           warm_state: dict[str, dict[str, float]] | None = None,
           ) -> tuple[SimulationResult, AppliedEvents, wntr.network.WaterNetworkModel]:
    wn = to_wntr(net, duration_h=sc.duration_h)
    applied = _apply(wn, net, sc)
    handler = _EpanetWarnings()
    wlog = logging.getLogger("wntr.epanet.toolkit")
    wlog.addHandler(handler)
    try:
        res = run_simulation(net, wn=wn, age=age, workdir=workdir, duration_h=sc.duration_h,
                             warm_state=warm_state, steady=warm_state is None and not sc.events)
    finally:
        wlog.removeHandler(handler)
    for msg in dict.fromkeys(handler.messages):
        res.warnings.append(f"{msg} (the results at that time are approximate)")
    res.options["start_h"] = float(sc.start)
    return res, applied, wn


def baseline_for(scenario: Scenario, net: Network, *, workdir: str | os.PathLike | None = None,
                 age: bool = True) -> SimulationResult:
    """The baseline a scenario is compared with: the same network, start hour and duration, no events."""
    empty = scenario.model_copy(update={"events": []})
    res, _, _ = _solve(net, empty, workdir=workdir, age=age)
    return res


def run_scenario(scenario: Scenario | str | os.PathLike, *, net: Network | None = None, baseline: Any = None,
                 workdir: str | os.PathLike | None = None, age: bool = True,
                 t: dict[str, float] | None = None) -> ScenarioRun:
    """Run a scenario with pressure-dependent demand and compare it with the baseline.

    Parameters
    ----------
    scenario
        A :class:`Scenario` or the path of a scenario file.
    net
        The network; default: the scenario's ``network`` (or the bundled Tonghui model).
    baseline
        The baseline to compare with (a ``SimulationResult``, ``BaselineRun`` or
        ``ScenarioRun`` of the same network, start hour and duration); computed
        when not given.
    workdir
        Parent folder for EPANET's scratch files (each run gets its own temporary folder).
    age
        Also compute water age (a second EPANET run).
    t
        Thresholds (:func:`watersupply.standards.thresholds`).

    Returns
    -------
    ScenarioRun

    Raises
    ------
    ScenarioError
        The scenario names unknown elements, or the baseline does not match.
    HydraulicError
        EPANET could not solve the scenario.

    Examples
    --------
    >>> from watersupply.scenario import SCENARIOS_DIR
    >>> run = run_scenario(SCENARIOS_DIR / "ps3_power_cut.yaml")   # doctest: +SKIP
    >>> run.settlements.loc["V2", "autonomy_h"]                      # doctest: +SKIP
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    t = t or thresholds()
    net, name = scenario_network(sc, net=net)
    base = _as_result(baseline)
    if base is None:
        base = baseline_for(sc, net, workdir=workdir, age=age)
    # quality: a scenario with events starts from the baseline's settled daily cycle; one without is the baseline
    warm = base.quality_state if sc.events else None
    res, applied, wn = _solve(net, sc, workdir=workdir, age=age, warm_state=warm)
    if baseline is not None:
        hours_ok = len(base.hours) == len(res.hours) and np.allclose(base.hours, res.hours)
        start_b = float(base.options.get("start_h", 0.0))
        if not hours_ok or start_b != float(sc.start):
            raise ScenarioError(f"{sc.source}: the baseline covers hours {base.hours.min():g}–{base.hours.max():g} "
                                f"from {start_b:g}:00, the scenario {res.hours.min():g}–{res.hours.max():g} from "
                                f"{sc.start:g}:00; pass a baseline of the same duration and start, or none")
        missing = set(metrics.demand_nodes(net)) - set(base.pressure.columns)
        if missing:
            raise ScenarioError(f"{sc.source}: the baseline has no results for node(s) "
                                f"{', '.join(sorted(missing)[:5])}: it is of another network; pass the right one")
    out_net = _with_new_sources(net, wn, applied, sc)
    closing = [link for i, links in applied.closed_links.items()
               if sc.events[i].type in OUTAGE_TYPES or getattr(sc.events[i], "status", "") == "CLOSED"
               for link in links]
    downstream = set(downstream_settlements(net, closing, wn=wn)) if closing else set()
    people = metrics.people_without_water(res, out_net, t)
    st = _settlement_table(out_net, res, base, sc, t, downstream, people)
    people_b = metrics.people_without_water(base, out_net, t)
    st_b = _settlement_table(out_net, base, base, sc.model_copy(update={"events": []}), t, set(), people_b)
    run = ScenarioRun(
        scenario=sc, net=out_net, network_name=name, result=res, baseline=base, settlements=st,
        diff=_diff(st, st_b), nodes=_node_table(out_net, res, base, t), pipes=_pipe_table(out_net, res, base),
        people_without_water=people, events=applied.table(), tanks=_tank_table(wn, res, base, sc),
        fires=_fire_table(applied, out_net, res, sc, t), leaks=_leak_table(applied, res, sc),
        stations=_station_table(out_net, res, base, t), sources=_source_table(wn, res, base),
        warnings=list(res.warnings))
    log.info("scenario %s: %s", sc.name, run.headline())
    return run


def scenario_settlement_table(run: ScenarioRun) -> pd.DataFrame:
    """Per settlement: the scenario's service figures and their change from the baseline.

    Columns: name, kind, population; demand served (whole run and during the
    events, %); minimum and mean pressure; service-head compliance and hours
    below service head; people without water (peak), hours and person-hours
    without water; time to recovery (h) and whether it recovered; storage
    autonomy (h); whether it is downstream of a closed element; chlorine and
    age; and ``delta_<figure>`` against the baseline.
    """
    st = run.settlements.copy()
    deltas = run.diff[[c for c in run.diff.columns if c.startswith("delta_")]]
    return st.join(deltas)
