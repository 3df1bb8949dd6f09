"""What a schedule run reports: per-station summary, cost to serve per settlement (同价), charts, report, files."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import WatersupplyError
from ..hydraulics import SECONDS_PER_HOUR
from ..io import atomic_path, write_csv, write_layers, write_text
from ..model import write_inp
from ..schema import Network
from ..tariff import PERIOD_LABELS, hourly_kinds
from .evaluate import pump_controls, starts_per_day
from .optimise import ScheduleResult

__all__ = ["schedule_summary", "cost_to_serve", "plot_station", "schedule_report", "write_schedule"]

log = logging.getLogger(__name__)

_BAND = {"critical_peak": "#f4a3a3", "peak": "#fbd3c4", "flat": "#fdf3c8", "valley": "#d5ecd4"}


def _states(result: ScheduleResult, which: str) -> pd.DataFrame:
    energy = result.baseline_energy if which == "baseline" else result.optimised_energy
    return (energy["flow_m3s"].unstack("pump") > 1e-6).astype(int)


def schedule_summary(result: ScheduleResult) -> pd.DataFrame:
    """One row per pump station and a ``total`` row: energy (kWh/day), cost (¥/day), saving, starts.

    Figures are for the last simulated day of each run (the periodic one); a
    station's cost includes its share of any demand charge. ``starts_per_day``
    is the most starts of any of the station's pumps (cyclic count of the
    verified run), ``baseline_starts_per_day`` the same under the level controls.
    """
    st = result.pumps["station_id"]
    kinds = hourly_kinds(result.tariff)
    rows = []
    sb, so = starts_per_day(_states(result, "baseline")), starts_per_day(_states(result, "optimised"))
    for station in list(dict.fromkeys(st.tolist())) + ["total"]:
        pumps = list(st.index) if station == "total" else list(st.index[st == station])
        b = result.baseline_energy.loc[(slice(None), pumps), :]
        o = result.optimised_energy.loc[(slice(None), pumps), :]
        dcb = result.demand_charge(result.baseline_energy, None if station == "total" else station)
        dco = result.demand_charge(result.optimised_energy, None if station == "total" else station)
        bc, oc = float(b["cost_yuan"].sum()) + dcb, float(o["cost_yuan"].sum()) + dco
        bk, ok = float(b["kwh"].sum()), float(o["kwh"].sum())
        valley_b = float(b.loc[[h for h in range(24) if kinds[h] == "valley"]]["kwh"].sum()) if bk else 0.0
        valley_o = float(o.loc[[h for h in range(24) if kinds[h] == "valley"]]["kwh"].sum()) if ok else 0.0
        vol_b = float(b["flow_m3s"].sum() * SECONDS_PER_HOUR)
        vol_o = float(o["flow_m3s"].sum() * SECONDS_PER_HOUR)
        rows.append(dict(
            station_id=station, pumps=";".join(p for p in pumps if result.pumps.loc[p, "scheduled"]),
            baseline_kwh_day=bk, optimised_kwh_day=ok, baseline_cost_yuan_day=bc, optimised_cost_yuan_day=oc,
            saving_yuan_day=bc - oc, saving_pct=100.0 * (bc - oc) / bc if bc > 0 else np.nan,
            starts_per_day=int(so.reindex(pumps).max()) if len(pumps) else 0,
            baseline_starts_per_day=int(sb.reindex(pumps).max()) if len(pumps) else 0,
            baseline_volume_m3_day=vol_b, optimised_volume_m3_day=vol_o,
            baseline_yuan_per_m3=bc / vol_b if vol_b > 0 else np.nan,
            optimised_yuan_per_m3=oc / vol_o if vol_o > 0 else np.nan,
            saving_per_m3_pct=100.0 * (1.0 - (oc / vol_o) / (bc / vol_b)) if vol_o > 0 and bc > 0 else np.nan,
            baseline_valley_kwh_pct=100.0 * valley_b / bk if bk > 0 else np.nan,
            optimised_valley_kwh_pct=100.0 * valley_o / ok if ok > 0 else np.nan))
    return pd.DataFrame(rows).set_index("station_id")


def _station_yuan_per_m3(result: ScheduleResult, which: str, wn: Any) -> dict[str, float]:
    """¥ per m³ lifted at each pump discharge node under the tariff (the audit's sources)."""
    energy = result.baseline_energy if which == "baseline" else result.optimised_energy
    by_pump = energy.groupby("pump")[["cost_yuan", "flow_m3s"]].sum()
    to = {p: wn.get_link(p).end_node_name for p in by_pump.index}
    g = by_pump.assign(node=[to[p] for p in by_pump.index]).groupby("node").sum()
    return {str(n): float(r["cost_yuan"] / (r["flow_m3s"] * SECONDS_PER_HOUR)) if r["flow_m3s"] > 0 else 0.0
            for n, r in g.iterrows()}


def cost_to_serve(net: Network, result: ScheduleResult, *, t: Mapping[str, float] | None = None,
                  workdir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Cost to serve a m³ per settlement before and after the schedule, and the 同价 verdict recomputed.

    The audit (:func:`watersupply.audit.audit`) is run on the baseline and on the
    scheduled run; its figures are kept (traced shares, kWh/m³, other cost,
    distribution O&M, annual volume, tariff) and only its energy term, priced
    there at one flat ¥/kWh, is re-priced under the time-of-use tariff: each
    pump station's ¥ per m³ lifted (its daily cost / daily volume) weighted by
    the share of the settlement's water it lifted. The 同价 verdict follows the
    audit's rule on the re-priced cost: fail below ``cost_recovery_min``, warn
    when the cost exceeds the tariff, pass otherwise.

    Returns
    -------
    (table, notes)
        One row per settlement; notes say what could not be computed.
    """
    from ..audit import audit
    from ..standards import thresholds

    tt = thresholds(dict(t or {}))
    notes: list[str] = []
    try:
        aud_b = audit(net, result.baseline, t=tt, wn=copy.deepcopy(result.baseline_wn), label="baseline",
                      workdir=workdir)
        aud_o = audit(net, result.optimised, t=tt, wn=copy.deepcopy(result.wn), label="scheduled", workdir=workdir)
    except WatersupplyError as exc:
        notes.append(f"cost to serve not computed: {exc}")
        return pd.DataFrame(), notes
    rows = []
    for label, aud in (("before", aud_b), ("after", aud_o)):
        ypm = _station_yuan_per_m3(result, "baseline" if label == "before" else "optimised", result.wn)
        src = aud.sources
        stations = src.index[src["kind"] == "pump_station"]
        for sid, r in aud.table.iterrows():
            if int(r.get("demand_nodes", 0)) == 0:
                continue
            share = aud.shares.loc[sid, stations] if sid in aud.shares.index else pd.Series(0.0, index=stations)
            energy = float(sum(float(share[s]) * ypm.get(str(s), 0.0) for s in stations))
            cost = float(r["cost_yuan_m3"]) - float(r["energy_yuan_m3"]) + energy
            tariff = float(r["tariff_yuan_m3"])
            rec = tariff / cost if cost > 0 else float("inf")
            verdict = "fail" if rec < float(tt["cost_recovery_min"]) else "warn" if cost > tariff else "pass"
            rows.append(dict(id=sid, when=label, name_zh=r["name_zh"], name_en=r["name_en"], kind=r["kind"],
                             kwh_per_m3=float(r["kwh_per_m3"]), energy_yuan_m3=energy, cost_yuan_m3=cost,
                             tariff_yuan_m3=tariff, cost_recovery=rec,
                             cross_subsidy_yuan_year=(cost - tariff) * float(r["annual_volume_m3"]),
                             price_verdict=verdict, price_verdict_flat_tariff=str(r["price_verdict"])))
    long = pd.DataFrame(rows)
    wide = long.pivot(index="id", columns="when")
    out = pd.DataFrame(index=wide.index)
    for col in ("name_zh", "name_en", "kind"):
        out[col] = wide[(col, "before")]
    for col in ("kwh_per_m3", "energy_yuan_m3", "cost_yuan_m3", "cost_recovery", "cross_subsidy_yuan_year",
                "price_verdict"):
        out[f"{col}_before"] = wide[(col, "before")]
        out[f"{col}_after"] = wide[(col, "after")]
    out["tariff_yuan_m3"] = wide[("tariff_yuan_m3", "before")]
    out["price_verdict_flat_tariff_before"] = wide[("price_verdict_flat_tariff", "before")]
    order = [s for s in aud_b.table.index if s in out.index]
    notes += [n for n in aud_o.notes if n not in notes][:3]
    return out.loc[order], notes


def _station_names(net: Network) -> dict[str, tuple[str, str]]:
    fac = net.get("facilities")
    out: dict[str, tuple[str, str]] = {}
    if fac is not None and len(fac):
        for r in fac.itertuples(index=False):
            out[str(r.id)] = (str(getattr(r, "name_zh", r.id)), str(getattr(r, "name_en", r.id)))
    return out


def plot_station(result: ScheduleResult, station: str, path: str | os.PathLike, *,
                 names: Mapping[str, tuple[str, str]] | None = None) -> Path:
    """PNG chart of one station over the periodic day: the levels of the tanks it fills and its pumps' states,
    baseline (dashed) against the schedule (solid), with the tariff periods shaded. Chinese and English labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..maps.fonts import cjk_font

    family = cjk_font()
    names = names or {}
    pumps = [p for p in result.pumps.index[(result.pumps["station_id"] == station)
                                           & (result.pumps["control"] != "standby")]]
    groups = sorted({result.surrogate.into[p] for p in pumps if p in result.surrogate.into and result.surrogate.into[p]})
    tanks = [tk for g in groups for tk in result.surrogate.groups[g]]
    kinds = hourly_kinds(result.tariff)
    days = result.days
    lb = result.baseline.tank_level
    lo = result.optimised.tank_level
    sel = lambda df: df.loc[(df.index >= 24 * (days - 1)) & (df.index <= 24 * days)]  # noqa: E731
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"],
                                "axes.unicode_minus": False}):
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.2), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 2]})
        for ax in (ax1, ax2):
            for h in range(24):
                ax.axvspan(h, h + 1, color=_BAND[kinds[h]], lw=0, zorder=0)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, tk in enumerate(tanks):
            c = colours[i % len(colours)]
            b, o = sel(lb[tk]), sel(lo[tk])
            ax1.plot(b.index - 24 * (days - 1), b.to_numpy(), ls="--", color=c, lw=1.4, label=f"{tk} 基准 baseline")
            ax1.plot(o.index - 24 * (days - 1), o.to_numpy(), ls="-", color=c, lw=2.0, label=f"{tk} 优化 scheduled")
            node = result.wn.get_node(tk)
            ax1.axhline(node.min_level, color=c, lw=0.6, ls=":")
            ax1.axhline(node.max_level, color=c, lw=0.6, ls=":")
        ax1.set_ylabel("水位 level (m)")
        sb, so = _states(result, "baseline"), _states(result, "optimised")
        for i, p in enumerate(pumps):
            c = colours[i % len(colours)]
            y0 = 1.3 * i
            xs = np.arange(25)
            ax2.step(xs, y0 + np.r_[sb[p].to_numpy(), sb[p].iloc[-1]], where="post", ls="--", color=c, lw=1.2)
            ax2.step(xs, y0 + np.r_[so[p].to_numpy(), so[p].iloc[-1]], where="post", ls="-", color=c, lw=2.0,
                     label=p)
        ax2.set_yticks([1.3 * i + 0.5 for i in range(len(pumps))], [p for p in pumps])
        ax2.set_ylabel("水泵 pump (开 on / 停 off)")
        ax2.set_xlabel("时刻 hour of day")
        ax2.set_xlim(0, 24)
        ax2.set_xticks(range(0, 25, 2))
        zh, en = names.get(station, (station, station))
        ax1.set_title(f"{station} {zh} — 水位与水泵启停(虚线 基准液位控制,实线 优化调度)\n"
                      f"{en}: tank level and pump state (dashed baseline level controls, solid schedule)",
                      fontsize=10)
        price = {q.kind: q.price_yuan_kwh for q in reversed(result.tariff.periods)}
        bands = [Patch(color=_BAND[k], label=f"{PERIOD_LABELS[k][0]} {PERIOD_LABELS[k][1]} {price[k]:.2f} 元/kWh")
                 for k in dict.fromkeys(kinds)]
        h1, l1 = ax1.get_legend_handles_labels()
        ax1.legend(h1 + bands, l1 + [b.get_label() for b in bands], fontsize=7, ncol=2, loc="lower left")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return Path(path)


