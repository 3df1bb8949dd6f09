"""The 同网·同价·同质 audit: same network, same price, same quality, per village and community.

The promise of the integrated urban-rural supply is that every village gets what
the city gets: water from the same network (同网), at the same price (同价), of
the same quality (同质). :func:`audit` checks it for each settlement of a network
against the Chinese standards held in :mod:`watersupply.standards`, for the
baseline or for any scenario's :class:`~watersupply.simulation.SimulationResult`.

Four dimensions, each with a verdict (pass / warn / fail), the figures behind it
and the rule it rests on:

同网 ``network``
    Every demand node of the settlement has a directed path (pipes, pumps,
    valves) from a plant of the unified network (the plant of largest capacity
    and every plant connected to it); no stand-alone source — a plant node not
    connected to that network, or a reservoir it cannot fill: an own well or
    spring — lies in the settlement's polygon or zone or feeds its nodes. Which
    plant, pump stations and reservoirs feed it, and in what share, comes from
    EPANET TRACE runs (one quality-only run per source, on hydraulics solved
    once). Fail: a node not connected, or a stand-alone source. Warn: less than
    ``network_plant_share_min`` of its delivered water traced to the network's
    plants (water of the initial conditions not washed out).
同质 ``quality``
    Free chlorine at the taps >= ``tap_chlorine_min_mgL`` (GB 5749-2022) over
    :func:`~watersupply.simulation.quality_window`: share of demand nodes and of
    node-hours compliant; water age (max, 95th percentile, demand-weighted
    mean; nodes whose water is as old as the run are "not converged"); the
    plant dose the settlement needs (:func:`required_plant_dose`). Fail: fewer
    than ``chlorine_node_share_min`` of its nodes compliant. Warn: some
    node-hours below the limit, a 95th-percentile age above
    ``water_age_warn_h``, or water older than the run at some nodes.
服务压力 ``pressure``
    Service head by the rule that applies (GB 50013-2018 §3.0.10 with the
    settlement's storeys for communities, the rural rule for villages); the
    pressure compliance rate (share of demand-node-hours at or above it,
    CJ/T 316-2009 §6.2 asks >= 97 %), hours below service head, people
    without water (pressure below the PDD minimum). Static head = the highest
    hydraulic grade of the sources bounding the settlement's own pressure zone
    (full reservoir: bottom + max level; a plant's head; a PRV's outlet grade)
    minus node elevation; where the zone is fed only by pumps, the maximum
    simulated pressure stands in for it. Fail: compliance below
    ``pressure_compliance_min``. Warn: some node-hours below service head, or a
    village static head above ``rural_max_static_head_m``.
同价 ``price``
    Cost to serve a m³: pumping energy along the supply chain (each pump
    station's kWh/m³ from :func:`watersupply.metrics.pump_energy`, weighted by
    the traced share of the settlement's water it lifted) at
    ``electricity_tariff_yuan_kwh``; plus ``other_cost_yuan_m3`` (treatment,
    O&M, depreciation); plus distribution O&M: the km of pipe serving the
    settlement × ``distribution_om_yuan_km_year`` / its annual volume. Annual
    volume = design-day demand × 365 × ``average_to_peak_day_ratio``. Against
    the uniform tariff ``water_tariff_yuan_m3``: cross-subsidy (¥/year) =
    (cost − tariff) × annual volume. Fail: a settlement tariff (column
    ``tariff_yuan_m3``) different from the uniform one, or cost recovery
    (tariff / cost) below ``cost_recovery_min``. Warn: cost above the tariff.

Score: pass 100, warn 50, fail 0 per dimension; the settlement's score is the
mean of the four (0–100) and its overall verdict the worst of the four.

Industrial nodes (``demand_category == "industrial"``, the food park in 思南村)
are left out of a settlement's figures by default: the promise is to residents.

Examples
--------
>>> from watersupply.io import get_path, read_network
>>> from watersupply.simulation import run_simulation
>>> net = read_network(get_path("tonghui"))
>>> res = run_simulation(net, duration_h=48)  # doctest: +SKIP
>>> aud = audit(net, res)  # doctest: +SKIP
>>> aud.table.loc["V3", ["network_verdict", "quality_verdict", "pressure_verdict", "price_verdict"]]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from ._errors import ConfigError, NetworkDataError
from .schema import Network
from .simulation import SimulationResult, quality_window
from .standards import STANDARDS, Thresholds, service_head_m, thresholds

__all__ = [
    "DIMENSIONS",
    "VERDICT_POINTS",
    "AuditResult",
    "audit",
    "audit_scenario",
    "check_settlements",
    "load_config",
    "audit_thresholds",
    "supply_graph",
    "network_sources",
    "supply_chains",
    "trace_shares",
    "required_plant_dose",
    "compare_audits",
    "audit_layer",
    "audit_report",
    "write_audit",
]

log = logging.getLogger(__name__)

#: The audited dimensions: key → (中文, English).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "network": ("同网", "same network"),
    "quality": ("同质", "same quality (chlorine, water age)"),
    "pressure": ("服务压力", "service pressure"),
    "price": ("同价", "same price (cost to serve)"),
}
#: Points per verdict; a settlement's score is the mean over :data:`DIMENSIONS`.
VERDICT_POINTS: dict[str, float] = {"pass": 100.0, "warn": 50.0, "fail": 0.0}
VERDICT_ZH = {"pass": "通过", "warn": "警告", "fail": "不通过"}
_RANK = {"fail": 0, "warn": 1, "pass": 2}
_DIRECTIONAL_VALVES = ("PRV", "PSV", "FCV")


@dataclass
class AuditResult:
    """The audit of one run: one row per settlement, the traced shares and the context.

    Attributes
    ----------
    table : DataFrame
        One row per settlement (index: settlement id): names, figures of every
        dimension, ``<dimension>_verdict`` and ``<dimension>_reason`` columns,
        ``score``, ``verdict`` and ``fixes``.
    shares : DataFrame
        Traced share (0–1) of each settlement's delivered water (rows) that came
        from or passed through each source (columns: plant, reservoir and pump
        discharge node ids) over the quality window.
    sources : DataFrame
        The traced sources: id, kind (plant|reservoir|pump_station|standalone),
        label (station id for pump discharge nodes), name_zh, name_en, kwh_per_m3.
    thresholds : Thresholds
        The thresholds used; ``thresholds.overridden`` lists the overrides.
    label : str
        What was audited (``"baseline"`` or a scenario name).
    notes : list of str
        Caveats and soft problems met on the way.
    dose_mgL : float
        The plant chlorine dose of the run.
    seconds : float
        Wall time of the audit (trace runs included).
    """

    table: pd.DataFrame
    shares: pd.DataFrame
    sources: pd.DataFrame
    thresholds: Thresholds
    label: str = "baseline"
    notes: list[str] = field(default_factory=list)
    dose_mgL: float = float("nan")
    seconds: float = 0.0

    def verdicts(self) -> pd.DataFrame:
        """The verdict columns only (settlement × dimension, plus ``verdict``)."""
        cols = [f"{d}_verdict" for d in DIMENSIONS] + ["verdict"]
        return self.table[cols].rename(columns=lambda c: c.replace("_verdict", ""))


# --------------------------------------------------------------------------------------------
# configuration


def load_config(path: str | os.PathLike) -> dict[str, float]:
    """Read threshold overrides from a YAML file with a ``thresholds:`` mapping.

    Parameters
    ----------
    path
        YAML file, e.g. ``thresholds: {water_tariff_yuan_m3: 3.1}``.

    Returns
    -------
    dict
        Threshold name → value, checked against :data:`watersupply.standards.STANDARDS`.

    Raises
    ------
    ConfigError
        File missing or not YAML, no ``thresholds`` mapping, an unknown key or
        threshold name (with the closest valid names), a non-numeric or negative value.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; give a YAML file with a 'thresholds:' mapping")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{p}: not valid YAML ({first}); write e.g. 'thresholds: {{water_tariff_yuan_m3: 3.1}}'") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with key 'thresholds', got {type(data).__name__}")
    extra = sorted(str(k) for k in data if k != "thresholds")
    if extra:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(map(repr, extra))}; the only key is 'thresholds' "
                          "(a mapping of threshold name to value, see watersupply.standards.STANDARDS)")
    over = data.get("thresholds") or {}
    if not isinstance(over, dict):
        raise ConfigError(f"{p}: 'thresholds' must be a mapping of threshold name to number, got {over!r}")
    try:
        thresholds(over)  # validates names and values
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return {str(k): float(v) for k, v in over.items()}


def audit_thresholds(config: str | os.PathLike | None = None, *, tariff: float | None = None,
                     electricity_tariff: float | None = None,
                     overrides: Mapping[str, float] | None = None) -> Thresholds:
    """Thresholds for an audit: defaults, then a config file, then explicit values.

    Parameters
    ----------
    config
        YAML file with a ``thresholds:`` mapping (see :func:`load_config`).
    tariff
        Uniform water tariff, ¥/m³ (``water_tariff_yuan_m3``).
    electricity_tariff
        Electricity tariff for pumping, ¥/kWh (``electricity_tariff_yuan_kwh``).
    overrides
        Further threshold overrides (applied last).

    Raises
    ------
    ConfigError
        Naming the option or threshold, the value received and what is allowed.
    """
    values: dict[str, float] = dict(load_config(config)) if config is not None else {}
    for name, value, option in (("water_tariff_yuan_m3", tariff, "--tariff"),
                                ("electricity_tariff_yuan_kwh", electricity_tariff, "--electricity-tariff")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{option} ({name}) must be a number >= 0, got {value!r}")
        values[name] = float(value)
    values.update(overrides or {})
    return thresholds(values)


# --------------------------------------------------------------------------------------------
# structure: graph, sources, supply chains


def _s(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v)
    return s if s and s.lower() not in ("nan", "none", "<na>") else None


def supply_graph(net: Network) -> nx.DiGraph:
    """Directed graph of the network: open pipes both ways (CV pipes one way), pumps and
    PRV/PSV/FCV from → to, other control valves both ways.

    Node attribute ``kind`` (layer kind); edge attributes ``id`` and ``kind``
    (pipe|pump|valve) and, for pumps, ``station``.
    """
    g = nx.DiGraph()
    nodes = net["nodes"]
    for nid, kind in zip(nodes["id"].astype(str), nodes["kind"].astype(str)):
        g.add_node(nid, kind=kind)
    pipes = net["pipes"]
    status = pipes["status"].map(lambda v: (_s(v) or "OPEN").upper()) if "status" in pipes \
        else pd.Series("OPEN", index=pipes.index)
    for pid, a, b, st in zip(pipes["id"].astype(str), pipes["from_node"].astype(str),
                             pipes["to_node"].astype(str), status):
        if st == "CLOSED":
            continue
        g.add_edge(a, b, id=pid, kind="pipe")
        if st != "CV":
            g.add_edge(b, a, id=pid, kind="pipe")
    pumps = net.get("pumps")
    if pumps is not None and len(pumps):
        for row in pumps.itertuples(index=False):
            g.add_edge(str(row.from_node), str(row.to_node), id=str(row.id), kind="pump",
                       station=_s(getattr(row, "station_id", None)) or str(row.id))
    valves = net.get("control_valves")
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            a, b = str(row.from_node), str(row.to_node)
            g.add_edge(a, b, id=str(row.id), kind="valve")
            if (_s(getattr(row, "type", None)) or "").upper() not in _DIRECTIONAL_VALVES:
                g.add_edge(b, a, id=str(row.id), kind="valve")
    return g


def network_sources(net: Network, *, graph: nx.DiGraph | None = None) -> tuple[list[str], list[str]]:
    """Split the network's sources into the unified network's plants and stand-alone sources.

    The main plant is the plant node of largest ``capacity_m3d`` (facilities),
    or, lacking capacities, the one whose connected part of the network holds
    the most demand. The unified network's plants are the plant nodes connected
    to it. A stand-alone source is a plant node not connected to it, or a
    reservoir that no unified-network plant can reach (an own well or spring).

    Returns
    -------
    (network_plants, standalone)
        Node ids, in layer order.
    """
    g = graph if graph is not None else supply_graph(net)
    nodes = net["nodes"]
    plants = nodes.loc[nodes["kind"] == "plant", "id"].astype(str).tolist()
    tanks = nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str).tolist()
    if not plants:
        return [], tanks
    und = g.to_undirected(as_view=True)
    dem = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0.0)
    demand = dict(zip(nodes["id"].astype(str), dem))
    cap: dict[str, float] = {}
    fac = net.get("facilities")
    if fac is not None and len(fac) and "capacity_m3d" in fac:
        for nid, c in zip(fac["node_id"].astype(str), pd.to_numeric(fac["capacity_m3d"], errors="coerce")):
            if nid in plants and pd.notna(c):
                cap[nid] = float(c)

    def key(p: str) -> tuple[float, float, int]:
        comp = nx.node_connected_component(und, p)
        return (cap.get(p, 0.0), sum(demand.get(n, 0.0) for n in comp), -plants.index(p))

    main = max(plants, key=key)
    comp = nx.node_connected_component(und, main)
    net_plants = [p for p in plants if p in comp]
    reach: set[str] = set(net_plants)
    for p in net_plants:
        reach |= nx.descendants(g, p)
    standalone = [p for p in plants if p not in comp] + [t for t in tanks if t not in reach]
    return net_plants, standalone


