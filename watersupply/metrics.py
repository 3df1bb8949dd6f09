"""Metrics over simulation results: per node, pipe, pump and settlement, and the soundness checks.

Every function takes a :class:`~watersupply.simulation.SimulationResult` and the
network's layers and returns a DataFrame indexed by element id (or a dict of
figures), so results join straight back onto the GIS layers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .hydraulics import SECONDS_PER_DAY, SECONDS_PER_HOUR, pump_power_kw
from .pumpcurves import efficiency_at
from .schema import Network
from .simulation import SimulationResult, age_not_settled, chlorine_status, quality_window
from .standards import service_head_m, thresholds

__all__ = [
    "demand_nodes",
    "service_heads",
    "node_summary",
    "pipe_summary",
    "pump_energy",
    "settlement_summary",
    "soundness",
    "without_water",
    "people_without_water",
]

#: Density of water (kg/m³), for pump power ρ g Q H.


def demand_nodes(net: Network) -> pd.Index:
    """Ids of junctions with a positive base demand, in layer order."""
    n = net["nodes"]
    dem = pd.to_numeric(n.get("base_demand_m3d", pd.Series(0.0, index=n.index)), errors="coerce").fillna(0.0)
    return pd.Index(n.loc[(n["kind"] == "junction") & (dem > 0), "id"].astype(str), name="node")


def service_heads(net: Network, t: Mapping[str, float] | None = None) -> pd.Series:
    """Required service head (m) at each demand node, by its settlement's rule and storeys.

    Communities follow GB 50013-2018 §3.0.10, villages the rural rule; nodes
    outside any settlement (industry) use the 1-storey urban head.
    """
    t = t or thresholds()
    nodes = net["nodes"].set_index("id")
    ids = demand_nodes(net)
    st = net.get("settlements")
    rule: dict[str, float] = {}
    if st is not None and len(st):
        for row in st.itertuples(index=False):
            storeys = int(getattr(row, "storeys", 2) if pd.notna(getattr(row, "storeys", np.nan)) else 2)
            rule[str(row.id)] = service_head_m(str(row.kind), storeys, t)
    default = float(t["urban_head_1_storey_m"])
    sid = nodes.reindex(ids)["settlement_id"] if "settlement_id" in nodes else pd.Series(None, index=ids)
    heads = [rule.get(str(s), default) if s is not None and not pd.isna(s) else default for s in sid]
    return pd.Series(heads, index=ids, name="service_head_m", dtype=float)


def node_summary(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per-node results: pressure (min/mean/max), hours below service head, chlorine and age.

    Quality figures are taken over :func:`~watersupply.simulation.quality_window`.
    """
    t = t or thresholds()
    ids = net["nodes"]["id"].astype(str)
    p = result.pressure.reindex(columns=ids)
    out = pd.DataFrame(index=pd.Index(ids, name="id"))
    out["min_pressure_m"] = p.min()
    out["mean_pressure_m"] = p.mean()
    out["max_pressure_m"] = p.max()
    sh = service_heads(net, t)
    out["service_head_m"] = sh.reindex(out.index)
    below = p[sh.index].lt(sh, axis=1).sum() if len(sh) else pd.Series(dtype=float)
    step = _step_h(result)
    out["hours_below_service"] = (below * step).reindex(out.index)
    exp = result.expected_demand.reindex(columns=ids).sum()
    got = result.demand.reindex(columns=ids).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        # EPANET's pressure-driven solve can overshoot the request by ~0.1 %: report at most 100 %
        out["demand_served_pct"] = np.where(exp > 0, np.minimum(100.0, 100.0 * got / exp), np.nan)
    win = quality_window(result)
    if result.chlorine is not None:
        out["min_chlorine_mgL"] = result.chlorine.loc[win].reindex(columns=ids).min()
    if result.age is not None:
        age = result.age.loc[win].reindex(columns=ids)
        out["max_age_h"] = age.max()
        out["mean_age_h"] = age.mean()
        bad = out.index.isin(age_not_settled(result))
        out.loc[bad, ["max_age_h", "mean_age_h"]] = np.nan  # no number that depends on the run length
        out["age_settled"] = ~bad
    return out


