"""Extended-period simulation with pressure-dependent demand, water age and chlorine.

:func:`run_simulation` builds the EPANET model from a network's layers, solves
hydraulics and chlorine in one EPANET run (saving the hydraulics file), then
water age in a second, quality-only run that reuses those hydraulics. Results
are wide DataFrames (index: hours, columns: element ids) in SI units, with tidy
long views for joining onto GIS layers.

EPANET failures become :class:`~watersupply.HydraulicError` naming the run and
the elements involved; a solve that does not balance is reported, not hidden.
"""

from __future__ import annotations

import logging
import os
import tempfile
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
from .schema import Network

__all__ = ["SimulationResult", "run_simulation", "run_wntr", "quality_window", "expected_demand",
           "diagnose_topology"]

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
    """Hours over which quality results are evaluated: the last 24 h of runs of 48 h or more.

    Initial chlorine and age in the pipes are guesses; the first day(s) wash them out.
    """
    hours = result.hours
    end = float(hours.max())
    if end >= 48:
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


def run_wntr(wn: wntr.network.WaterNetworkModel, *, age: bool = True, workdir: str | os.PathLike | None = None,
             initial_chlorine_mgL: float | None = None) -> SimulationResult:
    """Run a prepared WNTR model: hydraulics + chlorine, then water age on the saved hydraulics.

    Parameters
    ----------
    wn
        The model; its quality parameter is set to chlorine for the first run.
    age
        Also compute water age (a second, quality-only EPANET run).
    workdir
        Folder for EPANET's scratch files; a private temporary folder by default
        (so parallel runs never share ``temp.inp``).
    initial_chlorine_mgL
        Initial chlorine at junctions (EPANET's default of 0 makes the first day look unsafe).
    """
    with tempfile.TemporaryDirectory(prefix="watersupply-", dir=workdir) as tmp:
        prefix = str(Path(tmp) / "run")
        if initial_chlorine_mgL is not None:
            for _, j in wn.junctions():
                j.initial_quality = initial_chlorine_mgL * MGL_TO_KGM3
        wn.options.quality.parameter = "CHEMICAL"
        res = _epanet(wn, prefix, "hydraulic and chlorine", save_hyd=age)
        age_df = None
        if age:
            wn.options.quality.parameter = "AGE"
            try:
                res_age = _epanet(wn, prefix + "_age", "water-age", use_hyd=True, hydfile=prefix + ".hyd")
            finally:
                wn.options.quality.parameter = "CHEMICAL"
            age_df = _hours(res_age.node["quality"]) / 3600.0
    node, link = res.node, res.link
    pressure = _hours(node["pressure"])
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
        chlorine=_hours(node["quality"]) / MGL_TO_KGM3,
        age=age_df,
    )
    expected_rows = int(wn.options.time.duration // wn.options.time.report_timestep) + 1
    if len(pressure) < expected_rows:
        raise HydraulicError(f"EPANET stopped at hour {pressure.index.max():g} of {wn.name!r} "
                             f"(expected {wn.options.time.duration / 3600:g} h): the solve failed part-way")
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
    from .model import analysis_changes
    result.warnings.extend(analysis_changes(net, **options))  # what the analyses change in a file's own model
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
