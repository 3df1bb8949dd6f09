"""The figures of each dimension per settlement: network connection, chlorine and water age, service
pressure and static head, cost to serve; and the checks of the settlements layer."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from .._errors import NetworkDataError
from ..schema import Network
from ..simulation import SimulationResult
from ..standards import thresholds
from ..zones import OVER_TOL_M
from ..simulation import hour_ranges as _ranges
from ._common import DIMENSIONS, _s, _say, _industrial_nodes, _weights

__all__ = ["check_settlements", "required_plant_dose"]


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
    for row in st.itertuples(index=False):
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
    from ..simulation import age_not_settled, chlorine_status

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
    out["cl_status"] = chlorine_status(result)
    if out["cl_status"] != "assessed":
        for k in ("cl_min_mgL", "cl_node_share", "cl_hour_share", "cl_mean_mgL", "cl_required_dose_mgL"):
            out[k] = np.nan
        out["cl_worst_node"] = ""
    if result.age is not None:
        age = result.age.reindex(index=win, columns=list(m)).where(served)
        unsettled = set(age_not_settled(result))
        capped = pd.Series([n in unsettled for n in m], index=list(m))
        age = age.loc[:, ~capped.to_numpy()]  # no number for water whose age never settles
        vals = age.to_numpy()[np.isfinite(age.to_numpy())]
        out.update(age_max_h=float(vals.max()) if len(vals) else np.nan,
                   age_p95_h=float(np.percentile(vals, 95)) if len(vals) else np.nan,
                   age_mean_h=float((age.fillna(0.0) * w.loc[:, age.columns]).to_numpy().sum()
                                    / max(float(w.loc[:, age.columns].to_numpy().sum()), 1e-12)),
                   age_capped_nodes=int(capped.sum()),
                   age_capped_demand_share=float(w.loc[:, capped].to_numpy().sum() / w.to_numpy().sum()))
    else:
        out.update(age_max_h=np.nan, age_p95_h=np.nan, age_mean_h=np.nan, age_capped_nodes=0,
                   age_capped_demand_share=np.nan)
    return out


def _pressure_figures(result: SimulationResult, m: Sequence[str], sh: float, step: float,
                      level0: Mapping[str, list[str]], top: Mapping[str, float], prv_grade: Mapping[str, float],
                      nodes: pd.DataFrame, popn: pd.Series, ww_min: float, kind: str,
                      t: Mapping[str, float], zone_static: pd.Series | None = None) -> dict[str, Any]:
    p = result.pressure.reindex(columns=list(m))
    ok = p.ge(sh)
    below_hours = p.index[(~ok).any(axis=1)]
    grades = [top[x] for x in list(level0.get("tanks", [])) + list(level0.get("plants", [])) if x in top]
    grades += [prv_grade[v] for v in level0.get("valves", []) if v in prv_grade]
    elev = nodes["elevation_m"].reindex(list(m)).astype(float)
    zs = (zone_static if zone_static is not None else pd.Series(dtype=float)).reindex(list(m)).astype(float)
    if len(zs) and zs.notna().all():
        static = zs
        basis = ("still-water HGL of the node's pressure zone (reservoir top water level / plant head / "
                 "PRV or break-tank grade / pump shutoff head; zones.static_heads)")
    elif grades:
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
                static_head_nodes_over=int((static > limit + OVER_TOL_M).sum()) if kind == "village" else 0,
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
