"""Works other than pipes a design may choose: pump upgrades and extra storage.

Each such element is one extra decision variable (:class:`Extra`) whose options
are sorted by cost, option 0 being "keep" at no cost — the same convention as a
candidate pipe's options, so the GA and the local search treat them alike.

Pump upgrades (one variable per *duty* pump, with the standby of its station
that has the same suction and delivery nodes, if any):

``keep``
    nothing.
``standby as 2nd duty``
    the standby runs in parallel with the duty pump under the same level
    control; cost: a new standby pump set of the same rating (to keep a
    standby at the station). Two identical pumps in parallel deliver twice the
    flow at the same head, so the search models it as the duty pump's
    head/flow point scaled ×2 in flow; the verification runs the real standby.
``replace → Q L/s``
    the duty pump (and its standby) replaced by the catalogue size Q above the
    existing duty (:func:`~watersupply.design.costs.pump_sizes`), re-rated to
    the same design head: the head/flow point is scaled in flow by Q / Q₀.
    Cost: every pump replaced × motor kW × ¥/kW (:func:`~watersupply.design.costs.pump_costs`),
    with motor kW = ρ g Q H / η (η from the pump, default 0.75).

Plant production (one variable per plant whose clear well is filled through a
flow-control valve at its production capacity, :func:`watersupply.operations.add_clear_well`):

``expand +ΔQ m³/d``
    the treatment works enlarged by ΔQ (:data:`PRODUCTION_STEPS_M3D`): the FCV's
    production setting (its initial setting and the level control that resumes
    production) scaled by (Q₀ + ΔQ) / Q₀. Cost: ΔQ × :data:`PLANT_PER_M3D`
    (assumed). The only work that lets a clear well cycle when the scenario
    draws more than the plant produces: no pipe or pump can.

Extra storage (one variable per tank): a new cell beside the reservoir with the
same levels, modelled as a larger diameter (the operating volume grows by V);
cost = fixed cost of a new reservoir + V × ¥/m³
(:func:`~watersupply.design.costs.reservoir_costs`), V from
:data:`STORAGE_STEPS_M3`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import wntr
from wntr.network.controls import Control, ControlAction, TankLevelCondition
from wntr.network.base import LinkStatus

from .._errors import ConfigError, NetworkDataError, closest
from ..hydraulics import LS_TO_M3S, pump_power_kw
from .costs import pump_costs, pump_sizes, reservoir_costs

__all__ = ["Extra", "STORAGE_STEPS_M3", "MAX_PUMP_FACTOR", "PRODUCTION_STEPS_M3D", "PLANT_PER_M3D", "pump_extras",
           "storage_extras", "production_valves", "plant_extras", "apply_extras",
           "extras_rows", "apply_extras_to_network", "busy_pumps", "dry_tanks"]

#: Extra storage volumes offered at a reservoir (m³ of operating volume), assumed steps.
STORAGE_STEPS_M3 = (250.0, 500.0, 1000.0, 2000.0, 3000.0, 5000.0)
#: Replacement pumps offered up to this multiple of the existing duty flow.
MAX_PUMP_FACTOR = 8.0
_DEFAULT_EFFICIENCY = 0.75
#: Production added to a plant (m³/d), assumed steps (about an eighth of the plant's 20,000 m³/d each).
PRODUCTION_STEPS_M3D = (2500.0, 5000.0, 7500.0, 10000.0, 15000.0, 20000.0)
#: Cost of a plant's treatment capacity added to its works (¥ per m³/d). ASSUMED, not a quotation: a
#: conventional works (coagulation, sedimentation, filtration, disinfection; civil, mechanical and electrical)
#: at the order of magnitude of Chinese municipal estimates of 2015-2020 (about 800-1,500 ¥/(m³/d)); the
#: project's cost tables give treatment works no rate (:mod:`watersupply.costing`), so it lives here.
PLANT_PER_M3D = 1200.0


@dataclass
class Extra:
    """One non-pipe decision variable.

    Attributes
    ----------
    element : str
        The duty pump's, the tank's or the production valve's id.
    kind : str
        ``"pump"``, ``"storage"`` or ``"plant"``.
    labels : list of str
        What each option builds (option 0 = ``"keep"``).
    costs : ndarray
        Cost of each option (0 for keep), ascending.
    values : ndarray
        Pump: flow factor on the duty pump's head/flow point; storage: extra volume (m³); plant: factor on
        the production setting.
    standby : str
        Pump: the standby pump of the same station and ends ("" for none).
    modes : list of str
        Pump: ``"keep"``, ``"standby"`` or ``"replace"`` per option.
    base : dict
        Pump: ``flow_ls``, ``head_m``, ``efficiency``, ``kw`` (per option); storage:
        ``diameter_m``, ``range_m``; plant: ``capacity_m3d``, ``tank`` (the clear well), ``plant``.
    """

    element: str
    kind: str
    labels: list[str]
    costs: np.ndarray
    values: np.ndarray
    standby: str = ""
    modes: list[str] = field(default_factory=list)
    base: dict = field(default_factory=dict)


def _point(wn: wntr.network.WaterNetworkModel, pid: str) -> tuple[float, float]:
    pump = wn.get_link(pid)
    if getattr(pump, "pump_type", "HEAD") != "HEAD":
        raise ConfigError(f"pump {pid!r} is a power pump: pump upgrades need a head curve")
    pts = wn.get_curve(pump.pump_curve_name).points
    if len(pts) != 1:
        # multi-point curves: take the middle point as the design duty (all points are scaled alike)
        q, h = pts[len(pts) // 2]
    else:
        q, h = pts[0]
    return float(q), float(h)


def _controlled(wn: wntr.network.WaterNetworkModel, pid: str) -> bool:
    pump = wn.get_link(pid)
    return any(getattr(a, "_target_obj", None) is pump for _n, c in wn.controls() for a in c.actions())


def _standby_of(wn: wntr.network.WaterNetworkModel, pid: str) -> str:
    duty = wn.get_link(pid)
    qd, hd = _point(wn, pid)
    for other in wn.pump_name_list:
        if other == pid:
            continue
        o = wn.get_link(other)
        if (o.start_node_name, o.end_node_name) != (duty.start_node_name, duty.end_node_name):
            continue
        if str(o.initial_status).upper().endswith("CLOSED") and not _controlled(wn, other):
            q, h = _point(wn, other)
            if abs(q - qd) <= 1e-9 * max(qd, 1.0) and abs(h - hd) < 1e-6:
                return other
    return ""


def _duty_pumps(wn: wntr.network.WaterNetworkModel) -> list[str]:
    return [p for p in wn.pump_name_list
            if not (str(wn.get_link(p).initial_status).upper().endswith("CLOSED") and not _controlled(wn, p))]


def _select(ids: str | list[str] | None, known: list[str], what: str) -> list[str]:
    if ids is None or ids == "none":
        return []
    if isinstance(ids, str):
        if ids == "all":
            return list(known)
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    out = []
    for i in ids:
        i = str(i)
        if i not in known:
            raise NetworkDataError(f"{what} {i!r} is not one of the network's; {closest(i, known)}")
        if i not in out:
            out.append(i)
    return out


def pump_extras(wn: wntr.network.WaterNetworkModel, pumps: str | list[str] | None, *,
                efficiency: dict[str, float] | None = None, costs: pd.DataFrame | None = None,
                sizes: pd.DataFrame | None = None) -> list[Extra]:
    """Upgrade options of the duty pumps `pumps` (``"all"``, ``"none"``, ids or a comma-separated string).

    Examples
    --------
    >>> wn = wntr.network.WaterNetworkModel()
    >>> wn.add_reservoir("S", base_head=10.0); wn.add_junction("J", base_demand=0.01)
    >>> wn.add_curve("C", "HEAD", [(0.01, 40.0)]); wn.add_pump("P", "S", "J", "HEAD", "C")
    >>> e = pump_extras(wn, "all")[0]
    >>> e.labels[:2], [round(c) for c in e.costs[:2]]
    (['keep', 'replace P → 12.5 L/s'], [0, 22890])
    """
    ids = _select(pumps, _duty_pumps(wn), "duty pump")
    if not ids:
        return []
    per_kw = float((costs if costs is not None else pump_costs()).loc["pump_set_per_kw", "cost_yuan"])
    ladder = (sizes if sizes is not None else pump_sizes())["duty_flow_ls"].to_numpy(dtype=float)
    out = []
    for pid in ids:
        q, h = _point(wn, pid)
        q_ls = q / LS_TO_M3S
        eta = float((efficiency or {}).get(pid, _DEFAULT_EFFICIENCY))

        def kw(flow_ls: float, h: float = h, eta: float = eta) -> float:
            return float(pump_power_kw(flow_ls * LS_TO_M3S, h, eta))

        sb = _standby_of(wn, pid)
        n_pumps = 2 if sb else 1
        opts = [("keep", "keep", 1.0, 0.0, 0.0)]
        if sb:
            opts.append(("standby", f"{sb} as 2nd duty (+ new standby {kw(q_ls):.0f} kW)", 2.0,
                         kw(q_ls) * per_kw, kw(q_ls)))
        for s in ladder[(ladder > q_ls * (1 + 1e-6)) & (ladder <= MAX_PUMP_FACTOR * q_ls)]:
            opts.append(("replace", f"replace {pid}{' and ' + sb if sb else ''} → {s:g} L/s",
                         float(s / q_ls), n_pumps * kw(s) * per_kw, kw(s)))
        opts.sort(key=lambda o: o[3])
        out.append(Extra(element=pid, kind="pump", labels=[o[1] for o in opts],
                         costs=np.array([o[3] for o in opts]), values=np.array([o[2] for o in opts]),
                         standby=sb, modes=[o[0] for o in opts],
                         base={"flow_ls": q_ls, "head_m": h, "efficiency": eta, "kw": [o[4] for o in opts],
                               "pumps": n_pumps}))
    return out


def storage_extras(wn: wntr.network.WaterNetworkModel, tanks: str | list[str] | None, *,
                   costs: pd.DataFrame | None = None,
                   steps_m3: tuple[float, ...] = STORAGE_STEPS_M3) -> list[Extra]:
    """Extra-storage options of the tanks `tanks` (``"all"``, ``"none"``, ids or a comma-separated string)."""
    ids = _select(tanks, list(wn.tank_name_list), "tank")
    t = costs if costs is not None else reservoir_costs()
    per_m3 = float(t.loc["storage_per_m3", "cost_yuan"])
    fixed = float(t.loc["reservoir_fixed", "cost_yuan"])
    out = []
    for tid in ids:
        tank = wn.get_node(tid)
        rng = float(tank.max_level - tank.min_level)
        labels = ["keep"] + [f"new cell +{v:g} m³" for v in steps_m3]
        out.append(Extra(element=tid, kind="storage", labels=labels,
                         costs=np.array([0.0] + [fixed + per_m3 * v for v in steps_m3]),
                         values=np.array([0.0, *steps_m3]), modes=["keep"] + ["storage"] * len(steps_m3),
                         base={"diameter_m": float(tank.diameter), "range_m": rng}))
    return out


def tank_level_actions(wn: wntr.network.WaterNetworkModel) -> Iterator[tuple[Any, Any, Any]]:
    """Every action of a tank-level control: (tank, action, target link), in the model's control order."""
    for _name, c in wn.controls():
        cond = c.condition
        tank = getattr(cond, "_source_obj", None) if isinstance(cond, TankLevelCondition) else None
        if tank is None:
            continue
        for a in c.actions():
            target = getattr(a, "_target_obj", None)
            if target is not None:
                yield tank, a, target


