"""Writing a scenario run's files: results.gpkg, diff.csv, tables, the bilingual report and the map.

Every file goes through the atomic writers of :mod:`watersupply.io`.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd

from .. import metrics
from ..io import write_csv, write_layers, write_text
from ..report import markdown_table, served_text
from .impact import RECOVERY_TOLERANCE_M, ScenarioRun, scenario_settlement_table

__all__ = ["scenario_layers", "scenario_report", "write_scenario"]

log = logging.getLogger(__name__)


def _join(layer: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    extra = table.drop(columns=[c for c in table.columns if c in layer.columns and c != "id"], errors="ignore")
    out = layer.merge(extra, left_on="id", right_index=True, how="left")
    return gpd.GeoDataFrame(out, geometry=layer.geometry.name, crs=layer.crs)


def scenario_layers(run: ScenarioRun) -> dict[str, pd.DataFrame]:
    """GIS layers of a run: nodes, pipes, settlements (scenario results and deltas), facilities, pumps,
    and the tables people_without_water (tidy: time_h, settlement, people), events and tanks."""
    net = run.net
    layers: dict[str, pd.DataFrame] = {
        "nodes": _join(net["nodes"], run.nodes),
        "pipes": _join(net["pipes"], run.pipes),
    }
    if "settlements" in net and len(net["settlements"]):
        layers["settlements"] = _join(net["settlements"], scenario_settlement_table(run))
    if "facilities" in net and len(net["facilities"]):
        fac = net["facilities"]
        layers["facilities"] = _join(fac, run.tanks) if len(run.tanks) else fac
    if "pumps" in net and len(net["pumps"]):
        pe = metrics.pump_energy(run.result, net)
        layers["pumps"] = _join(net["pumps"], pe)
    pw = run.people_without_water.copy()
    pw.columns = pw.columns.astype(str)
    tidy = pw.rename_axis("time_h").reset_index().melt(id_vars="time_h", var_name="settlement", value_name="people")
    layers["people_without_water"] = tidy.sort_values(["settlement", "time_h"]).reset_index(drop=True)
    layers["events"] = run.events.reset_index()
    if len(run.tanks):
        layers["tanks"] = run.tanks.reset_index()
    if len(run.stations):
        layers["stations"] = run.stations.reset_index()
    return layers


def _fmt_h(v: float, left: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return f"> {left:g} h"
    return f"{v:g} h"


def scenario_report(run: ScenarioRun) -> str:
    """The bilingual (中文/English) Markdown report of a scenario run."""
    sc = run.scenario
    st = run.settlements
    head = run.headline()
    base_ph = float((run.settlements["person_hours_without_water"] - run.diff["delta_person_hours_without_water"])
                    .sum()) if "delta_person_hours_without_water" in run.diff else float("nan")
    out = [f"# {sc.title_zh}", f"## {sc.title_en}", "",
           f"情景 Scenario `{sc.name}` · 管网 network `{run.network_name}` · 时长 duration {sc.duration_h:g} h · "
           f"起始 start {sc.start:g}:00 · 压力驱动需水 pressure-dependent demand (EPANET 2.2 via WNTR)", ""]
    if sc.description:
        out += ["### 说明 Description", "", sc.description.strip(), ""]
    out += ["## 事件 Events", ""]
    if len(run.events):
        out += ["时间为自模拟开始的小时数。Hours are counted from the start of the run.", "",
                markdown_table(run.events), ""]
    else:
        out += ["无事件:结果即基准工况。No events: the results are the baseline's.", ""]
    out += ["## 结论 Headline", "",
            f"- 无水人时 person-hours without water: **{head['person_hours_without_water']:,.0f}** "
            f"(基准 baseline {base_ph:,.0f})",
            f"- 同时无水最多人数 peak people without water: **{head['people_without_water_max']:,.0f}**",
            f"- 受影响村/社区 settlements with people without water: **{head['settlements_affected']}**",
            f"- 需水满足率 demand served: **{served_text(head['demand_served_pct'], run.unbalanced_hours)}**", ""]
    if run.unbalanced_hours:
        out[-1:] = [f"- 注 Note: EPANET 在 {head['unbalanced_steps']:.0f} 个时步未能平衡水力计算;这些时步的无水人时与压力为近似值。"
                    f"EPANET could not balance the hydraulics at {head['unbalanced_steps']:.0f} step(s): person-hours and "
                    "pressures at those steps are approximate (see the sanity report).", ""]
    t0 = sc.outage_start_h()
    left = sc.duration_h - (t0 if t0 is not None else 0.0)
    cols = {"name_zh": "名称", "name_en": "name", "population": "人口 pop.",
            "demand_served_pct": "满足率 served %", "demand_served_event_pct": "事件期 in event %",
            "min_pressure_m": "最低压力 min p m", "hours_below_service": "低于服务水头 h below service",
            "people_without_water_max": "最多无水人数 peak w/o water",
            "person_hours_without_water": "无水人时 person-h", "unserved_m3": "缺水量 unserved m³",
            "autonomy_h": "自持 autonomy",
            "recovery_h": "恢复 recovery", "downstream": "下游 downstream"}
    table = st[[c for c in cols if c in st]].copy()
    for c in ("population", "hours_below_service", "people_without_water_max", "person_hours_without_water",
              "unserved_m3"):
        if c in table:
            table[c] = [int(round(v)) if pd.notna(v) else v for v in table[c]]
            table[c] = table[c].astype(object)
    if "autonomy_h" in table:
        table["autonomy_h"] = [_fmt_h(v, left) if t0 is not None else "–" for v in table["autonomy_h"]]
    if "recovery_h" in table:
        end = sc.end_h()
        table["recovery_h"] = ["–" if end is None else (f"{v:g} h" if not math.isnan(v) else
                                                          f"> {sc.duration_h - end:g} h")
                               for v in table["recovery_h"]]
    out += ["## 村与社区 Villages and communities", "", markdown_table(table.rename(columns=cols)), ""]
    pw = run.people_without_water
    hit = pw.loc[pw.sum(axis=1) > 0, pw.sum() > 0] if len(pw.columns) else pw
    if len(hit):
        shown = hit.head(48).astype(int)
        shown.index = [f"{h:g}" for h in shown.index]
        shown.index.name = "h"
        out += ["### 逐时无水人数 People without water by hour", "",
                "仅列出有人无水的小时与村/社区。Only the hours and settlements with people without water"
                + (" (first 48 hours shown; all in people_without_water.csv)." if len(hit) > 48 else "."), "",
                markdown_table(shown), ""]
    dcols = [c for c in run.diff.columns if c.startswith("delta_")]
    if dcols:
        d = run.diff[["name_en", *dcols]].rename(columns=lambda c: c.replace("delta_", "Δ "))
        out += ["## 与基准比较 Change from the baseline", "",
                "情景减基准(同一管网、起始时刻与时长)。Scenario minus baseline (same network, start and duration).",
                "", markdown_table(d), ""]
    if len(run.tanks):
        out += ["## 水池 Reservoirs", "",
                "事件时刻的水位与可用水量、最低水位、相对基准的最大降幅、放空时长。Level and usable volume at the "
                "(first outage) event, lowest level, largest drop below the baseline, hours empty, time to empty.",
                "", markdown_table(run.tanks), ""]
    if len(run.stations):
        out += ["## 泵站 Pump stations", "",
                "抽水量、能耗与运行时长(与基准之差)。Volume pumped, energy and hours running, with the change from "
                "the baseline.", "", markdown_table(run.stations), ""]
    if len(run.sources):
        out += ["## 水源 Sources", "", "水厂(定水头水源)出水量。Outflow of each plant (fixed-head source).", "",
                markdown_table(run.sources), ""]
    if len(run.fires):
        out += ["## 消防 Fire flow", "",
                "消火栓剩余压力按 hydrant_residual_head_m 校核。Residual pressure at the hydrant node checked "
                "against hydrant_residual_head_m; delivered flow under pressure-dependent demand.", "",
                markdown_table(run.fires), ""]
    if len(run.leaks):
        out += ["## 漏损 Leaks", "",
                "孔口出流 Q = Cd·A·√(2g·p),以 EPANET 射流器 (emitter) 表示,系数 K = Cd·A·√(2g)。"
                "Orifice outflow Q = Cd·A·√(2g·p) as an EPANET emitter with K = Cd·A·√(2g).", "",
                markdown_table(run.leaks), ""]
    out += ["## 定义 Definitions", "",
            "- 无水 without water: 节点压力低于压力驱动需水的最小压力(1 m)。pressure below the PDD minimum "
            "pressure (1 m).",
            f"- 恢复时间 time to recovery: 自最后一个事件结束起,至该村/社区所有用水节点有水且压力回到基准的 "
            f"{RECOVERY_TOLERANCE_M:g} m 以内(或不低于服务水头)并保持到模拟结束的小时数。Hours from the end of "
            f"the last event until every demand node has water and pressure within {RECOVERY_TOLERANCE_M:g} m of "
            "the baseline (or at least its service head) for the rest of the run; '> N h' = not within the run.",
            "- 蓄水自持时间 storage autonomy: 自最早的停运类事件开始,至该村/社区首次有人无水的小时数;"
            "'> N h' 表示模拟期内未断水。Hours from the start of the earliest outage-type event until someone in "
            "the settlement first loses water; '> N h' = never within the run.",
            "- 下游 downstream: 所有来自水厂的路径都经过被关闭的元件。Every path from a plant passes through a "
            "closed element (reservoirs are not sources here).",
            "- 时间分辨率 1 h(报告步长)。Resolution: the 1 h reporting step.", ""]
    if run.warnings:
        out += ["## 水力问题 Hydraulic warnings", ""] + [f"- {w}" for w in run.warnings] + [""]
    return "\n".join(out) + "\n"


def _map(run: ScenarioRun, layers: dict[str, pd.DataFrame], path: Path) -> Path:
    from ..maps import render_service_map, scenario_overlay

    geo = {k: v for k, v in layers.items() if isinstance(v, gpd.GeoDataFrame)}
    demand = metrics.demand_nodes(run.net)
    overlay = scenario_overlay(run.baseline, run.result, run.net, label=run.scenario.title_en)
    return render_service_map(geo, out_html=path, title=(run.scenario.title_zh, run.scenario.title_en),
                              pressure=run.result.pressure.reindex(columns=demand),
                              tank_level=run.result.tank_level, overlay=overlay)


def write_scenario(run: ScenarioRun, out_dir: str | os.PathLike, *, make_map: bool = True) -> dict[str, Path]:
    """Write a run's files into `out_dir` (created when needed), each atomically.

    Files: ``results.gpkg`` (node, pipe, settlement, facility and pump layers with
    scenario results and deltas; tables people_without_water, events, tanks),
    ``diff.csv`` (per settlement, scenario − baseline), ``settlements.csv``,
    ``people_without_water.csv`` (hours × settlements), ``report.md``,
    ``scenario.yaml`` (the validated scenario, defaults filled in) and ``map.html``.

    Returns
    -------
    dict
        File name → path; also stored in ``run.files``.
    """
    out = Path(out_dir)
    layers = scenario_layers(run)
    files: dict[str, Path] = {}
    files["results.gpkg"] = write_layers(layers, out / "results.gpkg")
    files["diff.csv"] = write_csv(run.diff, out / "diff.csv")
    files["settlements.csv"] = write_csv(scenario_settlement_table(run), out / "settlements.csv")
    pw = run.people_without_water.copy()
    pw.index.name = "time_h"
    files["people_without_water.csv"] = write_csv(pw, out / "people_without_water.csv")
    files["report.md"] = write_text(scenario_report(run), out / "report.md")
    files["scenario.yaml"] = write_text(run.scenario.to_yaml(), out / "scenario.yaml")
    if make_map:
        files["map.html"] = _map(run, layers, out / "map.html")
    run.files.update(files)
    return files
