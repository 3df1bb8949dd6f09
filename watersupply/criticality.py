"""Pipe and valve-segment criticality: who loses water when one element is lost for a whole run.

For every pipe (or every valve-isolation segment) :func:`pipe_criticality` answers
"what if it is out of service for the whole run?" under pressure-dependent demand
(the PDD options of :func:`watersupply.model.to_wntr`):

- ``people_without_water`` — population at demand nodes without water at any
  report hour;
- ``person_hours_without_water`` — population × hours without water;
- ``demand_not_served_m3`` — expected minus delivered demand over the run;
- ``settlements_affected`` — ids (and names) of settlements with people without water;
- ``worst_pressure_drop_m`` — the largest pressure drop against the baseline at
  a demand node that is still served (NaN where not computed, see below).

A node is **without water** at a report hour when its pressure is below the PDD
minimum pressure (the rule of :func:`watersupply.metrics.without_water`) **or**
when the links open at that hour leave it cut off from every source (plant
reservoir or tank). The second clause is needed because EPANET reports
meaningless pressures at cut-off nodes (values from -13,000 m to +1,500 m were
seen on the Tonghui model); without it the answer for a cut-off node would be
numerical noise. Demand not served counts, per node and report hour,
``max(0, expected - delivered)`` — EPANET's PDD barrier lets a node take a hair
more than its demand — and the whole expected demand of cut-off nodes. Hours
are integrated over the report intervals (the state at a report time holds until
the next one), so a node dry for a whole 24 h run counts 24 person-hours per
person.

The answers are those of the usual recipe (:func:`reference_criticality`: copy
the model, close the element, run WNTR's ``EpanetSimulator``), obtained much
faster by four means:

1. **Topology.** Closing a link that is a bridge of the open-link graph (pumps
   count as links, sources are plant reservoirs and tanks) whose far side holds
   no source leaves that side dry for the whole run; its people and demand are
   counted without solving anything, and the rest of the network keeps its
   baseline status (it only loses demand). The same rule applies to segments.
   If the far side still holds a tank the closure is simulated: a zone cut off
   from the plant drains its tank and may or may not run dry. For these
   topology answers the worst pressure drop elsewhere is **not computed** (NaN):
   losing a dead-end part only lowers flows elsewhere.
2. **A reduced model as a screen.** Dead-end trees of plain pipes are collapsed
   into their root node (their demands moved there). While every demand node
   stays at or above the PDD required pressure and connected to a source, that
   model is hydraulically equivalent to the full one, and a tree's pressures
   follow from its root head; each step of a reduced run checks exactly that
   (root heads against the head each tree needs, with a margin). A closure that
   passes the screen has nobody without water and no demand lost; its pressure
   drop comes from the reduced run. A closure that fails it — the interesting
   ones — is solved on the full model.
3. **Series chains.** Links joined through junctions with no demand and only two
   links form a chain; losing one or several links of a chain leaves the same
   network (the rest of the chain hangs dead-ended and carries no flow), so such
   closures share one solve (``method`` ``series``, the message names the element
   solved). Where that solve did not balance (status ``unconverged``: typically a
   tank behind the cut drains dry and leaves an island EPANET cannot balance), the
   recipe's own answers for physically identical closures differ by a few per cent
   in person-hours and volume (0.5 % and 2 % seen on Tonghui); people and node sets
   agree. Use ``shortcuts=False`` for the recipe's numbers everywhere.
4. **EPANET kept open in memory.** The full and reduced models are opened once
   per worker through the EPANET toolkit (WNTR's bundled EPANET 2.2 library by
   default, the same engine as the recipe, so answers agree; owa-epanet's 2.3
   library on request). Each closure sets the links' initial status to closed,
   re-initialises hydraulics (flows included, so answers never depend on which
   closure ran before) and steps through the run, reading pressures at report
   times. EPANET 2.3 solves about twice as fast but answers differently where
   tanks run dry, and lets a pump keep drawing from a suction node cut off from
   everything; 2.2 is the default for that reason (``benchmarks/criticality.py``
   measures both). Its library is loaded by path with ctypes: it shares the
   soname ``libepanet2.so`` with WNTR's, so owa-epanet's SWIG module cannot be
   imported once WNTR's library is loaded in a process.

Work is spread over local processes (``workers``) or a Dask distributed cluster
(``scheduler``); each worker opens its own EPANET projects from INP text shipped
with the task.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._errors import ConfigError, HydraulicError, NetworkDataError, closest
from .schema import Network

__all__ = [
    "ENGINES",
    "CONSEQUENCE_COLUMNS",
    "pipe_criticality",
    "reference_criticality",
    "closure_sets",
    "criticality_layer",
    "write_criticality",
]

log = logging.getLogger(__name__)

#: EPANET engines the fast path can use: WNTR's bundled 2.2 library (default; the
#: recipe's engine) or owa-epanet's 2.3 library.
ENGINES = ("epanet2.2", "epanet2.3")

#: Consequence columns of the table, in order.
CONSEQUENCE_COLUMNS = [
    "people_without_water", "person_hours_without_water", "demand_not_served_m3",
    "settlements_affected", "settlements_zh", "settlements_en", "nodes_without_water",
    "worst_pressure_drop_m", "worst_drop_node",
]

# EPANET toolkit codes (identical in 2.2 and 2.3)
_EN_NODECOUNT, _EN_LINKCOUNT, _EN_CONTROLCOUNT = 0, 2, 5
_EN_HEAD, _EN_PRESSURE, _EN_DEMANDDEFICIT = 10, 11, 27
_EN_INITSTATUS, _EN_STATUS = 4, 11
_EN_INITFLOW = 10  # initH flag: re-initialise flows
_UNCONVERGED = {1: "system hydraulically unbalanced", 2: "system may be hydraulically unstable"}
_CFS = 0.028316846592  # m³/s per ft³/s
_FT = 0.3048

#: Extra head (m) a reduced-model screen demands above the exact requirement.
SCREEN_MARGIN_M = 0.05
#: Baseline head margin (m) a dead-end tree needs to be collapsed in the reduced model.
COLLAPSE_MARGIN_M = 1.0


# ----------------------------------------------------------------------------- engines

def _engine_library(engine: str) -> str:
    """Path of the EPANET shared library for `engine` (no import of its Python wrapper)."""
    if engine == "epanet2.2":
        from importlib.resources import files

        sub = {"win32": "windows-x64/epanet22.dll", "darwin": "darwin-x64/libepanet22.dylib"}.get(
            sys.platform, "linux-x64/libepanet22.so")
        return str(files("wntr.epanet").joinpath("libepanet/" + sub))
    if engine == "epanet2.3":
        import importlib.util

        spec = importlib.util.find_spec("epanet")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("engine 'epanet2.3' needs owa-epanet: pip install owa-epanet")
        folder = Path(list(spec.submodule_search_locations)[0])
        for name in ("libepanet2.so", "libepanet2.dylib", "epanet2.dll"):
            if (folder / name).is_file():
                return str(folder / name)
        raise ConfigError(f"owa-epanet is installed in {folder} but its EPANET library was not found there")
    raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


_LIBS: dict[str, ctypes.CDLL] = {}


def _library(path: str) -> ctypes.CDLL:
    """Load an EPANET library by path (ctypes, private namespace) and declare its signatures.

    Loading by path keeps WNTR's 2.2 library and owa-epanet's 2.3 library apart:
    both carry the soname ``libepanet2.so``, so owa-epanet's SWIG module cannot
    even be imported once WNTR's library is loaded.
    """
    lib = _LIBS.get(path)
    if lib is not None:
        return lib
    lib = ctypes.CDLL(path)
    vp, ci, cd, cl = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_long
    pi, pd_, pl = ctypes.POINTER(ci), ctypes.POINTER(cd), ctypes.POINTER(cl)
    sig = {
        "EN_createproject": [ctypes.POINTER(vp)], "EN_deleteproject": [vp],
        "EN_open": [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p], "EN_close": [vp],
        "EN_openH": [vp], "EN_initH": [vp, ci], "EN_runH": [vp, pl], "EN_nextH": [vp, pl], "EN_closeH": [vp],
        "EN_getcount": [vp, ci, pi], "EN_getnodeindex": [vp, ctypes.c_char_p, pi],
        "EN_getlinkindex": [vp, ctypes.c_char_p, pi], "EN_getnodevalue": [vp, ci, ci, pd_],
        "EN_getlinkvalue": [vp, ci, ci, pd_], "EN_setlinkvalue": [vp, ci, ci, cd],
        "EN_getcontrol": [vp, ci, pi, pi, pd_, pi, pd_], "EN_setcontrol": [vp, ci, ci, ci, cd, ci, cd],
    }
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = ci
    if hasattr(lib, "EN_getnodevalues"):
        lib.EN_getnodevalues.argtypes = [vp, ci, pd_]
        lib.EN_getnodevalues.restype = ci
    _LIBS[path] = lib
    return lib


def _en_message(code: int) -> str:
    try:
        from wntr.epanet.exceptions import EN_ERROR_CODES

        text = EN_ERROR_CODES.get(code, "unknown error")
        return f"EPANET error {code}: {text.replace('%s', '').strip()}"
    except Exception:  # pragma: no cover - wntr always present
        return f"EPANET error {code}"


class _Project:
    """One EPANET project opened from an INP file, with hydraulics open (stateful)."""

    def __init__(self, lib_path: str, inp: str) -> None:
        self.lib = lib = _library(lib_path)
        self.ph = ctypes.c_void_p()
        lib.EN_createproject(ctypes.byref(self.ph))
        code = lib.EN_open(self.ph, inp.encode("utf-8"), os.devnull.encode(), b"")
        if code >= 100:
            lib.EN_deleteproject(self.ph)
            raise HydraulicError(f"EPANET cannot open the model: {_en_message(code)}")
        code = lib.EN_openH(self.ph)
        if code >= 100:
            raise HydraulicError(f"EPANET cannot start hydraulics: {_en_message(code)}")
        n = ctypes.c_int()
        lib.EN_getcount(self.ph, _EN_NODECOUNT, ctypes.byref(n))
        self.n_nodes = n.value
        lib.EN_getcount(self.ph, _EN_CONTROLCOUNT, ctypes.byref(n))
        self.n_controls = n.value
        self._t = ctypes.c_long()
        self._v = ctypes.c_double()
        self._bulk = hasattr(lib, "EN_getnodevalues")
        self._buf = np.zeros(self.n_nodes, dtype=np.float64)
        self._controls: dict[int, list[tuple[int, int, int, float, int, float]]] | None = None

    def close(self) -> None:
        if self.ph:
            self.lib.EN_closeH(self.ph)
            self.lib.EN_close(self.ph)
            self.lib.EN_deleteproject(self.ph)
            self.ph = ctypes.c_void_p()

    def node_index(self, name: str) -> int:
        i = ctypes.c_int()
        if self.lib.EN_getnodeindex(self.ph, name.encode("utf-8"), ctypes.byref(i)):
            raise NetworkDataError(f"node {name!r} is not in the EPANET model")
        return i.value

    def link_index(self, name: str) -> int:
        i = ctypes.c_int()
        if self.lib.EN_getlinkindex(self.ph, name.encode("utf-8"), ctypes.byref(i)):
            raise NetworkDataError(f"link {name!r} is not in the EPANET model")
        return i.value

    def _control_table(self) -> dict[int, list[tuple[int, int, int, float, int, float]]]:
        if self._controls is None:
            self._controls = {}
            ty, li, ni = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            st, lv = ctypes.c_double(), ctypes.c_double()
            for c in range(1, self.n_controls + 1):
                self.lib.EN_getcontrol(self.ph, c, ctypes.byref(ty), ctypes.byref(li), ctypes.byref(st),
                                       ctypes.byref(ni), ctypes.byref(lv))
                self._controls.setdefault(li.value, []).append((c, ty.value, li.value, st.value, ni.value, lv.value))
        return self._controls

    def close_links(self, idx: Sequence[int]) -> list[tuple[int, float]]:
        """Close links for the whole run (initial status closed, their controls disabled)."""
        saved = []
        v = self._v
        table = self._control_table()
        for i in idx:
            self.lib.EN_getlinkvalue(self.ph, i, _EN_INITSTATUS, ctypes.byref(v))
            saved.append((i, v.value))
            self.lib.EN_setlinkvalue(self.ph, i, _EN_INITSTATUS, 0.0)
            for c, ty, _li, st, ni, lv in table.get(i, ()):
                self.lib.EN_setcontrol(self.ph, c, ty, 0, st, ni, lv)
        return saved

    def restore_links(self, saved: list[tuple[int, float]]) -> None:
        table = self._control_table()
        for i, status in saved:
            self.lib.EN_setlinkvalue(self.ph, i, _EN_INITSTATUS, status)
            for c, ty, li, st, ni, lv in table.get(i, ()):
                self.lib.EN_setcontrol(self.ph, c, ty, li, st, ni, lv)

    def init(self) -> int:
        return int(self.lib.EN_initH(self.ph, _EN_INITFLOW))

    def run(self) -> tuple[int, int]:
        code = self.lib.EN_runH(self.ph, ctypes.byref(self._t))
        return int(code), int(self._t.value)

    def advance(self) -> tuple[int, int]:
        code = self.lib.EN_nextH(self.ph, ctypes.byref(self._t))
        return int(code), int(self._t.value)

    def node_values(self, prop: int, idx: np.ndarray) -> np.ndarray:
        """Values of a node property at 1-based indices `idx` (one bulk call on EPANET 2.3)."""
        if self._bulk:
            self.lib.EN_getnodevalues(self.ph, prop, self._buf.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            return self._buf[idx - 1].copy()
        get, ph, v = self.lib.EN_getnodevalue, self.ph, self._v
        ref = ctypes.byref(v)
        out = np.empty(len(idx), dtype=np.float64)
        for k, i in enumerate(idx.tolist()):
            get(ph, i, prop, ref)
            out[k] = v.value
        return out

    def links_open(self, idx: Sequence[int]) -> np.ndarray:
        get, ph, v = self.lib.EN_getlinkvalue, self.ph, self._v
        ref = ctypes.byref(v)
        out = np.empty(len(idx), dtype=bool)
        for k, i in enumerate(idx):
            get(ph, i, _EN_STATUS, ref)
            out[k] = v.value > 0.5
        return out


# ----------------------------------------------------------------------------- graphs

@dataclass
class _Graph:
    """Connectivity of a model's nodes to its sources, given which links are open (picklable).

    ``fixed`` links never change status during a run; ``switch`` links may (pumps,
    valves, check valves, links at tanks, links named in controls).
    """

    nodes: list[str]
    sources: np.ndarray
    fixed_names: list[str]
    fixed_uv: np.ndarray
    switch_names: list[str]
    switch_uv: np.ndarray
    _fixed_pos: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._fixed_pos = {n: i for i, n in enumerate(self.fixed_names)}

    def base(self, closed: Iterable[str] = ()) -> tuple[np.ndarray, int]:
        """Component labels of the fixed links minus `closed`."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        keep = np.ones(len(self.fixed_names), dtype=bool)
        for name in closed:
            i = self._fixed_pos.get(name)
            if i is not None:
                keep[i] = False
        uv = self.fixed_uv[keep]
        n = len(self.nodes)
        m = coo_matrix((np.ones(len(uv)), (uv[:, 0], uv[:, 1])), shape=(n, n)) if len(uv) else coo_matrix((n, n))
        nc, labels = connected_components(m, directed=False)
        return labels, int(nc)

    def cut_off(self, base: tuple[np.ndarray, int], switch_open: np.ndarray) -> np.ndarray:
        """Boolean per node: True where no source is reachable through open links."""
        labels, nc = base
        parent = list(range(nc))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        uv = self.switch_uv[switch_open]
        for a, b in zip(labels[uv[:, 0]].tolist(), labels[uv[:, 1]].tolist()):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        sup = np.array([find(i) for i in range(nc)], dtype=np.int64)
        comp = sup[labels]
        fed = np.zeros(nc, dtype=bool)
        fed[comp[self.sources]] = True
        return ~fed[comp]