def _pipe_adjacency(net: Network) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = {str(n): set() for n in net["nodes"]["id"]}
    pipes = net["pipes"]
    status = pipes["status"].map(lambda v: (_s(v) or "OPEN").upper()) if "status" in pipes \
        else pd.Series("OPEN", index=pipes.index)
    for a, b, st in zip(pipes["from_node"].astype(str), pipes["to_node"].astype(str), status):
        if st == "CLOSED":
            continue
        adj[a].add(b)
        adj[b].add(a)
    valves = net.get("control_valves")
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            if (_s(getattr(row, "type", None)) or "").upper() not in _DIRECTIONAL_VALVES + ("PBV",):
                adj[str(row.from_node)].add(str(row.to_node))
                adj[str(row.to_node)].add(str(row.from_node))
    return adj


def _feeders(net: Network) -> dict[str, list[tuple[str, str, str, str]]]:
    """to_node → [(kind pump|valve, link id, label (station id or valve type), from_node)]."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    pumps = net.get("pumps")
    if pumps is not None and len(pumps):
        for row in pumps.itertuples(index=False):
            out.setdefault(str(row.to_node), []).append(
                ("pump", str(row.id), _s(getattr(row, "station_id", None)) or str(row.id), str(row.from_node)))
    valves = net.get("control_valves")
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            vt = (_s(getattr(row, "type", None)) or "").upper()
            if vt in _DIRECTIONAL_VALVES + ("PBV",):
                out.setdefault(str(row.to_node), []).append(("valve", str(row.id), vt, str(row.from_node)))
    return out


def _chain_levels(start: Iterable[str], kinds: Mapping[str, str], adj: Mapping[str, set[str]],
                  feeders: Mapping[str, list[tuple[str, str, str, str]]],
                  tank_links: Mapping[str, tuple[set[str], set[str]]] | None = None) -> list[dict[str, list[str]]]:
    """Walk upstream from `start`, one pressure zone (pipe-connected region) per level.

    Each level lists the pump stations (and pumps) and valves feeding the
    region, the reservoirs feeding it and the plants reached; the next level
    starts at the suction side of those pumps/valves and the inflow side of
    those reservoirs. With `tank_links` (from the run's flow directions) a
    reservoir counts only if it delivers into the region and is crossed only
    towards the pipes that fill it; without, every reservoir met counts and is
    crossed in every direction.
    """
    visited: set[str] = set()
    frontier = list(dict.fromkeys(start))
    levels: list[dict[str, list[str]]] = []
    while frontier:
        region: list[str] = []
        lv: dict[str, list[str]] = {"stations": [], "pumps": [], "valves": [], "tanks": [], "plants": []}
        met: list[str] = []
        stack = [n for n in frontier if n not in visited]
        while stack:
            n = stack.pop()
            if n in visited:
                continue
            kind = kinds.get(n, "junction")
            if kind == "reservoir":
                if n not in met:
                    met.append(n)
                continue
            visited.add(n)
            if kind == "plant":
                lv["plants"].append(n)
                continue
            region.append(n)
            stack.extend(sorted(m for m in adj.get(n, ()) if m not in visited))
        rset = set(region) | set(frontier)
        for tk in met:
            if tank_links is None or tk in frontier or tank_links.get(tk, (set(), set()))[0] & rset:
                lv["tanks"].append(tk)
                visited.add(tk)
        nxt: list[str] = []
        for n in region + lv["tanks"]:
            for kind, link, label, frm in feeders.get(n, []):
                if kind == "pump":
                    if label not in lv["stations"]:
                        lv["stations"].append(label)
                    lv["pumps"].append(link)
                else:
                    lv["valves"].append(link)
                nxt.append(frm)
        for tk in lv["tanks"]:
            ins = tank_links[tk][1] if tank_links is not None and tk in tank_links else adj.get(tk, set())
            nxt.extend(sorted(m for m in ins if m not in visited))
        if any(lv.values()):
            levels.append(lv)
        frontier = [n for n in dict.fromkeys(nxt) if n not in visited]
    return levels


def supply_chains(net: Network, members: Mapping[str, Sequence[str]] | None = None, *,
                  result: SimulationResult | None = None) -> dict[str, list[str]]:
    """The supply chain of each settlement, from the source to the settlement.

    Walks upstream from the settlement's demand nodes one pressure zone at a
    time: the zone's reservoir, the pump station filling it, that station's
    source reservoir, … up to the plant. Elements are plant node ids, pump
    station ids, control-valve ids and reservoir ids.

    Parameters
    ----------
    members
        Settlement id → its demand node ids (default: nodes by ``settlement_id``).
    result
        A run whose flow directions tell which pipes fill a reservoir and which
        it feeds; without it every reservoir met counts and is crossed both ways.

    Examples
    --------
    For the Tonghui model, 思南村 (V2) is fed ``['WTP', 'PS1', 'R1', 'PS3', 'R4']``.
    """
    if members is None:
        members = _members(net, include_industrial=False)
    kinds = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["kind"].astype(str)))
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    tl = _tank_links(net, result)
    out: dict[str, list[str]] = {}
    for sid, nodes in members.items():
        levels = _chain_levels(nodes, kinds, adj, feeders, tl)
        chain: list[str] = []
        for lv in reversed(levels):
            for item in lv["plants"] + lv["stations"] + lv["valves"] + lv["tanks"]:
                if item not in chain:
                    chain.append(item)
        out[sid] = chain
    return out


# --------------------------------------------------------------------------------------------
# settlements and their nodes


def _members(net: Network, *, include_industrial: bool) -> dict[str, list[str]]:
    from .metrics import demand_nodes

    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    ids = list(demand_nodes(net))
    st = net.get("settlements")
    out: dict[str, list[str]] = {str(s): [] for s in (st["id"] if st is not None else [])}
    if "settlement_id" not in nodes:
        return out
    sid = nodes["settlement_id"].reindex(ids)
    cat = nodes["demand_category"].reindex(ids) if "demand_category" in nodes else pd.Series("domestic", index=ids)
    for n, s, c in zip(ids, sid, cat):
        s = _s(s)
        if s is None or s not in out:
            continue
        if not include_industrial and _s(c) == "industrial":
            continue
        out[s].append(n)
    return out


def check_settlements(net: Network, t: Mapping[str, float] | None = None) -> None:
    """Check that `net` can be audited: a settlements layer whose rows have kind, population > 0
    and storeys >= 1 (missing storeys get the defaults, with a warning).

    Raises
    ------
    NetworkDataError
        Naming the settlement, the value received and the fix.
    """
    _check_settlements(net, t if t is not None else thresholds())


def _check_settlements(net: Network, t: Mapping[str, float]) -> tuple[gpd.GeoDataFrame, dict[str, int], list[str]]:
    st = net.get("settlements")
    if st is None or not len(st):
        raise NetworkDataError("the network has no 'settlements' layer (village and community polygons with "
                               "id, kind, population); the audit is per settlement — add the layer "
                               "(see watersupply.schema)")
    for col in ("id", "kind", "population"):
        if col not in st.columns:
            raise NetworkDataError(f"layer 'settlements' has no column {col!r}; the audit needs id, kind "
                                   "(village|community) and population")
    notes: list[str] = []
    storeys: dict[str, int] = {}
    missing_storeys = []
    for i, row in enumerate(st.itertuples(index=False)):
        sid = str(row.id)
        name = _s(getattr(row, "name_zh", None)) or _s(getattr(row, "name_en", None)) or sid
        pop = pd.to_numeric(pd.Series([row.population]), errors="coerce").iloc[0]
        if pd.isna(pop) or pop <= 0:
            raise NetworkDataError(f"settlement {sid!r} ({name}) has population {row.population!r}; the audit "
                                   "needs the number of people served (> 0) — fill column 'population' of layer "
                                   "'settlements'")
        kind = _s(row.kind)
        if kind not in ("village", "community"):
            raise NetworkDataError(f"settlement {sid!r} ({name}) has kind {row.kind!r}; use 'village' or "
                                   "'community' (it selects the service-head rule)")
        raw = getattr(row, "storeys", None) if "storeys" in st.columns else None
        n = pd.to_numeric(pd.Series([raw]), errors="coerce").iloc[0]
        if pd.isna(n):
            n = t[f"{kind}_storeys_default"]
            missing_storeys.append(sid)
        if n < 1:
            raise NetworkDataError(f"settlement {sid!r} ({name}) has storeys {raw!r}; give a whole number >= 1")
        storeys[sid] = int(round(float(n)))
    if missing_storeys:
        msg = (f"settlement(s) {', '.join(missing_storeys)} have no storeys; used the defaults "
               f"(community {t['community_storeys_default']:g}, village {t['village_storeys_default']:g}) — "
               "fill column 'storeys' of layer 'settlements'")
        warnings.warn(msg, stacklevel=3)
        notes.append(msg)
    return st, storeys, notes


# --------------------------------------------------------------------------------------------
# tracing


def _weights(result: SimulationResult, nodes: Sequence[str], hours: pd.Index) -> pd.DataFrame:
    w = result.demand.reindex(index=hours, columns=list(nodes)).fillna(0.0).clip(lower=0.0)
    if float(w.to_numpy().sum()) <= 0:
        w = result.expected_demand.reindex(index=hours, columns=list(nodes)).fillna(0.0).clip(lower=0.0)
    if float(w.to_numpy().sum()) <= 0:
        w = pd.DataFrame(1.0, index=hours, columns=list(nodes))
    return w


# EPANET toolkit codes (EPANET 2.2 API)
_EN_INITQUAL, _EN_SOURCEQUAL, _EN_SOURCETYPE, _EN_PRESSURE, _EN_QUALITY = 4, 5, 7, 11, 12
_EN_SETPOINT = 2


def trace_shares(net: Network, result: SimulationResult, sources: Sequence[str], *,
                 members: Mapping[str, Sequence[str]] | None = None, wn: Any = None, initial: str = "chain",
                 qstep_s: float = 600.0,
                 workdir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Share of each settlement's delivered water that came from (or passed) each source.

    The hydraulics are solved once with EPANET; then, on those saved
    hydraulics, one quality-only run per source tracks a conservative
    constituent held at 100 % where the water leaves the source (a set-point
    source: EPANET's TRACE). The share is the demand-weighted mean
    concentration / 100 over the settlement's demand nodes and the
    :func:`~watersupply.simulation.quality_window`.

    EPANET's own TRACE mode starts every node at 0 %. In a cascade of storage
    reservoirs (each ~10 h of demand) the initial water is not washed out in a
    72 h run, so the deepest villages would look as if only part of their water
    came through their own chain (Tonghui's 村七 V7: 46 % from the plant). With
    ``initial="chain"`` the initial water is instead taken to have come the way
    the supply chain runs (100 % at nodes and reservoirs whose chain contains
    the source, as :func:`supply_chains` walks it with the run's flow
    directions); ``initial="zero"`` reproduces EPANET's TRACE.

    Parameters
    ----------
    sources
        Node ids to trace (plants, reservoirs, pump discharge nodes, ...).
    members
        Settlement id → demand node ids (default: by ``settlement_id``, no industry).
    wn
        The model `result` was computed with (e.g. a scenario's); built from `net`
        with ``result.options`` when not given. It is not modified.
    initial
        ``"chain"`` or ``"zero"`` (see above).
    qstep_s
        Water-quality time step of the trace runs (s), at least the model's own
        and at most its hydraulic step; shares need less time resolution than
        chlorine, and the step sets the run time.

    Returns
    -------
    (shares, notes)
        Settlement × source DataFrame of shares in 0–1 (NaN for a settlement
        that received no water over the window), and caveats (e.g. when the
        re-solved hydraulics differ from the result's).
    """
    import wntr
    from wntr.epanet import toolkit

    from .model import to_wntr
    from .simulation import _quiet_stdout

    if initial not in ("chain", "zero"):
        raise ConfigError(f"initial must be 'chain' or 'zero', got {initial!r}")
    members = members if members is not None else _members(net, include_industrial=False)
    base_wn = wn if wn is not None else to_wntr(net, **_sim_options_of(result))
    missing = [s for s in sources if s not in base_wn.node_name_list]
    if missing:
        raise NetworkDataError(f"trace source(s) {', '.join(map(repr, missing))} are not nodes of the model")
    w = base_wn  # switched to a conservative constituent for the INP, restored below
    q, r = w.options.quality, w.options.reaction
    saved = dict(parameter=q.parameter, chemical_name=q.chemical_name, inpfile_units=q.inpfile_units,
                 tolerance=q.tolerance, bulk=r.bulk_coeff, wall=r.wall_coeff,
                 pipes=[(p.bulk_coeff, p.wall_coeff) for _, p in w.pipes()],
                 tanks=[tk.bulk_coeff for _, tk in w.tanks()],
                 init=[nd.initial_quality for _, nd in w.nodes()])
    win = quality_window(result)
    want = {float(h) for h in win}
    notes: list[str] = []
    shares = pd.DataFrame(0.0, index=pd.Index(list(members), name="settlement"),
                          columns=pd.Index(list(sources), name="source"))
    weights = {s: _weights(result, m, win) for s, m in members.items() if len(m)}
    delivered = {s: float(result.demand.reindex(index=win, columns=list(m)).clip(lower=0.0).to_numpy().sum())
                 for s, m in members.items() if len(m)}
    read = sorted({n for m in members.values() for n in m})
    init = _chain_initial(net, result, sources) if initial == "chain" else {}
    in_model = set(w.node_name_list)
    check = [c for c in result.pressure.columns if c in in_model]
    check = check[:: max(1, len(check) // 300)]
    with tempfile.TemporaryDirectory(prefix="watersupply-audit-", dir=workdir) as tmp:
        inp = str(Path(tmp) / "trace.inp")
        try:
            q.parameter, q.chemical_name, q.inpfile_units = "CHEMICAL", "Share", "pct"  # not "Trace": a keyword
            q.tolerance = 0.5  # percentage points: segments closer than this merge (speed)
            saved["qstep"] = w.options.time.quality_timestep
            w.options.time.quality_timestep = int(max(saved["qstep"], min(qstep_s, w.options.time.hydraulic_timestep)))
            r.bulk_coeff = r.wall_coeff = 0.0
            for _, pipe in w.pipes():
                pipe.bulk_coeff = pipe.wall_coeff = 0.0
            for _, tank in w.tanks():
                tank.bulk_coeff = 0.0
            for _, node in w.nodes():
                node.initial_quality = 0.0
            wntr.network.write_inpfile(w, inp, units="LPS", version=2.2)
        finally:
            q.parameter, q.chemical_name, q.inpfile_units = saved["parameter"], saved["chemical_name"], saved["inpfile_units"]
            q.tolerance, r.bulk_coeff, r.wall_coeff = saved["tolerance"], saved["bulk"], saved["wall"]
            w.options.time.quality_timestep = saved.get("qstep", w.options.time.quality_timestep)
            for (_, pipe), (kb, kw) in zip(w.pipes(), saved["pipes"]):
                pipe.bulk_coeff, pipe.wall_coeff = kb, kw
            for (_, tank), kb in zip(w.tanks(), saved["tanks"]):
                tank.bulk_coeff = kb
            for (_, node), c0 in zip(w.nodes(), saved["init"]):
                node.initial_quality = c0
        en = toolkit.ENepanet(version=2.2)
        try:
            with _quiet_stdout():
                en.ENopen(inp, str(Path(tmp) / "trace.rpt"), "")
                idx = {n: en.ENgetnodeindex(n) for n in w.node_name_list}
                read_idx = [idx[n] for n in read]
                # hydraulics once, saved for the quality runs; sample pressures to check them
                en.ENopenH()
                en.ENinitH(1)
                p_rows: dict[float, list[float]] = {}
                while True:
                    t_s = en.ENrunH()
                    h = round(t_s / 3600.0, 6)
                    if t_s % 3600 == 0 and h in set(result.pressure.index):
                        p_rows[h] = [en.ENgetnodevalue(idx[c], _EN_PRESSURE) for c in check]
                    if en.ENnextH() <= 0:
                        break
                en.ENcloseH()
                conc: dict[str, pd.DataFrame] = {}
                for src in sources:
                    for n, i in idx.items():
                        en.ENsetnodevalue(i, _EN_INITQUAL, 100.0 if (n == src or src in init.get(n, ())) else 0.0)
                        en.ENsetnodevalue(i, _EN_SOURCEQUAL, 0.0)
                    en.ENsetnodevalue(idx[src], _EN_SOURCETYPE, _EN_SETPOINT)
                    en.ENsetnodevalue(idx[src], _EN_SOURCEQUAL, 100.0)
                    en.ENopenQ()
                    en.ENinitQ(0)
                    rows: dict[float, list[float]] = {}
                    while True:
                        t_s = en.ENrunQ()
                        h = round(t_s / 3600.0, 6)
                        if t_s % 3600 == 0 and h in want:
                            rows[h] = _node_values(en, read_idx, _EN_QUALITY)
                        if en.ENnextQ() <= 0:
                            break
                    en.ENcloseQ()
                    hrs = sorted(rows)
                    conc[src] = pd.DataFrame(np.array([rows[h] for h in hrs], dtype=float).reshape(len(hrs), len(read))
                                             / 100.0, index=pd.Index(hrs, name="time_h"), columns=read)
        except Exception as exc:  # EpanetException and ctypes errors
            from ._errors import HydraulicError

            raise HydraulicError(f"EPANET could not run the audit's trace analyses of {base_wn.name!r}: {exc}") from None
        finally:
            try:
                en.ENclose()
            except Exception:  # already closed or never opened
                pass
    ph = sorted(p_rows)
    p_new = pd.DataFrame(np.array([p_rows[h] for h in ph], dtype=float).reshape(len(ph), len(check)),
                         index=pd.Index(ph), columns=check)
    rows_ = p_new.index.intersection(result.pressure.index)
    diff = float((p_new.loc[rows_] - result.pressure.loc[rows_, check]).abs().max().max()) if len(rows_) else np.inf
    if not diff <= 0.5 or len(rows_) < len(result.pressure.index):
        msg = (f"the hydraulics re-solved for the trace runs differ from the result's (max |Δp| {diff:.2f} m over "
               f"{len(rows_)} of {len(result.pressure.index)} hours): traced shares may be off — pass the model "
               "the result was computed with as wn=")
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    for src, c in conc.items():
        for sid, wt in weights.items():
            cc = c.reindex(index=wt.index, columns=wt.columns).fillna(0.0)
            shares.loc[sid, src] = float((cc * wt).to_numpy().sum() / wt.to_numpy().sum()) \
                if delivered.get(sid, 0.0) > 0 else np.nan
    return shares.clip(lower=0.0, upper=1.0), notes


def _sim_options_of(result: SimulationResult) -> dict[str, float]:
    """The result's simulation options that :func:`watersupply.model.to_wntr` knows."""
    from .model import DEFAULT_OPTIONS

    return {k: v for k, v in (result.options or {}).items() if k in DEFAULT_OPTIONS}


def _node_values(en: Any, indices: Sequence[int], code: int) -> list[float]:
    """One node property for many nodes through the EPANET 2.2 project API (no per-call wrapper)."""
    import ctypes

    func, ph, val = en.ENlib.EN_getnodevalue, en._project, ctypes.c_double()
    ref = ctypes.byref(val)
    out = []
    for i in indices:
        if func(ph, i, code, ref):
            raise RuntimeError(f"EPANET could not read property {code} of node index {i}")
        out.append(val.value)
    return out


def _tank_links(net: Network, result: SimulationResult | None) -> dict[str, tuple[set[str], set[str]]] | None:
    """tank → (neighbours it feeds, neighbours feeding it), by pipe, from the run's flow directions."""
    if result is None:
        return None
    nodes = net["nodes"]
    tanks = set(nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str))
    out: dict[str, tuple[set[str], set[str]]] = {tk: (set(), set()) for tk in tanks}
    pipes = net["pipes"]
    eps = 1e-6
    for pid, a, b in zip(pipes["id"].astype(str), pipes["from_node"].astype(str), pipes["to_node"].astype(str)):
        if (a not in tanks and b not in tanks) or pid not in result.flow:
            continue
        q = result.flow[pid]
        fwd, rev = bool((q > eps).any()), bool((q < -eps).any())
        if a in tanks:   # a → b positive: tank a feeds b
            if fwd:
                out[a][0].add(b)
            if rev:
                out[a][1].add(b)
        if b in tanks:
            if fwd:
                out[b][1].add(a)
            if rev:
                out[b][0].add(a)
    # a reservoir that never filled (or never delivered) in the run — e.g. its pump was out all
    # along — keeps its structural links on that side
    for tk, (feeds, fed_by) in out.items():
        nbrs: set[str] = set()
        for a, b in zip(pipes["from_node"].astype(str), pipes["to_node"].astype(str)):
            if a == tk:
                nbrs.add(b)
            elif b == tk:
                nbrs.add(a)
        if not fed_by:
            fed_by |= nbrs
        if not feeds:
            feeds |= nbrs
    return out


def _chain_initial(net: Network, result: SimulationResult, sources: Sequence[str]) -> dict[str, set[str]]:
    """node → the traced sources its initial water is taken to have come through (its supply chain)."""
    kinds = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["kind"].astype(str)))
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    tl = _tank_links(net, result)
    pump_to = {link: to for to, lst in feeders.items() for kind, link, _, _ in lst if kind == "pump"}
    src = set(sources)
    out: dict[str, set[str]] = {}
    seen: set[str] = set()
    for n in kinds:
        if n in seen or kinds[n] in ("reservoir", "plant"):
            continue
        # the pipe-connected region of n (a pressure zone without its reservoirs)
        region, stack = [], [n]
        while stack:
            x = stack.pop()
            if x in seen or kinds.get(x) in ("reservoir", "plant"):
                continue
            seen.add(x)
            region.append(x)
            stack.extend(adj.get(x, ()))
        levels = _chain_levels([n], kinds, adj, feeders, tl)
        elems = set()
        for lv in levels:
            elems |= set(lv["plants"]) | set(lv["tanks"]) | set(lv["valves"]) | {pump_to[p] for p in lv["pumps"]}
        elems &= src
        for x in region:
            out[x] = elems
    for tk in (k for k, v in kinds.items() if v == "reservoir"):
        ins = tl[tk][1] if tl is not None else adj.get(tk, set())
        elems = set()
        for nb in ins:
            elems |= out.get(nb, set())
        for kind, link, _, frm in feeders.get(tk, []):
            elems |= out.get(frm, set()) | ({pump_to[link]} if link in pump_to else set())
        out[tk] = elems & src
    return out


