"""Convert between the project's GIS layers and a WNTR ``WaterNetworkModel``.

The GeoPackage is the source of truth; the EPANET model is derived from it
(:func:`to_wntr`) and can be written as an INP file (:func:`write_inp`). Units
are SI throughout: m, m³/s, m head; demands are stored in the layers as m³/d
and converted here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import wntr
from wntr.network.controls import Control, ControlAction, TimeOfDayCondition, ValueCondition
from wntr.network.base import LinkStatus

from ._errors import NetworkDataError
from .epanet_tables import add_curves, apply_model_tables, apply_options, write_inpfile
from .io import atomic_path
from .schema import Network
from .standards import thresholds

__all__ = ["SimOptions", "metadata", "sim_options", "to_wntr", "write_inp", "is_epanet_model", "is_as_is",
           "keep_as_is", "analysis_changes"]

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0
MGL_TO_KGM3 = 1e-3  # WNTR keeps concentrations in kg/m³; 1 mg/L = 1 g/m³

#: Default simulation options; a network's ``metadata`` table overrides them,
#: keyword arguments override both.
DEFAULT_OPTIONS: dict[str, float | str] = {
    "duration_h": 72.0,
    "hydraulic_timestep_s": 3600.0,
    "quality_timestep_s": 300.0,
    "report_timestep_s": 3600.0,
    "pattern_timestep_s": 3600.0,
    "pressure_exponent": 0.5,
    "plant_chlorine_mgL": 1.0,
    "bulk_coeff_per_day": -0.5,
    "tank_initial_chlorine_mgL": 0.5,
    "required_pressure_m": thresholds()["pdd_required_pressure_m"],
    "minimum_pressure_m": thresholds()["pdd_minimum_pressure_m"],
}

SimOptions = dict[str, float]


def metadata(net: Network) -> dict[str, str]:
    """The network's ``metadata`` table as a dict (empty if there is none)."""
    md = net.get("metadata")
    if md is None or not len(md):
        return {}
    return {str(k): str(v) for k, v in zip(md["key"], md["value"])}


def sim_options(net: Network, **overrides: Any) -> SimOptions:
    """Simulation options: defaults, then the network's metadata, then `overrides`."""
    opts: dict[str, float] = {k: float(v) for k, v in DEFAULT_OPTIONS.items()}
    md = metadata(net)
    for key in opts:
        if key in md:
            try:
                opts[key] = float(md[key])
            except ValueError:
                raise NetworkDataError(f"metadata key {key!r} must be a number, got {md[key]!r}") from None
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in opts:
            raise NetworkDataError(f"unknown simulation option {key!r}; valid: {', '.join(sorted(opts))}")
        opts[key] = float(value)
    if opts["duration_h"] <= 0:
        raise NetworkDataError(f"duration_h must be > 0, got {opts['duration_h']}")
    return opts


def _str(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    s = str(v)
    return s if s and s.lower() not in ("nan", "none", "<na>") else None


def _num(v: Any, default: float = 0.0) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f


@contextlib.contextmanager
def _element(kind: str, ident: object) -> Iterator[None]:
    """Turn WNTR's and Python's complaints about one element into a NetworkDataError naming it."""
    try:
        yield
    except NetworkDataError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, AssertionError) as exc:
        raise NetworkDataError(f"{kind} {str(ident)!r} cannot be built: {exc}") from None


def is_epanet_model(net: Network) -> bool:
    """True when the network carries a full EPANET model (an ``options`` table, e.g. from an INP file)."""
    opts = net.get("options")
    return opts is not None and len(opts) > 0


def is_as_is(net: Network) -> bool:
    """True when the analyses must solve the network's EPANET model exactly as it is (``--as-is``)."""
    return metadata(net).get("as_is", "").strip().lower() in ("true", "1", "yes")


def keep_as_is(net: Network) -> Network:
    """A shallow copy of `net` whose metadata says: analyse the EPANET model as it is, change nothing."""
    out = dict(net)
    md = metadata(net)
    md["as_is"] = "true"
    out["metadata"] = pd.DataFrame(sorted(md.items()), columns=["key", "value"])
    return out