def _links_info(wn: Any) -> pd.DataFrame:
    """One row per link: end nodes, kind, whether it is in the open-link graph and whether it can switch."""
    from wntr.network.base import LinkStatus

    controlled = set()
    for _name, ctl in wn.controls():
        for act in ctl.actions():
            obj = act.target()[0]
            if hasattr(obj, "link_type"):
                controlled.add(obj.name)
    tanks = set(wn.tank_name_list)
    rows = []
    for name, link in wn.links():
        kind = link.link_type.lower()
        if kind == "pipe" and getattr(link, "check_valve", False):
            kind = "cv"
        closed = link.initial_status == LinkStatus.Closed
        u, v = link.start_node_name, link.end_node_name
        rows.append(dict(link=name, u=u, v=v, kind=kind, in_graph=(not closed) or name in controlled,
                         switch=kind in ("pump", "valve", "cv") or name in controlled or u in tanks or v in tanks,
                         controlled=name in controlled))
    return pd.DataFrame(rows).set_index("link")


def _graph(nodes: list[str], sources: set[str], links: pd.DataFrame) -> _Graph:
    pos = {n: i for i, n in enumerate(nodes)}
    g = links[links["in_graph"] & links["u"].isin(pos) & links["v"].isin(pos)]
    fixed = g[~g["switch"]]
    sw = g[g["switch"]]

    def uv(df: pd.DataFrame) -> np.ndarray:
        if not len(df):
            return np.zeros((0, 2), dtype=np.int64)
        return np.column_stack([df["u"].map(pos).to_numpy(), df["v"].map(pos).to_numpy()]).astype(np.int64)

    return _Graph(nodes=list(nodes), sources=np.array([n in sources for n in nodes]),
                  fixed_names=list(fixed.index), fixed_uv=uv(fixed), switch_names=list(sw.index), switch_uv=uv(sw))


# ----------------------------------------------------------------------------- consequences

