"""Files of a design: ``out/<network>/design/``.

``designed.inp`` (the designed network, EPANET 2.2), ``designed.gpkg`` (its
layers plus a ``works`` layer of the pipes laid), ``works.csv`` (element, old
and new size, length, unit cost, cost), ``design_summary.csv`` (total cost,
evaluations, time, minimum pressure, feasibility from the full EPANET run),
``pressure_check.csv`` (each checked node: required and achieved minimum
pressure), ``report.md`` (a bilingual section), ``pareto.csv`` and
``pareto.png`` (when a cost–resilience front was traced) and, for a scenario,
the scenario re-run on the designed network in ``rerun_<scenario>/``.
Every file is written atomically.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import wntr

from ..io import atomic_path, write_csv, write_layers, write_text
from ..report import served_text
from ..schema import LAYERS, Network
from .core import DesignResult
from .scenario import ScenarioDesign

__all__ = ["write_design", "design_report", "works_layer", "pareto_figure"]


def _write_inp(wn: wntr.network.WaterNetworkModel, path: Path, units: str) -> Path:
    with atomic_path(path) as tmp:
        wntr.network.write_inpfile(wn, str(tmp), units=units, version=2.2)
        text = tmp.read_text(encoding="utf-8")
        tmp.write_text("\n".join(ln for ln in text.split("\n") if not ln.startswith("; Created:")), encoding="utf-8")
    return path


def works_layer(net: Network, result: DesignResult) -> gpd.GeoDataFrame:
    """The works as a GeoDataFrame, CRS of the network: pipes laid (geometry of the pipe, or of the pipe
    duplicated), pumps upgraded (point of their suction node) and reservoirs enlarged (their node)."""
    pipes = net["pipes"]
    geo = pipes.set_index(pipes["id"].astype(str))["geometry"]
    w = result.works.copy()
    nodes = net.get("nodes")
    pts = nodes.set_index(nodes["id"].astype(str))["geometry"] if nodes is not None else pd.Series(dtype=object)
    pump_from = {}
    if net.get("pumps") is not None:
        pump_from = dict(zip(net["pumps"]["id"].astype(str), net["pumps"]["from_node"].astype(str)))
    shapes = []
    for e, p in zip(w["element"].astype(str), w["pipe"].astype(str)):
        shapes.append(geo.get(p) if p else pts.get(pump_from.get(e, e)))
    if "old_size" in w:  # mixed geometry types do not go in one GeoPackage layer: keep the pipes' lines there
        w = w.assign(kind=["pipe" if p else "pump/storage" for p in w["pipe"].astype(str)])
    return gpd.GeoDataFrame(w, geometry=shapes, crs=pipes.crs)


def pareto_figure(front: pd.DataFrame, path: str | os.PathLike, *, currency: str, chosen_cost: float,
                  title: str) -> Path:
    """Cost against Todini's resilience index, with bilingual (CJK) labels, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..maps.fonts import cjk_font

    family = cjk_font()
    res_col = "resilience_verified" if "resilience_verified" in front else "resilience"
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    try:
        scale = 1e6 if front["cost"].max() > 5e6 else 1e3
        unit = "M" if scale == 1e6 else "k"
        ax.plot(front["cost"] / scale, front[res_col], "o-", color="#1f77b4", label="帕累托前沿 Pareto front")
        pick = front.loc[(front["cost"] - chosen_cost).abs().idxmin()]
        ax.plot([pick["cost"] / scale], [pick[res_col]], "s", color="#d62728", ms=9,
                label="最低造价方案 least-cost design")
        ax.set_xlabel(f"造价 Capital cost ({unit} {currency})", fontfamily=family)
        ax.set_ylabel("Todini 韧性指数 resilience index (EPANET 复核 verified)", fontfamily=family)
        ax.set_title(title, fontfamily=family)
        ax.grid(alpha=0.3)
        ax.legend(prop={"family": family})
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def _served(verdict: dict[str, Any]) -> str:
    """A scenario verdict's demand served, or why there is no figure."""
    return served_text(verdict["demand_served_pct"], verdict.get("unbalanced_hours", ""), 1)


def _approx(verdict: dict[str, Any], text: str) -> str:
    """A scenario verdict's figure, labelled approximate where EPANET did not balance at some hour."""
    return f"{text} (approx.: EPANET unbalanced)" if verdict.get("unbalanced_hours") else text