def _file_options(net: Network) -> dict[str, Any]:
    import json

    o = net.get("options")
    if o is None:
        return {}
    out = {}
    for k, v in zip(o["key"], o["value"]):
        try:
            out[str(k)] = json.loads(str(v))
        except ValueError:
            out[str(k)] = v
    return out


def _has_chlorine(net: Network, fo: dict[str, Any]) -> bool:
    """Whether the file's model already has a chemical (chlorine) with a source or an initial concentration."""
    if str(fo.get("quality.parameter", "NONE")).upper() != "CHEMICAL":
        return False
    src = net.get("sources")
    if src is not None and len(src):
        return True
    q = pd.to_numeric(net["nodes"].get("initial_quality", pd.Series(dtype=float)), errors="coerce").fillna(0.0)
    return bool((q > 0).any())


def analysis_changes(net: Network, **options: Any) -> list[str]:
    """What the analyses deliberately change in a network's own EPANET model (empty with ``--as-is``).

    The analyses (run, scenario, audit, criticality) solve the file's model with its
    own controls, curves and options, except: pressure-dependent demand with the
    project's service head, a 24 h horizon for a single-period file, and a chlorine
    source at the reservoirs when the file has none.

    Examples
    --------
    >>> analysis_changes({"nodes": None})
    []
    """
    if not is_epanet_model(net) or is_as_is(net):
        return []
    fo = _file_options(net)
    opts = sim_options(net, **options)
    out = []
    dm = str(fo.get("hydraulic.demand_model", "DDA")).upper()
    req, mn = opts["required_pressure_m"], opts["minimum_pressure_m"]
    if dm != "PDD" or fo.get("hydraulic.required_pressure") != req or fo.get("hydraulic.minimum_pressure") != mn:
        was = "demand-driven (DDA)" if dm != "PDD" else (f"PDD with {fo.get('hydraulic.required_pressure')} m / "
                                                         f"{fo.get('hydraulic.minimum_pressure')} m")
        out.append(f"pressure-dependent demand with service head {req:g} m (no water below {mn:g} m) instead of the "
                   f"file's {was}")
    if float(fo.get("time.duration", 0) or 0) <= 0 and options.get("duration_h") is None:
        out.append(f"a {opts['duration_h']:g} h horizon for the single-period (steady-state) file")
    if not _has_chlorine(net, fo):
        out.append(f"chlorine {opts['plant_chlorine_mgL']:g} mg/L at the reservoirs (the file has no chlorine source; "
                   f"its quality parameter is {str(fo.get('quality.parameter', 'NONE')).upper()})")
    if out:
        out = [f"the analyses change the file's own model on purpose: {'; '.join(out)}; "
               "use --as-is to solve the file exactly as it is"]
    return out


