"""WNTR's GIS layer schema (``wntr.network.to_gis``) in and out.

WNTR writes a network as six layers — ``junctions``, ``tanks``, ``reservoirs``,
``pipes``, ``pumps``, ``valves`` — with WNTR's attribute names and SI units
(``start_node_name``, ``base_demand`` in m³/s, ``pump_curve_name`` ...). Curves,
patterns, controls and options are not in the layers: they come from a companion
INP file or WNTR JSON (``inp_options``); anything the layers reference but the
companion lacks is named.

:func:`read_wntr_gis` reads such layers (a folder of GeoJSON/Shapefile/GeoPackage
files named ``*junctions.geojson`` ..., or one GeoPackage with those layer names)
into the project's network; :func:`write_wntr_gis` writes a network's model in
that schema to a GeoPackage.

Examples
--------
>>> import wntr, tempfile, pathlib
>>> inp = wntr.library.__path__[0] + "/networks/Net1.inp"
>>> wn = wntr.network.WaterNetworkModel(inp)
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> wntr.network.to_gis(wn, crs="EPSG:4545").write_geojson(str(tmp / "net1"))
>>> net = read_wntr_gis(tmp, inp_options=inp)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import wntr

from ._errors import NetworkDataError

__all__ = ["WNTR_LAYERS", "is_wntr_gis", "read_wntr_gis", "read_wntr_layers", "wntr_gis_model", "write_wntr_gis"]

WNTR_LAYERS = ("junctions", "tanks", "reservoirs", "pipes", "pumps", "valves")
_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")


def _gpkg_layers(path: Path) -> list[str]:
    import pyogrio

    try:
        return [str(n) for n, _ in pyogrio.list_layers(path)]
    except Exception:
        return []


def is_wntr_gis(path: str | os.PathLike) -> bool:
    """True for a folder of WNTR layer files or a GeoPackage with WNTR's layer names (and no ``nodes``)."""
    p = Path(path)
    if p.is_dir():
        return any(f.suffix.lower() in _SUFFIXES and f.stem.lower().endswith(("junctions", "pipes"))
                   for f in p.iterdir())
    if p.suffix.lower() == ".gpkg" and p.is_file():
        names = set(_gpkg_layers(p))
        return "nodes" not in names and bool(names & {"junctions", "pipes"})
    return False


def read_wntr_layers(path: str | os.PathLike) -> dict[str, gpd.GeoDataFrame]:
    """The WNTR layers of a folder or GeoPackage, indexed by element name."""
    p = Path(path)
    found: dict[str, gpd.GeoDataFrame] = {}
    if p.is_dir():
        for layer in WNTR_LAYERS:
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in _SUFFIXES and
                           f.stem.lower().endswith(layer))
            if len(files) > 1:
                raise NetworkDataError(f"{p}: several files for layer {layer!r}: {[f.name for f in files]}; "
                                       "keep one")
            if files:
                found[layer] = gpd.read_file(files[0])
    else:
        names = _gpkg_layers(p)
        for layer in WNTR_LAYERS:
            if layer in names:
                found[layer] = gpd.read_file(p, layer=layer)
    if "pipes" not in found and "pumps" not in found and "valves" not in found:
        raise NetworkDataError(f"{p}: no WNTR link layer (pipes, pumps or valves) found; expected files or layers "
                               f"named {', '.join(WNTR_LAYERS)} as wntr.network.to_gis writes them")
    for layer, df in found.items():
        if "name" not in df.columns:
            raise NetworkDataError(f"{p}: layer {layer!r} has no column 'name' (the element id); "
                                   "WNTR's to_gis writes one")
        df["name"] = df["name"].astype(str)
        found[layer] = df.set_index("name")
    return found


def _base_model(inp_options: str | os.PathLike | None) -> tuple[wntr.network.WaterNetworkModel,
                                                                 wntr.network.WaterNetworkModel | None]:
    """An empty model with the companion's options, patterns and curves, and the companion itself."""
    from .epanet_tables import add_curves, apply_options, model_tables

    base = wntr.network.WaterNetworkModel()
    if inp_options is None:
        return base, None
    p = Path(inp_options)
    if not p.is_file():
        raise NetworkDataError(f"{p}: companion file not found; give the INP (or WNTR JSON) the layers came from")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if p.suffix.lower() == ".json":
            src = wntr.network.read_json(str(p))
        else:
            from .convert import _check_with_epanet, _read_wn
            _check_with_epanet(p)
            src = _read_wn(p)
    tables = model_tables(src)
    apply_options(base, tables["options"])
    for name, pat in src.patterns():
        base.add_pattern(name, list(pat.multipliers))
    add_curves(base, tables["curves"])
    return base, src