# --------------------------------------------------------------------------------------------
# quality


def required_plant_dose(min_chlorine_mgL: float | pd.Series, *, dose_mgL: float,
                        target_mgL: float) -> float | pd.Series:
    """Plant chlorine dose at which the worst tap just meets `target_mgL`.

    Chlorine decay in the model is first order (bulk and wall), and mixing and
    transport are linear, so every concentration scales with the plant dose
    when the initial conditions (tank and pipe chlorine) scale with it too:
    required dose = dose × target / min chlorine. With unscaled initial
    conditions the relation holds only where the initial water has been washed
    out (water younger than the run).

    Examples
    --------
    >>> required_plant_dose(0.1, dose_mgL=1.0, target_mgL=0.05)
    0.5
    """
    if isinstance(min_chlorine_mgL, pd.Series):
        m = min_chlorine_mgL.astype(float)
        return (dose_mgL * target_mgL / m.where(m > 0)).fillna(float("inf"))
    m = float(min_chlorine_mgL)
    return dose_mgL * target_mgL / m if m > 0 else float("inf")


# --------------------------------------------------------------------------------------------
# helpers for reasons


def _say(zh: str, en: str) -> str:
    return f"{zh} / {en}"


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100.0 * x:.1f} %"


def _ranges(hours: Iterable[float]) -> str:
    hs = sorted(float(h) for h in hours)
    if not hs:
        return ""
    out, start, prev = [], hs[0], hs[0]
    for h in hs[1:]:
        if h - prev > 1.0 + 1e-6:
            out.append((start, prev))
            start = h
        prev = h
    out.append((start, prev))
    return ", ".join(f"{a:g}" if a == b else f"{a:g}–{b:g}" for a, b in out)