def to_wntr(net: Network, **options: Any) -> wntr.network.WaterNetworkModel:
    """Build a WNTR model from the network's layers.

    Parameters
    ----------
    net
        Network layers (see :mod:`watersupply.schema`), already validated.
    **options
        Simulation options overriding defaults and metadata (see :data:`DEFAULT_OPTIONS`).

    Returns
    -------
    wntr.network.WaterNetworkModel
        For a project network: pressure-dependent demand, chlorine as the quality
        parameter, node coordinates in the layers' CRS, and pump controls from the
        ``pumps`` layer. For a network carrying an EPANET model (tables ``options``,
        ``curves``, ``controls``, ``rules`` ..., see :func:`is_epanet_model`): that
        model exactly, then the changes of :func:`analysis_changes` unless the
        network is marked as-is (:func:`keep_as_is`); `options` given explicitly
        (e.g. ``duration_h``) apply in both cases.
    """
    opts = sim_options(net, **options)
    file_model = is_epanet_model(net)
    wn = wntr.network.WaterNetworkModel()
    wn.name = metadata(net).get("name", "watersupply network")
    wn.options.hydraulic.inpfile_units = "LPS"
    if file_model:
        apply_options(wn, net["options"])
    add_curves(wn, net.get("curves"))  # a project network's pump curves too (watersupply.pumpcurves)

    patterns = net.get("patterns")
    if patterns is not None and len(patterns):
        for name, grp in patterns.sort_values(["pattern", "hour"]).groupby("pattern", sort=True):
            with _element("pattern", name):
                mult = pd.to_numeric(grp["multiplier"], errors="coerce")
                if mult.isna().any() or (mult < 0).any() or np.isinf(mult).any():
                    raise NetworkDataError(f"pattern {str(name)!r} has multipliers that are not numbers >= 0: "
                                           f"{grp['multiplier'].tolist()[:6]}")
                wn.add_pattern(str(name), [float(m) for m in mult])

    nodes = net["nodes"]
    fac = net.get("facilities")
    tanks = {}
    if fac is not None and len(fac):
        for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
            tanks[str(row.node_id)] = row
    plant_q = opts["plant_chlorine_mgL"] * MGL_TO_KGM3
    tank_q = opts["tank_initial_chlorine_mgL"] * MGL_TO_KGM3
    cols = nodes.columns
    for row in nodes.itertuples(index=False):
        with _element("node", row.id):
            nid = str(row.id)
            xy = (round(row.geometry.x, 3), round(row.geometry.y, 3)) if row.geometry is not None else None
            elev = float(row.elevation_m)
            quality = _num(getattr(row, "initial_quality", 0.0)) if "initial_quality" in cols else 0.0
            if row.kind == "plant":
                head = _num(getattr(row, "head_m", None), elev) if "head_m" in cols else elev
                hpat = _str(getattr(row, "head_pattern", None)) if "head_pattern" in cols else None
                if hpat is not None and hpat not in wn.pattern_name_list:
                    raise NetworkDataError(f"node {nid!r} uses head pattern {hpat!r}, which is not in the "
                                           "'patterns' table")
                wn.add_reservoir(nid, base_head=head, head_pattern=hpat, coordinates=xy)
                wn.get_node(nid).initial_quality = quality if file_model else plant_q
            elif row.kind == "reservoir":
                if nid not in tanks:
                    raise NetworkDataError(f"reservoir node {nid!r} has no row of kind 'reservoir' in 'facilities'")
                t = tanks[nid]
                vcurve = _str(getattr(t, "vol_curve", None))
                if vcurve is not None and vcurve not in wn.curve_name_list:
                    raise NetworkDataError(f"tank {nid!r} uses volume curve {vcurve!r}, which is not in table "
                                           "'curves'")
                wn.add_tank(nid, elevation=float(t.bottom_elev_m), init_level=float(t.init_level_m),
                            min_level=float(t.min_level_m), max_level=float(t.max_level_m),
                            diameter=float(t.diameter_m), min_vol=_num(getattr(t, "min_vol_m3", 0.0)),
                            vol_curve=vcurve, overflow=str(getattr(t, "overflow", False)).lower() in ("true", "1"),
                            coordinates=xy)
                tank = wn.get_node(nid)
                tank.initial_quality = quality if file_model else tank_q
                mix = _str(getattr(t, "mixing_model", None))
                if mix is not None:
                    tank.mixing_model = mix
                    frac = _num(getattr(t, "mixing_fraction", None), float("nan"))
                    if not math.isnan(frac):
                        tank.mixing_fraction = frac
                kb = _num(getattr(t, "bulk_coeff_d", None), float("nan"))
                if not math.isnan(kb):
                    tank.bulk_coeff = kb / SECONDS_PER_DAY
            else:
                demand = _num(getattr(row, "base_demand_m3d", 0.0)) / SECONDS_PER_DAY if "base_demand_m3d" in cols else 0.0
                pat = _str(getattr(row, "pattern", None)) if "pattern" in cols else None
                if pat is not None and pat not in wn.pattern_name_list:
                    raise NetworkDataError(f"node {nid!r} uses pattern {pat!r}, which is not in the 'patterns' "
                                           f"table ({', '.join(wn.pattern_name_list) or 'empty'})")
                if file_model:
                    cat = _str(getattr(row, "demand_name", None)) if "demand_name" in cols else None
                    wn.add_junction(nid, base_demand=demand, demand_pattern=pat, elevation=elev, coordinates=xy,
                                    demand_category=cat)
                    junction = wn.get_node(nid)
                    junction.initial_quality = quality
                    em = _num(getattr(row, "emitter_coeff", None)) if "emitter_coeff" in cols else 0.0
                    if em:
                        junction.emitter_coefficient = em
                else:
                    wn.add_junction(nid, base_demand=demand, demand_pattern=pat if demand else None,
                                    elevation=elev, coordinates=xy)
                    leak = _num(getattr(row, "leakage_coeff", None)) if "leakage_coeff" in cols else 0.0
                    if leak:  # background leakage (watersupply.leakage), m³/s per m^0.5
                        wn.get_node(nid).emitter_coefficient = leak

    if not file_model:
        wn.options.reaction.bulk_coeff = opts["bulk_coeff_per_day"] / SECONDS_PER_DAY
        wn.options.reaction.wall_coeff = 0.0
    # roughness is kept in the model's own formula: H-W C, D-W in mm (WNTR holds m), C-M n
    rough_factor = 0.001 if str(wn.options.hydraulic.headloss).upper() == "D-W" else 1.0
    pipes = net["pipes"]
    has_length = "length_m" in pipes.columns
    has_wall = "wall_coeff_m_d" in pipes.columns
    has_bulk = "bulk_coeff_d" in pipes.columns
    has_status = "status" in pipes.columns
    has_minor = "minor_loss" in pipes.columns
    for row in pipes.itertuples(index=False):
        with _element("pipe", row.id):
            length = _num(row.length_m, 0.0) if has_length else 0.0
            if length <= 0:
                length = float(row.geometry.length) if row.geometry is not None else 0.0
            if length <= 0:
                raise NetworkDataError(f"pipe {row.id!r} has no length (length_m and geometry are empty)")
            status = (_str(row.status) or "OPEN").upper() if has_status else "OPEN"
            if status not in ("OPEN", "CLOSED", "CV"):
                raise NetworkDataError(f"pipe {row.id!r} has status {status!r}; use OPEN, CLOSED or CV")
            wn.add_pipe(str(row.id), str(row.from_node), str(row.to_node), length=length,
                        diameter=float(row.diameter_mm) / 1000.0, roughness=float(row.roughness_c) * rough_factor,
                        minor_loss=_num(row.minor_loss) if has_minor else 0.0, initial_status=status,
                        check_valve=status == "CV")
            if has_wall:
                kw = _num(row.wall_coeff_m_d, float("nan"))
                if not (file_model and math.isnan(kw)):
                    wn.get_link(str(row.id)).wall_coeff = (0.0 if math.isnan(kw) else kw) / SECONDS_PER_DAY
            if has_bulk:
                kb = _num(row.bulk_coeff_d, float("nan"))
                if not math.isnan(kb):
                    wn.get_link(str(row.id)).bulk_coeff = kb / SECONDS_PER_DAY
            geom = row.geometry
            if geom is not None and len(geom.coords) > 2:
                wn.get_link(str(row.id)).vertices = [(round(x, 2), round(y, 2)) for x, y in list(geom.coords)[1:-1]]

    pumps = net.get("pumps")
    if pumps is not None and len(pumps):
        for row in pumps.itertuples(index=False):
            with _element("pump", row.id):
                pid = str(row.id)
                status = (_str(getattr(row, "status", None)) or "OPEN").upper()
                _add_pump(wn, row, pid, status)
                ctl_node = _str(getattr(row, "control_node", None))
                if ctl_node and status != "CLOSED":
                    if ctl_node not in wn.node_name_list:
                        raise NetworkDataError(f"pump {pid!r} is controlled by node {ctl_node!r}, which does not exist")
                    node = wn.get_node(ctl_node)
                    link = wn.get_link(pid)
                    on, off = _num(row.on_below_m, float("nan")), _num(row.off_above_m, float("nan"))
                    if not (on < off):
                        raise NetworkDataError(f"pump {pid!r}: on_below_m ({on}) must be below off_above_m ({off})")
                    wn.add_control(f"{pid}_on", Control(ValueCondition(node, "level", "<", on),
                                                         ControlAction(link, "status", LinkStatus.Open)))
                    wn.add_control(f"{pid}_off", Control(ValueCondition(node, "level", ">", off),
                                                          ControlAction(link, "status", LinkStatus.Closed)))

    _add_control_valves(wn, net.get("control_valves"))
    _add_float_valves(wn, fac)

    if file_model:
        _file_model_settings(wn, net, opts, options)
        apply_model_tables(wn, net)
        return wn

    eff = 0.75
    if pumps is not None and len(pumps) and "efficiency" in pumps:
        mean = pd.to_numeric(pumps["efficiency"], errors="coerce").mean()
        eff = float(mean) if 0 < mean <= 100 else eff
    wn.options.energy.global_efficiency = 100.0 * (eff if eff <= 1 else eff / 100.0)

    t = wn.options.time
    t.duration = int(round(opts["duration_h"] * 3600))
    t.hydraulic_timestep = int(opts["hydraulic_timestep_s"])
    t.quality_timestep = int(opts["quality_timestep_s"])
    t.report_timestep = int(opts["report_timestep_s"])
    t.pattern_timestep = int(opts["pattern_timestep_s"])
    h = wn.options.hydraulic
    h.demand_model = "PDD"
    h.required_pressure = opts["required_pressure_m"]
    h.minimum_pressure = opts["minimum_pressure_m"]
    h.pressure_exponent = opts["pressure_exponent"]
    h.trials = 200
    h.accuracy = 0.001
    h.unbalanced = "CONTINUE"
    h.unbalanced_value = 10
    wn.options.quality.parameter = "CHEMICAL"
    wn.options.quality.chemical_name = "Chlorine"
    wn.options.quality.inpfile_units = "mg/L"
    return wn


