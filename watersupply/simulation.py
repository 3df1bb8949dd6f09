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

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import wntr

from ._errors import HydraulicError
from .engine import quiet_stdout
from .hydraulics import expected_demand, node_leakage
from .model import MGL_TO_KGM3, sim_options, to_wntr
from .quality import QualityInfo, run_side_by_side, steady_quality, warm_quality, write_periodic_hyd
from .schema import Network

__all__ = ["SimulationResult", "run_simulation", "run_wntr", "quality_window", "expected_demand",
           "diagnose_topology", "chlorine_assessment", "sanity_events", "sanity_lines", "SANITY_KINDS",
           "age_not_settled", "chlorine_status", "hour_ranges", "unbalanced_hours", "unbalanced_steps"]

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
    leakage : DataFrame or None
        Background leakage (m³/s) at the nodes with a ``leakage_coeff``
        (:mod:`watersupply.leakage`); ``demand`` is then the users' consumption,
        without it. None when the network has no leakage emitters.
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
    leakage: pd.DataFrame | None = None

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


def age_not_settled(result: SimulationResult) -> list[str]:
    """Demand nodes whose water age has no settled value (still growing, or not settled by the end).

    For a transient run (shorter than a day, or ``steady=False``): nodes whose
    water is as old as the run (it still carries the initial age).
    """
    if result.age is None:
        return []
    q = result.quality
    if q is not None and q.method != "transient":
        return sorted(set(q.unsettled.get("age", [])) | set(q.growing_age))
    end = float(result.hours.max())
    last = result.age.iloc[-1]
    return sorted(str(n) for n in last.index[(last >= 0.98 * end - 1e-9).to_numpy()])


def chlorine_status(result: SimulationResult) -> str:
    """``"assessed"``, or why tap chlorine is not assessed (``"not assessed — …"``)."""
    q = result.quality
    if result.chlorine is None:
        return "not assessed — no chlorine results"
    if q is not None and not q.chlorine_assessed:
        return q.not_assessed_reason
    return "assessed"


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
    src = src or any(float(s_.strength_timeseries.base_value or 0.0) > 0 for _, s_ in wn.sources())
    r = wn.options.reaction
    decay = bool(r.bulk_coeff) or bool(r.wall_coeff) or any(
        bool(getattr(p, "bulk_coeff", None)) or bool(getattr(p, "wall_coeff", None)) for _, p in wn.pipes())
    decay = decay or any(bool(getattr(tk, "bulk_coeff", None)) for _, tk in wn.tanks())
    missing = [w for w, ok in (("no chlorine source", src), ("no decay coefficient", decay)) if not ok]
    return f"not assessed — the model has {' and '.join(missing)}" if missing else ""


#: Largest change of a reservoir's level over the repeated day (share of its range) for the day to count as periodic.
PERIODIC_DRIFT_MAX = 0.01
#: Most days of hydraulics solved beyond the run to reach a periodic day.
PERIODIC_EXTRA_DAYS_MAX = 5


def _day_drift(wn: wntr.network.WaterNetworkModel, pressure: pd.DataFrame, end_h: float) -> float:
    """Largest |level(end) − level(end − 24 h)| / level range over the reservoirs (tanks)."""
    out = 0.0
    for tk in wn.tank_name_list:
        if tk not in pressure or end_h not in pressure.index or end_h - 24.0 not in pressure.index:
            continue
        node_ = wn.get_node(tk)
        span = float(node_.max_level - node_.min_level) or 1.0
        out = max(out, abs(float(pressure.loc[end_h, tk]) - float(pressure.loc[end_h - 24.0, tk])) / span)
    return out


def _source_model_reason(net: Network) -> str:
    """For a network converted from an INP whose own quality options were not carried over: why
    chlorine cannot be assessed in that file ("" when it can, or when the network is not such a file)."""
    from .model import metadata

    md = metadata(net)
    src = md.get("source", "")
    if any(k in md for k in ("plant_chlorine_mgL", "bulk_coeff_per_day", "quality_parameter")):
        return ""  # the conversion kept the file's own quality options: the model decides
    if not src.lower().endswith(".inp") or not Path(src).is_file():
        return ""
    try:
        with quiet_stdout():
            own = wntr.network.WaterNetworkModel(src)
    except Exception:  # the file changed or cannot be read again: judge the simulated model only
        return ""
    param = str(own.options.quality.parameter).upper()
    if param != "CHEMICAL":
        return f"not assessed — the model has no chlorine source or decay (its quality option is {param})"
    return chlorine_assessment(own)


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