_REFERENCES = (("junctions", "demand_pattern", "pattern"), ("reservoirs", "head_pattern_name", "pattern"),
               ("tanks", "vol_curve_name", "curve"), ("pumps", "pump_curve_name", "curve"),
               ("pumps", "speed_pattern_name", "pattern"), ("pumps", "efficiency_curve_name", "curve"),
               ("pumps", "energy_pattern", "pattern"), ("valves", "headloss_curve_name", "curve"))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() in ("", "None", "nan")


def wntr_gis_model(layers: dict[str, gpd.GeoDataFrame], *,
                   inp_options: str | os.PathLike | None = None) -> wntr.network.WaterNetworkModel:
    """Build a WNTR model from WNTR GIS layers and the companion INP/JSON's options, patterns and curves.

    Raises
    ------
    NetworkDataError
        A layer references a pattern or curve the companion does not define (naming the layer,
        feature and column), or a link's end node is in no node layer.
    """
    from .epanet_tables import apply_model_tables, model_tables

    base, src = _base_model(inp_options)
    patterns, curves = set(base.pattern_name_list), set(base.curve_name_list)
    for layer, col, kind in _REFERENCES:
        df = layers.get(layer)
        if df is None or col not in df.columns:
            continue
        known = patterns if kind == "pattern" else curves
        for name, v in df[col].items():
            if not _missing(v) and str(v) not in known:
                raise NetworkDataError(
                    f"layer {layer!r}, feature {name!r}, column {col!r}: {kind} {str(v)!r} is not defined"
                    f"{' in ' + str(inp_options) if inp_options else ''}; give the INP or WNTR JSON the layers came "
                    "from with --inp-options (it supplies patterns, curves, controls and options)")
    node_names = set().union(*(set(layers[k].index) for k in ("junctions", "tanks", "reservoirs") if k in layers))
    for layer in ("pipes", "pumps", "valves"):
        df = layers.get(layer)
        if df is None:
            continue
        for col in ("start_node_name", "end_node_name"):
            if col not in df.columns:
                raise NetworkDataError(f"layer {layer!r} has no column {col!r}; WNTR's layers join links to nodes "
                                       "by start_node_name and end_node_name")
            bad = ~df[col].astype(str).isin(node_names)
            if bad.any():
                name = df.index[bad.to_numpy().argmax()]
                raise NetworkDataError(f"layer {layer!r}, feature {name!r}, column {col!r}: node "
                                       f"{df.loc[name, col]!r} is in none of the layers junctions, tanks, reservoirs")
    fixed = dict(layers)
    if "junctions" in fixed and "demand_pattern" in fixed["junctions"].columns:
        # WNTR's to_gis writes 'demand_pattern' but from_gis reads 'pattern_name'
        fixed["junctions"] = fixed["junctions"].rename(columns={"demand_pattern": "pattern_name"})
    for layer in WNTR_LAYERS:
        fixed.setdefault(layer, gpd.GeoDataFrame(geometry=[]))
    try:
        wn = wntr.network.from_gis(wntr.gis.WaterNetworkGIS(fixed), append=base)
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise NetworkDataError(f"WNTR cannot build a model from these layers: {type(exc).__name__}: {exc}") from None
    if src is not None:
        t = model_tables(src)
        apply_model_tables(wn, {k: t[k] for k in ("controls", "rules", "sources")})
    return wn


def read_wntr_gis(path: str | os.PathLike, *, inp_options: str | os.PathLike | None = None,
                  crs: Any = None) -> dict:
    """Read WNTR GIS layers (folder or GeoPackage) into the project's network (see :mod:`watersupply.schema`)."""
    from .convert import network_from_wntr

    layers = read_wntr_layers(path)
    wn = wntr_gis_model(layers, inp_options=inp_options)
    layer_crs = next((df.crs for df in layers.values() if df.crs is not None), None)
    p = Path(path)
    return network_from_wntr(wn, crs=crs or layer_crs, name=p.stem, source=str(p))


def write_wntr_gis(wn: wntr.network.WaterNetworkModel, path: str | os.PathLike, *, crs: Any) -> Path:
    """Write `wn` in WNTR's GIS layer schema to a GeoPackage (atomically)."""
    from .io import write_layers

    gis = wntr.network.to_gis(wn, crs=crs)
    layers = {}
    for layer in WNTR_LAYERS:
        df = getattr(gis, layer)
        if len(df):
            layers[layer] = df.reset_index(names="name")
    return write_layers(layers, path)