def production_valves(wn: wntr.network.WaterNetworkModel) -> dict[str, tuple[str, float]]:
    """Flow-control valves that fill a clear well at a plant's production capacity: valve → (tank, m³/s).

    Recognised by a tank-level control setting the FCV to a positive flow (production resumes when the clear
    well falls), as :func:`watersupply.operations.add_clear_well` builds it.
    """
    out: dict[str, tuple[str, float]] = {}
    for tank, a, v in tank_level_actions(wn):
        if (v.name in wn.valve_name_list and getattr(v, "valve_type", "") == "FCV"
                and a._attribute == "setting" and float(a._value) > 0):
            out.setdefault(v.name, (tank.name, float(a._value)))
    return out


def plant_extras(wn: wntr.network.WaterNetworkModel, valves: str | list[str] | None, *,
                 per_m3d: float = PLANT_PER_M3D, steps_m3d: tuple[float, ...] = PRODUCTION_STEPS_M3D
                 ) -> list[Extra]:
    """Production options of the plants whose clear wells the FCVs `valves` fill (``"all"``, ``"none"``, ids)."""
    known = production_valves(wn)
    ids = _select(valves, list(known), "production valve")
    out = []
    for vid in ids:
        tank, q = known[vid]
        q0 = q * 86400.0
        plant = vid[:-4] if vid.endswith("-FCV") else vid
        labels = ["keep"] + [f"expand plant {plant} +{s:,.0f} m³/d → {q0 + s:,.0f} m³/d" for s in steps_m3d]
        out.append(Extra(element=vid, kind="plant", labels=labels,
                         costs=np.array([0.0] + [per_m3d * s for s in steps_m3d]),
                         values=np.array([1.0] + [(q0 + s) / q0 for s in steps_m3d]),
                         modes=["keep"] + ["plant"] * len(steps_m3d),
                         base={"capacity_m3d": q0, "tank": tank, "plant": plant, "per_m3d": per_m3d}))
    return out


