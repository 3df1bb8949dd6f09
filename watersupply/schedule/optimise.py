"""The scheduling loop: MILP on the surrogate, EPANET verification to periodic steady state, repair, repeat."""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import wntr

from .._errors import HydraulicError, NetworkDataError
from ..metrics import demand_nodes, service_heads
from ..model import to_wntr
from ..schema import Network
from ..simulation import SimulationResult, run_wntr
from ..standards import thresholds
from ..tariff import Tariff, hourly_prices, load_tariff
from .evaluate import (DayRun, check_day, day_energy, head_gain, scheduled_model, short_node_hours, simulate,
                       starts_per_day)
from .surrogate import HOURS, Surrogate, build_surrogate, fit_surrogate, solve_schedule

__all__ = ["ScheduleResult", "optimise_schedule", "pump_table"]

log = logging.getLogger(__name__)


@dataclass
class ScheduleResult:
    """An optimised daily pump schedule and its verification against the baseline level controls.

    Attributes
    ----------
    schedule : DataFrame
        Hour of day (0–23) × pump: 1 running, 0 off (standby pumps all 0).
    pumps : DataFrame
        One row per pump: station_id, role, scheduled (bool), fills (storage group).
    init_levels : dict
        Tank levels (m) at 00:00 of the periodic steady state; the scheduled model starts there.
    wn : WaterNetworkModel
        The network with the schedule as its controls (``scheduled.inp``).
    baseline_wn : WaterNetworkModel
        The network with its level controls, as run for the baseline.
    baseline, optimised : SimulationResult
        Full EPANET runs (hydraulics and chlorine, `days` days) of the baseline level controls and of the schedule.
    baseline_energy, optimised_energy : DataFrame
        Energy and cost per (hour, pump) over the last simulated day (:func:`~.evaluate.day_energy`).
    checks, baseline_checks : DataFrame
        The constraints checked on the last day of each run.
    iterations : DataFrame
        One row per MILP + EPANET round: surrogate cost, EPANET cost, failed checks.
    epanet_runs : int
        Number of full EPANET runs (baseline and final included).
    seconds : float
        Wall time.
    """

    schedule: pd.DataFrame
    pumps: pd.DataFrame
    init_levels: dict[str, float]
    wn: wntr.network.WaterNetworkModel
    baseline_wn: wntr.network.WaterNetworkModel
    baseline: SimulationResult
    optimised: SimulationResult
    baseline_energy: pd.DataFrame
    optimised_energy: pd.DataFrame
    checks: pd.DataFrame
    baseline_checks: pd.DataFrame
    iterations: pd.DataFrame
    tariff: Tariff
    prices: np.ndarray
    days: int
    max_starts: int
    seed: int
    surrogate: Surrogate
    epanet_runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def baseline_cost_yuan_day(self) -> float:
        return float(self.baseline_energy["cost_yuan"].sum()) + self.demand_charge(self.baseline_energy)

    @property
    def optimised_cost_yuan_day(self) -> float:
        return float(self.optimised_energy["cost_yuan"].sum()) + self.demand_charge(self.optimised_energy)

    @property
    def saving_pct(self) -> float:
        b = self.baseline_cost_yuan_day
        return 100.0 * (b - self.optimised_cost_yuan_day) / b if b > 0 else float("nan")

    def demand_charge(self, energy: pd.DataFrame, station: str | None = None) -> float:
        """Daily share of the demand charge: each station's highest hourly power × charge / days per month."""
        dc = float(self.tariff.demand_charge_yuan_kw_month)
        if dc <= 0:
            return 0.0
        st = self.pumps["station_id"]
        kw = energy["power_kw"].unstack("pump")
        by_station = kw.T.groupby(st.reindex(kw.columns).to_numpy()).sum().T.max()
        if station is not None:
            by_station = by_station.reindex([station]).fillna(0.0)
        return float(by_station.sum() * dc / self.tariff.days_per_month)

    @property
    def passed(self) -> bool:
        return bool(self.checks["passed"].all())


