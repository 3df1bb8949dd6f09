"""EPANET verification of a pump schedule: the model with the schedule as controls, the runs, energy, cost and checks."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import wntr
from wntr.network.base import LinkStatus
from wntr.network.controls import Control, ControlAction, TimeOfDayCondition

from .._errors import HydraulicError
from ..engine import quiet_stdout
from ..hydraulics import SECONDS_PER_HOUR, expected_demand, pump_power_kw
from .surrogate import HOURS

__all__ = ["DayRun", "scheduled_model", "pump_controls", "simulate", "day_run", "day_energy", "head_gain", "check_day",
           "short_node_hours", "starts_per_day", "TOP_TOL_M",
           "PERIODIC_TOL_M", "SERVED_MIN"]

log = logging.getLogger(__name__)

#: A tank counts as periodic when its level at the end of the day is at least its start level minus this (m):
#: EPANET's tank update is exact to about a millimetre.
PERIODIC_TOL_M = 0.005
#: A tank within this of its maximum level (m) is reported as reaching the top (EPANET then closes its inlet).
TOP_TOL_M = 0.02
#: Share of the requested demand a connection must receive every hour to count as served (PDD).
SERVED_MIN = 0.999


@dataclass
class DayRun:
    """Hourly results of an EPANET run (index: hours from the start of the run)."""

    pressure: pd.DataFrame
    demand: pd.DataFrame
    expected: pd.DataFrame
    flow: pd.DataFrame
    head: pd.DataFrame
    levels: pd.DataFrame
    days: int

    def day(self, df: pd.DataFrame, d: int | None = None) -> pd.DataFrame:
        """Rows of day `d` (0-based; default the last), hours 0..24 of that day, indexed by hour of day."""
        d = self.days - 1 if d is None else d
        out = df.loc[(df.index >= 24 * d - 1e-9) & (df.index <= 24 * (d + 1) + 1e-9)].copy()
        out.index = np.round(out.index.to_numpy(dtype=float) - 24 * d).astype(int)
        return out


def _clear_pump_controls(wn: wntr.network.WaterNetworkModel, pumps: set[str]) -> None:
    for name, ctl in list(wn.controls()):
        targets = {getattr(a.target()[0], "name", None) for a in ctl.actions()} if hasattr(ctl, "actions") else set()
        if targets & pumps:
            wn.remove_control(name)


def pump_controls(schedule: pd.DataFrame) -> list[tuple[str, int, str]]:
    """The switching events of a daily schedule: (pump, hour, "OPEN"|"CLOSED"), cyclic over the day.

    >>> s = pd.DataFrame({"P": [0] * 8 + [1] * 16})
    >>> pump_controls(s)
    [('P', 0, 'CLOSED'), ('P', 8, 'OPEN')]
    """
    out = []
    for p in schedule.columns:
        x = schedule[p].to_numpy().astype(int)
        for h in range(len(x)):
            if x[h] != x[h - 1]:
                out.append((str(p), h, "OPEN" if x[h] else "CLOSED"))
    return out


def scheduled_model(wn: wntr.network.WaterNetworkModel, schedule: pd.DataFrame, *, standby: list[str],
                    init_levels: Mapping[str, float] | None = None, days: int = 3,
                    prices: np.ndarray | None = None) -> wntr.network.WaterNetworkModel:
    """`wn` with its pump controls replaced by the daily schedule (EPANET ``AT CLOCKTIME`` controls, which
    repeat every day), standby pumps closed, and tanks starting at `init_levels`.

    The input model is not changed. With `prices`, the EPANET ``[ENERGY]`` section carries the tariff
    (global price 1 per kWh times an hourly price pattern), so EPANET's own energy report prices it.
    """
    import copy

    out = copy.deepcopy(wn)
    pumps = set(schedule.columns) | set(standby)
    _clear_pump_controls(out, pumps)
    for p in standby:
        out.get_link(p).initial_status = LinkStatus.Closed
    for p in schedule.columns:
        out.get_link(p).initial_status = LinkStatus.Open if int(schedule[p].iloc[0]) else LinkStatus.Closed
    for p, h, status in pump_controls(schedule):
        link = out.get_link(p)
        action = ControlAction(link, "status", LinkStatus.Open if status == "OPEN" else LinkStatus.Closed)
        out.add_control(f"{p}_at_{h:02d}", Control(TimeOfDayCondition(out, "=", h * SECONDS_PER_HOUR, repeat=True),
                                                   action))
    for tk, lv in (init_levels or {}).items():
        t = out.get_node(tk)
        t.init_level = float(np.clip(lv, t.min_level, t.max_level))
    out.options.time.duration = int(days * 24 * SECONDS_PER_HOUR)
    if prices is not None:
        name = "TOU_TARIFF"
        if name in out.pattern_name_list:
            out.remove_pattern(name)
        out.add_pattern(name, [float(v) for v in prices])
        out.options.energy.global_price = 1.0 / 3.6e6   # WNTR keeps prices per J: 1 per kWh
        out.options.energy.global_pattern = name
    return out


def simulate(wn: wntr.network.WaterNetworkModel, *, days: int, quality: bool = False,
             workdir: str | os.PathLike | None = None) -> DayRun:
    """Run EPANET (hydraulics only, unless `quality`) for `days` days and collect hourly results."""
    import copy

    m = copy.deepcopy(wn)
    m.options.time.duration = int(days * 24 * SECONDS_PER_HOUR)
    if not quality:
        m.options.quality.parameter = "NONE"
    with tempfile.TemporaryDirectory(prefix="watersupply-schedule-", dir=workdir) as tmp:
        try:
            with quiet_stdout():
                res = wntr.sim.EpanetSimulator(m).run_sim(file_prefix=str(Path(tmp) / "run"), version=2.2)
        except Exception as exc:  # EpanetException or a reader error
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HydraulicError(f"EPANET could not solve the scheduled run of {wn.name!r}: {msg}") from None
    return day_run(res, m, days=days)


def _hours(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.index = pd.Index(np.round(out.index.to_numpy(dtype=float) / SECONDS_PER_HOUR, 6), name="time_h")
    out.columns = out.columns.astype(str)
    return out


def day_run(res: wntr.sim.SimulationResults, wn: wntr.network.WaterNetworkModel, *, days: int) -> DayRun:
    """Hourly-snapshot tables from a WNTR result (reports at whole hours only)."""
    p = _hours(res.node["pressure"])
    p = p.loc[np.isclose(p.index % 1.0, 0.0)]
    if p.index.max() < 24 * days - 1e-6:
        raise HydraulicError(f"EPANET stopped at hour {p.index.max():g} of the {24 * days} h scheduled run of "
                             f"{wn.name!r}: the solve failed part-way")
    idx = p.index
    head = _hours(res.node["head"]).reindex(idx)
    return DayRun(pressure=p, demand=_hours(res.node["demand"]).reindex(idx),
                  expected=expected_demand(wn, idx), flow=_hours(res.link["flowrate"]).reindex(idx),
                  head=head, levels=p[list(wn.tank_name_list)].copy(), days=days)


def head_gain(run: DayRun, wn: wntr.network.WaterNetworkModel, pumps: list[str]) -> pd.DataFrame:
    """Head gain (m) across each pump, every hour."""
    return pd.DataFrame({p: (run.head[wn.get_link(p).end_node_name] - run.head[wn.get_link(p).start_node_name])
                         for p in pumps}, index=run.head.index)


def day_energy(run: DayRun, wn: wntr.network.WaterNetworkModel, pumps: list[str], efficiency: Mapping[str, float],
               prices: np.ndarray, *, day: int | None = None) -> pd.DataFrame:
    """Energy (kWh) and cost (¥) of each pump in each hour of one day (default the last).

    Power = ρ·g·Q·H/η from the flow and head gain at the start of the hour, held
    for the hour (the schedule switches on the hour; the same hourly-snapshot
    rule as :func:`watersupply.metrics.pump_energy`).

    Returns
    -------
    DataFrame
        Index (hour, pump); columns ``flow_m3s``, ``power_kw``, ``kwh``, ``price_yuan_kwh``, ``cost_yuan``.
    """
    q = run.day(run.flow, day)[pumps].clip(lower=0.0)
    hg = run.day(head_gain(run, wn, pumps), day).clip(lower=0.0)
    rows = []
    for h in range(HOURS):
        for p in pumps:
            kw = float(pump_power_kw(float(q.loc[h, p]), float(hg.loc[h, p]), efficiency[p]))
            rows.append((h, p, float(q.loc[h, p]), kw, kw, float(prices[h]), kw * float(prices[h])))
    return pd.DataFrame(rows, columns=["hour", "pump", "flow_m3s", "power_kw", "kwh", "price_yuan_kwh",
                                       "cost_yuan"]).set_index(["hour", "pump"])


def starts_per_day(states: pd.DataFrame) -> pd.Series:
    """Starts of each pump over a day of hourly states (0/1), counted cyclically (the day repeats)."""
    x = (states.to_numpy() > 0).astype(int)
    prev = np.roll(x, 1, axis=0)
    return pd.Series(((x == 1) & (prev == 0)).sum(axis=0), index=states.columns, dtype=int)


def check_day(run: DayRun, wn: wntr.network.WaterNetworkModel, *, service_head: pd.Series, standby: list[str],
              schedule: pd.DataFrame | None, max_starts: int, allowed_short: set[tuple[str, int]] | None = None,
              full_ok: set[str] | None = None) -> pd.DataFrame:
    """The constraints of a schedule checked on every simulated day, one row per check.

    Checks: service head at every demand node every hour and no PDD shortfall
    (node-hours already short in the baseline, `allowed_short` as (node, hour of
    day), excepted); every tank above its minimum level; every tank below its
    maximum is reported, not required (EPANET closes a full tank's inlet, as a
    float or altitude valve would; tanks in `full_ok` ride full in the baseline
    too); every tank ends each day
    at or above its start level; at most `max_starts` starts per pump per day
    (counted from EPANET's flows); standby pumps idle.
    Columns: ``figure``, ``target``, ``passed``, ``detail``.
    """
    allowed_short = allowed_short or set()
    full_ok = full_ok or set()
    rows = []

    def add(name: str, figure: float, target: str, ok: bool, detail: str = "") -> None:
        rows.append(dict(check=name, figure=figure, target=target, passed=bool(ok), detail=detail))

    new: list[tuple[str, int, int]] = []
    for d in range(run.days):
        new += [(n, h, d) for n, h in sorted(short_node_hours(run, service_head, day=d)) if (n, h) not in allowed_short]
    worst = ""
    if new:
        n, h, d = new[0]
        pr = float(run.pressure.loc[24 * d + h, n])
        worst = f"e.g. node {n} on day {d + 1} at {h:02d}:00: {pr:.1f} m (needs {service_head[n]:g} m)"
    add("service_shortfall_node_hours", float(len(new)), "0", not new, worst)
    lv = run.levels
    mins = pd.Series({tk: float(wn.get_node(tk).min_level) for tk in lv.columns})
    maxs = pd.Series({tk: float(wn.get_node(tk).max_level) for tk in lv.columns})
    margin = lv.min() - mins
    add("tank_min_margin_m", float(margin.min()) if len(margin) else np.nan, "> 0",
        bool((margin > 1e-3).all()), ", ".join(f"{k} {v:.2f} m" for k, v in margin.nsmallest(3).items()))
    top = (maxs - lv.max()).drop(index=[t for t in full_ok if t in lv.columns])
    add("tank_top_margin_m", float(top.min()) if len(top) else np.nan, "info (EPANET closes a full tank's inlet)",
        True, ", ".join(f"{k} {v:.2f} m" for k, v in top[top <= TOP_TOL_M].items()))
    drifts = pd.concat([run.day(lv, d).iloc[-1] - run.day(lv, d).iloc[0] for d in range(run.days)], axis=1)
    drift = drifts.min(axis=1)
    ruled = drift.drop(index=[t for t in full_ok if t in drift.index])
    riding = drift.reindex([t for t in full_ok if t in drift.index])
    add("tank_end_minus_start_m", float(ruled.min()) if len(ruled) else np.nan, f">= -{PERIODIC_TOL_M:g}",
        bool((ruled >= -PERIODIC_TOL_M).all()), ", ".join(f"{k} {v:+.3f} m" for k, v in ruled.nsmallest(3).items())
        + ("; not ruled (riding full, or held by level controls): "
           + ", ".join(f"{k} {v:+.3f} m" for k, v in riding.items()) if len(riding) else ""))
    if schedule is not None:
        st = pd.concat([starts_per_day((run.day(run.flow, d)[list(schedule.columns)].iloc[:HOURS] > 1e-6).astype(int))
                        for d in range(run.days)], axis=1).max(axis=1)
        add("max_starts_per_pump", float(st.max()) if len(st) else 0.0, f"<= {max_starts}",
            bool((st <= max_starts).all()), ", ".join(f"{k} {v}" for k, v in st[st > max_starts].items()))
    sb = [s for s in standby if s in run.flow.columns]
    sb_flow = float(run.flow[sb].abs().max().max()) if sb else 0.0
    add("standby_max_flow_m3s", sb_flow, "0", sb_flow <= 1e-6, ", ".join(sb))
    return pd.DataFrame(rows).set_index("check")


def short_node_hours(run: DayRun, service_head: pd.Series, *, day: int | None = None) -> set[tuple[str, int]]:
    """(node, hour of day) pairs short of service head or of their demand on one day (default the last)."""
    ids = [n for n in service_head.index if n in run.pressure.columns]
    p = run.day(run.pressure, day)[ids].iloc[:HOURS]
    got = run.day(run.demand, day)[ids].iloc[:HOURS]
    exp = run.day(run.expected, day)[ids].iloc[:HOURS]
    low = p.lt(service_head[ids], axis=1) | (got < SERVED_MIN * exp) & (exp > 0)
    return {(ids[n], int(h)) for h, n in zip(*np.nonzero(low.to_numpy()))}