def tank_diameter(e: Extra, k: int) -> float:
    """Diameter (m) of the tank with option `k` built (same levels, operating volume + V)."""
    d0, rng = e.base["diameter_m"], e.base["range_m"]
    area = math.pi * d0 ** 2 / 4.0 + float(e.values[k]) / rng
    return math.sqrt(4.0 * area / math.pi)


def apply_extras(wn: wntr.network.WaterNetworkModel, extras: list[Extra], xe: np.ndarray) -> None:
    """Build options `xe` of `extras` into `wn` (in place): pumps re-rated or standby run, tanks enlarged."""
    for e, k in zip(extras, np.asarray(xe, dtype=int).tolist()):
        if k == 0:
            continue
        if e.kind == "storage":
            wn.get_node(e.element).diameter = tank_diameter(e, k)
            continue
        if e.kind == "plant":
            f = float(e.values[k])
            valve = wn.get_link(e.element)
            if float(valve.initial_setting or 0.0) > 0:
                valve.initial_setting = float(valve.initial_setting) * f
            for _name, c in wn.controls():
                for a in c.actions():
                    if getattr(a, "_target_obj", None) is valve and a._attribute == "setting" and float(a._value) > 0:
                        a._value = float(a._value) * f
            continue
        if e.modes[k] == "standby":
            sb = wn.get_link(e.standby)
            sb.initial_status = LinkStatus.Open
            for name, c in list(wn.controls()):
                acts = c.actions()
                if len(acts) == 1 and getattr(acts[0], "_target_obj", None) is wn.get_link(e.element):
                    cond = c.condition
                    a = acts[0]
                    wn.add_control(f"{e.standby}{name[len(e.element):]}" if name.startswith(e.element)
                                   else f"{name}~sb", Control(copy.copy(cond), ControlAction(sb, "status", a._value),
                                                              priority=c.priority))
            continue
        f = float(e.values[k])
        for pid in [e.element] + ([e.standby] if e.standby else []):
            pump = wn.get_link(pid)
            pts = wn.get_curve(pump.pump_curve_name).points
            new = f"{pump.pump_curve_name}~up"[-31:]
            if new not in wn.curve_name_list:
                wn.add_curve(new, "HEAD", [(float(q) * f, float(h)) for q, h in pts])
            pump.pump_curve_name = new


