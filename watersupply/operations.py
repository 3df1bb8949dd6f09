"""Operating equipment the layers describe: float (altitude) valves, the plant's clear well, pipe wall decay.

* :func:`add_float_valves` — a reservoir filled by gravity from a higher one gets an
  altitude (float) valve on its inlet: the inlet closes when the tank is full and
  reopens only after the level has dropped by a band, so the tank cycles through
  that band instead of EPANET shutting and reopening the inlet at every step with
  the tank pinned at its top. Described by the reservoir's facility columns
  ``inlet_link``, ``inlet_close_m`` and ``inlet_open_m`` (levels above the tank
  bottom); :func:`watersupply.model.to_wntr` turns them into two EPANET controls
  (``LINK inlet CLOSED IF NODE tank ABOVE close`` / ``... OPEN IF ... BELOW open``).
* :func:`add_clear_well` — the plant as a clear-water tank (清水池) filled through a
  flow-control valve at the plant's production capacity from a raw-water source,
  instead of an unlimited fixed head.
* :func:`add_wall_decay` — chlorine wall decay by pipe material
  (:data:`WALL_DECAY_M_D`), including the PE pipes that had none.

Every function returns a new network and leaves its input unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point

from ._errors import NetworkDataError
from .schema import Network
from .standards import DesignAssumption

__all__ = ["OPERATIONS_ASSUMPTIONS", "WALL_DECAY_M_D", "FLOAT_VALVE_BAND_M", "FLOAT_VALVE_CLOSE_MARGIN_M",
           "FLOAT_VALVE_DAILY_OPEN_H",
           "gravity_filled_reservoirs", "add_float_valves", "add_wall_decay", "add_clear_well"]

_ASSUMPTIONS = [
    DesignAssumption("float_valve_band_m", 1.0, "m",
                     "an altitude valve reopens a gravity-filled reservoir's inlet when the level has fallen this "
                     "far below its closing level",
                     "assumed: differential (two-float / pilot) altitude valves are set to reopen 0.5–1.5 m below "
                     "top water level so the reservoir turns its water over"),
    DesignAssumption("float_valve_daily_open_h", 0.0, "h (clock)",
                     "the altitude valve's inlet also opens once a day at this hour (a timed top-up at night), so "
                     "the reservoir starts every day full and its daily cycle repeats",
                     "assumed: rural reservoirs are topped up at night (low demand, valley tariff)"),
    DesignAssumption("float_valve_close_margin_m", 0.1, "m",
                     "the altitude valve closes this far below the reservoir's maximum level", "assumed"),
    DesignAssumption("wall_decay_m_d", MappingProxyType({"PE": -0.05, "PVC": -0.05, "DI": -0.05, "CI": -0.25,
                                                         "ST": -0.15}),
                     "m/d", "first-order chlorine wall decay coefficient k_w by pipe material",
                     "assumed from the ranges reported for new plastic and cement-lined pipe (k_w ≈ 0.01–0.1 m/d: "
                     "Rossman, Clark & Grayman 1994, J. Environ. Eng. 120(4); Hallam et al. 2002, Water Res. 36; "
                     "EPANET 2.2 manual §3.4) and unlined cast iron / steel an order higher; PE taken equal to "
                     "cement-lined ductile iron (-0.05 m/d), the project's DI value"),
    DesignAssumption("clear_well_hours", 2.0, "h", "clear-water tank (清水池) volume in hours of the plant's "
                     "production capacity, when its volume is not given",
                     "assumed: GB 50013-2018 §9.11 sizes the clear well at 10–20 % of daily capacity; 2 h ≈ 8 % is "
                     "the regulating part alone, kept small so the model's production limit bites"),
]

#: The documented parameters of this module, by name.
OPERATIONS_ASSUMPTIONS: Mapping[str, DesignAssumption] = MappingProxyType({a.name: a for a in _ASSUMPTIONS})
FLOAT_VALVE_BAND_M: float = OPERATIONS_ASSUMPTIONS["float_valve_band_m"].value
FLOAT_VALVE_CLOSE_MARGIN_M: float = OPERATIONS_ASSUMPTIONS["float_valve_close_margin_m"].value
FLOAT_VALVE_DAILY_OPEN_H: float = OPERATIONS_ASSUMPTIONS["float_valve_daily_open_h"].value
WALL_DECAY_M_D: Mapping[str, float] = OPERATIONS_ASSUMPTIONS["wall_decay_m_d"].value


def _is_set(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v) not in ("", "nan", "None", "<NA>")


def _link_graph(net: Network) -> nx.MultiGraph:
    g = nx.MultiGraph()
    g.add_nodes_from(net["nodes"]["id"].astype(str))
    pipes = net["pipes"]
    closed = pipes["status"].astype(str).str.upper().eq("CLOSED") if "status" in pipes.columns else \
        pd.Series(False, index=pipes.index)
    for pid, a, b in zip(pipes.loc[~closed, "id"], pipes.loc[~closed, "from_node"], pipes.loc[~closed, "to_node"]):
        g.add_edge(str(a), str(b), key=str(pid), kind="pipe")
    for layer, kind in (("pumps", "pump"), ("control_valves", "valve")):
        df = net.get(layer)
        if df is not None and len(df):
            for lid, a, b in zip(df["id"], df["from_node"], df["to_node"]):
                g.add_edge(str(a), str(b), key=str(lid), kind=kind)
    return g


def gravity_filled_reservoirs(net: Network) -> dict[str, str]:
    """Reservoirs (tanks) filled by gravity, each with its inlet pipe.

    A tank is gravity-filled when no pump is controlled by its level (pumped
    reservoirs have their own on/off control) and exactly one of its pipes leads,
    without passing the tank, to another source (a plant, another tank or a
    pump): that pipe is the inlet; the others feed the tank's zone. A tank with
    sources on several sides floats on the network and is left out.

    Returns
    -------
    dict
        tank node id → inlet pipe id.
    """
    nodes = net["nodes"]
    tanks = sorted(nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str))
    plants = set(nodes.loc[nodes["kind"] == "plant", "id"].astype(str))
    pumps = net.get("pumps")
    pumped: set[str] = set()
    pump_ends: set[str] = set()
    if pumps is not None and len(pumps):
        if "control_node" in pumps.columns:
            pumped = {str(c) for c in pumps["control_node"] if _is_set(c)}
        pump_ends = set(pumps["from_node"].astype(str)) | set(pumps["to_node"].astype(str))
    g = _link_graph(net)
    out: dict[str, str] = {}
    for tank in tanks:
        if tank in pumped:
            continue
        h = g.copy()
        edges = [(a, b, k) for a, b, k, d in g.edges(tank, keys=True, data=True) if d["kind"] == "pipe"]
        h.remove_node(tank)
        inlets = []
        for a, b, k in edges:
            other = b if a == tank else a
            comp = nx.node_connected_component(h, other)
            if comp & (plants | (set(tanks) - {tank}) | pump_ends):
                inlets.append(k)
        if len(inlets) == 1 and len(edges) > 1:
            out[tank] = inlets[0]
    return out


def add_float_valves(net: Network, *, inlets: Mapping[str, str] | None = None, band_m: float = FLOAT_VALVE_BAND_M,
                     close_margin_m: float = FLOAT_VALVE_CLOSE_MARGIN_M,
                     daily_open_h: float | None = FLOAT_VALVE_DAILY_OPEN_H) -> Network:
    """A copy of `net` with an altitude (float) valve on the inlet of every gravity-filled reservoir.

    Parameters
    ----------
    net
        Network with a ``facilities`` layer describing its reservoirs.
    inlets
        Tank node id → inlet pipe id; default :func:`gravity_filled_reservoirs`.
    band_m
        The valve reopens this far below its closing level.
    close_margin_m
        The valve closes this far below the tank's maximum level.
    daily_open_h
        Clock hour at which the inlet also opens once a day (a timed top-up), so
        every day starts from a full tank and the daily cycle repeats; None for a
        pure float valve (its cycle then need not repeat from day to day, and
        chlorine and age at periodic steady state may not settle).

    Returns
    -------
    Network
        The reservoirs' facility rows get ``inlet_link``, ``inlet_close_m`` and
        ``inlet_open_m`` (m above the tank bottom; the reopening level is kept at
        least 0.1 m above the minimum level) and ``inlet_daily_open_h``.

    Raises
    ------
    NetworkDataError
        An inlet that is not a pipe of the tank, or a band that leaves no room.
    """
    if daily_open_h is not None and not 0 <= daily_open_h < 24:
        raise NetworkDataError(f"daily_open_h must be a clock hour in [0, 24) or None, got {daily_open_h}")
    if not band_m > 0 or close_margin_m < 0:
        raise NetworkDataError(f"band_m must be > 0 and close_margin_m >= 0, got {band_m} and {close_margin_m}")
    inlets = dict(gravity_filled_reservoirs(net) if inlets is None else inlets)
    out = dict(net)
    if not inlets:
        return out
    fac = net.get("facilities")
    if fac is None:
        raise NetworkDataError("layer 'facilities' is missing; float valves need the reservoirs' levels")
    fac = fac.copy()
    for col in ("inlet_link",):
        if col not in fac.columns:
            fac[col] = None
        fac[col] = fac[col].astype(object)
    for col in ("inlet_close_m", "inlet_open_m", "inlet_daily_open_h"):
        if col not in fac.columns:
            fac[col] = np.nan
    pipes = net["pipes"].set_index(net["pipes"]["id"].astype(str))
    for tank, link in sorted(inlets.items()):
        rows = fac.index[(fac["kind"] == "reservoir") & (fac["node_id"].astype(str) == str(tank))]
        if not len(rows):
            raise NetworkDataError(f"float valve: {tank!r} is not a reservoir of layer 'facilities'")
        if str(link) not in pipes.index or str(tank) not in (str(pipes.at[str(link), "from_node"]),
                                                             str(pipes.at[str(link), "to_node"])):
            raise NetworkDataError(f"float valve: inlet {link!r} of reservoir {tank!r} is not a pipe ending at it; "
                                   "give one of the tank's pipes")
        i = rows[0]
        lo, hi = float(fac.at[i, "min_level_m"]), float(fac.at[i, "max_level_m"])
        close = hi - close_margin_m
        open_ = max(close - band_m, lo + 0.1)
        if not lo < open_ < close:
            raise NetworkDataError(f"float valve on {tank!r}: levels {lo:g}–{hi:g} m leave no room for a band "
                                   f"(close {close:g} m, reopen {open_:g} m); lower band_m or close_margin_m")
        fac.at[i, "inlet_link"] = str(link)
        fac.at[i, "inlet_close_m"] = round(close, 3)
        fac.at[i, "inlet_open_m"] = round(open_, 3)
        fac.at[i, "inlet_daily_open_h"] = np.nan if daily_open_h is None else float(daily_open_h)
    out["facilities"] = fac
    return out


def add_wall_decay(net: Network, *, rates: Mapping[str, float] | None = None, overwrite: bool = False) -> Network:
    """A copy of `net` whose pipes carry a chlorine wall decay coefficient by material (``wall_coeff_m_d``).

    Parameters
    ----------
    rates
        Material → k_w in m/d (negative = decay); default :data:`WALL_DECAY_M_D`.
    overwrite
        Replace values already set; by default only empty or zero values are filled.

    Raises
    ------
    NetworkDataError
        A pipe material with no rate (naming the material and the fix).
    """
    rates = dict(WALL_DECAY_M_D if rates is None else rates)
    pipes = net["pipes"].copy()
    if "material" not in pipes.columns:
        raise NetworkDataError("layer 'pipes' has no column 'material'; wall decay is set by material")
    if "wall_coeff_m_d" not in pipes.columns:
        pipes["wall_coeff_m_d"] = np.nan
    cur = pd.to_numeric(pipes["wall_coeff_m_d"], errors="coerce")
    todo = cur.isna() | (cur == 0) | overwrite
    mats = pipes.loc[todo, "material"].astype(str).str.upper()
    missing = sorted(set(mats) - {m.upper() for m in rates})
    if missing:
        raise NetworkDataError(f"no wall decay rate for pipe material(s) {', '.join(map(repr, missing))}; give "
                               f"rates={{material: k_w in m/d}} (known: {', '.join(sorted(rates))})")
    upper = {m.upper(): float(v) for m, v in rates.items()}
    pipes.loc[todo, "wall_coeff_m_d"] = mats.map(upper).astype(float)
    out = dict(net)
    out["pipes"] = pipes
    return out


def add_clear_well(net: Network, *, plant: str | None = None, capacity_m3d: float | None = None,
                   volume_m3: float | None = None, max_level_m: float = 4.0, min_level_m: float = 0.3,
                   init_level_m: float | None = None, source_head_m: float = 2.0,
                   stop_above_m: float | None = None, resume_below_m: float | None = None) -> Network:
    """A copy of `net` whose plant is a clear-water tank fed at the plant's production capacity.

    The plant node keeps its id and becomes a tank (the clear well, 清水池, bottom
    at the node's elevation); a new fixed-head node ``<plant>-RAW`` (kind plant:
    the treatment works' output) feeds it through a flow-control valve
    ``<plant>-FCV`` set to `capacity_m3d` (with 10 m pipes ``<plant>-RAWP`` and
    ``<plant>-CWIN`` and junctions ``<plant>-FCVU``/``-FCVD`` either side, as
    EPANET wants no FCV right at a tank). A plant outage scenario closes that
    valve and the clear well drains.

    Parameters
    ----------
    plant
        Plant node id; default the network's only plant.
    capacity_m3d
        Production limit; default the plant facility's ``capacity_m3d``.
    volume_m3
        Clear-well volume between min and max level; default ``clear_well_hours``
        of production.
    max_level_m, min_level_m, init_level_m
        Clear-well levels above its bottom (init default: max).
    source_head_m
        Head of the raw-water node above the clear well's top water level.
    stop_above_m, resume_below_m
        Level control of production (both or neither): the FCV's setting goes to
        0 when the clear well rises above `stop_above_m` and back to the capacity
        when it falls below `resume_below_m` (levels above its bottom; control
        columns of the FCV's ``control_valves`` row). The treatment works then
        produce what the high-lift pumps draw, and the clear well never fills to
        its top, where EPANET would report the FCV "cannot deliver".

    Raises
    ------
    NetworkDataError
        No or several plants, no capacity, or ids already taken.

    Notes
    -----
    Size the capacity against the plant's outlet pumps: when the capacity exceeds
    what the pumps draw, the clear well sits full and EPANET warns "FCV open but
    cannot deliver flow" at those times (measured on the current Tonghui model:
    20,000 m³/d = 231 L/s against 210 L/s of duty pumps: warnings at 125 instants of the
    72 h run, and the clear well's irregular cycle keeps chlorine at periodic steady
    state from settling at 662 demand nodes). A level control on the FCV must
    change its setting (0 / capacity), not its status: an FCV opened by status is
    fully open in EPANET — `stop_above_m` / `resume_below_m` do that (on the
    hillside Tonghui model, 3.9 / 2.5 m: no warnings, and the clear well repeats
    its daily cycle to 0.2 % of its range).
    """
    nodes = net["nodes"]
    plants = list(nodes.loc[nodes["kind"] == "plant", "id"].astype(str))
    if plant is None:
        if len(plants) != 1:
            raise NetworkDataError(f"add_clear_well: the network has {len(plants)} plants ({', '.join(plants)}); "
                                   "name one with plant=")
        plant = plants[0]
    if plant not in plants:
        raise NetworkDataError(f"add_clear_well: {plant!r} is not a node of kind 'plant' (plants: "
                               f"{', '.join(plants) or 'none'})")
    fac = net.get("facilities")
    prow = None
    if fac is not None and len(fac):
        sel = fac[(fac["kind"] == "plant") & (fac["node_id"].astype(str) == plant)]
        prow = sel.index[0] if len(sel) else None
    if capacity_m3d is None and prow is not None and "capacity_m3d" in fac.columns:
        capacity_m3d = float(pd.to_numeric(fac.at[prow, "capacity_m3d"], errors="coerce"))
    if capacity_m3d is None or not capacity_m3d > 0:
        raise NetworkDataError(f"add_clear_well: plant {plant!r} has no production capacity; give capacity_m3d or "
                               "fill column 'capacity_m3d' of its facility row")
    if not 0 <= min_level_m < max_level_m:
        raise NetworkDataError(f"add_clear_well: need 0 <= min_level_m < max_level_m, got {min_level_m}, {max_level_m}")
    init = max_level_m if init_level_m is None else float(init_level_m)
    if (stop_above_m is None) != (resume_below_m is None):
        raise NetworkDataError("add_clear_well: give both stop_above_m and resume_below_m, or neither")
    if stop_above_m is not None and not min_level_m < resume_below_m < stop_above_m < max_level_m:
        raise NetworkDataError(f"add_clear_well: need min_level_m < resume_below_m < stop_above_m < max_level_m, got "
                               f"{min_level_m}, {resume_below_m}, {stop_above_m}, {max_level_m}")
    if volume_m3 is None:
        volume_m3 = capacity_m3d / 24.0 * OPERATIONS_ASSUMPTIONS["clear_well_hours"].value
    diameter = float(np.sqrt(4.0 * volume_m3 / (np.pi * (max_level_m - min_level_m))))
    raw, fcv, up, down = f"{plant}-RAW", f"{plant}-FCV", f"{plant}-FCVU", f"{plant}-FCVD"
    pin, pout = f"{plant}-RAWP", f"{plant}-CWIN"
    taken = set(nodes["id"].astype(str)) | set(net["pipes"]["id"].astype(str))
    for layer in ("pumps", "control_valves"):
        if net.get(layer) is not None and len(net[layer]):
            taken |= set(net[layer]["id"].astype(str))
    for ident in (raw, fcv, up, down, pin, pout):
        if ident in taken:
            raise NetworkDataError(f"add_clear_well: id {ident!r} is already used; rename that element")
    i = nodes.index[nodes["id"].astype(str) == plant][0]
    elev = float(nodes.at[i, "elevation_m"])
    pt = nodes.at[i, "geometry"]
    new_nodes = nodes.copy()
    new_nodes.at[i, "kind"] = "reservoir"
    if "head_m" in new_nodes.columns:
        new_nodes.at[i, "head_m"] = np.nan
    zone = nodes.at[i, "zone"] if "zone" in nodes.columns else None
    added = []
    # EPANET needs pipes between an FCV and a tank or reservoir: RAW -pipe- FCVU -FCV- FCVD -pipe- clear well
    for nid, kind, dx, head in ((raw, "plant", -30.0, elev + max_level_m + source_head_m),
                                (up, "junction", -20.0, None), (down, "junction", -10.0, None)):
        r = {c: None for c in nodes.columns}
        r.update(id=nid, kind=kind, elevation_m=elev, geometry=Point(pt.x + dx, pt.y))
        for col, v in (("base_demand_m3d", 0.0), ("population", 0), ("demand_category", "none"), ("zone", zone),
                       ("head_m", head)):
            if col in nodes.columns:
                r[col] = v
        added.append(r)
    new_nodes = gpd.GeoDataFrame(pd.concat([new_nodes, pd.DataFrame(added)], ignore_index=True),
                                 geometry="geometry", crs=nodes.crs)
    for col in ("base_demand_m3d", "elevation_m", "head_m"):
        if col in new_nodes.columns:
            new_nodes[col] = pd.to_numeric(new_nodes[col], errors="coerce")
    if "population" in new_nodes.columns:
        new_nodes["population"] = pd.to_numeric(new_nodes["population"], errors="coerce").fillna(0).astype(int)
    dia = _fcv_diameter(capacity_m3d)
    pipes = net["pipes"]
    prows = []
    for pid, a, b, xa, xb in ((pin, raw, up, -30.0, -20.0), (pout, down, plant, -10.0, 0.0)):
        r = {c: None for c in pipes.columns}
        r.update(id=pid, from_node=a, to_node=b, diameter_mm=dia, roughness_c=130.0, length_m=10.0,
                 geometry=LineString([(pt.x + xa, pt.y), (pt.x + xb, pt.y)]))
        for col, v in (("class", "main"), ("material", "DI"), ("zone", zone), ("status", "OPEN")):
            if col in pipes.columns:
                r[col] = v
        prows.append(r)
    new_pipes = gpd.GeoDataFrame(pd.concat([pipes, pd.DataFrame(prows)], ignore_index=True), geometry="geometry",
                                 crs=pipes.crs)
    out = dict(net)
    out["nodes"] = new_nodes
    out["pipes"] = new_pipes
    # facilities: the plant row moves to the raw-water node; the clear well is the plant's tank
    fac = fac.copy() if fac is not None else gpd.GeoDataFrame(columns=["id", "kind", "node_id", "geometry"],
                                                              geometry="geometry", crs=nodes.crs)
    for col in ("bottom_elev_m", "diameter_m", "min_level_m", "max_level_m", "init_level_m", "volume_m3"):
        if col not in fac.columns:
            fac[col] = np.nan
    if prow is not None:
        fac.at[prow, "node_id"] = raw
    name_zh = "清水池" if prow is None else f"{fac.at[prow, 'name_zh']}清水池" if "name_zh" in fac.columns else "清水池"
    name_en = "clear well" if prow is None else f"{fac.at[prow, 'name_en']} clear well" if "name_en" in fac.columns \
        else "clear well"
    cw = {c: None for c in fac.columns}
    cw.update(id=f"{plant}-CW", kind="reservoir", name_zh=name_zh, name_en=name_en, node_id=plant,
              bottom_elev_m=elev, diameter_m=round(diameter, 2), min_level_m=min_level_m, max_level_m=max_level_m,
              init_level_m=init, volume_m3=round(volume_m3, 1), geometry=pt)
    if "zone" in fac.columns:
        cw["zone"] = nodes.at[i, "zone"] if "zone" in nodes.columns else None
    if "part_of" not in fac.columns:
        fac["part_of"] = None
    cw["part_of"] = str(fac.at[prow, "id"]) if prow is not None else plant
    out["facilities"] = gpd.GeoDataFrame(pd.concat([fac, pd.DataFrame([cw])], ignore_index=True),
                                         geometry="geometry", crs=fac.crs or nodes.crs)
    cv = net.get("control_valves")
    vrow = dict(id=fcv, from_node=up, to_node=down, type="FCV", diameter_mm=dia,
                setting=round(capacity_m3d / 86.4, 3), status="ACTIVE", minor_loss=0.0, curve=None,
                geometry=Point(pt.x - 15.0, pt.y))
    if stop_above_m is not None:
        vrow.update(control_node=plant, off_above_m=float(stop_above_m), on_below_m=float(resume_below_m))
    vdf = gpd.GeoDataFrame([vrow], geometry="geometry", crs=nodes.crs)
    out["control_valves"] = vdf if cv is None or not len(cv) else \
        gpd.GeoDataFrame(pd.concat([cv, vdf], ignore_index=True), geometry="geometry", crs=cv.crs)
    if "capacity_m3d" in fac.columns and prow is not None and pd.isna(fac.at[prow, "capacity_m3d"]):
        warnings.warn(f"plant {plant!r}: capacity_m3d was empty; the FCV is set to {capacity_m3d:g} m³/d",
                      stacklevel=2)
    return out


def _fcv_diameter(capacity_m3d: float) -> float:
    """Valve diameter (mm) for ≈1.5 m/s at capacity, rounded up to a 50 mm step."""
    q = capacity_m3d / 86_400.0
    d = np.sqrt(4.0 * q / (np.pi * 1.5)) * 1000.0
    return float(max(50.0, np.ceil(d / 50.0) * 50.0))