def pump_table(net: Network) -> pd.DataFrame:
    """The pumps to schedule: one row per pump with station_id, role (duty|standby), efficiency, scheduled.

    A pump is scheduled when its role is ``duty`` (or no role is given) and its status is not CLOSED;
    standby and closed pumps stay closed all day.

    Raises
    ------
    NetworkDataError
        The network has no pumps layer, or no duty pump.
    """
    pumps = net.get("pumps")
    if pumps is None or not len(pumps):
        raise NetworkDataError("the network has no pumps (layer 'pumps' is empty): there is nothing to schedule; "
                               "give a network whose pumps fill tanks")
    t = thresholds()
    df = pd.DataFrame(pumps.drop(columns="geometry", errors="ignore")).copy()
    df["id"] = df["id"].astype(str)
    df = df.set_index("id")
    role = df["role"].astype(str).str.lower() if "role" in df else pd.Series("duty", index=df.index)
    status = df["status"].astype(str).str.upper() if "status" in df else pd.Series("OPEN", index=df.index)
    eff = pd.to_numeric(df["efficiency"], errors="coerce") if "efficiency" in df else pd.Series(np.nan, index=df.index)
    eff = eff.where(eff > 0, float(t["pump_efficiency"]))
    eff = eff.where(eff <= 1, eff / 100.0)
    station = df["station_id"].astype(str) if "station_id" in df else pd.Series(df.index, index=df.index)
    station = station.where(~station.isin(["None", "nan", "<NA>", ""]), pd.Series(df.index, index=df.index))
    out = pd.DataFrame({"station_id": station, "role": role.where(role.isin(["duty", "standby"]), "duty"),
                        "efficiency": eff.astype(float)})
    out["scheduled"] = (out["role"] == "duty") & (status != "CLOSED")
    if not out["scheduled"].any():
        raise NetworkDataError("no duty pump to schedule: every pump in layer 'pumps' is standby or CLOSED")
    return out


def _as_dayrun(res: SimulationResult, wn: wntr.network.WaterNetworkModel, days: int) -> DayRun:
    keep = np.isclose(res.hours.to_numpy(dtype=float) % 1.0, 0.0)
    sel = res.hours[keep]
    return DayRun(pressure=res.pressure.loc[sel], demand=res.demand.loc[sel], expected=res.expected_demand.loc[sel],
                  flow=res.flow.loc[sel], head=res.head.loc[sel], levels=res.tank_level.loc[sel], days=days)


def _levels_from_volumes(sur: Surrogate, wn: wntr.network.WaterNetworkModel, v0: dict[str, float],
                         fixed: dict[str, float]) -> dict[str, float]:
    """Tank levels for the groups' start volumes: tanks in `fixed` (that ride full in the baseline) at their
    given level, the group's other tanks at one common fraction of their range."""
    out = {}
    for g, tks in sur.groups.items():
        free = [tk for tk in tks if tk not in fixed] or list(tks)
        held = sum(np.pi * float(wn.get_node(tk).diameter) ** 2 / 4.0 * fixed[tk] for tk in tks if tk not in free)
        a = [np.pi * float(wn.get_node(tk).diameter) ** 2 / 4.0 for tk in free]
        lo = sum(ai * float(wn.get_node(tk).min_level) for ai, tk in zip(a, free))
        hi = sum(ai * float(wn.get_node(tk).max_level) for ai, tk in zip(a, free))
        f = float(np.clip((v0[g] - held - lo) / max(hi - lo, 1e-9), 0.0, 1.0))
        for tk in tks:
            t = wn.get_node(tk)
            out[tk] = fixed[tk] if tk not in free else float(t.min_level + f * (t.max_level - t.min_level))
    return out


def _fix_groups(sur: Surrogate, wn: wntr.network.WaterNetworkModel, fixed: dict[str, float],
                reserve_fraction: float, top_margin_fraction: float = 0.1) -> None:
    """Volume bands of groups holding a tank that rides full: that tank counted at its level, the others free."""
    for g, tks in sur.groups.items():
        if not any(tk in fixed for tk in tks) or all(tk in fixed for tk in tks):
            continue
        lo = hi = clo = chi = 0.0
        for tk in tks:
            t = wn.get_node(tk)
            a = np.pi * float(t.diameter) ** 2 / 4.0
            rng = float(t.max_level) - float(t.min_level)
            if tk in fixed:
                lo, hi, clo, chi = lo + a * fixed[tk], hi + a * fixed[tk], clo + a * fixed[tk], chi + a * fixed[tk]
            else:
                lo += a * (float(t.min_level) + reserve_fraction * rng)
                hi += a * (float(t.max_level) - top_margin_fraction * rng)
                clo += a * float(t.min_level)
                chi += a * float(t.max_level)
        sur.lo_m3[g], sur.hi_m3[g], sur.cap_lo_m3[g], sur.cap_hi_m3[g] = lo, hi, clo, chi


