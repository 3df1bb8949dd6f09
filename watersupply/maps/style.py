"""What the maps look like and what they accept, shared by the HTML and the PNG map.

Colours and class breaks, legends (from the thresholds in
:mod:`watersupply.standards`), settlement status by audit verdict or service
level, pipe colourings, the rules for which settlement labels are drawn, and the
validators of the layers and options every map takes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .._errors import ConfigError, NetworkDataError, closest
from ..standards import thresholds
from .i18n import text

__all__ = [
    "MAP_LAYERS", "PIPE_COLOURINGS", "TILES", "CRITICALITY_COLUMNS", "FACILITY_COLOURS", "FACILITY_ICONS",
    "CHANGE_COLOUR", "NODATA", "VERDICT_COLOURS", "pressure_legend", "classify", "settlement_status",
    "pipe_colourings", "criticality_column", "is_georeferenced", "is_schematic", "check_layers",
    "check_include", "layers_to_show", "pipe_min_pressure", "title_text", "display_names", "label_order", "nums", "strs",
]

#: Layers a map can show (``include``); ``pipes`` gives two overlays, mains and branches.
MAP_LAYERS = ("settlements", "pipes", "facilities", "nodes", "district", "zones")
#: Pipe colourings: by diameter and class, or by a result column.
PIPE_COLOURINGS = ("class", "min_pressure", "velocity", "criticality")
#: Basemaps: none (offline), OpenStreetMap, Tianditu (天地图, needs a key).
TILES = ("none", "osm", "tianditu")
#: Columns holding a pipe's criticality (people affected when it fails), first found is used.
CRITICALITY_COLUMNS = ("criticality_people", "people_affected", "people_without_water", "criticality")

_PRESSURE_COLOURS = ("#67000d", "#d7301f", "#fc8d59", "#fee08b", "#66bd63", "#2166ac")
NODATA = "#bdbdbd"
VERDICT_COLOURS = {"pass": "#1a9850", "warn": "#fdae61", "fail": "#d73027"}
_SERVICE_COLOURS = {"meets": "#1a9850", "mostly": "#a6d96a", "below": "#fdae61", "no_water": "#d73027"}
_DN_BREAKS = (100.0, 150.0, 250.0, 400.0)
_DN_COLOURS = ("#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
_VELOCITY_COLOURS = ("#bcbddc", "#74add1", "#1a9850", "#fdae61", "#d73027")
_PEOPLE_BREAKS = (1.0, 100.0, 1000.0, 5000.0)
_PEOPLE_COLOURS = ("#d9d9d9", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
CHANGE_COLOUR = "#c51b8a"
FACILITY_COLOURS = {"plant": "#08306b", "pump_station": "#e6550d", "reservoir": "#3182bd"}

#: Inline SVG icons of the facilities (constants; no user data).
FACILITY_ICONS = {
    "plant": ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">'
              '<rect x="1.5" y="1.5" width="21" height="21" rx="3" fill="#08306b" stroke="#fff" stroke-width="1.5"/>'
              '<path d="M12 4.5C9.5 9 7 11.2 7 14.3a5 5 0 0 0 10 0C17 11.2 14.5 9 12 4.5z" fill="#9ecae1"/></svg>'),
    "pump_station": ('<svg xmlns="http://www.w3.org/2000/svg" width="22" height="22" viewBox="0 0 22 22">'
                     '<circle cx="11" cy="11" r="9.5" fill="#e6550d" stroke="#fff" stroke-width="1.5"/>'
                     '<path d="M6.5 15.5L11 5.5l4.5 10z" fill="#fff"/></svg>'),
    "reservoir": ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="22" viewBox="0 0 24 22">'
                  '<path d="M2 5v12c0 2.2 4.5 4 10 4s10-1.8 10-4V5" fill="#3182bd" stroke="#fff" stroke-width="1.5"/>'
                  '<ellipse cx="12" cy="5" rx="10" ry="3.8" fill="#6baed6" stroke="#fff" stroke-width="1.5"/>'
                  '<path d="M4 12c2.5 1.2 5 1.2 8 0s5.5-1.2 8 0" fill="none" stroke="#deebf7" stroke-width="1.4"/></svg>'),
}


def _fmt_num(v: float) -> str:
    return f"{v:g}"


def _band_legend(title: str, breaks: Iterable[float], colours: Iterable[str], labels: Iterable[str],
                 *, shape: str, nodata: bool = True, lang: str = "both") -> dict[str, Any]:
    items = [[c, lab] for c, lab in zip(colours, labels)]
    if nodata:
        items.append([NODATA, text("no_data", lang)])
    return {"title": title, "breaks": [float(b) for b in breaks], "items": items, "shape": shape}


def pressure_legend(t: Mapping[str, float] | None = None, *, lang: str = "both", shape: str = "circle",
                    title: str | None = None) -> dict[str, Any]:
    """Pressure classes (m) from the standards: no water, below 1-storey head, below network-end head, …"""
    t = t or thresholds()
    b = [t["pdd_minimum_pressure_m"], t["urban_head_1_storey_m"], t["network_end_head_m"],
         t["urban_planning_target_m"], t["rural_max_static_head_m"]]
    labels = [text("p_no_water", lang, a=_fmt_num(b[0]))]
    labels += [text("p_band", lang, a=_fmt_num(lo), b=_fmt_num(hi)) for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("p_top", lang, a=_fmt_num(b[-1])))
    return _band_legend(title or text("min_pressure", lang), b, _PRESSURE_COLOURS, labels, shape=shape, lang=lang)


def _velocity_legend(t: Mapping[str, float], lang: str) -> dict[str, Any]:
    b = [0.1, t["main_velocity_economic_min_ms"], t["main_velocity_economic_max_ms"], t["main_velocity_max_ms"]]
    f = [_fmt_num(x) for x in b]
    labels = [text("v_stagnant", lang, a=f[0]), text("v_low", lang, a=f[0], b=f[1]),
              text("v_econ", lang, a=f[1], b=f[2]), text("v_high", lang, a=f[2], b=f[3]),
              text("v_over", lang, a=f[3])]
    return _band_legend(text("by_velocity", lang), b, _VELOCITY_COLOURS, labels, shape="line", lang=lang)


def _dn_legend(lang: str) -> dict[str, Any]:
    b = [int(x) for x in _DN_BREAKS]
    labels = [text("dn_below", lang, a=b[0])]
    labels += [text("dn_band", lang, a=lo, b=hi - 1) for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("dn_top", lang, a=b[-1]))
    return _band_legend(text("by_class", lang), _DN_BREAKS, _DN_COLOURS, labels, shape="line", lang=lang)


def _people_legend(lang: str) -> dict[str, Any]:
    b = [int(x) for x in _PEOPLE_BREAKS]
    labels = [text("people_none", lang)]
    labels += [text("people_band", lang, a=f"{lo:,}", b=f"{hi - 1:,}") for lo, hi in zip(b[:-1], b[1:])]
    labels.append(text("people_top", lang, a=f"{b[-1]:,}"))
    return _band_legend(text("by_criticality", lang), _PEOPLE_BREAKS, _PEOPLE_COLOURS, labels, shape="line", lang=lang)


def classify(values: Iterable[float], legend: Mapping[str, Any]) -> np.ndarray:
    """Index of each value's class in ``legend["items"]`` (NaN → the trailing no-data item)."""
    v = np.asarray(list(values) if not isinstance(values, (np.ndarray, pd.Series)) else values, dtype=float)
    idx = np.searchsorted(np.asarray(legend["breaks"], dtype=float), v, side="right")
    return np.where(np.isnan(v), len(legend["items"]) - 1, idx).astype(int)


