"""A design problem and its evaluator: EPANET kept open in memory, one solve per design.

A design gives each candidate pipe an *option*: a position in its list of
choices, sorted by cost (so a lower position is always cheaper). What the
choices are depends on the action:

``size``
    The pipe is (re)sized from the table; every option is a table row and is
    paid for in full (classic new-network design, e.g. Hanoi).
``replace``
    Option 0 keeps the existing pipe at no cost; the others replace it with a
    larger size from the table.
``parallel``
    Option 0 lays nothing; the others lay a duplicate pipe of that size beside
    the existing one (same ends and length).

:class:`Evaluator` opens the model once in the EPANET toolkit (by default
WNTR's bundled EPANET 2.2 library, the one WNTR's ``EpanetSimulator`` uses, so
the final verification sees the same hydraulics) and for each design sets the
diameters (``EN_setlinkvalue``), solves the whole run and returns the cost, the
minimum pressure at every checked node over the report times, the velocity
excess in the candidate pipes and the tank-cycle shortfall.
"""

from __future__ import annotations

import contextlib

import copy
import time
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import wntr

from .._errors import ConfigError, NetworkDataError, closest
from ..engine import EN, EN_PUMP_HCURVE, Project
from ..engine import quiet_stdout
from ..hydraulics import MM_TO_M
from .works import Extra, tank_diameter

__all__ = ["ACTIONS", "PRESSURE_FLOOR_M", "TANK_SLACK_M", "DesignSpace", "Evaluation", "Evaluator", "cycle_drop", "design_space",
           "dup_name"]

#: Pressures below this are clipped in the search (a tank run dry gives EPANET values like -1e8 m under
#: demand-driven analysis; clipped, the deficit still says how many nodes fail and by roughly how much).
PRESSURE_FLOOR_M = -50.0

#: What a candidate pipe's options mean (see the module docstring).
ACTIONS = ("size", "replace", "parallel")

# EPANET toolkit codes
_EN_DIAMETER, _EN_ROUGHNESS, _EN_INITSTATUS, _EN_FLOW, _EN_VELOCITY = (EN.DIAMETER, EN.ROUGHNESS, EN.INITSTATUS,
                                                                    EN.FLOW, EN.VELOCITY)
_EN_DEMAND, _EN_HEAD, _EN_PRESSURE = EN.DEMAND, EN.HEAD, EN.PRESSURE
_EN_TANKDIAM = EN.TANKDIAM
_EN_INITSETTING = EN.INITSETTING
_DAY_S = 24 * 3600
#: A tank's fall beyond its allowance smaller than this (m) is not a shortfall: a centimetre is below a level
#: gauge's resolution, and the construction would otherwise grow mains for millimetres of EPANET noise.
TANK_SLACK_M = 0.01


def cycle_drop(head: pd.Series, duration_s: int, *, start_s: int | None = None) -> float | None:
    """How far a tank falls short of coming back up, from its head (or level) series indexed by time (s).

    Full runs (`start_s` None): how far its daily high falls from the day before the last to the last day
    (m; negative when it rises); None for runs shorter than 48 h. A one-day search model (`start_s` = 0):
    how far the high of the second half of the run stays below the level at `start_s`. Highs, not the
    levels at two instants: a tank switched by level controls several times a day is at a different point
    of its on/off cycle at any two instants, while a tank that drains never gets back up.

    >>> h = pd.Series([3.0, 3.9, 3.1, 3.8, 2.0, 3.2, 1.9], index=[0, 12, 24, 36, 48, 60, 72]) * 1.0
    >>> h.index = h.index * 3600
    >>> round(cycle_drop(h, 72 * 3600), 2), round(cycle_drop(h.loc[:24 * 3600], 24 * 3600, start_s=0), 2)
    (0.6, -0.1)
    """
    end = int(duration_s)
    t = np.asarray(head.index, dtype=float)
    if start_s is not None:
        if start_s not in head.index or end <= start_s:
            return None
        last = head[(t > start_s + (end - start_s) / 2.0) & (t <= end)]
        return float(head.loc[start_s] - last.max()) if len(last) else None
    if end < 2 * _DAY_S:
        return None
    prev = head[(t >= end - 2 * _DAY_S) & (t <= end - _DAY_S)]
    last = head[(t > end - _DAY_S) & (t <= end)]
    if not len(prev) or not len(last):
        return None
    return float(prev.max() - last.max())