def _tables(wn: wntr.network.WaterNetworkModel, node: dict, link: dict, hours: pd.Index) -> dict[str, pd.DataFrame]:
    """The hydraulic result tables of a run by hour (head, demands, flows, velocities, status)."""
    return {"head": _hours(node["head"]), "demand": _hours(node["demand"]),
            "expected_demand": expected_demand(wn, hours), "flow": _hours(link["flowrate"]),
            "velocity": _hours(link["velocity"]).abs(), "status": _hours(link["status"])}


def run_wntr(wn: wntr.network.WaterNetworkModel, *, age: bool = True, workdir: str | os.PathLike | None = None,
             initial_chlorine_mgL: float | None = None, initial_age_h: float = 0.0, steady: bool = True,
             warm_state: dict[str, dict[str, float]] | None = None,
             demand_nodes: list[str] | None = None, max_days: int | None = None,
             not_assessed: str = "") -> SimulationResult:
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
    not_assessed
        A reason chlorine cannot be assessed that `wn` alone does not show (the
        source file had no chlorine data); :func:`chlorine_assessment` of `wn`
        is checked too. Chlorine is then not simulated: its table holds NaN.
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
        qinp = prefix + "_quality.inp"

        def hydraulics() -> wntr.sim.SimulationResults:
            wn.options.quality.parameter = "NONE"  # hydraulics only: quality comes from the runs below
            try:
                return _epanet(wn, prefix, "hydraulic", save_hyd=True)
            finally:
                wn.options.quality.parameter = "CHEMICAL"

        def quality_inp() -> None:
            wn.options.quality.parameter = "CHEMICAL"
            with quiet_stdout():
                wntr.network.write_inpfile(wn, qinp, units=wn.options.hydraulic.inpfile_units, version=2.2)

        # the quality runs' INP file is written by a second process while EPANET solves the hydraulics
        res = run_side_by_side({"hydraulics": hydraulics, "quality INP": quality_inp})["hydraulics"]
        try:
            rpt_text = Path(prefix + ".rpt").read_text(encoding="latin-1", errors="replace")
        except OSError:
            rpt_text = ""
        node, link = res.node, res.link
        pressure = _hours(node["pressure"])
        expected_rows = int(wn.options.time.duration // wn.options.time.report_timestep) + 1
        if len(pressure) < expected_rows:
            raise HydraulicError(f"EPANET stopped at hour {pressure.index.max():g} of {wn.name!r} "
                                 f"(expected {wn.options.time.duration / 3600:g} h): the solve failed part-way")
        hyd = prefix + ".hyd"
        tables: dict[str, pd.DataFrame] = {}
        dur = int(wn.options.time.duration)
        hours = pressure.index
        reason = not_assessed or chlorine_assessment(wn)
        info = QualityInfo(chlorine_assessed=not reason, not_assessed_reason=reason)
        state: dict[str, dict[str, float]] | None = None
        chlorine = age_df = None
        params = ([("chlorine", "CHEMICAL")] if not reason else []) + ([("age", "AGE")] if age else [])
        if warm_state is not None:
            info.method = "warm start"
            warm = run_side_by_side({key: (lambda key=key, par=par: warm_quality(
                qinp, hyd, tmp, parameter=par, duration_s=dur, report_s=int(wn.options.time.report_timestep),
                initial=warm_state.get(key, {}))) for key, par in params})
            chlorine = _frame(warm["chlorine"], hours) if "chlorine" in warm else None
            age_df = _frame(warm["age"], hours) if "age" in warm else None
        elif steady and dur >= 86_400 and dur % 3600 == 0:
            info.method = "periodic steady state"
            state = {}
            c0 = int(np.mod(0 - (dur // 3600 - 24), 24))
            t_last = float(dur / 3600.0 - 24.0)
            levels = {tk: float(pressure.loc[t_last, tk]) for tk in wn.tank_name_list} if t_last in pressure.index \
                else None
            qdur, qhyd = dur, hyd
            drift = _day_drift(wn, pressure, dur / 3600.0)
            extra = 0
            while drift > PERIODIC_DRIFT_MAX and extra < PERIODIC_EXTRA_DAYS_MAX:
                # the last day does not repeat itself (a reservoir ends it elsewhere than it began):
                # solve more days of hydraulics, for the quality only, until one does
                extra += 1
                qdur = dur + extra * 86_400
                wn.options.time.duration = qdur
                wn.options.quality.parameter = "NONE"
                try:
                    ext_res = _epanet(wn, prefix + f"_spinup{extra}", "hydraulic spin-up", save_hyd=True)
                finally:
                    wn.options.time.duration = dur
                    wn.options.quality.parameter = "CHEMICAL"
                qhyd = prefix + f"_spinup{extra}.hyd"
                ext_p = _hours(ext_res.node["pressure"])
                drift = _day_drift(wn, ext_p, qdur / 3600.0)
                levels = {tk: float(ext_p.loc[qdur / 3600.0 - 24.0, tk]) for tk in wn.tank_name_list}
            if extra:
                info.notes.append(f"the run's last day does not repeat itself (reservoir levels drift): the quality "
                                  f"cycle is that of day {qdur // 86_400} of the hydraulics ({extra} more day(s) solved), "
                                  f"where the drift is {100 * drift:.1f} % of a reservoir's range")
            if drift > PERIODIC_DRIFT_MAX:
                info.notes.append(f"reservoir levels still drift {100 * drift:.1f} % of their range per day: "
                                  "the repeated day is not exactly periodic and the quality may not settle")
            ndays = max_days or MAX_DAYS
            periodic = str(Path(tmp) / "periodic.hyd")  # one file, read by the chlorine and the age runs
            if params:
                write_periodic_hyd(qhyd, periodic, duration_s=qdur, days=ndays, inp=qinp)

            def settle(par: str) -> tuple[pd.DataFrame, dict[str, Any]]:
                return steady_quality(qinp, qhyd, tmp, parameter=par, duration_s=qdur, demand_nodes=dn,
                                      tank_levels=levels, initial_default=initial_age_h if par == "AGE" else None,
                                      max_days=ndays, periodic_hyd=periodic)

            # chlorine and age at once, in two processes (see quality.run_side_by_side); this process
            # builds the hydraulic tables while the other run finishes
            done = run_side_by_side({key: (lambda par=par: settle(par)) for key, par in params},
                                    meanwhile=lambda: tables.update(_tables(wn, node, link, hours)))
            for key, par in params:
                cycle, qi = done[key]
                info.days[key], info.residual[key], info.unsettled[key] = qi["days"], qi["residual"], qi["unsettled"]
                info.horizon_h[key] = qi["horizon_h"]
                if par == "AGE":
                    info.growing_age = qi["growing"]
                    age_df = _tile(cycle, hours, dur / 3600.0)
                else:
                    chlorine = _tile(cycle, hours, dur / 3600.0)
                state[key] = {str(k): float(v) for k, v in cycle.iloc[c0].items()}
        else:
            info.method = "transient"
            runs = run_side_by_side({key: (lambda par=par: warm_quality(
                qinp, hyd, tmp, parameter=par, duration_s=dur, report_s=int(wn.options.time.report_timestep),
                initial={}, initial_default=initial_age_h if par == "AGE" else None)) for key, par in params})
            chlorine = _frame(runs["chlorine"], hours) if "chlorine" in runs else None
            age_df = _frame(runs["age"], hours) if "age" in runs else None
        if reason:
            chlorine = pd.DataFrame(np.nan, index=hours, columns=pressure.columns)
        info.seconds = time.perf_counter() - t_start
    tanks = list(wn.tank_name_list)
    if not tables:
        tables.update(_tables(wn, node, link, pressure.index))
    result = SimulationResult(
        pressure=pressure,
        **tables,
        tank_level=pressure[tanks].copy(),
        chlorine=chlorine,
        age=age_df,
        quality=info,
        quality_state=state,
    )
    result.sanity = sanity_events(wn, result, rpt_text=rpt_text)
    return result


_TIME = re.compile(r"(\d+):(\d\d)(?::(\d\d))?")
_ELEMENT = re.compile(r"\b(Node|Junction|Tank|Reservoir|Pump|Valve|Link|Pipe)\s+(\S+?)(?=[\s,.:]|$)")

#: Kinds of sanity events, in report order, with their text.
SANITY_KINDS = {
    "unbalanced": "EPANET could not balance the hydraulics",
    "disconnected": "node cut off from every source",
    "negative_pressure": "negative pressure at a demand node",
    "drained_tank": "reservoir (tank) at its minimum level",
    "closed_off": "reservoir (tank) closed off by closed links",
    "pump_valve": "pump or valve cannot deliver",
    "epanet_warning": "other EPANET warning",
}


def hour_ranges(hours) -> str:
    """Hours as compact ranges: ``[1, 2, 3, 7]`` → ``"1–3, 7"`` (steps of more than 1 h break a range).

    >>> hour_ranges([3.0, 1.0, 2.0, 7.0, 2.0])
    '1–3, 7'
    """
    hs = sorted({float(h) for h in hours})
    if not hs:
        return ""
    out, a, b = [], hs[0], hs[0]
    for h in hs[1:]:
        if h - b > 1.0 + 1e-6:
            out.append((a, b))
            a = h
        b = h
    out.append((a, b))
    return ", ".join(f"{x:g}" if x == y else f"{x:g}–{y:g}" for x, y in out)


def sanity_events(wn: wntr.network.WaterNetworkModel, result: SimulationResult, *, rpt_text: str = "",
                  diagnosis: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """EPANET warnings and failures of a run, one row per kind and element.

    Sources: EPANET's own report (every ``WARNING`` line: unbalanced hours,
    disconnected nodes, pumps and valves that cannot deliver), and the results
    (negative pressure at demand nodes, reservoirs at their minimum level) and
    the static topology check (:func:`diagnose_topology`).

    Returns
    -------
    DataFrame
        Columns ``kind`` (see :data:`SANITY_KINDS`), ``element``, ``hours``
        (ranges, e.g. ``"5–9, 30"``), ``n_hours``, ``detail``.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def add(kind: str, element: str, hour: float | None, detail: str = "") -> None:
        rec = rows.setdefault((kind, element), {"hours": [], "detail": detail})
        if hour is not None and np.isfinite(hour):
            rec["hours"].append(round(float(hour), 2))

    for line in rpt_text.splitlines():
        if "WARNING" not in line.upper():
            continue
        text = line.split("WARNING", 1)[1].lstrip(": ").strip()
        m = _TIME.search(line)
        hour = (int(m.group(1)) + int(m.group(2)) / 60.0 + int(m.group(3) or 0) / 3600.0) if m else None
        low = text.lower()
        el = _ELEMENT.search(text)
        element = el.group(2) if el else "(system)"
        if "unbalanced" in low or "maximum trials" in low or "ill-conditioned" in low:
            add("unbalanced", "(system)", hour, text)
        elif "disconnected" in low:
            add("disconnected", element, hour, text)
        elif "negative pressure" in low:
            add("negative_pressure", "(system)", hour, text)
        elif el and el.group(1) in ("Pump", "Valve"):
            add("pump_valve", element, hour, text)
        else:
            add("epanet_warning", element, hour, text)
    demand = [n for n, j in wn.junctions() if j.base_demand > 0]
    p = result.pressure.reindex(columns=demand)
    neg = p.lt(0)
    for n in neg.columns[neg.any().to_numpy()]:
        for h in neg.index[neg[n].to_numpy()]:
            add("negative_pressure", n, float(h), f"lowest {p[n].min():.1f} m")
    for tk in wn.tank_name_list:
        if tk not in result.tank_level:
            continue
        low = result.tank_level[tk] <= float(wn.get_node(tk).min_level) + 1e-3
        for h in result.tank_level.index[low.to_numpy()]:
            add("drained_tank", tk, float(h), "level at its minimum: outflow stops")
    diag = diagnosis if diagnosis is not None else diagnose_topology(wn)
    for n in diag.get("disconnected_demand_nodes", []):
        add("disconnected", n, None, "no open path to any source for the whole run")
    for n in diag.get("closed_off_reservoirs", []):
        add("closed_off", n, None, "every link of the reservoir is closed")
    order = list(SANITY_KINDS)
    out = [dict(kind=k, element=e, hours=hour_ranges(r["hours"]) or "whole run", n_hours=len(set(r["hours"])),
                detail=r["detail"]) for (k, e), r in rows.items()]
    df = pd.DataFrame(out, columns=["kind", "element", "hours", "n_hours", "detail"])
    if len(df):
        df["_o"] = df["kind"].map(order.index)
        df = df.sort_values(["_o", "n_hours", "element"], ascending=[True, False, True]).drop(columns="_o")
    return df.reset_index(drop=True)


def _unbalanced_rows(result: SimulationResult) -> pd.DataFrame:
    sanity = getattr(result, "sanity", None)
    if sanity is None or not len(sanity):
        return pd.DataFrame(columns=["hours", "n_hours"])
    return sanity[sanity["kind"] == "unbalanced"]


def unbalanced_hours(result: SimulationResult) -> str:
    """Hours (ranges, e.g. ``"5–16"``) at which EPANET could not balance the hydraulics of `result`; ``""`` if none."""
    return ", ".join(str(h) for h in _unbalanced_rows(result)["hours"])


def unbalanced_steps(result: SimulationResult) -> int:
    """Number of hydraulic steps of `result` that EPANET could not balance (from its sanity report)."""
    return int(_unbalanced_rows(result)["n_hours"].sum())


def sanity_lines(sanity: pd.DataFrame | None, *, limit: int = 8) -> list[str]:
    """One warning line per kind of sanity event: counts, then elements with their hours."""
    if sanity is None or not len(sanity):
        return []
    out = []
    for kind, grp in sanity.groupby("kind", sort=False):
        items = [f"{r.element} (h {r.hours})" for r in grp.head(limit).itertuples()]
        more = f" and {len(grp) - limit} more" if len(grp) > limit else ""
        out.append(f"{SANITY_KINDS.get(kind, kind)}: {len(grp)} element(s), {int(grp['n_hours'].sum())} "
                   f"element-hour(s) — {'; '.join(items)}{more}")
    return out


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
                   wn: wntr.network.WaterNetworkModel | None = None, steady: bool = True,
                   warm_state: dict[str, dict[str, float]] | None = None, **options: Any) -> SimulationResult:
    """Simulate a network: pressure-dependent hydraulics, chlorine and water age at steady state.

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
    steady
        Chlorine and age at periodic steady state (see :func:`run_wntr`).
    warm_state
        Start chlorine and age from a baseline's settled state instead (a scenario).
    **options
        Simulation options (``duration_h``, ``required_pressure_m``, ...); see
        :data:`watersupply.model.DEFAULT_OPTIONS`.

    Returns
    -------
    SimulationResult
        With ``warnings`` (one line per kind of EPANET warning or failure, by
        element and hour; quality not settled or not assessed) and ``sanity``
        (the events themselves).

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
        result = run_wntr(wn, age=age, workdir=workdir, initial_chlorine_mgL=opts["tank_initial_chlorine_mgL"],
                          steady=steady, warm_state=warm_state, not_assessed=_source_model_reason(net))
    except HydraulicError as exc:
        extra = _diagnosis_text(diag)
        raise HydraulicError(f"{exc}{'; ' + extra if extra else ''}") from None
    result.options = opts
    if "leakage_coeff" in net["nodes"].columns:  # background leakage apart from the users' consumption
        leak = node_leakage(net, result.pressure, exponent=float(wn.options.hydraulic.emitter_exponent))
        if leak.shape[1]:
            result.leakage = leak
            result.demand = result.demand.sub(leak.reindex(columns=result.demand.columns).fillna(0.0))
    from .model import analysis_changes
    result.warnings.extend(analysis_changes(net, **options))  # what the analyses change in a file's own model
    for msg in sanity_lines(result.sanity):
        result.warnings.append(msg)
        log.warning(msg)
    q = result.quality
    if q is not None:
        if not q.chlorine_assessed:
            result.warnings.append(f"chlorine {q.not_assessed_reason}: tap chlorine is not assessed")
        if q.method == "transient":
            result.warnings.append("the run is shorter than a day: chlorine and age still carry their initial "
                                   "values (not at steady state)")
        for key, label in (("chlorine", "chlorine"), ("age", "water age")):
            bad = [n for n in q.unsettled.get(key, []) if n not in q.growing_age]
            if bad:
                result.warnings.append(f"{label} did not settle after {q.days.get(key, 0)} repeated day(s) at "
                                       f"{len(bad)} demand node(s): {', '.join(bad[:8])}"
                                       f"{' and more' if len(bad) > 8 else ''} (reported as not settled)")
        if q.growing_age:
            result.warnings.append(f"water age never settles at {len(q.growing_age)} demand node(s) (no flow renews "
                                   f"their water): {', '.join(q.growing_age[:8])}"
                                   f"{' and more' if len(q.growing_age) > 8 else ''} — age reported as not settled")
        result.warnings += q.notes
        log.info("%s", q.summary())
    return result
