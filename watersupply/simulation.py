"""Extended-period simulation with pressure-dependent demand, water age and chlorine.

:func:`run_simulation` builds the EPANET model from a network's layers and
solves its hydraulics once (saving EPANET's hydraulics file). Chlorine and water
age then come from quality-only runs on those hydraulics at **periodic steady
state** (:mod:`watersupply.quality`): the run's last day is repeated until every
demand node settles, so the figures no longer depend on the initial chlorine and
age guessed for the pipes. A scenario's quality starts from its baseline's
settled cycle instead (``warm_state``). Results are wide DataFrames (index:
hours, columns: element ids) in SI units, with tidy long views for joining onto
GIS layers.

EPANET failures become :class:`~watersupply.HydraulicError` naming the run and
the elements involved; a solve that does not balance is reported, not hidden.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import wntr

from ._errors import HydraulicError
from .engine import quiet_stdout
from .hydraulics import expected_demand
from .model import MGL_TO_KGM3, sim_options, to_wntr
from .quality import QualityInfo, steady_quality, warm_quality
from .schema import Network

__all__ = ["SimulationResult", "run_simulation", "run_wntr", "quality_window", "expected_demand",
           "diagnose_topology", "chlorine_assessment", "sanity_events"]

log = logging.getLogger(__name__)


@dataclass
class SimulationResult:
    """Results of one extended-period simulation (SI units; index = hours).

    Attributes
    ----------
    pressure, head : DataFrame
        Node pressure and head (m).
    demand, expected_demand : DataFrame
        Delivered and requested demand at nodes (m³/s); they differ under
        pressure-dependent demand when pressure is below the required pressure.
    chlorine : DataFrame or None
        Free chlorine (mg/L).
    age : DataFrame or None
        Water age (h).
    flow, velocity : DataFrame
        Link flow (m³/s) and velocity (m/s).
    status : DataFrame
        Link status (0 closed, 1 open).
    tank_level : DataFrame
        Reservoir (tank) water level above its bottom (m).
    options : dict
        The simulation options used.
    warnings : list of str
        EPANET warnings and soundness problems, each naming elements and hours.
    quality : QualityInfo or None
        How chlorine and age were obtained (steady state, horizon, residual,
        nodes not settled, whether chlorine can be assessed at all).
    quality_state : dict or None
        Chlorine (mg/L) and age (h) at every node at the run's hour 0 of the
        settled daily cycle: the initial state of a scenario on the same network.
    sanity : DataFrame
        EPANET warnings and failures, one row per element and hour (see
        :func:`sanity_events`).
    """

    pressure: pd.DataFrame
    head: pd.DataFrame
    demand: pd.DataFrame
    expected_demand: pd.DataFrame
    flow: pd.DataFrame
    velocity: pd.DataFrame
    status: pd.DataFrame
    tank_level: pd.DataFrame
    chlorine: pd.DataFrame | None = None
    age: pd.DataFrame | None = None
    options: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    quality: QualityInfo | None = None
    quality_state: dict[str, dict[str, float]] | None = None
    sanity: pd.DataFrame | None = None

    @property
    def hours(self) -> pd.Index:
        return self.pressure.index

    def nodes_tidy(self) -> pd.DataFrame:
        """Node results as a tidy table indexed by (node, time_h)."""
        parts = {"pressure_m": self.pressure, "head_m": self.head, "demand_m3s": self.demand,
                 "expected_demand_m3s": self.expected_demand}
        if self.chlorine is not None:
            parts["chlorine_mgL"] = self.chlorine
        if self.age is not None:
            parts["age_h"] = self.age
        return _tidy(parts, "node")

    def links_tidy(self) -> pd.DataFrame:
        """Link results as a tidy table indexed by (link, time_h)."""
        return _tidy({"flow_m3s": self.flow, "velocity_ms": self.velocity, "status": self.status}, "link")


def _tidy(parts: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    cols = {}
    for key, df in parts.items():
        s = df.stack()
        s.index.names = ["time_h", name]
        cols[key] = s
    out = pd.DataFrame(cols).swaplevel().sort_index()
    return out


def quality_window(result: SimulationResult) -> pd.Index:
    """Hours over which quality results are evaluated: the last 24 h.

    At periodic steady state (runs of 24 h or more) that is the settled daily
    cycle; otherwise the last 24 h of runs of 48 h or more, where the initial
    chlorine and age guessed for the pipes have been partly washed out.
    """
    hours = result.hours
    end = float(hours.max())
    steady = result.quality is not None and result.quality.method != "transient"
    if end >= (24 if steady else 48):
        return hours[hours >= end - 24]
    return hours


def _epanet(wn: wntr.network.WaterNetworkModel, prefix: str, what: str, **kw: Any) -> wntr.sim.SimulationResults:
    try:
        with quiet_stdout():
            return wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=prefix, version=2.2, **kw)
    except Exception as exc:  # WNTR raises EpanetException, or a bare ValueError from the binary reader
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HydraulicError(f"EPANET could not solve the {what} run of {wn.name!r}: {msg}. "
                             f"Check the report {prefix}.rpt if kept; common causes: disconnected "
                             "demand nodes, closed-off tanks, pumps that cannot deliver their head") from None


def _hours(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.index = pd.Index(np.round(out.index.to_numpy(dtype=float) / 3600.0, 6), name="time_h")
    out.columns = out.columns.astype(str)
    out.columns.name = None
    return out


def chlorine_assessment(wn: wntr.network.WaterNetworkModel) -> str:
    """Why chlorine cannot be assessed on `wn` ("" when it can).

    Chlorine at the taps means something only when the model doses chlorine
    somewhere (a source, or a reservoir/tank with an initial concentration) and
    lets it decay (a bulk, wall or tank reaction coefficient).

    >>> chlorine_assessment(wntr.network.WaterNetworkModel())
    'not assessed — the model has no chlorine source and no decay coefficient'
    """
    src = any(float(getattr(wn.get_node(n), "initial_quality", 0.0) or 0.0) > 0
              for n in list(wn.reservoir_name_list) + list(wn.tank_name_list))
    src = src or any(float(getattr(s_, "strength_timeseries").base_value or 0.0) > 0 for _, s_ in wn.sources())
    r = wn.options.reaction
    decay = bool(r.bulk_coeff) or bool(r.wall_coeff) or any(
        bool(getattr(p, "bulk_coeff", None)) or bool(getattr(p, "wall_coeff", None)) for _, p in wn.pipes())
    decay = decay or any(bool(getattr(tk, "bulk_coeff", None)) for _, tk in wn.tanks())
    missing = [w for w, ok in (("no chlorine source", src), ("no decay coefficient", decay)) if not ok]
    return f"not assessed — the model has {' and '.join(missing)}" if missing else ""


def _chlorine_guess(wn: wntr.network.WaterNetworkModel, age_h: pd.Series) -> dict[str, float] | None:
    """First guess of chlorine from water age: the source dose decayed in bulk over the age (mg/L)."""
    doses = [float(wn.get_node(n).initial_quality or 0.0) / MGL_TO_KGM3 for n in wn.reservoir_name_list]
    dose = max(doses, default=0.0)
    if not dose > 0:
        return None
    k_h = float(wn.options.reaction.bulk_coeff or 0.0) * 3600.0  # 1/h, negative for decay
    return {str(n): dose * float(np.exp(k_h * max(float(a), 0.0))) for n, a in age_h.items()
            if np.isfinite(a) and n not in wn.reservoir_name_list}


def _tile(cycle: pd.DataFrame, hours: pd.Index, duration_h: float) -> pd.DataFrame:
    """The settled daily cycle laid over the run's hours (hour h ↦ cycle hour (h − (D − 24)) mod 24)."""
    pos = np.mod(np.round(hours.to_numpy(dtype=float) - (duration_h - 24.0)).astype(int), 24)
    out = cycle.iloc[pos].copy()
    out.index = hours
    out.columns = out.columns.astype(str)
    return out