def _add_pump(wn: wntr.network.WaterNetworkModel, row: Any, pid: str, status: str) -> None:
    """A pump by its head curve (``curve``), by power (``power_kw``) or by its design point."""
    curve = _str(getattr(row, "curve", None))
    power = _num(getattr(row, "power_kw", None), float("nan"))
    if curve is not None:
        if curve not in wn.curve_name_list:
            raise NetworkDataError(f"pump {pid!r} uses head curve {curve!r}, which is not in table 'curves'")
        ptype, param = "HEAD", curve
    elif not math.isnan(power):
        if not power > 0:
            raise NetworkDataError(f"pump {pid!r} has power_kw {power}; it must be > 0")
        ptype, param = "POWER", power * 1000.0
    else:
        param = f"C_{pid}"
        wn.add_curve(param, "HEAD", [(float(row.design_flow_ls) / 1000.0, float(row.design_head_m))])
        ptype = "HEAD"
    speed = _num(getattr(row, "speed", None), 1.0)
    spat = _str(getattr(row, "speed_pattern", None))
    for what, pat in (("speed", spat), ("price", _str(getattr(row, "price_pattern", None)))):
        if pat is not None and pat not in wn.pattern_name_list:
            raise NetworkDataError(f"pump {pid!r} uses {what} pattern {pat!r}, which is not in table 'patterns'")
    wn.add_pump(pid, str(row.from_node), str(row.to_node), pump_type=ptype, pump_parameter=param, speed=speed,
                pattern=spat, initial_status=status)
    pump = wn.get_link(pid)
    setting = _num(getattr(row, "initial_setting", None), float("nan"))
    if not math.isnan(setting):
        pump.initial_setting = setting  # a relative speed from [STATUS]
    ecurve = _str(getattr(row, "efficiency_curve", None))
    if ecurve is not None:
        if ecurve not in wn.curve_name_list:
            raise NetworkDataError(f"pump {pid!r} uses efficiency curve {ecurve!r}, which is not in table 'curves'")
        pump.efficiency_curve_name = ecurve
    price = _num(getattr(row, "energy_price", None), float("nan"))
    if not math.isnan(price):
        pump.energy_price = price
    ppat = _str(getattr(row, "price_pattern", None))
    if ppat is not None:
        pump.energy_pattern = ppat