def dup_name(pipe: str) -> str:
    """Id of the duplicate laid beside `pipe` by a ``parallel`` design (EPANET ids ≤ 31 characters)."""
    return f"{pipe}~par"[-31:] if len(pipe) > 27 else f"{pipe}~par"


@dataclass
class DesignSpace:
    """Candidate pipes and their options.

    Attributes
    ----------
    pipes : list of str
        Candidate pipe ids, in model order.
    action : str
        One of :data:`ACTIONS`.
    table : DataFrame
        The candidate table (:func:`~watersupply.design.costs.check_candidates`).
    options : list of ndarray
        Per pipe, the table rows of its options in cost order (-1 = keep / lay nothing).
    lengths_m, old_diameter_mm, old_roughness_c : ndarray
        Of the existing pipes.
    """

    pipes: list[str]
    action: str
    table: pd.DataFrame
    options: list[np.ndarray]
    lengths_m: np.ndarray
    old_diameter_mm: np.ndarray
    old_roughness_c: np.ndarray
    extras: list[Extra] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._n = len(self.pipes)
        n, k = len(self.options), max((len(o) for o in self.options), default=1)
        d_tab = self.table["diameter_mm"].to_numpy(dtype=float)
        u_tab = self.table["unit_cost"].to_numpy(dtype=float)
        c_tab = self.table["roughness_c"].to_numpy(dtype=float)
        self._rows = np.full((n, k), -1, dtype=int)
        for i, o in enumerate(self.options):
            self._rows[i, :len(o)] = o
        has = self._rows >= 0
        safe = np.maximum(self._rows, 0)
        self._d = np.where(has, d_tab[safe], np.nan)
        self._unit = np.where(has, u_tab[safe], 0.0)
        c = c_tab[safe]
        self._c = np.where(has & np.isfinite(c), c, self.old_roughness_c[:, None])
        self._ar = np.arange(n)

    @property
    def n_var(self) -> int:
        """Decision variables: candidate pipes, then the extras (pumps, storage)."""
        return self._n + len(self.extras)

    @property
    def upper(self) -> np.ndarray:
        """Largest option position of each variable (pipes, then extras)."""
        return np.array([len(o) - 1 for o in self.options] + [len(e.costs) - 1 for e in self.extras], dtype=int)

    def _xp(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=int)[:self._n]

    def xe(self, x: np.ndarray) -> np.ndarray:
        """The extras' part of design `x`."""
        return np.asarray(x, dtype=int)[self._n:]

    def rows(self, x: np.ndarray) -> np.ndarray:
        """Table row chosen for each pipe (-1 = keep / nothing)."""
        return self._rows[self._ar, self._xp(x)]

    def pipe_costs(self, x: np.ndarray) -> np.ndarray:
        """Cost of what is laid on each candidate pipe."""
        return self._unit[self._ar, self._xp(x)] * self.lengths_m

    def extra_costs(self, x: np.ndarray) -> np.ndarray:
        """Cost of each extra's chosen option."""
        return np.array([float(e.costs[k]) for e, k in zip(self.extras, self.xe(x).tolist())])

    def option_cost(self, i: int, k: int) -> float:
        """Cost of option `k` of variable `i` (a pipe or an extra)."""
        if i < self._n:
            return float(self._unit[i, k] * self.lengths_m[i])
        return float(self.extras[i - self._n].costs[k])

    def cost(self, x: np.ndarray) -> float:
        return float(self.pipe_costs(x).sum() + self.extra_costs(x).sum())

    def diameters_mm(self, x: np.ndarray) -> np.ndarray:
        """Diameter laid on each pipe (NaN = keep / nothing)."""
        return self._d[self._ar, self._xp(x)]

    def roughness(self, x: np.ndarray) -> np.ndarray:
        """Hazen-Williams C of the pipe laid (the old pipe's C where the table gives none)."""
        return self._c[self._ar, self._xp(x)]


