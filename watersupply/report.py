"""Readable bilingual (中文/English) Markdown reports of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

__all__ = ["markdown_table", "baseline_report"]


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


def markdown_table(df: pd.DataFrame, *, index: bool = True, digits: int = 2) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (cells escaped, numbers formatted)."""
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        cells = ([_fmt(idx)] if index else []) + [_fmt(v.item() if hasattr(v, "item") else v, digits) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_report(*, title_zh: str, title_en: str, soundness: pd.DataFrame, settlements: pd.DataFrame,
                    energy: pd.DataFrame, facts: Mapping[str, object], warnings: list[str] | None = None) -> str:
    """The baseline run report: network facts, soundness checks, settlements, pumping energy."""
    out = [f"# {title_zh}", f"## {title_en}", "",
           "## 网络概况 Network", "", markdown_table(pd.DataFrame({"value": pd.Series(facts, dtype=object)})), "",
           "## 水力合理性 Soundness checks", "",
           "每项检查的数值、目标与依据。Each check: the figure, the target and the rule it comes from.", "",
           markdown_table(soundness, digits=3), ""]
    if warnings:
        out += ["## 水力问题 Hydraulic warnings", ""] + [f"- {w}" for w in warnings] + [""]
    cols = {"name_zh": "名称", "name_en": "name", "kind": "kind", "population": "population",
            "demand_m3d": "demand m³/d", "min_pressure_m": "min p m", "mean_pressure_m": "mean p m",
            "service_head_m": "service head m", "pressure_compliance": "compliance",
            "min_chlorine_mgL": "min Cl mg/L", "max_age_h": "max age h", "p95_age_h": "p95 age h"}
    st = settlements[[c for c in cols if c in settlements]].rename(columns=cols)
    out += ["## 村与社区 Villages and communities", "",
            "水质指标取最后24小时(前48小时为初始条件冲刷期)。Quality figures over the last 24 h "
            "(the first 48 h wash out the initial conditions); water age is capped by the run length.", "",
            markdown_table(st), ""]
    if len(energy):
        by = energy.groupby("station_id")[["volume_m3", "energy_kwh"]].sum()
        by["kwh_per_m3"] = by["energy_kwh"] / by["volume_m3"].where(by["volume_m3"] > 0)
        out += ["## 泵站能耗 Pumping energy", "", markdown_table(by), ""]
    return "\n".join(out) + "\n"