def _consequences(p: np.ndarray, cut: np.ndarray, deficit: np.ndarray, ctx: Mapping[str, Any],
                  base_p: np.ndarray | None) -> dict[str, Any]:
    """Consequences of one closure from report-time arrays (hours × demand nodes).

    p: pressure (m); cut: cut off from every source; deficit: expected − delivered (m³/s).
    """
    pmin, step_h, pop, expected = ctx["pmin"], ctx["step_h"], ctx["pop"], ctx["expected"]
    with np.errstate(invalid="ignore"):
        dry_t = (p < pmin) | cut
    dry = dry_t.any(axis=0)
    ph = float((dry_t[:-1].astype(float) @ pop).sum() * step_h)
    lost = np.where(cut, expected, np.clip(deficit, 0.0, None))
    unserved = float(lost[:-1].sum() * step_h * 3600.0)
    drop, node = math.nan, ""
    if base_p is not None:
        served = ~dry
        if served.any():
            d = (base_p - p)[:, served].max(axis=0)
            k = int(np.argmax(d))
            drop, node = float(d[k]), ctx["demand_ids"][int(np.flatnonzero(served)[k])]
    return dict(dry=dry, person_hours=ph, unserved_m3=unserved, drop=drop, drop_node=node)


# ----------------------------------------------------------------------------- worker side