def _worst(*verdicts: str) -> str:
    return min(verdicts, key=lambda v: _RANK[v])


def _names(net: Network) -> dict[str, tuple[str, str]]:
    """id → (name_zh, name_en) for facilities (by id and node id) and settlements."""
    out: dict[str, tuple[str, str]] = {}
    for layer in ("facilities", "settlements"):
        df = net.get(layer)
        if df is None or not len(df):
            continue
        for row in df.itertuples(index=False):
            pair = (_s(getattr(row, "name_zh", None)) or str(row.id), _s(getattr(row, "name_en", None)) or str(row.id))
            out.setdefault(str(row.id), pair)
            nid = _s(getattr(row, "node_id", None))
            if nid is not None:
                out.setdefault(nid, pair)
    return out


# --------------------------------------------------------------------------------------------
# the audit


def audit(net: Network, result: SimulationResult, *, t: Mapping[str, float] | None = None, wn: Any = None,
          trace: bool = True, include_industrial: bool = False, label: str = "baseline",
          workdir: str | os.PathLike | None = None) -> AuditResult:
    """Audit the 同网·同价·同质 promise for every settlement of `net` on a simulation result.

    Parameters
    ----------
    net
        Network layers with a ``settlements`` layer (population > 0 each).
    result
        Any :class:`~watersupply.simulation.SimulationResult` of `net` — the
        baseline or a scenario's — with chlorine (and, for the age figures, age).
    t
        Thresholds (:func:`audit_thresholds`); defaults from :mod:`watersupply.standards`.
    wn
        The WNTR model the result came from (a scenario's modified model); used
        for the trace runs. Built from `net` and ``result.options`` when not given.
    trace
        Run the EPANET TRACE analyses (one quality-only run per source). Without
        them, shares come from the structural supply chain (1 for each element).
    include_industrial
        Count industrial demand nodes (the food park) as part of their settlement.
    label
        What is audited, for the report (``"baseline"``, a scenario name).
    workdir
        Parent folder for EPANET scratch files.

    Returns
    -------
    AuditResult

    Raises
    ------
    NetworkDataError
        No settlements layer, a settlement without population (or kind/storeys
        invalid); a result without chlorine.
    """
    t0 = time.perf_counter()
    if t is None:
        t = thresholds()
    elif not isinstance(t, Thresholds):
        t = thresholds(dict(t))
    if result.chlorine is None:
        raise NetworkDataError("the result has no chlorine results; the 同质 audit needs them — run "
                               "watersupply.simulation.run_simulation (it computes chlorine)")
    st, storeys, notes = _check_settlements(net, t)
    members = _members(net, include_industrial=include_industrial)
    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    kinds = nodes["kind"].astype(str).to_dict()
    graph = supply_graph(net)
    net_plants, standalone = network_sources(net, graph=graph)
    chains = supply_chains(net, members, result=result)
    tl = _tank_links(net, result)
    names = _names(net)
    win = quality_window(result)
    step = float(np.median(np.diff(result.hours.to_numpy(dtype=float)))) if len(result.hours) > 1 else 1.0
    dose = float((result.options or {}).get("plant_chlorine_mgL", np.nan))
    if not np.isfinite(dose) and wn is not None and wn.reservoir_name_list:
        dose = float(wn.get_node(wn.reservoir_name_list[0]).initial_quality) * 1000.0

    # --- sources to trace
    pumps = net.get("pumps")
    discharge: dict[str, str] = {}   # discharge node → station id
    if pumps is not None and len(pumps):
        for row in pumps.itertuples(index=False):
            discharge.setdefault(str(row.to_node), _s(getattr(row, "station_id", None)) or str(row.id))
    tanks = [n for n, k in kinds.items() if k == "reservoir"]
    all_member_nodes = {n for m in members.values() for n in m}
    candidates = list(dict.fromkeys(net_plants + standalone + tanks + list(discharge)))
    reach = {s: (nx.descendants(graph, s) | {s}) for s in candidates}
    sources = [s for s in candidates if reach[s] & all_member_nodes]
    src_kind = {}
    for s in sources:
        src_kind[s] = ("standalone" if s in standalone else "plant" if kinds.get(s) == "plant"
                       else "reservoir" if kinds.get(s) == "reservoir" else "pump_station")
    # energy per discharge node (kWh per m³ lifted)
    from .metrics import pump_energy

    pe = pump_energy(result, net, t)
    kwh_d: dict[str, float] = {}
    if len(pe) and pumps is not None:
        to = pumps.set_index(pumps["id"].astype(str))["to_node"].astype(str)
        g = pe.assign(to_node=to.reindex(pe.index).to_numpy()).groupby("to_node")[["energy_kwh", "volume_m3"]].sum()
        for d, row in g.iterrows():
            kwh_d[str(d)] = float(row["energy_kwh"] / row["volume_m3"]) if row["volume_m3"] > 0 else 0.0
    src_table = pd.DataFrame({
        "kind": [src_kind[s] for s in sources],
        "label": [discharge.get(s, s) for s in sources],
        "name_zh": [names.get(discharge.get(s, s), (s, s))[0] for s in sources],
        "name_en": [names.get(discharge.get(s, s), (s, s))[1] for s in sources],
        "kwh_per_m3": [kwh_d.get(s, 0.0) if s in discharge else 0.0 for s in sources],
    }, index=pd.Index(sources, name="source"))

    # --- shares: structural (1 for every element on the supply chain), then traced
    kinds_adj, kinds_feed = _pipe_adjacency(net), _feeders(net)
    pump_to = {link: to for to, lst in kinds_feed.items() for kind, link, _, _ in lst if kind == "pump"}
    structural = pd.DataFrame(0.0, index=pd.Index(list(members), name="settlement"),
                              columns=pd.Index(sources, name="source"))
    for sid, m in members.items():
        if not m:
            continue
        elems: set[str] = set()
        for lv in _chain_levels(m, kinds, kinds_adj, kinds_feed, tl):
            elems |= set(lv["plants"]) | set(lv["tanks"]) | set(lv["valves"]) | {pump_to[x] for x in lv["pumps"]}
        for s_ in sources:
            if s_ in elems or (s_ in standalone and reach[s_] & set(m)):
                structural.loc[sid, s_] = 1.0
    if trace and sources:
        shares, tnotes = trace_shares(net, result, sources, members=members, wn=wn, workdir=workdir)
        notes += tnotes
        dry = [sid for sid in shares.index if shares.loc[sid].isna().all() and members.get(sid)]
        if dry:
            shares.loc[dry] = structural.loc[dry]
            notes.append(_say(f"{', '.join(dry)} 在评价时段内未获供水:其水源占比按供水链计",
                              f"{', '.join(dry)} received no water over the quality window: their supply shares "
                              "are those of the supply chain (1 for each element on it)"))
    else:
        shares = structural
        if sources:
            notes.append("shares from the structural supply chain (trace=False): 1 for each element on it")

    # --- per-node static head (from the sources bounding each settlement's own zone)
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    top: dict[str, float] = {}
    fac = net.get("facilities")
    if fac is not None and len(fac):
        for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
            top[str(row.node_id)] = float(row.bottom_elev_m) + float(row.max_level_m)
    for nid in (n for n, k in kinds.items() if k == "plant"):
        h = pd.to_numeric(pd.Series([nodes.loc[nid].get("head_m", np.nan)]), errors="coerce").iloc[0]
        top[nid] = float(h) if pd.notna(h) else float(nodes.loc[nid, "elevation_m"])
    valves = net.get("control_valves")
    prv_grade: dict[str, float] = {}
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            if (_s(getattr(row, "type", None)) or "").upper() == "PRV":
                prv_grade[str(row.id)] = float(nodes.loc[str(row.to_node), "elevation_m"]) + float(row.setting)

    # --- per-settlement figures
    sh_all: dict[str, float] = {}
    p = result.pressure
    ww_min = float(t["pdd_minimum_pressure_m"])
    popn = pd.to_numeric(nodes.get("population", pd.Series(0, index=nodes.index)), errors="coerce").fillna(0.0)
    uniform = float(t["water_tariff_yuan_m3"])
    rows = []
    base = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0.0)
    pipe_km = _pipe_km(net, members, include_industrial=include_industrial)
    cl_thr = float(t["tap_chlorine_min_mgL"])
    plant_reach: set[str] = set(net_plants)
    for pl in net_plants:
        plant_reach |= nx.descendants(graph, pl)
    for row in st.itertuples(index=False):
        sid = str(row.id)
        m = members.get(sid, [])
        kind = str(row.kind)
        rec: dict[str, Any] = dict(id=sid, name_zh=_s(getattr(row, "name_zh", None)) or sid,
                                   name_en=_s(getattr(row, "name_en", None)) or sid, kind=kind,
                                   population=int(float(row.population)), storeys=storeys[sid],
                                   demand_nodes=len(m), demand_m3d=float(base.reindex(m).sum()))
        chain = chains.get(sid, [])
        rec["supply_chain"] = " → ".join(chain)
        rec.update(_network_figures(sid, m, row, nodes, graph, plant_reach, standalone, shares, src_kind, t))
        if not m:
            rows.append(_unserved(rec, t))
            continue
        rec.update(_feeding_text(sid, shares, src_table, t))
        # quality
        rec.update(_quality_figures(result, m, win, cl_thr, dose, t))
        # pressure
        sh = service_head_m(kind, storeys[sid], t)
        sh_all[sid] = sh
        levels = _chain_levels(m, kinds, adj, feeders, tl)
        rec.update(_pressure_figures(result, m, sh, step, levels[0] if levels else {}, top, prv_grade, nodes,
                                     popn, ww_min, kind, t))
        # price
        rec.update(_price_figures(sid, m, shares, src_table, pipe_km.get(sid, 0.0), rec["demand_m3d"], row, uniform, t))
        rows.append(rec)
    table = pd.DataFrame(rows).set_index("id")
    table.index.name = "id"
    # verdicts, reasons, fixes
    for sid in table.index:
        rec = table.loc[sid].to_dict()
        if rec.get("demand_nodes", 0) == 0:
            continue
        verdicts = _verdicts(sid, rec, result, members[sid], chains.get(sid, []), net, nodes, kinds, adj, feeders,
                             top, names, t, tl)
        for k, v in verdicts.items():
            table.loc[sid, k] = v
    for d in DIMENSIONS:
        table[f"{d}_verdict"] = table[f"{d}_verdict"].astype(str)
    table["score"] = table[[f"{d}_verdict" for d in DIMENSIONS]].apply(
        lambda r: float(np.mean([VERDICT_POINTS[v] for v in r])), axis=1)
    table["verdict"] = table[[f"{d}_verdict" for d in DIMENSIONS]].apply(lambda r: _worst(*r), axis=1)
    capped = table.get("age_capped_nodes")
    if capped is not None and float(pd.to_numeric(capped, errors="coerce").fillna(0).sum()) > 0:
        notes.append(_say(f"{int(pd.to_numeric(capped).sum())} 个用水节点的水龄达到模拟时长:其真实水龄更长,余氯受初始条件影响",
                          f"{int(pd.to_numeric(capped).sum())} demand nodes hold water as old as the run "
                          f"({float(result.hours.max()):g} h): their true age is longer and their chlorine still "
                          "reflects the initial conditions — extend duration_h to confirm them"))
    if not include_industrial:
        ind = _industrial_nodes(net)
        if ind:
            notes.append(_say(f"工业用水节点({len(ind)} 个)不计入村社区指标",
                              f"{len(ind)} industrial demand nodes (the food park) are left out of the settlements' "
                              "figures: the promise is to residents"))
    notes.append(_say("所需出厂余氯按一级衰减线性换算(初始余氯同比例缩放)",
                      "the required plant dose scales the current dose linearly (first-order decay); it assumes "
                      "the initial tank and pipe chlorine scale with it"))
    cols_first = ["name_zh", "name_en", "kind", "population", "storeys", "demand_nodes", "demand_m3d",
                  "score", "verdict"] + [f"{d}_verdict" for d in DIMENSIONS]
    table = table[cols_first + [c for c in table.columns if c not in cols_first]]
    aud = AuditResult(table=table, shares=shares, sources=src_table, thresholds=t, label=label, notes=notes,
                      dose_mgL=dose, seconds=time.perf_counter() - t0)
    log.info("audit %s: %d settlements, %d traced sources, %.1f s", label, len(table), len(sources), aud.seconds)
    return aud


