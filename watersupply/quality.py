"""Water quality at periodic steady state: chlorine and water age over a settled daily cycle.

EPANET's quality results start from a guess (the initial chlorine and age in
every pipe and tank) and need days to forget it: a 72 h run of the Tonghui
model still carries its initial 0.5 mg/L at the village ends. This module
removes that dependence.

:func:`steady_quality` takes the hydraulics EPANET saved for a run (its
hydraulics file) and extends them periodically: the last 24 h of the run are
repeated, day after day, in a hydraulics file EPANET's quality engine reads
as if it had solved them (one quality-only run, no restarts, so the water in
every pipe is carried over exactly). Every simulated hour the last 24 hours
are compared with the 24 before them; the run stops at the first hour where
every demand node differs by less than ``tol_chlorine_mgL`` / ``tol_age_h``
over that whole day, or at ``max_days``. Nodes that never settle (water age growing in a dead
end with no flow) are named, not reported as a number that depends on the run
length.

:func:`warm_quality` runs the quality of a run's own hydraulics (a scenario)
from a given initial state (the baseline's settled cycle at the run's first
hour) instead of EPANET's initial values.

Both run EPANET's quality engine on hydraulics solved once by WNTR's EPANET 2.2:
the quality-only runs use owa-epanet's EPANET 2.3 library (:data:`QUALITY_ENGINE`,
through :class:`watersupply.engine.Project`), whose quality routing is about three
times as fast on the same hydraulics file (WNTR's 2.2 library when owa-epanet is
missing).
:func:`run_side_by_side` runs the chlorine and the age runs at once, in two
processes.

Where the time goes (Tonghui, 72 h run): the settling is limited by transport,
not by tank mixing. The slowest water (village V1, ~150 h old) crosses pipes
that hold 12, 38 and 82 h of its flow; EPANET starts every pipe as one segment
at the quality of its downstream node, so whatever the initial values, the
initial contents of those pipes take their full travel time to leave the
network: about 7–8 days for age and chlorine alike, then 1–2 confirming days.
A quality day costs about as much as a hydraulic day (segments are created
every quality step in every pipe at the merge tolerances the settling needs),
so the steady state costs ~9–10 quality days per parameter, run side by side; EPANET 2.3
routes a quality day in about a third of 2.2's time (the settled cycles agree within
0.0003 mg/L and 0.005 h on Tonghui).
A better initial state cannot shorten this (pipe contents are not settable):
even the settled values themselves as initial values (every node and tank) only
move the stop from hour 228 to 203 for age and from 214 to 182 for chlorine;
nor can a longer quality step (at 600 s the settled figures move by up to
0.012 mg/L and 0.95 h), a coarser merge tolerance (age at 0.03 h: 0.08 h off),
or EN_stepQ stepping (its steps straddle hydraulic events: 0.03 mg/L and 1.6 h off).
Re-running only the unsettled part is limited by the same travel time: that
part (the dead-end branches, ~13–32 % of the segments) must itself start from
scratch, and its boundary would need the upstream quality at every quality step,
which EN_nextQ does not stop at.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ._errors import ConfigError, HydraulicError
from .engine import Project, en_message, engine_library, quiet_stdout

__all__ = ["QualityInfo", "steady_quality", "warm_quality", "run_side_by_side", "write_periodic_hyd", "TOL_CHLORINE_MGL", "TOL_AGE_H",
           "MAX_DAYS"]

log = logging.getLogger(__name__)

#: Settled when successive days differ by less than this at every demand node (mg/L, h).
TOL_CHLORINE_MGL = 0.001
TOL_AGE_H = 0.1
#: Longest extension of the quality run (days after the run's own duration).
MAX_DAYS = 21

_DAY = 86_400
_HOUR = 3_600
_EN_INITQUAL = 4
_EN_QUALITY = 12
_EN_DURATION = 0
_EN_TOLERANCE = 2
_EN_PATTERNSTART = 4
_EN_TANKLEVEL = 8
_EN_MINLEVEL = 20
_EN_MAXLEVEL = 21
_EN_QUALTYPE = {"CHEMICAL": 1, "AGE": 2}
#: Engine of the quality-only runs: owa-epanet's EPANET 2.3 library. Its quality routing is about three times
#: as fast as WNTR's 2.2 build on the same hydraulics file, and the settled Tonghui cycle agrees with 2.2's
#: within 0.0003 mg/L and 0.005 h (benchmarks/quality.py). The hydraulics stay with WNTR's EPANET 2.2.
QUALITY_ENGINE = "epanet2.3"
_ENGINE_FOUND: str | None = None
_HEADER_INTS = 8
_EOFMARK = b"\x1a"


@dataclass
class QualityInfo:
    """How the quality figures of a run were obtained, and how far they can be trusted.

    Attributes
    ----------
    method : str
        ``"periodic steady state"`` (the run's last day repeated until settled),
        ``"warm start"`` (a scenario started from the baseline's settled cycle),
        or ``"transient"`` (EPANET's initial values; a run shorter than a day).
    days : dict
        Days of periodic extension simulated, per parameter (``chlorine``, ``age``).
    horizon_h : dict
        Hours of the repeated day simulated when the run stopped, per parameter
        (the settling is checked every hour over the last 24 h).
    residual : dict
        Largest day-to-day difference at settled demand nodes on the last day
        (mg/L for chlorine, h for age).
    unsettled : dict
        Demand nodes that had not settled at the end, per parameter.
    growing_age : list of str
        Demand nodes whose water age still grew by most of a day per day (no flow
        renews it): their age is "not settled".
    chlorine_assessed : bool
        False when the model has no chlorine source or no decay coefficient.
    not_assessed_reason : str
        Why chlorine is not assessed (empty when it is).
    notes : list of str
        Caveats (e.g. reservoir volume drift over the repeated day).
    seconds : float
        Wall time of the quality runs.
    """

    method: str = "transient"
    days: dict[str, int] = field(default_factory=dict)
    horizon_h: dict[str, int] = field(default_factory=dict)
    residual: dict[str, float] = field(default_factory=dict)
    unsettled: dict[str, list[str]] = field(default_factory=dict)
    growing_age: list[str] = field(default_factory=list)
    chlorine_assessed: bool = True
    not_assessed_reason: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def settled(self, parameter: str) -> bool:
        """True when every demand node settled for `parameter` (``"chlorine"`` or ``"age"``)."""
        return self.method in ("periodic steady state", "warm start") and not self.unsettled.get(parameter)

    def summary(self) -> str:
        """One line for reports and warnings."""
        if self.method == "periodic steady state":
            parts = []
            for p, unit, tol in (("chlorine", "mg/L", TOL_CHLORINE_MGL), ("age", "h", TOL_AGE_H)):
                if p not in self.days:
                    continue
                bad = self.unsettled.get(p, [])
                hz = f" (horizon {self.horizon_h[p]} h)" if p in self.horizon_h else ""
                parts.append(f"{p} settled after {self.days[p]} extra day(s){hz}, residual "
                             f"{self.residual.get(p, float('nan')):.4g} {unit} (tolerance {tol:g})"
                             + (f", {len(bad)} demand node(s) not settled: {_ids(bad)}" if bad else ""))
            return "water quality at periodic steady state (the run's last day repeated): " + "; ".join(parts)
        if self.method == "warm start":
            return ("water quality started from the baseline's settled daily cycle (pipe contents restart from "
                    "their downstream node)")
        return "water quality from EPANET's initial values (run shorter than a day): not at steady state"


def _ids(ids: list[str], n: int = 8) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


# ----------------------------------------------------------------------------- hydraulics file

def _read_hyd(path: str | os.PathLike) -> tuple[np.ndarray, list[tuple[int, bytes, int]], int]:
    """Header ints and records (time, body, next step) of an EPANET 2.2 hydraulics file."""
    raw = Path(path).read_bytes()
    header = np.frombuffer(raw[:4 * _HEADER_INTS], dtype="<i4").copy()
    nn, nl = int(header[2]), int(header[3])
    body = 4 * (2 * nn + 3 * nl)
    rec = 4 + body + 4
    pos, out = 4 * _HEADER_INTS, []
    while pos + rec <= len(raw):
        t = struct.unpack_from("<i", raw, pos)[0]
        step = struct.unpack_from("<i", raw, pos + 4 + body)[0]
        out.append((t, raw[pos + 4:pos + 4 + body], step))
        pos += rec
        if step == 0:
            break
    return header, out, nn


def _tank_volume_drift(records: list[tuple[int, bytes, int]], nn: int, tank_idx: list[int],
                       area: list[float], vol: list[float]) -> dict[int, float]:
    """Net volume gained over the repeated day per tank (share of its full volume)."""
    out = {}
    for i, _a, v in zip(tank_idx, area, vol):
        net = 0.0
        for _t, body, step in records:
            d = struct.unpack_from("<f", body, 4 * (i - 1))[0]  # tank "demand" = net inflow (m³/s)
            net += d * step
        out[i] = net / v if v > 0 else 0.0
    return out


def _tank_links(inp: str, workdir: str) -> dict[int, list[tuple[int, int]]]:
    """Tank (not reservoir) node index → [(link index, +1 if its positive flow enters the tank, else −1)], 0-based."""
    pr = _Project(inp, workdir, tag="q_links")
    try:
        n1, n2 = ctypes.c_int(), ctypes.c_int()
        out: dict[int, list[tuple[int, int]]] = {}
        tanks = {i for i in range(1, pr.n_nodes + 1) if pr.node_type(i) == 2}
        for k in range(1, pr.pr.n_links + 1):
            pr.check(pr.lib.EN_getlinknodes(pr.ph, k, ctypes.byref(n1), ctypes.byref(n2)), f"link {k}")
            if n2.value in tanks:
                out.setdefault(n2.value - 1, []).append((k - 1, 1))
            if n1.value in tanks:
                out.setdefault(n1.value - 1, []).append((k - 1, -1))
    finally:
        pr.pr.close()
    return out


def _close_tank_balance(day: list[tuple[int, bytes, int]], *, nn: int, nl: int, end_s: int,
                        tank_links: dict[int, list[tuple[int, int]]]) -> tuple[list[tuple[int, bytes, int]], float]:
    """The day's records with each tank's inflow scaled so that it equals the tank's outflow over the day.

    Returns the records and the largest scaling applied (|factor − 1|). A tank
    whose links do not add up to its net inflow in the file is left as it is.
    """
    dem = np.array([np.frombuffer(body, dtype="<f4", count=nn).astype(float) for _t, body, _s in day])
    flow = np.array([np.frombuffer(body, dtype="<f4", count=nl, offset=8 * nn).astype(float)
                     for _t, body, _s in day])
    dur = np.array([min(step, end_s - t) for t, _b, step in day], dtype=float)
    worst = 0.0
    for node, links in tank_links.items():
        idx = np.array([k for k, _ in links])
        sign = np.array([sg for _, sg in links], dtype=float)
        into = flow[:, idx] * sign  # > 0: entering the tank
        if not np.allclose(into.sum(axis=1), dem[:, node], atol=1e-4, rtol=1e-3):
            log.warning("tank node %d: its links do not add up to its net inflow in the hydraulics file; its "
                        "daily balance is left open", node + 1)
            continue
        vin = float((np.clip(into, 0, None) * dur[:, None]).sum())
        vout = float((np.clip(-into, 0, None) * dur[:, None]).sum())
        if vin <= 0 or vout <= 0:
            continue
        a = vout / vin
        worst = max(worst, abs(a - 1.0))
        scaled = np.where(into > 0, into * a, into)
        flow[:, idx] = scaled * sign
        dem[:, node] = scaled.sum(axis=1)
    out = []
    for r, (t, body, step) in enumerate(day):
        out.append((t, dem[r].astype("<f4").tobytes() + body[4 * nn:8 * nn] + flow[r].astype("<f4").tobytes()
                    + body[8 * nn + 4 * nl:], step))
    return out, worst


def write_periodic_hyd(src: str, dst: str, *, duration_s: int, days: int,
                       inp: str | None = None) -> list[tuple[int, bytes, int]]:
    """Write `dst`: the run's last day (re-timed to start at 0) repeated `days` + 1 times.

    `src` is the hydraulics file EPANET saved for a run of `duration_s` (at
    least a day); the records of its last day are returned. With `inp` (the
    run's INP file), each tank's inflow over the day is scaled to equal its
    outflow so that tank volumes repeat exactly: the quality engine carries a
    tank's volume forward from its link flows, and a day that leaves a tank
    0.5 % fuller than it began grows the tank's water a little older every
    day, a drift the day-to-day check cannot tell from settling (0.0007 mg/L
    and 0.05 h a day on the test network: 0.015 mg/L and 1.1 h off after 21
    days). The run keeps the imbalance small (``simulation.PERIODIC_DRIFT_MAX``).
    """
    header, recs, nn = _read_hyd(src)
    if not recs or recs[-1][0] != duration_s:
        raise HydraulicError(f"the hydraulics file ends at {recs[-1][0] if recs else 0} s, not at the run's "
                             f"duration {duration_s} s: the solve stopped part-way")
    start = duration_s - _DAY
    day = [r for r in recs if start <= r[0] < duration_s]
    if not day or day[0][0] != start:
        raise HydraulicError(f"no hydraulic record at {start} s (the start of the run's last day)")
    if inp is not None:
        day, _ = _close_tank_balance(day, nn=nn, nl=int(header[3]), end_s=duration_s,
                                     tank_links=_tank_links(inp, str(Path(dst).parent)))
    header[7] = (days + 1) * _DAY
    with open(dst, "wb") as fh:
        fh.write(header.astype("<i4").tobytes())
        for k in range(days + 1):
            for t, body, step in day:
                fh.write(struct.pack("<i", t - start + k * _DAY) + body + struct.pack("<i", step))
        fh.write(struct.pack("<i", (days + 1) * _DAY) + day[0][1] + struct.pack("<i", 0) + _EOFMARK)
    return day


# ----------------------------------------------------------------------------- toolkit

def quality_engine() -> str:
    """The EPANET engine the quality-only runs use: :data:`QUALITY_ENGINE`, or WNTR's 2.2 library without owa-epanet.

    >>> quality_engine() in ("epanet2.3", "epanet2.2")
    True
    """
    global _ENGINE_FOUND
    if _ENGINE_FOUND is None:
        try:
            engine_library(QUALITY_ENGINE)
            _ENGINE_FOUND = QUALITY_ENGINE
        except ConfigError as exc:
            log.warning("quality runs fall back to WNTR's EPANET 2.2 (about 3 times slower): %s", exc)
            _ENGINE_FOUND = "epanet2.2"
    return _ENGINE_FOUND


class _Project:
    """An EPANET project opened from an INP file for quality-only runs (:class:`engine.Project`, no hydraulics)."""

    def __init__(self, inp: str, workdir: str, *, tag: str = "q") -> None:
        with quiet_stdout():
            self.pr = Project(inp, engine=quality_engine(), hydraulics=False)
        self.lib, self.ph = self.pr.lib, self.pr.ph
        self.n_nodes = self.pr.n_nodes
        self.names = [self.pr.node_name(i) for i in range(1, self.n_nodes + 1)]
        self._idx = np.arange(1, self.n_nodes + 1)

    def check(self, code: int, what: str) -> None:
        if code >= 100:
            raise HydraulicError(f"EPANET quality run failed at {what}: error {code} ({en_message(code)})")

    def node_type(self, index: int) -> int:
        """0 junction, 1 reservoir, 2 tank (1-based `index`)."""
        return self.pr.node_type(int(index))

    def values(self) -> np.ndarray:
        return self.pr.node_values(_EN_QUALITY, self._idx)

    def close(self) -> None:
        with quiet_stdout():
            try:
                self.lib.EN_closeQ(self.ph)
            finally:
                self.pr.close()


def _start(inp: str, hyd: str, workdir: str, *, parameter: str, duration_s: int,
           initial: dict[str, float] | None, initial_default: float | None,
           shift_s: int = 0, tank_levels: dict[str, float] | None = None, ctol: float | None = None) -> _Project:
    pr = _Project(inp, workdir, tag=f"q_{parameter.lower()}")
    lib, ph = pr.lib, pr.ph
    pr.check(lib.EN_settimeparam(ph, _EN_DURATION, ctypes.c_long(duration_s)), "setting the duration")
    if shift_s:
        # the quality run starts `shift_s` into the run: keep source patterns on the clock
        v = ctypes.c_long()
        pr.check(lib.EN_gettimeparam(ph, _EN_PATTERNSTART, ctypes.byref(v)), "reading the pattern start")
        pr.check(lib.EN_settimeparam(ph, _EN_PATTERNSTART, ctypes.c_long(v.value + shift_s)), "shifting patterns")
    for name, level in (tank_levels or {}).items():
        i = pr.names.index(name) + 1
        lo, hi = ctypes.c_double(), ctypes.c_double()
        lib.EN_getnodevalue(ph, i, _EN_MINLEVEL, ctypes.byref(lo))
        lib.EN_getnodevalue(ph, i, _EN_MAXLEVEL, ctypes.byref(hi))
        lev = min(max(float(level), lo.value), hi.value)
        pr.check(lib.EN_setnodevalue(ph, i, _EN_TANKLEVEL, ctypes.c_double(lev)), f"tank {name} level")
    if parameter == "AGE":
        pr.check(lib.EN_setqualtype(ph, _EN_QUALTYPE["AGE"], b"", b"", b""), "setting water age")
    if ctol is not None:
        # EPANET merges pipe segments closer than this: it must sit well below the settling tolerance
        pr.check(lib.EN_setoption(ph, _EN_TOLERANCE, ctypes.c_double(ctol)), "setting the quality tolerance")
    types = [pr.node_type(i) for i in range(1, pr.n_nodes + 1)]  # 0 junction, 1 reservoir, 2 tank
    if initial is not None or initial_default is not None or parameter == "AGE":
        for i, (name, kind) in enumerate(zip(pr.names, types), start=1):
            if kind == 1:
                if parameter != "AGE":
                    continue  # a source keeps its own chlorine
                val = 0.0     # water leaves a source with age 0
            else:
                val = initial.get(name) if initial is not None else None
                if val is None:
                    val = initial_default
            if val is None or not np.isfinite(val):
                continue
            pr.check(lib.EN_setnodevalue(ph, i, _EN_INITQUAL, ctypes.c_double(float(val))), f"node {name}")
    pr.check(lib.EN_usehydfile(ph, hyd.encode("latin-1")), "reading the hydraulics file")
    pr.check(lib.EN_openQ(ph), "opening the quality solver")
    pr.check(lib.EN_initQ(ph, 0), "initialising quality")
    pr.types = types  # type: ignore[attr-defined]
    return pr


def steady_quality(inp: str, hyd: str, workdir: str, *, parameter: str, duration_s: int, demand_nodes: list[str],
                   tank_levels: dict[str, float] | None = None, initial_default: float | None = None,
                   initial: dict[str, float] | None = None, tol: float | None = None,
                   max_days: int = MAX_DAYS, periodic_hyd: str | None = None,
                   stop: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Quality at periodic steady state over the run's last day.

    Parameters
    ----------
    inp, hyd
        The run's INP file and the hydraulics file EPANET saved for it.
    workdir
        Folder for scratch files.
    parameter
        ``"CHEMICAL"`` or ``"AGE"``.
    duration_s
        The run's duration (s); at least one day, whole hours.
    demand_nodes
        Nodes whose settling decides when to stop.
    tank_levels
        Reservoir (tank) levels (m) at the start of the run's last day; the
        quality engine tracks tank volumes from there.
    initial_default
        Initial quality at junctions and tanks (mg/L or h); the INP's when None.
    initial
        Initial quality by node (overrides `initial_default`): a guess that only
        shortens the settling (the settled cycle does not depend on it).
    tol
        Settling tolerance (default :data:`TOL_CHLORINE_MGL` or :data:`TOL_AGE_H`).
    max_days
        Most days simulated after the first pass over the last day.
    periodic_hyd
        The periodic hydraulics file already written by :func:`write_periodic_hyd`
        for these `hyd`, `duration_s` and `max_days` (chlorine and age share one);
        written here when None.
    stop
        Stop once settled; False runs all `max_days` (a brute-force reference
        for checks), still reporting the last day's residual.

    Returns
    -------
    (cycle, info)
        ``cycle``: 24 hourly rows (hour of the settled day, 0 = the run's hour
        ``duration - 24``) × every node; ``info``: ``days`` (repeats simulated
        after the first), ``residual`` (largest day-to-day change at settled
        demand nodes), ``unsettled`` and ``growing`` (demand nodes).
    """
    if duration_s < _DAY or duration_s % _HOUR:
        raise ValueError(f"steady_quality needs a run of whole hours of at least one day, got {duration_s} s")
    tol = tol if tol is not None else (TOL_AGE_H if parameter == "AGE" else TOL_CHLORINE_MGL)
    ext = periodic_hyd
    if ext is None:
        ext = str(Path(workdir) / f"periodic_{parameter.lower()}.hyd")
        write_periodic_hyd(hyd, ext, duration_s=duration_s, days=max_days, inp=inp)
    pr = _start(inp, ext, workdir, parameter=parameter, duration_s=(max_days + 1) * _DAY, initial=initial,
                initial_default=initial_default, shift_s=duration_s - _DAY, tank_levels=tank_levels,
                ctol=tol / 10.0 if parameter == "AGE" else tol)
    lib, ph = pr.lib, pr.ph
    pos = {n: i for i, n in enumerate(pr.names)}
    dn = np.array([pos[n] for n in demand_nodes if n in pos], dtype=int)
    dn_names = [pr.names[i] for i in dn]
    days_done, resid, growing, unsettled = 0, float("nan"), [], list(dn_names)
    worst_hist: list[float] = []
    # rings by hour of day (row = run hour mod 24 = cycle hour): the last 24 hourly values of every node, and
    # each demand node's change from the same hour the day before
    last = np.full((24, pr.n_nodes), np.nan)
    change = np.full((24, len(dn)), np.nan)
    n_hours, stop_h = 0, 0
    cur: np.ndarray | None = None
    t, tstep = ctypes.c_long(), ctypes.c_long()
    try:
        while True:
            pr.check(lib.EN_runQ(ph, ctypes.byref(t)), f"time {t.value} s")
            tt = int(t.value)
            if tt % _HOUR == 0 and tt // _HOUR >= n_hours:
                if n_hours >= 48:
                    # the last 24 hours against the 24 before them, every hour (a sliding day): the run
                    # stops at the first hour where the whole day just simulated repeats the one before
                    diff = np.abs(change).max(axis=0)
                    ok = diff < tol
                    grow = (change.min(axis=0) >= 0.9 * 24.0) if parameter == "AGE" else np.zeros_like(ok)
                    rest = ~(ok | grow)
                    day_end = tt % _DAY == 0
                    if day_end or not rest.any() or not stop:
                        cur, stop_h = last.copy(), tt // _HOUR
                        days_done = -(-tt // _DAY) - 1
                        resid = float(diff[ok].max()) if ok.any() else float("nan")
                        unsettled = [n for n, o in zip(dn_names, ok) if not o]
                        growing = [n for n, g in zip(dn_names, grow) if g]
                    floor = False
                    if day_end:
                        worst_hist.append(float(diff[rest].max()) if rest.any() else 0.0)
                        # a floor: the few left hover within a few tolerances and stopped improving
                        floor = (len(worst_hist) >= 3 and worst_hist[-1] < 5 * tol
                                 and worst_hist[-1] > 0.8 * worst_hist[-3])
                    if stop and (not rest.any() or floor):
                        break
                vals = pr.values()
                while n_hours <= tt // _HOUR:  # (an hour without a hydraulic record takes the next one's values)
                    r = n_hours % 24
                    change[r] = vals[dn] - last[r, dn]
                    last[r] = vals
                    n_hours += 1
            pr.check(lib.EN_nextQ(ph, ctypes.byref(tstep)), f"time {t.value} s")
            if tstep.value <= 0:
                break
    finally:
        pr.close()
    if cur is None:  # shorter than two days: the last day simulated, unchecked
        cur, stop_h = last.copy(), n_hours
    final = cur
    cycle = pd.DataFrame(final, index=pd.Index(np.arange(24, dtype=float), name="cycle_h"), columns=pr.names)
    return cycle, {"days": int(days_done), "residual": resid, "unsettled": unsettled, "growing": growing,
                   "horizon_h": int(stop_h)}


def warm_quality(inp: str, hyd: str, workdir: str, *, parameter: str, duration_s: int, report_s: int,
                 initial: dict[str, float], scale: float = 1.0, initial_default: float | None = None) -> pd.DataFrame:
    """Quality over a run's own hydraulics from a given initial state (node → value in EPANET units).

    Pipe contents start as one segment at the quality of their downstream node
    (EPANET's rule); tanks and junctions at `initial`.

    Returns
    -------
    DataFrame
        Hours (0 … duration, every ``report_s``) × nodes.
    """
    ctol = TOL_AGE_H / 10.0 if parameter == "AGE" else TOL_CHLORINE_MGL
    pr = _start(inp, hyd, workdir, parameter=parameter, duration_s=duration_s, initial=initial,
                initial_default=initial_default, ctol=ctol)
    lib, ph = pr.lib, pr.ph
    rows, times = [], []
    t, tstep = ctypes.c_long(), ctypes.c_long()
    try:
        while True:
            pr.check(lib.EN_runQ(ph, ctypes.byref(t)), f"time {t.value} s")
            if int(t.value) % report_s == 0 and (not times or times[-1] != int(t.value)):
                times.append(int(t.value))
                rows.append(pr.values())
            pr.check(lib.EN_nextQ(ph, ctypes.byref(tstep)), f"time {t.value} s")
            if tstep.value <= 0:
                break
    finally:
        pr.close()
    return pd.DataFrame(np.array(rows) * scale, index=pd.Index(np.round(np.array(times) / 3600.0, 6), name="time_h"),
                        columns=pr.names)


# ----------------------------------------------------------------------------- side by side

T = TypeVar("T")


def _can_fork() -> bool:
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods() or mp.parent_process() is not None:
        return False  # no fork, or already a pool worker: its siblings hold the cores
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return cores >= 2


def run_side_by_side(jobs: dict[str, Callable[[], T]], *, parallel: bool = True,
                     meanwhile: Callable[[], Any] | None = None) -> dict[str, T]:
    """Run independent quality runs at once: the first here, each other one in a forked child process.

    An EPANET quality run uses one core; chlorine and water age take about as
    long each, so on two free cores the pair takes the time of one. The jobs
    run one after the other when `parallel` is False, when the platform cannot
    fork, on one core, or inside a worker process of a pool (its siblings hold
    the cores). Separate processes, not threads: two EPANET 2.2 projects run in
    threads of one process crashed it once.

    Parameters
    ----------
    jobs
        Name → a function of no arguments; a child's result comes back through a
        :mod:`multiprocessing` pipe between this process and its own fork.
    parallel
        Allow child processes.
    meanwhile
        Work for this process once its own job is done, while the children
        finish (called once, after all the jobs when they run one after the other).

    Returns
    -------
    dict
        Name → result, in the order of `jobs`. A job that fails or dies in a child
        (an exception, killed, crashed) is run again here, so its error is raised
        here as it is.
    """
    names = list(jobs)
    if not parallel or len(names) < 2 or not _can_fork():
        seq = {n: jobs[n]() for n in names}
        if meanwhile is not None:
            meanwhile()
        return seq
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    children = {}
    for n in names[1:]:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(jobs[n], send), name=f"watersupply-quality-{n}")
        proc.start()
        send.close()
        children[n] = (proc, recv)
    out: dict[str, Any] = {}
    try:
        out[names[0]] = jobs[names[0]]()
        if meanwhile is not None:
            meanwhile()
    finally:
        got = {}
        for n, (proc, recv) in children.items():
            try:
                got[n] = recv.recv()
            except (EOFError, OSError):
                got[n] = None
            finally:
                recv.close()
                proc.join()
    for n in names[1:]:
        msg = got[n]
        if msg is None or msg[0] == "error":
            log.warning("the %s quality run in a child process ended without an answer (exit code %s%s): run here",
                        n, children[n][0].exitcode, f"; {msg[1]}" if msg else "")
            out[n] = jobs[n]()
        else:
            out[n] = msg[1]
    return {n: out[n] for n in names}


def _child(job: Callable[[], Any], conn: Any) -> None:
    try:
        res = ("ok", job())
    except BaseException as exc:  # noqa: BLE001 - the parent runs the job again and raises it there
        res = ("error", f"{type(exc).__name__}: {exc}")
    conn.send(res)
    conn.close()