def _step_h(result: SimulationResult) -> float:
    h = result.hours.to_numpy(dtype=float)
    return float(np.median(np.diff(h))) if len(h) > 1 else 1.0


def pipe_summary(result: SimulationResult, net: Network) -> pd.DataFrame:
    """Per-pipe results: max velocity (m/s), mean and max absolute flow (L/s), hours closed."""
    ids = net["pipes"]["id"].astype(str)
    v = result.velocity.reindex(columns=ids)
    q = result.flow.reindex(columns=ids)
    out = pd.DataFrame(index=pd.Index(ids, name="id"))
    out["max_velocity_ms"] = v.max()
    out["mean_flow_ls"] = 1000.0 * q.mean()
    out["max_abs_flow_ls"] = 1000.0 * q.abs().max()
    out["hours_closed"] = (result.status.reindex(columns=ids) == 0).sum() * _step_h(result)
    return out


def pump_energy(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Per-pump energy over the run: volume pumped (m³), energy (kWh), hours running, kWh/m³.

    Power = ρ·g·Q·H / η with H the head gain across the pump and η read from the
    pump's efficiency curve at the pumped flow (:func:`watersupply.pumpcurves.efficiency_at`),
    else the pump's ``efficiency`` (or the ``pump_efficiency`` threshold).
    """
    t = t or thresholds()
    pumps = net.get("pumps")
    cols = ["station_id", "volume_m3", "energy_kwh", "hours_running", "kwh_per_m3"]
    if pumps is None or not len(pumps):
        return pd.DataFrame(columns=cols)
    step = _step_h(result)
    rows = {}
    for row in pumps.itertuples(index=False):
        pid = str(row.id)
        q = result.flow[pid].clip(lower=0.0) if pid in result.flow else pd.Series(0.0, index=result.hours)
        gain = (result.head[str(row.to_node)] - result.head[str(row.from_node)]).clip(lower=0.0)
        eff = float(getattr(row, "efficiency", np.nan))
        if not eff > 0:
            eff = float(t["pump_efficiency"])
        # integrate over the reporting steps except the last instant
        qv = q.to_numpy()[:-1]
        hv = gain.to_numpy()[:-1]
        curve_eff = efficiency_at(net, pid, 1000.0 * qv)  # the pump's efficiency curve, where it has one
        if curve_eff is not None:
            eff = curve_eff
        vol = float(qv.sum() * step * SECONDS_PER_HOUR)
        kwh = float(pump_power_kw(qv, hv, eff).sum() * step)  # kW·h
        rows[pid] = dict(station_id=str(getattr(row, "station_id", "")), volume_m3=vol, energy_kwh=kwh,
                         hours_running=float((qv > 1e-6).sum() * step),
                         kwh_per_m3=kwh / vol if vol > 0 else np.nan)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = "id"
    return out


def settlement_summary(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per settlement: population, demand, pressure, service-head compliance, chlorine, age.
    """
    t = t or thresholds()
    st = net.get("settlements")
    cols = ["name_zh", "name_en", "kind", "population", "demand_m3d", "demand_served_pct", "min_pressure_m",
            "mean_pressure_m", "service_head_m", "pressure_compliance", "hours_below_service",
            "min_chlorine_mgL", "max_age_h", "p95_age_h", "chlorine_status", "age_status"]
    if st is None or not len(st):
        return pd.DataFrame(columns=cols)
    layer = net["nodes"].set_index("id")
    ids = demand_nodes(net)
    sid = layer.loc[ids, "settlement_id"] if "settlement_id" in layer else pd.Series(None, index=ids)
    sh = service_heads(net, t)
    p = result.pressure.reindex(columns=ids)
    ok = p.ge(sh.reindex(ids), axis=1)
    win = quality_window(result)
    step = _step_h(result)
    cl_status = chlorine_status(result)
    unsettled = set(age_not_settled(result))
    rows = []
    for row in st.itertuples(index=False):
        members = sid.index[sid.astype(str) == str(row.id)]
        exp = result.expected_demand[members].sum().sum() if len(members) else 0.0
        got = result.demand[members].sum().sum() if len(members) else 0.0
        rec = dict(id=str(row.id), name_zh=getattr(row, "name_zh", ""), name_en=getattr(row, "name_en", ""),
                   kind=row.kind, population=int(row.population),
                   demand_m3d=float(result.expected_demand[members].mean().sum() * SECONDS_PER_DAY) if len(members) else 0.0,
                   demand_served_pct=min(100.0, 100.0 * got / exp) if exp > 0 else np.nan)
        if len(members):
            rec.update(min_pressure_m=float(p[members].min().min()),
                       mean_pressure_m=float(p[members].mean().mean()),
                       service_head_m=float(sh[members].max()),
                       pressure_compliance=float(ok[members].to_numpy().mean()),
                       hours_below_service=float((~ok[members]).any(axis=1).sum() * step))
            rec["chlorine_status"] = cl_status
            if result.chlorine is not None and cl_status == "assessed":
                rec["min_chlorine_mgL"] = float(result.chlorine.loc[win, members].min().min())
            if result.age is not None:
                bad = sorted(set(members) & unsettled)
                if bad:
                    # its age is not a number: it grows with the run length
                    rec["age_status"] = (f"not settled at {len(bad)} node(s): {', '.join(bad[:5])}"
                                         f"{' …' if len(bad) > 5 else ''}")
                else:
                    a = result.age.loc[win, members]
                    rec["max_age_h"] = float(a.max().max())
                    rec["p95_age_h"] = float(np.percentile(a.to_numpy(), 95))
                    rec["age_status"] = "settled" if result.quality is None or \
                        result.quality.method != "transient" else "transient (not at steady state)"
        rows.append(rec)
    out = pd.DataFrame(rows).set_index("id").reindex(columns=cols)
    return out


def soundness(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The baseline soundness checks, one row each: figure, target, pass/fail and the rule.

    Checks: no negative pressure at demand nodes; service head met at >= 97 % of
    demand-node-hours (CJ/T 316); every reservoir stays above its minimum level
    and its level at the end is within 10 % of its level 48 h earlier; main
    velocities <= 2.5 m/s; tap chlorine >= 0.05 mg/L (GB 5749) at >= 95 % of
    demand nodes over the quality window.
    """
    t = t or thresholds()
    ids = demand_nodes(net)
    p = result.pressure.reindex(columns=ids)
    sh = service_heads(net, t)
    rows = []

    def add(check: str, figure: float, target: str, ok: bool, rule: str, detail: str = "") -> None:
        rows.append(dict(check=check, figure=figure, target=target, passed=bool(ok), rule=rule, detail=detail))

    minp = p.min()
    has = bool(minp.notna().any())
    worst = minp.idxmin() if has else ""
    add("min_pressure_demand_nodes_m", float(minp.min()) if has else np.nan, ">= 0",
        bool((minp >= 0).all()) and has, "no negative pressure at demand nodes",
        f"lowest at {worst}" if has else "no demand node")
    comp = float(p.ge(sh, axis=1).to_numpy().mean()) if len(ids) else np.nan
    add("service_head_compliance", comp, f">= {t['pressure_compliance_min']:.2f}",
        comp >= t["pressure_compliance_min"], "CJ/T 316-2009 §6.2 with GB 50013 / rural service heads")
    fac = net.get("facilities")
    levels = result.tank_level
    if len(levels.columns):
        end = float(levels.index.max())
        ref_t = end - 48.0 if end >= 48 else float(levels.index.min())
        lv_end = levels.loc[end]
        lv_ref = levels.loc[levels.index[np.argmin(np.abs(levels.index - ref_t))]]
        drift = (lv_end - lv_ref).abs() / lv_ref.where(lv_ref > 0)  # NaN where the reservoir was empty
        tol = t["reservoir_cycle_tolerance"]
        minlv = pd.Series(0.0, index=levels.columns)
        if fac is not None and "min_level_m" in fac:
            r = fac[fac["kind"] == "reservoir"].set_index("node_id")["min_level_m"]
            minlv = r.reindex(levels.columns).fillna(0.0).astype(float)
        empty = levels.le(minlv + 1e-3).any()
        add("reservoirs_never_empty", float((~empty).mean()), "1.00", not bool(empty.any()),
            "no reservoir reaches its minimum level",
            ", ".join(empty[empty].index) if empty.any() else "")
        add("reservoir_cycle_drift", float(drift.max()), f"<= {tol:.2f}", bool((drift <= tol).all()),  # NaN fails
            f"level at {end:g} h within {tol:.0%} of its level at {ref_t:g} h",
            ", ".join(f"{k} {v:.0%}" for k, v in drift[drift > tol].items()))
    pipes = net["pipes"]
    mains = pipes.loc[pipes.get("class", pd.Series("main", index=pipes.index)) == "main", "id"].astype(str)
    vmax = float(result.velocity.reindex(columns=mains).max().max()) if len(mains) else 0.0
    add("max_main_velocity_ms", vmax, f"<= {t['main_velocity_max_ms']:g}", vmax <= t["main_velocity_max_ms"],
        "main velocity limit (GB 50013, secondary)")
    status = chlorine_status(result)
    if status != "assessed" and len(ids):
        add("chlorine_node_share", np.nan, "not assessed", False, "tap free chlorine (GB 5749-2022)", status)
    elif result.chlorine is not None and len(ids):
        win = quality_window(result)
        cl = result.chlorine.loc[win, ids].min()
        share = float((cl >= t["tap_chlorine_min_mgL"]).mean())
        add("chlorine_node_share", share, f">= {t['chlorine_node_share_min']:.2f}",
            share >= t["chlorine_node_share_min"],
            f"tap free chlorine >= {t['tap_chlorine_min_mgL']} mg/L (GB 5749-2022) over hours "
            f"{win.min():g}-{win.max():g}")
    return pd.DataFrame(rows).set_index("check")


#: A connection delivering less than this share of its requested demand counts as without water.
SERVED_SHARE_MIN = 0.01


def without_water(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Boolean table (hours × demand nodes): True where a connection gets (almost) no water.

    Under pressure-dependent demand a connection below ``pdd_minimum_pressure_m``
    receives nothing; a node cut off from every source can show a pressure near the
    minimum while receiving nothing, so a node that receives less than
    :data:`SERVED_SHARE_MIN` of its requested demand also counts. People at such
    nodes are "without water".
    """
    t = t or thresholds()
    ids = demand_nodes(net)
    low = result.pressure.reindex(columns=ids) < float(t["pdd_minimum_pressure_m"])
    exp = result.expected_demand.reindex(columns=ids)
    got = result.demand.reindex(columns=ids)
    starved = (exp > 0) & (got < SERVED_SHARE_MIN * exp)
    return low | starved


def people_without_water(result: SimulationResult, net: Network, t: Mapping[str, float] | None = None,
                         *, by: str = "settlement") -> pd.DataFrame:
    """People without water per hour (hours × settlement, or × node with ``by="node"``).

    Population is the ``population`` attribute of the demand nodes.
    """
    ww = without_water(result, net, t)
    nodes = net["nodes"].set_index("id")
    pop = pd.to_numeric(nodes["population"], errors="coerce").reindex(ww.columns).fillna(0.0) \
        if "population" in nodes else pd.Series(0.0, index=ww.columns)
    people = ww.astype(float).mul(pop, axis=1)
    if by == "node":
        return people
    sid = nodes["settlement_id"].reindex(ww.columns).fillna("(none)") if "settlement_id" in nodes \
        else pd.Series("(none)", index=ww.columns)
    return people.T.groupby(sid.to_numpy()).sum().T