def _audit_verdicts(settlements: pd.DataFrame, audit: pd.DataFrame | None) -> pd.Series | None:
    """Verdicts by settlement id from `audit` (or the layer's ``verdict`` column), validated."""
    ids = settlements["id"].astype(str)
    if audit is not None:
        if not isinstance(audit, pd.DataFrame) or "verdict" not in audit.columns:
            raise ConfigError("audit must be a DataFrame with a 'verdict' column indexed by settlement id "
                              f"(or with an 'id'/'settlement_id' column), got {type(audit).__name__}"
                              + (f" with columns {list(map(str, audit.columns))}" if isinstance(audit, pd.DataFrame) else ""))
        a = audit
        for key in ("id", "settlement_id"):
            if key in a.columns:
                a = a.set_index(key)
                break
        a_ids = a.index.astype(str)
        unknown = sorted(set(a_ids) - set(ids))
        if unknown:
            raise NetworkDataError(f"audit: settlement id(s) {', '.join(map(repr, unknown[:5]))} are not in the "
                                   f"settlements layer; {closest(unknown[0], ids)}")
        verdict = pd.Series(a["verdict"].to_numpy(), index=a_ids).reindex(ids)
    elif "verdict" in settlements.columns:
        verdict = pd.Series(settlements["verdict"].to_numpy(), index=ids)
    else:
        return None
    norm = verdict.map(lambda v: str(v).strip().lower() if v is not None and not pd.isna(v) else None)
    bad = norm[norm.notna() & ~norm.isin(list(VERDICT_COLOURS))]
    if len(bad):
        raise ConfigError(f"audit verdict of settlement {bad.index[0]!r} is {verdict[bad.index[0]]!r}; "
                          f"use one of {', '.join(VERDICT_COLOURS)}")
    return norm


