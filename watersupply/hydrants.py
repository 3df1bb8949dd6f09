"""Fire hydrants (市政消火栓): placement on the mains, coverage and the fire flow each settlement needs.

GB 50974-2014 (消防给水及消火栓系统技术规范) asks for municipal hydrants along
roads at a spacing of at most 120 m (§7.2.5), each protecting a radius of at most
150 m (§7.2.5), on water mains of at least DN100 where the town has fewer than
25,000 people (§7.2.? / §8.1.?: ring mains ≥ DN100, else ≥ DN150; the project's
FACTS take DN100), with at least 0.10 MPa (10 m) at the hydrant during the fire
flow (§7.2.8). The fire flow of one fire and the number of simultaneous fires
depend on the population (Table 6.1.1, :data:`FIRE_FLOW_BY_POPULATION`), for
2 h (Table 3.6.2, :data:`FIRE_DURATION_H`).

* :func:`add_hydrants` — a ``hydrants`` layer: points every ≤ ``spacing_m`` along
  the open pipes of at least ``min_dn`` inside the communities and the village
  centres, each tied to a model junction (``node``) where a fire flow is drawn.
* :func:`hydrant_coverage` — per settlement: hydrants, demand nodes within the
  protection radius, length of mains too small to carry a hydrant.
* :func:`fire_flow_ls` — the GB 50974 flow for a population.
* :func:`critical_hydrants` — per settlement, the hydrant with the lowest
  pressure at the evening peak of a baseline run (the fire-flow check's worst case).
* :func:`fire_flow_scenario` — a scenario drawing that flow there for 2 h.

Examples
--------
>>> fire_flow_ls(15_000), fire_flow_ls(8_000), fire_flow_ls(60_000)
(20.0, 15.0, 35.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point

from ._errors import NetworkDataError
from .schema import Network
from .standards import DesignAssumption, thresholds

__all__ = ["HYDRANT_ASSUMPTIONS", "FIRE_FLOW_BY_POPULATION", "FIRE_DURATION_H", "HYDRANT_SPACING_M",
           "HYDRANT_MIN_DN_MM", "HYDRANT_RADIUS_M", "VILLAGE_CENTRE_RADIUS_M", "fire_flow_ls", "fires_at_once",
           "add_hydrants", "hydrant_coverage", "critical_hydrants", "fire_flow_scenario"]

_ASSUMPTIONS = [
    DesignAssumption("fire_flow_by_population",
                     ((10_000, 1, 15.0), (25_000, 1, 20.0), (50_000, 2, 30.0), (100_000, 2, 35.0),
                      (200_000, 2, 45.0), (300_000, 2, 60.0), (400_000, 2, 75.0), (500_000, 3, 75.0),
                      (700_000, 3, 90.0), (math.inf, 3, 100.0)),
                     "(people up to, fires at once, L/s per fire)",
                     "town fire flow: simultaneous fires and the flow of one fire by population",
                     "GB 50974-2014 Table 6.1.1 (our reading; verify against the standard)"),
    DesignAssumption("fire_duration_h", 2.0, "h", "duration of the design fire (residential areas, town mains)",
                     "GB 50974-2014 Table 3.6.2 (residential / 城镇: 2 h)"),
    DesignAssumption("hydrant_spacing_m", 120.0, "m", "largest spacing of municipal hydrants along a main",
                     "GB 50974-2014 §7.2.5"),
    DesignAssumption("hydrant_radius_m", 150.0, "m", "protection radius of a municipal hydrant",
                     "GB 50974-2014 §7.2.5"),
    DesignAssumption("hydrant_min_dn_mm", 100.0, "mm", "smallest main a hydrant may sit on",
                     "GB 50974-2014 §8.1.? (towns under 25,000 people, ring mains: DN100; FACTS)"),
    DesignAssumption("village_centre_radius_m", 300.0, "m", "a village's centre (where hydrants go): this radius "
                     "around the demand-weighted centre of its nodes",
                     "assumed: the built-up core of a Qijiang hill village (market street, school, village "
                     "committee) spans a few hundred metres"),
]

#: The documented parameters of this module, by name.
HYDRANT_ASSUMPTIONS: Mapping[str, DesignAssumption] = MappingProxyType({a.name: a for a in _ASSUMPTIONS})
FIRE_FLOW_BY_POPULATION: tuple[tuple[float, int, float], ...] = HYDRANT_ASSUMPTIONS["fire_flow_by_population"].value
FIRE_DURATION_H: float = HYDRANT_ASSUMPTIONS["fire_duration_h"].value
HYDRANT_SPACING_M: float = HYDRANT_ASSUMPTIONS["hydrant_spacing_m"].value
HYDRANT_RADIUS_M: float = HYDRANT_ASSUMPTIONS["hydrant_radius_m"].value
HYDRANT_MIN_DN_MM: float = HYDRANT_ASSUMPTIONS["hydrant_min_dn_mm"].value
VILLAGE_CENTRE_RADIUS_M: float = HYDRANT_ASSUMPTIONS["village_centre_radius_m"].value

HYDRANT_COLUMNS = ["id", "pipe", "node", "settlement_id", "diameter_mm", "chainage_m"]


def _row(population: float) -> tuple[float, int, float]:
    if not (population >= 0):
        raise NetworkDataError(f"population must be a number >= 0, got {population!r}")
    for row in FIRE_FLOW_BY_POPULATION:
        if population <= row[0]:
            return row
    return FIRE_FLOW_BY_POPULATION[-1]


def fire_flow_ls(population: float) -> float:
    """The flow of one fire (L/s) for a town of `population` people (GB 50974-2014 Table 6.1.1)."""
    return float(_row(population)[2])


def fires_at_once(population: float) -> int:
    """Simultaneous fires to design for (GB 50974-2014 Table 6.1.1).

    >>> fires_at_once(15_000), fires_at_once(65_000)
    (1, 2)
    """
    return int(_row(population)[1])


def _areas(net: Network, village_centre_radius_m: float) -> dict[str, Any]:
    """Settlement id → the area that gets hydrants: a community's polygon, a village's centre disc."""
    st = net.get("settlements")
    if st is None or not len(st):
        return {}
    nodes = net["nodes"]
    out = {}
    for row in st.itertuples(index=False):
        sid = str(row.id)
        if row.kind == "community":
            out[sid] = row.geometry
            continue
        mine = nodes[nodes.get("settlement_id", pd.Series(None, index=nodes.index)).astype(str) == sid]
        w = pd.to_numeric(mine.get("base_demand_m3d", pd.Series(0.0, index=mine.index)), errors="coerce").fillna(0)
        if len(mine) and w.sum() > 0:
            x = float(np.average(mine.geometry.x, weights=w))
            y = float(np.average(mine.geometry.y, weights=w))
            # the demand node nearest that centre, so the disc sits on the village's network
            d = np.hypot(mine.geometry.x - x, mine.geometry.y - y)
            c = mine.geometry.iloc[int(np.argmin(d.to_numpy()))]
        else:
            c = row.geometry.representative_point()
        out[sid] = c.buffer(village_centre_radius_m).intersection(row.geometry) if row.geometry is not None \
            else c.buffer(village_centre_radius_m)
    return out


def add_hydrants(net: Network, *, spacing_m: float = HYDRANT_SPACING_M, min_dn: float = HYDRANT_MIN_DN_MM,
                 village_centre_radius_m: float = VILLAGE_CENTRE_RADIUS_M,
                 settlements: list[str] | None = None) -> Network:
    """A copy of `net` with a ``hydrants`` layer (GB 50974: ≤ `spacing_m` apart on mains ≥ `min_dn`).

    Hydrants go on every open pipe of at least `min_dn` mm (``diameter_mm``; a
    ``dn_mm`` column, where present, is used instead) inside a community's
    polygon or a village's centre (a disc of `village_centre_radius_m` around its
    demand-weighted centre). A pipe stretch of length L inside the area gets
    n = ⌈L / spacing⌉ hydrants at (k + ½)·L/n, so consecutive hydrants — on one
    pipe or across a junction — are at most `spacing_m` apart along the main.

    Parameters
    ----------
    net
        Network with ``settlements`` (polygons, kind community|village).
    settlements
        Only these settlement ids (default all).

    Returns
    -------
    Network
        With layer ``hydrants`` (Point): id (``H0001`` ...), pipe, node (the
        pipe's nearer junction of the settlement, else its nearer junction: where
        a fire flow is drawn in the model),
        settlement_id, diameter_mm, chainage_m (along the pipe from its start).
    """
    if not spacing_m > 0 or not min_dn > 0 or not village_centre_radius_m > 0:
        raise NetworkDataError(f"spacing_m, min_dn and village_centre_radius_m must be > 0, got {spacing_m}, "
                               f"{min_dn}, {village_centre_radius_m}")
    areas = _areas(net, village_centre_radius_m)
    if settlements is not None:
        unknown = sorted(set(settlements) - set(areas))
        if unknown:
            raise NetworkDataError(f"add_hydrants: unknown settlement(s) {', '.join(map(repr, unknown))}; "
                                   f"known: {', '.join(sorted(areas)) or 'none'}")
        areas = {k: v for k, v in areas.items() if k in settlements}
    pipes = net["pipes"]
    nodes = net["nodes"]
    kind = dict(zip(nodes["id"].astype(str), nodes["kind"].astype(str)))
    home = dict(zip(nodes["id"].astype(str), nodes["settlement_id"].astype(str))) if "settlement_id" in nodes else {}
    size = pd.to_numeric(pipes["dn_mm"] if "dn_mm" in pipes.columns else pipes["diameter_mm"], errors="coerce")
    ok = size >= min_dn
    if "status" in pipes.columns:
        ok &= ~pipes["status"].astype(str).str.upper().eq("CLOSED")
    cand = pipes[ok]
    rows = []
    for sid, area in sorted(areas.items()):
        if area is None or area.is_empty:
            continue
        hit = cand[cand.intersects(area)]
        for p in hit.itertuples(index=False):
            line = p.geometry
            inside = line.intersection(area)
            parts = [g for g in getattr(inside, "geoms", [inside]) if g.geom_type == "LineString" and g.length > 0]
            for part in parts:
                n = max(1, math.ceil(part.length / spacing_m))
                for k in range(n):
                    pt = part.interpolate((k + 0.5) * part.length / n)
                    s = float(line.project(pt))
                    ends = [(home.get(str(p.from_node)) != sid, s, str(p.from_node)),
                            (home.get(str(p.to_node)) != sid, line.length - s, str(p.to_node))]
                    ends = sorted(e for e in ends if kind.get(e[2]) == "junction")  # the settlement's own first
                    if not ends:
                        continue
                    rows.append(dict(pipe=str(p.id), node=ends[0][2], settlement_id=sid,
                                     diameter_mm=float(p.diameter_mm), chainage_m=round(s, 1),
                                     geometry=Point(pt.x, pt.y)))
    hyd = gpd.GeoDataFrame(rows, columns=[*HYDRANT_COLUMNS[1:], "geometry"], geometry="geometry", crs=nodes.crs)
    hyd.insert(0, "id", [f"H{i:04d}" for i in range(1, len(hyd) + 1)])
    out = dict(net)
    out["hydrants"] = hyd
    return out


def hydrant_coverage(net: Network, *, radius_m: float = HYDRANT_RADIUS_M, min_dn: float = HYDRANT_MIN_DN_MM
                     ) -> pd.DataFrame:
    """Per settlement: hydrants, max gap along a pipe, demand nodes within `radius_m` of one, small mains.

    Returns
    -------
    DataFrame
        Indexed by settlement id: kind, population, fire_flow_ls (GB 50974 for
        its population), hydrants, demand_nodes, covered_share (demand nodes
        within the protection radius of a hydrant), uncovered_nodes,
        pipe_km_below_min_dn (pipes in the settlement too small for a hydrant).
    """
    st = net.get("settlements")
    cols = ["kind", "population", "fire_flow_ls", "hydrants", "demand_nodes", "covered_share", "uncovered_nodes",
            "pipe_km_below_min_dn"]
    if st is None or not len(st):
        return pd.DataFrame(columns=cols)
    hyd = net.get("hydrants")
    nodes = net["nodes"]
    pipes = net["pipes"]
    size = pd.to_numeric(pipes["dn_mm"] if "dn_mm" in pipes.columns else pipes["diameter_mm"], errors="coerce")
    rows = {}
    for row in st.itertuples(index=False):
        sid = str(row.id)
        mine = nodes[(nodes["settlement_id"].astype(str) == sid)
                     & (pd.to_numeric(nodes.get("base_demand_m3d", 0.0), errors="coerce").fillna(0) > 0)]
        h = hyd[hyd["settlement_id"].astype(str) == sid] if hyd is not None and len(hyd) else None
        if h is not None and len(h) and len(mine):
            hx, hy = h.geometry.x.to_numpy(), h.geometry.y.to_numpy()
            d = np.hypot(mine.geometry.x.to_numpy()[:, None] - hx[None, :],
                         mine.geometry.y.to_numpy()[:, None] - hy[None, :]).min(axis=1)
            covered = int((d <= radius_m).sum())
        else:
            covered = 0
        small = pipes[(size < min_dn) & pipes.intersects(row.geometry)]
        rows[sid] = dict(kind=row.kind, population=int(row.population), fire_flow_ls=fire_flow_ls(row.population),
                         hydrants=0 if h is None else len(h), demand_nodes=len(mine),
                         covered_share=covered / len(mine) if len(mine) else np.nan,
                         uncovered_nodes=len(mine) - covered,
                         pipe_km_below_min_dn=round(float(small.geometry.intersection(row.geometry).length.sum())
                                                    / 1000.0, 2))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = "id"
    return out


def critical_hydrants(net: Network, result: Any, *, hours: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per settlement with hydrants: the hydrant node with the lowest pressure in a baseline run.

    Parameters
    ----------
    result
        A :class:`~watersupply.simulation.SimulationResult` of `net` (the baseline).
    hours
        (from, to) hours in which to look for the lowest pressure; default the
        run's second day (24–48 h), which holds the evening peak.

    Returns
    -------
    DataFrame
        Indexed by settlement id: hydrant, node, min_pressure_m, at_h.
    """
    hyd = net.get("hydrants")
    cols = ["hydrant", "node", "min_pressure_m", "at_h"]
    if hyd is None or not len(hyd):
        return pd.DataFrame(columns=cols)
    a, b = hours if hours is not None else (24.0, 48.0)
    win = result.pressure.loc[(result.hours >= a) & (result.hours < b)]
    if not len(win):
        raise NetworkDataError(f"critical_hydrants: the run has no hours in [{a}, {b}); give hours=")
    rows = {}
    for sid, grp in hyd.groupby(hyd["settlement_id"].astype(str)):
        nodes = [n for n in dict.fromkeys(grp["node"].astype(str)) if n in win.columns]
        if not nodes:
            continue
        p = win[nodes]
        node = str(p.min().idxmin())
        rows[sid] = dict(hydrant=str(grp.loc[grp["node"].astype(str) == node, "id"].iloc[0]), node=node,
                         min_pressure_m=float(p[node].min()), at_h=float(p[node].idxmin()))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = "settlement_id"
    return out


