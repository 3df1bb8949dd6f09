"""In-memory EPANET solves for calibration, through the EPANET toolkit (WNTR's 2.2 or owa-epanet's 2.3).

One :class:`ToolkitModel` opens the network's INP once; each evaluation sets
pipe roughness, nodal base demands and link status with ``EN_setlinkvalue`` /
``EN_setbasedemand``, runs the extended-period hydraulics with ``EN_runH`` /
``EN_nextH`` up to the last reading needed, and samples every sensor at the
reading times: no INP is written per evaluation.

The library is loaded by path with :mod:`ctypes` (not through owa-epanet's SWIG
module ``epanet.toolkit``): WNTR's EPANET 2.2 library carries the same soname,
and once WNTR has run in a process the SWIG module can no longer be imported.
The default engine is EPANET 2.2, the one WNTR runs, so the fit and the
verification (a full WNTR run) solve the same equations; EPANET 2.3 is faster
but its pressure-dependent demand differs where pressure is below the required
pressure. See :data:`ENGINES`.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import HydraulicError, NetworkDataError
from ..engine import ENGINES as ENGINE_NAMES
from ..engine import EN, engine_library, library
from ..hydraulics import LS_TO_M3S

__all__ = ["ENGINES", "Evaluator", "ModelSpec", "ToolkitModel", "toolkit_library"]

log = logging.getLogger(__name__)

# EPANET toolkit codes, from WNTR's enum (through the engine module)
_EN_NODECOUNT, _EN_LINKCOUNT = EN.NODECOUNT, EN.LINKCOUNT
_EN_ELEVATION, _EN_DEMAND, _EN_HEAD, _EN_PRESSURE = EN.ELEVATION, EN.DEMAND, EN.HEAD, EN.PRESSURE
_EN_ROUGHNESS, _EN_INITSTATUS, _EN_FLOW = EN.ROUGHNESS, EN.INITSTATUS, EN.FLOW
_EN_INITFLOW = EN.INITFLOW

#: quantity -> (element kind, EPANET property, factor to SI)
QUANTITY_PROPERTY = {
    "pressure": ("node", _EN_PRESSURE, 1.0),
    "head": ("node", _EN_HEAD, 1.0),
    "level": ("node", _EN_PRESSURE, 1.0),  # a tank's pressure is its level above the bottom
    "demand": ("node", _EN_DEMAND, LS_TO_M3S),  # the INP is written in L/s
    "flow": ("link", _EN_FLOW, LS_TO_M3S),
}

#: EPANET engines: 2.2 is the one WNTR runs (the verification run); 2.3 (owa-epanet) is faster but
#: solves pressure-dependent demand slightly differently (up to ~1 m where pressures fall below the
#: required pressure), so the default is 2.2.
ENGINES = ENGINE_NAMES


def toolkit_library(engine: str = "epanet2.2") -> ctypes.CDLL:
    """An EPANET shared library (WNTR's 2.2 or owa-epanet's 2.3), loaded by path through :mod:`watersupply.engine`.

    Raises
    ------
    ConfigError
        Unknown engine, or its library is not installed.
    """
    lib = library(engine_library(engine))
    if hasattr(lib, "EN_getlinkvalues") and lib.EN_getlinkvalues.argtypes is None:  # bulk getter: EPANET 2.3 only
        lib.EN_getlinkvalues.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
        lib.EN_getlinkvalues.restype = ctypes.c_int
    return lib


def _message(code: int) -> str:
    try:
        from wntr.epanet.exceptions import EN_ERROR_CODES

        return f"EPANET error {code}: {EN_ERROR_CODES.get(code, 'unknown error').replace('%s', '').strip()}"
    except Exception:  # pragma: no cover - wntr is a dependency
        return f"EPANET error {code}"


@dataclass
class ModelSpec:
    """What a :class:`ToolkitModel` needs; plain data, so worker processes can rebuild it.

    Attributes
    ----------
    inp
        INP file of the (initial) model, written in L/s and metres.
    sensors
        ``(element, quantity)`` per sensor.
    reading_time_s, reading_sensor
        Time (s) and sensor index of each reading, sorted by time.
    roughness_groups, demand_groups, status_groups
        Group name -> element ids.
    """

    inp: str
    sensors: list[tuple[str, str]]
    reading_time_s: np.ndarray
    reading_sensor: np.ndarray
    roughness_groups: dict[str, list[str]] = field(default_factory=dict)
    demand_groups: dict[str, list[str]] = field(default_factory=dict)
    status_groups: dict[str, list[str]] = field(default_factory=dict)
    engine: str = "epanet2.2"


class ToolkitModel:
    """An EPANET project kept open in memory, evaluated for parameter values (stateful).

    Examples
    --------
    >>> # m = ToolkitModel(spec); m.evaluate({"R:DN300+": 0.9}, until_s=48 * 3600)
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.lib = lib = toolkit_library(spec.engine)
        self._bulk = hasattr(lib, "EN_getnodevalues")
        self.ph = ctypes.c_void_p()
        lib.EN_createproject(ctypes.byref(self.ph))
        code = lib.EN_open(self.ph, str(spec.inp).encode("utf-8"), os.devnull.encode(), b"")
        if code >= 100:
            lib.EN_deleteproject(self.ph)
            self.ph = ctypes.c_void_p()
            raise HydraulicError(f"EPANET cannot open {spec.inp}: {_message(code)}")
        code = lib.EN_openH(self.ph)
        if code >= 100:
            self.close()
            raise HydraulicError(f"EPANET cannot start hydraulics of {spec.inp}: {_message(code)}")
        n = ctypes.c_int()
        lib.EN_getcount(self.ph, _EN_NODECOUNT, ctypes.byref(n))
        self._nbuf = np.zeros(n.value)
        lib.EN_getcount(self.ph, _EN_LINKCOUNT, ctypes.byref(n))
        self._lbuf = np.zeros(n.value)
        self.n_evaluations = 0
        # sensors, grouped by (kind, property) for bulk reads
        self._reads: list[tuple[str, int, float, np.ndarray, np.ndarray]] = []
        by: dict[tuple[str, int, float], tuple[list[int], list[int]]] = {}
        for k, (element, quantity) in enumerate(spec.sensors):
            kind, prop, scale = QUANTITY_PROPERTY[quantity]
            idx = self._node(element) if kind == "node" else self._link(element)
            pos, ids = by.setdefault((kind, prop, scale), ([], []))
            pos.append(k)
            ids.append(idx - 1)
        for (kind, prop, scale), (pos, ids) in sorted(by.items()):
            self._reads.append((kind, prop, scale, np.asarray(pos), np.asarray(ids)))
        self._n_sensors = len(spec.sensors)
        # groups: indices and initial values
        v = ctypes.c_double()
        self._rough: dict[str, tuple[list[int], np.ndarray]] = {}
        for g, pipes in spec.roughness_groups.items():
            idx = [self._link(p) for p in pipes]
            c0 = []
            for i in idx:
                lib.EN_getlinkvalue(self.ph, i, _EN_ROUGHNESS, ctypes.byref(v))
                c0.append(v.value)
            self._rough[g] = (idx, np.asarray(c0))
        self._demand: dict[str, list[tuple[int, int, float]]] = {}
        for g, nodes in spec.demand_groups.items():
            items = []
            for name in nodes:
                i = self._node(name)
                lib.EN_getnumdemands(self.ph, i, ctypes.byref(n))
                for d in range(1, n.value + 1):
                    lib.EN_getbasedemand(self.ph, i, d, ctypes.byref(v))
                    items.append((i, d, v.value))
            self._demand[g] = items
        self._status: dict[str, list[tuple[int, float]]] = {}
        for g, links in spec.status_groups.items():
            items = []
            for name in links:
                i = self._link(name)
                lib.EN_getlinkvalue(self.ph, i, _EN_INITSTATUS, ctypes.byref(v))
                items.append((i, v.value))
            self._status[g] = items

    def _node(self, name: str) -> int:
        i = ctypes.c_int()
        if self.lib.EN_getnodeindex(self.ph, str(name).encode("utf-8"), ctypes.byref(i)):
            raise NetworkDataError(f"node {name!r} is not in the EPANET model {self.spec.inp}")
        return i.value

    def _link(self, name: str) -> int:
        i = ctypes.c_int()
        if self.lib.EN_getlinkindex(self.ph, str(name).encode("utf-8"), ctypes.byref(i)):
            raise NetworkDataError(f"link {name!r} is not in the EPANET model {self.spec.inp}")
        return i.value

    def close(self) -> None:
        """Close the project (also done when the object is garbage-collected)."""
        if self.ph:
            self.lib.EN_closeH(self.ph)
            self.lib.EN_close(self.ph)
            self.lib.EN_deleteproject(self.ph)
            self.ph = ctypes.c_void_p()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def set_parameters(self, factors: Mapping[str, float], closed: Sequence[str] = ()) -> None:
        """Set roughness and demand groups to `factors` × their initial values; close `closed` status groups.

        Groups not in `factors` return to their initial values.
        """
        lib, ph = self.lib, self.ph
        for g, (idx, c0) in self._rough.items():
            f = float(factors.get(g, 1.0))
            for i, c in zip(idx, c0):
                lib.EN_setlinkvalue(ph, i, _EN_ROUGHNESS, c * f)
        for g, items in self._demand.items():
            f = float(factors.get(g, 1.0))
            for i, d, base in items:
                lib.EN_setbasedemand(ph, i, d, base * f)
        shut = set(closed)
        for g, items in self._status.items():
            for i, status in items:
                lib.EN_setlinkvalue(ph, i, _EN_INITSTATUS, 0.0 if g in shut else status)

    def evaluate(self, factors: Mapping[str, float], *, closed: Sequence[str] = (),
                 until_s: float | None = None) -> np.ndarray:
        """Simulated value (SI) of every reading up to `until_s` (NaN after it).

        Raises
        ------
        HydraulicError
            EPANET fails to solve (naming the time of the failure).
        """
        self.set_parameters(factors, closed)
        spec = self.spec
        times = spec.reading_time_s
        sensor = spec.reading_sensor
        stop = float(times.max()) if until_s is None else float(until_s)
        out = np.full(len(times), np.nan)
        lib, ph = self.lib, self.ph
        t, tstep = ctypes.c_long(), ctypes.c_long()
        code = lib.EN_initH(ph, _EN_INITFLOW)
        if code >= 100:
            raise HydraulicError(f"EPANET cannot initialise hydraulics: {_message(code)}")
        self.n_evaluations += 1
        nptr = self._nbuf.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        lptr = self._lbuf.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        values = np.zeros(self._n_sensors)
        v = ctypes.c_double()
        vref = ctypes.byref(v)
        lo = 0
        while True:
            code = lib.EN_runH(ph, ctypes.byref(t))
            if code >= 100:
                raise HydraulicError(f"EPANET failed at hour {t.value / 3600:g}: {_message(code)}")
            # the state at time t (read before EN_nextH moves the tanks on to the next step)
            for kind, prop, scale, pos, ids in self._reads:
                if not self._bulk:
                    get = lib.EN_getnodevalue if kind == "node" else lib.EN_getlinkvalue
                    for k, i in zip(pos.tolist(), ids.tolist()):
                        get(ph, i + 1, prop, vref)
                        values[k] = v.value * scale
                elif kind == "node":
                    lib.EN_getnodevalues(ph, prop, nptr)
                    values[pos] = self._nbuf[ids] * scale
                else:
                    lib.EN_getlinkvalues(ph, prop, lptr)
                    values[pos] = self._lbuf[ids] * scale
            code = lib.EN_nextH(ph, ctypes.byref(tstep))
            if code >= 100:
                raise HydraulicError(f"EPANET failed after hour {t.value / 3600:g}: {_message(code)}")
            end = t.value + tstep.value if tstep.value > 0 else np.inf
            hi = int(np.searchsorted(times, end, side="left"))
            if hi > lo:
                out[lo:hi] = values[sensor[lo:hi]]
                lo = hi
            if tstep.value <= 0 or end > stop or lo >= len(times):
                break
        return out


