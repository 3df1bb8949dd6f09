"""WNTR's GIS layer schema: read it into a water network model, write it out.

WNTR (``wntr.network.to_gis`` / ``from_gis``) describes a network as six layers,
``junctions``, ``tanks``, ``reservoirs`` (points) and ``pipes``, ``pumps``,
``valves`` (lines), indexed by ``name``, in SI units (m, m³/s, W), with the
attribute names of WNTR's elements (``elevation``, ``base_demand``,
``demand_pattern``, ``diameter``, ``roughness``, ``check_valve``,
``initial_status``, ``pump_type``, ``pump_curve_name``, ``power``,
``valve_type``, ``initial_setting``, ``start_node_name``, ``end_node_name`` ...).
Patterns, curves, controls, rules, sources and options are not in the layers;
they come from a *companion* model (an EPANET INP or WNTR's ``write_json``).

:func:`read_layers` reads the layers from a folder, a GeoPackage or one file per
layer; :func:`wn_from_layers` joins links to nodes by ``start_node_name`` /
``end_node_name`` (or, where those are missing, by snapping the line ends to the
nearest node within a tolerance) and rebuilds a ``WaterNetworkModel`` with the
companion's options, patterns, curves, controls and sources. Attributes the
layers lack (e.g. a junction's second and further demands, which WNTR's layers
do not carry) are taken from the companion's element of the same name; every
attribute the layers carry wins.

A *layer-set mapping* (YAML, see ``watersupply/mappings/``) lets a QGIS plug-in's
layers in: layer names, column names, the flow units of the values and how valve
settings are split over columns.

Examples
--------
>>> import wntr
>>> wn = wntr.network.WaterNetworkModel(wntr.library.__path__[0] + "/networks/Net1.inp")
>>> g = wntr.network.to_gis(wn)
>>> layers = read_layers(**{k: getattr(g, k) for k in LAYERS if len(getattr(g, k))})
>>> wn2, notes = wn_from_layers(layers, companion=wn)
>>> sorted(wn2.node_name_list) == sorted(wn.node_name_list)
True
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import wntr

from ._errors import ConfigError, NetworkDataError

__all__ = [
    "LAYERS",
    "LINK_LAYERS",
    "MAPPINGS_DIR",
    "NODE_LAYERS",
    "build_from_layers",
    "convert_to_layers",
    "is_wntr_layer",
    "load_layer_mapping",
    "looks_like_wntr",
    "read_companion",
    "read_layers",
    "wn_from_layers",
    "write_layers",
]

NODE_LAYERS = ("junctions", "tanks", "reservoirs")
LINK_LAYERS = ("pipes", "pumps", "valves")
LAYERS = NODE_LAYERS + LINK_LAYERS
_TYPE = {"junctions": "Junction", "tanks": "Tank", "reservoirs": "Reservoir", "pipes": "Pipe", "pumps": "Pump",
         "valves": "Valve"}
#: The layer-set mappings shipped with the package (``watersupply/mappings/<name>.yaml``).
MAPPINGS_DIR = Path(__file__).with_name("mappings")
_FILE_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")
#: Columns each layer must have (or get from the companion) for EPANET to have the element.
_REQUIRED = {"junctions": ("elevation",), "tanks": ("elevation", "init_level", "min_level", "max_level", "diameter"),
             "reservoirs": ("base_head",), "pipes": ("length", "diameter", "roughness"), "pumps": ("pump_type",),
             "valves": ("valve_type", "diameter")}
#: Names a layer's values refer to: column -> "pattern" or "curve".
_REFERENCES = {"junctions": {"demand_pattern": "pattern"}, "tanks": {"vol_curve_name": "curve"},
               "reservoirs": {"head_pattern_name": "pattern"},
               "pumps": {"pump_curve_name": "curve", "speed_pattern_name": "pattern", "energy_pattern": "pattern",
                         "efficiency_curve_name": "curve"}, "pipes": {}, "valves": {"headloss_curve_name": "curve"}}
#: Numeric columns (checked, with the feature named) and those that must be above zero.
_NUMERIC = {"elevation", "base_demand", "emitter_coefficient", "init_level", "min_level", "max_level", "diameter",
            "min_vol", "base_head", "length", "roughness", "minor_loss", "power", "base_speed", "initial_quality",
            "energy_price", "bulk_coeff", "wall_coeff", "mixing_fraction", "minimum_pressure", "required_pressure",
            "pressure_exponent"}
_POSITIVE = {"diameter", "length", "roughness"}
#: Object-valued attributes of WNTR's elements that the layers cannot carry as values (names are used instead).
_OBJECT_COLUMNS = {"headloss_curve", "vol_curve", "pump_curve", "efficiency_curve", "demand_timeseries_list",
                   "speed_timeseries", "coordinates", "vertices", "head_timeseries"}
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
#: Columns converted from a mapping's flow units to SI, with WNTR's EPANET parameter names.
_UNIT_PARAMS = {
    "junctions": {"elevation": "Elevation", "base_demand": "Demand", "emitter_coefficient": "EmitterCoeff"},
    "tanks": {"elevation": "Elevation", "init_level": "HydraulicHead", "min_level": "HydraulicHead",
              "max_level": "HydraulicHead", "diameter": "TankDiameter", "min_vol": "Volume"},
    "reservoirs": {"base_head": "HydraulicHead"},
    "pipes": {"length": "Length", "diameter": "PipeDiameter"},
    "pumps": {"power": "Power"},
    "valves": {"diameter": "PipeDiameter"},
}


# ----------------------------------------------------------------------------- mapping


def load_layer_mapping(mapping: Mapping[str, Any] | str | os.PathLike | None) -> dict[str, Any]:
    """Read a layer-set mapping: a dict, a YAML file, or the name of a shipped one (e.g. ``"gusnet"``).

    Keys: ``layers`` (WNTR layer -> the plug-in's layer/file name), ``columns``
    (WNTR layer -> {WNTR column: the plug-in's column}), ``units`` (the flow units
    the values are in, as EPANET's: LPS, GPM, CMH ...; lengths, heads and
    diameters follow them as in an INP file; default SI as WNTR writes) and
    ``valve_setting`` (valve type -> the column holding its setting).

    Raises
    ------
    ConfigError
        The file is missing, not YAML, or has keys or layer names not listed above.
    """
    if mapping is None:
        return {}
    source = "layer mapping"
    if isinstance(mapping, (str, os.PathLike)):
        from .io import read_yaml

        p = Path(mapping)
        if not p.suffix and not p.exists() and (MAPPINGS_DIR / f"{p.name}.yaml").is_file():
            p = MAPPINGS_DIR / f"{p.name}.yaml"
        source = str(p)
        shipped = ", ".join(sorted(q.stem for q in MAPPINGS_DIR.glob("*.yaml")))
        mapping = read_yaml(p, missing=f"layer mapping not found; give a YAML file or a shipped one ({shipped})",
                            invalid="not a YAML mapping ({error})")
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{source}: a layer mapping must be a YAML mapping with layers/columns/units")
    known = {"plugin", "layers", "columns", "units", "valve_setting", "inline", "notes"}
    extra = sorted(set(map(str, mapping)) - known)
    if extra:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(extra)}; use {', '.join(sorted(known))}")
    out = {k: mapping.get(k) for k in known if mapping.get(k) is not None}
    for key in ("layers", "columns"):
        bad = sorted(set(map(str, out.get(key) or {})) - set(LAYERS))
        if bad:
            raise ConfigError(f"{source}: {key}: unknown layer(s) {', '.join(bad)}; use {', '.join(LAYERS)}")
    if "units" in out:
        from wntr.epanet.util import FlowUnits

        u = str(out["units"]).upper()
        if u not in FlowUnits.__members__:
            names = sorted({m for m in FlowUnits.__members__ if m.isupper() and m != "SI"})
            raise ConfigError(f"{source}: units {out['units']!r} unknown; use SI or EPANET's flow units "
                              f"{', '.join(names)}")
        out["units"] = u
    return out


# ----------------------------------------------------------------------------- reading


def is_wntr_layer(df: pd.DataFrame) -> bool:
    """Whether a layer looks like one of WNTR's link layers (it has ``start_node_name``/``end_node_name``)."""
    cols = {str(c).lower() for c in df.columns}
    return {"start_node_name", "end_node_name"} <= cols or {"start_node", "end_node_n"} <= cols


def _find_in_folder(folder: Path, layer: str, alias: str | None) -> Path | None:
    names = [n.lower() for n in (alias, layer) if n]
    # files, and folders holding one Shapefile as WNTR's write_shapefile(prefix) writes them
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FILE_SUFFIXES
                   or (p.is_dir() and any(p.glob("*.shp"))))
    for n in names:
        for p in files:
            stem = p.stem.lower()
            # WNTR's write_geojson(prefix) names files '<prefix>_junctions.geojson'
            if stem == n or stem.endswith("_" + n):
                return p
    return None


def _read_one(src: Any, label: str) -> gpd.GeoDataFrame:
    if isinstance(src, gpd.GeoDataFrame):
        return src.copy()
    if isinstance(src, pd.DataFrame):
        raise NetworkDataError(f"{label}: a DataFrame without geometry; give a GeoDataFrame or a GIS file")
    p = Path(src)
    if not p.exists():
        raise NetworkDataError(f"{label}: file not found: {p}")
    try:
        return gpd.read_file(p)
    except Exception as exc:  # noqa: BLE001 - pyogrio raises DataSourceError, DataLayerError ...
        raise NetworkDataError(f"{label}: cannot read {p} as a GIS layer: {exc}") from None


def read_layers(source: str | os.PathLike | None = None, *, mapping: Mapping[str, Any] | None = None,
                **layers: Any) -> dict[str, gpd.GeoDataFrame]:
    """Read WNTR-schema layers from a folder or GeoPackage and/or one source per layer.

    Parameters
    ----------
    source
        A folder (files ``junctions.geojson`` ... or WNTR's ``<prefix>_junctions.geojson``;
        GeoJSON, GeoPackage, Shapefile or FlatGeobuf) or a GeoPackage with layers
        named ``junctions`` ... (matched case-insensitively, also with a prefix).
    mapping
        A layer-set mapping from :func:`load_layer_mapping` (layer names and columns).
    **layers
        ``junctions=``, ``tanks=`` ... : a file or GeoDataFrame per layer; overrides `source`.

    Returns
    -------
    dict
        ``{layer: GeoDataFrame}`` with WNTR's column names and a ``name`` column;
        absent layers are left out.

    Raises
    ------
    NetworkDataError
        A file cannot be read, a layer has no names, or no pipes layer is found.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise TypeError(f"unknown layer(s) {', '.join(unknown)}; use {', '.join(LAYERS)}")
    aliases = {k: str(v) for k, v in (mapping.get("layers") or {}).items()}
    found: dict[str, tuple[Any, str]] = {}
    if source is not None:
        s = Path(source)
        if s.is_dir():
            for layer in LAYERS:
                p = _find_in_folder(s, layer, aliases.get(layer))
                if p is not None:
                    found[layer] = (p, f"layer {layer} ({p.name})")
        elif s.is_file() and s.suffix.lower() == ".gpkg":
            try:
                available = [str(n) for n in pyogrio.list_layers(s)[:, 0]]
            except Exception as exc:  # noqa: BLE001 - any pyogrio/GDAL failure
                raise NetworkDataError(f"{s}: cannot read this GeoPackage: {exc}") from None
            for layer in LAYERS:
                for n in (aliases.get(layer), layer):
                    hit = [a for a in available if n and (a.lower() == n.lower() or a.lower().endswith("_" + n.lower()))]
                    if hit:
                        found[layer] = ((s, hit[0]), f"layer {layer} ({s.name}:{hit[0]})")
                        break
        else:
            raise NetworkDataError(f"{s}: not a folder or a GeoPackage; give the folder holding junctions, tanks, "
                                   "reservoirs, pipes, pumps, valves layers (or a .gpkg with those layers)")
    for layer, src in layers.items():
        if src is not None:
            name = Path(src).name if isinstance(src, (str, os.PathLike)) else "GeoDataFrame"
            found[layer] = (src, f"layer {layer} ({name})")
    out: dict[str, gpd.GeoDataFrame] = {}
    for layer, (src, label) in found.items():
        if isinstance(src, tuple):
            try:
                df = gpd.read_file(src[0], layer=src[1])
            except Exception as exc:  # noqa: BLE001 - any pyogrio/GDAL failure
                raise NetworkDataError(f"{label}: cannot read: {exc}") from None
        else:
            df = _read_one(src, label)
        df.attrs["label"] = label
        out[layer] = _standard_columns(df, layer, label, mapping)
    if "pipes" not in out and "pumps" not in out and "valves" not in out:
        where = f" in {source}" if source is not None else ""
        raise NetworkDataError(f"no pipes layer{where}; give a folder or GeoPackage holding a 'pipes' layer, or "
                               "--pipes")
    return out


def _standard_columns(df: gpd.GeoDataFrame, layer: str, label: str, mapping: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """Rename to WNTR's columns (mapping, then Shapefile's 10-character names), set a ``name`` column."""
    cols = {str(k): str(v) for k, v in ((mapping.get("columns") or {}).get(layer) or {}).items()}
    missing = sorted(v for k, v in cols.items() if v not in df.columns and k not in df.columns)
    if missing and len(missing) == len(cols):
        raise NetworkDataError(f"{label}: none of the mapped columns {', '.join(missing)} is in the layer (it has "
                               f"{', '.join(map(str, df.columns[:12]))}); check the mapping's 'columns: {layer}:'")
    df = df.rename(columns={v: k for k, v in cols.items() if v in df.columns})
    setting = mapping.get("valve_setting") if layer == "valves" else None
    if setting and "initial_setting" not in df.columns and "valve_type" in df.columns:
        vt = df["valve_type"].astype("string").str.upper()
        val = pd.Series([None] * len(df), index=df.index, dtype=object)
        curve = pd.Series([None] * len(df), index=df.index, dtype=object)
        for typ, col in setting.items():
            if col in df.columns:
                m = (vt == str(typ).upper()).fillna(False).to_numpy()
                if str(typ).upper() == "GPV":
                    curve[m] = df.loc[m, col]
                else:
                    val[m] = df.loc[m, col]
        df["initial_setting"] = val
        if "headloss_curve_name" not in df.columns:
            df["headloss_curve_name"] = curve
    # Shapefiles keep 10 characters of a column name: restore WNTR's
    full = {a[:10]: a for lay in LAYERS for a in _wntr_attributes(lay)}
    df = df.rename(columns={c: full[c] for c in df.columns if c in full and full[c] not in df.columns})
    if "name" not in df.columns:
        if df.index.name == "name":  # WNTR's to_gis GeoDataFrames are indexed by name
            df = df.reset_index()
        else:
            raise NetworkDataError(f"{label}: no 'name' column; WNTR's layers are indexed by element name — "
                                   f"add a 'name' column (or map yours: columns: {layer}: {{name: YOUR_COLUMN}})")
    df["name"] = df["name"].astype("string").str.strip()
    blank = df["name"].isna() | (df["name"] == "")
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise NetworkDataError(f"{label}: feature {i + 1} has no name (column 'name'); give every feature a unique "
                               "name")
    dup = df["name"].duplicated()
    if dup.any():
        raise NetworkDataError(f"{label}: name {df['name'][dup].iloc[0]!r} (column 'name') is used by more than one "
                               "feature; names must be unique")
    df["name"] = df["name"].astype(str)
    return df


def _wntr_attributes(layer: str) -> list[str]:
    obj = getattr(wntr.network.elements, _TYPE[layer])
    return list(obj._base_attributes) + list(getattr(obj, "_optional_attributes", []))


def read_companion(path: str | os.PathLike | None) -> wntr.network.WaterNetworkModel | None:
    """Read the model holding options, patterns, curves, controls: an EPANET INP or WNTR JSON (``write_json``).

    Raises
    ------
    NetworkDataError
        The file is missing, or EPANET/WNTR cannot read it (with the line where known).
    """
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise NetworkDataError(f"{p}: companion model not found; give the EPANET .inp (or WNTR .json) that holds the "
                               "options, patterns, curves and controls of the layers")
    if p.suffix.lower() == ".json":
        try:
            return wntr.network.read_json(str(p))
        except Exception as exc:  # noqa: BLE001 - json, KeyError, TypeError ...
            raise NetworkDataError(f"{p}: not a WNTR JSON model (wntr.network.write_json): "
                                   f"{type(exc).__name__}: {exc}") from None
    import warnings

    from .convert import _inp_location, _messages, _read_wn

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return _read_wn(p)
    except NetworkDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - WNTR raises EpanetException, ValueError, KeyError ...
        where = _inp_location(exc)
        raise NetworkDataError(f"{p}: EPANET/WNTR cannot read this INP file"
                               f"{' at ' + where if where else ''}: {_messages(exc)}") from None


# ----------------------------------------------------------------------------- building


def _clean(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _to_si(values: list[Any], param: str, units: str | None, label: str, col: str) -> list[Any]:
    if not units or units == "SI":
        return values
    from wntr.epanet.util import FlowUnits, HydParam, to_si

    fu = FlowUnits[units]
    return [None if v is None else float(to_si(fu, float(v), HydParam[param])) for v in values]


def _number(v: Any, label: str, name: str, col: str) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise NetworkDataError(f"{label}: feature {name!r}, column {col!r}: {v!r} is not a number; give a number "
                               "in SI units (m, m³/s) as WNTR writes") from None
    if not math.isfinite(x):
        raise NetworkDataError(f"{label}: feature {name!r}, column {col!r}: {v!r} is not a finite number")
    return x


def _records(layer: str, df: gpd.GeoDataFrame, base: dict[str, dict], units: str | None,
             notes: list[str]) -> list[dict]:
    """One WNTR ``to_dict`` record per feature: the companion's element, overlaid by the layer's columns."""
    label = df.attrs.get("label", f"layer {layer}")
    typ = _TYPE[layer]
    known = set(_wntr_attributes(layer)) | {"name", "start_node_name", "end_node_name", "demand_pattern",
                                            "demand_category", "base_demand", "pump_curve_name",
                                            "speed_pattern_name", "efficiency_curve_name", "head_pattern_name",
                                            "vol_curve_name", "energy_pattern", "energy_price", "power",
                                            "initial_setting", "valve_type", "pump_type", "headloss_curve_name"}
    cols = [c for c in df.columns if c != df.geometry.name and c in known and c not in _OBJECT_COLUMNS]
    data = {c: [_clean(v) for v in df[c].tolist()] for c in cols}
    for c in cols:
        if c in _NUMERIC:
            data[c] = [_number(v, label, n, c) for v, n in zip(data[c], df["name"])]
            if c in _POSITIVE:
                bad = [n for v, n in zip(data[c], df["name"]) if v is not None and v <= 0]
                if bad:
                    raise NetworkDataError(f"{label}: feature {bad[0]!r}, column {c!r}: must be above 0; fix the value "
                                           f"({len(bad)} feature(s) affected)")
    for c, param in _UNIT_PARAMS[layer].items():
        if c in data:
            data[c] = _to_si([_number(v, label, n, c) for v, n in zip(data[c], df["name"])], param, units, label, c)
    if layer == "valves" and units and units != "SI" and "initial_setting" in data and "valve_type" in data:
        from wntr.epanet.util import FlowUnits, HydParam, to_si

        fu = FlowUnits[units]
        for i, (vt, s) in enumerate(zip(data["valve_type"], data["initial_setting"])):
            kind = str(vt).upper()
            if s is not None and kind in ("PRV", "PSV", "PBV", "FCV"):
                param = HydParam.Flow if kind == "FCV" else HydParam.Pressure
                data["initial_setting"][i] = float(to_si(fu, float(s), param))
    out = []
    geoms = df.geometry.tolist()
    for i, name in enumerate(df["name"]):
        old = base.get(name)
        rec = copy.deepcopy(old) if old is not None and old.get(f"{'node' if layer in NODE_LAYERS else 'link'}_type") \
            == typ else {"name": name}
        for c in cols:
            rec[c] = data[c][i]
        g = geoms[i]
        if g is None or g.is_empty:
            raise NetworkDataError(f"{label}: feature {name!r} has no geometry; draw it "
                                   f"({'a point' if layer in NODE_LAYERS else 'a line from start to end node'})")
        if layer in NODE_LAYERS:
            if g.geom_type != "Point":
                raise NetworkDataError(f"{label}: feature {name!r} is a {g.geom_type}; {layer} must be points")
            rec["coordinates"] = (float(g.x), float(g.y))
            rec["node_type"] = typ
        else:
            if g.geom_type == "MultiLineString" and len(g.geoms) == 1:
                g = g.geoms[0]
            if g.geom_type not in ("LineString", "Point"):
                raise NetworkDataError(f"{label}: feature {name!r} is a {g.geom_type}; {layer} must be single lines "
                                       "(or points for pumps/valves drawn as points)")
            xy = list(g.coords)
            rec["vertices"] = [tuple(map(float, c[:2])) for c in xy[1:-1]] if g.geom_type == "LineString" else []
            rec["_ends"] = (tuple(map(float, xy[0][:2])), tuple(map(float, xy[-1][:2])))
            rec["link_type"] = typ
        for c in ("check_valve", "overflow"):
            if c in rec and rec[c] is not None and not isinstance(rec[c], bool):
                b = _BOOL.get(str(rec[c]).strip().lower())
                if b is None:
                    raise NetworkDataError(f"{label}: feature {name!r}, column {c!r}: {rec[c]!r} is not true/false")
                rec[c] = b
        for c in _REQUIRED[layer]:
            if rec.get(c) is None:
                raise NetworkDataError(f"{label}: feature {name!r} has no {c!r}; fill the column {c!r} (SI units) "
                                       "or give the companion model that has it (--inp-options)")
        if layer == "valves" and rec.get("initial_setting") is None:
            if str(rec.get("valve_type", "")).upper() == "GPV":
                rec["initial_setting"] = 0.0  # a GPV's setting is its headloss curve
            else:
                raise NetworkDataError(f"{label}: feature {name!r} ({rec.get('valve_type')}) has no 'initial_setting'; "
                                       "fill it (m for PRV/PSV/PBV, m³/s for FCV, loss coefficient for TCV)")
        if layer == "junctions" and any(c in cols for c in ("base_demand", "demand_pattern", "demand_category")):
            first = {"base_val": rec.get("base_demand") or 0.0, "pattern_name": rec.get("demand_pattern"),
                     "category": rec.get("demand_category")}
            rest = list((old or {}).get("demand_timeseries_list") or [])[1:] if old else []
            rec["demand_timeseries_list"] = [first] + rest
        for c in ("initial_status",):
            if rec.get(c) is not None:
                rec[c] = str(rec[c]).upper()
        out.append(rec)
    return out


def _join_ends(links: dict[str, list[dict]], nodes: dict[str, tuple[float, float]],
               labels: dict[str, str], tolerance: float, notes: list[str]) -> None:
    from scipy.spatial import cKDTree

    names = list(nodes)
    tree = cKDTree(np.array([nodes[n] for n in names])) if names else None
    snapped = 0
    for layer, recs in links.items():
        for rec in recs:
            ends = rec.pop("_ends")
            for col, xy in zip(("start_node_name", "end_node_name"), ends):
                v = rec.get(col)
                if v is not None and str(v).strip():
                    v = str(v).strip()
                    if isinstance(rec.get(col), float) and float(rec[col]).is_integer():
                        v = str(int(rec[col]))
                    if v not in nodes:
                        raise NetworkDataError(
                            f"{labels[layer]}: feature {rec['name']!r}, column {col!r}: node {v!r} is in none of the "
                            "junctions, tanks, reservoirs layers; give the layer that has it (--layers, --tanks, "
                            "--reservoirs) or correct the name")
                    rec[col] = v
                    continue
                if tree is None:
                    raise NetworkDataError(f"{labels[layer]}: no node layers to join the links to")
                d, k = tree.query(xy)
                if d > tolerance:
                    raise NetworkDataError(
                        f"{labels[layer]}: feature {rec['name']!r} has no {col!r} and its "
                        f"{'start' if col.startswith('start') else 'end'} is {d:.3g} from the nearest node "
                        f"{names[k]!r} (tolerance {tolerance:g}); fill {col!r}, move the line end onto the node or "
                        "raise --tolerance-m")
                rec[col] = names[k]
                snapped += 1
    if snapped:
        notes.append(f"{snapped} link end(s) had no start_node_name/end_node_name and were joined to the nearest "
                     f"node within {tolerance:g}")


def wn_from_layers(layers: Mapping[str, gpd.GeoDataFrame], *, companion: wntr.network.WaterNetworkModel | None = None,
                   units: str | None = None, tolerance: float = 1.0, inline: bool = False,
                   companion_label: str = "the companion model") -> tuple[wntr.network.WaterNetworkModel, list[str]]:
    """Rebuild a WNTR model from WNTR-schema layers and a companion model.

    Parameters
    ----------
    layers
        ``{layer: GeoDataFrame}`` as from :func:`read_layers` (a ``name`` column,
        WNTR's column names).
    companion
        The model holding options, patterns, curves, controls, rules and sources
        (and the attributes the layers lack); ``None`` for WNTR's defaults.
    units
        Flow units the layers' values are in (``None``/``"SI"``: SI, as WNTR writes).
    tolerance
        Link ends without ``start_node_name``/``end_node_name`` join the nearest node
        within this distance (layer units).
    inline
        Pattern and curve columns may hold the values themselves, as Gusnet writes
        them (``"1 1.2 0.8"``, ``"[(0, 50), (10, 40)]"``, in the layers' units);
        each such value becomes a pattern or curve of its own.

    Returns
    -------
    (WaterNetworkModel, list of str)
        The model and notes on what was assumed.

    Raises
    ------
    NetworkDataError
        Naming layer, feature and column: a missing required value, a node name no
        node layer has, a line end far from every node, a pattern or curve the
        companion lacks, a control naming an element the layers lack.
    """
    notes: list[str] = []
    d = companion.to_dict() if companion is not None else wntr.network.WaterNetworkModel().to_dict()
    base_nodes = {r["name"]: r for r in d.get("nodes", [])}
    base_links = {r["name"]: r for r in d.get("links", [])}
    labels = {k: v.attrs.get("label", f"layer {k}") for k, v in layers.items()}
    node_recs: list[dict] = []
    link_recs: dict[str, list[dict]] = {}
    for layer in LAYERS:
        df = layers.get(layer)
        if df is None or not len(df):
            continue
        recs = _records(layer, df, base_nodes if layer in NODE_LAYERS else base_links, units, notes)
        if layer in NODE_LAYERS:
            node_recs += recs
        else:
            link_recs[layer] = recs
    hl = str(((d.get("options") or {}).get("hydraulic") or {}).get("headloss", "H-W")).upper()
    if units and units != "SI" and hl == "D-W":
        from wntr.epanet.util import FlowUnits, HydParam, to_si

        for r in link_recs.get("pipes", []):
            if r.get("roughness") is not None and "roughness" in layers["pipes"].columns:
                r["roughness"] = float(to_si(FlowUnits[units], float(r["roughness"]), HydParam.RoughnessCoeff,
                                             darcy_weisbach=True))
    if not node_recs:
        raise NetworkDataError("no junctions, tanks or reservoirs layer; WNTR's schema needs the node layers")
    seen: dict[str, str] = {}
    for layer in LAYERS:
        for name in (layers[layer]["name"] if layer in layers else []):
            kind = "node" if layer in NODE_LAYERS else "link"
            if (kind, name) in seen:
                raise NetworkDataError(f"{labels[layer]}: name {name!r} is also in {seen[(kind, name)]}; every "
                                       f"{kind} needs a unique name")
            seen[(kind, name)] = labels[layer]
    pos = {r["name"]: r["coordinates"] for r in node_recs}
    _join_ends(link_recs, pos, labels, tolerance, notes)
    # references to patterns and curves
    have = {"pattern": {p["name"] for p in d.get("patterns", [])}, "curve": {c["name"] for c in d.get("curves", [])}}
    # references to patterns and curves
    have = {"pattern": {p["name"] for p in d.get("patterns", [])}, "curve": {c["name"] for c in d.get("curves", [])}}
    all_recs = [(lay, r) for lay in NODE_LAYERS for r in node_recs if r["node_type"] == _TYPE[lay]] + \
        [(lay, r) for lay, rs in link_recs.items() for r in rs]
    if inline:
        _inline_values(all_recs, have, d, units, labels)
    missing: dict[tuple[str, str], dict[tuple[str, str], list[str]]] = {}

    def _miss(what: str, v: Any, lay: str, col: str, name: str) -> None:
        missing.setdefault((what, str(v)), {}).setdefault((labels[lay], col), []).append(name)

    for lay, r in all_recs:
        refs = dict(_REFERENCES[lay])
        if lay == "valves" and str(r.get("valve_type", "")).upper() != "GPV":
            refs = {}
        for col, what in refs.items():
            v = _clean(r.get(col))
            if v is not None and str(v) not in have[what]:
                _miss(what, v, lay, col, r["name"])
        if lay == "junctions":
            for k, dm in enumerate(r.get("demand_timeseries_list") or []):
                v = _clean(dm.get("pattern_name"))
                if k and v is not None and str(v) not in have["pattern"]:
                    _miss("pattern", v, lay, "(a further demand of the companion)", r["name"])
        if lay == "pumps" and str(r.get("pump_type", "")).upper() == "POWER" and r.get("power") is None:
            raise NetworkDataError(f"{labels[lay]}: feature {r['name']!r} is a POWER pump without 'power' (W); "
                                   "fill the column 'power' or make it a HEAD pump with pump_curve_name")
        if lay == "pumps" and str(r.get("pump_type", "")).upper() == "HEAD" and r.get("pump_curve_name") is None:
            raise NetworkDataError(f"{labels[lay]}: feature {r['name']!r} is a HEAD pump without 'pump_curve_name'; "
                                   "fill it with the name of a curve in the companion model (--inp-options)")
    if missing:
        parts = []
        for (what, v), uses in sorted(missing.items()):
            where = "; ".join(f"{lab}, column {col!r}, feature(s) {', '.join(map(repr, names[:3]))}"
                              f"{f' and {len(names) - 3} more' if len(names) > 3 else ''}"
                              for (lab, col), names in sorted(uses.items()))
            parts.append(f"{what} {v!r} (referenced by {where})")
        src = f"in {companion_label}" if companion is not None else "(no companion model was given)"
        raise NetworkDataError(f"referenced but missing {src}: {'; '.join(parts[:6])}"
                               f"{f' (and {len(parts) - 6} more)' if len(parts) > 6 else ''}; give the EPANET INP "
                               "or WNTR JSON that defines them with --inp-options")
    node_names = set(pos)
    link_names = {r["name"] for rs in link_recs.values() for r in rs}
    lost_n = sorted(set(base_nodes) - node_names)
    lost_l = sorted(set(base_links) - link_names)
    if lost_n or lost_l:
        notes.append(f"{len(lost_n)} node(s) and {len(lost_l)} link(s) of {companion_label} are not in the layers "
                     f"and were left out (e.g. {', '.join((lost_n + lost_l)[:5])})")
    controls = []
    for c in d.get("controls", []):
        text = str(c)
        refs = _control_refs(c)
        gone = sorted(n for kind, n in refs if n not in (node_names if kind == "node" else link_names))
        if gone:
            raise NetworkDataError(f"{companion_label}: a control or rule names {', '.join(map(repr, gone[:5]))}, "
                                   "which no layer has; add the element(s) to the layers or remove the control from "
                                   f"the companion model ({text[:120]})")
        controls.append(c)
    srcs = [s for s in d.get("sources", []) if s.get("node_name") in node_names or not s.get("node_name")]
    for s in d.get("sources", []):
        if s.get("node_name") and s.get("node_name") not in node_names:
            raise NetworkDataError(f"{companion_label}: a quality source is at node {s['node_name']!r}, which no "
                                   "node layer has; add the node or remove the source")
    d2 = dict(d)
    d2["nodes"] = node_recs
    d2["links"] = [r for lay in LINK_LAYERS for r in link_recs.get(lay, [])]
    d2["controls"] = controls
    d2["sources"] = srcs
    try:
        wn = wntr.network.from_dict(d2)
    except NetworkDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - WNTR raises KeyError, ValueError, AssertionError ...
        raise NetworkDataError(f"WNTR cannot build the network from the layers: {type(exc).__name__}: {exc}") \
            from None
    return wn, notes


_CURVE_TYPE = {"pump_curve_name": ("HEAD", "Flow", "HydraulicHead"), "vol_curve_name": ("VOLUME", "HydraulicHead", "Volume"),
               "efficiency_curve_name": ("EFFICIENCY", "Flow", None),
               "headloss_curve_name": ("HEADLOSS", "Flow", "HeadLoss")}


def _inline_values(all_recs: list[tuple[str, dict]], have: dict[str, set[str]], d: dict, units: str | None,
                   labels: dict[str, str]) -> None:
    """Turn pattern/curve values written in the columns (Gusnet) into named patterns and curves of `d`."""
    import re

    from wntr.epanet.util import FlowUnits, HydParam, to_si

    num = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
    count = 0
    for lay, r in all_recs:
        refs = dict(_REFERENCES[lay])
        if lay == "valves" and str(r.get("valve_type", "")).upper() != "GPV":
            refs = {}
        for col, what in refs.items():
            v = _clean(r.get(col))
            if v is None or str(v) in have[what] or isinstance(v, (int, float)):
                continue
            text = str(v).strip()
            vals = [float(x) for x in num.findall(text)]
            if not vals or num.sub("", text).strip(" ,;()[]\t") != "":
                continue  # a name after all: reported as missing if the companion lacks it
            count += 1
            while f"GIS{count}" in have["pattern"] | have["curve"]:
                count += 1
            new = f"GIS{count}"
            if what == "pattern":
                d.setdefault("patterns", []).append({"name": new, "multipliers": vals})
            else:
                if len(vals) % 2:
                    raise NetworkDataError(f"{labels[lay]}: feature {r['name']!r}, column {col!r}: a curve needs x, y "
                                           f"pairs, got {len(vals)} numbers; write it as [(x1, y1), (x2, y2)]")
                ctype, px, py = _CURVE_TYPE[col]
                pts = list(zip(vals[::2], vals[1::2]))
                if units and units != "SI":
                    fu = FlowUnits[units]
                    pts = [(float(to_si(fu, x, HydParam[px])), float(to_si(fu, y, HydParam[py])) if py else y)
                           for x, y in pts]
                d.setdefault("curves", []).append({"name": new, "curve_type": ctype, "points": pts})
            have[what].add(new)
            r[col] = new
            if lay == "junctions" and col == "demand_pattern" and r.get("demand_timeseries_list"):
                r["demand_timeseries_list"][0]["pattern_name"] = new


def _control_refs(c: Any) -> set[tuple[str, str]]:
    """(``node`` or ``link``, name) of the elements a control/rule of ``to_dict`` refers to."""
    out: set[tuple[str, str]] = set()
    if isinstance(c, dict):
        for k, v in c.items():
            if k in ("name",):
                continue
            out |= _control_refs(v)
    elif isinstance(c, (list, tuple)):
        for v in c:
            out |= _control_refs(v)
    elif isinstance(c, str):
        import re

        for m in re.finditer(r"\b(?:JUNCTION|TANK|RESERVOIR|NODE|PIPE|PUMP|VALVE|LINK)\s+(\S+)", c, re.IGNORECASE):
            kind = "link" if m.group(0).split()[0].upper() in ("PIPE", "PUMP", "VALVE", "LINK") else "node"
            out.add((kind, m.group(1)))
    return out


# ----------------------------------------------------------------------------- writing


def write_layers(wn: wntr.network.WaterNetworkModel, out: str | os.PathLike, *, crs: Any = None) -> Path:
    """Write WNTR's GIS layers (``wntr.network.to_gis``) of `wn` into a GeoPackage, atomically.

    One layer per element type present (``junctions``, ``tanks``, ``reservoirs``,
    ``pipes``, ``pumps``, ``valves``) with a ``name`` column; patterns, curves,
    controls and options are not in WNTR's layers: keep the INP beside it (it is
    written next to the GeoPackage as ``<name>.inp`` by the caller) and pass it back
    with ``--inp-options``.
    """
    import warnings

    from .io import atomic_path

    o = Path(out)
    if o.suffix.lower() != ".gpkg":
        raise NetworkDataError(f"{o}: WNTR's layers are written into a GeoPackage; give a .gpkg output")
    g = wntr.network.to_gis(wn, crs=crs)
    with atomic_path(o) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*crs.*was not provided", category=UserWarning)
        for layer in LAYERS:
            df = getattr(g, layer)
            if df is None or not len(df):
                continue
            df = df.reset_index().rename(columns={"index": "name"})
            df.to_file(tmp, layer=layer, driver="GPKG")
    return o


def convert_to_layers(src: str | os.PathLike, out: str | os.PathLike, *, crs: Any = None) -> dict[str, Path]:
    """Write an INP file or a network GeoPackage as WNTR's layers, with the companion INP beside them.

    Parameters
    ----------
    src
        An EPANET INP file, or a network GeoPackage (its EPANET model, as
        ``watersupply convert`` writes it).
    out
        The GeoPackage of layers to write; the companion ``<out>.inp`` (options,
        patterns, curves, controls) is written beside it.
    crs
        For an INP: the CRS of its coordinates, recorded in the layers. A network
        GeoPackage's own CRS is used.

    Returns
    -------
    dict
        ``{"layers": ..., "inp": ...}``. Build back with
        ``watersupply build --layers <out> --inp-options <out>.inp``.
    """
    import shutil

    from .io import atomic_path, read_network
    from .model import keep_as_is, to_wntr, write_inp

    s, o = Path(src), Path(out)
    if o.suffix.lower() != ".gpkg":
        raise NetworkDataError(f"{o}: WNTR's layers are written into a GeoPackage; give a .gpkg output")
    companion = o.with_suffix(".inp")
    if s.suffix.lower() == ".inp":
        from .convert import _check_with_epanet

        if not s.is_file():
            raise NetworkDataError(f"{s}: file not found; give the path of an EPANET .inp file")
        _check_with_epanet(s)
        wn = read_companion(s)
        layer_crs = crs
        if companion.resolve() != s.resolve():
            with atomic_path(companion) as tmp:
                shutil.copyfile(s, tmp)
    elif s.suffix.lower() == ".gpkg":
        net = read_network(s)
        wn = to_wntr(keep_as_is(net))
        layer_crs = net["nodes"].crs
        write_inp(wn, companion)
    else:
        raise NetworkDataError(f"{s}: give an EPANET .inp file or a network .gpkg")
    return {"layers": write_layers(wn, o, crs=layer_crs), "inp": companion}


# ----------------------------------------------------------------------------- the build entry point


def looks_like_wntr(src: Any) -> bool:
    """Whether a pipes source (file or GeoDataFrame) is a WNTR-schema link layer (has start/end node names)."""
    if src is None:
        return False
    if isinstance(src, pd.DataFrame):
        return is_wntr_layer(src)
    p = Path(src)
    if p.is_dir():
        return True
    try:
        fields = pyogrio.read_info(p)["fields"]
    except Exception:  # noqa: BLE001 - unreadable: the ordinary reader reports it
        return False
    return is_wntr_layer(pd.DataFrame(columns=list(fields)))


def _network_crs(layers: Mapping[str, gpd.GeoDataFrame], crs: Any, notes: list[str]) -> Any:
    """The layers' CRS (or `crs` for layers without one); schematic when a geographic CRS is not met by the data."""
    import pyproj

    found = {str(df.crs) for df in layers.values() if df.crs is not None}
    if len(found) > 1:
        raise NetworkDataError(f"the layers have different CRSes ({', '.join(sorted(found))}); reproject them to one "
                               "(e.g. GeoDataFrame.to_crs() or QGIS 'Export > Save features as')")
    c = pyproj.CRS.from_user_input(crs) if crs is not None else (
        pyproj.CRS.from_user_input(found.pop()) if found else None)
    if c is not None and c.is_geographic:
        b = np.array([df.total_bounds for df in layers.values() if len(df)])
        if b[:, 0].min() < -180 or b[:, 2].max() > 180 or b[:, 1].min() < -90 or b[:, 3].max() > 90:
            notes.append(f"the layers say {c.to_string()} (GeoJSON's default) but their coordinates are not "
                         "longitudes/latitudes; they were drawn as a schematic; give --crs for real coordinates")
            return None
    return c


def build_from_layers(source: str | os.PathLike | None = None, *, inp_options: str | os.PathLike | None = None,
                      layer_mapping: Mapping[str, Any] | str | os.PathLike | None = None, crs: Any = None,
                      tolerance_m: float = 1.0, **layers: Any) -> tuple[dict, pd.DataFrame, list[str]]:
    """Build the project's network from WNTR-schema layers (and a companion model).

    Parameters
    ----------
    source
        Folder or GeoPackage with the layers (see :func:`read_layers`).
    inp_options
        EPANET INP or WNTR JSON holding options, patterns, curves, controls, rules, sources.
    layer_mapping
        A layer-set mapping (dict, YAML or the name of a shipped one, e.g. ``"gusnet"``).
    crs
        CRS for layers without one (or to override GeoJSON's implied WGS84).
    tolerance_m
        Link ends without start/end node names join the nearest node within this distance.
    **layers
        ``junctions=``, ``tanks=``, ``reservoirs=``, ``pipes=``, ``pumps=``, ``valves=``.

    Returns
    -------
    (Network, DataFrame, list of str)
        The layers (carrying the whole EPANET model), the topology findings and the
        notes on what was assumed (there are no fixes in this path).
    """
    import warnings

    from .convert import network_from_wntr
    from .validation import validate_topology

    lm = load_layer_mapping(layer_mapping)
    read = read_layers(source, mapping=lm, **layers)
    companion = read_companion(inp_options)
    wn, notes = wn_from_layers(read, companion=companion, units=lm.get("units"), tolerance=tolerance_m,
                               inline=bool(lm.get("inline")),
                               companion_label=str(inp_options) if inp_options is not None else "no companion")
    if companion is None:
        notes.append("no companion model (--inp-options): WNTR's default options, no patterns, curves or controls")
    c = _network_crs(read, crs, notes)
    name = Path(source).stem if source is not None else Path(str(layers.get("pipes") or "network")).stem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = network_from_wntr(wn, crs=c, name=name, source=str(source or layers.get("pipes")))
    for w in caught:
        if issubclass(w.category, UserWarning):
            notes.append(str(w.message))
    findings = validate_topology(net, tolerance_m=tolerance_m)
    for n in notes:
        warnings.warn(n, UserWarning, stacklevel=2)
    return net, findings, []