_TIME_OPTIONS = {"duration_h": ("duration", 3600.0), "hydraulic_timestep_s": ("hydraulic_timestep", 1.0),
                 "quality_timestep_s": ("quality_timestep", 1.0), "report_timestep_s": ("report_timestep", 1.0),
                 "pattern_timestep_s": ("pattern_timestep", 1.0)}


def _file_model_settings(wn: wntr.network.WaterNetworkModel, net: Network, opts: SimOptions,
                         explicit: dict[str, Any]) -> None:
    """Explicit options, then (unless as-is) the analyses' deliberate changes, on a file's own model."""
    t = wn.options.time
    t.pattern_timestep = int(opts["pattern_timestep_s"])  # the patterns table's step
    for key, (attr, factor) in _TIME_OPTIONS.items():
        if explicit.get(key) is not None:
            setattr(t, attr, int(round(float(explicit[key]) * factor)))
    for key, attr in (("required_pressure_m", "required_pressure"), ("minimum_pressure_m", "minimum_pressure"),
                      ("pressure_exponent", "pressure_exponent")):
        if explicit.get(key) is not None:
            setattr(wn.options.hydraulic, attr, float(explicit[key]))
    if is_as_is(net):
        return
    h = wn.options.hydraulic
    h.demand_model = "PDD"
    h.required_pressure = opts["required_pressure_m"]
    h.minimum_pressure = opts["minimum_pressure_m"]
    h.pressure_exponent = opts["pressure_exponent"]
    if t.duration <= 0 and explicit.get("duration_h") is None:
        t.duration = int(round(opts["duration_h"] * 3600))
    if not _has_chlorine(net, _file_options(net)):
        q = wn.options.quality
        q.parameter, q.chemical_name, q.inpfile_units = "CHEMICAL", "Chlorine", "mg/L"
        for _, r in wn.reservoirs():
            r.initial_quality = opts["plant_chlorine_mgL"] * MGL_TO_KGM3