def _margin(verdict: dict[str, Any]) -> str:
    """A scenario verdict's worst margin, or why there is none."""
    if verdict.get("unbalanced_hours"):
        return "n/a (EPANET unbalanced)"
    return f"{verdict['min_margin_m']:+.2f} ({verdict['worst_node']})"


def design_report(result: DesignResult, *, title: str, scenario: ScenarioDesign | None = None) -> str:
    """A bilingual (中文/English) Markdown section on the design, its verification and the scenario re-run."""
    s = result.summary().iloc[0]
    cur = result.currency
    lines = [f"## 管网优化设计 Least-cost design — {title}", ""]
    lines += [
        f"- 总造价 Total cost: **{_fmt(result.cost)} {cur}** ({s['pipes_laid']} 根管段 pipes, "
        f"{s['length_laid_m']:,.0f} m"
        + (f"; {s['pump_works']} 项泵站 pump works, {s['storage_works']} 项调蓄 storage works"
           + (f", {s['plant_works']} 项水厂扩建 plant expansion" if s.get("plant_works", 0) else "")
           + f": {_fmt(s['pump_storage_cost'])} {cur}" if "pump_works" in s else "") + ")",
        f"- 方式 Action: {result.space.action}; 候选管段 candidate pipes: {len(result.space.pipes)}; "
        + (f"算法 optimiser: feasible-first construction along the supply chain of the failing nodes "
           f"({result.settings.get('chain_pipes', 0)} pipes on it; {result.settings.get('construction_steps', 0)} "
           f"step(s), {result.settings.get('constructed_cost', 0):,.0f} {result.currency}), then pymoo GA (seed "
           f"{result.settings['seed']}, population {result.settings['pop_size']}, {result.settings['generations']} "
           f"generations) + local search within {result.settings.get('max_evaluations')} EPANET solves"
           if result.settings.get("method") == "construct" else
           f"算法 optimiser: pymoo GA (seed {result.settings['seed']}, population {result.settings['pop_size']}, "
           f"{result.settings['generations']} generations) + local search"),
        *([f"- 搜索模型 Search model: {result.settings['search_model']}; 最终方案在完整时段复核 the design is verified "
           "on the full run"] if result.settings.get("search_model") else []),
        f"- EPANET 计算次数 Evaluations: {result.evaluations:,}; 用时 time: {result.time_s:,.0f} s",
        f"- 复核 Verification (full EPANET run, WNTR): {'可行 feasible' if result.feasible else '不可行 NOT feasible'}; "
        f"最低压力 minimum pressure {s['min_pressure_m']:.2f} m; 最小余量 smallest margin over the required "
        f"head {s['worst_margin_m']:+.2f} m at {s['worst_node']}",
    ]
    if pd.notna(result.settings.get("velocity_limit_ms")) and len(result.works):
        lines.append(f"- 新管最大流速 Peak velocity in the pipes laid: {s['max_velocity_ms']:.2f} m/s "
                     f"(limit 限值 {result.settings['velocity_limit_ms']:g} m/s)")
    for note in result.notes:
        lines.append(f"- 注 Note: {note}")
    if scenario is not None and scenario.verdict_after:
        b, a = scenario.verdict_before, scenario.verdict_after
        lines += ["", "### 情景复算 Scenario re-run (pressure-dependent demand)", "",
                  "| | 现状管网 existing | 设计管网 designed |", "|---|---|---|",
                  f"| 结论 verdict | {'通过 passes' if b['passes'] else '不通过 fails'} | "
                  f"{'通过 passes' if a['passes'] else '不通过 fails'} |",
                  f"| 需水满足率 demand served | {_served(b)} | {_served(a)} |",
                  f"| 断水人·时 person-hours without water | {_approx(b, format(b['person_hours_without_water'], ',.0f'))} | "
                  f"{_approx(a, format(a['person_hours_without_water'], ',.0f'))} |",
                  f"| 低于服务水头节点 nodes below service head | {_approx(b, str(b['nodes_below_target']))} | "
                  f"{_approx(a, str(a['nodes_below_target']))} |",
                  f"| 最小余量 worst margin (m) | {_margin(b)} | {_margin(a)} |"]
    if len(result.works):
        lines += ["", "### 工程量 Works", "", "| 管段 pipe | 原管径 old (mm) | 新管径 new (mm) | 规格 size | 长度 length (m) | "
                  f"造价 cost ({cur}) |", "|---|---:|---:|---|---:|---:|"]
        for w in result.works.itertuples(index=False):
            if not str(w.pipe):  # a pump or storage work
                lines.append(f"| {w.element} | {w.old_size} | {w.new_size} | {w.nominal} | – | {_fmt(w.cost)} |")
                continue
            lines.append(f"| {w.element} | {w.old_diameter_mm:g} | {w.new_diameter_mm:g} | {w.nominal} "
                         f"{w.material} | {w.length_m:,.0f} | {_fmt(w.cost)} |")
    if result.pareto is not None and len(result.pareto):
        lines += ["", f"造价–韧性帕累托前沿 Cost–resilience front: {len(result.pareto)} designs (pareto.csv, pareto.png)."]
    lines += ["", "造价表中的单价为假定值(见 watersupply/data/costs/*.yaml 的来源),不是报价。"
              "Unit costs from the shipped tables are assumed figures (see the sources in "
              "watersupply/data/costs/*.yaml), not quotations."
              + (" 水厂扩建单价为假定值 The plant-expansion rate (¥ per m³/d of treatment capacity) is an assumed "
                 "order of magnitude (watersupply.design.works.PLANT_PER_M3D), not a quotation."
                 if any(e.kind == "plant" for e in result.space.extras) else ""), ""]
    return "\n".join(lines)