def audit_scenario(scenario: Any, *, net: Network | None = None, t: Mapping[str, float] | None = None,
                   compare: bool = True, baseline: Any = None, baseline_audit: AuditResult | None = None,
                   workdir: str | os.PathLike | None = None) -> tuple[AuditResult, AuditResult | None, Any]:
    """Run a scenario (:func:`watersupply.scenario.run_scenario`) and audit it, and its baseline.

    Parameters
    ----------
    scenario
        A scenario file path, a shipped scenario's name, or a ``Scenario``.
    net
        The network (default: the scenario's, or the bundled Tonghui model).
    t
        Thresholds (:func:`audit_thresholds`).
    compare
        Also audit the scenario's baseline (same duration and start, no events),
        to report which verdicts dropped and why.
    baseline
        The baseline run to compare with (``SimulationResult`` or ``BaselineRun``
        of the same network, duration and start); simulated when not given.
    baseline_audit
        The baseline's audit, if already computed (skips auditing it again).

    Returns
    -------
    (scenario audit, baseline audit or None, ScenarioRun)

    Raises
    ------
    ScenarioError
        The scenario file is invalid or names unknown elements.
    """
    from .model import to_wntr
    from .scenario import Scenario, apply_events, load_scenario, resolve_scenario, run_scenario, scenario_network

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(resolve_scenario(scenario))
    net0, _ = scenario_network(sc, net=net)
    tt = t if isinstance(t, Thresholds) else thresholds(dict(t or {}))
    _check_settlements(net0, tt)  # bad settlements fail before the runs
    run = run_scenario(sc, net=net0, baseline=baseline, workdir=workdir, t=dict(tt))
    wn = apply_events(to_wntr(net0, duration_h=sc.duration_h), net0, sc)
    aud = audit(run.net, run.result, t=tt, wn=wn, label=sc.name, workdir=workdir)
    base = baseline_audit
    if compare and base is None:
        empty = sc.model_copy(update={"events": []})
        wn_b = apply_events(to_wntr(net0, duration_h=sc.duration_h), net0, empty)
        base = audit(net0, run.baseline, t=tt, wn=wn_b, label="baseline", workdir=workdir)
    return aud, base, run


def _industrial_nodes(net: Network) -> list[str]:
    n = net["nodes"]
    if "demand_category" not in n:
        return []
    return n.loc[n["demand_category"].astype(str) == "industrial", "id"].astype(str).tolist()


def _lengths(pipes: pd.DataFrame) -> pd.Series:
    """Pipe lengths (m): ``length_m`` where given, else the geometry's length."""
    geo = pipes.geometry.length if isinstance(pipes, gpd.GeoDataFrame) else pd.Series(0.0, index=pipes.index)
    if "length_m" not in pipes:
        return geo.astype(float)
    length = pd.to_numeric(pipes["length_m"], errors="coerce")
    return length.where(length > 0, geo).astype(float)


def _pipe_km(net: Network, members: Mapping[str, Sequence[str]], *, include_industrial: bool) -> dict[str, float]:
    """km of pipe serving each settlement.

    A pipe with an end at a node of the settlement (any node with its
    ``settlement_id``) counts for it (half each if its ends are in two
    settlements); a pipe of a zone with no settlement node at either end (a
    trunk main from the zone's reservoir) is split among the zone's
    settlements by design demand; pipes touching industrial nodes and
    transmission mains of zones without settlements are left to the common
    cost (``other_cost_yuan_m3``).
    """
    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    sid = nodes["settlement_id"].map(_s) if "settlement_id" in nodes else pd.Series(None, index=nodes.index)
    ind = set(_industrial_nodes(net)) if not include_industrial else set()
    pipes = net["pipes"]
    length = _lengths(pipes)
    zone_of_node = nodes["zone"].map(_s) if "zone" in nodes else pd.Series(None, index=nodes.index)
    pzone = pipes["zone"].map(_s) if "zone" in pipes else zone_of_node.reindex(pipes["from_node"].astype(str)).to_numpy()
    pzone = pd.Series(list(pzone), index=pipes.index)
    base = pd.to_numeric(nodes.get("base_demand_m3d", 0.0), errors="coerce").fillna(0.0)
    out = {s: 0.0 for s in members}
    zone_settlements: dict[str, dict[str, float]] = {}
    for s, m in members.items():
        for n in m:
            z = zone_of_node.get(n)
            if z is not None:
                zone_settlements.setdefault(z, {}).setdefault(s, 0.0)
                zone_settlements[z][s] += float(base.get(n, 0.0))
    leftover: dict[str, float] = {}
    for a, b, L, z in zip(pipes["from_node"].astype(str), pipes["to_node"].astype(str), length, pzone):
        if a in ind or b in ind:
            continue
        sa, sb = sid.get(a), sid.get(b)
        ends = [s for s in (sa, sb) if s is not None and s in out]
        if ends:
            for s in ends:
                out[s] += float(L) / len(ends) / 1000.0
        elif z is not None:
            leftover[z] = leftover.get(z, 0.0) + float(L) / 1000.0
    for z, km in leftover.items():
        dem = zone_settlements.get(z, {})
        total = sum(dem.values())
        for s, d in dem.items():
            out[s] += km * (d / total if total > 0 else 1.0 / len(dem))
    return out


def _network_figures(sid: str, m: Sequence[str], row: Any, nodes: pd.DataFrame, graph: nx.DiGraph,
                     reach: set[str], standalone: Sequence[str], shares: pd.DataFrame,
                     src_kind: Mapping[str, str], t: Mapping[str, float]) -> dict[str, Any]:
    connected = [n for n in m if n in reach]
    own: list[str] = []
    poly = getattr(row, "geometry", None)
    zone = _s(getattr(row, "zone", None))
    for s in standalone:
        inside = poly is not None and "geometry" in nodes and nodes.loc[s, "geometry"] is not None \
            and poly.covers(nodes.loc[s, "geometry"])
        in_zone = zone is not None and "zone" in nodes and _s(nodes.loc[s, "zone"]) == zone
        feeds = bool((nx.descendants(graph, s) | {s}) & set(m))
        if inside or in_zone or feeds:
            own.append(s)
    plant_share = float(shares.loc[sid, [c for c in shares.columns if src_kind.get(c) == "plant"]].sum()) \
        if sid in shares.index else float("nan")
    own_share = float(shares.loc[sid, [c for c in shares.columns if c in own]].sum()) \
        if sid in shares.index and own else 0.0
    return dict(net_connected_share=len(connected) / len(m) if m else 0.0,
                net_unconnected_nodes=len(m) - len(connected),
                net_standalone_sources=";".join(own),
                net_plant_share=min(plant_share, 1.0),
                net_standalone_share=min(own_share, 1.0),
                net_untraced_share=max(0.0, 1.0 - min(plant_share + own_share, 1.0)) if m else float("nan"))


def _feeding_text(sid: str, shares: pd.DataFrame, src: pd.DataFrame, t: Mapping[str, float]) -> dict[str, str]:
    thr = float(t["supply_share_min"])
    out = {}
    for col, kinds in (("net_plants", ("plant",)), ("net_stations", ("pump_station",)),
                       ("net_reservoirs", ("reservoir",)), ("net_own_sources", ("standalone",))):
        agg: dict[str, float] = {}
        for s in src.index[src["kind"].isin(kinds)]:
            v = float(shares.loc[sid, s]) if sid in shares.index else 0.0
            if v >= thr:
                lab = str(src.loc[s, "label"])
                agg[lab] = agg.get(lab, 0.0) + v
        out[col] = "; ".join(f"{k} {100 * min(v, 1.0):.0f}%" for k, v in agg.items())
    return out


def _served(result: SimulationResult, m: Sequence[str], hours: pd.Index, t: Mapping[str, float]) -> pd.DataFrame:
    """Node-hours with water at the tap: delivered demand > 1 % of the requested demand (or, where
    nothing is requested, pressure at or above the PDD minimum). Chlorine and age at taps without
    water are meaningless (EPANET reports 0 at nodes without flow); they count under pressure."""
    got = result.demand.reindex(index=hours, columns=list(m)).fillna(0.0)
    exp = result.expected_demand.reindex(index=hours, columns=list(m)).fillna(0.0)
    p = result.pressure.reindex(index=hours, columns=list(m))
    return (got > 0.01 * exp).where(exp > 0, p >= float(t["pdd_minimum_pressure_m"]))


def _quality_figures(result: SimulationResult, m: Sequence[str], win: pd.Index, thr: float, dose: float,
                     t: Mapping[str, float]) -> dict[str, Any]:
    served = _served(result, m, win, t)
    cl = result.chlorine.reindex(index=win, columns=list(m)).where(served)
    node_min = cl.min()
    w = _weights(result, m, win)
    has = node_min.notna()
    out: dict[str, Any] = dict(
        cl_min_mgL=float(node_min.min()) if has.any() else np.nan,
        cl_worst_node=str(node_min.idxmin()) if has.any() else "",
        cl_node_share=float((node_min[has] >= thr).mean()) if has.any() else np.nan,
        cl_hour_share=float((cl >= thr).to_numpy().sum() / max(int(served.to_numpy().sum()), 1)),
        cl_mean_mgL=float((cl.fillna(0.0) * w).to_numpy().sum() / w.to_numpy().sum()),
        cl_dry_node_hours=int((~served).to_numpy().sum()),
    )
    out["cl_required_dose_mgL"] = float(required_plant_dose(out["cl_min_mgL"], dose_mgL=dose, target_mgL=thr)) \
        if has.any() else np.nan
    if result.age is not None:
        age = result.age.reindex(index=win, columns=list(m)).where(served)
        end = float(result.hours.max())
        last = result.age.reindex(columns=list(m)).iloc[-1]
        capped = last >= 0.98 * end - 1e-9
        vals = age.to_numpy()[np.isfinite(age.to_numpy())]
        out.update(age_max_h=float(vals.max()) if len(vals) else np.nan,
                   age_p95_h=float(np.percentile(vals, 95)) if len(vals) else np.nan,
                   age_mean_h=float((age.fillna(0.0) * w).to_numpy().sum() / w.to_numpy().sum()),
                   age_capped_nodes=int(capped.sum()),
                   age_capped_demand_share=float(w.loc[:, capped].to_numpy().sum() / w.to_numpy().sum()))
    else:
        out.update(age_max_h=np.nan, age_p95_h=np.nan, age_mean_h=np.nan, age_capped_nodes=0,
                   age_capped_demand_share=np.nan)
    return out