_WORKER: dict[str, Any] = {}


def _init_worker(spec: ModelSpec) -> None:
    _WORKER["model"] = ToolkitModel(spec)


def _worker_eval(args: tuple[dict[str, float], tuple[str, ...], float]) -> np.ndarray:
    factors, closed, until = args
    return _WORKER["model"].evaluate(factors, closed=closed, until_s=until)


class Evaluator:
    """Counts and parallelises the EPANET evaluations of one calibration (stateful)."""

    def __init__(self, spec: ModelSpec, *, workers: int) -> None:
        self.model = ToolkitModel(spec)
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(spec,))
        self.count = 0
        self.switches = 0

    def one(self, factors: Mapping[str, float], closed: Sequence[str] = (), until: float | None = None) -> np.ndarray:
        self.count += 1
        log.info("EPANET evaluation %d: %s%s", self.count, {k: round(v, 4) for k, v in factors.items()},
                 f" closed {list(closed)}" if closed else "")
        return self.model.evaluate(dict(factors), closed=tuple(closed), until_s=until)

    def many(self, jobs: list[tuple[dict[str, float], tuple[str, ...], float | None]]) -> list[np.ndarray]:
        self.count += len(jobs)
        log.info("EPANET evaluations %d-%d: Jacobian columns", self.count - len(jobs) + 1, self.count)
        if self.pool is None or len(jobs) < 2:
            return [self.model.evaluate(f, closed=c, until_s=u) for f, c, u in jobs]
        return list(self.pool.map(_worker_eval, jobs))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.model.close()
