"""The mass-balance surrogate of a network and the MILP over it (HiGHS through :func:`scipy.optimize.milp`).

Storage groups are the parts of the network joined by pipes and valves (not
pumps) that hold at least one tank: in a radial cascade each is one pressure
zone with its reservoir(s). Each hour h a group's stored volume changes by

    ΔV_g(h) = 3600 s · (Σ_pumps into g q_p·x_p(h) − Σ_pumps out of g q_p·x_p(h) − D_g(h) + r_g(h))

with x_p(h) ∈ {0, 1} the pump's state, q_p its flow when running, D_g(h) the
requested demand of the group's junctions and r_g(h) a correction measured
from the last EPANET run (what the constant-flow balance missed). Pump flow and
power are fitted from EPANET runs and refitted after every verification run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
import wntr

from .._errors import HydraulicError
from ..hydraulics import SECONDS_PER_HOUR, expected_demand, pump_power_kw

__all__ = ["Surrogate", "build_surrogate", "fit_surrogate", "solve_schedule"]

log = logging.getLogger(__name__)

#: Density of water, kg/m³.
HOURS = 24


@dataclass
class Surrogate:
    """Storage groups, scheduled pumps and the fitted coefficients of the mass balance.

    Attributes
    ----------
    pumps : list of str
        Duty pumps whose hourly state is decided.
    groups : dict
        Group name (its first tank) → tank ids.
    area_m2, lo_m3, hi_m3, cap_lo_m3, cap_hi_m3 : dict
        Plan area of each group; the volume band the MILP keeps it in; the
        physical band (tanks' minimum and maximum levels).
    into, out_of : dict
        Pump → group it fills / group it draws from (None: a fixed-head source).
    demand_m3s : DataFrame
        Requested demand of each group by hour of day (24 × groups).
    flow_m3s, power_kw : Series
        Fitted flow and power of each pump when running.
    correction_m3s : DataFrame
        r_g(h), 24 × groups.
    floor_raise_m : dict
        Extra height added to a group's lower band after a verification run
        found its service pressure short.
    """

    pumps: list[str]
    groups: dict[str, list[str]]
    area_m2: dict[str, float]
    lo_m3: dict[str, float]
    hi_m3: dict[str, float]
    cap_lo_m3: dict[str, float]
    cap_hi_m3: dict[str, float]
    into: dict[str, str | None]
    out_of: dict[str, str | None]
    station: dict[str, str]
    demand_m3s: pd.DataFrame
    flow_m3s: pd.Series
    power_kw: pd.Series
    correction_m3s: pd.DataFrame
    efficiency: dict[str, float]
    floor_raise_m: dict[str, float] = field(default_factory=dict)
    periodic_margin_m3: dict[str, float] = field(default_factory=dict)

    def tank_group(self) -> dict[str, str]:
        """Tank id → its group."""
        return {tk: g for g, tanks in self.groups.items() for tk in tanks}


def _design_point(wn: wntr.network.WaterNetworkModel, pid: str) -> tuple[float, float]:
    pump = wn.get_link(pid)
    curve = pump.get_pump_curve() if hasattr(pump, "get_pump_curve") else None
    pts = list(curve.points) if curve is not None else []
    if not pts:
        return 0.0, 0.0
    q, h = pts[len(pts) // 2] if len(pts) > 1 else pts[0]
    return float(q), float(h)


def build_surrogate(wn: wntr.network.WaterNetworkModel, pumps: list[str], efficiency: dict[str, float], *,
                    station: dict[str, str], reserve_fraction: float, top_margin_fraction: float = 0.1) -> Surrogate:
    """Find the storage groups and the demand of each, and start the pump coefficients at their design point.

    Raises
    ------
    HydraulicError
        A scheduled pump fills no tank (nothing stores what it pumps, so its
        hours cannot be shifted) — name it and say what to do.
    """
    g = nx.Graph()
    g.add_nodes_from(wn.node_name_list)
    for _name, link in wn.links():
        if link.link_type != "Pump":
            g.add_edge(link.start_node_name, link.end_node_name)
    tanks = set(wn.tank_name_list)
    comp_of: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    for comp in nx.connected_components(g):
        tk = sorted(n for n in comp if n in tanks)
        if not tk:
            continue
        name = tk[0]
        groups[name] = tk
        members[name] = sorted(comp)
        for n in comp:
            comp_of[n] = name
    into = {p: comp_of.get(wn.get_link(p).end_node_name) for p in pumps}
    out_of = {p: comp_of.get(wn.get_link(p).start_node_name) for p in pumps}
    groups = {g: tks for g, tks in groups.items() if any(into[p] == g for p in pumps)}
    members = {g: members[g] for g in groups}
    out_of = {p: (g if g in groups else None) for p, g in out_of.items()}
    orphans = [p for p in pumps if into[p] is None]
    if orphans:
        raise HydraulicError(f"pump(s) {', '.join(orphans)} fill no tank (no tank is joined by pipes to their "
                             "discharge side): their hours cannot be shifted. Give them role 'standby' or a fixed "
                             "status, or add the tank they fill")
    area, lo, hi, clo, chi = {}, {}, {}, {}, {}
    for name, tks in groups.items():
        a = lo_ = hi_ = clo_ = chi_ = 0.0
        for tk in tks:
            t = wn.get_node(tk)
            at = np.pi * float(t.diameter) ** 2 / 4.0
            rng = float(t.max_level) - float(t.min_level)
            a += at
            lo_ += at * (float(t.min_level) + reserve_fraction * rng)
            hi_ += at * (float(t.max_level) - top_margin_fraction * rng)
            clo_ += at * float(t.min_level)
            chi_ += at * float(t.max_level)
        area[name], lo[name], hi[name], clo[name], chi[name] = a, lo_, hi_, clo_, chi_
    hours = np.arange(HOURS, dtype=float)
    exp = expected_demand(wn, hours)
    demand = pd.DataFrame({name: exp.reindex(columns=[n for n in members[name] if n in exp.columns]).sum(axis=1)
                           for name in groups}, index=pd.Index(range(HOURS), name="hour"))
    flow, power = {}, {}
    for p in pumps:
        q, h = _design_point(wn, p)
        flow[p] = q
        power[p] = pump_power_kw(q, h, efficiency[p])
    return Surrogate(pumps=list(pumps), groups=groups, area_m2=area, lo_m3=lo, hi_m3=hi, cap_lo_m3=clo,
                     cap_hi_m3=chi, into=into, out_of=out_of, station=station, demand_m3s=demand,
                     flow_m3s=pd.Series(flow, dtype=float), power_kw=pd.Series(power, dtype=float),
                     correction_m3s=pd.DataFrame(0.0, index=demand.index, columns=demand.columns),
                     efficiency=dict(efficiency))


def fit_surrogate(sur: Surrogate, *, flow: pd.DataFrame, head_gain: pd.DataFrame, levels: pd.DataFrame,
                  demand: pd.DataFrame, wn: wntr.network.WaterNetworkModel, damping: float = 1.0) -> None:
    """Refit pump flow and power and the per-group correction from one simulated day (in place).

    Parameters
    ----------
    flow, head_gain
        Pump flow (m³/s) and head gain (m) at hours 0..24 of the day (25 rows, index hour of day).
    levels
        Tank levels (m) at hours 0..24 of the day.
    demand
        Delivered demand (m³/s) at every junction, hours 0..23.
    """
    for p in sur.pumps:
        q = flow[p].to_numpy()[:HOURS]
        on = q > 1e-6
        if on.any():
            sur.flow_m3s[p] = float(q[on].mean())
            h = head_gain[p].to_numpy()[:HOURS][on].clip(min=0.0)
            sur.power_kw[p] = float(pump_power_kw(q[on], h, sur.efficiency[p]).mean())
    for name, tks in sur.groups.items():
        vol = sum(levels[tk].to_numpy() * np.pi * float(wn.get_node(tk).diameter) ** 2 / 4.0 for tk in tks)
        dv = np.diff(vol)[:HOURS] / SECONDS_PER_HOUR
        pred = -sur.demand_m3s[name].to_numpy().copy()
        for p in sur.pumps:
            q = flow[p].to_numpy()[:HOURS].clip(min=0.0)
            if sur.into[p] == name:
                pred += q
            if sur.out_of[p] == name:
                pred -= q
        resid = dv - pred
        old = sur.correction_m3s[name].to_numpy()
        sur.correction_m3s[name] = (1 - damping) * old + damping * resid


def solve_schedule(sur: Surrogate, prices: np.ndarray, *, max_starts: int, demand_charge_per_day: float = 0.0,
                   seed: int = 0, time_limit_s: float = 20.0) -> tuple[pd.DataFrame, dict[str, float], float]:
    """Cheapest hourly on/off schedule of the surrogate's pumps (MILP, HiGHS).

    Minimises Σ_h price(h)·P_p·x_p(h) (+ the demand charge on each station's
    highest hourly power) subject to: every group's volume stays within its
    band every hour; the volume at 24:00 is at least the volume at 00:00 (plus
    a margin learnt from verification runs); at most `max_starts` starts per
    pump per day, counted cyclically (the day repeats). Ties between equally
    cheap schedules are broken by a tiny seeded perturbation of the hourly
    costs and a small cost per start, so the answer is reproducible.

    Returns
    -------
    (schedule, start volumes, objective)
        Schedule: 24 × pumps of 0/1; start volume (m³) of each group at 00:00.

    Raises
    ------
    HydraulicError
        No schedule meets the constraints: names the storage groups whose
        balance cannot be kept and what to relax.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    pumps, groups = sur.pumps, list(sur.groups)
    nP, nG, H = len(pumps), len(groups), HOURS
    stations = sorted({sur.station[p] for p in pumps})
    nS = len(stations) if demand_charge_per_day > 0 else 0
    ix = lambda i, h: i * H + h  # noqa: E731
    nx_, ns_ = nP * H, nP * H
    iv = nx_ + ns_            # start volumes
    im = iv + nG              # station max power
    n = im + nS
    rng = np.random.default_rng(seed)
    c = np.zeros(n)
    pmin = float(np.min(prices[prices > 0])) if np.any(prices > 0) else 1.0
    for i, p in enumerate(pumps):
        pk = float(sur.power_kw[p])
        for h in range(H):
            c[ix(i, h)] = prices[h] * pk * (1.0 + 1e-6 * rng.random())
            c[nx_ + ix(i, h)] = 0.02 * pmin * max(pk, 1e-3)
    for k in range(nS):
        c[im + k] = demand_charge_per_day
    integrality = np.zeros(n)
    integrality[:nx_] = 1
    lb, ub = np.zeros(n), np.ones(n)
    for k, g in enumerate(groups):
        lb[iv + k], ub[iv + k] = sur.lo_m3[g], sur.hi_m3[g]
    lb[im:], ub[im:] = 0.0, np.inf
    lo_: list[float] = []
    hi_: list[float] = []
    A = lil_matrix((nP * H + nP + nG * (H + 1) + nS * H, n))
    r = 0
    # starts: s(h) - x(h) + x(h-1) >= 0 (cyclic), Σ s <= max_starts
    for i in range(nP):
        for h in range(H):
            A[r, nx_ + ix(i, h)] = 1.0
            A[r, ix(i, h)] = -1.0
            A[r, ix(i, (h - 1) % H)] += 1.0
            lo_.append(0.0), hi_.append(np.inf)
            r += 1
    for i in range(nP):
        for h in range(H):
            A[r, nx_ + ix(i, h)] = 1.0
        lo_.append(0.0), hi_.append(float(max_starts))
        r += 1
    # volumes: lo <= V0 + Σ_{τ<t} ΔV(τ) <= hi for t = 1..24; V(24) - V0 >= margin
    for k, g in enumerate(groups):
        cum_const = 0.0
        coef = np.zeros(nx_)
        for t in range(1, H + 1):
            h = t - 1
            cum_const += SECONDS_PER_HOUR * (-sur.demand_m3s[g].iloc[h] + sur.correction_m3s[g].iloc[h])
            for i, p in enumerate(pumps):
                if sur.into[p] == g:
                    coef[ix(i, h)] += SECONDS_PER_HOUR * sur.flow_m3s[p]
                if sur.out_of[p] == g:
                    coef[ix(i, h)] -= SECONDS_PER_HOUR * sur.flow_m3s[p]
            nz = np.nonzero(coef)[0]
            for j in nz:
                A[r, j] = coef[j]
            A[r, iv + k] = 1.0
            lo_.append(sur.lo_m3[g] - cum_const), hi_.append(sur.hi_m3[g] - cum_const)
            r += 1
        # periodic: Σ ΔV >= margin
        for j in np.nonzero(coef)[0]:
            A[r, j] = coef[j]
        lo_.append(sur.periodic_margin_m3.get(g, 0.0) - cum_const), hi_.append(np.inf)
        r += 1
    for k, s in enumerate(stations[:nS]):
        for h in range(H):
            for i, p in enumerate(pumps):
                if sur.station[p] == s:
                    A[r, ix(i, h)] = -float(sur.power_kw[p])
            A[r, im + k] = 1.0
            lo_.append(0.0), hi_.append(np.inf)
            r += 1
    A = A[:r].tocsr()
    res = milp(c, constraints=LinearConstraint(A, np.array(lo_), np.array(hi_)), integrality=integrality,
               bounds=Bounds(lb, ub), options={"time_limit": time_limit_s, "mip_rel_gap": 1e-3, "disp": False})
    if res.x is None:
        short = [g for g in groups if _group_infeasible(sur, g, max_starts)]
        raise HydraulicError(
            "no pump schedule keeps every tank between its levels and periodic with at most "
            f"{max_starts} starts per pump per day ({res.message.strip()}); "
            + (f"storage group(s) {', '.join(short)} cannot be balanced even alone — " if short else "")
            + "allow more starts (--max-starts), lower the tank reserve, or check the pumps' capacity against "
              "the demand")
    x = np.round(res.x[:nx_]).astype(int).reshape(nP, H).T
    sched = pd.DataFrame(x, index=pd.Index(range(H), name="hour"), columns=pumps)
    v0 = {g: float(res.x[iv + k]) for k, g in enumerate(groups)}
    return sched, v0, float(res.fun)


def _group_infeasible(sur: Surrogate, g: str, max_starts: int) -> bool:
    """Whether group `g` cannot be balanced even with every pump into it running all day."""
    inflow = sum(sur.flow_m3s[p] for p in sur.pumps if sur.into[p] == g)
    need = float((sur.demand_m3s[g] - sur.correction_m3s[g]).sum())
    return inflow * HOURS < need
