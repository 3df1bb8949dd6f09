"""Applying a scenario's events to a WNTR model that EPANET can run.

Every event becomes plain EPANET input, so the runs use WNTR's
``EpanetSimulator`` with pressure-dependent demand:

- **link status windows** (breaks, outages, ``set_link``, a new main's
  commissioning): links without controls get simple time controls (at the
  window's start set the status, at its end restore it). Links that already
  have controls — the level-controlled duty pumps — cannot: EPANET re-applies a
  simple level control at every step, so a closed pump would reopen. For those
  the level controls are rewritten as rules of priority 1 and the window as a
  rule of priority 5 (``IF SYSTEM TIME >= start AND SYSTEM TIME < end``), which
  wins; pumps that were running restart when the window ends and the level
  rules take over again. (WNTR's ``Pump.add_outage`` adds only the rule, which
  the simple level controls override under EPANET; it works with WNTR's own
  simulator only.)
- **demand windows** (demand changes, fire flows): an extra demand category on
  each node with a pattern as long as the run, zero outside the window.
- **leaks**: the pipe is split in the middle; an orifice node hangs on the split
  node by a short pipe (opened for the window) and carries an EPANET emitter of
  coefficient Cd·A·√(2g), so its outflow is Q = Cd·A·√(2g·p) (emitter exponent 0.5).
- **start hour**: EPANET's PATTERN START is set to it, which shifts every
  pattern (EPANET's START CLOCKTIME does not move patterns; it is left at 0).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import wntr
from wntr.network.base import LinkStatus
from wntr.network.controls import AndCondition, Control, ControlAction, Rule, SimTimeCondition

from .._errors import ScenarioError
from ..hydraulics import G
from ..model import MGL_TO_KGM3, sim_options
from ..schema import Network
from ..topology import isolation_segment, valve_segments
from .spec import (DemandChange, FireFlow, NewSource, PipeBreak, PlantOutage, PumpStationOutage,
                   ReservoirOutOfService, Scenario, SetLink, check_scenario)

__all__ = ["apply_events", "isolation_segment", "plant_outlet", "AppliedEvents", "G_ACC"]

#: Standard gravity (m/s²), :data:`watersupply.hydraulics.G`.
G_ACC = G

log = logging.getLogger(__name__)

#: Priority of the level-control rules rewritten from simple controls, and of the event windows.
LEVEL_RULE_PRIORITY = 1
EVENT_RULE_PRIORITY = 5


@dataclass
class AppliedEvents:
    """What applying the events did, for reports: one record per event, and the elements involved."""

    records: list[dict[str, Any]] = field(default_factory=list)
    leaks: dict[int, str] = field(default_factory=dict)          # event index -> orifice node
    fires: dict[int, str] = field(default_factory=dict)          # event index -> node
    new_sources: dict[int, tuple[str, str]] = field(default_factory=dict)  # event index -> (node, main)
    closed_links: dict[int, list[str]] = field(default_factory=dict)
    isolated_nodes: dict[int, list[str]] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        cols = ["type", "target", "start_h", "end_h", "detail"]
        df = pd.DataFrame(self.records, columns=["event", *cols])
        return df.set_index("event")


# ----------------------------------------------------------------------------- topology helpers

def _link_ends(wn: wntr.network.WaterNetworkModel) -> dict[str, tuple[str, str]]:
    return {name: (link.start_node_name, link.end_node_name) for name, link in wn.links()}


def plant_outlet(wn: wntr.network.WaterNetworkModel, plant: str) -> tuple[list[str], list[str]]:
    """Pumps fed by `plant` through pipes alone, or (without pumps) the links leaving it.

    Returns
    -------
    (pumps, links)
        One of the two lists is empty.
    """
    ends = _link_ends(wn)
    by_node: dict[str, list[str]] = defaultdict(list)
    for name, (a, b) in ends.items():
        by_node[a].append(name)
        by_node[b].append(name)
    pumps: set[str] = set()
    seen, stack = {plant}, [plant]
    tanks = set(wn.tank_name_list) | set(wn.reservoir_name_list)
    while stack:
        node = stack.pop()
        for name in by_node[node]:
            link = wn.get_link(name)
            if link.link_type == "Pump":
                pumps.add(name)
                continue
            for nxt in ends[name]:
                if nxt not in seen and nxt not in tanks:
                    seen.add(nxt)
                    stack.append(nxt)
    if pumps:
        return sorted(pumps), []
    return [], sorted(by_node[plant])


# ----------------------------------------------------------------------------- status windows

@dataclass
class _Window:
    start_s: int
    end_s: int | None     # None = to the end of the run
    status: str           # "OPEN" | "CLOSED"
    event: int


def _controls_on(wn: wntr.network.WaterNetworkModel, link: str) -> list[tuple[str, Any]]:
    out = []
    for name, ctl in wn.controls():
        for act in ctl.actions():
            obj, _attr = act.target()
            if getattr(obj, "name", None) == link:
                out.append((name, ctl))
                break
    return out


def _merge(windows: list[_Window], link: str, sc: Scenario) -> list[_Window]:
    ws = sorted(windows, key=lambda w: (w.start_s, w.event))
    merged: list[_Window] = []
    for w in ws:
        if merged:
            last = merged[-1]
            last_end = math.inf if last.end_s is None else last.end_s
            if w.start_s <= last_end:
                if w.status != last.status:
                    raise ScenarioError(f"{sc.source}: events[{last.event}] and events[{w.event}] set link "
                                        f"{link!r} to {last.status} and {w.status} at overlapping times; "
                                        "make their windows disjoint")
                if w.end_s is None or (last.end_s is not None and w.end_s > last.end_s):
                    last.end_s = w.end_s
                continue
        merged.append(_Window(w.start_s, w.end_s, w.status, w.event))
    return merged


def _status(s: str) -> LinkStatus:
    return LinkStatus.Open if s == "OPEN" else LinkStatus.Closed


def _initial_status(link: Any) -> str:
    return "CLOSED" if link.initial_status == LinkStatus.Closed else "OPEN"


def _apply_windows(wn: wntr.network.WaterNetworkModel, plan: dict[str, list[_Window]], sc: Scenario) -> None:
    for link_name in sorted(plan):
        link = wn.get_link(link_name)
        windows = _merge(plan[link_name], link_name, sc)
        original = _initial_status(link)
        existing = _controls_on(wn, link_name)
        if not existing:
            for k, w in enumerate(windows):
                if w.start_s <= 0:
                    link.initial_status = _status(w.status)
                else:
                    wn.add_control(f"{link_name}__ev{w.event}_{k}_set",
                                   Control(SimTimeCondition(wn, "=", w.start_s), ControlAction(link, "status",
                                                                                               _status(w.status))))
                if w.end_s is not None and w.end_s < wn.options.time.duration:
                    wn.add_control(f"{link_name}__ev{w.event}_{k}_end",
                                   Control(SimTimeCondition(wn, "=", w.end_s),
                                           ControlAction(link, "status", _status(original))))
            continue
        # link with controls (a level-controlled pump): controls -> low-priority rules, windows -> high priority
        top = LEVEL_RULE_PRIORITY
        for name, ctl in existing:
            if not isinstance(ctl, Control):  # a rule already (Control subclasses Rule)
                top = max(top, int(ctl.priority))
                continue
            wn.remove_control(name)
            rule_name = "_".join(str(name).split())  # EPANET rule labels cannot hold spaces (INP controls: 'control 1')
            while rule_name != name and rule_name in wn.control_name_list:
                rule_name += "_"
            wn.add_control(rule_name, Rule(ctl.condition, list(ctl._then_actions), list(ctl._else_actions) or None,
                                           priority=LEVEL_RULE_PRIORITY, name=rule_name))
        prio = max(EVENT_RULE_PRIORITY, top + 1)
        for k, w in enumerate(windows):
            if w.start_s <= 0:
                link.initial_status = _status(w.status)
            cond = SimTimeCondition(wn, ">=", max(w.start_s, 0))
            if w.end_s is not None:
                cond = AndCondition(cond, SimTimeCondition(wn, "<", w.end_s))
            rname = f"{link_name}__ev{w.event}_{k}"
            wn.add_control(rname, Rule(cond, [ControlAction(link, "status", _status(w.status))], priority=prio,
                                       name=rname))
            if (w.status == "CLOSED" and original == "OPEN" and w.end_s is not None
                    and w.end_s < wn.options.time.duration):
                # power back: the pump restarts; its level rules stop it again when the tank is full
                wn.add_control(f"{rname}_restart", Control(SimTimeCondition(wn, "=", w.end_s),
                                                           ControlAction(link, "status", LinkStatus.Open)))


# ----------------------------------------------------------------------------- demand windows

class _Patterns:
    """Run-long patterns: a base pattern (or constant) times a 0/1 window mask; cached by (base, window).

    EPANET reads pattern slot ``(t + PATTERN START) // step`` at simulation time t, so
    slot k holds the base pattern's slot k and is masked by the window at time
    ``k·step − PATTERN START``.
    """

    def __init__(self, wn: wntr.network.WaterNetworkModel) -> None:
        self.wn = wn
        t = wn.options.time
        self.step = int(t.pattern_timestep)
        self.start = int(t.pattern_start)
        self.n = int(math.ceil((t.duration + self.start) / self.step)) + 2
        self.cache: dict[tuple[str | None, int, int], str] = {}

    def windowed(self, base: str | None, start_s: int, end_s: int | None) -> str:
        end = end_s if end_s is not None else (self.n + 1) * self.step
        key = (base, start_s, end)
        if key in self.cache:
            return self.cache[key]
        slots = np.arange(self.n) * self.step
        sim = slots - self.start
        mask = ((sim >= start_s) & (sim < end)).astype(float)
        pat = self.wn.get_pattern(base) if base is not None and base in self.wn.pattern_name_list else None
        if pat is None or len(pat.multipliers) == 0:
            vals = mask
        else:
            m = np.asarray(pat.multipliers, dtype=float)
            vals = m[(slots // self.step) % len(m)] * mask
        name = f"SCN{len(self.cache) + 1}"
        while name in self.wn.pattern_name_list:
            name += "_"
        self.wn.add_pattern(name, [round(float(v), 6) for v in vals])
        self.cache[key] = name
        return name


def _set_start(wn: wntr.network.WaterNetworkModel, start_h: float, sc: Scenario) -> None:
    """Start the run at hour `start_h` of the day: EPANET's PATTERN START shifts every pattern.

    (EPANET's START CLOCKTIME only labels the clock for time-of-day controls; it
    does not move the patterns, so it is left at 0.)
    """
    step = wn.options.time.pattern_timestep
    shift_s = start_h * 3600.0
    if abs(shift_s / step - round(shift_s / step)) > 1e-9:
        raise ScenarioError(f"{sc.where('start')}: start {start_h:g} h is not a multiple of the pattern time step "
                            f"({step / 3600:g} h); give a whole number of steps")
    wn.options.time.pattern_start = int(round(shift_s))


def _targets(net: Network, ev: DemandChange) -> list[str]:
    nodes = net["nodes"]
    dem = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0)
    j = nodes[(nodes["kind"] == "junction")]
    if ev.node is not None:
        return [ev.node]
    if ev.settlement is not None:
        sel = j[j["settlement_id"].astype(str) == ev.settlement]
    elif ev.zone is not None:
        sel = j[j["zone"].astype(str) == ev.zone]
    else:
        sel = j
    return [str(n) for n in sel.loc[dem.reindex(sel.index) > 0, "id"]]


def _scale_demand(wn: wntr.network.WaterNetworkModel, nodes: Iterable[str], m: float, pats: _Patterns,
                  start_s: int, end_s: int | None, whole: bool) -> int:
    n = 0
    for nid in nodes:
        j = wn.get_node(nid)
        if whole:
            for d in j.demand_timeseries_list:
                if d.base_value:
                    d.base_value = d.base_value * m
                    n += 1
            continue
        entries = [(d.base_value, d.pattern_name) for d in j.demand_timeseries_list]
        for base, pat in entries:
            if base:
                j.add_demand(base * (m - 1.0), pats.windowed(pat, start_s, end_s), category="scenario")
                n += 1
    return n


# ----------------------------------------------------------------------------- the events

def _seconds(h: float) -> int:
    return int(round(h * 3600.0))


def _station_pumps(net: Network, station: str) -> list[str]:
    pumps = net.get("pumps")
    return sorted(str(p) for p in pumps.loc[pumps["station_id"].astype(str) == station, "id"])


def _new_source(wn: wntr.network.WaterNetworkModel, net: Network, ev: NewSource, opts: dict[str, float]
                ) -> tuple[str, str, tuple[float, float]]:
    x, y = ev.x, ev.y
    crs = net["nodes"].crs
    if ev.crs is not None:
        from pyproj import CRS, Transformer

        try:
            src = CRS.from_user_input(ev.crs)
        except Exception as exc:
            raise ScenarioError(f"new source {ev.id!r}: crs {ev.crs!r} is not a valid CRS ({exc}); give e.g. "
                                "'EPSG:4326' or 'EPSG:4545'") from None
        if crs is not None and src != crs:
            x, y = Transformer.from_crs(src, crs, always_xy=True).transform(x, y)
    to = wn.get_node(ev.connect_to)
    cx, cy = to.coordinates if to.coordinates is not None else (x, y)
    length = ev.length_m if ev.length_m is not None else max(math.hypot(cx - x, cy - y), 1.0)
    if ev.kind == "plant":
        wn.add_reservoir(ev.id, base_head=ev.head_m if ev.head_m is not None else ev.elevation_m,
                         coordinates=(round(x, 3), round(y, 3)))
        wn.get_node(ev.id).initial_quality = opts["plant_chlorine_mgL"] * MGL_TO_KGM3
    else:
        init = ev.max_level_m if ev.init_level_m is None else ev.init_level_m
        wn.add_tank(ev.id, elevation=ev.elevation_m, init_level=init, min_level=ev.min_level_m,
                    max_level=ev.max_level_m, diameter=ev.diameter_m, coordinates=(round(x, 3), round(y, 3)))
        wn.get_node(ev.id).initial_quality = opts["tank_initial_chlorine_mgL"] * MGL_TO_KGM3
    main = f"{ev.id}-M"
    wn.add_pipe(main, ev.id, ev.connect_to, length=float(length), diameter=ev.diameter_mm / 1000.0,
                roughness=ev.roughness_c, minor_loss=0.0, initial_status="OPEN")
    return ev.id, main, (x, y)


def _leak(wn: wntr.network.WaterNetworkModel, ev: PipeBreak, i: int) -> tuple[str, str]:
    pipe = ev.pipe
    split, orifice = f"{pipe}__leak{i}", f"{pipe}__orifice{i}"
    wntr.morph.split_pipe(wn, pipe, f"{pipe}__B{i}", split, split_at_point=0.5, return_copy=False)
    j = wn.get_node(split)
    wn.add_junction(orifice, base_demand=0.0, elevation=j.elevation, coordinates=j.coordinates)
    wn.add_pipe(f"{orifice}_pipe", split, orifice, length=0.1, diameter=1.0, roughness=150.0, minor_loss=0.0,
                initial_status="CLOSED")
    # orifice equation Q = Cd·A·sqrt(2 g p)  ->  EPANET emitter Q = K p^0.5 with K = Cd·A·sqrt(2 g)
    wn.get_node(orifice).emitter_coefficient = ev.discharge_coeff * ev.leak_area_m2 * math.sqrt(2.0 * G_ACC)
    return orifice, f"{orifice}_pipe"


def _apply(wn: wntr.network.WaterNetworkModel, net: Network, scenario: Scenario) -> AppliedEvents:
    check_scenario(scenario, net)
    sc = scenario
    t = wn.options.time
    t.duration = _seconds(sc.duration_h)
    _set_start(wn, sc.start, sc)
    opts = sim_options(net, duration_h=sc.duration_h)
    pats = _Patterns(wn)
    plan: dict[str, list[_Window]] = defaultdict(list)
    log_ = AppliedEvents()
    valves = net.get("valves")
    pumps_layer = net.get("pumps")
    # valve segments of the model as built (before leaks split pipes), labelled once
    breaks = any(isinstance(ev, PipeBreak) and ev.leak_area_m2 is None for ev in sc.events)
    segments = valve_segments(wn, valves) if breaks and valves is not None and len(valves) else None

    def window(link: str, ev: Any, status: str, i: int) -> None:
        a, b = ev.window(sc.duration_h)
        plan[link].append(_Window(_seconds(a), None if ev.for_h is None else _seconds(b), status, i))

    for i, ev in enumerate(sc.events):
        a, b = ev.window(sc.duration_h)
        start_s, end_s = _seconds(a), (None if ev.for_h is None else _seconds(b))
        rec = dict(event=i, type=ev.type, target="", start_h=a, end_h=b, detail="")
        if isinstance(ev, PipeBreak):
            rec["target"] = ev.pipe
            if ev.leak_area_m2 is not None:
                orifice, opipe = _leak(wn, ev, i)
                window(opipe, ev, "OPEN", i)
                log_.leaks[i] = orifice
                k = ev.discharge_coeff * ev.leak_area_m2 * math.sqrt(2 * G_ACC)
                rec["detail"] = (f"leak {ev.leak_area_m2:g} m² (Cd {ev.discharge_coeff:g}) at the pipe's middle: "
                                 f"emitter K = {k:.4g} m³/s/m^0.5")
            else:
                links, nodes = isolation_segment(wn, ev.pipe, valves, segments=segments)
                for link in links:
                    window(link, ev, "CLOSED", i)
                log_.closed_links[i] = links
                log_.isolated_nodes[i] = nodes
                rec["detail"] = (f"valve segment closed: {len(links)} link(s) "
                                 f"({', '.join(links[:6])}{', ...' if len(links) > 6 else ''})")
        elif isinstance(ev, PumpStationOutage):
            rec["target"] = ev.station
            pumps = _station_pumps(net, ev.station)
            for p in pumps:
                window(p, ev, "CLOSED", i)
            log_.closed_links[i] = pumps
            rec["detail"] = f"pumps stopped: {', '.join(pumps)}"
        elif isinstance(ev, PlantOutage):
            plants = [ev.plant] if ev.plant else sorted(str(n) for n in net["nodes"].loc[
                net["nodes"]["kind"] == "plant", "id"])
            rec["target"] = ",".join(plants)
            closed = []
            for plant in plants:
                pumps, links = plant_outlet(wn, plant)
                closed += pumps + links
            for link in closed:
                window(link, ev, "CLOSED", i)
            log_.closed_links[i] = closed
            rec["detail"] = f"plant outlet closed: {', '.join(closed)}"
        elif isinstance(ev, ReservoirOutOfService):
            rec["target"] = ev.reservoir
            links = sorted(wn.get_links_for_node(ev.reservoir))
            fillers = []
            if pumps_layer is not None and "control_node" in pumps_layer:
                fillers = sorted(str(p) for p in pumps_layer.loc[pumps_layer["control_node"].astype(str)
                                                                  == ev.reservoir, "id"])
            for link in links + fillers:
                window(link, ev, "CLOSED", i)
            log_.closed_links[i] = links + fillers
            rec["detail"] = (f"links closed: {', '.join(links)}"
                             + (f"; pumps it controls stopped: {', '.join(fillers)}" if fillers else ""))
        elif isinstance(ev, DemandChange):
            whole = start_s == 0 and end_s is None
            if ev.multiplier is not None:
                if ev.multiplier == 1.0:
                    warnings.warn(f"{sc.where(f'events[{i}].multiplier')}: a multiplier of 1 changes nothing",
                                  stacklevel=3)
                nodes = _targets(net, ev)
                rec["target"] = ev.settlement or ev.zone or ev.node or "all"
                n = _scale_demand(wn, nodes, ev.multiplier, pats, start_s, end_s, whole)
                rec["detail"] = f"demand × {ev.multiplier:g} at {len(nodes)} node(s) ({n} demand entries)"
            else:
                rec["target"] = ev.node
                pat = ev.pattern if whole else pats.windowed(ev.pattern, start_s, end_s)
                wn.get_node(ev.node).add_demand(ev.add_m3d / 86400.0, pat, category="scenario")
                rec["detail"] = f"+{ev.add_m3d:g} m³/d (pattern {ev.pattern or 'constant'})"
        elif isinstance(ev, FireFlow):
            rec["target"] = ev.node
            wn.get_node(ev.node).add_demand(ev.flow_ls / 1000.0, pats.windowed(None, start_s, end_s),
                                            category="fire")
            log_.fires[i] = ev.node
            rec["detail"] = f"fire flow {ev.flow_ls:g} L/s"
        elif isinstance(ev, NewSource):
            node, main, _xy = _new_source(wn, net, ev, opts)
            rec["target"] = node
            log_.new_sources[i] = (node, main)
            if start_s > 0 or end_s is not None:
                wn.get_link(main).initial_status = LinkStatus.Closed
                window(main, ev, "OPEN", i)
            length = wn.get_link(main).length
            rec["detail"] = (f"new {ev.kind} {node} joined to {ev.connect_to} by {main} "
                             f"(DN{ev.diameter_mm:g}, {length:,.0f} m)")
        elif isinstance(ev, SetLink):
            rec["target"] = ev.link
            window(ev.link, ev, ev.status, i)
            rec["detail"] = f"{ev.link} {ev.status}"
        log_.records.append(rec)
    for i, ev in enumerate(sc.events):
        if isinstance(ev, SetLink) and _initial_status(wn.get_link(ev.link)) == ev.status \
                and not _controls_on(wn, ev.link) and all(w.event == i for w in plan[ev.link]):
            warnings.warn(f"{sc.where(f'events[{i}].status')}: link {ev.link!r} is {ev.status} already and has "
                          "no controls or other events: the event changes nothing", stacklevel=3)
    _apply_windows(wn, plan, sc)
    return log_


def apply_events(wn: wntr.network.WaterNetworkModel, net: Network, scenario: Scenario
                 ) -> wntr.network.WaterNetworkModel:
    """Apply a scenario's events to `wn` (built from `net` by :func:`watersupply.model.to_wntr`).

    The model is modified in place and returned: run duration and start hour,
    status windows, extra demands, leaks and new sources (see the module
    docstring for how each becomes EPANET input).

    Parameters
    ----------
    wn
        A fresh model of `net`.
    net
        The network's layers (element ids are checked against them).
    scenario
        A validated :class:`~watersupply.scenario.Scenario`.

    Raises
    ------
    ScenarioError
        An element the scenario names is not in the network, or two events set
        one link to different states at the same time.

    Examples
    --------
    >>> from watersupply.io import get_path, read_network
    >>> from watersupply.model import to_wntr
    >>> from watersupply.scenario import load_scenario, SCENARIOS_DIR
    >>> net = read_network(get_path("tonghui"))
    >>> sc = load_scenario(SCENARIOS_DIR / "ps3_power_cut.yaml")
    >>> wn = apply_events(to_wntr(net, duration_h=sc.duration_h), net, sc)
    >>> "PS3-P1__ev0_0" in wn.control_name_list
    True
    """
    _apply(wn, net, scenario)
    return wn