def _select(wn: wntr.network.WaterNetworkModel, pipes: str | list[str]) -> list[str]:
    all_pipes = list(wn.pipe_name_list)
    if isinstance(pipes, str):
        if pipes == "all":
            return all_pipes
        pipes = [p.strip() for p in pipes.split(",") if p.strip()]
    known = set(all_pipes)
    out: list[str] = []
    for p in pipes:
        p = str(p)
        if p not in known:
            raise NetworkDataError(f"candidate pipe {p!r} is not a pipe of the network; {closest(p, all_pipes)}")
        if p not in out:
            out.append(p)
    if not out:
        raise ConfigError("no candidate pipes: give 'all', a list of pipe ids or a zone")
    return out


def _curve_index(pr: Project, name: str) -> int:
    """1-based index of curve `name` in an open project."""
    import ctypes

    i = ctypes.c_int()
    code = pr.lib.EN_getcurveindex(pr.ph, name.encode(), ctypes.byref(i))
    if code:
        raise ConfigError(f"EPANET does not know curve {name!r} (error {code})")
    return int(i.value)


def _undominated(by_cost: np.ndarray, d: np.ndarray, c: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The table rows (in cost order) that no cheaper-or-equal row beats in both diameter and conveyance
    (C·D^2.63, Hazen-Williams): e.g. a ductile-iron DN300 at 980 ¥/m beside a PE dn400 (327 mm, C 145) at
    696 ¥/m is never worth choosing."""
    conv = c * d ** 2.63
    keep: list[int] = []
    for r in by_cost.tolist():
        if not any(cost[k] <= cost[r] and d[k] >= d[r] - 1e-9 and conv[k] >= conv[r] - 1e-12 for k in keep):
            keep.append(int(r))
    return np.array(keep, dtype=int)


def design_space(wn: wntr.network.WaterNetworkModel, table: pd.DataFrame, *, pipes: str | list[str] = "all",
                 action: str = "size", extras: list[Extra] | None = None) -> DesignSpace:
    """The options of each candidate pipe.

    Parameters
    ----------
    wn
        The model (not modified).
    table
        A checked candidate table.
    pipes
        ``"all"``, a comma-separated string or a list of pipe ids.
    action
        One of :data:`ACTIONS`.

    Raises
    ------
    ConfigError
        Unknown action, or a ``replace`` candidate already at least as large as the
        largest size in the table.

    Examples
    --------
    >>> from watersupply.design.costs import check_candidates
    >>> wn = wntr.network.WaterNetworkModel()
    >>> wn.add_reservoir("R", base_head=50.0); wn.add_junction("J", base_demand=0.01)
    >>> wn.add_pipe("P", "R", "J", length=100.0, diameter=0.1, roughness=130.0)
    >>> t = check_candidates(pd.DataFrame({"diameter_mm": [100, 150, 200], "unit_cost": [1, 2, 3]}))
    >>> [o.tolist() for o in design_space(wn, t, action="replace").options]
    [[-1, 1, 2]]
    """
    if action not in ACTIONS:
        raise ConfigError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    ids = _select(wn, pipes)
    d_tab = table["diameter_mm"].to_numpy()
    u_tab = table["unit_cost"].to_numpy(dtype=float)
    c_tab = table["roughness_c"].to_numpy(dtype=float)
    by_cost = np.argsort(u_tab, kind="stable")
    opts, lengths, d_old, c_old = [], [], [], []
    for p in ids:
        link = wn.get_link(p)
        d_mm = float(link.diameter) / MM_TO_M
        lengths.append(float(link.length))
        d_old.append(d_mm)
        c_old.append(float(link.roughness))
        rows = _undominated(by_cost, d_tab, np.where(np.isfinite(c_tab), c_tab, float(link.roughness)), u_tab)
        if action == "size":
            opts.append(rows)
        elif action == "replace":
            bigger = [int(r) for r in rows if d_tab[r] > d_mm + 1e-6]
            if not bigger:
                raise ConfigError(f"pipe {p!r} ({d_mm:g} mm) is already as large as the largest candidate "
                                  f"({d_tab.max():g} mm); drop it from the candidates or add larger sizes")
            opts.append(np.array([-1] + bigger, dtype=int))
        else:
            opts.append(np.concatenate([[-1], rows]).astype(int))
    return DesignSpace(pipes=ids, action=action, table=table, options=opts, lengths_m=np.array(lengths),
                       old_diameter_mm=np.array(d_old), old_roughness_c=np.array(c_old), extras=list(extras or []))


@dataclass
class Evaluation:
    """One design's cost and hydraulic check.

    Attributes
    ----------
    cost : float
    min_pressure_m : ndarray
        Per checked node, the lowest pressure over the report times.
    deficit_m : ndarray
        Per checked node, how far that minimum is below the required head (≥ 0).
    velocity_excess_ms : float
        Σ over candidate pipes of the excess of their peak velocity over the limit.
    tank_shortfall_m : float
        Σ over tanks of how far their level fell short of cycling (see :class:`Evaluator`).
    resilience : float
        Todini's resilience index, lowest over the report times (NaN unless asked).
    unbalanced : int
        Time steps EPANET did not balance.
    """

    cost: float
    min_pressure_m: np.ndarray
    deficit_m: np.ndarray
    velocity_excess_ms: float
    tank_shortfall_m: float
    resilience: float = float("nan")
    unbalanced: int = 0
    error: str = ""

    @property
    def violation(self) -> float:
        """Total constraint violation (0 = feasible): pressure deficit (m) + velocity excess + tank shortfall."""
        return float(self.deficit_m.sum() + self.velocity_excess_ms + self.tank_shortfall_m) + (1e6 if self.error
                                                                                              else 0.0)

    @property
    def feasible(self) -> bool:
        return self.violation <= 1e-9


@dataclass
class Evaluator:
    """A design problem opened in the EPANET toolkit (stateful: keeps the project open).

    Parameters
    ----------
    wn
        The model to design (not modified): a copy is written to a scratch INP in
        SI units (LPS) and opened once.
    space
        The candidate pipes and options (:func:`design_space`).
    required_m
        Required pressure (m) at each checked node, indexed by node id.
    max_velocity_ms
        Velocity limit in the candidate pipes (and their duplicates); None for none.
    tank_tolerance
        Tanks must cycle: the highest level of the run's last day may not be lower
        than the highest level of the day before by more than this share of the
        tank's operating range (and not more than it already is in
        `tank_baseline_drop_m`); only for runs ≥ 48 h (:func:`cycle_drop`). Daily
        highs, not the levels at two instants: a tank switched by level controls
        several times a day is at a different point of its on/off cycle at 24 h
        and at the end, while a tank that drains never gets back to its high.
    resilience
        Also compute Todini's resilience index (for a cost-resilience front).
    engine
        ``"epanet2.2"`` (WNTR's library) or ``"epanet2.3"`` (owa-epanet's).
    cycle_from_s
        Time (s) from which the tanks must cycle, the high of the rest of the run's
        second half being compared with the level then: 0 for a one-day surrogate run
        (each tank must get back up to where it began). Default (None): the daily highs above for runs ≥ 48 h, no
        check for shorter runs.
    max_evaluations
        Budget of EPANET solves after which :meth:`expired` is true (None: no limit).
    """

    wn: wntr.network.WaterNetworkModel
    space: DesignSpace
    required_m: pd.Series
    max_velocity_ms: float | None = None
    tank_tolerance: float = 0.10
    tank_baseline_drop_m: dict[str, float] = field(default_factory=dict)
    resilience: bool = False
    engine: str = "epanet2.2"
    evaluations: int = 0
    cache: dict[tuple[int, ...], Evaluation] = field(default_factory=dict)
    deadline: float | None = None
    cycle_from_s: int | None = None
    max_evaluations: int | None = None

    def expired(self) -> bool:
        """Whether the search's budget is spent: the time (``deadline``, a :func:`time.perf_counter` value) or the
        number of EPANET solves (``max_evaluations``, deterministic)."""
        return ((self.deadline is not None and time.perf_counter() > self.deadline)
                or (self.max_evaluations is not None and self.evaluations >= self.max_evaluations))

    def __post_init__(self) -> None:
        self._last: np.ndarray | None = None
        wn = copy.deepcopy(self.wn)
        missing = [n for n in self.required_m.index if n not in wn.node_name_list]
        if missing:
            raise NetworkDataError(f"checked node {missing[0]!r} is not in the model; "
                                   f"{closest(missing[0], wn.node_name_list)}")
        if self.space.action == "parallel":
            for p, d in zip(self.space.pipes, self.space.old_diameter_mm):
                link = wn.get_link(p)
                wn.add_pipe(dup_name(p), link.start_node_name, link.end_node_name, length=link.length,
                            diameter=d * MM_TO_M, roughness=link.roughness, minor_loss=0.0,
                            initial_status="CLOSED")
        # each pump option as its own curve in the file, switched by index (EN_setcurvevalue on a multi-point
        # curve corrupted EPANET 2.2's heap on the hillside model)
        option_curves: dict[int, list[str]] = {}
        for j, e in enumerate(self.space.extras):
            if e.kind != "pump":
                continue
            pts = wn.get_curve(wn.get_link(e.element).pump_curve_name).points
            option_curves[j] = []
            for k, f in enumerate(np.asarray(e.values, dtype=float).tolist()):
                name = f"WSU{j}_{k}"
                wn.add_curve(name, "HEAD", [(float(q) * f, float(h)) for q, h in pts])
                option_curves[j].append(name)
        self._tmp = tempfile.TemporaryDirectory(prefix="ws_design_")
        inp = Path(self._tmp.name) / "design.inp"
        wntr.network.write_inpfile(wn, str(inp), units="LPS", version=2.2)
        with quiet_stdout():
            self.project = Project(str(inp), engine=self.engine)
        pr = self.project
        names = self.space.pipes if self.space.action != "parallel" else [dup_name(p) for p in self.space.pipes]
        self._links = np.array([pr.link_index(n) for n in names], dtype=int)
        self._nodes = np.array([pr.node_index(str(n)) for n in self.required_m.index], dtype=int)
        self._req = self.required_m.to_numpy(dtype=float)
        self._extra_idx: list = []
        for e in self.space.extras:
            if e.kind == "storage":
                self._extra_idx.append(pr.node_index(e.element))
            elif e.kind == "plant":
                # production: the FCV's initial setting and the controls that resume production, scaled
                li = pr.link_index(e.element)
                ctrls = [c for c in pr._control_table().get(li, ()) if c[3] > 0]
                self._extra_idx.append((li, ctrls, pr.get_link(li, _EN_INITSETTING)))
            else:
                li = pr.link_index(e.element)
                curves = [_curve_index(pr, name) for name in option_curves[len(self._extra_idx)]]
                others = [p for p in wn.pump_name_list if p != e.element
                          and wn.get_link(p).pump_curve_name == wn.get_link(e.element).pump_curve_name]
                if others:
                    raise ConfigError(f"pump {e.element!r} shares its curve with {others[0]!r}: give each "
                                      "upgradable pump its own curve")
                self._extra_idx.append((li, curves))
        self._tanks = [(t, pr.node_index(t), float(wn.get_node(t).max_level - wn.get_node(t).min_level))
                       for t in wn.tank_name_list]
        self._duration = int(wn.options.time.duration)
        self._report = int(wn.options.time.report_timestep or 3600)
        self._rstart = int(wn.options.time.report_start or 0)
        self._cyc = (int(self.cycle_from_s) if self.cycle_from_s is not None
                     else (24 * 3600 if self._duration >= 48 * 3600 else None))
        if self.resilience:
            self._junc = np.array([pr.node_index(j) for j in wn.junction_name_list], dtype=int)
            self._junc_req = np.array([self.required_m.get(j, 0.0) + wn.get_node(j).elevation
                                       for j in wn.junction_name_list])
            self._res = np.array([pr.node_index(r) for r in wn.reservoir_name_list], dtype=int)
            self._pumps = np.array([pr.link_index(p) for p in wn.pump_name_list], dtype=int)
            self._pump_ends = [(pr.node_index(wn.get_link(p).start_node_name),
                                pr.node_index(wn.get_link(p).end_node_name)) for p in wn.pump_name_list]

    def close(self) -> None:
        """Close the EPANET project and remove its scratch folder."""
        if getattr(self, "project", None) is not None:
            self.project.close()
            self.project = None
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def _set(self, x: np.ndarray) -> None:
        pr, sp = self.project, self.space
        d = sp.diameters_mm(x)
        c = sp.roughness(x)
        last = self._last
        self._last = x.copy()
        if sp.extras:
            self._set_extras(x, last)
        for k, i in enumerate(self._links.tolist()):
            if last is not None and last[k] == x[k]:
                continue
            if np.isnan(d[k]):  # keep (replace) or lay nothing (parallel)
                if sp.action == "parallel":
                    pr.set_link(i, _EN_INITSTATUS, 0.0)
                else:
                    pr.set_link(i, _EN_DIAMETER, float(sp.old_diameter_mm[k]))
                    pr.set_link(i, _EN_ROUGHNESS, float(sp.old_roughness_c[k]))
                continue
            pr.set_link(i, _EN_DIAMETER, float(d[k]))
            pr.set_link(i, _EN_ROUGHNESS, float(c[k]))
            if sp.action == "parallel":
                pr.set_link(i, _EN_INITSTATUS, 1.0)

    def _set_extras(self, x: np.ndarray, last: np.ndarray | None) -> None:
        pr, sp = self.project, self.space
        xe = sp.xe(x)
        le = sp.xe(last) if last is not None else None
        for j, (e, k) in enumerate(zip(sp.extras, xe.tolist())):
            if le is not None and le[j] == k:
                continue
            if e.kind == "storage":
                pr.set_node(self._extra_idx[j], _EN_TANKDIAM, tank_diameter(e, k))
                continue
            if e.kind == "plant":
                li, ctrls, init = self._extra_idx[j]
                f = float(e.values[k])
                if init > 0:
                    pr.set_link(li, _EN_INITSETTING, init * f)
                for c, ty, cl, st, ni, lv in ctrls:
                    pr._check(pr.lib.EN_setcontrol(pr.ph, c, ty, cl, st * f, ni, lv),
                              f"set the production of {e.element!r} (control {c})")
                continue
            li, curves = self._extra_idx[j]
            # the standby run as 2nd duty = the duty curve ×2 in flow (identical pumps)
            pr.set_link(li, EN_PUMP_HCURVE, float(curves[k]))

    def _link_values(self, prop: int) -> np.ndarray:
        pr = self.project
        return np.array([pr.get_link(i, prop) for i in self._links.tolist()], dtype=float)

    def _todini(self) -> float:
        pr = self.project
        q = pr.node_values(_EN_DEMAND, self._junc)
        h = pr.node_values(_EN_HEAD, self._junc)
        num = float(np.sum(q * (h - self._junc_req)))
        qr = -pr.node_values(_EN_DEMAND, self._res) if len(self._res) else np.zeros(0)
        hr = pr.node_values(_EN_HEAD, self._res) if len(self._res) else np.zeros(0)
        p_in = float(np.sum(qr * hr))
        for i, (a, b) in zip(self._pumps.tolist(), self._pump_ends):
            flow = pr.get_link(i, _EN_FLOW)
            ha = pr.node_values(_EN_HEAD, np.array([a, b]))
            p_in += max(flow, 0.0) * float(ha[1] - ha[0])
        den = p_in - float(np.sum(q * self._junc_req))
        return num / den if den > 0 else float("nan")

    def evaluate(self, x: np.ndarray) -> Evaluation:
        """Cost and hydraulic check of design `x` (option positions); cached by design."""
        key = tuple(int(v) for v in x)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        xa = np.asarray(key, dtype=int)
        pr = self.project
        self._set(xa)
        self.evaluations += 1
        min_p = np.full(len(self._nodes), np.inf)
        vmax = np.zeros(len(self._links))
        t24: dict[int, float] = {}
        tend: dict[int, float] = {}
        n_t = len(self._tanks)
        high_prev, high_last = np.full(n_t, -np.inf), np.full(n_t, -np.inf)
        res_min = np.inf
        unbalanced = 0
        error = ""
        pr.init()
        while True:
            code, t = pr.run()
            if code >= 100:
                error = f"EPANET error {code} at {t / 3600:g} h"
                break
            if code in (1, 2):
                unbalanced += 1
            if t >= self._rstart and (t - self._rstart) % self._report == 0:
                p = pr.node_values(_EN_PRESSURE, self._nodes)
                np.minimum(min_p, np.maximum(p, PRESSURE_FLOOR_M), out=min_p)
                if self.max_velocity_ms is not None:
                    np.maximum(vmax, np.abs(self._link_values(_EN_VELOCITY)), out=vmax)
                if self._tanks and self._cyc is not None:
                    heads = pr.node_values(_EN_HEAD, np.array([i for _, i, _ in self._tanks]))
                    if t == self._cyc:
                        t24 = dict(enumerate(heads))
                    tend = dict(enumerate(heads))
                    if self.cycle_from_s is None:  # daily highs of the last two days
                        if self._duration - _DAY_S * 2 <= t <= self._duration - _DAY_S:
                            np.maximum(high_prev, heads, out=high_prev)
                        elif t > self._duration - _DAY_S:
                            np.maximum(high_last, heads, out=high_last)
                    elif t > self._cyc + (self._duration - self._cyc) / 2.0:  # the high of the second half
                        np.maximum(high_last, heads, out=high_last)
                if self.resilience:
                    res_min = min(res_min, self._todini())
            code, step = pr.advance()
            if code >= 100:
                error = f"EPANET error {code} after {t / 3600:g} h"
                break
            if step <= 0:
                break
        if error:
            min_p = np.where(np.isfinite(min_p), min_p, PRESSURE_FLOOR_M)
        deficit = np.maximum(self._req - min_p, 0.0)
        v_ex = 0.0
        if self.max_velocity_ms is not None:  # only in the pipes laid (a kept pipe is not this design's work)
            laid = self.space.rows(xa) >= 0
            v_ex = float((np.maximum(vmax - self.max_velocity_ms, 0.0) * laid).sum())
        short = 0.0
        if t24 and tend:
            daily = self.cycle_from_s is None and np.isfinite(high_prev).all() and np.isfinite(high_last).all()
            half = self.cycle_from_s is not None and np.isfinite(high_last).all()
            for k, (name, _i, rng) in enumerate(self._tanks):
                allowed = max(self.tank_tolerance * rng, self.tank_baseline_drop_m.get(name, 0.0))
                drop = ((high_prev[k] - high_last[k]) if daily else (t24[k] - high_last[k]) if half
                        else (t24[k] - tend[k]))
                short += max(0.0, drop - allowed - TANK_SLACK_M)
        ev = Evaluation(cost=self.space.cost(xa), min_pressure_m=min_p, deficit_m=deficit,
                        velocity_excess_ms=v_ex, tank_shortfall_m=short,
                        resilience=float(res_min) if self.resilience else float("nan"),
                        unbalanced=unbalanced, error=error)
        self.cache[key] = ev
        return ev

    def binding(self, x: np.ndarray) -> pd.DataFrame:
        """The checked nodes below their required head in design `x`, worst first."""
        ev = self.evaluate(x)
        df = pd.DataFrame({"required_m": self._req, "min_pressure_m": ev.min_pressure_m,
                           "deficit_m": ev.deficit_m}, index=self.required_m.index.astype(str))
        df.index.name = "node"
        return df[df["deficit_m"] > 1e-9].sort_values(["deficit_m"], ascending=False, kind="stable")