def settlement_status(settlements: pd.DataFrame, *, audit: pd.DataFrame | None = None,
                      t: Mapping[str, float] | None = None, lang: str = "both") -> tuple[pd.Series, dict[str, Any]]:
    """Each settlement's class for colouring, and the legend.

    By the audit verdict (pass/warn/fail) when `audit` is given or the layer has
    a ``verdict`` column; otherwise by service level: without water at times
    (minimum pressure below the PDD minimum), below the service head (pressure
    compliance below the CJ/T 316 rate), met in most hours, met at all hours.

    Returns
    -------
    status : Series
        Class key per settlement id (``pass``/``warn``/``fail`` or
        ``meets``/``mostly``/``below``/``no_water``; ``no_data``).
    legend : dict
        Title and ``items`` (colour, label), with a ``keys`` list aligned to them.
    """
    t = t or thresholds()
    ids = settlements["id"].astype(str)
    verdict = _audit_verdicts(settlements, audit)
    if verdict is not None:
        keys = list(VERDICT_COLOURS)
        status = verdict.fillna("no_data")
        colours = [VERDICT_COLOURS[k] for k in keys]
        title = text("settlement_verdict", lang)
    else:
        keys = list(_SERVICE_COLOURS)
        minp = pd.to_numeric(settlements.get("min_pressure_m", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        head = pd.to_numeric(settlements.get("service_head_m", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        comp = pd.to_numeric(settlements.get("pressure_compliance", pd.Series(np.nan, index=settlements.index)),
                             errors="coerce").to_numpy()
        out = []
        for mp, sh, c in zip(minp, head, comp):
            if np.isnan(mp):
                out.append("no_data")
            elif mp < t["pdd_minimum_pressure_m"]:
                out.append("no_water")
            elif (not np.isnan(c) and c < t["pressure_compliance_min"]) or (np.isnan(c) and not np.isnan(sh) and mp < sh):
                out.append("below")
            elif not np.isnan(sh) and mp < sh:
                out.append("mostly")
            else:
                out.append("meets")
        status = pd.Series(out, index=ids)
        colours = [_SERVICE_COLOURS[k] for k in keys]
        title = text("settlement_service", lang)
    labels = [text(k, lang, p=f"{t['pressure_compliance_min']:.0%}") for k in keys]
    legend = {"title": title, "items": [[c, lab] for c, lab in zip(colours, labels)] + [[NODATA, text("no_data", lang)]],
              "keys": keys + ["no_data"], "shape": "square"}
    return status, legend



# --------------------------------------------------------------------------- columns

def nums(df: pd.DataFrame, col: str, digits: int = 2) -> list[float | None] | None:
    """Column `col` as rounded numbers (None for missing), or None when the column is absent or empty."""
    if col not in df.columns:
        return None
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    if np.isnan(v).all():
        return None
    return [None if np.isnan(x) else (round(float(x), digits) if digits else int(round(float(x)))) for x in v]


def strs(df: pd.DataFrame, col: str) -> list[str | None] | None:
    """Column `col` as strings (None for missing), or None when the column is absent."""
    if col not in df.columns:
        return None
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in df[col]]


def display_names(df: pd.DataFrame, lang: str) -> list[str]:
    """Feature names in `lang` from ``name_zh``/``name_en`` (the other language, then the id, when missing)."""
    zh = strs(df, "name_zh") or [None] * len(df)
    en = strs(df, "name_en") or [None] * len(df)
    ids = [str(i) for i in df["id"]]
    out = []
    for z, e, i in zip(zh, en, ids):
        z, e = (z or "").strip(), (e or "").strip()
        if lang == "zh":
            out.append(z or e or i)
        elif lang == "en":
            out.append(e or z or i)
        else:
            out.append(" ".join(dict.fromkeys(x for x in (z, e) if x)) or i)
    return out



# --------------------------------------------------------------------------- inputs

def check_layers(layers: Mapping[str, Any]) -> dict[str, gpd.GeoDataFrame]:
    """The GeoDataFrames of `layers` (attribute tables dropped), each checked for a CRS and an ``id`` column."""
    if not isinstance(layers, Mapping):
        raise TypeError(f"'layers' should be a mapping of layer name to GeoDataFrame, got {type(layers).__name__}")
    out = {}
    for name, gdf in layers.items():
        if gdf is None:
            continue
        if not isinstance(gdf, gpd.GeoDataFrame):
            if isinstance(gdf, pd.DataFrame):
                continue  # attribute tables (patterns, metadata) are not mapped
            raise TypeError(f"layer {name!r} should be a GeoDataFrame, got {type(gdf).__name__}")
        if gdf.crs is None:
            raise NetworkDataError(f"layer {name!r} has no CRS; assign one (e.g. EPSG:4545) with set_crs()")
        if len(gdf) and "id" not in gdf.columns:
            raise NetworkDataError(f"layer {name!r} has no 'id' column; every mapped feature needs an id")
        out[str(name)] = gdf
    return out


def is_georeferenced(crs: Any) -> bool:
    """Whether a CRS places data on the Earth (geographic or projected), unlike a local schematic CRS."""
    return bool(crs is not None and (crs.is_geographic or crs.is_projected))


def is_schematic(lay: dict[str, gpd.GeoDataFrame]) -> bool:
    """Whether any layer is a schematic drawing (local CRS, not georeferenced)."""
    return any(not is_georeferenced(g.crs) for g in lay.values())


def check_include(include: Iterable[str] | None, available: Iterable[str]) -> list[str]:
    """The layers asked for, validated against :data:`MAP_LAYERS` (None: all of `available`)."""
    if include is None:
        return [k for k in MAP_LAYERS if k in set(available)]
    if isinstance(include, str):
        include = [include]
    chosen = []
    for name in include:
        if name not in MAP_LAYERS:
            raise ConfigError(f"unknown map layer {name!r}; valid: {', '.join(MAP_LAYERS)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def criticality_column(pipes: pd.DataFrame) -> str | None:
    """The first of :data:`CRITICALITY_COLUMNS` the pipes carry with data, or None."""
    for c in CRITICALITY_COLUMNS:
        if c in pipes.columns and pd.to_numeric(pipes[c], errors="coerce").notna().any():
            return c
    return None


def pipe_min_pressure(pipes: pd.DataFrame, nodes: pd.DataFrame | None) -> pd.Series | None:
    """Minimum pressure per pipe: its own column, else the lower of its end nodes' minima, else None."""
    if "min_pressure_m" in pipes.columns:
        return pd.to_numeric(pipes["min_pressure_m"], errors="coerce")
    if nodes is None or "min_pressure_m" not in nodes.columns or "from_node" not in pipes.columns:
        return None
    p = pd.to_numeric(nodes.set_index(nodes["id"].astype(str))["min_pressure_m"], errors="coerce")
    a = p.reindex(pipes["from_node"].astype(str)).to_numpy()
    b = p.reindex(pipes["to_node"].astype(str)).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.fmin(a, b)
    return pd.Series(out, index=pipes.index)


def pipe_colourings(pipes: pd.DataFrame, nodes: pd.DataFrame | None, t: Mapping[str, float],
                    lang: str) -> dict[str, dict[str, Any]]:
    """Available pipe colourings: legend and class index per pipe."""
    modes: dict[str, dict[str, Any]] = {}
    lg = _dn_legend(lang)
    modes["class"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes["diameter_mm"], errors="coerce")
                                                     if "diameter_mm" in pipes else np.full(len(pipes), np.nan), lg)}
    mp = pipe_min_pressure(pipes, nodes)
    if mp is not None and mp.notna().any():
        lg = pressure_legend(t, lang=lang, shape="line", title=text("by_min_pressure", lang))
        modes["min_pressure"] = {"legend": lg, "idx": classify(mp.to_numpy(dtype=float), lg)}
    if "max_velocity_ms" in pipes.columns and pd.to_numeric(pipes["max_velocity_ms"], errors="coerce").notna().any():
        lg = _velocity_legend(t, lang)
        modes["velocity"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes["max_velocity_ms"], errors="coerce"), lg)}
    crit = criticality_column(pipes)
    if crit is not None:
        lg = _people_legend(lang)
        modes["criticality"] = {"legend": lg, "idx": classify(pd.to_numeric(pipes[crit], errors="coerce"), lg)}
    for m in modes.values():
        m["idx"] = [int(i) for i in m["idx"]]
    return modes



