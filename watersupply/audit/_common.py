"""Shared pieces of the audit: the dimensions and verdict points, settlement membership, text helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..schema import Network
from ..simulation import SimulationResult

__all__ = ["DIMENSIONS", "VERDICT_POINTS", "VERDICT_ZH", "NOT_ASSESSED"]


#: The audited dimensions: key → (中文, English).
DIMENSIONS: dict[str, tuple[str, str]] = {
    "network": ("同网", "same network"),
    "quality": ("同质", "same quality (chlorine, water age)"),
    "pressure": ("服务压力", "service pressure"),
    "price": ("同价", "same price (cost to serve)"),
}

#: Points per verdict; a settlement's score is the mean over :data:`DIMENSIONS`.
VERDICT_POINTS: dict[str, float] = {"pass": 100.0, "warn": 50.0, "fail": 0.0}

VERDICT_ZH = {"pass": "通过", "warn": "警告", "fail": "不通过", "not assessed": "未评估"}

#: A dimension the model has no data for (e.g. chlorine without a source or decay): no points, not a pass.
NOT_ASSESSED = "not assessed"

_RANK = {"fail": 0, "warn": 1, "pass": 2}



def _s(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v)
    return s if s and s.lower() not in ("nan", "none", "<na>") else None


def _say(zh: str, en: str) -> str:
    return f"{zh} / {en}"


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100.0 * x:.1f} %"


def _worst(*verdicts: str) -> str:
    """The worst assessed verdict (``not assessed`` when none is)."""
    known = [v for v in verdicts if v in _RANK]
    return min(known, key=lambda v: _RANK[v]) if known else NOT_ASSESSED


def _score(verdicts: Sequence[str]) -> float:
    """Mean points of the assessed verdicts (NaN when none is)."""
    pts = [VERDICT_POINTS[v] for v in verdicts if v in VERDICT_POINTS]
    return float(np.mean(pts)) if pts else float("nan")


def _names(net: Network) -> dict[str, tuple[str, str]]:
    """id → (name_zh, name_en) for facilities (by id and node id) and settlements."""
    out: dict[str, tuple[str, str]] = {}
    for layer in ("facilities", "settlements"):
        df = net.get(layer)
        if df is None or not len(df):
            continue
        for row in df.itertuples(index=False):
            pair = (_s(getattr(row, "name_zh", None)) or str(row.id), _s(getattr(row, "name_en", None)) or str(row.id))
            out.setdefault(str(row.id), pair)
            nid = _s(getattr(row, "node_id", None))
            if nid is not None:
                out.setdefault(nid, pair)
    return out


def _members(net: Network, *, include_industrial: bool) -> dict[str, list[str]]:
    from ..metrics import demand_nodes

    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    ids = list(demand_nodes(net))
    st = net.get("settlements")
    out: dict[str, list[str]] = {str(s): [] for s in (st["id"] if st is not None else [])}
    if "settlement_id" not in nodes:
        return out
    sid = nodes["settlement_id"].reindex(ids)
    cat = nodes["demand_category"].reindex(ids) if "demand_category" in nodes else pd.Series("domestic", index=ids)
    for n, s, c in zip(ids, sid, cat):
        s = _s(s)
        if s is None or s not in out:
            continue
        if not include_industrial and _s(c) == "industrial":
            continue
        out[s].append(n)
    return out


def _industrial_nodes(net: Network) -> list[str]:
    n = net["nodes"]
    if "demand_category" not in n:
        return []
    return n.loc[n["demand_category"].astype(str) == "industrial", "id"].astype(str).tolist()


def _weights(result: SimulationResult, nodes: Sequence[str], hours: pd.Index) -> pd.DataFrame:
    w = result.demand.reindex(index=hours, columns=list(nodes)).fillna(0.0).clip(lower=0.0)
    if float(w.to_numpy().sum()) <= 0:
        w = result.expected_demand.reindex(index=hours, columns=list(nodes)).fillna(0.0).clip(lower=0.0)
    if float(w.to_numpy().sum()) <= 0:
        w = pd.DataFrame(1.0, index=hours, columns=list(nodes))
    return w


def _sim_options_of(result: SimulationResult) -> dict[str, float]:
    """The result's simulation options that :func:`watersupply.model.to_wntr` knows."""
    from ..model import DEFAULT_OPTIONS

    return {k: v for k, v in (result.options or {}).items() if k in DEFAULT_OPTIONS}