def _pressure_figures(result: SimulationResult, m: Sequence[str], sh: float, step: float,
                      level0: Mapping[str, list[str]], top: Mapping[str, float], prv_grade: Mapping[str, float],
                      nodes: pd.DataFrame, popn: pd.Series, ww_min: float, kind: str,
                      t: Mapping[str, float]) -> dict[str, Any]:
    p = result.pressure.reindex(columns=list(m))
    ok = p.ge(sh)
    below_hours = p.index[(~ok).any(axis=1)]
    grades = [top[x] for x in list(level0.get("tanks", [])) + list(level0.get("plants", [])) if x in top]
    grades += [prv_grade[v] for v in level0.get("valves", []) if v in prv_grade]
    elev = nodes["elevation_m"].reindex(list(m)).astype(float)
    if grades:
        static = max(grades) - elev
        basis = "zone source full (reservoir bottom + max level / plant head / PRV grade)"
    else:
        static = p.max()
        basis = "max simulated pressure (zone fed by pumps only)"
    limit = float(t["rural_max_static_head_m"])
    dry = p.lt(ww_min)
    people = dry.astype(float).mul(popn.reindex(list(m)).fillna(0.0), axis=1).sum(axis=1)
    dry_hours = p.index[dry.any(axis=1)]
    return dict(service_head_m=sh, pressure_compliance=float(ok.to_numpy().mean()),
                hours_below_service=float(len(below_hours) * step),
                below_service_hours=_ranges(below_hours),
                min_pressure_m=float(p.min().min()), min_pressure_node=str(p.min().idxmin()),
                mean_pressure_m=float(p.mean().mean()),
                static_head_max_m=float(static.max()), static_head_basis=basis,
                static_head_nodes_over=int((static > limit).sum()) if kind == "village" else 0,
                people_without_water_max=float(people.max()),
                person_hours_without_water=float(people.sum() * step),
                hours_without_water=float(dry.any(axis=1).sum() * step),
                without_water_hours=_ranges(dry_hours))


def _price_figures(sid: str, m: Sequence[str], shares: pd.DataFrame, src: pd.DataFrame, km: float,
                   demand_m3d: float, row: Any, uniform: float, t: Mapping[str, float]) -> dict[str, Any]:
    stations = src.index[src["kind"] == "pump_station"]
    per = {s: float(shares.loc[sid, s]) * float(src.loc[s, "kwh_per_m3"]) for s in stations} \
        if sid in shares.index else {}
    kwh = float(sum(per.values()))
    by_station: dict[str, float] = {}
    for s_, v in per.items():
        by_station[str(src.loc[s_, "label"])] = by_station.get(str(src.loc[s_, "label"]), 0.0) + v
    costliest = max(by_station, key=lambda k: (by_station[k], k)) if by_station and max(by_station.values()) > 0 else ""
    annual = demand_m3d * 365.0 * float(t["average_to_peak_day_ratio"])
    energy = kwh * float(t["electricity_tariff_yuan_kwh"])
    other = float(t["other_cost_yuan_m3"])
    dist = km * float(t["distribution_om_yuan_km_year"]) / annual if annual > 0 else float("nan")
    cost = energy + other + dist
    local = pd.to_numeric(pd.Series([getattr(row, "tariff_yuan_m3", np.nan)]), errors="coerce").iloc[0]
    tariff = float(local) if pd.notna(local) else uniform
    return dict(kwh_per_m3=kwh, costliest_station=costliest, energy_yuan_m3=energy, other_yuan_m3=other, pipe_km=km,
                distribution_yuan_m3=dist, cost_yuan_m3=cost, tariff_yuan_m3=tariff,
                uniform_tariff_yuan_m3=uniform,
                cost_recovery=tariff / cost if cost > 0 else float("inf"), annual_volume_m3=annual,
                cross_subsidy_yuan_year=(cost - tariff) * annual)


def _unserved(rec: dict[str, Any], t: Mapping[str, float]) -> dict[str, Any]:
    why = _say("网内没有该居民点的用水节点", "no demand node of the network lies in this settlement")
    for d in DIMENSIONS:
        rec[f"{d}_verdict"] = "fail"
        rec[f"{d}_reason"] = why
    rec["fixes"] = _say("将该居民点接入统一管网", "connect the settlement to the unified network")
    return rec


