"""The audit itself: :func:`audit` on any simulation result, :func:`audit_scenario` on a scenario file."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from .._errors import NetworkDataError
from ..schema import Network
from ..simulation import SimulationResult, quality_window
from ..standards import Thresholds, service_head_m, thresholds
from ..zones import static_heads
from ._common import DIMENSIONS, _s, _say, _score, _worst, _names, _members, _industrial_nodes
from .supply import (
    supply_graph, network_sources, _pipe_adjacency, _feeders, _chain_levels, supply_chains,
    _tank_links, trace_shares,
)
from .figures import (
    _check_settlements, _pipe_km, _network_figures, _feeding_text, _quality_figures,
    _pressure_figures, _price_figures, _unserved,
)
from .verdicts import _verdicts

__all__ = ["AuditResult", "audit", "audit_scenario"]

log = logging.getLogger(__name__)


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


def audit(net: Network, result: SimulationResult, *, t: Mapping[str, float] | None = None, wn: Any = None,
          trace: bool | str = "auto", include_industrial: bool = False, label: str = "baseline",
          workdir: str | os.PathLike | None = None, verify_fixes: bool = True) -> AuditResult:
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
        ``"auto"`` (default) traces only when some pressure zone has more than one
        source (or a stand-alone source exists), i.e. when the chain alone cannot
        tell the shares.
    include_industrial
        Count industrial demand nodes (the food park) as part of their settlement.
    label
        What is audited, for the report (``"baseline"``, a scenario name).
    workdir
        Parent folder for EPANET scratch files.
    verify_fixes
        Where a settlement fails or warns on tap chlorine, size a booster dose
        at its zone reservoir and verify it by a re-run (columns
        :data:`~watersupply.audit.fixes.FIX_COLUMNS`).

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
    from ..metrics import pump_energy

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
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    pump_to = {link: to for to, lst in feeders.items() for kind, link, _, _ in lst if kind == "pump"}
    structural = pd.DataFrame(0.0, index=pd.Index(list(members), name="settlement"),
                              columns=pd.Index(sources, name="source"))
    ambiguous = bool(standalone)
    for sid, m in members.items():
        if not m:
            continue
        elems: set[str] = set()
        for lv in _chain_levels(m, kinds, adj, feeders, tl):
            elems |= set(lv["plants"]) | set(lv["tanks"]) | set(lv["valves"]) | {pump_to[x] for x in lv["pumps"]}
            # more than one source in one zone: the water mixes, only a trace tells the shares
            ambiguous |= len(lv["plants"]) + len(lv["tanks"]) > 1
        for s_ in sources:
            if s_ in elems or (s_ in standalone and reach[s_] & set(m)):
                structural.loc[sid, s_] = 1.0
    if trace == "auto":
        trace = ambiguous
        if not ambiguous:
            notes.append(_say("每个村社区的供水链唯一(每个压力区只有一个水源):水源占比由供水链确定,无需示踪计算",
                              "every settlement has a single supply chain (one source per pressure zone): the "
                              "shares follow from the chain, no trace runs needed"))
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

    # --- per-node static head: the still-water HGL of each node's own pressure zone, PRVs and break
    # tanks included (zones.static_heads); the chain's source levels where it has no answer
    try:
        zone_static = static_heads(net)["static_head_m"]
    except NetworkDataError:  # a node without elevation: fall back to the chain's sources
        zone_static = pd.Series(dtype=float)

    # --- per-settlement figures
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
        levels = _chain_levels(m, kinds, adj, feeders, tl)
        rec.update(_pressure_figures(result, m, sh, step, levels[0] if levels else {}, top, prv_grade, nodes,
                                     popn, ww_min, kind, t, zone_static=zone_static))
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
    table["score"] = table[[f"{d}_verdict" for d in DIMENSIONS]].apply(lambda r: _score(list(r)), axis=1)
    steady_run = result.quality is not None and result.quality.method == "periodic steady state"
    if verify_fixes and not steady_run and "cl_min_mgL" in table:
        notes.append(_say("情景运行:补氯方案未复算验证", "a scenario's transient quality: booster fixes are "
                          "verified on the baseline (periodic steady state) only"))
    if verify_fixes and steady_run and "cl_min_mgL" in table:
        from .fixes import FIX_COLUMNS, verify_boosters

        zone_tanks = {sid: next((c for c in reversed(chains.get(sid, [])) if kinds.get(c) == "reservoir"), None)
                      for sid in table.index}
        fx = verify_boosters(net, result, table, members, zone_tanks, t, wn=wn, workdir=workdir)
        for c in FIX_COLUMNS:
            table[c] = fx[c].reindex(table.index) if len(fx) else np.nan
        for sid in fx.index:
            r_ = fx.loc[sid]
            ok = bool(r_["fix_verified"])
            text = _say(f"已验证:在 {r_['fix_booster_at']} 补氯 {float(r_['fix_booster_mgL']):.2f} mg/L 后最低余氯 "
                        f"{float(r_['cl_min_after_mgL']):.3f} mg/L" if ok else
                        f"在 {r_['fix_booster_at']} 补氯 {float(r_['fix_booster_mgL']):.2f} mg/L 复算仍未达标",
                        f"{'verified by a re-run' if ok else 'NOT enough by a re-run'}: booster "
                        f"{float(r_['fix_booster_mgL']):.2f} mg/L at {r_['fix_booster_at']} → lowest tap "
                        f"{table.loc[sid, 'cl_min_mgL']:.3f} → {float(r_['cl_min_after_mgL']):.3f} mg/L, highest tap in "
                        f"the network {float(r_['cl_max_after_mgL']):.2f} mg/L (limit {t['plant_chlorine_max_mgL']:g})")
            table.loc[sid, "fixes"] = (str(table.loc[sid, "fixes"]) + " | " if str(table.loc[sid].get("fixes", "")) not in
                                       ("", "nan") else "") + text
    table["verdict"] = table[[f"{d}_verdict" for d in DIMENSIONS]].apply(lambda r: _worst(*r), axis=1)
    capped = table.get("age_capped_nodes")
    n_capped = int(pd.to_numeric(capped, errors="coerce").fillna(0).sum()) if capped is not None else 0
    if n_capped:
        notes.append(_say(f"{n_capped} 个用水节点的水龄不收敛(报告为“未收敛”,不给数值)",
                          f"{n_capped} demand nodes hold water whose age does not settle: reported as not "
                          "settled, not as a number that depends on the run length"))
    q = result.quality
    if q is not None:
        notes.append(q.summary())
        if not q.chlorine_assessed:
            notes.append(_say("余氯未评估:模型没有氯源或衰减系数", q.not_assessed_reason))
    if not include_industrial:
        ind = _industrial_nodes(net)
        if ind:
            notes.append(_say(f"工业用水节点({len(ind)} 个)不计入村社区指标",
                              f"{len(ind)} industrial demand nodes (the food park) are left out of the settlements' "
                              "figures: the promise is to residents"))
    notes.append(_say("所需出厂余氯按一级衰减线性换算(稳态下与初始条件无关)",
                      "the required plant dose scales the current dose linearly (first-order decay; at periodic "
                      "steady state the initial chlorine no longer matters)"))
    cols_first = ["name_zh", "name_en", "kind", "population", "storeys", "demand_nodes", "demand_m3d",
                  "score", "verdict"] + [f"{d}_verdict" for d in DIMENSIONS]
    table = table[cols_first + [c for c in table.columns if c not in cols_first]]
    aud = AuditResult(table=table, shares=shares, sources=src_table, thresholds=t, label=label, notes=notes,
                      dose_mgL=dose, seconds=time.perf_counter() - t0)
    log.info("audit %s: %d settlements, %d traced sources, %.1f s", label, len(table), len(sources), aud.seconds)
    return aud


def audit_scenario(scenario: Any, *, net: Network | None = None, t: Mapping[str, float] | None = None,
                   compare: bool = True, baseline: Any = None, baseline_audit: AuditResult | None = None,
                   trace: bool | str = "auto",
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
    from ..model import to_wntr
    from ..scenario import Scenario, apply_events, load_scenario, resolve_scenario, run_scenario, scenario_network

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(resolve_scenario(scenario))
    net0, _ = scenario_network(sc, net=net)
    tt = t if isinstance(t, Thresholds) else thresholds(dict(t or {}))
    _check_settlements(net0, tt)  # bad settlements fail before the runs
    run = run_scenario(sc, net=net0, baseline=baseline, workdir=workdir, t=dict(tt))
    wn = apply_events(to_wntr(net0, duration_h=sc.duration_h), net0, sc)
    aud = audit(run.net, run.result, t=tt, wn=wn, label=sc.name, workdir=workdir, trace=trace)
    base = baseline_audit
    if compare and base is None:
        empty = sc.model_copy(update={"events": []})
        wn_b = apply_events(to_wntr(net0, duration_h=sc.duration_h), net0, empty)
        base = audit(net0, run.baseline, t=tt, wn=wn_b, label="baseline", workdir=workdir, trace=trace)
    return aud, base, run
