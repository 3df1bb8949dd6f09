"""The project's GeoPackage layout: layers, their columns, types and allowed values.

A network is a dict of layers (``Network``): GeoDataFrames for the spatial layers
and DataFrames for the tables, all in one projected CRS (metres). This module
describes the layout and checks a network against it; reading and writing files
lives in :mod:`watersupply.io`.

Layers
------
nodes (Point)
    id, kind (junction|plant|pump_station|reservoir), elevation_m, zone,
    settlement_id (may be empty), base_demand_m3d (design-day mean demand),
    pattern (pattern id), population (people served at the node),
    demand_category (domestic|industrial|none).
    ``plant`` nodes are fixed-head sources (the clear well, ``head_m``);
    ``reservoir`` nodes are storage tanks (水池) described in ``facilities``.
pipes (LineString)
    id, from_node, to_node, class (main|branch), diameter_mm, material,
    roughness_c (Hazen-Williams C), length_m, zone, status (OPEN|CLOSED);
    optionally the catalogue size (:mod:`watersupply.pipe_catalogue`): dn_mm
    (PE outside diameter dn / ductile-iron DN), pn_mpa (pressure class) and
    existing (a pre-existing asset, not priced by :mod:`watersupply.costing`).
pumps (Point)
    id, station_id, from_node, to_node, role (duty|standby), design_flow_ls,
    design_head_m, efficiency, status, control_node, on_below_m, off_above_m;
    optionally curve and efficiency_curve (ids in table ``curves``, e.g. from
    :func:`watersupply.pumpcurves.fit_pump_curves`) and stages.
facilities (Point)
    id, kind (plant|pump_station|reservoir), name_zh, name_en, node_id, zone,
    and where they apply: head_m and capacity_m3d (plant); bottom_elev_m,
    diameter_m, min_level_m, max_level_m, init_level_m, volume_m3 (reservoir);
    design_flow_ls, design_head_m, fills (pump station); optionally, for a reservoir
    filled by gravity, an altitude (float) valve: inlet_link (the pipe that fills
    it), inlet_close_m, inlet_open_m (levels above the bottom) and
    inlet_daily_open_h (a clock hour of a daily top-up), see
    :mod:`watersupply.operations`; part_of (a clear well's plant).
settlements (Polygon)
    id, name_zh, name_en, kind (village|community), population,
    name_verified, storeys, zone.
valves (Point, optional)
    id, link, node — isolation valves next to ``node`` on ``link``
    (the layout of ``wntr.network.generate_valve_layer``).
hydrants (Point, optional)
    id, pipe (the main it sits on), node (the junction a fire flow is drawn
    from), settlement_id, diameter_mm, chainage_m — see :mod:`watersupply.hydrants`.
control_valves (Point, optional)
    id, from_node, to_node, type (PRV|PSV|PBV|FCV|TCV|GPV), diameter_mm,
    setting — m of pressure head for PRV/PSV/PBV, L/s for FCV, the loss
    coefficient for TCV, empty for GPV — and optionally status
    (ACTIVE|OPEN|CLOSED, default ACTIVE), minor_loss and, for GPV, curve
    ("flow_ls:headloss_m;..."); control_node, off_above_m, on_below_m — a
    tank whose level stops the valve (an FCV's setting goes to 0) above the
    one level and restores its setting below the other (a plant's clear-well
    inlet, :func:`watersupply.operations.add_clear_well`). EPANET links kept from an INP file
    (:mod:`watersupply.convert`); the point is the middle of the two nodes.
zones (Polygon, optional)
    zone, parent_zone, device, device_id, setting_m, hgl_m and the zone's
    statistics — pressure zones as drawn by :func:`watersupply.zones.zones_layer`.
patterns (table)
    pattern, hour, multiplier (``hour`` is the step index; the step is metadata
    ``pattern_timestep_s``, 1 h unless the model says otherwise).
metadata (table)
    key, value — simulation options and provenance; ``as_is`` = ``true`` makes the
    analyses solve an EPANET model exactly as it is.

A full EPANET model (what an INP file holds, see :mod:`watersupply.convert` and
:mod:`watersupply.epanet_tables`) adds, all optional — a network without them is a
project network whose model :func:`watersupply.model.to_wntr` derives:

options (table)
    key (``time.duration``, ``hydraulic.headloss``, ``quality.parameter``,
    ``reaction.bulk_order``, ``energy.global_price`` ...: WNTR's option groups), value (JSON).
    Its presence marks the network as carrying its own EPANET model.
curves (table)
    curve, kind (HEAD|EFFICIENCY|VOLUME|HEADLOSS), point, x, y — x in L/s (m of
    level for VOLUME), y in m, %, m³ or m.
controls (table)
    control, text — one EPANET [CONTROLS] line each, SI units (LPS, m, hh:mm:ss).
rules (table)
    rule, line, text — the EPANET [RULES] lines (IF/AND/OR/THEN/ELSE/PRIORITY), SI units.
demands (table)
    node, demand_m3d, pattern, category — a junction's second and later demand
    categories (the first is the node's base_demand_m3d/pattern/demand_name).
sources (table)
    id, node, type (CONCEN|MASS|FLOWPACED|SETPOINT), strength (kg/m³, or kg/s for MASS), pattern.

and these columns of the spatial layers: nodes — demand_name, emitter_coeff
(m³/s per m^exponent), head_pattern (plant), initial_quality (SI: kg/m³, s or %);
pipes — roughness_c in the model's formula (metadata/option headloss: H-W C, D-W
roughness in mm, C-M n), status CV for check valves, minor_loss, bulk_coeff_d
(1/d), wall_coeff_m_d; pumps — curve (head curve id) or power_kw, speed,
speed_pattern, efficiency_curve, energy_price, price_pattern, status (initial);
control_valves — curve may name a HEADLOSS curve; facilities (tanks) — min_vol_m3,
vol_curve, overflow, mixing_model (MIXED|2COMP|FIFO|LIFO), mixing_fraction, bulk_coeff_d.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import NetworkDataError

__all__ = ["LAYERS", "REQUIRED_LAYERS", "Network", "validate_network", "NODE_KINDS", "FACILITY_KINDS"]

Network = dict[str, Any]

NODE_KINDS = ("junction", "plant", "pump_station", "reservoir")
FACILITY_KINDS = ("plant", "pump_station", "reservoir")
SETTLEMENT_KINDS = ("village", "community")
PIPE_CLASSES = ("main", "branch")

# layer -> (geometry type or None for a table, {column: kind})
# kinds: "str", "float", "int", "bool"
LAYERS: dict[str, tuple[str | None, dict[str, str]]] = {
    "nodes": ("Point", {
        "id": "str", "kind": "str", "elevation_m": "float", "zone": "str",
        "settlement_id": "str", "base_demand_m3d": "float", "pattern": "str",
        "population": "int", "demand_category": "str", "head_m": "float",
    }),
    "pipes": ("LineString", {
        "id": "str", "from_node": "str", "to_node": "str", "class": "str",
        "diameter_mm": "float", "material": "str", "roughness_c": "float",
        "length_m": "float", "zone": "str", "status": "str",
        "dn_mm": "float", "pn_mpa": "float", "existing": "bool",
    }),
    "pumps": ("Point", {
        "id": "str", "station_id": "str", "from_node": "str", "to_node": "str",
        "role": "str", "design_flow_ls": "float", "design_head_m": "float",
        "efficiency": "float", "status": "str", "control_node": "str",
        "on_below_m": "float", "off_above_m": "float",
    }),
    "facilities": ("Point", {
        "id": "str", "kind": "str", "name_zh": "str", "name_en": "str",
        "node_id": "str", "zone": "str",
    }),
    "settlements": ("Polygon", {
        "id": "str", "name_zh": "str", "name_en": "str", "kind": "str",
        "population": "int", "name_verified": "bool", "storeys": "int", "zone": "str",
    }),
    "valves": ("Point", {"id": "str", "link": "str", "node": "str"}),
    "control_valves": ("Point", {
        "id": "str", "from_node": "str", "to_node": "str", "type": "str", "diameter_mm": "float",
        "setting": "float", "status": "str", "minor_loss": "float", "curve": "str",
        "control_node": "str", "on_below_m": "float", "off_above_m": "float",
    }),
    "zones": ("Polygon", {"zone": "str", "parent_zone": "str", "device": "str", "device_id": "str",
                          "setting_m": "float", "hgl_m": "float"}),
    "hydrants": ("Point", {"id": "str", "pipe": "str", "node": "str", "settlement_id": "str",
                           "diameter_mm": "float", "chainage_m": "float"}),
    "patterns": (None, {"pattern": "str", "hour": "int", "multiplier": "float"}),
    "metadata": (None, {"key": "str", "value": "str"}),
    "options": (None, {"key": "str", "value": "str"}),
    "curves": (None, {"curve": "str", "kind": "str", "point": "int", "x": "float", "y": "float"}),
    "controls": (None, {"control": "str", "text": "str"}),
    "rules": (None, {"rule": "str", "line": "int", "text": "str"}),
    "demands": (None, {"node": "str", "demand_m3d": "float", "pattern": "str", "category": "str"}),
    "sources": (None, {"id": "str", "node": "str", "type": "str", "strength": "float", "pattern": "str"}),
}

REQUIRED_LAYERS = ("nodes", "pipes")
RESERVOIR_COLUMNS = ("bottom_elev_m", "diameter_m", "min_level_m", "max_level_m", "init_level_m")


def _fail(source: str, layer: str, msg: str) -> None:
    raise NetworkDataError(f"{source}: layer {layer!r}: {msg}")


def _check_columns(df: pd.DataFrame, layer: str, required: list[str], source: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        _fail(source, layer, f"missing column(s) {', '.join(map(repr, missing))}; "
              f"present: {', '.join(map(repr, map(str, df.columns)))}. "
              "Add them, or rename your columns with a mapping file (watersupply build --mapping).")


def _check_unique_ids(df: pd.DataFrame, layer: str, source: str, col: str = "id", *, epanet: bool = False) -> None:
    ids = df[col].astype(str)
    empty = df[col].isna() | (ids.str.strip() == "")
    if empty.any():
        rows = list(np.flatnonzero(empty.to_numpy())[:5])
        _fail(source, layer, f"empty {col!r} in row(s) {rows}; every feature needs an id")
    if epanet:
        # EPANET ids: at most 31 bytes, no spaces, semicolons or double quotes
        bad = ids.map(lambda v: len(v.encode("utf-8")) > 31 or any(c.isspace() or c in ';"' for c in v))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(source, layer, f"id {ids.iloc[i]!r} cannot be an EPANET id (at most 31 bytes, no spaces, ';' "
                  "or '\"'); rename it")
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        _fail(source, layer, f"duplicate id(s) {', '.join(map(repr, dup[:5]))}; ids must be unique")


_GEOM_OK = {"Point": ("Point",), "LineString": ("LineString",), "Polygon": ("Polygon", "MultiPolygon")}


def _check_geometry(df: gpd.GeoDataFrame, layer: str, expected: str, source: str) -> None:
    """Every feature has a non-empty geometry of the layer's type with finite coordinates."""
    geom = df.geometry
    ids = df["id"].astype(str) if "id" in df.columns else pd.Series(range(len(df)), index=df.index).astype(str)
    missing = geom.isna() | geom.is_empty
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        _fail(source, layer, f"feature {ids.iloc[i]!r} has an empty geometry; every {expected} needs coordinates")
    types = geom.geom_type
    wrong = ~types.isin(_GEOM_OK[expected])
    if wrong.any():
        i = int(np.flatnonzero(wrong.to_numpy())[0])
        _fail(source, layer, f"feature {ids.iloc[i]!r} is a {types.iloc[i]}, expected {expected}")
    bounds = geom.bounds.to_numpy()
    bad = ~np.isfinite(bounds).all(axis=1) | (np.abs(bounds) > 1e8).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _fail(source, layer, f"feature {ids.iloc[i]!r} has coordinates {bounds[i].tolist()} outside any "
              "plausible projected CRS (|x|, |y| <= 1e8 m); check the CRS and units")
    if expected == "LineString":
        short = geom.length <= 0
        if short.any():
            i = int(np.flatnonzero(short.to_numpy())[0])
            _fail(source, layer, f"pipe {ids.iloc[i]!r} has a zero-length geometry; remove it or fix its ends")
    if expected == "Polygon":
        invalid = ~geom.is_valid
        if invalid.any():
            i = int(np.flatnonzero(invalid.to_numpy())[0])
            _fail(source, layer, f"polygon {ids.iloc[i]!r} is invalid (self-intersecting?); repair it, e.g. "
                  "with shapely.make_valid or QGIS 'Fix geometries'")