def _verdicts(sid: str, r: Mapping[str, Any], result: SimulationResult, m: Sequence[str], chain: Sequence[str],
              net: Network, nodes: pd.DataFrame, kinds: Mapping[str, str], adj: Mapping[str, set[str]],
              feeders: Mapping[str, list[tuple[str, str, str, str]]], top: Mapping[str, float],
              names: Mapping[str, tuple[str, str]], t: Mapping[str, float],
              tl: Mapping[str, tuple[set[str], set[str]]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    fixes: list[str] = []
    zone_tank = next((c for c in reversed(chain) if kinds.get(c) == "reservoir"), None)

    # 同网
    n_all, n_off = int(r["demand_nodes"]), int(r["net_unconnected_nodes"])
    own = [s for s in str(r["net_standalone_sources"]).split(";") if s]
    plants = r.get("net_plants") or "–"
    plant_ids = ", ".join(part.split(" ")[0] for part in str(plants).split("; ")) if plants != "–" else "–"
    if n_off or own:
        out["network_verdict"] = "fail"
        parts_zh, parts_en = [], []
        if n_off:
            parts_zh.append(f"{n_off}/{n_all} 个用水节点未与统一管网水厂连通")
            parts_en.append(f"{n_off} of {n_all} demand nodes have no path from the unified network's plant")
        if own:
            parts_zh.append(f"仍有独立水源 {', '.join(own)}(自备井/山泉水),供水占比 {_pct(r['net_standalone_share'])}")
            parts_en.append(f"stand-alone source(s) {', '.join(own)} (own well/spring) remain, "
                            f"{_pct(r['net_standalone_share'])} of its water")
        out["network_reason"] = _say(";".join(parts_zh), "; ".join(parts_en)) + \
            " (rule: all water from the unified network, no own source)"
        fixes.append(_say(f"将其管网接入统一管网并关停独立水源 {', '.join(own)}" if own else "将其管网接入统一管网",
                          f"connect its mains to the unified network{' and decommission ' + ', '.join(own) if own else ''}"))
    elif r["net_plant_share"] < t["network_plant_share_min"]:
        out["network_verdict"] = "warn"
        out["network_reason"] = _say(
            f"节点全部连通,但追踪到统一管网水厂的水量仅 {_pct(r['net_plant_share'])}",
            f"all {n_all} nodes connected, but only {_pct(r['net_plant_share'])} of its water traced to "
            f"the unified network's plant(s) {plant_ids} (< {_pct(t['network_plant_share_min'])})")
        fixes.append(_say("核查其水源与连通管", "check where its water comes from and its connecting mains"))
    else:
        out["network_verdict"] = "pass"
        out["network_reason"] = _say(
            f"{n_all} 个用水节点全部由统一管网供水,{_pct(r['net_plant_share'])} 的水来自水厂 {plant_ids}",
            f"all {n_all} demand nodes fed by the unified network; {_pct(r['net_plant_share'])} of its water "
            f"traced to plant(s) {plant_ids}; chain {r['supply_chain'] or '–'}")

    # 同质
    thr = float(t["tap_chlorine_min_mgL"])
    age_warn = float(t["water_age_warn_h"])
    cl_rule = f"free chlorine >= {thr:g} mg/L at taps (GB 5749-2022)"
    dose_fix = None
    req = float(r["cl_required_dose_mgL"])
    if req <= float(t["plant_chlorine_max_mgL"]):
        dose_fix = _say(f"出厂余氯提高至 {req:.2f} mg/L 以上(上限 {t['plant_chlorine_max_mgL']:g})",
                        f"raise the plant dose to >= {req:.2f} mg/L (limit {t['plant_chlorine_max_mgL']:g} mg/L)")
    booster = _say(f"在 {zone_tank} 设补氯(二次加氯)", f"booster chlorination at reservoir {zone_tank}") if zone_tank \
        else _say("在其进水干管设补氯(二次加氯)", "booster chlorination on its supply main")
    capped = int(r.get("age_capped_nodes", 0) or 0)
    p95 = float(r.get("age_p95_h", np.nan))
    if not np.isfinite(float(r["cl_node_share"])):
        out["quality_verdict"] = "fail"
        out["quality_reason"] = _say("评价时段内龙头无水,无法达到水质要求",
                                     "no water at its taps over the quality window: quality cannot be met")
        fixes.append(_say("先恢复供水,冲洗后复测余氯", "restore supply first, then flush and re-test chlorine"))
    elif r["cl_node_share"] < t["chlorine_node_share_min"]:
        out["quality_verdict"] = "fail"
        out["quality_reason"] = _say(
            f"仅 {_pct(r['cl_node_share'])} 的节点余氯达标,最低 {r['cl_min_mgL']:.3f} mg/L({r['cl_worst_node']})",
            f"only {_pct(r['cl_node_share'])} of {n_all} taps keep {cl_rule} (< {_pct(t['chlorine_node_share_min'])}); "
            f"min {r['cl_min_mgL']:.3f} mg/L at {r['cl_worst_node']}, max age {r['age_max_h']:.0f} h; needs plant "
            f"dose {req:.2f} mg/L"
            + (f"; after the supply interruption at hours {r['without_water_hours']}" if r.get("without_water_hours") else ""))
        fixes.append(dose_fix if dose_fix else booster)
        if dose_fix:
            fixes.append(booster)
        if capped or (np.isfinite(p95) and p95 > age_warn):
            fixes.append(_say("末端管道冲洗、成环或缩小管径以降低水龄",
                              "flush, loop or downsize the dead ends to cut water age"))
    elif r["cl_hour_share"] < 1.0 or capped or (np.isfinite(p95) and p95 > age_warn):
        out["quality_verdict"] = "warn"
        zh, en = [], []
        dry = str(r.get("without_water_hours") or "")
        if r["cl_hour_share"] < 1.0:
            zh.append(f"{_pct(1 - r['cl_hour_share'])} 的节点时段余氯低于 {thr:g} mg/L"
                      + (f"(第 {dry} 小时停水后管内滞留水)" if dry else ""))
            en.append(f"{_pct(1 - r['cl_hour_share'])} of node-hours below {thr:g} mg/L (min {r['cl_min_mgL']:.3f})"
                      + (f", water that stood in the mains depressurised at hours {dry}" if dry else ""))
            if dry:
                fixes.append(_say("恢复供水后冲洗管网并复测余氯", "flush the mains and re-test chlorine after restoring supply"))
        if np.isfinite(p95) and p95 > age_warn:
            zh.append(f"95% 水龄 {p95:.0f} h 超过 {age_warn:g} h")
            en.append(f"95th-percentile age {p95:.0f} h > {age_warn:g} h")
        if capped:
            zh.append(f"{capped} 个末端节点水龄达到模拟时长(> {float(result.hours.max()):g} h)")
            en.append(f"{capped} end nodes ({_pct(r['age_capped_demand_share'])} of demand) hold water as old as "
                      f"the {float(result.hours.max()):g} h run")
        out["quality_reason"] = _say(";".join(zh), "; ".join(en)) + f" (min Cl {r['cl_min_mgL']:.3f} mg/L; {cl_rule})"
        fixes.append(_say("末端管道定期冲洗或成环,降低水龄", "flush or loop the dead ends to cut water age"))
    else:
        out["quality_verdict"] = "pass"
        out["quality_reason"] = _say(
            f"全部节点余氯达标(最低 {r['cl_min_mgL']:.3f} mg/L),95% 水龄 {p95:.0f} h",
            f"all taps keep {cl_rule}, min {r['cl_min_mgL']:.3f} mg/L; 95th-percentile age {p95:.0f} h; "
            f"plant dose needed {req:.2f} mg/L")

    # 服务压力
    comp = float(r["pressure_compliance"])
    cmin = float(t["pressure_compliance_min"])
    rule = "GB 50013-2018 §3.0.10" if r["kind"] == "community" else "村镇供水工程技术规范"
    sh = float(r["service_head_m"])
    static_over = int(r["static_head_nodes_over"])
    if comp < cmin or comp < 1.0:
        out["pressure_verdict"] = "fail" if comp < cmin else "warn"
        cause_zh, cause_en, fix = _pressure_cause(sid, r, result, m, chain, net, nodes, kinds, adj, feeders, top, t, tl)
        out["pressure_reason"] = _say(
            f"服务压力合格率 {_pct(comp)}(要求 ≥ {_pct(cmin)}),{r['hours_below_service']:.0f} h 低于 {sh:g} m"
            + (f",最多 {r['people_without_water_max']:.0f} 人停水" if r["people_without_water_max"] > 0 else "")
            + (f";{cause_zh}" if cause_zh else ""),
            f"{_pct(comp)} of node-hours at or above the {sh:g} m service head ({rule}; CJ/T 316-2009 asks "
            f">= {_pct(cmin)}); below it at hours {r['below_service_hours']} ({r['hours_below_service']:.0f} h)"
            + (f"; up to {r['people_without_water_max']:.0f} people without water" if r["people_without_water_max"] > 0 else "")
            + (f"; {cause_en}" if cause_en else ""))
        fixes.append(fix)
    elif static_over:
        out["pressure_verdict"] = "warn"
        out["pressure_reason"] = _say(
            f"{static_over} 个节点静水压超过 {t['rural_max_static_head_m']:g} m(最高 {r['static_head_max_m']:.1f} m)",
            f"static head above {t['rural_max_static_head_m']:g} m at {static_over} nodes (max "
            f"{r['static_head_max_m']:.1f} m; rural supply code); service head met at all node-hours")
        fixes.append(_say("在低处干管上设减压阀(PRV)或分压供水",
                          f"a PRV (减压阀) on the main into the low-lying part (keep static head <= "
                          f"{t['rural_max_static_head_m']:g} m), or split the pressure zone"))
    else:
        out["pressure_verdict"] = "pass"
        out["pressure_reason"] = _say(
            f"全部时段满足服务压力 {sh:g} m,最低 {r['min_pressure_m']:.1f} m",
            f"service head {sh:g} m ({rule}, {r['storeys']} storeys) met at all node-hours; min "
            f"{r['min_pressure_m']:.1f} m; max static head {r['static_head_max_m']:.1f} m")

    # 同价
    cost, tariff, uni = float(r["cost_yuan_m3"]), float(r["tariff_yuan_m3"]), float(r["uniform_tariff_yuan_m3"])
    rec_ = float(r["cost_recovery"])
    sub = float(r["cross_subsidy_yuan_year"])
    breakdown = (f"energy {r['energy_yuan_m3']:.2f} ({r['kwh_per_m3']:.2f} kWh/m³) + other {r['other_yuan_m3']:.2f} "
                 f"+ distribution {r['distribution_yuan_m3']:.2f} ({r['pipe_km']:.1f} km)")
    if abs(tariff - uni) > 1e-9:
        out["price_verdict"] = "fail"
        out["price_reason"] = _say(f"水价 {tariff:.2f} 元/m³ 与统一水价 {uni:.2f} 不同",
                                   f"tariff {tariff:.2f} ¥/m³ differs from the uniform {uni:.2f} ¥/m³ (同价)")
        fixes.append(_say("执行统一水价", "apply the uniform tariff"))
    elif rec_ < float(t["cost_recovery_min"]) or cost > tariff:
        out["price_verdict"] = "fail" if rec_ < float(t["cost_recovery_min"]) else "warn"
        out["price_reason"] = _say(
            f"供水成本 {cost:.2f} 元/m³ 高于统一水价 {tariff:.2f},成本回收率 {_pct(rec_)},年补贴 {sub:,.0f} 元",
            f"cost to serve {cost:.2f} ¥/m³ ({breakdown}) > uniform tariff {tariff:.2f} ¥/m³: recovery "
            f"{_pct(rec_)} (fail below {_pct(t['cost_recovery_min'])}); cross-subsidised by ¥{sub:,.0f}/year")
        top_station = _costliest_station(r)
        fixes.append(_say(f"水价说明:统一水价下每年需交叉补贴约 {sub:,.0f} 元" + (f";优先降低 {top_station} 的提升能耗" if top_station else ""),
                          f"tariff note: budget a ¥{sub:,.0f}/year cross-subsidy (同价 compensation)"
                          + (f"; cut the lift energy of {top_station} first" if top_station else "")))
    else:
        out["price_verdict"] = "pass"
        out["price_reason"] = _say(
            f"供水成本 {cost:.2f} 元/m³ ≤ 统一水价 {tariff:.2f},年贡献 {-sub:,.0f} 元",
            f"cost to serve {cost:.2f} ¥/m³ ({breakdown}) <= uniform tariff {tariff:.2f} ¥/m³; contributes "
            f"¥{-sub:,.0f}/year")
    out["fixes"] = " | ".join(dict.fromkeys(f for f in fixes if f))
    return out


def _costliest_station(r: Mapping[str, Any]) -> str | None:
    s = _s(r.get("costliest_station"))
    return s


def _pressure_cause(sid: str, r: Mapping[str, Any], result: SimulationResult, m: Sequence[str],
                    chain: Sequence[str], net: Network, nodes: pd.DataFrame, kinds: Mapping[str, str],
                    adj: Mapping[str, set[str]], feeders: Mapping[str, list[tuple[str, str, str, str]]],
                    top: Mapping[str, float], t: Mapping[str, float],
                    tl: Mapping[str, tuple[set[str], set[str]]] | None = None) -> tuple[str, str, str]:
    """Why a settlement is below service head, and what would fix it."""
    sh = float(r["service_head_m"])
    p = result.pressure.reindex(columns=list(m))
    below = p.index[(p < sh).any(axis=1)]
    zh: list[str] = []
    en: list[str] = []
    # 1. reservoirs on the chain that ran empty, stations on the chain that did not pump
    fac = net.get("facilities")
    minlv: dict[str, float] = {}
    if fac is not None and len(fac) and "min_level_m" in fac:
        for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
            minlv[str(row.node_id)] = float(row.min_level_m)
    empty_tanks = []
    for tk in (c for c in chain if kinds.get(c) == "reservoir"):
        if tk in result.tank_level:
            lv = result.tank_level[tk]
            hrs = lv.index[lv <= minlv.get(tk, 0.0) + 0.01]
            if len(hrs):
                empty_tanks.append(tk)
                zh.append(f"{tk} 在第 {_ranges(hrs)} 小时放空")
                en.append(f"reservoir {tk} empty at hours {_ranges(hrs)}")
    pumps = net.get("pumps")
    idle = []
    if pumps is not None and len(pumps) and len(below):
        first, last = float(below.min()), float(below.max())
        for st in (c for c in chain if kinds.get(c) not in ("reservoir", "plant")):
            ids = [str(i) for i, s in zip(pumps["id"], pumps["station_id"].astype(str)) if s == st] \
                if "station_id" in pumps else []
            ids = [i for i in ids if i in result.flow]
            if not ids:
                continue
            q = result.flow[ids].clip(lower=0).sum(axis=1)
            look = q.loc[(q.index >= first - 12) & (q.index <= last)]
            stopped = look.index[look <= 1e-6]
            ctl = pumps.set_index(pumps["id"].astype(str)).loc[ids]
            calls = []
            for _, prow in ctl.iterrows():
                cn = _s(prow.get("control_node"))
                on = pd.to_numeric(pd.Series([prow.get("on_below_m")]), errors="coerce").iloc[0]
                if cn and cn in result.tank_level and pd.notna(on):
                    lv = result.tank_level[cn].reindex(stopped)
                    calls += list(lv.index[lv < float(on)])
            if calls:
                idle.append(st)
                zh.append(f"泵站 {st} 在第 {_ranges(sorted(set(calls)))} 小时应开未开")
                en.append(f"pump station {st} not pumping at hours {_ranges(sorted(set(calls)))} while its "
                          "reservoir called for water")
    if empty_tanks or idle:
        what = ", ".join(dict.fromkeys(idle + empty_tanks))
        fix = _say(f"为 {what} 配备备用电源/备用泵并增加调蓄容积",
                   f"standby power or a standby pump at {', '.join(idle) or 'the station'} and more storage at "
                   f"{', '.join(empty_tanks) or 'the zone reservoir'} to ride through the outage")
        return ";".join(zh), "; ".join(en), fix
    # 2. too high for the zone: static head below service head
    worst = str(r["min_pressure_node"])
    levels = _chain_levels([worst], kinds, adj, feeders, tl)
    grades = [top[x] for x in (levels[0]["tanks"] + levels[0]["plants"] if levels else []) if x in top]
    high = [n for n in m if grades and max(grades) - float(nodes.loc[n, "elevation_m"]) < sh]
    if high:
        static = max(grades) - float(nodes.loc[high[0], "elevation_m"])
        worst = high[0]
        zh.append(f"{len(high)} 个节点地势过高,静水压 {static:.1f} m < {sh:g} m")
        en.append(f"{len(high)} nodes (e.g. {worst}) lie too high for their zone: static head {static:.1f} m "
                  f"< {sh:g} m even with the reservoir full")
        fix = _say("为高处用户设加压泵(二次加压)或改由更高水池供水",
                   f"a local booster pump for the hill-top cluster ({', '.join(high[:5])}) or supply it from a "
                   "higher reservoir zone")
        return ";".join(zh), "; ".join(en), fix
    # 3. head loss: the pipe with the largest unit head loss between the zone source and the worst node
    hour = float(p[worst].idxmin())
    g = nx.Graph()
    pipes = net["pipes"]
    for pid, a, b, L, d in zip(pipes["id"].astype(str), pipes["from_node"].astype(str), pipes["to_node"].astype(str),
                               _lengths(pipes), pipes["diameter_mm"]):
        g.add_edge(a, b, id=pid, length=float(L), dn=float(d))
    srcs = [x for x in (levels[0]["tanks"] + levels[0]["plants"] if levels else []) if x in g]
    best = None
    if srcs and worst in g:
        try:
            _, path = nx.multi_source_dijkstra(g, set(srcs), target=worst, weight="length")
        except nx.NetworkXNoPath:
            path = []
        head = result.head.loc[hour]
        for a, b in zip(path[:-1], path[1:]):
            e = g.edges[a, b]
            grad = abs(float(head.get(a, np.nan)) - float(head.get(b, np.nan))) / max(e["length"], 1.0) * 1000.0
            if np.isfinite(grad) and (best is None or grad > best[1]):
                best = (e["id"], grad, e["dn"])
    if best is not None:
        zh.append(f"高峰水头损失过大,管段 {best[0]} 达 {best[1]:.1f} m/km")
        en.append(f"head loss at the peak: pipe {best[0]} (DN{best[2]:.0f}) loses {best[1]:.1f} m/km at hour {hour:g}")
        fix = _say(f"管段 {best[0]}(DN{best[2]:.0f})扩径", f"upsize pipe {best[0]} (DN{best[2]:.0f}) and its neighbours")
        return ";".join(zh), "; ".join(en), fix
    return "", "", _say("校核该区水压", "review the zone's pressures")


# --------------------------------------------------------------------------------------------
# comparison, layer, report, files


def compare_audits(before: AuditResult, after: AuditResult) -> pd.DataFrame:
    """Verdict changes per settlement and dimension between two audits (e.g. baseline → scenario).

    Returns
    -------
    DataFrame
        Index settlement id; for each dimension ``<d>_before``, ``<d>_after``;
        ``score_before``, ``score_after``, ``dropped`` (dimensions whose verdict
        got worse, ';'-joined), ``improved`` and ``why`` (the reasons of the
        dropped dimensions in `after`).
    """
    b, a = before.table, after.table
    idx = [i for i in a.index if i in b.index]
    out = pd.DataFrame(index=pd.Index(idx, name="id"))
    out["name_zh"] = a.loc[idx, "name_zh"]
    out["name_en"] = a.loc[idx, "name_en"]
    dropped, improved, why = [], [], []
    for sid in idx:
        dr, im, wy = [], [], []
        for d in DIMENSIONS:
            vb, va = str(b.loc[sid, f"{d}_verdict"]), str(a.loc[sid, f"{d}_verdict"])
            if _RANK[va] < _RANK[vb]:
                dr.append(d)
                wy.append(f"{DIMENSIONS[d][0]} {d}: {a.loc[sid, f'{d}_reason']}")
            elif _RANK[va] > _RANK[vb]:
                im.append(d)
        dropped.append(";".join(dr))
        improved.append(";".join(im))
        why.append(" || ".join(wy))
    for d in DIMENSIONS:
        out[f"{d}_before"] = b.loc[idx, f"{d}_verdict"].to_numpy()
        out[f"{d}_after"] = a.loc[idx, f"{d}_verdict"].to_numpy()
    out["score_before"] = b.loc[idx, "score"].to_numpy()
    out["score_after"] = a.loc[idx, "score"].to_numpy()
    out["dropped"] = dropped
    out["improved"] = improved
    out["why"] = why
    return out


def audit_layer(net: Network, aud: AuditResult) -> gpd.GeoDataFrame:
    """Settlement polygons with the audit's columns, for GIS (CRS of the settlements layer)."""
    st = net["settlements"]
    keep = [c for c in ("id", "geometry") if c in st.columns]
    geo = gpd.GeoDataFrame(st[keep].copy(), geometry="geometry", crs=st.crs)
    geo["id"] = geo["id"].astype(str)
    out = geo.merge(aud.table, left_on="id", right_index=True, how="left")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=st.crs)


def audit_report(aud: AuditResult, *, baseline: AuditResult | None = None, title_zh: str = "供水管网",
                 title_en: str = "Water network") -> str:
    """The bilingual (中文/English) Markdown report of an audit.

    Sections: the promise, the rules, verdicts, figures per dimension, supply
    chains and shares, reasons and fixes, cross-subsidies, changes against
    `baseline` (when given), thresholds (overrides marked) and caveats.
    """
    from .report import markdown_table

    tb = aud.table
    t = aud.thresholds
    lab = aud.label
    out = [f"# {title_zh} — 同网·同价·同质 审计 ({lab})", f"## {title_en} — same network, same price, same quality audit ({lab})", ""]
    out += ["## 承诺 The promise", "",
            "城乡供水一体化承诺农村与城市“同网、同价、同质”:由同一张管网供水(不再使用自备井、山泉水),"
            "执行同一水价,水质和水压达到同样标准。本审计对每个村和社区逐项核查。",
            "",
            "The integrated urban-rural supply promises every village what the city gets: water from the same "
            "network (no more own wells or spring water), at the same price, of the same quality and pressure. "
            "This audit checks each village and community, dimension by dimension, against the Chinese standards.",
            ""]
    out += ["## 规则 Rules", "", markdown_table(pd.DataFrame([
        ["同网 network", "每个用水节点有来自统一管网水厂的路径;无独立水源 / every demand node has a path from the "
         "unified network's plant; no stand-alone source (own well, spring) in its polygon or zone or feeding it",
         f"traced plant share < {_pct(t['network_plant_share_min'])}", "any node unconnected or any own source"],
        ["同质 quality", f"余氯 ≥ {t['tap_chlorine_min_mgL']:g} mg/L (GB 5749-2022), 水龄 / water age",
         f"some node-hours below, p95 age > {t['water_age_warn_h']:g} h, or water as old as the run",
         f"< {_pct(t['chlorine_node_share_min'])} of taps compliant"],
        ["服务压力 pressure", "GB 50013-2018 §3.0.10 (社区 communities, storeys) / 村镇供水工程技术规范 (villages); "
         "CJ/T 316-2009 §6.2", f"some node-hours below service head, or village static head > "
         f"{t['rural_max_static_head_m']:g} m", f"compliance < {_pct(t['pressure_compliance_min'])}"],
        ["同价 price", f"供水成本 vs 统一水价 / cost to serve vs uniform tariff {t['water_tariff_yuan_m3']:.2f} ¥/m³",
         "cost > tariff (cross-subsidised)", f"tariff differs from uniform, or recovery < {_pct(t['cost_recovery_min'])}"],
    ], columns=["dimension", "rule", "warn", "fail"]), index=False), "",
        "评分 Score: 通过 pass = 100, 警告 warn = 50, 不通过 fail = 0 per dimension; score = mean of the four; "
        "overall verdict = the worst.", ""]
    # verdicts
    v = tb[["name_zh", "name_en", "kind", "population"]].copy()
    for d, (zh, en) in DIMENSIONS.items():
        v[zh] = [f"{VERDICT_ZH[x]} {x}" for x in tb[f"{d}_verdict"]]
    v["score"] = tb["score"]
    v["overall"] = [f"{VERDICT_ZH[x]} {x}" for x in tb["verdict"]]
    n_fail = int((tb["verdict"] == "fail").sum())
    n_warn = int((tb["verdict"] == "warn").sum())
    out += ["## 结论 Verdicts", "",
            f"{len(tb)} 个村/社区:{len(tb) - n_fail - n_warn} 通过,{n_warn} 警告,{n_fail} 不通过。"
            f" {len(tb)} settlements: {len(tb) - n_fail - n_warn} pass, {n_warn} warn, {n_fail} fail.", "",
            markdown_table(v, digits=0), ""]
    if baseline is not None:
        cmp_ = compare_audits(baseline, aud)
        drop = cmp_[cmp_["dropped"] != ""]
        out += ["## 与基准工况比较 Changes against the baseline", ""]
        if len(drop):
            out += ["结论下降的居民点 Settlements whose verdicts dropped: "
                    + ", ".join(f"{i} {drop.loc[i, 'name_zh']}" for i in drop.index), ""]
            for sid in drop.index:
                out.append(f"- **{sid} {drop.loc[sid, 'name_zh']} {drop.loc[sid, 'name_en']}** "
                           f"(score {cmp_.loc[sid, 'score_before']:.0f} → {cmp_.loc[sid, 'score_after']:.0f}):")
                for part in str(drop.loc[sid, "why"]).split(" || "):
                    out.append(f"  - {part}")
            out.append("")
        else:
            out += ["没有居民点的结论下降。No settlement's verdict dropped.", ""]
        same = [i for i in cmp_.index if i not in drop.index]
        if same:
            out += [f"未受影响 Unaffected: {', '.join(same)}", ""]
    # figures
    fig = {
        "network": ["net_connected_share", "net_plant_share", "net_untraced_share", "net_standalone_sources",
                    "net_plants", "net_stations", "net_reservoirs"],
        "quality": ["cl_min_mgL", "cl_node_share", "cl_hour_share", "cl_required_dose_mgL", "age_max_h",
                    "age_p95_h", "age_mean_h", "age_capped_nodes"],
        "pressure": ["service_head_m", "pressure_compliance", "hours_below_service", "min_pressure_m",
                     "static_head_max_m", "static_head_nodes_over", "people_without_water_max"],
        "price": ["kwh_per_m3", "energy_yuan_m3", "distribution_yuan_m3", "other_yuan_m3", "cost_yuan_m3",
                  "tariff_yuan_m3", "cost_recovery", "annual_volume_m3", "cross_subsidy_yuan_year"],
    }
    for d, cols in fig.items():
        zh, en = DIMENSIONS[d]
        cols = [c for c in cols if c in tb.columns]
        out += [f"## {zh} {en}", "", markdown_table(tb[["name_zh"] + cols], digits=3 if d == "quality" else 2), ""]
    out += ["## 供水链 Supply chains", "",
            "水厂 → 泵站 → 水池 … → 居民点,及各水源供水占比(EPANET TRACE)。Plant → pump station → reservoir … → "
            "settlement, with the traced share of the settlement's water from each source.", "",
            markdown_table(tb[["name_zh", "supply_chain", "net_stations", "net_reservoirs"]]), ""]
    # reasons and fixes
    out += ["## 原因与整改 Reasons and fixes", ""]
    for sid in tb.index:
        r = tb.loc[sid]
        out.append(f"### {sid} {r['name_zh']} {r['name_en']} — {VERDICT_ZH[r['verdict']]} {r['verdict']} "
                   f"({r['score']:.0f}/100)")
        for d, (zh, en) in DIMENSIONS.items():
            out.append(f"- {zh} {en}: **{VERDICT_ZH[r[f'{d}_verdict']]} {r[f'{d}_verdict']}** — {r[f'{d}_reason']}")
        if r.get("fixes"):
            out.append(f"- 整改 Fix: {r['fixes']}")
        out.append("")
    # cross-subsidy
    sub = tb[["name_zh", "cost_yuan_m3", "tariff_yuan_m3", "annual_volume_m3", "cross_subsidy_yuan_year"]]
    total = float(tb["cross_subsidy_yuan_year"].clip(lower=0).sum())
    out += ["## 交叉补贴 Cross-subsidy", "",
            f"统一水价下,成本高于水价的居民点每年共需补贴约 {total:,.0f} 元。Under the uniform tariff the "
            f"settlements that cost more than they pay are cross-subsidised by about ¥{total:,.0f} a year "
            "(positive: receives; negative: contributes).", "",
            markdown_table(sub.sort_values("cross_subsidy_yuan_year", ascending=False)), ""]
    # worst dose
    worst = tb["cl_required_dose_mgL"].astype(float)
    if worst.notna().any():
        w = worst.idxmax()
        out += [f"最不利居民点 {w} {tb.loc[w, 'name_zh']} 需要出厂余氯 ≥ {worst[w]:.2f} mg/L(当前 {aud.dose_mgL:g} mg/L)。"
                f" The worst settlement, {w} {tb.loc[w, 'name_en']}, needs a plant dose of >= {worst[w]:.2f} mg/L "
                f"(current {aud.dose_mgL:g} mg/L; GB 5749 allows {t['plant_chlorine_min_mgL']:g}–"
                f"{t['plant_chlorine_max_mgL']:g} mg/L at the plant outlet).", ""]
    # thresholds
    rows = []
    for name, th in STANDARDS.items():
        over = name in t.overridden
        rows.append([name, t[name], th.unit, th.source, f"已覆盖 overridden (default {t.overridden[name][0]:g})" if over else ""])
    out += ["## 阈值 Thresholds", "",
            ("已覆盖 Overridden: " + ", ".join(f"{k} {a:g} → {b:g}" for k, (a, b) in t.overridden.items()))
            if t.overridden else "全部为默认值 All defaults (none overridden).", "",
            markdown_table(pd.DataFrame(rows, columns=["threshold", "value", "unit", "source", "note"]), index=False, digits=3), ""]
    if aud.notes:
        out += ["## 说明 Caveats", ""] + [f"- {n}" for n in aud.notes] + [""]
    return "\n".join(out) + "\n"


def write_audit(aud: AuditResult, out_dir: str | os.PathLike, *, net: Network | None = None,
                baseline: AuditResult | None = None, title_zh: str = "供水管网", title_en: str = "Water network",
                gpkg: bool = True) -> dict[str, Path]:
    """Write ``audit.csv``, ``audit_sources.csv``, ``audit.md`` and (with `net`) ``audit.gpkg``, atomically.

    Returns
    -------
    dict
        File name → path written.
    """
    from .io import write_csv, write_layers, write_text

    out = Path(out_dir)
    report = audit_report(aud, baseline=baseline, title_zh=title_zh, title_en=title_en)
    long = aud.shares.stack().rename("share").reset_index()
    long = long[long["share"] > 0].merge(aud.sources[["kind", "label"]], left_on="source", right_index=True)
    files = {"audit.csv": write_csv(aud.table, out / "audit.csv"),
             "audit_sources.csv": write_csv(long, out / "audit_sources.csv", index=False),
             "audit.md": write_text(report, out / "audit.md")}
    if baseline is not None:
        files["audit_changes.csv"] = write_csv(compare_audits(baseline, aud), out / "audit_changes.csv")
    if gpkg and net is not None:
        files["audit.gpkg"] = write_layers({"audit": audit_layer(net, aud)}, out / "audit.gpkg")
    return files