class _Solver:
    """The EPANET projects of one worker (full model, and the reduced model if any)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.pl = payload
        tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
        try:
            path = Path(tmp) / "full.inp"
            path.write_bytes(payload["inp_full"])
            self.full = _Project(payload["lib"], str(path))
            self.red = None
            if payload.get("inp_reduced"):
                rpath = Path(tmp) / "reduced.inp"
                rpath.write_bytes(payload["inp_reduced"])
                self.red = _Project(payload["lib"], str(rpath))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        f = self.full
        self.f_dn = np.array([f.node_index(n) for n in payload["demand_ids"]], dtype=np.int64)
        self.f_all = np.arange(1, f.n_nodes + 1, dtype=np.int64)
        gf: _Graph = payload["graph_full"]
        self.f_switch = [f.link_index(n) for n in gf.switch_names]
        gpos = {n: i for i, n in enumerate(gf.nodes)}
        self.f_dn_pos = np.array([gpos.get(n, -1) for n in payload["demand_ids"]], dtype=np.int64)
        if self.red is not None:
            r = self.red
            gr: _Graph = payload["graph_reduced"]
            self.r_watch = np.array([r.node_index(n) for n in payload["watch_ids"]], dtype=np.int64)
            self.r_switch = [r.link_index(n) for n in gr.switch_names]
            gpos = {n: i for i, n in enumerate(gr.nodes)}
            self.r_watch_g = np.array([gpos[n] for n in payload["watch_ids"]], dtype=np.int64)
            self.r_links = set(payload["reduced_links"])

    def close(self) -> None:
        """Close the EPANET projects."""
        self.full.close()
        if self.red is not None:
            self.red.close()

    # -- full model
    def run_full(self, links: Sequence[str], *, heads: bool = False) -> dict[str, Any]:
        pl, f = self.pl, self.full
        T, step = pl["n_reports"], pl["report_step_s"]
        n = len(self.f_dn)
        p = np.full((T, n), np.nan)
        cut = np.zeros((T, n), dtype=bool)
        deficit = np.zeros((T, n))
        h_all = np.full((T, f.n_nodes), np.nan) if heads else None
        gf: _Graph = pl["graph_full"]
        closed = set(links)
        base = gf.base(closed)
        sw_closed = np.array([s in closed for s in gf.switch_names], dtype=bool)
        cache: dict[bytes, np.ndarray] = {}
        saved = f.close_links([f.link_index(x) for x in links])
        status, message, row = "ok", "", 0
        try:
            code = f.init()
            if code >= 100:
                return dict(status="error", message=_en_message(code))
            while True:
                code, t = f.run()
                if code >= 100:
                    status, message = "error", f"{_en_message(code)} at {t / 3600:g} h"
                    break
                if code in _UNCONVERGED and status == "ok":
                    status, message = "unconverged", f"{_UNCONVERGED[code]} at {t / 3600:g} h"
                if t % step == 0 and row < T:
                    pr = f.node_values(_EN_PRESSURE, self.f_dn)
                    p[row] = pr.astype(np.float32)  # the recipe reads single-precision results
                    sw = f.links_open(self.f_switch) & ~sw_closed
                    key = sw.tobytes()
                    c = cache.get(key)
                    if c is None:
                        c = cache[key] = gf.cut_off(base, sw)
                    cut[row] = np.where(self.f_dn_pos >= 0, c[self.f_dn_pos], True)
                    low = np.flatnonzero(pr < pl["preq"])
                    if len(low):
                        deficit[row, low] = f.node_values(_EN_DEMANDDEFICIT, self.f_dn[low]) / 1000.0
                    if heads:
                        h_all[row] = f.node_values(_EN_HEAD, self.f_all)
                    row += 1
                code, dt = f.advance()
                if code >= 100:
                    status, message = "error", f"{_en_message(code)} at {t / 3600:g} h"
                    break
                if dt <= 0:
                    break
        finally:
            f.restore_links(saved)
        if status == "error":
            return dict(status=status, message=message)
        if row < T:
            return dict(status="error", message=f"EPANET stopped after {row} of {T} report times")
        out = dict(status=status, message=message, method="full", p=p, cut=cut, deficit=deficit)
        if heads:
            out["heads"] = h_all
        return out

    # -- reduced model with the screen
    def run_reduced(self, links: Sequence[str], *, keep: bool = False) -> dict[str, Any] | None:
        """Run the reduced model; None as soon as the screen fails (full demand and supply everywhere)."""
        pl, r = self.pl, self.red
        if r is None or not set(links) <= self.r_links:
            return None
        gr: _Graph = pl["graph_reduced"]
        closed = set(links)
        base = gr.base(closed)
        sw_closed = np.array([s in closed for s in gr.switch_names], dtype=bool)
        hcrit, pstep = pl["hcrit"], pl["pattern_step_s"]
        T, step = pl["n_reports"], pl["report_step_s"]
        heads = np.full((T, len(self.r_watch)), np.nan)
        cache: dict[bytes, bool] = {}
        saved = r.close_links([r.link_index(x) for x in links])
        ok, row = True, 0
        try:
            if r.init() >= 100:
                return None
            while True:
                code, t = r.run()
                if code >= 100 or code in _UNCONVERGED:
                    ok = False
                    break
                h = r.node_values(_EN_HEAD, self.r_watch)
                k = min(t // pstep, len(hcrit) - 1)
                if np.any(h < hcrit[k]):
                    ok = False
                    break
                sw = r.links_open(self.r_switch) & ~sw_closed
                key = sw.tobytes()
                bad = cache.get(key)
                if bad is None:
                    bad = cache[key] = bool(gr.cut_off(base, sw)[self.r_watch_g].any())
                if bad:
                    ok = False
                    break
                if t % step == 0 and row < T:
                    heads[row] = h
                    row += 1
                code, dt = r.advance()
                if code >= 100:
                    ok = False
                    break
                if dt <= 0:
                    break
        finally:
            r.restore_links(saved)
        if not ok or row < T:
            return None
        out: dict[str, Any] = dict(status="ok", message="", method="reduced", heads=heads)
        if keep:
            return out
        base_h = pl["base_heads_reduced"]
        d = base_h - heads                        # head drop = pressure drop at the same node
        dn = d[:, pl["demand_watch"]].max(axis=0)  # tree nodes share their root's drop
        k = int(np.argmax(dn)) if len(dn) else 0
        n = len(pl["demand_ids"])
        return dict(status="ok", message="", method="reduced", dry=np.zeros(n, dtype=bool), person_hours=0.0,
                    unserved_m3=0.0, drop=float(dn[k]) if len(dn) else math.nan,
                    drop_node=pl["demand_ids"][k] if len(dn) else "")

    def solve(self, cid: str, links: Sequence[str]) -> dict[str, Any]:
        """Consequences of closing `links`; never raises (errors become status 'error')."""
        try:
            if self.pl.get("screen", True):
                res = self.run_reduced(links)
                if res is not None:
                    res["id"] = cid
                    return _compact(res)
            raw = self.run_full(links)
            if raw["status"] == "error":
                return dict(id=cid, status="error", message=raw["message"], method="full")
            cons = _consequences(raw["p"], raw["cut"], raw["deficit"], self.pl, self.pl["base_p"])
            cons.update(id=cid, status=raw["status"], message=raw["message"], method="full")
            return _compact(cons)
        except Exception as exc:  # never abort a sweep
            return dict(id=cid, status="error", message=f"{type(exc).__name__}: {exc}".strip(), method="full")


def _compact(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in res.items() if k not in ("dry", "p", "cut", "deficit", "heads")}
    if "dry" in res:
        out["dry_idx"] = np.flatnonzero(res["dry"]).astype(np.int32)
    return out


#: Solvers of this process, by (payload key, thread): an EPANET project is not shared between threads.
_WORKER: dict[tuple[str, int], _Solver] = {}
_WORKER_LOCK = threading.Lock()


def _init_worker(payload: Mapping[str, Any]) -> None:
    _WORKER[("local", threading.get_ident())] = _Solver(payload)


def _local_chunk(items: Sequence[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    solver = _WORKER[("local", threading.get_ident())]
    return [solver.solve(cid, links) for cid, links in items]


def _dask_chunk(payload: Mapping[str, Any], items: Sequence[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    """Dask task: open (once per worker thread) the EPANET projects shipped in `payload`, solve `items`."""
    me = (payload["key"], threading.get_ident())
    with _WORKER_LOCK:
        solver = _WORKER.get(me)
        if solver is None:
            for old in [k for k in _WORKER if k[1] == me[1] and k[0] not in ("local", me[0])]:
                _WORKER.pop(old).close()  # this thread's projects of an earlier sweep
    if solver is None:
        solver = _Solver(payload)
        with _WORKER_LOCK:
            _WORKER[me] = solver
    return [solver.solve(cid, links) for cid, links in items]


# ----------------------------------------------------------------------------- planning (parent side)

def closure_sets(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                 wn: Any = None) -> dict[str, tuple[str, ...]]:
    """The elements to analyse and the links each one closes.

    Parameters
    ----------
    net
        Network layers.
    pipes
        ``"all"``, ``"main"``, ``"branch"``, a comma-separated string of pipe ids
        or an iterable of pipe ids.
    segments
        Analyse valve-isolation segments (``wntr.metrics.valve_segments`` over the
        ``valves`` layer) instead of single pipes: the segments holding at least
        one selected pipe. A segment closes its own links and the links whose
        valve sits at one of its nodes.
    wn
        The WNTR model (built with :func:`watersupply.model.to_wntr` when not given).

    Returns
    -------
    dict
        Element id (pipe id, or ``S0001``… for segments) → closed link ids, in a stable order.

    Raises
    ------
    NetworkDataError
        An unknown pipe id (with the closest valid ids), or ``segments`` without a valves layer.
    """
    layer = net["pipes"]
    ids = layer["id"].astype(str).tolist()
    cls = layer["class"].astype(str).tolist() if "class" in layer else ["main"] * len(ids)
    if isinstance(pipes, str) and pipes.strip().lower() in ("all", "main", "branch"):
        sel = pipes.strip().lower()
        chosen = [i for i, c in zip(ids, cls) if sel == "all" or c == sel]
    else:
        wanted = [s.strip() for s in pipes.split(",")] if isinstance(pipes, str) else [str(s).strip() for s in pipes]
        wanted = [w for w in wanted if w]
        if not wanted:
            raise NetworkDataError("pipes: no pipe ids given; use all, main, branch or a comma-separated list of ids")
        known = set(ids)
        for w in wanted:
            if w not in known:
                raise NetworkDataError(f"pipes: unknown pipe id {w!r}; {closest(w, ids)}")
        chosen = list(dict.fromkeys(wanted))
    if not segments:
        return {c: (c,) for c in chosen}

    valves = net.get("valves")
    if valves is None or not len(valves):
        raise NetworkDataError("segments: the network has no 'valves' layer (columns id, link, node); "
                               "add isolation valves, or analyse single pipes without --segments")
    if wn is None:
        from .model import to_wntr

        wn = to_wntr(net)
    import warnings

    import wntr

    vl = pd.DataFrame({"link": valves["link"].astype(str).to_numpy(), "node": valves["node"].astype(str).to_numpy()})
    links, nodes = set(wn.link_name_list), set(wn.node_name_list)
    for i, (lk, nd) in enumerate(zip(vl["link"], vl["node"])):
        vid = str(valves["id"].iloc[i]) if "id" in valves else str(i)
        if lk not in links:
            raise NetworkDataError(f"valves: valve {vid!r} is on link {lk!r}, which is not in the network; "
                                   f"{closest(lk, links)}")
        if nd not in nodes or nd not in (wn.get_link(lk).start_node_name, wn.get_link(lk).end_node_name):
            raise NetworkDataError(f"valves: valve {vid!r} protects node {nd!r}, which is not an end of link {lk!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node_seg, link_seg, _ = wntr.metrics.valve_segments(wn.to_graph(), vl.drop_duplicates().reset_index(drop=True))
    by_seg: dict[int, set[str]] = {}
    for lk, s in link_seg.items():
        by_seg.setdefault(int(s), set()).add(str(lk))
    node_of = node_seg.astype(int).to_dict()
    for lk, nd in zip(vl["link"], vl["node"]):
        by_seg.setdefault(int(node_of[nd]), set()).add(lk)
    chosen_set = set(chosen)
    order = {lk: i for i, lk in enumerate(wn.link_name_list)}
    out: dict[str, tuple[str, ...]] = {}
    for s in sorted(by_seg):
        members = by_seg[s]
        own = {lk for lk, ss in link_seg.items() if int(ss) == s}
        if own & chosen_set or (members & chosen_set and not own):
            out[f"S{s:04d}"] = tuple(sorted(members, key=lambda x: order.get(x, 0)))
    return out


def _demand_people(net: Network) -> tuple[list[str], np.ndarray, list[str | None]]:
    """Demand node ids, their population and their settlement id (None outside settlements)."""
    from .metrics import demand_nodes

    demand_ids = [str(x) for x in demand_nodes(net)]
    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    pop = pd.to_numeric(nodes["population"], errors="coerce").reindex(demand_ids).fillna(0.0).to_numpy(float) \
        if "population" in nodes else np.zeros(len(demand_ids))
    settlement = [None if (s is None or (isinstance(s, float) and math.isnan(s))) else str(s)
                  for s in (nodes["settlement_id"].reindex(demand_ids) if "settlement_id" in nodes
                            else [None] * len(demand_ids))]
    return demand_ids, pop, settlement


def _expected_demand(wn: Any, times: np.ndarray, nodes: Sequence[str]) -> np.ndarray:
    """Expected (full) demand in m³/s, times × nodes — what ``wntr.metrics.expected_demand`` gives, vectorised."""
    mult = float(wn.options.hydraulic.demand_multiplier)
    pats: dict[str, np.ndarray] = {}
    out = np.zeros((len(times), len(nodes)))
    for j, name in enumerate(nodes):
        node = wn.get_node(name)
        for d in getattr(node, "demand_timeseries_list", ()):
            if d.pattern is None:
                out[:, j] += d.base_value * mult
                continue
            m = pats.get(d.pattern.name)
            if m is None:
                m = pats[d.pattern.name] = np.array([d.pattern.at(int(t)) for t in times], dtype=float)
            out[:, j] += d.base_value * m * mult
    return out


def _series_groups(wn: Any, links: pd.DataFrame, demand_ids: Sequence[str]) -> dict[str, str]:
    """Pipe → id of its series group (pipes joined through junctions with no demand and only two links).

    Losing any pipe of such a chain leaves the same network: the rest of the chain hangs
    dead-ended from nodes without demand and carries no flow.
    """
    demand = set(demand_ids)
    watched = set()
    for _name, ctl in wn.controls():
        for obj in ctl.requires():
            if hasattr(obj, "node_type"):
                watched.add(obj.name)
    at: dict[str, list[str]] = {}
    for name, row in links.iterrows():
        at.setdefault(row["u"], []).append(name)
        at.setdefault(row["v"], []).append(name)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    junctions = set(wn.junction_name_list)
    for node, ls in at.items():
        if len(ls) != 2 or node not in junctions or node in demand or node in watched:
            continue
        if any(links.at[x, "kind"] not in ("pipe", "cv") or links.at[x, "controlled"] for x in ls):
            continue
        if any(d.base_value for d in wn.get_node(node).demand_timeseries_list):
            continue
        a, b = find(ls[0]), find(ls[1])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in links.index if links.at[x, "kind"] in ("pipe", "cv")}


def _tree_collapse(wn: Any, links: pd.DataFrame, sources: set[str]) -> dict[str, Any]:
    """Dead-end trees of plain pipes: their nodes, links and root junction."""
    import networkx as nx

    g = nx.MultiGraph()
    g.add_nodes_from(wn.node_name_list)
    for name, row in links[links["in_graph"]].iterrows():
        g.add_edge(row["u"], row["v"], key=name)
    in_controls = set()  # nodes that controls watch must stay in the model
    for _name, ctl in wn.controls():
        for obj in ctl.requires():
            if hasattr(obj, "node_type"):
                in_controls.add(obj.name)
    core = nx.MultiGraph(g)
    while True:
        leaves = [n for n in core if core.degree(n) <= 1 and n not in sources]
        if not leaves:
            break
        core.remove_nodes_from(leaves)
    keep = set(core)
    for s in sources:
        if s in g:
            keep.update(g.neighbors(s))
    junctions = set(wn.junction_name_list)
    rest = g.subgraph([n for n in g if n not in keep])
    trees = []
    for comp in sorted(nx.connected_components(rest), key=lambda c: min(c)):
        roots = {nb for n in comp for nb in g.neighbors(n) if nb in keep}
        if len(roots) != 1:
            continue
        root = roots.pop()
        sub = g.subgraph(comp | {root})
        tlinks = [k for _u, _v, k in sub.edges(keys=True)]
        plain = all(links.at[k, "kind"] == "pipe" and not links.at[k, "switch"] for k in tlinks)
        if not plain or root not in junctions or not comp <= junctions or comp & in_controls \
                or sub.number_of_edges() != len(comp) or not nx.is_tree(nx.Graph(sub)):
            continue
        tree = nx.Graph()
        for u, v, k in sub.edges(keys=True):
            tree.add_edge(u, v, name=k)
        trees.append(dict(root=root, nodes=sorted(comp), links=sorted(tlinks), graph=tree))
    return dict(trees=trees)


def _hw_headloss(wn: Any, name: str, q: np.ndarray) -> np.ndarray:
    """EPANET's Hazen-Williams head loss (m) of pipe `name` at flows `q` (m³/s), plus minor loss."""
    pipe = wn.get_link(name)
    L, d, c = pipe.length / _FT, pipe.diameter / _FT, pipe.roughness
    r = 4.727 * L / c ** 1.852 / d ** 4.871
    qa = np.abs(q) / _CFS
    h = r * qa ** 1.852 * _FT
    if pipe.minor_loss:
        area = math.pi * pipe.diameter ** 2 / 4.0
        h = h + pipe.minor_loss * (np.abs(q) / area) ** 2 / (2 * 9.81)
    return h


