"""The EPANET engine: the one place that talks to the EPANET toolkit.

- :func:`quiet_stdout` silences what the C library prints on the console;
- :func:`engine_library` finds the shared library of an engine (WNTR's bundled
  EPANET 2.2, or owa-epanet's 2.3) and :func:`library` loads it by path with ctypes;
- :class:`Project` is one in-memory toolkit project (hydraulics and quality)
  used by criticality and by the audit's trace runs. Every toolkit call's
  return code is checked: errors (>= 100) raise :class:`~watersupply.HydraulicError`
  naming the element and the call; warnings (1–6) are returned to the caller,
  which counts and reports them (:data:`WARNINGS`).

Toolkit codes come from WNTR's :class:`wntr.epanet.util.EN` enum; the few that
enum lacks are declared below with the value of EPANET's ``epanet2_enums.h``
(``tests/test_engine.py`` checks them against owa-epanet's enums).

>>> EN.PRESSURE, EN_DEMANDDEFICIT
(<EN.PRESSURE: 11>, 27)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from wntr.epanet.util import EN

from ._errors import ConfigError, HydraulicError, NetworkDataError

__all__ = [
    "quiet_stdout", "ENGINES", "EN", "EN_DEMANDDEFICIT", "EN_UNCONDITIONAL", "EN_PUMP_HCURVE", "EN_TRIALS",
    "EN_UNBALANCED", "WARNINGS",
    "engine_library", "library", "en_message", "Project",
]

#: EPANET engines: WNTR's bundled 2.2 library (default) or owa-epanet's 2.3 library.
ENGINES = ("epanet2.2", "epanet2.3")

#: Toolkit codes WNTR's ``EN`` enum lacks (EPANET 2.2 ``epanet2_enums.h``: EN_NodeProperty,
#: EN_ActionCodeType), checked against owa-epanet in the tests.
EN_DEMANDDEFICIT = 27
EN_UNCONDITIONAL = 0
#: Link property: index of a pump's head curve (epanet2_enums.h EN_PUMP_HCURVE).
EN_PUMP_HCURVE = 19
#: Analysis options (epanet2_enums.h EN_Option): hydraulic trials, and UNBALANCED (< 0 STOP, else
#: CONTINUE with that many extra trials). WNTR's ``EN`` folds these codes into other names.
EN_TRIALS = 0
EN_UNBALANCED = 14

#: EPANET warning codes (returned by the hydraulic calls; the run goes on).
WARNINGS = {
    1: "system hydraulically unbalanced",
    2: "system may be hydraulically unstable",
    3: "system disconnected",
    4: "pumps cannot deliver enough flow or head",
    5: "valves cannot deliver enough flow",
    6: "system has negative pressures",
}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence what the EPANET C library prints on the process's stdout (file descriptor 1).

    Works on the descriptor itself, so it also holds where ``sys.stdout`` is
    replaced (Jupyter kernels, pytest capture).

    >>> with quiet_stdout():
    ...     _ = os.write(1, b"hidden")
    """
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def engine_library(engine: str) -> str:
    """Path of the EPANET shared library for `engine` (no import of its Python wrapper).

    >>> Path(engine_library("epanet2.2")).is_file()
    True
    """
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


_LIBS: dict[str, ctypes.CDLL] = {}  # loaded libraries never change: no invalidation needed


