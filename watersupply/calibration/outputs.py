"""Outputs of a calibration: calibrated.inp, calibrated.gpkg, parameters.csv, fit.csv, readings.csv,
residual figures (PNG, Chinese and English labels) and a bilingual report section."""

from __future__ import annotations

import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import Point

from ..hydraulics import LS_TO_M3S
from ..report import markdown_table
from .fit import PRESSURE_BANDS_M, CalibrationResult

__all__ = ["write_calibration", "calibration_report", "identifiability_lines", "residual_figure", "sensor_layer"]


def sensor_layer(result: CalibrationResult) -> gpd.GeoDataFrame:
    """Sensors as points (node position, or a link's midpoint) with their fit statistics per window."""
    net = result.network
    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    geoms: dict[str, Point] = {}
    for layer in ("pipes", "pumps", "control_valves"):
        df = net.get(layer)
        if df is not None and len(df):
            for i, g in zip(df["id"].astype(str), df.geometry):
                if g is not None:
                    geoms[i] = g.interpolate(0.5, normalized=True) if g.geom_type != "Point" else g
    rows = []
    fit = result.fit.reset_index()
    for (el, q), d in result.readings.groupby(["element", "quantity"], sort=True):
        row: dict[str, object] = {"element": el, "quantity": q, "n_readings": len(d)}
        for w in ("fit", "validate"):
            f = fit[(fit["window"] == w) & (fit["element"] == el) & (fit["quantity"] == q)]
            for col in ("rmse", "bias", "within_0.5m", "within_1m", "flow_error_pct", "rmse_before"):
                row[f"{col}_{w}"] = float(f[col].iloc[0]) if len(f) else math.nan
        row["geometry"] = nodes.geometry[el] if el in nodes.index else geoms.get(el)
        rows.append(row)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=net["nodes"].crs)