def _repair(sur: Surrogate, checks: pd.DataFrame, run: DayRun, wn: wntr.network.WaterNetworkModel,
            short: set[tuple[str, int]], node_group: dict[str, str], full_ok: set[str]) -> list[str]:
    """Tighten the surrogate where the EPANET run broke a constraint; return what was changed."""
    done = []
    lv = run.levels
    tg = sur.tank_group()
    drift = pd.concat([run.day(lv, d).iloc[-1] - run.day(lv, d).iloc[0] for d in range(run.days)], axis=1).min(axis=1)
    if not bool(checks.loc["max_starts_per_pump", "passed"]):
        # extra starts come from EPANET closing a full tank's inlet and reopening it: keep those tanks lower
        for tk in lv.columns:
            t = wn.get_node(tk)
            if tk in tg and tk not in full_ok and float(lv[tk].max()) > float(t.max_level) - 0.05:
                g = tg[tk]
                area = np.pi * float(t.diameter) ** 2 / 4.0
                sur.hi_m3[g] = max(sur.hi_m3[g] - 0.2 * area, sur.lo_m3[g] + 1e-6)
                done.append(f"{g}: ceiling -0.2 m (tank {tk} reached {lv[tk].max():.2f} m)")
    for tk, d in drift.items():
        if d < 0 and tk in tg:
            g = tg[tk]
            area = np.pi * float(wn.get_node(tk).diameter) ** 2 / 4.0
            sur.periodic_margin_m3[g] = sur.periodic_margin_m3.get(g, 0.0) + 1.5 * (-d) * area + 0.01 * area
            done.append(f"{g}: end-of-day margin +{-d:.3f} m")
    for tk in lv.columns:
        t = wn.get_node(tk)
        low = float(lv[tk].min()) - float(t.min_level)
        if low < 0.05 and tk in tg:
            g = tg[tk]
            sur.floor_raise_m[g] = sur.floor_raise_m.get(g, 0.0) + 0.2
            done.append(f"{g}: floor +0.2 m (tank {tk} reached {lv[tk].min():.2f} m)")
    groups_short = sorted({node_group[n] for n, _ in short if n in node_group})
    for g in groups_short:
        sur.floor_raise_m[g] = sur.floor_raise_m.get(g, 0.0) + 0.25
        done.append(f"{g}: floor +0.25 m (service head short)")
    return done


def _apply_floor(sur: Surrogate, base_lo: dict[str, float]) -> None:
    for g in sur.groups:
        sur.lo_m3[g] = min(base_lo[g] + sur.area_m2[g] * sur.floor_raise_m.get(g, 0.0), sur.hi_m3[g] - 1e-6)