@dataclass
class _Plan:
    """Everything the sweep needs, built once in the calling process."""

    net: Network
    wn: Any
    payload: dict[str, Any]
    links: pd.DataFrame
    graph: _Graph
    sources: set[str]
    demand_ids: list[str]
    pop: np.ndarray
    settlement: list[str | None]
    baseline: dict[str, Any]
    solver: _Solver
    timings: dict[str, float] = field(default_factory=dict)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _plan(net: Network, *, duration_h: float, engine: str, shortcuts: bool) -> _Plan:
    from .model import to_wntr, write_inp
    from .standards import thresholds

    t0 = time.perf_counter()
    wn = to_wntr(net, duration_h=duration_h)
    wn.options.quality.parameter = "NONE"
    opts = wn.options
    step = int(opts.time.report_timestep)
    duration = int(opts.time.duration)
    if step <= 0 or duration % step or opts.time.report_start:
        raise ConfigError(f"criticality needs a duration that is a whole number of report steps "
                          f"(duration {duration} s, report step {step} s, report start {opts.time.report_start} s)")
    T = duration // step + 1
    lib = _engine_library(engine)
    tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
    try:
        inp_full = write_inp(wn, Path(tmp) / "full.inp").read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    demand_ids, pop, settlement = _demand_people(net)
    expected = _expected_demand(wn, np.arange(T) * step, demand_ids)

    links = _links_info(wn)
    sources = set(wn.reservoir_name_list) | set(wn.tank_name_list)
    graph = _graph(list(wn.node_name_list), sources, links)
    preq = float(opts.hydraulic.required_pressure)
    pmin = float(thresholds()["pdd_minimum_pressure_m"])
    payload: dict[str, Any] = dict(
        lib=lib, engine=engine, inp_full=inp_full, inp_reduced=None, demand_ids=demand_ids, pop=pop,
        expected=expected, pmin=pmin, preq=preq, step_h=step / 3600.0, report_step_s=step, n_reports=T,
        graph_full=graph, screen=False, duration_h=duration_h)
    solver = _Solver(payload)
    t1 = time.perf_counter()
    base = solver.run_full([], heads=True)
    if base["status"] == "error":
        raise HydraulicError(f"the baseline of {wn.name!r} cannot be solved: {base['message']}")
    if base["status"] == "unconverged":
        log.warning("baseline of %s: %s", wn.name, base["message"])
    payload["base_p"] = base["p"]
    plan = _Plan(net=net, wn=wn, payload=payload, links=links, graph=graph, sources=sources,
                 demand_ids=demand_ids, pop=pop, settlement=settlement, baseline=base, solver=solver)
    plan.timings["baseline_s"] = time.perf_counter() - t1
    if shortcuts:
        t2 = time.perf_counter()
        _add_reduced(plan)
        plan.timings["reduced_model_s"] = time.perf_counter() - t2
    plan.timings["plan_s"] = time.perf_counter() - t0
    return plan