def _fmt(v: float, nd: int = 0) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:,.{nd}f}"


def schedule_report(result: ScheduleResult, summary: pd.DataFrame, cost: pd.DataFrame, notes: list[str]) -> str:
    """The bilingual (中文/English) Markdown section of a schedule run."""
    tf = result.tariff
    tot = summary.loc["total"]
    lines = [
        "## 分时电价水泵调度 · Pump schedule under a time-of-use tariff",
        "",
        f"- 电价 Tariff: {tf.title_zh} / {tf.title_en} (`{Path(tf.source_path).name}`)"
        + (" — **假定 assumed**" if tf.assumed else "") + f"; 来源 source: {tf.source}",
        "- 时段 Periods: " + "; ".join(f"{PERIOD_LABELS[p.kind][0]} {p.kind} {p.price_yuan_kwh:.2f} ¥/kWh "
                                       f"({', '.join(p.hours)})" for p in tf.periods),
        f"- 方法 Method: 每台工作泵逐时启停(0/1),HiGHS 混合整数规划(质量守恒代理模型),每个方案用 EPANET 连续模拟 "
        f"{result.days} 天验证 / hourly on/off per duty pump, MILP (HiGHS) on a mass-balance surrogate, every "
        f"schedule verified by a {result.days}-day EPANET run; {len(result.iterations)} round(s), "
        f"{result.epanet_runs} EPANET runs, {result.seconds:.0f} s; seed {result.seed}.",
        f"- 约束 Constraints: 每台泵每天最多启动 {result.max_starts} 次 / at most {result.max_starts} starts per pump "
        "per day; 备用泵不启用 / standby pumps stay off; 每个水池日末水位不低于日初 / every tank ends each day at "
        "or above its start level; 所有用水节点每小时满足服务水头且不缺水 / service head and full demand at every "
        "demand node every hour.",
        "",
        f"**日电费 Daily energy cost: {_fmt(tot['baseline_cost_yuan_day'])} → {_fmt(tot['optimised_cost_yuan_day'])} ¥ "
        f"(−{tot['saving_pct']:.1f} %; 每立方米提升水量 per m³ lifted −{tot['saving_per_m3_pct']:.1f} %); "
        f"电量 energy {_fmt(tot['baseline_kwh_day'])} → {_fmt(tot['optimised_kwh_day'])} kWh/day; 低谷电量占比 valley share "
        f"{tot['baseline_valley_kwh_pct']:.0f} % → {tot['optimised_valley_kwh_pct']:.0f} %.**",
        "",
        "| 泵站 station | 基准 kWh/d | 优化 kWh/d | 基准 ¥/d | 优化 ¥/d | 节省 saving | 启动 starts/d (基准 baseline) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for sid, r in summary.iterrows():
        lines.append(f"| {sid} | {_fmt(r['baseline_kwh_day'])} | {_fmt(r['optimised_kwh_day'])} | "
                     f"{_fmt(r['baseline_cost_yuan_day'])} | {_fmt(r['optimised_cost_yuan_day'])} | "
                     f"{r['saving_pct']:.1f} % | {r['starts_per_day']} ({r['baseline_starts_per_day']}) |")
    lines += ["", "### 校核 Checks (EPANET, 全部模拟天 every simulated day)", "",
              "| check | figure | target | passed | detail |", "|---|---:|---|---|---|"]
    for name, r in result.checks.iterrows():
        lines.append(f"| {name} | {r['figure']:.3g} | {r['target']} | {'✔' if r['passed'] else '✘'} | {r['detail']} |")
    if len(cost):
        lines += ["", "### 同价:各村社区供水成本 Cost to serve per settlement (time-of-use priced)", "",
                  "| 村社区 settlement | 能耗 kWh/m³ | 电费 ¥/m³ 前→后 before→after | 成本 cost ¥/m³ 前→后 | "
                  "同价 verdict 前→后 | 年补贴 cross-subsidy ¥/yr 前→后 |", "|---|---:|---:|---:|---|---:|"]
        for sid, r in cost.iterrows():
            lines.append(f"| {sid} {r['name_zh']} | {r['kwh_per_m3_after']:.2f} | {r['energy_yuan_m3_before']:.2f} → "
                         f"{r['energy_yuan_m3_after']:.2f} | {r['cost_yuan_m3_before']:.2f} → {r['cost_yuan_m3_after']:.2f} | "
                         f"{r['price_verdict_before']} → {r['price_verdict_after']} | "
                         f"{_fmt(r['cross_subsidy_yuan_year_before'])} → {_fmt(r['cross_subsidy_yuan_year_after'])} |")
    lines += ["", "### 假定与局限 Assumptions and artefacts", "",
              "- 电价时段与价格为假定值(见电价文件)/ the tariff's hours and prices are assumptions (see the tariff "
              "file), not a published Qijiang schedule." if tf.assumed else "- 电价 tariff: " + tf.source,
              "- 能耗按整点流量与扬程计(调度整点切换;基准液位控制在小时内切换,其能耗按整点状态计,存在偏差)/ energy "
              "is integrated from hourly snapshots: exact for the schedule (it switches on the hour), approximate for "
              "the baseline level controls, which switch within the hour.",
              "- 基准为液位控制下模拟最后一天(其提升水量可能与优化方案不同,故同时给出每立方米节省)/ the baseline is the "
              "last simulated day under the level controls; its volume lifted can differ from the schedule's (tanks "
              "not yet periodic), hence the saving per m³ lifted as well.",
              "- 水泵为单点特性曲线、固定效率(模型假定)/ pumps have single-point curves and a fixed efficiency (model "
              "assumptions): a real station's kWh differ.",
              "- 水池保留水深(下限以上 25 %,修复轮次按 EPANET 结果上调)为设计假定 / the tank reserve (25 % of the "
              "depth above the minimum, raised by repair rounds where EPANET found pressure short) is a design "
              "assumption.",
              "- 9 号水池由 8 号水池重力补水、无液位阀,EPANET 在小时内开关其进水 — 该区结果对初始水位敏感(模型人为因素)/ "
              "R9 is filled by gravity from R8 without an altitude valve; EPANET opens and closes its inlet within "
              "the hour, so that zone's results are sensitive to start levels (a model artefact).",
              "- 仍用液位控制的水泵所供水池由其启停液位约束,但不逐日严格周期(不计入周期校核,列于校核明细)/ tanks "
              "filled by pumps left on level controls stay within their control band but are not strictly periodic "
              "day by day; they are listed, not ruled, in the periodicity check.",
              "- 各水池日末水位可高于日初:在多日运行中水池逐日上升至满,EPANET 随即关闭进水(相当于浮球阀)/ tanks may "
              "end the day above their start: over many days they rise until full, where EPANET closes the inlet "
              "(as a float valve would)."]
    for n in notes + result.notes:
        lines.append(f"- {n}")
    lines.append("")
    return "\n".join(lines)


def write_schedule(result: ScheduleResult, net: Network, out_dir: str | os.PathLike, *,
                   cost: pd.DataFrame | None = None, notes: list[str] | None = None) -> dict[str, Path]:
    """Write a schedule run to `out_dir` (each file atomically): schedule.csv, scheduled.inp, scheduled.gpkg,
    schedule_summary.csv, cost_to_serve.csv, schedule_checks.csv, schedule_iterations.csv, one PNG per station
    (``schedule_<station>.png``) and schedule_report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    kinds = hourly_kinds(result.tariff)
    sched = result.schedule.copy()
    sched.insert(0, "price_yuan_kwh", result.prices)
    sched.insert(0, "period", kinds)
    files["schedule"] = write_csv(sched, out / "schedule.csv")
    files["inp"] = write_inp(result.wn, out / "scheduled.inp")
    summary = schedule_summary(result)
    files["summary"] = write_csv(summary, out / "schedule_summary.csv")
    cost = cost if cost is not None else pd.DataFrame()
    files["cost"] = write_csv(cost, out / "cost_to_serve.csv")
    files["checks"] = write_csv(result.checks, out / "schedule_checks.csv")
    files["iterations"] = write_csv(result.iterations, out / "schedule_iterations.csv")
    layers = {k: v.copy() for k, v in net.items()}
    fac = layers.get("facilities")
    if fac is not None and "init_level_m" in fac:
        m = fac["node_id"].astype(str).map(result.init_levels)
        fac["init_level_m"] = m.where(m.notna(), fac["init_level_m"]).astype(float)
    pumps = layers["pumps"]
    on_hours = {p: ",".join(str(h) for h in range(24) if result.schedule.loc[h, p]) for p in result.schedule.columns}
    pumps["schedule_on_hours"] = pumps["id"].astype(str).map(on_hours).fillna("")
    layers["pump_schedule"] = pd.DataFrame(
        [(p, h, int(result.schedule.loc[h, p]), result.pumps.loc[p, "control"], kinds[h], float(result.prices[h]))
         for p in result.schedule.columns for h in range(24)],
        columns=["pump", "hour", "on", "control", "period", "price_yuan_kwh"])
    layers["schedule_controls"] = pd.DataFrame(
        [(p, h, s, f"LINK {p} {s} AT CLOCKTIME {h}:00") for p, h, s in pump_controls(
            result.schedule[[p for p in result.schedule.columns if result.pumps.loc[p, "control"] == "schedule"]])],
        columns=["pump", "hour", "status", "epanet_control"])
    files["gpkg"] = write_layers(layers, out / "scheduled.gpkg")
    names = _station_names(net)
    for station in dict.fromkeys(result.pumps.loc[result.pumps["scheduled"], "station_id"]):
        files[f"png_{station}"] = plot_station(result, station, out / f"schedule_{station}.png", names=names)
    files["report"] = write_text(schedule_report(result, summary, cost, notes or []), out / "schedule_report.md")
    return files