def extras_rows(extras: list[Extra], xe: np.ndarray) -> list[dict]:
    """Rows of ``works.csv`` for the pumps and storage built."""
    out = []
    for e, k in zip(extras, np.asarray(xe, dtype=int).tolist()):
        if k == 0:
            continue
        if e.kind == "storage":
            v = float(e.values[k])
            out.append({"element": e.element, "pipe": "", "action": "storage", "old_diameter_mm": np.nan,
                        "new_diameter_mm": np.nan, "nominal": e.labels[k], "material": "reinforced concrete",
                        "roughness_c": np.nan, "length_m": np.nan, "unit_cost": np.nan, "cost": float(e.costs[k]),
                        "old_size": f"D {e.base['diameter_m']:.1f} m",
                        "new_size": f"+{v:g} m³ (D {tank_diameter(e, k):.1f} m)"})
            continue
        if e.kind == "plant":
            q0 = e.base["capacity_m3d"]
            out.append({"element": e.element, "pipe": "", "action": "plant expansion", "old_diameter_mm": np.nan,
                        "new_diameter_mm": np.nan, "nominal": e.labels[k], "material": "treatment works",
                        "roughness_c": np.nan, "length_m": np.nan, "unit_cost": np.nan, "cost": float(e.costs[k]),
                        "old_size": f"{q0:,.0f} m³/d", "new_size": f"{q0 * float(e.values[k]):,.0f} m³/d"})
            continue
        q0, h = e.base["flow_ls"], e.base["head_m"]
        q1 = q0 * float(e.values[k])
        kw = e.base["kw"][k]
        out.append({"element": e.element, "pipe": "", "action": f"pump {e.modes[k]}", "old_diameter_mm": np.nan,
                    "new_diameter_mm": np.nan, "nominal": e.labels[k], "material": "pump set",
                    "roughness_c": np.nan, "length_m": np.nan, "unit_cost": np.nan, "cost": float(e.costs[k]),
                    "old_size": f"{q0:.2f} L/s @ {h:.1f} m",
                    "new_size": (f"2 × {q0:.2f} L/s @ {h:.1f} m" if e.modes[k] == "standby"
                                 else f"{q1:g} L/s @ {h:.1f} m ({kw:.1f} kW × {e.base['pumps']})")})
    return out