def write_design(result: DesignResult, out_dir: str | os.PathLike, *, net: Network, title: str,
                 scenario: ScenarioDesign | None = None, inp_units: str = "LPS") -> dict[str, Path]:
    """Write a design's files into `out_dir` (see the module docstring).

    Parameters
    ----------
    result
        The design.
    net
        The designed network's layers (for ``designed.gpkg`` and the works layer).
    scenario
        The scenario design (adds the re-run folder and its verdict).
    inp_units
        Flow units of ``designed.inp`` (the input file's, for a network read from INP).
    """
    out = Path(out_dir)
    files: dict[str, Path] = {}
    if scenario is not None:
        from ..model import to_wntr, write_inp

        files["designed.inp"] = write_inp(to_wntr(scenario.designed_net), out / "designed.inp")
    else:
        files["designed.inp"] = _write_inp(result.wn, out / "designed.inp", inp_units)
    layers: dict[str, Any] = {k: net[k] for k in LAYERS if k in net}
    layers.update({k: v for k, v in net.items() if k not in layers})
    wl = works_layer(net, result)
    if "kind" in wl:  # pipes (lines) in 'works', pumps and reservoirs (points) in 'works_points'
        layers["works"] = wl[wl["kind"] == "pipe"]
        layers["works_points"] = wl[wl["kind"] != "pipe"]
    else:
        layers["works"] = wl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        files["designed.gpkg"] = write_layers(layers, out / "designed.gpkg")
    works = result.works.rename(columns={"unit_cost": f"unit_cost_{result.currency}_per_m",
                                         "cost": f"cost_{result.currency}"})
    files["works.csv"] = write_csv(works, out / "works.csv", index=False)
    summary = result.summary()
    if scenario is not None and scenario.verdict_after:
        for k, v in scenario.verdict_before.items():
            summary[f"before_{k}"] = v
        for k, v in scenario.verdict_after.items():
            summary[f"rerun_{k}"] = v
    files["design_summary.csv"] = write_csv(summary, out / "design_summary.csv", index=False)
    ver = result.verification
    check = pd.DataFrame({"required_m": result.required})
    check.index.name = "node"
    b = ver["binding"]
    files["pressure_check.csv"] = write_csv(check.join(b[["min_pressure_m", "deficit_m"]]) if len(b) else check,
                                            out / "pressure_check.csv")
    if result.pareto is not None and len(result.pareto):
        front = result.pareto.copy()
        front["works"] = [";".join(f"{p}={d:g}" for p, d in zip(result.space.pipes, result.space.diameters_mm(x))
                                   if d == d) for x in front["x"]]
        files["pareto.csv"] = write_csv(front.drop(columns=["x"]), out / "pareto.csv", index=False)
        files["pareto.png"] = pareto_figure(front, out / "pareto.png", currency=result.currency,
                                            chosen_cost=result.cost, title=f"{title}: 造价–韧性 cost–resilience")
    files["report.md"] = write_text(design_report(result, title=title, scenario=scenario), out / "report.md")
    if scenario is not None and scenario.after is not None:
        from ..scenario import write_scenario

        sub = write_scenario(scenario.after, out / f"rerun_{scenario.scenario.name}", make_map=False)
        files.update({f"rerun_{scenario.scenario.name}/{k}": v for k, v in sub.items()})
    return files
