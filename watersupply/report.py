"""Readable bilingual (中文/English) Markdown reports of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

__all__ = ["markdown_table", "baseline_report", "sanity_section", "quality_section", "cost_section", "served_text"]


def _fmt(v: object, digits: int = 2) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "✔" if v else "✘"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,d}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def served_text(pct: float, unbalanced_hours: str = "", digits: int = 2) -> str:
    """Demand served (%) as text: ``"97.50 %"``, or why there is no figure.

    >>> served_text(97.5)
    '97.50 %'
    >>> served_text(float("nan"), "5–16")
    'n/a (EPANET unbalanced at h 5–16: no figure)'
    >>> served_text(float("nan"), "1, 3, 5–7, 9")
    'n/a (EPANET unbalanced at h 1, 3 … 9 (4 periods): no figure)'
    """
    unb = str(unbalanced_hours or "")
    if unb:
        spans = unb.split(", ")
        if len(spans) > 3:
            unb = f"{', '.join(spans[:2])} … {spans[-1]} ({len(spans)} periods)"
        return f"n/a (EPANET unbalanced at h {unb}: no figure)"
    return "n/a" if pct is None or not math.isfinite(float(pct)) else f"{pct:.{digits}f} %"


def markdown_table(df: pd.DataFrame, *, index: bool = True, digits: int = 2) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (cells escaped, numbers formatted)."""
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        cells = ([_fmt(idx)] if index else []) + [_fmt(v.item() if hasattr(v, "item") else v, digits) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sanity_section(sanity: pd.DataFrame | None, *, limit: int = 200) -> list[str]:
    """The run's EPANET warnings and failures as a report section: counts by kind, then each element and hour."""
    out = ["## EPANET 警告与故障 EPANET warnings and failures", ""]
    if sanity is None or not len(sanity):
        return out + ["无:无负压、水力平衡、断开节点或水池放空问题。None: no negative pressure, no unbalanced "
                      "hour, no disconnected node, no drained reservoir.", ""]
    counts = sanity.groupby("kind", sort=False).agg(elements=("element", "size"), element_hours=("n_hours", "sum"))
    out += [markdown_table(counts), ""]
    shown = sanity.head(limit)
    out += [markdown_table(shown, index=False), ""]
    if len(sanity) > limit:
        out += [f"… and {len(sanity) - limit} more rows.", ""]
    return out


def quality_section(quality: object | None) -> list[str]:
    """How chlorine and age were obtained: steady state, horizon, residual, what is not settled or not assessed."""
    if quality is None:
        return []
    out = ["## 水质计算 Water quality method", "", f"- {quality.summary()}"]
    if not quality.chlorine_assessed:
        out.append(f"- 余氯未评估 Chlorine {quality.not_assessed_reason}")
    for key in ("chlorine", "age"):
        bad = [n for n in quality.unsettled.get(key, []) if n not in quality.growing_age]
        if bad:
            out.append(f"- {key} not settled at {len(bad)} demand node(s): {', '.join(bad[:20])}"
                       f"{' …' if len(bad) > 20 else ''}")
    if quality.growing_age:
        out.append(f"- 水龄不收敛 water age never settles (no flow renews the water) at {len(quality.growing_age)} "
                   f"demand node(s): {', '.join(quality.growing_age[:20])}{' …' if len(quality.growing_age) > 20 else ''}")
    out += [f"- {n}" for n in quality.notes]
    return out + [""]


def cost_section(estimate: object | None) -> list[str]:
    """The bill of quantities and capital-cost estimate (:class:`watersupply.costing.CostEstimate`) as a
    report section, set beside the published cost; a string is reported as the reason there is no estimate."""
    if estimate is None:
        return []
    out = ["## 工程量清单与投资估算 Bill of quantities and capital cost", ""]
    if isinstance(estimate, str):
        return out + [f"未估算 Not estimated: {estimate}", ""]
    e = estimate
    verdict = ("在范围内 within" if e.within else ("偏高 above" if e.ratio > 1 else "偏低 below")) + \
        f" ×{e.factor:g}"
    cmp = pd.DataFrame({
        "本估算 this estimate": [e.total_yuan / 1e6, e.yuan_per_m, e.new_pipe_m / 1000, e.existing_pipe_m / 1000],
        "公开数据 published": [e.published_yuan / 1e6, e.published_yuan_per_m, e.published_pipe_m / 1000, float("nan")],
    }, index=pd.Index(["总投资 total ¥ M", "每米管道(全部) all-in ¥/m of pipe", "新建管道 new pipe km",
                       "利用现有管道 existing pipe km"], name="item"))
    out += [f"- {e.summary()}",
            f"- 比值 ratio estimate / published = {e.ratio:.2f} ({verdict}); 公开数据为来源文章所述 2020 年工程投资"
            "(¥15 M+,一水厂、七泵站、九水池、439 km 管道)— the published figure is the source article's cost of the "
            "2020 works (1 plant, 7 pump stations, 9 reservoirs, 439 km of pipe).",
            "- 单价均为假定值(watersupply/data/costs/*.yaml,各有来源),不是报价;水厂不计价;标为现有的管道与设施"
            "(existing)列出但不计价。Unit rates are assumed (watersupply/data/costs/*.yaml, each with its source), "
            "not quotations; the water plant is not priced; pipes and facilities marked existing (pre-existing "
            "assets reused) are listed but not priced.", "",
            markdown_table(cmp), ""]
    if e.changes:
        out += [f"要与公开数据一致(×{e.factor:g} 以内),须改变下列假定之一 For the estimate to agree with the published "
                f"cost (within ×{e.factor:g}), one of these assumptions would have to change:", ""]
        out += [f"- {c}" for c in e.changes] + [""]
    b = e.boq
    pipes = b[b["item"] == "pipe"]
    other = b[b["item"] != "pipe"]
    whole = {"rate_yuan": lambda d: d["rate_yuan"].round().astype(int),
             "cost_yuan": lambda d: d["cost_yuan"].round().astype(int)}
    pipes, other = pipes.assign(**whole), other.assign(cost_yuan=lambda d: d["cost_yuan"].round().astype(int))
    pt = pipes.assign(existing=pipes["existing"].map({True: "existing", False: "new"}))[
        ["description", "existing", "n", "quantity", "rate_yuan", "cost_yuan"]].rename(columns={
            "description": "管材规格 pipe", "existing": "status", "n": "pipes", "quantity": "km",
            "rate_yuan": "¥/m", "cost_yuan": "¥"})
    ot = other[["item", "description", "quantity", "unit", "cost_yuan", "source"]].rename(columns={
        "description": "名称 name", "cost_yuan": "¥"})
    out += ["### 管道 Pipes", "", markdown_table(pt, index=False, digits=1), "",
            "### 泵站、水池与水厂 Pump stations, reservoirs and plant", "", markdown_table(ot, index=False, digits=1),
            ""]
    return out


def baseline_report(*, title_zh: str, title_en: str, soundness: pd.DataFrame, settlements: pd.DataFrame,
                    energy: pd.DataFrame, facts: Mapping[str, object], warnings: list[str] | None = None,
                    sanity: pd.DataFrame | None = None, quality: object | None = None,
                    cost: object | None = None,
                    leakage: Mapping[str, float] | None = None) -> str:
    """The baseline run report: network facts, soundness checks, EPANET warnings, quality method,
    settlements, pumping energy, (when `cost` is given) the bill of quantities and capital cost, and
    (when the network has leakage emitters) leakage."""
    out = [f"# {title_zh}", f"## {title_en}", "",
           "## 网络概况 Network", "", markdown_table(pd.DataFrame({"value": pd.Series(facts, dtype=object)})), "",
           "## 水力合理性 Soundness checks", "",
           "每项检查的数值、目标与依据。Each check: the figure, the target and the rule it comes from.", "",
           markdown_table(soundness, digits=3), ""]
    if warnings:
        out += ["## 水力问题 Hydraulic warnings", ""] + [f"- {w}" for w in warnings] + [""]
    out += sanity_section(sanity)
    out += quality_section(quality)
    cols = {"name_zh": "名称", "name_en": "name", "kind": "kind", "population": "population",
            "demand_m3d": "demand m³/d", "min_pressure_m": "min p m", "mean_pressure_m": "mean p m",
            "service_head_m": "service head m", "pressure_compliance": "compliance",
            "min_chlorine_mgL": "min Cl mg/L", "max_age_h": "max age h", "p95_age_h": "p95 age h",
            "chlorine_status": "Cl", "age_status": "age"}
    st = settlements[[c for c in cols if c in settlements]].rename(columns=cols)
    out += ["## 村与社区 Villages and communities", "",
            "水质指标为周期稳态日循环(与初始条件无关)。Quality figures over the settled daily cycle "
            "(periodic steady state: they no longer depend on the initial chlorine and age); a water age that "
            "never settles is reported as not settled, not as a number.", "",
            markdown_table(st), ""]
    if len(energy):
        by = energy.groupby("station_id")[["volume_m3", "energy_kwh"]].sum()
        by["kwh_per_m3"] = by["energy_kwh"] / by["volume_m3"].where(by["volume_m3"] > 0)
        out += ["## 泵站能耗 Pumping energy", "", markdown_table(by), ""]
    if leakage:
        lk = pd.DataFrame({"value": pd.Series({
            "leakage m³": leakage["leakage_m3"], "consumption m³": leakage["consumption_m3"],
            "supplied m³": leakage["supplied_m3"], "leakage share": leakage["leakage_share"],
            "target (CJJ 92-2016)": leakage["target_share"]}, dtype=object)})
        out += ["## 管网漏损 Leakage", "",
                "背景漏损(压力相关的射流器,按管长分配)。Background leakage over the run: pressure-dependent emitters "
                "by pipe length (watersupply.leakage); the share is of the water supplied.", "",
                markdown_table(lk, digits=3), ""]
    out += cost_section(cost)
    return "\n".join(out) + "\n"