def apply_extras_to_network(net: dict, extras: list[Extra], xe: np.ndarray) -> dict:
    """The network layers (pumps, curves, facilities, control valves) with the pump, storage and plant works
    built."""
    out = dict(net)
    pumps = net["pumps"].copy() if net.get("pumps") is not None else None
    fac = net["facilities"].copy() if net.get("facilities") is not None else None
    for e, k in zip(extras, np.asarray(xe, dtype=int).tolist()):
        if k == 0:
            continue
        if e.kind == "storage":
            hit = (fac["kind"] == "reservoir") & (fac["node_id"].astype(str) == e.element)
            fac.loc[hit, "diameter_m"] = tank_diameter(e, k)
            continue
        if e.kind == "plant":
            f = float(e.values[k])
            cv = out.get("control_valves")
            if cv is not None and len(cv):
                cv = cv.copy()
                hit = cv["id"].astype(str) == e.element
                cv.loc[hit, "setting"] = pd.to_numeric(cv.loc[hit, "setting"]) * f
                out["control_valves"] = cv
            if fac is not None and "capacity_m3d" in fac:
                hit = (fac["kind"] == "plant") & (fac["id"].astype(str) == e.base["plant"])
                fac.loc[hit, "capacity_m3d"] = e.base["capacity_m3d"] * f
            continue
        ids = pumps["id"].astype(str)
        if e.modes[k] == "standby":
            duty = pumps.loc[ids == e.element].iloc[0]
            hit = ids == e.standby
            for col in ("role", "status", "control_node", "on_below_m", "off_above_m"):
                if col in pumps:
                    pumps.loc[hit, col] = {"role": "duty", "status": "OPEN"}.get(col, duty[col])
        else:
            hit = ids.isin([e.element, e.standby])
            pumps.loc[hit, "design_flow_ls"] = e.base["flow_ls"] * float(e.values[k])
            curves = out.get("curves")
            if "curve" in pumps and curves is not None and len(curves):
                # a pump by its head curve: the curve scaled in flow, as a curve of its own (as apply_extras does)
                f = float(e.values[k])
                add = []
                for i in pumps.index[hit]:
                    name = pumps.at[i, "curve"]
                    if not isinstance(name, str) or not name:
                        continue
                    new = f"{name}~up"[-31:]
                    if new not in set(curves["curve"].astype(str)) and not any(
                            a["curve"].iloc[0] == new for a in add):
                        pts = curves[curves["curve"].astype(str) == name].copy()
                        pts["curve"] = new
                        pts["x"] = pd.to_numeric(pts["x"]) * f
                        add.append(pts)
                    pumps.at[i, "curve"] = new
                if add:
                    out["curves"] = pd.concat([curves, *add], ignore_index=True)
    if pumps is not None:
        out["pumps"] = pumps
    if fac is not None:
        out["facilities"] = fac
    return out


def busy_pumps(wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults, *, share: float = 0.95
               ) -> list[str]:
    """Duty pumps running at least `share` of the time (candidates for an upgrade)."""
    duty = _duty_pumps(wn)
    if not duty:
        return []
    on = (res.link["status"][duty] > 0).mean()
    return [p for p in duty if on[p] >= share]


def dry_tanks(wn: wntr.network.WaterNetworkModel, res: wntr.sim.SimulationResults) -> list[str]:
    """Tanks reaching their minimum level (candidates for extra storage)."""
    return [t for t in wn.tank_name_list
            if float(res.node["pressure"][t].min()) <= wn.get_node(t).min_level + 0.05]
