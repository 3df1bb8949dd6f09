"""The audit's outputs: comparison of two audits, the GIS layer, the bilingual report and the files."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..schema import Network
from ..standards import STANDARDS
from ._common import DIMENSIONS, VERDICT_ZH, _RANK, _pct
from .assessment import AuditResult

__all__ = ["compare_audits", "audit_layer", "audit_report", "write_audit"]


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
    from ..report import markdown_table

    tb = aud.table
    t = aud.thresholds
    lab = aud.label
    out = [f"# {title_zh} — 同网·同价·同质 审计 ({lab})",
           f"## {title_en} — same network, same price, same quality audit ({lab})", ""]
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
    for d, (zh, _en) in DIMENSIONS.items():
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
                    "age_p95_h", "age_mean_h", "age_capped_nodes", "fix_booster_at", "fix_booster_mgL",
                    "cl_min_after_mgL", "cl_max_after_mgL", "fix_verified"],
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
    worst = worst[np.isfinite(worst)]
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
    from ..io import write_csv, write_layers, write_text

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