def _add_reduced(plan: _Plan) -> None:
    """Build the reduced model (dead-end trees collapsed into their roots) and its screen."""
    import networkx as nx

    from .model import to_wntr, write_inp

    wn, pl = plan.wn, plan.payload
    opts = wn.options
    pstep = int(opts.time.pattern_timestep)
    if opts.hydraulic.headloss != "H-W" or pstep <= 0 or opts.time.pattern_start % pstep \
            or str(opts.hydraulic.demand_model).upper() not in ("PDD", "PDA"):
        log.info("reduced model not used (needs Hazen-Williams head loss, PDD and aligned pattern steps)")
        return
    info = _tree_collapse(wn, plan.links, plan.sources)
    if not info["trees"]:
        return
    duration = int(opts.time.duration)
    K = duration // pstep + 1
    tree_nodes = sorted({n for t in info["trees"] for n in t["nodes"]})
    dem_arr = _expected_demand(wn, np.arange(K) * pstep, tree_nodes)
    dem = {n: dem_arr[:, i] for i, n in enumerate(tree_nodes)}
    screen_p = max(float(pl["preq"]), float(pl["pmin"]) + 1.0) + SCREEN_MARGIN_M
    node_pos = {n: i for i, n in enumerate(wn.node_name_list)}
    base_heads = plan.baseline["heads"]              # report times × all nodes (full model order)
    f_order = [plan.solver.full.node_index(n) - 1 for n in wn.node_name_list]
    base_heads = base_heads[:, f_order]
    T, step = pl["n_reports"], pl["report_step_s"]
    k_of_report = np.minimum((np.arange(T) * step) // pstep, K - 1)
    collapsed: list[dict[str, Any]] = []
    need: dict[str, np.ndarray] = {}
    for tree in info["trees"]:
        root, g = tree["root"], tree["graph"]
        demand = {n: dem[n] for n in tree["nodes"]}
        if not any(np.any(v > 0) for v in demand.values()):
            crit = np.full(K, -np.inf)
        else:
            order = list(nx.bfs_edges(g, root))
            below = {n: demand[n].copy() for n in tree["nodes"]}
            for u, v in reversed(order):
                if u != root:
                    below[u] += below[v]
            hl = {root: np.zeros(K)}
            for u, v in order:
                hl[v] = hl[u] + _hw_headloss(wn, g.edges[u, v]["name"], below[v])
            crit = np.full(K, -np.inf)
            for n in tree["nodes"]:
                if np.any(demand[n] > 0):
                    crit = np.maximum(crit, wn.get_node(n).elevation + hl[n] + screen_p)
        margin = base_heads[:, node_pos[root]] - crit[k_of_report]
        if np.all(margin >= COLLAPSE_MARGIN_M):
            collapsed.append(dict(tree, crit=crit, demand=demand))
            need[root] = np.maximum(need.get(root, np.full(K, -np.inf)), crit)
    if not collapsed:
        return
    red = to_wntr(plan.net, duration_h=pl["duration_h"])
    red.options.quality.parameter = "NONE"
    drop_links, drop_nodes = set(), set()
    for tree in collapsed:
        drop_links.update(tree["links"])
        drop_nodes.update(tree["nodes"])
    for name, row in plan.links.iterrows():  # closed links touching dropped nodes go too
        if row["u"] in drop_nodes or row["v"] in drop_nodes:
            drop_links.add(name)
    root_extra: dict[str, dict[str | None, float]] = {}
    for tree in collapsed:
        acc = root_extra.setdefault(tree["root"], {})
        for n in tree["nodes"]:
            for d in wn.get_node(n).demand_timeseries_list:
                if d.base_value:
                    pat = d.pattern.name if d.pattern is not None else None
                    acc[pat] = acc.get(pat, 0.0) + float(d.base_value)
    for name in sorted(drop_links):
        red.remove_link(name, force=True)
    for name in sorted(drop_nodes):
        red.remove_node(name, force=True)
    for root in sorted(root_extra):
        j = red.get_node(root)
        for pat, base in sorted(root_extra[root].items(), key=lambda kv: str(kv[0])):
            j.add_demand(base, pat)
    tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
    try:
        inp_red = write_inp(red, Path(tmp) / "reduced.inp").read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rnodes = list(red.node_name_list)
    rgraph = _graph(rnodes, plan.sources, _links_info(red))
    dset = set(plan.demand_ids)
    root_of = {n: t["root"] for t in collapsed for n in t["nodes"]}
    watch = [n for n in rnodes if n in need or n in dset or n in root_extra]
    wpos = {n: i for i, n in enumerate(watch)}
    hcrit = np.full((K, len(watch)), -np.inf)
    for n in watch:
        c = np.full(K, -np.inf)
        if n in dset or n in root_extra:
            c = np.maximum(c, red.get_node(n).elevation + screen_p)
        if n in need:
            c = np.maximum(c, need[n])
        hcrit[:, wpos[n]] = c
    demand_watch = np.array([wpos[root_of.get(n, n)] for n in plan.demand_ids], dtype=np.int64)
    pl.update(inp_reduced=inp_red, graph_reduced=rgraph, watch_ids=watch, hcrit=hcrit, pattern_step_s=pstep,
              reduced_links=[x for x in red.link_name_list], demand_watch=demand_watch)
    solver = None
    try:
        solver = _Solver(pl)
        base = solver.run_reduced([], keep=True)
    except Exception as exc:
        log.info("reduced model not used: %s", exc)
        base = None
    if base is None:
        if solver is not None:
            solver.close()
        log.info("reduced model not used: its baseline fails the screen")
        pl.update(inp_reduced=None, screen=False)
        for k in ("graph_reduced", "watch_ids", "hcrit", "reduced_links", "demand_watch"):
            pl.pop(k, None)
        return
    plan.solver.close()
    plan.solver = solver
    pl.update(base_heads_reduced=base["heads"], screen=True)
    plan.timings["reduced_nodes"] = len(rnodes)
    plan.timings["reduced_links"] = len(red.link_name_list)
    log.info("reduced model: %d of %d nodes, %d trees collapsed", len(rnodes), len(wn.node_name_list), len(collapsed))


def _bridges(graph: _Graph) -> set[str]:
    """Names of links (in the open-link graph) whose loss splits it."""
    import networkx as nx

    g = nx.MultiGraph()
    g.add_nodes_from(range(len(graph.nodes)))
    names = graph.fixed_names + graph.switch_names
    uv = np.vstack([graph.fixed_uv, graph.switch_uv]) if len(names) else np.zeros((0, 2), dtype=np.int64)
    for name, (u, v) in zip(names, uv.tolist()):
        g.add_edge(u, v, key=name)
    simple = nx.Graph(g)
    out = set()
    for u, v in nx.bridges(simple):
        if g.number_of_edges(u, v) == 1:
            out.add(next(iter(g[u][v])))
    return out


class _BridgeIndex:
    """Answers single-link bridges in O(size of the cut-off part) from a DFS tree of the open-link graph.

    Every bridge is a tree edge; the part it cuts off is the subtree below it (the DFS
    starts at a source, so the rest always keeps one). Baseline figures per demand node
    are precomputed, so an answer is the baseline with the subtree's demand nodes dry.
    """

    def __init__(self, plan: _Plan, bridges: set[str]) -> None:
        g = plan.graph
        n = len(g.nodes)
        names = g.fixed_names + g.switch_names
        uv = np.vstack([g.fixed_uv, g.switch_uv]) if names else np.zeros((0, 2), dtype=np.int64)
        adj: list[list[int]] = [[] for _ in range(n)]
        for a, b in uv.tolist():
            adj[a].append(b)
            adj[b].append(a)
        tin = np.full(n, -1, dtype=np.int64)
        tout = np.full(n, -1, dtype=np.int64)
        clock = 0
        roots = [int(i) for i in np.flatnonzero(g.sources)] + list(range(n))
        for r in roots:
            if tin[r] >= 0:
                continue
            tin[r] = clock
            clock += 1
            stack = [(r, iter(adj[r]))]
            while stack:
                node, it = stack[-1]
                nxt = next((x for x in it if tin[x] < 0), None)
                if nxt is None:
                    tout[node] = clock - 1
                    stack.pop()
                else:
                    tin[nxt] = clock
                    clock += 1
                    stack.append((nxt, iter(adj[nxt])))
        self.tin, self.tout = tin, tout
        order = np.argsort(tin)
        self.src_prefix = np.concatenate([[0], np.cumsum(g.sources[order])])
        pos = {nm: i for i, nm in enumerate(g.nodes)}
        dn_graph = np.array([pos.get(d, -1) for d in plan.demand_ids], dtype=np.int64)
        dn_tin = np.where(dn_graph >= 0, tin[np.maximum(dn_graph, 0)], -1)
        self.dn_order = np.argsort(dn_tin, kind="stable")
        self.dn_tin_sorted = dn_tin[self.dn_order]
        self.uv = {nm: (int(a), int(b)) for nm, (a, b) in zip(names, uv.tolist()) if nm in bridges}
        pl, base = plan.payload, plan.baseline
        step_h, pop = pl["step_h"], pl["pop"]
        with np.errstate(invalid="ignore"):
            dry_t = (base["p"] < pl["pmin"]) | base["cut"]
        self.base_dry = dry_t.any(axis=0)
        self.base_ph = (dry_t[:-1].astype(float) * pop).sum(axis=0) * step_h
        lost = np.where(base["cut"], pl["expected"], np.clip(base["deficit"], 0.0, None))
        self.base_lost = lost[:-1].sum(axis=0) * step_h * 3600.0
        self.exp_run = pl["expected"][:-1].sum(axis=0) * step_h * 3600.0
        self.hours = (pl["n_reports"] - 1) * step_h
        self.pop = pop
        self.status, self.message = base["status"], base["message"]

    def answer(self, link: str) -> dict[str, Any] | None:
        ab = self.uv.get(link)
        if ab is None:
            return None
        a, b = ab
        c = a if self.tin[a] > self.tin[b] else b
        lo, hi = int(self.tin[c]), int(self.tout[c])
        if self.src_prefix[hi + 1] - self.src_prefix[lo] > 0:
            return None  # a source (tank) below the cut: simulate
        i0, i1 = np.searchsorted(self.dn_tin_sorted, [lo, hi + 1])
        cut = self.dn_order[i0:i1]
        dry = self.base_dry.copy()
        dry[cut] = True
        ph = float(self.base_ph.sum() - self.base_ph[cut].sum() + self.pop[cut].sum() * self.hours)
        lost = float(self.base_lost.sum() - self.base_lost[cut].sum() + self.exp_run[cut].sum())
        return dict(dry_idx=np.flatnonzero(dry).astype(np.int32), person_hours=ph, unserved_m3=lost,
                    drop=math.nan, drop_node="", status=self.status, message=self.message, method="topology")


def _topology_answer(plan: _Plan, links: Sequence[str], base_fed: int, bridges: set[str]) -> dict[str, Any] | None:
    """Consequences from topology alone, or None when the closure must be simulated."""
    g = plan.graph
    in_graph = [x for x in links if x in g._fixed_pos or x in g.switch_names]
    if not in_graph:
        return _from_baseline(plan, np.zeros(len(g.nodes), dtype=bool), "no link of it is open in the model")
    if len(links) == 1 and links[0] not in bridges:
        return None
    all_names = g.fixed_names + g.switch_names
    uv = np.vstack([g.fixed_uv, g.switch_uv])
    lost = set(links)
    keep = np.array([n not in lost for n in all_names], dtype=bool)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = uv[keep]
    n = len(g.nodes)
    nc, lab = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    fed = np.zeros(nc, dtype=bool)
    fed[lab[g.sources]] = True
    if int(fed.sum()) != base_fed:
        return None  # the closure splits the supplied part: simulate
    dry_nodes = ~fed[lab]
    if not dry_nodes.any():
        return None
    for name in in_graph:
        u, v = uv[all_names.index(name)]
        if not dry_nodes[u] and not dry_nodes[v]:
            return None  # the lost link also joined supplied nodes
    return _from_baseline(plan, dry_nodes, "")


def _from_baseline(plan: _Plan, dry_graph: np.ndarray, message: str) -> dict[str, Any]:
    """Baseline consequences with the demand nodes in `dry_graph` (graph order) dry all run."""
    pl, base = plan.payload, plan.baseline
    pos = {nm: i for i, nm in enumerate(plan.graph.nodes)}
    dn_dry = np.array([dry_graph[pos[d]] if d in pos else True for d in plan.demand_ids], dtype=bool)
    cut = base["cut"] | dn_dry[None, :]
    cons = _consequences(base["p"], cut, base["deficit"], pl, None)
    cons.update(status=base["status"], message=message or base["message"], method="topology")
    return _compact(cons)


# ----------------------------------------------------------------------------- execution

def _connect(scheduler: str, timeout_s: float = 5.0) -> Any:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover
        raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    try:
        return Client(scheduler, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} within {timeout_s:g} s "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}); "
                          "start one with `dask scheduler` and workers with `dask worker <address>`, "
                          "or run without --scheduler") from None


