"""The non-spatial part of an EPANET model as tables, losslessly, in both directions.

:func:`model_tables` takes what a ``WaterNetworkModel`` holds beyond the
geometry — curves, simple controls, rules, extra demand categories, quality
sources and every option — and returns it as the project's tables (see
:mod:`watersupply.schema`); :func:`apply_model_tables` puts them back into a
model. Element attributes (emitters, tank mixing, pump power, ...) are columns
of the spatial layers and are handled in :mod:`watersupply.convert` and
:mod:`watersupply.model`.

Units are SI as WNTR holds them, except flows, which are L/s as elsewhere in the
project: curve ``x`` is L/s for HEAD, EFFICIENCY and HEADLOSS curves and m of
level for VOLUME curves; curve ``y`` is m of head, %, m³ or m of headloss.
Controls and rules are kept as the lines EPANET reads, in the model's own INP
units (option ``hydraulic.inpfile_units``: m and L/s for LPS, ft, psi and gpm for
GPM ...) so that their numbers stay exactly as the file gave them.

Examples
--------
>>> import wntr
>>> wn = wntr.network.WaterNetworkModel(wntr.library.__path__[0] + "/networks/Net3.inp")  # doctest: +SKIP
>>> sorted(model_tables(wn))  # doctest: +SKIP
['controls', 'curves', 'demands', 'options', 'rules', 'sources']
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
from typing import Any

import numpy as np
import pandas as pd
import wntr
from wntr.epanet.io import InpFile
from wntr.epanet.util import FlowUnits, MassUnits

from ._errors import NetworkDataError

__all__ = [
    "CURVE_KINDS",
    "OPTION_SECTIONS",
    "apply_model_tables",
    "control_lines",
    "model_tables",
    "rule_lines",
    "write_inpfile",
]

#: WNTR option groups carried in the ``options`` table as ``group.name`` keys.
OPTION_SECTIONS = ("time", "hydraulic", "quality", "reaction", "energy")
CURVE_KINDS = ("HEAD", "EFFICIENCY", "VOLUME", "HEADLOSS")
_FLOW_X = {"HEAD", "EFFICIENCY", "HEADLOSS"}
_M3S_TO_LS = 1000.0


def _units(wn: wntr.network.WaterNetworkModel) -> FlowUnits:
    u = str(wn.options.hydraulic.inpfile_units or "LPS").upper()
    try:
        return FlowUnits[u]
    except KeyError:
        raise NetworkDataError(f"unknown INP flow units {u!r}; use one of "
                               f"{', '.join(x.name for x in FlowUnits)}") from None


def _inp(units: FlowUnits = FlowUnits.LPS) -> InpFile:
    inp = InpFile()
    inp.flow_units = units
    inp.mass_units = MassUnits.mg
    return inp


_LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{12,}(?:[eE][-+]?\d+)?(?![\w.])")


def _tidy(line: str) -> str:
    """Round numbers carrying unit-conversion noise (``109.99999999999999``) to 15 significant digits."""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group(0)):.15g}", line)


_DECIMAL_CLOCKTIME = re.compile(r"\bAT\s+CLOCKTIME\s+(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)


def _clocktime(line: str) -> str:
    """WNTR writes ``AT CLOCKTIME 7.5`` (decimal hours), which it cannot read back; write ``07:30:00``."""
    m = _DECIMAL_CLOCKTIME.search(line)
    if not m:
        return line
    sec = int(round(float(m.group(1)) * 3600))
    return line[:m.start(1)] + f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def control_lines(wn: wntr.network.WaterNetworkModel) -> list[str]:
    """The model's simple controls as EPANET [CONTROLS] lines in the model's INP units."""
    buf = io.BytesIO()
    _inp(_units(wn))._write_controls(buf, wn)
    lines = buf.getvalue().decode("utf-8").splitlines()
    return [_clocktime(_tidy(ln.strip())) for ln in lines[1:] if ln.strip() and not ln.strip().startswith(";")]


def rule_lines(wn: wntr.network.WaterNetworkModel) -> list[tuple[str, str]]:
    """The model's rules as ``(rule id, line)`` pairs of EPANET [RULES] text in the model's INP units."""
    buf = io.BytesIO()
    _inp(_units(wn))._write_rules(buf, wn)
    out, rule = [], None
    for ln in buf.getvalue().decode("utf-8").splitlines()[1:]:
        s = ln.strip()
        if not s or s.startswith(";"):
            continue
        if s.upper().startswith("RULE "):
            rule = s.split(None, 1)[1].strip()
        if rule is None:
            raise NetworkDataError(f"rule text without a RULE header: {s!r}")
        out.append((rule, _tidy(s)))
    return out


def _json(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return json.dumps(str(v))
    return json.dumps(v)


def model_tables(wn: wntr.network.WaterNetworkModel) -> dict[str, pd.DataFrame]:
    """Curves, controls, rules, extra demands, sources and options of `wn` as tables.

    Returns
    -------
    dict
        ``curves`` (curve, kind, point, x, y; kind is empty for a curve no element uses, whose
        points are kept as the file gave them), ``controls`` (control, text),
        ``rules`` (rule, line, text), ``demands`` (node, demand_m3d, pattern, category:
        the second and later demand categories of a junction; the first is in the
        ``nodes`` layer), ``sources`` (id, node, type, strength, pattern) and
        ``options`` (key, value as JSON).
    """
    curves = []
    for name, curve in wn.curves():
        # a curve no element uses has no type; WNTR keeps its points as the file gave them
        kind = str(curve.curve_type).upper() if curve.curve_type else ""
        fx = _M3S_TO_LS if kind in _FLOW_X else 1.0
        for i, (x, y) in enumerate(curve.points):
            curves.append(dict(curve=str(name), kind=kind, point=i, x=float(x) * fx, y=float(y)))
    curves.sort(key=lambda r: (r["curve"], r["point"]))
    controls = [dict(control=f"C{i + 1}", text=t) for i, t in enumerate(control_lines(wn))]
    rules = [dict(rule=r, line=i, text=t) for i, (r, t) in enumerate(rule_lines(wn))]
    demands = []
    for name, j in wn.junctions():
        for k, ts in enumerate(j.demand_timeseries_list):
            if k == 0:
                continue
            demands.append(dict(node=str(name), demand_m3d=float(ts.base_value) * 86_400.0,
                                pattern=ts.pattern_name, category=ts.category))
    sources = []
    for name, src in wn.sources():
        sources.append(dict(id=str(name), node=str(src.node_name), type=str(src.source_type).upper(),
                            strength=float(src.strength_timeseries.base_value),
                            pattern=src.strength_timeseries.pattern_name))
    options = []
    for group in OPTION_SECTIONS:
        obj = getattr(wn.options, group)
        for key, value in obj.__dict__.items():
            if key.startswith("_"):
                continue
            options.append(dict(key=f"{group}.{key}", value=_json(value)))
    return {
        "curves": pd.DataFrame(curves, columns=["curve", "kind", "point", "x", "y"]),
        "controls": pd.DataFrame(controls, columns=["control", "text"]),
        "rules": pd.DataFrame(rules, columns=["rule", "line", "text"]),
        "demands": pd.DataFrame(demands, columns=["node", "demand_m3d", "pattern", "category"]),
        "sources": pd.DataFrame(sources, columns=["id", "node", "type", "strength", "pattern"]),
        "options": pd.DataFrame(options, columns=["key", "value"]),
    }


def _s(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return s if s and s.lower() not in ("nan", "none", "<na>") else None


def add_curves(wn: wntr.network.WaterNetworkModel, curves: pd.DataFrame | None) -> None:
    """Add the ``curves`` table to `wn` (before the elements that use them)."""
    if curves is None or not len(curves):
        return
    sort = ["curve", "point"] if "point" in curves.columns else ["curve"]
    for name, grp in curves.sort_values(sort, kind="stable").groupby("curve", sort=False):
        kind = (_s(grp["kind"].iloc[0]) or "").upper()
        if kind and kind not in CURVE_KINDS:
            raise NetworkDataError(f"table 'curves': curve {name!r} has kind {kind!r}; use one of "
                                   f"{', '.join(CURVE_KINDS)}")
        fx = _M3S_TO_LS if kind in _FLOW_X else 1.0
        xs = pd.to_numeric(grp["x"], errors="coerce")
        ys = pd.to_numeric(grp["y"], errors="coerce")
        if xs.isna().any() or ys.isna().any():
            raise NetworkDataError(f"table 'curves': curve {name!r} has points that are not numbers")
        wn.add_curve(str(name), kind or None, [(float(x) / fx, float(y)) for x, y in zip(xs, ys)])


def apply_options(wn: wntr.network.WaterNetworkModel, options: pd.DataFrame) -> None:
    """Set every option of the ``options`` table on `wn`."""
    for key, raw in zip(options["key"], options["value"]):
        group, _, name = str(key).partition(".")
        if group not in OPTION_SECTIONS or not name:
            raise NetworkDataError(f"table 'options': unknown key {key!r}; keys are <group>.<option> with group "
                                   f"one of {', '.join(OPTION_SECTIONS)}")
        obj = getattr(wn.options, group)
        if not hasattr(obj, name):
            raise NetworkDataError(f"table 'options': WNTR has no option {key!r}")
        try:
            value = json.loads(str(raw))
        except json.JSONDecodeError:
            raise NetworkDataError(f"table 'options': value of {key!r} is not JSON: {raw!r}") from None
        try:
            setattr(obj, name, value)
        except (ValueError, TypeError) as exc:
            raise NetworkDataError(f"table 'options': {key!r} = {value!r} is not allowed: {exc}") from None


def apply_model_tables(wn: wntr.network.WaterNetworkModel, net: dict) -> None:
    """Add the extra demands, sources, controls and rules of `net` to `wn` (built from its layers)."""
    demands = net.get("demands")
    if demands is not None and len(demands):
        for row in demands.itertuples(index=False):
            node = str(row.node)
            if node not in wn.junction_name_list:
                raise NetworkDataError(f"table 'demands': node {node!r} is not a junction of the network")
            pat = _s(row.pattern)
            if pat is not None and pat not in wn.pattern_name_list:
                raise NetworkDataError(f"table 'demands': node {node!r} uses pattern {pat!r}, which is not in "
                                       "table 'patterns'")
            wn.get_node(node).demand_timeseries_list.append(
                (float(row.demand_m3d) / 86_400.0, wn.get_pattern(pat) if pat else None, _s(row.category)))
    sources = net.get("sources")
    if sources is not None and len(sources):
        for row in sources.itertuples(index=False):
            if str(row.node) not in wn.node_name_list:
                raise NetworkDataError(f"table 'sources': source {row.id!r} is at node {row.node!r}, which "
                                       "does not exist")
            pat = _s(row.pattern)
            wn.add_source(str(row.id), str(row.node), str(row.type).upper(), float(row.strength), pat)
    inp = _inp(_units(wn))
    inp.wn = wn
    controls = net.get("controls")
    if controls is not None and len(controls):
        inp.sections["[CONTROLS]"] = [(i + 1, str(t)) for i, t in enumerate(controls["text"])]
        try:
            inp._read_controls()
        except Exception as exc:  # WNTR raises KeyError, ValueError, RuntimeError on bad text
            raise NetworkDataError(f"table 'controls': cannot read a control ({type(exc).__name__}: {exc}); "
                                   "each row is one EPANET [CONTROLS] line in the model's INP units") from None
    rules = net.get("rules")
    if rules is not None and len(rules):
        order = rules.sort_values("line", kind="stable") if "line" in rules.columns else rules
        inp.sections["[RULES]"] = [(i + 1, str(t)) for i, t in enumerate(order["text"])]
        try:
            inp._read_rules()
        except Exception as exc:
            raise NetworkDataError(f"table 'rules': cannot read the rules ({type(exc).__name__}: {exc}); "
                                   "each row is one EPANET [RULES] line in the model's INP units") from None


def _wrap(v: Any) -> Any:
    if isinstance(v, float) and not isinstance(v, bool):
        return _Num(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_wrap(x) for x in v)
    return v


_ENTRIES = ("_JUNC_ENTRY", "_RES_ENTRY", "_TANK_ENTRY", "_PIPE_ENTRY", "_VALVE_ENTRY", "_GPV_ENTRY", "_CURVE_ENTRY")
_WRITE_LOCK = threading.Lock()


def shortest(x: float) -> str:
    """The shortest decimal that gives `x` back within 2 ulp: the file's own numbers and free of
    unit-conversion noise (``109.99999999999999`` -> ``110``), without exponents.

    >>> shortest(109.99999999999999), shortest(2000.0), shortest(0.1), shortest(1e-7)
    ('110', '2000', '0.1', '0.0000001')
    """
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return repr(x) if x else "0"
    tol = 2 * math.ulp(x)
    for d in range(1, 18):
        y = float(f"{x:.{d}g}")
        if abs(y - x) <= tol:
            return np.format_float_positional(y, trim="-")
    return np.format_float_positional(x, trim="-")


class _Num(float):
    """A float that formats itself as :func:`shortest` (WNTR's writer formats every number it converts)."""

    def __format__(self, spec: str) -> str:
        return format(shortest(self), re.sub(r"\.\d+|[a-zA-Z]$", "", spec) or "")


class _PreciseInpFile(InpFile):
    """WNTR's INP writer with every number written exactly (:func:`shortest`).

    WNTR writes 11 significant digits (6 decimals for curves and patterns); on a long
    simulation with tank-level controls that alone moves heads by millimetres.
    """

    def _write_patterns(self, f, wn):
        f.write(b"[PATTERNS]\n;ID        Multipliers\n")
        for name in wn.pattern_name_list:
            mult = list(wn.get_pattern(name).multipliers)
            for i in range(0, len(mult), 6):
                f.write((f"{name} " + " ".join(shortest(m) for m in mult[i:i + 6]) + "\n").encode("utf-8"))
        f.write(b"\n")


def write_inpfile(wn: wntr.network.WaterNetworkModel, path: str, *, units: str) -> None:
    """Write `wn` as an EPANET 2.2 INP file in `units` with every number exact (:func:`shortest`)."""
    import wntr.epanet.io as wio

    with _WRITE_LOCK:
        saved = {k: getattr(wio, k) for k in _ENTRIES}
        from_si = wio.from_si
        try:
            for k, v in saved.items():
                setattr(wio, k, re.sub(r"\{(\w+):(\d+)(?:\.11g|f)\}", lambda m: f"{{{m.group(1)}:>{m.group(2)}}}", v))
            wio.from_si = lambda *a, **kw: _wrap(from_si(*a, **kw))
            _PreciseInpFile().write(path, wn, units=units, version=2.2)
        finally:
            for k, v in saved.items():
                setattr(wio, k, v)
            wio.from_si = from_si
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    section = None
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip().upper()
        elif section == "[CONTROLS]":
            lines[i] = _clocktime(line.rstrip())
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