def _frame(df: pd.DataFrame, hours: pd.Index) -> pd.DataFrame:
    out = df.reindex(hours, method="nearest")
    out.index = hours
    out.columns = out.columns.astype(str)
    return out


def run_wntr(wn: wntr.network.WaterNetworkModel, *, age: bool = True, workdir: str | os.PathLike | None = None,
             initial_chlorine_mgL: float | None = None, initial_age_h: float = 0.0, steady: bool = True,
             warm_state: dict[str, dict[str, float]] | None = None,
             demand_nodes: list[str] | None = None, max_days: int | None = None) -> SimulationResult:
    """Run a prepared WNTR model: hydraulics once, then chlorine (and age) at periodic steady state.

    Parameters
    ----------
    wn
        The model; its quality options (chlorine sources, reactions) are used as they are.
    age
        Also compute water age.
    workdir
        Folder for EPANET's scratch files; a private temporary folder by default
        (so parallel runs never share ``temp.inp``).
    initial_chlorine_mgL
        Initial chlorine at junctions. At steady state it no longer matters (a
        test of that: 0 and 1 mg/L give the same taps); it speeds the settling.
    initial_age_h
        Initial water age at junctions and reservoirs (tanks) for the age run.
    steady
        Settle the quality by repeating the run's last day (runs of a whole
        number of hours, at least 24 h). False, or a shorter run: EPANET's
        transient from the initial values, flagged as such in ``result.quality``.
    warm_state
        Start chlorine and age from this state (``{"chlorine": {node: mg/L},
        "age": {node: h}}``, e.g. a baseline's ``quality_state``) over the run's
        own hydraulics, instead of settling them (a scenario).
    demand_nodes
        Nodes whose settling decides when to stop (default: junctions with a demand).
    max_days
        Longest extension of the quality run (default :data:`watersupply.quality.MAX_DAYS`).
    """
    import time

    from .quality import MAX_DAYS

    t_start = time.perf_counter()
    if initial_chlorine_mgL is not None:
        for _, j in wn.junctions():
            j.initial_quality = initial_chlorine_mgL * MGL_TO_KGM3
    dn = demand_nodes if demand_nodes is not None else [n for n, j in wn.junctions() if j.base_demand > 0]
    with tempfile.TemporaryDirectory(prefix="watersupply-", dir=workdir) as tmp:
        prefix = str(Path(tmp) / "run")
        wn.options.quality.parameter = "NONE"  # hydraulics only: quality comes from the runs below
        try:
            res = _epanet(wn, prefix, "hydraulic", save_hyd=True)
        finally:
            wn.options.quality.parameter = "CHEMICAL"
        node, link = res.node, res.link
        pressure = _hours(node["pressure"])
        expected_rows = int(wn.options.time.duration // wn.options.time.report_timestep) + 1
        if len(pressure) < expected_rows:
            raise HydraulicError(f"EPANET stopped at hour {pressure.index.max():g} of {wn.name!r} "
                                 f"(expected {wn.options.time.duration / 3600:g} h): the solve failed part-way")
        qinp = prefix + "_quality.inp"
        with quiet_stdout():
            wntr.network.write_inpfile(wn, qinp, units=wn.options.hydraulic.inpfile_units, version=2.2)
        hyd = prefix + ".hyd"
        dur = int(wn.options.time.duration)
        hours = pressure.index
        info = QualityInfo(chlorine_assessed=not chlorine_assessment(wn),
                           not_assessed_reason=chlorine_assessment(wn))
        state: dict[str, dict[str, float]] | None = None
        chlorine = age_df = None
        params = [("chlorine", "CHEMICAL")] + ([("age", "AGE")] if age else [])
        if warm_state is not None:
            info.method = "warm start"
            for key, par in params:
                df = warm_quality(qinp, hyd, tmp, parameter=par, duration_s=dur,
                                  report_s=int(wn.options.time.report_timestep), initial=warm_state.get(key, {}))
                if key == "chlorine":
                    chlorine = _frame(df, hours)
                else:
                    age_df = _frame(df, hours)
        elif steady and dur >= 86_400 and dur % 3600 == 0:
            info.method = "periodic steady state"
            state = {}
            c0 = int(np.mod(0 - (dur // 3600 - 24), 24))
            t_last = float(dur / 3600.0 - 24.0)
            levels = {tk: float(pressure.loc[t_last, tk]) for tk in wn.tank_name_list} if t_last in pressure.index \
                else None
            guess: dict[str, float] | None = None
            for key, par in params[::-1]:  # age first: it gives chlorine a close first guess
                cycle, qi = steady_quality(qinp, hyd, tmp, parameter=par, duration_s=dur, demand_nodes=dn,
                                           tank_levels=levels, initial=guess if par == "CHEMICAL" else None,
                                           initial_default=initial_age_h if par == "AGE" else None,
                                           max_days=max_days or MAX_DAYS)
                info.days[key], info.residual[key], info.unsettled[key] = qi["days"], qi["residual"], qi["unsettled"]
                if par == "AGE":
                    info.growing_age = qi["growing"]
                    age_df = _tile(cycle, hours, dur / 3600.0)
                    guess = _chlorine_guess(wn, cycle.iloc[0])
                else:
                    chlorine = _tile(cycle, hours, dur / 3600.0)
                state[key] = {str(k): float(v) for k, v in cycle.iloc[c0].items()}
        else:
            info.method = "transient"
            for key, par in params:
                df = warm_quality(qinp, hyd, tmp, parameter=par, duration_s=dur,
                                  report_s=int(wn.options.time.report_timestep),
                                  initial={}, initial_default=initial_age_h if par == "AGE" else None)
                if key == "chlorine":
                    chlorine = _frame(df, hours)
                else:
                    age_df = _frame(df, hours)
        info.seconds = time.perf_counter() - t_start
    tanks = list(wn.tank_name_list)
    exp = expected_demand(wn, pressure.index)
    result = SimulationResult(
        pressure=pressure,
        head=_hours(node["head"]),
        demand=_hours(node["demand"]),
        expected_demand=exp,
        flow=_hours(link["flowrate"]),
        velocity=_hours(link["velocity"]).abs(),
        status=_hours(link["status"]),
        tank_level=pressure[tanks].copy(),
        chlorine=chlorine,
        age=age_df,
        quality=info,
        quality_state=state,
    )
    return result


def diagnose_topology(wn: wntr.network.WaterNetworkModel) -> dict[str, list[str]]:
    """Static checks before a solve: demand nodes with no open path to any source, and
    reservoirs (tanks) whose links are all closed.

    EPANET's pressure-driven solve returns meaningless pressures on parts cut off from
    every source, so these are reported by id instead of trusted.
    """
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(wn.node_name_list)
    closed_by_link: dict[str, int] = {}
    for name, link in wn.links():
        status = str(getattr(link, "initial_status", "OPEN")).upper()
        is_closed = status.endswith("CLOSED")
        if link.link_type == "Pump" and is_closed:
            # a closed pump with level controls still opens during the run
            is_closed = not any(name in str(c) for _, c in wn.controls())
        if is_closed:
            for n in (link.start_node_name, link.end_node_name):
                closed_by_link[n] = closed_by_link.get(n, 0) + 1
            continue
        g.add_edge(link.start_node_name, link.end_node_name)
    sources = list(wn.reservoir_name_list) + list(wn.tank_name_list)
    reach: set[str] = set()
    for src in sources:
        if src not in reach:
            reach |= nx.node_connected_component(g, src)
    disconnected = sorted(n for n, j in wn.junctions() if j.base_demand > 0 and n not in reach)
    closed_tanks = sorted(tk for tk in wn.tank_name_list
                          if g.degree(tk) == 0 and closed_by_link.get(tk, 0) > 0)
    return {"disconnected_demand_nodes": disconnected, "closed_off_reservoirs": closed_tanks}


def _diagnosis_text(diag: dict[str, list[str]]) -> str:
    parts = []
    for key, label in (("disconnected_demand_nodes", "demand node(s) with no open path to any source (no water "
                        "for the whole run)"), ("closed_off_reservoirs", "reservoir(s) closed off by closed links")):
        ids = diag.get(key, [])
        if ids:
            more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
            parts.append(f"{label}: {', '.join(ids[:10])}{more}")
    return "; ".join(parts)


def run_simulation(net: Network, *, age: bool = True, workdir: str | os.PathLike | None = None,
                   wn: wntr.network.WaterNetworkModel | None = None, **options: Any) -> SimulationResult:
    """Simulate a network: pressure-dependent hydraulics, chlorine and water age.

    Parameters
    ----------
    net
        Network layers (see :mod:`watersupply.schema`).
    age
        Also compute water age.
    workdir
        Parent folder for EPANET scratch files (a private temp folder is used).
    wn
        A model already built from `net` (e.g. modified by a scenario); built with
        :func:`watersupply.model.to_wntr` when not given.
    **options
        Simulation options (``duration_h``, ``required_pressure_m``, ...); see
        :data:`watersupply.model.DEFAULT_OPTIONS`.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from watersupply.io import read_network, get_path
    >>> res = run_simulation(read_network(get_path("tonghui")), duration_h=2, age=False)
    >>> float(res.hours.max())
    2.0
    """
    opts = sim_options(net, **options)
    if wn is None:
        wn = to_wntr(net, **options)
    diag = diagnose_topology(wn)
    try:
        result = run_wntr(wn, age=age, workdir=workdir, initial_chlorine_mgL=opts["tank_initial_chlorine_mgL"])
    except HydraulicError as exc:
        extra = _diagnosis_text(diag)
        raise HydraulicError(f"{exc}{'; ' + extra if extra else ''}") from None
    result.options = opts
    if diag["disconnected_demand_nodes"] or diag["closed_off_reservoirs"]:
        msg = _diagnosis_text(diag)
        result.warnings.append(msg)
        log.warning(msg)
    neg = result.pressure.drop(columns=list(wn.tank_name_list) + list(wn.reservoir_name_list), errors="ignore")
    demand_nodes = [n for n, j in wn.junctions() if j.base_demand > 0]
    low = neg[demand_nodes].min()
    bad = low[low < 0]
    if len(bad):
        worst = bad.sort_values().head(5)
        msg = ("negative pressure at demand node(s) " +
               ", ".join(f"{n} ({v:.1f} m at hour {neg[n].idxmin():g})" for n, v in worst.items()) +
               (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
        result.warnings.append(msg)
        log.warning(msg)
    return result