def _chunks(items: list[tuple[str, tuple[str, ...]]], workers: int) -> list[list[tuple[str, tuple[str, ...]]]]:
    """Small chunks (the slow elements come first, so the tail of the sweep stays balanced)."""
    if not items:
        return []
    size = max(1, min(8, math.ceil(len(items) / (10 * max(workers, 1)))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run(plan: _Plan, items: list[tuple[str, tuple[str, ...]]], *, workers: int, client: Any,
         progress: Callable[[int, int], None] | None, done0: int, total: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    done = done0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    if not items:
        return out
    if client is not None:
        from distributed import as_completed

        payload = dict(plan.payload, key=hashlib.sha1(plan.payload["inp_full"] + (plan.payload["inp_reduced"] or b"")
                                                      + plan.payload["engine"].encode()).hexdigest())
        fut_payload = client.scatter([payload], broadcast=True)[0]
        nworkers = max(1, len(client.scheduler_info().get("workers", {})))
        futures = [client.submit(_dask_chunk, fut_payload, chunk, pure=False) for chunk in _chunks(items, nworkers)]
        try:
            for fut in as_completed(futures, loop=client.loop):
                res = fut.result()
                out.extend(res)
                tick(len(res))
        finally:
            client.cancel(futures)
        return out
    if workers <= 1 or len(items) <= 2:
        solver = plan.solver
        for cid, links in items:
            out.append(solver.solve(cid, links))
            tick(1)
        return out
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    chunks = _chunks(items, workers)
    # forkserver: workers start from a clean server process (no threads inherited, no re-run of an
    # unguarded __main__); spawn where forkserver does not exist (Windows)
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx, initializer=_init_worker,
                             initargs=(plan.payload,)) as pool:
        pending = {pool.submit(_local_chunk, c) for c in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                res = fut.result()
                out.extend(res)
                tick(len(res))
    return out


def _table(plan: _Plan, closures: Mapping[str, tuple[str, ...]], answers: Mapping[str, dict[str, Any]],
           *, segments: bool) -> pd.DataFrame:
    net = plan.net
    pipes = net["pipes"].set_index(net["pipes"]["id"].astype(str))
    cls = pipes["class"].astype(str) if "class" in pipes else pd.Series("main", index=pipes.index)
    length = pd.to_numeric(pipes["length_m"], errors="coerce") if "length_m" in pipes else pipes.geometry.length
    st = net.get("settlements")
    names_zh, names_en = {}, {}
    if st is not None and len(st):
        for row in st.itertuples(index=False):
            names_zh[str(row.id)] = str(getattr(row, "name_zh", "") or "")
            names_en[str(row.id)] = str(getattr(row, "name_en", "") or "")
    rows = []
    for cid, links in closures.items():
        a = answers[cid]
        plinks = [x for x in links if x in pipes.index]
        rec: dict[str, Any] = dict(
            id=cid, kind="segment" if segments else "pipe",
            **{"class": ("main" if any(cls.get(x) == "main" for x in plinks) else "branch") if plinks else ""},
            length_m=float(length.reindex(plinks).sum()) if plinks else 0.0,
            n_links=len(links), links=";".join(links))
        dry = a.get("dry_idx")
        if a.get("status") == "error" or dry is None:
            rec.update(people_without_water=np.nan, person_hours_without_water=np.nan, demand_not_served_m3=np.nan,
                       settlements_affected="", settlements_zh="", settlements_en="", nodes_without_water=np.nan,
                       nodes_without_water_ids="", worst_pressure_drop_m=np.nan, worst_drop_node="")
        else:
            ids = [plan.demand_ids[i] for i in dry]
            sids = sorted({plan.settlement[i] for i in dry if plan.settlement[i]})
            rec.update(people_without_water=int(round(float(plan.pop[dry].sum()))),
                       person_hours_without_water=float(a["person_hours"]),
                       demand_not_served_m3=float(a["unserved_m3"]),
                       settlements_affected=";".join(sids),
                       settlements_zh="、".join(names_zh.get(s, s) for s in sids),
                       settlements_en="; ".join(names_en.get(s, s) for s in sids),
                       nodes_without_water=len(ids), nodes_without_water_ids=";".join(ids),
                       worst_pressure_drop_m=float(a.get("drop", np.nan)), worst_drop_node=a.get("drop_node", ""))
        rec.update(method=a.get("method", ""), status=a.get("status", "error"), message=a.get("message", ""))
        rows.append(rec)
    df = pd.DataFrame(rows)
    if not len(df):
        df = pd.DataFrame(columns=["id", "kind", "class", "length_m", "n_links", "links", *CONSEQUENCE_COLUMNS,
                                   "nodes_without_water_ids", "method", "status", "message"])
    df["people_without_water"] = df["people_without_water"].astype("Int64")
    df["nodes_without_water"] = df["nodes_without_water"].astype("Int64")
    df = df.sort_values(["people_without_water", "person_hours_without_water", "demand_not_served_m3", "id"],
                        ascending=[False, False, False, True], na_position="last", kind="mergesort")
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df = df.set_index("id")
    cols = ["rank", "kind", "class", "length_m", *CONSEQUENCE_COLUMNS, "method", "status", "message", "n_links",
            "links", "nodes_without_water_ids"]
    return df[cols]


def pipe_criticality(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                     duration_h: float = 24, workers: int | None = None, scheduler: str | None = None,
                     progress: Callable[[int, int], None] | None = None, engine: str = "epanet2.2",
                     shortcuts: bool = True, timings: dict[str, float] | None = None) -> pd.DataFrame:
    """Rank pipes (or valve-isolation segments) by the people left without water when they are lost.

    Parameters
    ----------
    net
        Network layers (see :mod:`watersupply.schema`).
    pipes
        ``"all"``, ``"main"``, ``"branch"``, a comma-separated string or an iterable of pipe ids.
    segments
        Analyse valve-isolation segments (needs the ``valves`` layer) holding the selected pipes.
    duration_h
        Simulated hours; each element is lost for the whole run.
    workers
        Local worker processes (default: the number of cores); 1 runs in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``); the work then runs on
        its workers and `workers` is ignored.
    progress
        Called as ``progress(done, total)`` while elements are answered.
    engine
        ``"epanet2.2"`` (WNTR's bundled library, the recipe's engine) or ``"epanet2.3"`` (owa-epanet).
    shortcuts
        Use the topology answers and the reduced-model screen (default). ``False`` solves every
        element on the full model — slower, for verification.
    timings
        If given, filled with wall times (s) and counts of the phases.

    Returns
    -------
    DataFrame
        Indexed by element id, ranked (``rank``) by people without water, then person-hours, then
        demand not served; columns :data:`CONSEQUENCE_COLUMNS` plus ``kind``, ``class``,
        ``length_m``, ``method`` (topology, reduced, full), ``status`` (ok, unconverged, error),
        ``message``, ``n_links``, ``links`` and ``nodes_without_water_ids``.

    Raises
    ------
    NetworkDataError
        Unknown pipe ids, or segments without a valves layer.
    ConfigError
        ``workers`` < 1, a bad engine or duration, or an unreachable scheduler (within 10 s).
    HydraulicError
        The baseline itself cannot be solved.

    Examples
    --------
    >>> from watersupply.io import get_path, read_network
    >>> table = pipe_criticality(read_network(get_path("tonghui")), pipes="M00001,M00002", workers=1)
    >>> list(table.columns[:3])
    ['rank', 'kind', 'class']
    """
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    if not (isinstance(duration_h, (int, float)) and duration_h > 0):
        raise ConfigError(f"duration_h must be > 0, got {duration_h!r}")
    _check_engine(engine)
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    client = _connect(scheduler) if scheduler else None
    try:
        from .model import to_wntr

        closures = closure_sets(net, pipes=pipes, segments=segments,
                                wn=to_wntr(net, duration_h=duration_h) if segments else None)
        plan = _plan(net, duration_h=float(duration_h), engine=engine, shortcuts=shortcuts)
        timings.update(plan.timings)
        t1 = time.perf_counter()
        answers: dict[str, dict[str, Any]] = {}
        todo: list[tuple[str, tuple[str, ...]]] = []
        same_as: dict[str, str] = {}
        if shortcuts:
            bridges = _bridges(plan.graph)
            base_fed = _fed_count(plan.graph)
            index = _BridgeIndex(plan, bridges)
            for cid, links in closures.items():
                ans = index.answer(links[0]) if len(links) == 1 and links[0] in bridges else None
                if ans is None:
                    ans = _topology_answer(plan, links, base_fed, bridges)
                if ans is None:
                    todo.append((cid, links))
                else:
                    answers[cid] = ans
            # links in series through nodes without demand: losing one or several of a chain is the
            # same as losing the chain, so closures that cut the same chains share one solve
            groups = _series_groups(plan.wn, plan.links, plan.demand_ids)
            first: dict[frozenset[str], str] = {}
            keep = []
            for cid, links in todo:
                rep = first.setdefault(frozenset(groups.get(x, x) for x in links), cid)
                if rep == cid:
                    keep.append((cid, links))
                else:
                    same_as[cid] = rep
            todo = keep
            # closures that split the supplied network (a tank behind the cut) are the slow ones: first
            todo.sort(key=lambda item: 0 if len(item[1]) > 1 or item[1][0] in bridges else 1)
        else:
            todo = list(closures.items())
        timings["topology_s"] = time.perf_counter() - t1
        timings["topology_answers"] = len(answers)
        timings["series_answers"] = len(same_as)
        total = len(closures)
        if progress is not None:
            progress(len(answers), total)
        t2 = time.perf_counter()
        nworkers = workers if workers is not None else (os.cpu_count() or 1)
        for res in _run(plan, todo, workers=nworkers, client=client, progress=progress, done0=len(answers),
                        total=total - len(same_as)):
            answers[res["id"]] = res
        for cid, rep in same_as.items():
            a = answers[rep]
            note = f"same as {rep} (cuts the same chain of links in series through nodes without demand)"
            answers[cid] = dict(a, id=cid, method="series", message=f"{note}; {a['message']}" if a.get("message")
                                else note)
        if progress is not None and same_as:
            progress(total, total)
        timings["hydraulic_s"] = time.perf_counter() - t2
        timings["hydraulic_answers"] = len(todo)
        timings["reduced_answers"] = sum(1 for a in answers.values() if a.get("method") == "reduced")
        timings["full_answers"] = sum(1 for a in answers.values() if a.get("method") == "full")
        table = _table(plan, closures, answers, segments=segments)
        plan.solver.close()
    finally:
        if client is not None:
            client.close()
    timings["total_s"] = time.perf_counter() - t0
    bad = table[table["status"] != "ok"]
    if len(bad):
        log.warning("%d of %d elements did not solve cleanly (status column): %s", len(bad), len(table),
                    ", ".join(bad.index[:5]))
    return table


def _fed_count(graph: _Graph) -> int:
    """Number of components of the open-link graph (all switchable links open) holding a source."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, nc = graph.base([])
    uv = graph.switch_uv
    if len(uv):
        a, b = labels[uv[:, 0]], labels[uv[:, 1]]
        _, sup = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(nc, nc)), directed=False)
    else:
        sup = np.arange(nc)
    return int(len(np.unique(sup[labels][graph.sources])))


# ----------------------------------------------------------------------------- the recipe

def reference_criticality(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                          duration_h: float = 24, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The usual recipe, for verification: copy the model, close the element, run WNTR's EpanetSimulator.

    Same definitions and columns as :func:`pipe_criticality` (``method`` is ``recipe``); the
    worst pressure drop is computed for every element. About 1–3 s per element on Tonghui.
    """
    import copy

    import wntr
    from wntr.network.base import LinkStatus

    from .model import to_wntr
    from .engine import quiet_stdout

    wn = to_wntr(net, duration_h=duration_h)
    wn.options.quality.parameter = "NONE"
    closures = closure_sets(net, pipes=pipes, segments=segments, wn=wn)
    plan_like = _recipe_context(net, wn)
    links_info = _links_info(wn)
    graph = _graph(list(wn.node_name_list), plan_like["sources"], links_info)
    controls_of: dict[str, list[str]] = {}
    for cname, ctl in wn.controls():
        for act in ctl.actions():
            obj = act.target()[0]
            controls_of.setdefault(getattr(obj, "name", ""), []).append(cname)

    def solve(links: Sequence[str]) -> dict[str, Any]:
        w2 = copy.deepcopy(wn)
        for x in links:
            for cname in controls_of.get(x, []):
                if cname in w2.control_name_list:
                    w2.remove_control(cname)
            w2.get_link(x).initial_status = LinkStatus.Closed
        with tempfile.TemporaryDirectory(prefix="watersupply-recipe-") as tmp:
            prefix = str(Path(tmp) / "run")
            try:
                with quiet_stdout():
                    res = wntr.sim.EpanetSimulator(w2).run_sim(file_prefix=prefix, version=2.2)
            except Exception as exc:  # WNTR 1.5 may raise a bare ValueError when EPANET stops
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                return dict(status="error", message=f"{type(exc).__name__}: {msg}")
            rpt = Path(prefix + ".rpt").read_text(errors="replace") if Path(prefix + ".rpt").exists() else ""
        status, message = "ok", ""
        low = rpt.lower()
        if "unbalanced" in low or "unstable" in low:
            line = next(ln.strip() for ln in rpt.splitlines() if "unbalanced" in ln.lower() or "unstable" in ln.lower())
            status, message = "unconverged", line
        ctx = plan_like
        T = ctx["n_reports"]
        pr = res.node["pressure"]
        if len(pr) < T:
            return dict(status="error", message=f"EPANET stopped after {len(pr)} of {T} report times")
        p = pr.reindex(columns=ctx["demand_ids"]).to_numpy(float)[:T]
        delivered = res.node["demand"].reindex(columns=ctx["demand_ids"]).to_numpy(float)[:T]
        st = res.link["status"]
        closed = set(links)
        cut = np.zeros_like(p, dtype=bool)
        pos = {n: i for i, n in enumerate(graph.nodes)}
        dpos = np.array([pos.get(n, -1) for n in ctx["demand_ids"]])
        base = graph.base(closed)
        for r in range(T):
            sw = np.array([(st.iloc[r][x] != 0) and x not in closed for x in graph.switch_names], dtype=bool)
            c = graph.cut_off(base, sw)
            cut[r] = np.where(dpos >= 0, c[dpos], True)
        return dict(status=status, message=message, p=p, cut=cut, deficit=ctx["expected"] - delivered)

    base = solve(())
    if base["status"] == "error":
        raise HydraulicError(f"the baseline of {wn.name!r} cannot be solved: {base['message']}")
    answers = {}
    for k, (cid, links) in enumerate(closures.items()):
        raw = solve(links)
        if raw["status"] == "error":
            answers[cid] = dict(status="error", message=raw["message"], method="recipe")
        else:
            cons = _consequences(raw["p"], raw["cut"], raw["deficit"], plan_like, base["p"])
            cons.update(status=raw["status"], message=raw["message"], method="recipe")
            answers[cid] = _compact(cons)
        if progress is not None:
            progress(k + 1, len(closures))

    @dataclass
    class _P:  # the few fields _table reads
        net: Network
        demand_ids: list[str]
        pop: np.ndarray
        settlement: list[str | None]

    return _table(_P(net, plan_like["demand_ids"], plan_like["pop"], plan_like["settlement"]),  # type: ignore[arg-type]
                  closures, answers, segments=segments)


def _recipe_context(net: Network, wn: Any) -> dict[str, Any]:
    import wntr

    from .standards import thresholds

    step = int(wn.options.time.report_timestep)
    duration = int(wn.options.time.duration)
    T = duration // step + 1
    demand_ids, pop, settlement = _demand_people(net)
    exp = wntr.metrics.expected_demand(wn, start_time=0, end_time=duration, timestep=step)
    return dict(demand_ids=demand_ids, pop=pop, settlement=settlement, n_reports=T, step_h=step / 3600.0,
                pmin=float(thresholds()["pdd_minimum_pressure_m"]),
                expected=exp.reindex(columns=demand_ids).fillna(0.0).to_numpy(float)[:T],
                sources=set(wn.reservoir_name_list) | set(wn.tank_name_list))


# ----------------------------------------------------------------------------- outputs

def criticality_layer(net: Network, table: pd.DataFrame) -> Any:
    """The pipes layer with the consequence columns (one row per pipe; segments repeat on their pipes).

    Returns a GeoDataFrame in the network's CRS, ordered by rank, with
    ``people_without_water`` for colouring and ``segment_id`` when the table is of segments.
    """
    import geopandas as gpd

    pipes = net["pipes"]
    if not isinstance(pipes, gpd.GeoDataFrame) or pipes.crs is None:
        raise NetworkDataError("layer 'pipes' needs geometry and a CRS to make the criticality layer")
    cols = ["rank", *CONSEQUENCE_COLUMNS, "method", "status", "message"]
    tab = table[cols].copy()
    tab["rank"] = tab["rank"].astype(int)
    if len(table) and (table["kind"] == "segment").any():
        rows = []
        for sid, links in table["links"].items():
            for lk in str(links).split(";"):
                rows.append((lk, sid))
        m = pd.DataFrame(rows, columns=["pipe", "segment_id"]).drop_duplicates("pipe")
        tab = m.merge(tab, left_on="segment_id", right_index=True).set_index("pipe")
    base = pipes[["id", "class", "diameter_mm", "geometry"]].copy() if "class" in pipes \
        else pipes[["id", "diameter_mm", "geometry"]].copy()
    base["id"] = base["id"].astype(str)
    out = base.merge(tab, left_on="id", right_index=True, how="inner")
    out = out.sort_values(["rank", "id"], kind="mergesort").reset_index(drop=True)
    for c in ("people_without_water", "nodes_without_water"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=pipes.crs)


def write_criticality(net: Network, table: pd.DataFrame, out_dir: str | os.PathLike, *,
                      make_map: bool = True, title: str = "") -> dict[str, Path]:
    """Write ``criticality.csv``, the ``criticality`` layer of ``results.gpkg`` and ``criticality_map.html``.

    An existing ``results.gpkg`` keeps its other layers (it is rewritten atomically with
    the ``criticality`` layer replaced). Every file goes through the atomic writers of
    :mod:`watersupply.io`.
    """
    import pyogrio

    from .io import write_csv, write_layers

    out = Path(out_dir)
    files: dict[str, Path] = {}
    layer = criticality_layer(net, table)
    csv = table.drop(columns=["nodes_without_water_ids"]).copy()
    if not (csv["kind"] == "segment").any():
        csv = csv.drop(columns=["n_links", "links"])
    gpkg = out / "results.gpkg"
    layers: dict[str, Any] = {}
    if gpkg.is_file():
        try:
            for name, _geom in pyogrio.list_layers(gpkg):
                if str(name) != "criticality":
                    layers[str(name)] = pyogrio.read_dataframe(gpkg, layer=str(name))
        except Exception as exc:
            raise NetworkDataError(f"{gpkg}: exists but cannot be read ({exc}); move it away or choose another "
                                   "output folder with -o") from None
    layers["criticality"] = layer
    files["criticality.csv"] = write_csv(csv, out / "criticality.csv")
    files["results.gpkg"] = write_layers(layers, gpkg)
    if make_map:
        from .maps import CriticalityOverlay, render_service_map

        map_layers: dict[str, Any] = {"pipes": layer}
        for name in ("settlements", "facilities"):
            if name in net and len(net[name]):
                map_layers[name] = net[name]
        people = layer.set_index("id")["people_without_water"]
        files["criticality_map.html"] = render_service_map(map_layers, out_html=out / "criticality_map.html",
                                                           title=title, overlay=CriticalityOverlay(people=people))
    return files