def _add_float_valves(wn: wntr.network.WaterNetworkModel, fac: pd.DataFrame | None) -> None:
    """Altitude (float) valves of the reservoirs (facility columns ``inlet_link``, ``inlet_close_m``,
    ``inlet_open_m``, ``inlet_daily_open_h``; see :mod:`watersupply.operations`): the inlet closes above the one
    level, opens below the other, and (optionally) opens once a day at a clock hour."""
    if fac is None or not len(fac) or "inlet_link" not in fac.columns:
        return
    for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
        link = _str(row.inlet_link)
        if link is None:
            continue
        with _element("float valve of reservoir", row.node_id):
            tank, close, open_ = str(row.node_id), _num(row.inlet_close_m, float("nan")), \
                _num(row.inlet_open_m, float("nan"))
            if link not in wn.link_name_list:
                raise NetworkDataError(f"reservoir {tank!r}: inlet_link {link!r} is not a link of the network")
            if not open_ < close:
                raise NetworkDataError(f"reservoir {tank!r}: inlet_open_m ({open_}) must be below inlet_close_m "
                                       f"({close})")
            node, pipe = wn.get_node(tank), wn.get_link(link)
            wn.add_control(f"FV_{tank}_close", Control(ValueCondition(node, "level", ">", close),
                                                        ControlAction(pipe, "status", LinkStatus.Closed)))
            wn.add_control(f"FV_{tank}_open", Control(ValueCondition(node, "level", "<", open_),
                                                       ControlAction(pipe, "status", LinkStatus.Open)))
            daily = _num(getattr(row, "inlet_daily_open_h", None), float("nan"))
            if not math.isnan(daily):
                if not 0 <= daily < 24:
                    raise NetworkDataError(f"reservoir {tank!r}: inlet_daily_open_h must be a clock hour in [0, 24), "
                                           f"got {daily}")
                wn.add_control(f"FV_{tank}_daily", Control(TimeOfDayCondition(wn, "=", int(round(daily * 3600))),
                                                           ControlAction(pipe, "status", LinkStatus.Open)))


VALVE_TYPES = ("PRV", "PSV", "PBV", "FCV", "TCV", "GPV")