def optimise_schedule(net: Network, *, tariff: Tariff | str | os.PathLike | None = None, max_starts: int = 6,
                      days: int = 2, seed: int = 0, max_iter: int = 8, reserve_fraction: float = 0.25,
                      preempt_full: bool = True, workdir: str | os.PathLike | None = None,
                      **options: Any) -> ScheduleResult:
    """Minimise the daily pumping energy cost under a time-of-use tariff; verify with EPANET.

    Decision variables are the hourly on/off states of every duty pump: a tariff
    is priced by the hour, EPANET switches on the hour exactly with ``AT
    CLOCKTIME`` controls, and the starts-per-day limit is a linear constraint
    on them — trigger levels per period would make the cost a non-linear,
    non-smooth function of the levels that only a simulation can evaluate.

    The loop: fit the mass-balance surrogate on the baseline run; solve the MILP
    (HiGHS via :func:`scipy.optimize.milp`); run the network with the schedule
    as controls for `days` days in EPANET, starting from the MILP's start
    levels; check the last day (service head and no shortfall at every demand
    node and hour, tanks above their minimum, each tank ending the day at or
    above its start level, starts, standby idle); if a check fails, refit the
    surrogate on that run, tighten it where it failed and solve again. The
    accepted schedule is run once more from the last day's start levels (the
    periodic steady state) with chlorine, and that run is the one reported.

    Parameters
    ----------
    net
        Network layers with pumps that fill tanks.
    tariff
        A :class:`~watersupply.tariff.Tariff` or a tariff file (default: the bundled one).
    max_starts
        Most starts per pump per day (cyclic count).
    days
        Length of each verification run, in days (>= 2: the last day is checked).
    seed
        Seed of the tie-break between equally cheap schedules.
    max_iter
        Most MILP + EPANET rounds before giving up.
    reserve_fraction
        Share of each tank's depth (above its minimum level) kept as reserve by the surrogate (assumed);
        repair rounds raise it where EPANET finds pressure short.
    preempt_full
        Leave on their level controls, from the start, the pumps filling a group of tanks some of which ride
        full in the baseline (a gravity-fed tank whose inlet EPANET opens and closes within the hour): an
        hourly mass balance cannot follow it. Without it, such pumps fall back only after failed rounds.
    **options
        Simulation options for :func:`watersupply.model.to_wntr`.

    Raises
    ------
    HydraulicError
        No schedule met every constraint within `max_iter` rounds (the last failing checks are named), or
        the MILP is infeasible.
    NetworkDataError
        No pumps or no duty pump.

    Examples
    --------
    >>> from watersupply.loader import load_network
    >>> res = optimise_schedule(load_network())  # doctest: +SKIP
    >>> round(res.saving_pct)  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    if not isinstance(tariff, Tariff):
        tariff = load_tariff(tariff)
    if int(days) < 2:
        raise NetworkDataError(f"days must be >= 2 (the last day of the run is the periodic one), got {days}")
    if int(max_starts) < 1:
        raise NetworkDataError(f"max_starts must be >= 1, got {max_starts}")
    if not 0.0 <= reserve_fraction < 0.9:
        raise NetworkDataError(f"reserve_fraction must be in [0, 0.9), got {reserve_fraction}")
    days, max_starts = int(days), int(max_starts)
    prices = hourly_prices(tariff)
    table = pump_table(net)
    wn0 = to_wntr(net, **{**options, "duration_h": 24 * days})
    missing = [p for p in table.index if p not in wn0.pump_name_list]
    if missing:
        raise NetworkDataError(f"pump(s) {', '.join(missing)} of layer 'pumps' are not in the model")
    duty = [p for p in table.index if table.loc[p, "scheduled"]]
    standby = [p for p in table.index if not table.loc[p, "scheduled"]]
    eff = table["efficiency"].to_dict()
    sh = service_heads(net).reindex(demand_nodes(net)).dropna()
    runs = 0

    base_res = run_wntr(copy.deepcopy(wn0), age=False, workdir=workdir)
    runs += 1
    base = _as_dayrun(base_res, wn0, days)
    allowed = short_node_hours(base, sh)
    full_ok = {tk for tk in wn0.tank_name_list
               if float(base.levels[tk].max()) > float(wn0.get_node(tk).max_level) - 0.05}
    base_checks = check_day(base, wn0, service_head=sh, standby=standby, schedule=None, max_starts=max_starts,
                            allowed_short=allowed, full_ok=full_ok)
    base_states = (base.day(base.flow)[duty].iloc[:HOURS] > 1e-6).astype(int)
    bst = starts_per_day(base_states)
    base_checks.loc["max_starts_per_pump"] = dict(figure=float(bst.max()), target=f"<= {max_starts}",
                                                  passed=bool((bst <= max_starts).all()), detail="")

    fixed = {tk: float(base.day(base.levels).iloc[0][tk]) for tk in full_ok}
    # a storage group holding a tank that rides full (a gravity-fed tank whose inlet EPANET opens and closes
    # within the hour) has no mass balance an hourly surrogate can follow: its pumps keep their level controls
    probe = build_surrogate(wn0, duty, eff, station=table["station_id"].to_dict(), reserve_fraction=reserve_fraction)
    level_ctl: list[str] = [p for p in duty if any(tk in full_ok for tk in probe.groups[probe.into[p]])
                            and not all(tk in full_ok for tk in probe.groups[probe.into[p]])
                            and preempt_full]
    if level_ctl:
        log.info("pumps %s fill a group with a tank riding full: they keep their level controls", level_ctl)
    fails: dict[str, int] = {}

    def make_surrogate(run: DayRun, wn: wntr.network.WaterNetworkModel, old: Surrogate | None,
                       damping: float) -> tuple[Surrogate, dict[str, float]]:
        pumps = [p for p in duty if p not in level_ctl]
        if not pumps:
            raise HydraulicError("no station could be scheduled: the surrogate could not predict any storage group "
                                 "(see the log); keep the level controls")
        new = build_surrogate(wn0, pumps, eff, station=table["station_id"].to_dict(),
                              reserve_fraction=reserve_fraction)
        _fix_groups(new, wn0, fixed, reserve_fraction)
        lo = dict(new.lo_m3)
        if old is not None:
            for g in new.groups:
                new.floor_raise_m[g] = old.floor_raise_m.get(g, 0.0)
                new.periodic_margin_m3[g] = old.periodic_margin_m3.get(g, 0.0)
                if g in old.hi_m3:
                    new.hi_m3[g] = min(new.hi_m3[g], old.hi_m3[g])
                if g in old.correction_m3s:
                    new.correction_m3s[g] = old.correction_m3s[g]
        # pumps left on level controls draw from their suction group: their flow lands in its correction
        fit_surrogate(new, flow=run.day(run.flow)[pumps], head_gain=run.day(head_gain(run, wn, pumps)),
                      levels=run.day(run.levels), demand=run.day(run.demand), wn=wn, damping=damping)
        return new, lo

    sur, base_lo = make_surrogate(base, wn0, None, 1.0)
    node_group = {n: g for g, members in _group_members(wn0, sur).items() for n in members}
    dc_day = float(tariff.demand_charge_yuan_kw_month) / float(tariff.days_per_month)
    log_rows = []
    accepted = None
    start = {tk: float(base.day(base.levels).iloc[0][tk]) for tk in wn0.tank_name_list}
    last_bad: set[str] = set()
    for it in range(1, max_iter + 1):
        _apply_floor(sur, base_lo)
        try:
            sched, v0, obj = solve_schedule(sur, prices, max_starts=max_starts, demand_charge_per_day=dc_day,
                                            seed=seed)
        except HydraulicError:
            # the groups just tightened made the MILP infeasible: leave their pumps on level controls
            culprits = [g for g in sorted(last_bad) if g in sur.groups]
            if not culprits:
                raise
            moved = [p for p in sur.pumps if sur.into[p] in culprits]
            level_ctl += moved
            log.info("MILP infeasible after tightening %s: %s keep their level controls", culprits, moved)
            if log_rows:
                log_rows[-1]["repair"] += (f"; {', '.join(culprits)}: no feasible schedule once tightened — "
                                           f"{', '.join(moved)} keep their level controls")
            # refit on the baseline run, where those pumps ran on their level controls too
            sur, base_lo = make_surrogate(base, wn0, sur, 1.0)
            _apply_floor(sur, base_lo)
            sched, v0, obj = solve_schedule(sur, prices, max_starts=max_starts, demand_charge_per_day=dc_day,
                                            seed=seed)
        init = {**start, **_levels_from_volumes(sur, wn0, v0, fixed)}
        wn_s = scheduled_model(wn0, sched, standby=standby, init_levels=init, days=days)
        run = simulate(wn_s, days=days, workdir=workdir)
        runs += 1
        exempt = full_ok | (set(wn0.tank_name_list) - set(sur.tank_group()))
        checks = check_day(run, wn_s, service_head=sh, standby=standby, schedule=sched, max_starts=max_starts,
                           allowed_short=allowed, full_ok=exempt)
        cost = float(day_energy(run, wn_s, duty, eff, prices)["cost_yuan"].sum())
        failed = list(checks.index[~checks["passed"]])
        row = dict(iteration=it, surrogate_cost_yuan=obj, epanet_cost_yuan=cost,
                   failed="; ".join(f"{c} ({checks.loc[c, 'detail']})" for c in failed), repair="")
        log.info("schedule round %d: surrogate ¥%.0f, EPANET ¥%.0f, failed: %s", it, obj, cost,
                 "; ".join(f"{c} ({checks.loc[c, 'detail']})" for c in failed) or "none")
        if not failed:
            log_rows.append(row)
            accepted = (sched, run, init)
            break
        short = short_node_hours(run, sh) - allowed
        repairs = _repair(sur, checks, run, wn_s, short, node_group, exempt)
        bad_groups = {r.split(":")[0] for r in repairs}
        last_bad = bad_groups
        for g in bad_groups:
            fails[g] = fails.get(g, 0) + 1
        give_up = [g for g in sorted(bad_groups) if fails[g] >= 3 and g in sur.groups]
        for g in give_up:
            moved = [p for p in sur.pumps if sur.into[p] == g]
            level_ctl += moved
            repairs.append(f"{g}: the surrogate failed three times — {', '.join(moved)} keep their level controls")
        row["repair"] = "; ".join(repairs)
        log.info("repair: %s", row["repair"])
        log_rows.append(row)
        sur, base_lo = make_surrogate(*((base, wn0, sur, 1.0) if give_up else (run, wn_s, sur, 0.7)))
    if accepted is None:
        last = log_rows[-1]["failed"] if log_rows else "?"
        raise HydraulicError(f"no schedule passed every check in {max_iter} rounds (last round failed: {last}); "
                             "allow more rounds (max_iter), more starts, or a larger tank reserve")
    sched, run, init = accepted
    # the verified model itself, with the tariff in its [ENERGY] section; hydraulics do not depend on the
    # quality run, so this reproduces the verified run and adds chlorine for the audit
    wn_final = scheduled_model(wn0, sched, standby=standby, init_levels=init, days=days, prices=prices)
    opt_res = run_wntr(copy.deepcopy(wn_final), age=False, workdir=workdir)
    runs += 1
    opt = _as_dayrun(opt_res, wn_final, days)
    checks = check_day(opt, wn_final, service_head=sh, standby=standby, schedule=sched, max_starts=max_starts,
                       allowed_short=allowed, full_ok=full_ok | (set(wn0.tank_name_list) - set(sur.tank_group())))
    observed = (opt.day(opt.flow)[list(table.index)].iloc[:HOURS] > 1e-6).astype(int)
    full = sched.reindex(columns=list(table.index)).fillna(observed).fillna(0).astype(int)
    full.index.name = "hour"
    control = ["schedule" if p in sched.columns else "level" if p in level_ctl else "standby" for p in table.index]
    pumps = table.assign(fills=[sur.into.get(p) if p in sur.into else None for p in table.index], control=control)
    notes = []
    if level_ctl:
        notes.append(f"pump(s) {', '.join(level_ctl)} keep their level controls: the mass-balance surrogate could "
                     "not predict the storage they fill (their state in schedule.csv is EPANET's, not a decision)")
    if not checks["passed"].all():
        notes.append("the final run (with chlorine) failed: " +
                     ", ".join(checks.index[~checks["passed"]]))
    return ScheduleResult(
        schedule=full, pumps=pumps, init_levels=dict(init), wn=wn_final, baseline_wn=wn0, baseline=base_res,
        optimised=opt_res,
        baseline_energy=day_energy(base, wn0, list(table.index), eff, prices),
        optimised_energy=day_energy(opt, wn_final, list(table.index), eff, prices),
        checks=checks, baseline_checks=base_checks, iterations=pd.DataFrame(log_rows).set_index("iteration"),
        tariff=tariff, prices=prices, days=days, max_starts=max_starts, seed=seed, surrogate=sur,
        epanet_runs=runs, seconds=time.perf_counter() - t0, notes=notes)


def _group_members(wn: wntr.network.WaterNetworkModel, sur: Surrogate) -> dict[str, list[str]]:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(wn.node_name_list)
    for _, link in wn.links():
        if link.link_type != "Pump":
            g.add_edge(link.start_node_name, link.end_node_name)
    return {name: sorted(nx.node_connected_component(g, tks[0])) for name, tks in sur.groups.items()}