def layers_to_show(lay: Mapping[str, gpd.GeoDataFrame], district: gpd.GeoDataFrame | None,
                    include: Any) -> list[str]:
    """The layers to draw: those asked for (default all) among those with features.

    Raises NetworkDataError when a layer asked for has no features, or nothing but
    the district outline would be drawn.
    """
    avail = [k for k in ("settlements", "pipes", "facilities", "nodes", "zones") if k in lay and len(lay[k])]
    if district is not None and len(district):
        avail.append("district")
    show = check_include(include, avail)
    missing = [k for k in show if k not in avail]
    if missing:
        raise NetworkDataError(f"layer(s) {', '.join(map(repr, missing))} asked for but not in the data "
                               f"(available: {', '.join(avail) or 'none'})")
    if not [k for k in show if k != "district"]:
        raise NetworkDataError(f"nothing to map: give at least one of the layers {', '.join(MAP_LAYERS[:4])} "
                               "with features")
    return show


def title_text(title: str | tuple[str, str], lang: str) -> str:
    """The title in the map's language: a (zh, en) pair gives one or both."""
    if isinstance(title, tuple):
        return {"zh": title[0], "en": title[1]}.get(lang, " ".join(dict.fromkeys(x for x in title if x)))
    return str(title or "")




# --------------------------------------------------------------------------- labels

def label_order(settlements: gpd.GeoDataFrame) -> list[int]:
    """Positions of the settlements in the order their labels are placed (first placed wins a spot).

    Largest population first, then largest area, then id, so that on a crowded
    map the labels left out are those of the smallest settlements. Both maps
    place labels in this order and skip a label that would overlap one already
    placed.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> st = gpd.GeoDataFrame({"id": ["a", "b", "c"], "population": [10, 500, None]},
    ...                       geometry=[box(0, 0, 1, 1), box(0, 0, 1, 1), box(0, 0, 9, 9)], crs="EPSG:4545")
    >>> label_order(st)
    [1, 0, 2]
    """
    n = len(settlements)
    pop = (pd.to_numeric(settlements["population"], errors="coerce").fillna(-1.0).to_numpy(dtype=float)
           if "population" in settlements.columns else np.full(n, -1.0))
    geom = settlements.geometry
    if geom.crs is not None and geom.crs.is_geographic:
        geom = geom.to_crs(geom.estimate_utm_crs())
    area = geom.area.fillna(0.0).to_numpy(dtype=float)
    ids = settlements["id"].astype(str).to_numpy()
    return [int(i) for i in sorted(range(n), key=lambda i: (-pop[i], -area[i], ids[i]))]
