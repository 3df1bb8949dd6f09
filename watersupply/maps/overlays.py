"""Overlays of the service map: what a scenario changed, and how critical each pipe is.

An overlay is a small typed record handed to
:func:`watersupply.maps.render_service_map` (``overlay=``):
:class:`ScenarioOverlay` (from :func:`scenario_overlay`) outlines the pipes and
settlements a scenario changed; :class:`CriticalityOverlay` colours the pipes
by the people left without water when each one fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .._errors import ConfigError, NetworkDataError, closest
from ..standards import thresholds

__all__ = ["ScenarioOverlay", "CriticalityOverlay", "Overlay", "scenario_overlay", "check_overlay",
           "with_criticality", "DIFF_ALIASES"]

#: Accepted column names of a scenario's settlement diff (first found is used).
DIFF_ALIASES = {
    "people_without_water_max": ("people_without_water_max", "people_without_water"),
    "person_hours_without_water": ("person_hours_without_water", "people_hours_without_water"),
    "min_pressure_change_m": ("min_pressure_change_m", "delta_min_pressure_m"),
}


@dataclasses.dataclass(frozen=True)
class ScenarioOverlay:
    """What a scenario changed against the baseline.

    Attributes
    ----------
    label
        Scenario name shown in the legend.
    pipes
        Changed pipes: indexed by pipe id, optional column ``change`` (text);
        or just their ids.
    settlements
        Affected settlements: indexed by settlement id, optional columns of
        :data:`DIFF_ALIASES` and ``change``; or just their ids.

    Examples
    --------
    >>> ov = ScenarioOverlay(label="M4 closed", pipes=pd.DataFrame(index=["M4"]))
    >>> ov.label, list(ov.pipes.index), len(ov.settlements)
    ('M4 closed', ['M4'], 0)
    """

    label: str = ""
    pipes: pd.DataFrame | Sequence[str] = dataclasses.field(default_factory=pd.DataFrame)
    settlements: pd.DataFrame | Sequence[str] = dataclasses.field(default_factory=pd.DataFrame)


@dataclasses.dataclass(frozen=True)
class CriticalityOverlay:
    """How critical each pipe is: people without water when it fails (or its segment is shut).

    Attributes
    ----------
    people
        People affected, indexed by pipe id; pipes not in it show as "no data".

    Examples
    --------
    >>> float(CriticalityOverlay(people=pd.Series({"M1": 1200.0})).people["M1"])
    1200.0
    """

    people: pd.Series


#: Any overlay :func:`watersupply.maps.render_service_map` accepts.
Overlay = ScenarioOverlay | CriticalityOverlay


def _frame(val: Any, key: str) -> pd.DataFrame:
    if isinstance(val, pd.DataFrame):
        df = val.copy()
    elif isinstance(val, (list, tuple, pd.Index, set)):
        df = pd.DataFrame(index=pd.Index(sorted(map(str, val)) if isinstance(val, set) else [str(v) for v in val]))
    else:
        raise ConfigError(f"ScenarioOverlay.{key} must be a DataFrame indexed by {key[:-1]} id (or a list of ids), "
                          f"got {type(val).__name__}")
    df.index = df.index.astype(str)
    return df


def check_overlay(overlay: Overlay | None, layers: Mapping[str, gpd.GeoDataFrame]) -> ScenarioOverlay | None:
    """Validate `overlay` against the layers; a scenario overlay comes back with string ids.

    A :class:`CriticalityOverlay` is checked here and applied with
    :func:`with_criticality`; None is returned for it.

    Raises
    ------
    TypeError
        `overlay` is not an overlay.
    NetworkDataError
        The overlay names pipes or settlements that are not in the layers.
    """
    if overlay is None:
        return None
    if not isinstance(overlay, (ScenarioOverlay, CriticalityOverlay)):
        raise TypeError(f"'overlay' should be a ScenarioOverlay or CriticalityOverlay, got {type(overlay).__name__}")
    checks: dict[str, pd.Index] = {}
    if isinstance(overlay, CriticalityOverlay):
        if not isinstance(overlay.people, pd.Series):
            raise ConfigError("CriticalityOverlay.people must be a Series of people affected indexed by pipe id, "
                              f"got {type(overlay.people).__name__}")
        checks["pipes"] = overlay.people.index.astype(str)
        out = None
    else:
        out = ScenarioOverlay(label=str(overlay.label or ""), pipes=_frame(overlay.pipes, "pipes"),
                              settlements=_frame(overlay.settlements, "settlements"))
        checks = {"pipes": out.pipes.index, "settlements": out.settlements.index}
    for key, idx in checks.items():
        if not len(idx):
            continue
        layer = layers.get(key)
        valid = set(layer["id"].astype(str)) if layer is not None else set()
        missing = sorted(set(idx) - valid)
        if missing:
            what = "criticality" if isinstance(overlay, CriticalityOverlay) else "scenario"
            raise NetworkDataError(f"{what} overlay: {key} id(s) {', '.join(map(repr, missing[:5]))} are not in the "
                                   f"{key} layer; {closest(missing[0], valid)}")
    return out


def with_criticality(layers: Mapping[str, gpd.GeoDataFrame], overlay: CriticalityOverlay) -> dict[str, gpd.GeoDataFrame]:
    """The layers with the overlay's people affected as the pipes' ``criticality_people`` column."""
    out = dict(layers)
    pipes = out["pipes"].copy()
    people = pd.to_numeric(overlay.people, errors="coerce")
    people.index = people.index.astype(str)
    pipes["criticality_people"] = people.reindex(pipes["id"].astype(str)).to_numpy(dtype=float)
    out["pipes"] = pipes
    return out


def scenario_overlay(base: Any, scenario: Any, net: Mapping[str, Any], *, t: Mapping[str, float] | None = None,
                     label: str = "", flow_change: float = 0.25, min_flow_ls: float = 0.5,
                     pressure_drop_m: float = 1.0) -> ScenarioOverlay:
    """What a scenario changed against the baseline, as the map's scenario overlay.

    Parameters
    ----------
    base, scenario
        :class:`~watersupply.simulation.SimulationResult` of the baseline and
        the scenario on the same network ids; compared over their common hours.
    net
        The network's layers.
    label
        Scenario name shown in the legend.
    flow_change, min_flow_ls
        A pipe counts as changed when its mean absolute flow changes by more
        than this share and by more than `min_flow_ls` L/s, or it reverses.
    pressure_drop_m
        A settlement counts as affected when its minimum pressure drops by more
        than this, or people in it are without water that were not before.

    Returns
    -------
    ScenarioOverlay
        ``label``; ``pipes`` (DataFrame indexed by pipe id, column ``change``);
        ``settlements`` (DataFrame indexed by settlement id: people_without_water_max
        (peak hour), person_hours_without_water, min_pressure_base_m,
        min_pressure_m, min_pressure_change_m, change).
    """
    from .. import metrics

    t = t or thresholds()
    hours = base.pressure.index.intersection(scenario.pressure.index)
    if not len(hours):
        raise ConfigError("base and scenario results share no hours; simulate both over the same period")
    ids = net["pipes"]["id"].astype(str)
    sb = base.status.reindex(index=hours, columns=ids)
    ss = scenario.status.reindex(index=hours, columns=ids)
    qb = 1000.0 * base.flow.reindex(index=hours, columns=ids)
    qs = 1000.0 * scenario.flow.reindex(index=hours, columns=ids)
    rows = {}
    closed_b, closed_s = (sb == 0).any(), (ss == 0).any()
    for pid in ids:
        if closed_s[pid] and not closed_b[pid]:
            rows[pid] = "closed / 关闭"
        elif closed_b[pid] and not closed_s[pid]:
            rows[pid] = "opened / 开启"
    mb, ms = qb.abs().mean(), qs.abs().mean()
    rel = (ms - mb).abs() / mb.where(mb > 0)
    big = ((rel > flow_change) | (mb <= 0) & (ms > min_flow_ls)) & ((ms - mb).abs() > min_flow_ls)
    rev = (np.sign(qb.mean()) * np.sign(qs.mean()) < 0) & (mb > min_flow_ls) & (ms > min_flow_ls)
    for pid in ids:
        if pid in rows:
            continue
        if rev[pid]:
            rows[pid] = "flow reversed / 流向反转"
        elif big[pid]:
            pct = 100.0 * (ms[pid] - mb[pid]) / mb[pid] if mb[pid] > 0 else float("inf")
            rows[pid] = f"mean flow {mb[pid]:.1f} → {ms[pid]:.1f} L/s ({pct:+.0f} %) / 平均流量变化"
    pipes = pd.DataFrame({"change": pd.Series(rows, dtype=object)})
    pipes.index.name = "id"
    st = net.get("settlements")
    settle = pd.DataFrame(columns=["people_without_water_max", "person_hours_without_water", "min_pressure_base_m",
                                   "min_pressure_m", "min_pressure_change_m", "change"])
    if st is not None and len(st):
        step = float(np.median(np.diff(hours.to_numpy(dtype=float)))) if len(hours) > 1 else 1.0
        pb = metrics.people_without_water(_at(base, hours), dict(net), t)
        ps = metrics.people_without_water(_at(scenario, hours), dict(net), t)
        dem = metrics.demand_nodes(dict(net))
        layer = net["nodes"].set_index(net["nodes"]["id"].astype(str))
        sid = layer["settlement_id"].reindex(dem) if "settlement_id" in layer else pd.Series(None, index=dem)
        rows2 = {}
        for s in st["id"].astype(str):
            members = sid.index[sid.astype(str) == s]
            peak_s = float(ps[s].max()) if s in ps else 0.0
            peak_b = float(pb[s].max()) if s in pb else 0.0
            hrs_s = float(ps[s].sum() * step) if s in ps else 0.0
            minb = float(base.pressure.loc[hours, members].min().min()) if len(members) else np.nan
            mins = float(scenario.pressure.loc[hours, members].min().min()) if len(members) else np.nan
            drop = minb - mins
            if peak_s > peak_b or (not np.isnan(drop) and drop > pressure_drop_m):
                what = []
                if peak_s > peak_b:
                    what.append(f"{peak_s:,.0f} people without water / {peak_s:,.0f}人无水")
                if not np.isnan(drop) and drop > pressure_drop_m:
                    what.append(f"min pressure −{drop:.1f} m / 最低压力下降{drop:.1f} m")
                rows2[s] = dict(people_without_water_max=peak_s, person_hours_without_water=hrs_s,
                                min_pressure_base_m=minb, min_pressure_m=mins, min_pressure_change_m=mins - minb,
                                change="; ".join(what))
        if rows2:
            settle = pd.DataFrame.from_dict(rows2, orient="index")
    settle.index.name = "id"
    return ScenarioOverlay(label=str(label), pipes=pipes, settlements=settle)


def _at(result: Any, hours: pd.Index) -> Any:
    if result.pressure.index.equals(hours):
        return result
    return dataclasses.replace(result, pressure=result.pressure.loc[hours])