def _add_control_valves(wn: wntr.network.WaterNetworkModel, valves: pd.DataFrame | None) -> None:
    """Add the ``control_valves`` layer (PRV, FCV, ...) to `wn`; settings are SI except FCV in L/s."""
    if valves is None or not len(valves):
        return
    for row in valves.itertuples(index=False):
        with _element("control valve", row.id):
            vid, vtype = str(row.id), (_str(row.type) or "").upper()
            if vtype not in VALVE_TYPES:
                raise NetworkDataError(f"control valve {vid!r} has type {row.type!r}; use one of {', '.join(VALVE_TYPES)}")
            for end in (row.from_node, row.to_node):
                if str(end) not in wn.node_name_list:
                    raise NetworkDataError(f"control valve {vid!r} connects node {end!r}, which is not in layer 'nodes'")
            setting: float | str = _num(row.setting)
            if vtype == "FCV":
                setting = float(setting) / 1000.0
            elif vtype == "GPV":
                text = _str(getattr(row, "curve", None))
                if text is None:
                    raise NetworkDataError(f"GPV {vid!r} needs a headloss curve in column 'curve' (flow_ls:headloss_m;...)")
                if text in wn.curve_name_list:
                    setting = text
                    text = None
            if vtype == "GPV" and text is not None:
                points = [tuple(float(v) for v in pt.split(":")) for pt in text.split(";") if pt.strip()]
                wn.add_curve(f"GPV_{vid}", "HEADLOSS", [(q / 1000.0, h) for q, h in points])
                setting = f"GPV_{vid}"
            status = (_str(getattr(row, "status", None)) or "ACTIVE").upper()
            wn.add_valve(vid, str(row.from_node), str(row.to_node), diameter=float(row.diameter_mm) / 1000.0,
                         valve_type=vtype, minor_loss=_num(getattr(row, "minor_loss", 0.0)), initial_setting=setting,
                         initial_status=status)
            _add_valve_level_control(wn, row, vid, vtype, setting)


def _add_valve_level_control(wn: wntr.network.WaterNetworkModel, row: Any, vid: str, vtype: str,
                             setting: float | str) -> None:
    """A control valve driven by a tank's level (columns ``control_node``, ``off_above_m``, ``on_below_m``):
    above the one level an FCV's setting goes to 0 (another valve closes), below the other the setting
    comes back. An FCV is stopped through its setting, not its status: EPANET opens an FCV fully when
    its status is set OPEN."""
    node_id = _str(getattr(row, "control_node", None))
    if not node_id:
        return
    off, on = _num(getattr(row, "off_above_m", None), float("nan")), _num(getattr(row, "on_below_m", None),
                                                                          float("nan"))
    if node_id not in wn.tank_name_list:
        raise NetworkDataError(f"control valve {vid!r} is controlled by node {node_id!r}, which is not a tank; "
                               "give a reservoir (tank) node in column 'control_node'")
    if not on < off:
        raise NetworkDataError(f"control valve {vid!r}: on_below_m ({on}) must be below off_above_m ({off})")
    if vtype == "GPV":
        raise NetworkDataError(f"control valve {vid!r}: a GPV has no setting to control by level; leave "
                               "control_node empty")
    tank, link = wn.get_node(node_id), wn.get_link(vid)
    stop = ControlAction(link, "setting", 0.0) if vtype == "FCV" else ControlAction(link, "status", LinkStatus.Closed)
    wn.add_control(f"{vid}_off", Control(ValueCondition(tank, "level", ">", off), stop))
    wn.add_control(f"{vid}_on", Control(ValueCondition(tank, "level", "<", on),
                                         ControlAction(link, "setting", float(setting))))


def write_inp(wn: wntr.network.WaterNetworkModel, path: str | os.PathLike, *, units: str | None = None) -> Path:
    """Write an EPANET 2.2 INP file atomically, in `units` (default: the model's own INP flow
    units, which keeps a file's numbers as they were; LPS for project networks).

    WNTR stamps the creation time into the header; it is removed so the same
    model always gives a byte-identical file.
    """
    with atomic_path(path) as tmp:
        units = units or str(wn.options.hydraulic.inpfile_units or "LPS")
        write_inpfile(wn, str(tmp), units=units)
        text = tmp.read_text(encoding="utf-8")
        lines = [ln for ln in text.split("\n") if not ln.startswith("; Created:")]
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return Path(path)