def library(path: str) -> ctypes.CDLL:
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
        "EN_openQ": [vp], "EN_initQ": [vp, ci], "EN_runQ": [vp, pl], "EN_nextQ": [vp, pl], "EN_closeQ": [vp],
        "EN_getcount": [vp, ci, pi], "EN_getnodeindex": [vp, ctypes.c_char_p, pi],
        "EN_getlinkindex": [vp, ctypes.c_char_p, pi], "EN_getnodevalue": [vp, ci, ci, pd_],
        "EN_setnodevalue": [vp, ci, ci, cd], "EN_getnodetype": [vp, ci, pi],
        "EN_getlinktype": [vp, ci, pi], "EN_setlinktype": [vp, pi, ci, ci],
        "EN_getlinkvalue": [vp, ci, ci, pd_], "EN_setlinkvalue": [vp, ci, ci, cd],
        "EN_getcontrol": [vp, ci, pi, pi, pd_, pi, pd_], "EN_setcontrol": [vp, ci, ci, ci, cd, ci, cd],
        "EN_getnumdemands": [vp, ci, pi], "EN_getbasedemand": [vp, ci, ci, pd_],
        "EN_setbasedemand": [vp, ci, ci, cd], "EN_getoption": [vp, ci, pd_], "EN_setoption": [vp, ci, cd],
        "EN_getnodeid": [vp, ci, ctypes.c_char_p], "EN_getlinkid": [vp, ci, ctypes.c_char_p],
        "EN_getcurvelen": [vp, ci, pi], "EN_getcurvevalue": [vp, ci, ci, pd_, pd_],
        "EN_setcurvevalue": [vp, ci, ci, cd, cd],
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


def en_message(code: int) -> str:
    """EPANET's text for an error or warning code.

    >>> en_message(207)
    'EPANET error 207: attempt to control a CV/GPV link'
    """
    from wntr.epanet.exceptions import EN_ERROR_CODES

    if code in WARNINGS:
        return f"EPANET warning {code}: {WARNINGS[code]}"
    text = EN_ERROR_CODES.get(code, "unknown error")
    return f"EPANET error {code}: {text.replace('%s', '').strip().rstrip(',').strip()}"