def _check_numeric(df: pd.DataFrame, layer: str, col: str, source: str, *, positive: bool = False,
                   allow_nan: bool = False) -> None:
    raw = df[col]
    if raw.dtype == object or pd.api.types.is_bool_dtype(raw):
        # True/False are not numbers here, whatever Python thinks
        raw = raw.map(lambda v: None if isinstance(v, (bool, np.bool_)) else v)
    vals = pd.to_numeric(raw, errors="coerce")
    bad = vals.isna() & (~df[col].isna() | (not allow_nan))
    bad |= np.isinf(vals.fillna(0.0).astype(float))
    if positive:
        bad |= vals <= 0
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        ident = df["id"].iloc[i] if "id" in df.columns else i
        cond = "a number > 0" if positive else "a number"
        _fail(source, layer, f"column {col!r} of {ident!r} must be {cond}, got {df[col].iloc[i]!r}")


def validate_network(net: Network, *, source: str = "network") -> Network:
    """Check a network's layers against the layout and return it unchanged.

    Parameters
    ----------
    net
        Mapping of layer name to (Geo)DataFrame.
    source
        Where the network came from, for messages (a file path).

    Raises
    ------
    NetworkDataError
        Naming the source, layer, column or element and the fix.
    """
    for layer in REQUIRED_LAYERS:
        if layer not in net:
            raise NetworkDataError(f"{source}: layer {layer!r} is missing; a network needs layers "
                                   f"{', '.join(REQUIRED_LAYERS)} (see watersupply.schema)")
    crs = None
    for layer, df in net.items():
        if isinstance(df, gpd.GeoDataFrame):
            if df.crs is None:
                _fail(source, layer, "has no CRS; assign one (e.g. EPSG:4545) with --crs or GeoDataFrame.set_crs()")
            if crs is None:
                crs = df.crs
            elif df.crs != crs:
                _fail(source, layer, f"CRS {df.crs.to_string()} differs from {crs.to_string()}; "
                      "reproject all layers to one CRS with to_crs()")
            if df.crs.is_geographic:
                _fail(source, layer, f"CRS {df.crs.to_string()} is geographic (degrees); lengths need a "
                      "projected CRS in metres, e.g. EPSG:4545 — reproject with to_crs()")
    for layer, df in net.items():
        if not isinstance(df, pd.DataFrame):
            _fail(source, layer, f"is a {type(df).__name__}, not a table")
        lower = [str(c).lower() for c in df.columns]
        dup = sorted({c for c in lower if lower.count(c) > 1})
        if dup:
            _fail(source, layer, f"has columns that differ only in case ({', '.join(map(repr, dup))}); "
                  "GeoPackage column names are case-insensitive — rename or drop one")
        expected = LAYERS.get(layer, (None, {}))[0]
        if isinstance(df, gpd.GeoDataFrame) and expected is not None and len(df):
            _check_geometry(df, layer, expected, source)
    nodes, pipes = net["nodes"], net["pipes"]
    _check_columns(nodes, "nodes", ["id", "kind", "elevation_m"], source)
    _check_unique_ids(nodes, "nodes", source, epanet=True)
    bad_kind = ~nodes["kind"].isin(NODE_KINDS)
    if bad_kind.any():
        i = int(np.flatnonzero(bad_kind.to_numpy())[0])
        _fail(source, "nodes", f"node {nodes['id'].iloc[i]!r} has kind {nodes['kind'].iloc[i]!r}; "
              f"allowed: {', '.join(NODE_KINDS)}")
    _check_numeric(nodes, "nodes", "elevation_m", source)
    if not (nodes["kind"] == "plant").any() and not (nodes["kind"] == "reservoir").any():
        _fail(source, "nodes", "has no source: at least one node of kind 'plant' or 'reservoir' is needed")
    _check_columns(pipes, "pipes", ["id", "from_node", "to_node", "diameter_mm", "roughness_c"], source)
    _check_unique_ids(pipes, "pipes", source, epanet=True)
    _check_numeric(pipes, "pipes", "diameter_mm", source, positive=True)
    _check_numeric(pipes, "pipes", "roughness_c", source, positive=True)
    if "length_m" in pipes.columns:
        _check_numeric(pipes, "pipes", "length_m", source, positive=True)
    for col in ("dn_mm", "pn_mpa"):  # catalogue size and class (watersupply.pipe_catalogue); empty = as built
        if col in pipes.columns:
            _check_numeric(pipes, "pipes", col, source, positive=True, allow_nan=True)
    node_ids = set(nodes["id"].astype(str))
    for end in ("from_node", "to_node"):
        missing = ~pipes[end].astype(str).isin(node_ids)
        if missing.any():
            from ._errors import closest
            i = int(np.flatnonzero(missing.to_numpy())[0])
            ref = str(pipes[end].iloc[i])
            _fail(source, "pipes", f"pipe {pipes['id'].iloc[i]!r} has {end} {ref!r}, which is not in layer "
                  f"'nodes'; {closest(ref, node_ids)}")
    if "pumps" in net and len(net["pumps"]):
        pumps = net["pumps"]
        _check_columns(pumps, "pumps", ["id", "from_node", "to_node", "design_flow_ls", "design_head_m"], source)
        _check_unique_ids(pumps, "pumps", source, epanet=True)
        _check_numeric(pumps, "pumps", "design_flow_ls", source, positive=True)
        _check_numeric(pumps, "pumps", "design_head_m", source, positive=True)
        for end in ("from_node", "to_node"):
            missing = ~pumps[end].astype(str).isin(node_ids)
            if missing.any():
                i = int(np.flatnonzero(missing.to_numpy())[0])
                _fail(source, "pumps", f"pump {pumps['id'].iloc[i]!r} has {end} {pumps[end].iloc[i]!r}, "
                      "which is not in layer 'nodes'")
    tank_ids = set(nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str))
    if tank_ids:
        fac = net.get("facilities")
        if fac is None:
            _fail(source, "facilities", "is missing but nodes of kind 'reservoir' exist; reservoirs need "
                  f"{', '.join(RESERVOIR_COLUMNS)} in a facilities layer")
        _check_columns(fac, "facilities", ["id", "kind", "node_id", *RESERVOIR_COLUMNS], source)
        res = fac[fac["kind"] == "reservoir"]
        for col in RESERVOIR_COLUMNS:
            _check_numeric(res, "facilities", col, source, positive=col == "diameter_m")
        lv = res[list(RESERVOIR_COLUMNS)].apply(pd.to_numeric, errors="coerce")
        order = (lv["min_level_m"] >= 0) & (lv["min_level_m"] <= lv["init_level_m"]) & \
            (lv["init_level_m"] <= lv["max_level_m"])
        if not order.all():
            i = int(np.flatnonzero(~order.to_numpy())[0])
            _fail(source, "facilities", f"reservoir {res['id'].iloc[i]!r} needs 0 <= min_level_m <= init_level_m "
                  f"<= max_level_m, got {lv.iloc[i][['min_level_m', 'init_level_m', 'max_level_m']].tolist()}")
        described = set(res["node_id"].astype(str))
        missing = sorted(tank_ids - described)
        if missing:
            _fail(source, "facilities", f"reservoir node(s) {', '.join(map(repr, missing[:5]))} have no "
                  "facility row of kind 'reservoir' with levels and diameter")
    _check_operations(net, source)
    if "settlements" in net and len(net["settlements"]):
        st = net["settlements"]
        _check_columns(st, "settlements", ["id", "kind", "population"], source)
        _check_unique_ids(st, "settlements", source)
        pop = pd.to_numeric(st["population"], errors="coerce")
        bad = pop.isna() | (pop < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(source, "settlements", f"settlement {st['id'].iloc[i]!r} has population "
                  f"{st['population'].iloc[i]!r}; give a number of people >= 0")
    return net


def _check_operations(net: Network, source: str) -> None:
    """Pump curves named by the pumps exist; float valves (facilities ``inlet_link`` ...) name a pipe of
    their reservoir with ordered levels (see :mod:`watersupply.pumpcurves`, :mod:`watersupply.operations`)."""
    curves = net.get("curves")
    names = set(curves["curve"].astype(str)) if curves is not None and len(curves) else set()
    pumps = net.get("pumps")
    if pumps is not None and len(pumps):
        for col in ("curve", "efficiency_curve"):
            if col not in pumps.columns:
                continue
            for pid, c in zip(pumps["id"], pumps[col]):
                if c is not None and not (isinstance(c, float) and np.isnan(c)) and str(c) and str(c) not in names:
                    _fail(source, "pumps", f"pump {pid!r} names {col} {str(c)!r}, which is not in table 'curves'; "
                          "add the curve or clear the column (watersupply.pumpcurves.fit_pump_curves makes both)")
    hyd = net.get("hydrants")
    if hyd is not None and len(hyd):
        _check_columns(hyd, "hydrants", ["id", "pipe", "node"], source)
        _check_unique_ids(hyd, "hydrants", source)
        for col, ids, what in (("pipe", set(net["pipes"]["id"].astype(str)), "pipes"),
                               ("node", set(net["nodes"]["id"].astype(str)), "nodes")):
            bad = ~hyd[col].astype(str).isin(ids)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                _fail(source, "hydrants", f"hydrant {hyd['id'].iloc[i]!r} has {col} {hyd[col].iloc[i]!r}, which is "
                      f"not in layer {what!r}; re-place the hydrants (watersupply.hydrants.add_hydrants)")
    fac = net.get("facilities")
    if fac is None or not len(fac) or "inlet_link" not in fac.columns:
        return
    pipes = net["pipes"]
    ends = {str(i): (str(a), str(b)) for i, a, b in zip(pipes["id"], pipes["from_node"], pipes["to_node"])}
    for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
        link = row.inlet_link
        if link is None or (isinstance(link, float) and np.isnan(link)) or not str(link):
            continue
        tank = str(row.node_id)
        if str(link) not in ends or tank not in ends[str(link)]:
            _fail(source, "facilities", f"reservoir {row.id!r}: inlet_link {str(link)!r} is not a pipe ending at "
                  f"node {tank!r}; give the pipe that fills it")
        lv = [pd.to_numeric(getattr(row, c, np.nan), errors="coerce") for c in
              ("min_level_m", "inlet_open_m", "inlet_close_m", "max_level_m")]
        if any(pd.isna(v) for v in lv) or not (lv[0] <= lv[1] < lv[2] <= lv[3]):
            _fail(source, "facilities", f"reservoir {row.id!r}: float valve levels need min_level_m <= "
                  f"inlet_open_m < inlet_close_m <= max_level_m, got {lv}")
