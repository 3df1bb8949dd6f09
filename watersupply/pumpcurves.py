"""Multi-point pump head and efficiency curves sized to each pump's duty.

A pump described only by its duty point (``design_flow_ls``, ``design_head_m``)
becomes in EPANET a one-point curve — a fixed shape — and runs at one flat
efficiency whatever its size. :func:`fit_pump_curves` gives every pump instead

* a **head curve** of 5 points, H(Q) = H₀ − a·Q² through the duty point with the
  shut-off head H₀ = :data:`SHUTOFF_HEAD_RATIO` × design head (a stable radial-flow
  characteristic; centrifugal pumps shut off at about 1.2–1.35 × their duty head),
  from zero flow to the run-out flow where the head reaches 0;
* an **efficiency curve** of 7 points, η(Q) = η_BEP · (2q − q²) with q = Q/Q_design
  (a parabola with its best efficiency at the duty point), where η_BEP fits the
  pump's size: the reference efficiency of a clean-water centrifugal pump of that
  flow (:data:`BEP_EFFICIENCY_BY_FLOW`), less a correction for a low specific speed
  (:data:`LOW_SPECIFIC_SPEED_CORRECTION`) and an allowance for an installed,
  ageing pump (:data:`INSTALLED_ALLOWANCE`).

Small high-head boosters are taken as multistage pumps (e.g. vertical multistage
CDL/CR types): the number of stages is the smallest that lifts the specific
speed per stage to :data:`TARGET_SPECIFIC_SPEED` (at most :data:`MAX_STAGES`).

The curves go into the network's ``curves`` table (x in L/s, y in m or %) and the
pumps' ``curve`` and ``efficiency_curve`` columns, which :func:`watersupply.model.to_wntr`
turns into EPANET HEAD and EFFICIENCY curves; the pump's ``efficiency`` column is
set to η_BEP (the fixed-efficiency analyses use it) and energy reports
(:func:`watersupply.metrics.pump_energy`) read η from the curve at the pumped flow
(:func:`efficiency_at`).

Examples
--------
>>> round(bep_efficiency(4.87, 78.3), 3), round(bep_efficiency(132.81, 104.2), 3)
(0.595, 0.818)
>>> stages_for(4.87, 78.3)
3
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd

from ._errors import NetworkDataError
from .schema import Network
from .standards import DesignAssumption

__all__ = ["PUMP_ASSUMPTIONS", "SHUTOFF_HEAD_RATIO", "BEP_EFFICIENCY_BY_FLOW", "LOW_SPECIFIC_SPEED_CORRECTION",
           "INSTALLED_ALLOWANCE", "TARGET_SPECIFIC_SPEED", "MAX_STAGES", "PUMP_SPEED_RPM", "specific_speed",
           "stages_for", "bep_efficiency", "head_curve", "efficiency_curve", "fit_pump_curves", "efficiency_at",
           "pump_efficiencies"]

_ASSUMPTIONS = [
    DesignAssumption("pump_shutoff_head_ratio", 1.25, "× design head",
                     "shut-off head of the fitted head curves",
                     "assumed: centrifugal pumps with a stable (rising-to-shut-off) curve shut off at 1.2–1.35 × "
                     "the duty head (pump handbooks, e.g. 《给水排水设计手册》第11册 常用设备)"),
    DesignAssumption("pump_bep_efficiency_by_flow",
                     ((5.0, 58.0), (10.0, 64.0), (20.0, 69.2), (30.0, 72.0), (50.0, 75.0), (100.0, 79.0),
                      (200.0, 82.0), (300.0, 83.5), (500.0, 85.0), (1000.0, 87.0)),
                     "(m³/h, %)", "best efficiency of a single-stage clean-water centrifugal pump of specific "
                     "speed 120–210 by its flow (log-linear between points)",
                     "approximate reading of the reference efficiency curve of GB/T 13007-2011 / GB 19762-2007 "
                     "(清水离心泵能效限定值及节能评价值) Fig. 1; verify against the standard or the pump's data sheet"),
    DesignAssumption("pump_low_specific_speed_correction",
                     ((20.0, 32.0), (30.0, 20.0), (40.0, 13.0), (50.0, 9.0), (60.0, 6.5), (70.0, 4.5),
                      (80.0, 3.2), (90.0, 2.2), (100.0, 1.3), (110.0, 0.6), (120.0, 0.0), (210.0, 0.0),
                      (300.0, 3.0)),
                     "(ns, % points)", "efficiency lost by pumps of specific speed ns = 3.65 n √Q / H^0.75 "
                     "outside 120–210",
                     "approximate reading of the correction curve of GB 19762-2007 Fig. 2; verify"),
    DesignAssumption("pump_installed_allowance", 3.0, "% points",
                     "installed, ageing pumps fall short of the catalogue best efficiency by this much",
                     "assumed (wear ring clearance and impeller wear; typical field tests 2–5 points below)"),
    DesignAssumption("pump_speed_rpm", 2900.0, "rpm", "pump speed for the specific speed (2-pole motor, 50 Hz)",
                     "assumed"),
    DesignAssumption("pump_target_specific_speed", 60.0, "ns", "small high-head duties get as many stages as "
                     "bring the specific speed per stage up to this", "assumed: multistage pumps (CDL/CR type) "
                     "are chosen for duties that single-stage pumps serve below ns ≈ 60"),
    DesignAssumption("pump_max_stages", 12, "stages", "most stages of a multistage pump", "assumed"),
]

#: The documented parameters of the fitted curves, by name.
PUMP_ASSUMPTIONS: Mapping[str, DesignAssumption] = MappingProxyType({a.name: a for a in _ASSUMPTIONS})
SHUTOFF_HEAD_RATIO: float = PUMP_ASSUMPTIONS["pump_shutoff_head_ratio"].value
BEP_EFFICIENCY_BY_FLOW: tuple[tuple[float, float], ...] = PUMP_ASSUMPTIONS["pump_bep_efficiency_by_flow"].value
LOW_SPECIFIC_SPEED_CORRECTION: tuple[tuple[float, float], ...] = \
    PUMP_ASSUMPTIONS["pump_low_specific_speed_correction"].value
INSTALLED_ALLOWANCE: float = PUMP_ASSUMPTIONS["pump_installed_allowance"].value
PUMP_SPEED_RPM: float = PUMP_ASSUMPTIONS["pump_speed_rpm"].value
TARGET_SPECIFIC_SPEED: float = PUMP_ASSUMPTIONS["pump_target_specific_speed"].value
MAX_STAGES: int = PUMP_ASSUMPTIONS["pump_max_stages"].value

#: Flow fractions of the head curve's points before the run-out point.
_HEAD_POINTS = (0.0, 0.5, 1.0, 1.5)
#: Flow fractions of the efficiency curve's points.
_EFF_POINTS = (0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 1.8)


def _check_duty(flow_ls: float, head_m: float) -> None:
    if not (math.isfinite(flow_ls) and flow_ls > 0 and math.isfinite(head_m) and head_m > 0):
        raise NetworkDataError(f"a pump duty needs design_flow_ls > 0 and design_head_m > 0, got {flow_ls!r} L/s "
                               f"and {head_m!r} m")


def specific_speed(flow_ls: float, head_m: float, *, stages: int = 1, speed_rpm: float = PUMP_SPEED_RPM) -> float:
    """Specific speed ns = 3.65 n √Q / (H/stages)^0.75 (Q in m³/s, H in m, n in rpm), the Chinese definition.

    >>> round(specific_speed(132.81, 104.2))
    118
    """
    _check_duty(flow_ls, head_m)
    return 3.65 * speed_rpm * math.sqrt(flow_ls / 1000.0) / (head_m / stages) ** 0.75


def stages_for(flow_ls: float, head_m: float, *, speed_rpm: float = PUMP_SPEED_RPM) -> int:
    """Number of stages: the fewest that bring ns per stage to :data:`TARGET_SPECIFIC_SPEED` (≤ :data:`MAX_STAGES`)."""
    for k in range(1, int(MAX_STAGES) + 1):
        if specific_speed(flow_ls, head_m, stages=k, speed_rpm=speed_rpm) >= TARGET_SPECIFIC_SPEED:
            return k
    return int(MAX_STAGES)


def bep_efficiency(flow_ls: float, head_m: float, *, speed_rpm: float = PUMP_SPEED_RPM) -> float:
    """Best efficiency (fraction) of a pump with this duty: reference η by flow − ns correction − allowance."""
    _check_duty(flow_ls, head_m)
    q_m3h = flow_ls * 3.6
    xs, ys = zip(*BEP_EFFICIENCY_BY_FLOW)
    eta = float(np.interp(math.log(q_m3h), np.log(xs), ys))
    ns = specific_speed(flow_ls, head_m, stages=stages_for(flow_ls, head_m, speed_rpm=speed_rpm), speed_rpm=speed_rpm)
    cx, cy = zip(*LOW_SPECIFIC_SPEED_CORRECTION)
    eta -= float(np.interp(ns, cx, cy))
    eta -= INSTALLED_ALLOWANCE
    return max(eta, 20.0) / 100.0


def head_curve(flow_ls: float, head_m: float, *, shutoff_ratio: float = SHUTOFF_HEAD_RATIO) -> list[tuple[float, float]]:
    """Five (L/s, m) points of H = H₀ − a Q² through the duty point, from shut-off to run-out (H = 0).

    >>> [(round(q, 1), round(h, 1)) for q, h in head_curve(10.0, 40.0)]
    [(0.0, 50.0), (5.0, 47.5), (10.0, 40.0), (15.0, 27.5), (22.4, 0.0)]
    """
    _check_duty(flow_ls, head_m)
    if not shutoff_ratio > 1:
        raise NetworkDataError(f"shutoff_ratio must be > 1 (shut-off head above the duty head), got {shutoff_ratio}")
    h0 = shutoff_ratio * head_m
    a = (h0 - head_m) / flow_ls ** 2
    pts = [(f * flow_ls, h0 - a * (f * flow_ls) ** 2) for f in _HEAD_POINTS]
    pts.append((math.sqrt(h0 / a), 0.0))
    return pts


def efficiency_curve(flow_ls: float, bep: float) -> list[tuple[float, float]]:
    """Seven (L/s, %) points of η = η_BEP (2q − q²), q = Q / Q_design, best at the duty point.

    >>> [round(e, 1) for _, e in efficiency_curve(10.0, 0.7)]
    [25.2, 52.5, 67.2, 70.0, 67.2, 52.5, 25.2]
    """
    if not 0 < bep <= 1:
        raise NetworkDataError(f"best efficiency must be a fraction in (0, 1], got {bep!r}")
    return [(f * flow_ls, 100.0 * bep * (2 * f - f * f)) for f in _EFF_POINTS]


def fit_pump_curves(net: Network, *, shutoff_ratio: float = SHUTOFF_HEAD_RATIO,
                    speed_rpm: float = PUMP_SPEED_RPM, replace: bool = False) -> Network:
    """A copy of `net` whose pumps have multi-point head and efficiency curves sized to their duty.

    Parameters
    ----------
    net
        Network with a ``pumps`` layer (``design_flow_ls``, ``design_head_m``).
    shutoff_ratio
        Shut-off head / design head of the head curves.
    speed_rpm
        Pump speed for the specific speed.
    replace
        Also refit pumps that already name a head curve (``curve``); by default
        they keep it (e.g. a curve from an INP file or a manufacturer).

    Returns
    -------
    Network
        New ``curves`` rows ``H_<pump>`` (HEAD) and ``E_<pump>`` (EFFICIENCY); pump
        columns ``curve``, ``efficiency_curve``, ``efficiency`` (η_BEP, fraction)
        and ``stages``. The input is not changed.
    """
    pumps = net.get("pumps")
    out = dict(net)
    if pumps is None or not len(pumps):
        return out
    pumps = pumps.copy()
    for col in ("curve", "efficiency_curve"):
        if col not in pumps.columns:
            pumps[col] = None
        pumps[col] = pumps[col].astype(object)
    if "stages" not in pumps.columns:
        pumps["stages"] = pd.array([pd.NA] * len(pumps), dtype="Int64")
    old = net.get("curves")
    old = old.copy() if old is not None else pd.DataFrame(columns=["curve", "kind", "point", "x", "y"])
    rows: list[dict] = []
    dropped: set[str] = set()
    for i, row in pumps.iterrows():
        pid = str(row["id"])
        has = row["curve"] is not None and str(row["curve"]) not in ("", "nan", "None")
        if has and not replace:
            continue
        q, h = float(row["design_flow_ls"]), float(row["design_head_m"])
        try:
            bep = bep_efficiency(q, h, speed_rpm=speed_rpm)
            hc = head_curve(q, h, shutoff_ratio=shutoff_ratio)
        except NetworkDataError as exc:
            raise NetworkDataError(f"pump {pid!r}: {exc}") from None
        hname, ename = f"H_{pid}", f"E_{pid}"
        if len(hname.encode()) > 31:
            raise NetworkDataError(f"pump {pid!r}: curve id {hname!r} is longer than EPANET's 31 bytes; "
                                   "shorten the pump id")
        dropped |= {hname, ename}
        rows += [dict(curve=hname, kind="HEAD", point=k, x=x, y=y) for k, (x, y) in enumerate(hc)]
        rows += [dict(curve=ename, kind="EFFICIENCY", point=k, x=x, y=y)
                 for k, (x, y) in enumerate(efficiency_curve(q, bep))]
        pumps.at[i, "curve"] = hname
        pumps.at[i, "efficiency_curve"] = ename
        pumps.at[i, "efficiency"] = round(bep, 4)
        pumps.at[i, "stages"] = stages_for(q, h, speed_rpm=speed_rpm)
    keep = old[~old["curve"].astype(str).isin(dropped)] if len(old) else old
    new = pd.DataFrame(rows, columns=["curve", "kind", "point", "x", "y"])
    out["curves"] = pd.concat([keep, new], ignore_index=True) if len(keep) else new
    out["pumps"] = pumps
    return out


def efficiency_at(net: Network, pump: str, flow_ls: float | np.ndarray) -> np.ndarray | None:
    """The pump's efficiency (fraction) at `flow_ls` from its efficiency curve, as EPANET reads it.

    Linear between the curve's points, extended along the end segments, and kept
    within 1–100 % (EPANET 2.2's energy report). None when the pump has no
    efficiency curve in the ``curves`` table.
    """
    pumps, curves = net.get("pumps"), net.get("curves")
    if pumps is None or curves is None or not len(curves) or "efficiency_curve" not in pumps.columns:
        return None
    sel = pumps.loc[pumps["id"].astype(str) == str(pump), "efficiency_curve"]
    if not len(sel) or sel.iloc[0] is None or str(sel.iloc[0]) in ("", "nan", "None"):
        return None
    pts = curves[curves["curve"].astype(str) == str(sel.iloc[0])]
    if not len(pts):
        return None
    if "point" in pts.columns:
        pts = pts.sort_values("point")
    x = pd.to_numeric(pts["x"], errors="coerce").to_numpy(float)
    y = pd.to_numeric(pts["y"], errors="coerce").to_numpy(float)
    q = np.asarray(flow_ls, dtype=float)
    if len(x) == 1:
        eta = np.full_like(q, y[0])
    else:
        eta = np.interp(q, x, y)
        lo, hi = q < x[0], q > x[-1]
        eta = np.where(lo, y[0] + (q - x[0]) * (y[1] - y[0]) / (x[1] - x[0]), eta)
        eta = np.where(hi, y[-1] + (q - x[-1]) * (y[-1] - y[-2]) / (x[-1] - x[-2]), eta)
    return np.clip(eta, 1.0, 100.0) / 100.0


def pump_efficiencies(net: Network) -> pd.DataFrame:
    """One row per pump: duty, stages, specific speed and best efficiency (for reports).

    Indexed by pump id; columns design_flow_ls, design_head_m, stages, specific_speed,
    bep_efficiency (fraction, from the ``efficiency`` column).
    """
    pumps = net.get("pumps")
    cols = ["design_flow_ls", "design_head_m", "stages", "specific_speed", "bep_efficiency"]
    if pumps is None or not len(pumps):
        return pd.DataFrame(columns=cols)
    rows = {}
    for row in pumps.itertuples(index=False):
        q, h = float(row.design_flow_ls), float(row.design_head_m)
        k = stages_for(q, h)
        rows[str(row.id)] = dict(design_flow_ls=q, design_head_m=h, stages=k,
                                 specific_speed=round(specific_speed(q, h, stages=k), 1),
                                 bep_efficiency=float(getattr(row, "efficiency", np.nan)))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = "id"
    return out