class Project:
    """One EPANET project opened from an INP file (stateful: the toolkit's handle).

    Parameters
    ----------
    inp
        Path of the INP file.
    engine
        One of :data:`ENGINES`.
    report
        Path of EPANET's report file (default: none).
    hydraulics
        Open the hydraulic solver at once.

    Every call checks its return code: an error raises :class:`HydraulicError`
    naming the call and the element; warnings are returned (hydraulic steps) so
    that callers can count them.
    """

    def __init__(self, inp: str | os.PathLike, *, engine: str = "epanet2.2", report: str | os.PathLike | None = None,
                 hydraulics: bool = True) -> None:
        self.lib = lib = library(engine_library(engine))
        self.engine = engine
        self.ph = ctypes.c_void_p()
        self._h_open = self._q_open = False
        self._t = ctypes.c_long()
        self._v = ctypes.c_double()
        self._i = ctypes.c_int()
        self._check(lib.EN_createproject(ctypes.byref(self.ph)), "create a project")
        code = lib.EN_open(self.ph, str(inp).encode("utf-8"), str(report or os.devnull).encode(), b"")
        if code >= 100:
            lib.EN_deleteproject(self.ph)
            self.ph = ctypes.c_void_p()
            raise HydraulicError(f"EPANET cannot open the model {Path(inp).name}: {en_message(code)}")
        self.n_nodes = self._count(EN.NODECOUNT)
        self.n_links = self._count(EN.LINKCOUNT)
        self.n_controls = self._count(EN.CONTROLCOUNT)
        self._bulk = hasattr(lib, "EN_getnodevalues")
        self._buf = np.zeros(self.n_nodes, dtype=np.float64)
        self._controls: dict[int, list[tuple[int, int, int, float, int, float]]] | None = None
        if hydraulics:
            self.open_hydraulics()

    # -- plumbing
    def _check(self, code: int, what: str) -> int:
        """Raise on an EPANET error (>= 100); return the code (0 or a warning) otherwise."""
        if code >= 100:
            raise HydraulicError(f"EPANET could not {what}: {en_message(code)}")
        return int(code)

    def _count(self, what: int) -> int:
        self._check(self.lib.EN_getcount(self.ph, int(what), ctypes.byref(self._i)), f"count objects ({what})")
        return self._i.value

    def node_name(self, index: int) -> str:
        buf = ctypes.create_string_buffer(64)
        self._check(self.lib.EN_getnodeid(self.ph, int(index), buf), f"read the id of node index {index}")
        return buf.value.decode("utf-8")

    def link_name(self, index: int) -> str:
        buf = ctypes.create_string_buffer(64)
        self._check(self.lib.EN_getlinkid(self.ph, int(index), buf), f"read the id of link index {index}")
        return buf.value.decode("utf-8")

    def close(self) -> None:
        """Close the solvers and the project (safe to call twice)."""
        if self.ph:
            if self._q_open:
                self.lib.EN_closeQ(self.ph)
            if self._h_open:
                self.lib.EN_closeH(self.ph)
            self.lib.EN_close(self.ph)
            self.lib.EN_deleteproject(self.ph)
            self.ph = ctypes.c_void_p()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- elements
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

    def node_type(self, index: int) -> int:
        """0 junction, 1 reservoir, 2 tank (1-based `index`; epanet2_enums.h EN_NodeType)."""
        self._check(self.lib.EN_getnodetype(self.ph, index, ctypes.byref(self._i)),
                    f"read the type of node {self.node_name(index)!r}")
        return self._i.value

    def link_type(self, index: int) -> int:
        self._check(self.lib.EN_getlinktype(self.ph, index, ctypes.byref(self._i)),
                    f"read the type of link {self.link_name(index)!r}")
        return self._i.value

    def set_link_type(self, index: int, kind: int) -> None:
        """Change a link's type (only pipe ↔ check-valve pipe keeps its index; anything else is refused)."""
        if {self.link_type(index), int(kind)} - {int(EN.CVPIPE), int(EN.PIPE)}:
            raise HydraulicError(f"link {self.link_name(index)!r}: only a pipe can become a CV pipe and back")
        i = ctypes.c_int(index)
        self._check(self.lib.EN_setlinktype(self.ph, ctypes.byref(i), int(kind), EN_UNCONDITIONAL),
                    f"change the type of link {self.link_name(index)!r}")

    def get_link(self, index: int, prop: int) -> float:
        self._check(self.lib.EN_getlinkvalue(self.ph, index, int(prop), ctypes.byref(self._v)),
                    f"read property {int(prop)} of link {self.link_name(index)!r}")
        return self._v.value

    def set_link(self, index: int, prop: int, value: float) -> None:
        self._check(self.lib.EN_setlinkvalue(self.ph, index, int(prop), float(value)),
                    f"set property {int(prop)} of link {self.link_name(index)!r} to {value:g}")

    def get_node(self, index: int, prop: int) -> float:
        self._check(self.lib.EN_getnodevalue(self.ph, index, int(prop), ctypes.byref(self._v)),
                    f"read property {int(prop)} of node {self.node_name(index)!r}")
        return self._v.value

    def set_node(self, index: int, prop: int, value: float) -> None:
        self._check(self.lib.EN_setnodevalue(self.ph, index, int(prop), float(value)),
                    f"set property {int(prop)} of node {self.node_name(index)!r} to {value:g}")

    def set_option(self, option: int, value: float) -> None:
        self._check(self.lib.EN_setoption(self.ph, int(option), float(value)), f"set option {int(option)}")

    def curve_points(self, index: int) -> list[tuple[float, float]]:
        """The (x, y) points of curve `index` (1-based), in the model's units."""
        self._check(self.lib.EN_getcurvelen(self.ph, int(index), ctypes.byref(self._i)), f"read curve {index}")
        x, y, pts = ctypes.c_double(), ctypes.c_double(), []
        for j in range(1, self._i.value + 1):
            self._check(self.lib.EN_getcurvevalue(self.ph, int(index), j, ctypes.byref(x), ctypes.byref(y)),
                        f"read point {j} of curve {index}")
            pts.append((x.value, y.value))
        return pts

    def set_curve_point(self, index: int, point: int, x: float, y: float) -> None:
        """Set point `point` (1-based) of curve `index` (1-based)."""
        self._check(self.lib.EN_setcurvevalue(self.ph, int(index), int(point), float(x), float(y)),
                    f"set point {point} of curve {index} to ({x:g}, {y:g})")

    def get_option(self, option: int) -> float:
        self._check(self.lib.EN_getoption(self.ph, int(option), ctypes.byref(self._v)), f"read option {int(option)}")
        return self._v.value

    def base_demands(self, index: int) -> list[float]:
        """Base demands of a node's demand categories (in the model's flow units)."""
        self._check(self.lib.EN_getnumdemands(self.ph, index, ctypes.byref(self._i)),
                    f"count the demands of node {self.node_name(index)!r}")
        out = []
        for k in range(1, self._i.value + 1):
            self._check(self.lib.EN_getbasedemand(self.ph, index, k, ctypes.byref(self._v)),
                        f"read demand {k} of node {self.node_name(index)!r}")
            out.append(self._v.value)
        return out

    def set_base_demands(self, index: int, values: Sequence[float]) -> None:
        for k, v in enumerate(values, start=1):
            self._check(self.lib.EN_setbasedemand(self.ph, index, k, float(v)),
                        f"set demand {k} of node {self.node_name(index)!r}")

    def node_values(self, prop: int, idx: np.ndarray) -> np.ndarray:
        """Values of a node property at 1-based indices `idx` (one bulk call on EPANET 2.3)."""
        if self._bulk:
            self._check(self.lib.EN_getnodevalues(self.ph, int(prop), self._buf.ctypes.data_as(
                ctypes.POINTER(ctypes.c_double))), f"read property {int(prop)} of every node")
            return self._buf[idx - 1].copy()
        get, ph, v = self.lib.EN_getnodevalue, self.ph, self._v
        ref = ctypes.byref(v)
        prop = int(prop)
        out = np.empty(len(idx), dtype=np.float64)
        for k, i in enumerate(idx.tolist()):
            if get(ph, i, prop, ref):
                self._check(get(ph, i, prop, ref), f"read property {prop} of node {self.node_name(i)!r}")
            out[k] = v.value
        return out

    def links_open(self, idx: Sequence[int]) -> np.ndarray:
        """Whether each link (1-based indices) is open at the current time (EN_STATUS)."""
        get, ph, v = self.lib.EN_getlinkvalue, self.ph, self._v
        ref = ctypes.byref(v)
        status = int(EN.STATUS)
        out = np.empty(len(idx), dtype=bool)
        for k, i in enumerate(idx):
            if get(ph, i, status, ref):
                self._check(get(ph, i, status, ref), f"read the status of link {self.link_name(i)!r}")
            out[k] = v.value > 0.5
        return out

    # -- closing links for a whole run
    def _control_table(self) -> dict[int, list[tuple[int, int, int, float, int, float]]]:
        if self._controls is None:
            self._controls = {}
            ty, li, ni = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            st, lv = ctypes.c_double(), ctypes.c_double()
            for c in range(1, self.n_controls + 1):
                self._check(self.lib.EN_getcontrol(self.ph, c, ctypes.byref(ty), ctypes.byref(li), ctypes.byref(st),
                                                   ctypes.byref(ni), ctypes.byref(lv)), f"read control {c}")
                self._controls.setdefault(li.value, []).append((c, ty.value, li.value, st.value, ni.value, lv.value))
        return self._controls

    def _retype(self, idx: Sequence[int], kind: int) -> None:
        """Change link types; EPANET allows it only with the hydraulic solver closed (error 262)."""
        if not idx:
            return
        reopen = self._h_open
        self.close_hydraulics()
        for i in idx:
            self.set_link_type(i, kind)
        if reopen:
            self.open_hydraulics()

    def close_links(self, idx: Sequence[int]) -> list[tuple[int, float, bool]]:
        """Close links for the whole run (initial status closed, their controls disabled).

        A check-valve pipe cannot be given a status (EPANET error 207): it is made
        a plain pipe first (the hydraulic solver is reopened for that), and
        :meth:`restore_links` makes it a CV pipe again. Returns what
        :meth:`restore_links` needs.
        """
        table = self._control_table()
        cv = [i for i in idx if self.link_type(i) == int(EN.CVPIPE)]
        self._retype(cv, EN.PIPE)
        saved = []
        for i in idx:
            saved.append((i, self.get_link(i, EN.INITSTATUS), i in cv))
            self.set_link(i, EN.INITSTATUS, 0.0)
            for c, ty, _li, st, ni, lv in table.get(i, ()):
                self._check(self.lib.EN_setcontrol(self.ph, c, ty, 0, st, ni, lv),
                            f"disable control {c} of link {self.link_name(i)!r}")
        return saved

    def restore_links(self, saved: list[tuple[int, float, bool]]) -> None:
        table = self._control_table()
        for i, status, _cv in saved:
            self.set_link(i, EN.INITSTATUS, status)
            for c, ty, li, st, ni, lv in table.get(i, ()):
                self._check(self.lib.EN_setcontrol(self.ph, c, ty, li, st, ni, lv),
                            f"restore control {c} of link {self.link_name(i)!r}")
        self._retype([i for i, _s, cv in saved if cv], EN.CVPIPE)

    def hold_closed(self, idx: Sequence[int]) -> list[tuple[int, float]]:
        """Close links now, in the middle of a run, with their controls disabled; :meth:`release` undoes it."""
        table = self._control_table()
        saved = []
        for i in idx:
            saved.append((i, self.get_link(i, EN.STATUS)))
            for c, ty, _li, st, ni, lv in table.get(i, ()):
                self._check(self.lib.EN_setcontrol(self.ph, c, ty, 0, st, ni, lv),
                            f"disable control {c} of link {self.link_name(i)!r}")
            self.set_link(i, EN.STATUS, 0.0)
        return saved

    def release(self, saved: Sequence[tuple[int, float]]) -> None:
        """Give links held by :meth:`hold_closed` their status and controls back."""
        table = self._control_table()
        for i, status in saved:
            for c, ty, li, st, ni, lv in table.get(i, ()):
                self._check(self.lib.EN_setcontrol(self.ph, c, ty, li, st, ni, lv),
                            f"restore control {c} of link {self.link_name(i)!r}")
            self.set_link(i, EN.STATUS, status)

    # -- hydraulics
    def open_hydraulics(self) -> None:
        self._check(self.lib.EN_openH(self.ph), "start hydraulics")
        self._h_open = True

    def close_hydraulics(self) -> None:
        if self._h_open:
            self._check(self.lib.EN_closeH(self.ph), "close hydraulics")
            self._h_open = False

    def init(self, flag: int = EN.INITFLOW) -> int:
        """Initialise hydraulics (default: re-initialise flows, save nothing)."""
        return self._check(self.lib.EN_initH(self.ph, int(flag)), "initialise hydraulics")

    def run(self) -> tuple[int, int]:
        """Solve the hydraulics at the current time: (warning code or 0, time in s)."""
        code = self.lib.EN_runH(self.ph, ctypes.byref(self._t))
        self._check(code, f"solve the hydraulics at {self._t.value / 3600:g} h")
        return int(code), int(self._t.value)

    def advance(self) -> tuple[int, int]:
        """Move to the next hydraulic time: (warning code or 0, time step in s; 0 at the end)."""
        code = self.lib.EN_nextH(self.ph, ctypes.byref(self._t))
        self._check(code, "advance the hydraulics")
        return int(code), int(self._t.value)

    # -- water quality
    def open_quality(self, *, save: bool = False) -> None:
        self._check(self.lib.EN_openQ(self.ph), "start water quality")
        self._check(self.lib.EN_initQ(self.ph, int(EN.SAVE if save else EN.NOSAVE)), "initialise water quality")
        self._q_open = True

    def run_quality(self) -> int:
        self._check(self.lib.EN_runQ(self.ph, ctypes.byref(self._t)), "solve water quality")
        return int(self._t.value)

    def advance_quality(self) -> int:
        self._check(self.lib.EN_nextQ(self.ph, ctypes.byref(self._t)), "advance water quality")
        return int(self._t.value)

    def close_quality(self) -> None:
        if self._q_open:
            self._check(self.lib.EN_closeQ(self.ph), "close water quality")
            self._q_open = False