def residual_figure(result: CalibrationResult):  # -> matplotlib Figure
    """Residuals before and after calibration: pressure over time, pressure histogram, levels, flows."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..maps.fonts import cjk_font

    r = result.readings
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [cjk_font(), "DejaVu Sans"],
                                "axes.unicode_minus": False}):
        fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), constrained_layout=True)
        panels = [("pressure", "压力残差 Pressure residual (m)"), ("level", "水池水位残差 Reservoir level residual (m)"),
                  ("flow", "流量残差 Flow residual (L/s)")]
        ax_time = {"pressure": axes[0, 0], "level": axes[1, 0], "flow": axes[1, 1]}
        for q, label in panels:
            ax = ax_time[q]
            d = r[r["quantity"] == q]
            scale = 1.0 / LS_TO_M3S if q == "flow" else 1.0
            for _el, g in d.groupby("element", sort=True):
                ax.plot(g["time_h"], g["residual_before"] * scale, color="0.75", lw=0.6)
                ax.plot(g["time_h"], g["residual_after"] * scale, lw=0.8)
            if q != "flow":
                for band in PRESSURE_BANDS_M:
                    ax.axhspan(-band, band, color="tab:green", alpha=0.08)
            ax.axvspan(*result.fit_window, color="tab:blue", alpha=0.05)
            if result.validate_window is not None:
                ax.axvline(result.validate_window[0], color="k", ls="--", lw=0.8)
            ax.set_title(f"{label}\n灰:校准前 grey: before · 彩色:校准后 colour: after", fontsize=10)
            ax.set_xlabel("时间 Time (h) — 蓝底:拟合窗 blue: fit window")
            if d.empty:
                ax.text(0.5, 0.5, "无读数 no readings", ha="center", transform=ax.transAxes)
        ax = axes[0, 1]
        d = r[(r["quantity"] == "pressure") & (r["window"] != "")]
        bins = np.linspace(-3, 3, 61)
        if len(d):
            ax.hist(np.clip(d["residual_before"], -3, 3), bins=bins, color="0.7", label="校准前 before")
            for w, c in (("fit", "tab:blue"), ("validate", "tab:orange")):
                dw = d[d["window"] == w]
                if len(dw):
                    ax.hist(np.clip(dw["residual_after"], -3, 3), bins=bins, histtype="step", lw=1.5, color=c,
                            label=f"校准后 after, {'拟合窗 fit' if w == 'fit' else '验证窗 validation'}")
        for band in PRESSURE_BANDS_M:
            ax.axvline(-band, color="tab:green", lw=0.6)
            ax.axvline(band, color="tab:green", lw=0.6)
        ax.set_title("压力残差分布 Pressure residuals (m, clipped at ±3)", fontsize=10)
        ax.set_xlabel("模拟 − 实测 simulated − observed (m)")
        ax.legend(fontsize=8)
    return fig


def identifiability_lines(result: CalibrationResult) -> list[str]:
    """Markdown lines of the identifiability analysis: sensitivity rank/condition, the verdict at the fit,
    the groups the data cannot pin down (with their partners and the sensors that would separate them)
    and the parameter correlations."""
    ident = result.identifiability
    fit = ident.get("fit", {})
    lines = [f"- 初值处灵敏度矩阵 Sensitivity (Jacobian) at the initial values: rank {ident.get('rank')} of "
             f"{ident.get('n_groups')} groups, condition number {ident.get('condition', math.nan):.3g}",
             f"- 拟合处 At the fit: rank {fit.get('rank')} of {len(fit.get('se', {}))} fitted groups, condition number "
             f"{fit.get('condition', math.nan):.3g}; residual variance s² = {fit.get('s2', math.nan):.3g} "
             f"(1 when the readings' σ is right); intervals s²·(JᵀJ)⁻¹, Student t with {fit.get('dof')} d.o.f.",
             f"- 可辨识(结论) Identifiable, reported as findings (95 % interval within ±{100 * fit.get('tolerance', 0):g} %, "
             f"|r| ≤ {fit.get('max_correlation', math.nan):g}): " + (", ".join(ident.get("findings", [])) or "无 none")]
    bad = ident.get("not_identifiable", {})
    if bad:
        lines += ["- 数据无法辨识(非结论) Not identifiable from these data — not findings:"]
        for g, why in bad.items():
            lines.append(f"    - {g}: {why}")
    sugg = ident.get("separating_sensors") or []
    if sugg:
        lines += ["- 可分离的新增测点 Sensors that would separate them (predicted from the sensitivities at the fit):"]
        lines += [f"    - {s}" for s in sugg]
    corr = fit.get("correlation")
    names = list(fit.get("se", {}))
    if corr is not None and 1 < len(names) <= 20:
        import pandas as pd

        lines += ["", "参数相关系数 Parameter correlations at the fit:", "",
                  markdown_table(pd.DataFrame(corr, index=names, columns=names), digits=2)]
    return lines + [""]


def calibration_report(result: CalibrationResult) -> str:
    """The bilingual (中文/English) Markdown report section of a calibration."""
    p = result.parameters
    lines = ["## 模型校准 Model calibration", "",
             f"- 方法 Method: {result.optimizer.get('method')}, 加权最小二乘 weighted least squares over the "
             f"extended-period run; 需水模型 demand model: {result.demand_model} (pressure-dependent, as every run)",
             f"- 拟合窗 Fit window: {result.fit_window[0]:g}–{result.fit_window[1]:g} h; 验证窗 validation window: "
             + (f"{result.validate_window[0]:g}–{result.validate_window[1]:g} h" if result.validate_window else "none"),
             f"- EPANET 计算次数 evaluations: {result.n_evaluations} (in-memory {result.optimizer.get('engine')}); 用时 time: "
             f"{result.elapsed_s:.0f} s; 优化器 optimiser: {result.optimizer.get('message')}",
             f"- 目标函数 Weighted sum of squares: {result.optimizer.get('cost_initial', math.nan):,.1f} → "
             f"{result.optimizer.get('cost_final', math.nan):,.1f} over {result.optimizer.get('n_fit_readings')} readings",
             f"- 复核 Verification: every statistic below is from a full WNTR (EPANET 2.2) run of the calibrated "
             f"model; largest toolkit/WNTR difference at a pressure, head or level reading: "
             f"{result.engine_agreement_m:.3f} m",
             "", "### 可辨识性 Identifiability", ""]
    lines += identifiability_lines(result)
    cols = ["kind", "state", "initial", "fitted", "ci95_low", "ci95_high", "ci95_pct", "most_correlated",
            "correlation", "lower", "upper"]
    lines += ["### 参数 Parameters (roughness: length-weighted mean C; demand: m³/d)", "",
              markdown_table(p[[c for c in cols if c in p.columns]], digits=3), "",
              "ci95_pct: half-width of the 95 % confidence interval, % of the fitted factor; most_correlated / "
              "correlation: the fitted group whose estimate is most correlated with this one. Only groups in state "
              "“fitted” are findings; “fitted, not identifiable” values are used by the calibrated model but the "
              "data do not pin them down.", ""]
    lines += ["### 拟合统计 Fit statistics (all sensors, after / before calibration)", ""]
    ov = result.overall.copy()
    keep = ["n", "rmse", "bias", "within_0.5m", "within_1m", "flow_error_pct", "rmse_before", "within_0.5m_before"]
    ov = ov[keep].reset_index()
    flow_rows = ov["quantity"].isin(["flow", "demand"])
    for c in ("rmse", "bias", "rmse_before"):
        ov.loc[flow_rows, c] = ov.loc[flow_rows, c] / LS_TO_M3S
    lines += [markdown_table(ov, index=False, digits=3), "",
              "RMSE and bias in m (pressure, head, level) or L/s (flow, demand); within_… = share of readings "
              "within ±0.5 m / ±1.0 m; flow_error_pct = 100 × mean |error| / mean |reading|.", ""]
    if result.closed_groups:
        lines += ["- 判定关闭的阀门组 Status groups found closed: " + ", ".join(result.closed_groups), ""]
    if result.warnings:
        lines += ["### 注意 Warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    return "\n".join(lines)


def write_calibration(result: CalibrationResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write every output of a calibration into `out_dir` (each file atomically); return their paths."""
    from ..io import write_csv, write_network, write_text
    from ..model import to_wntr, write_inp
    from ..maps.png import write_png

    out = Path(out_dir)
    files: dict[str, Path] = {}
    files["calibrated.inp"] = write_inp(to_wntr(result.network), out / "calibrated.inp")
    layers = dict(result.network)
    layers["sensors"] = sensor_layer(result)
    layers["calibration_parameters"] = result.parameters.reset_index()
    files["calibrated.gpkg"] = write_network(layers, out / "calibrated.gpkg")
    files["parameters.csv"] = write_csv(result.parameters, out / "parameters.csv")
    files["fit.csv"] = write_csv(result.fit, out / "fit.csv")
    files["fit_overall.csv"] = write_csv(result.overall, out / "fit_overall.csv")
    files["readings.csv"] = write_csv(result.readings, out / "readings.csv", index=False)
    fig = residual_figure(result)
    try:
        files["residuals.png"] = write_png(fig, out / "residuals.png")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    files["report.md"] = write_text(calibration_report(result), out / "report.md")
    return files
