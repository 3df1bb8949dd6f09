"""Verdicts (pass / warn / fail) per dimension, with the rule and numbers behind them, and the fixes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from ..schema import Network
from ..simulation import SimulationResult
from ..simulation import hour_ranges as _ranges
from ._common import _s, _say, _pct
from .figures import _lengths
from .supply import _chain_levels

__all__: list[str] = []


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
    def _dose(v: float) -> str:
        return f"{v:.2f} mg/L" if np.isfinite(v) else "— (no dose reaches taps whose water has no chlorine)"

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
    cl_status = str(r.get("cl_status", "assessed") or "assessed")
    if cl_status != "assessed":
        out["quality_verdict"] = "not assessed"
        out["quality_reason"] = _say("未评估:模型没有氯源或衰减系数(不作为通过)",
                                     f"{cl_status} (not a pass)") + (
            f"; water age not settled at {capped} node(s)" if capped else
            (f"; 95th-percentile age {p95:.0f} h" if np.isfinite(p95) else ""))
        fixes.append(_say("补充出厂加氯量与余氯衰减系数(实测)后重新评估",
                          "add the plant chlorine dose and measured decay coefficients to the model, then re-run"))
    elif not np.isfinite(float(r["cl_node_share"])):
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
            else:
                fixes.append(dose_fix if dose_fix else booster)
        if np.isfinite(p95) and p95 > age_warn:
            zh.append(f"95% 水龄 {p95:.0f} h 超过 {age_warn:g} h")
            en.append(f"95th-percentile age {p95:.0f} h > {age_warn:g} h")
        if capped:
            zh.append(f"{capped} 个末端节点水龄不收敛(无水流更新)")
            en.append(f"{capped} end nodes ({_pct(r['age_capped_demand_share'])} of demand) hold water whose age "
                      "never settles (not settled: no flow renews it)")
        out["quality_reason"] = _say(";".join(zh), "; ".join(en)) + f" (min Cl {r['cl_min_mgL']:.3f} mg/L; {cl_rule})"
        if capped or (np.isfinite(p95) and p95 > age_warn):
            fixes.append(_say("末端管道定期冲洗或成环,降低水龄", "flush or loop the dead ends to cut water age"))
    else:
        out["quality_verdict"] = "pass"
        out["quality_reason"] = _say(
            f"全部节点余氯达标(最低 {r['cl_min_mgL']:.3f} mg/L),95% 水龄 {p95:.0f} h",
            f"all taps keep {cl_rule}, min {r['cl_min_mgL']:.3f} mg/L; 95th-percentile age {p95:.0f} h; "
            f"plant dose needed {_dose(req)}")

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
        fixes.append(_say(f"水价说明:统一水价下每年需交叉补贴约 {sub:,.0f} 元"
                          + (f";优先降低 {top_station} 的提升能耗" if top_station else ""),
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