def fire_flow_scenario(net: Network, settlement: str, *, node: str, at_h: float, for_h: float = FIRE_DURATION_H,
                       duration_h: float = 48.0, description: str = "") -> dict[str, Any]:
    """A fire-flow scenario (the mapping a ``scenarios/*.yaml`` file holds) at the GB 50974 flow.

    Parameters
    ----------
    settlement
        Settlement id (its population sets the flow).
    node
        The hydrant's junction.
    at_h, for_h
        When the fire starts (hours into the run) and how long it lasts.

    Returns
    -------
    dict
        name, title_zh, title_en, description, duration_h, start, events —
        validated by :func:`watersupply.scenario.parse_scenario`.
    """
    st = net.get("settlements")
    if st is None or settlement not in set(st["id"].astype(str)):
        raise NetworkDataError(f"fire_flow_scenario: settlement {settlement!r} is not in layer 'settlements'")
    row = st[st["id"].astype(str) == settlement].iloc[0]
    flow = fire_flow_ls(float(row["population"]))
    need = thresholds()["hydrant_residual_head_m"]
    name_zh = str(row.get("name_zh", settlement))
    data = dict(
        name=f"fire_flow_{settlement.lower()}",
        title_zh=f"{name_zh}消防用水{flow:g} L/s({for_h:g}小时)",
        title_en=f"Fire flow of {flow:g} L/s for {for_h:g} h in {row.get('name_en', settlement)}",
        description=description or (
            f"GB 50974-2014 Table 6.1.1: {int(row['population']):,} people -> one fire at {flow:g} L/s for "
            f"{for_h:g} h (Table 3.6.2), drawn at hydrant node {node} (the settlement's hydrant with the lowest "
            f"baseline pressure); residual pressure checked against {need:g} m (0.10 MPa, GB 50974 §7.2.8)."),
        duration_h=float(duration_h), start=0.0,
        events=[dict(type="fire_flow", node=node, flow_ls=flow, at_h=float(at_h), for_h=float(for_h))])
    from .scenario import parse_scenario
    parse_scenario(data, source=f"fire-flow scenario of {settlement}")
    return data
