"""The map's data: each layer as columns of values, geometry as rounded lat/lng lists, and the
popup rows that show them — the JSON block the page's app (``static/app.js``) draws from.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from .._errors import NetworkDataError, closest
from .coords import WEB_CRS
from .i18n import text
from .overlays import DIFF_ALIASES, ScenarioOverlay
from .style import (
    CRITICALITY_COLUMNS,
    FACILITY_ICONS,
    VERDICT_COLOURS,
    classify,
    criticality_column,
    display_names,
    label_order,
    nums,
    pipe_colourings,
    pipe_min_pressure,
    pressure_legend,
    settlement_status,
    strs,
)

__all__ = ["settlement_data", "pipe_data", "facility_data", "node_data", "json_for_html", "bounds", "tile_layers",
           "web_geoms", "poly_latlng", "AUDIT_DIMENSIONS", "COORD_DIGITS", "TIANDITU_KEY_PLACEHOLDER"]

COORD_DIGITS = 5  # 1e-5 degree ≈ 1 m
TIANDITU_KEY_PLACEHOLDER = "YOUR_TIANDITU_KEY"

# --------------------------------------------------------------------------- geometry

def _simplify(gdf: gpd.GeoDataFrame, tol_m: float) -> gpd.GeoSeries:
    geom = gdf.geometry
    if tol_m <= 0:
        return geom
    crs = gdf.crs
    work = geom if not crs.is_geographic else geom.to_crs(gdf.estimate_utm_crs())
    lines = work.geom_type.isin(["LineString", "MultiLineString"])
    # Douglas-Peucker keeps each line's end points; polygons keep their topology.
    simp = work.copy()
    if lines.any():
        simp[lines] = work[lines].simplify(tol_m, preserve_topology=False)
    if (~lines).any():
        simp[~lines] = work[~lines].simplify(tol_m, preserve_topology=True)
    return simp.to_crs(crs) if crs.is_geographic else simp


def web_geoms(gdf: gpd.GeoDataFrame, tol_m: float) -> gpd.GeoSeries:
    """The geometries simplified by `tol_m` metres, in WGS84."""
    return _simplify(gdf, tol_m).to_crs(WEB_CRS)


def _latlng(coords: np.ndarray) -> list[list[float]]:
    c = np.round(coords[:, [1, 0]], COORD_DIGITS)
    if len(c) > 1:
        keep = np.ones(len(c), dtype=bool)
        keep[1:] = np.any(c[1:] != c[:-1], axis=1)
        keep[-1] = True
        c = c[keep]
    return c.tolist()


def _line_latlng(geom: Any) -> list:
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "MultiLineString":
        return [_latlng(np.asarray(g.coords)) for g in geom.geoms]
    return _latlng(np.asarray(geom.coords))


def poly_latlng(geom: Any) -> list:
    """A (multi)polygon as nested ``[lat, lng]`` rings (empty for other geometry)."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "MultiPolygon":
        return [poly_latlng(g) for g in geom.geoms]
    if geom.geom_type != "Polygon":
        return []
    return [_latlng(np.asarray(geom.exterior.coords))] + [_latlng(np.asarray(r.coords)) for r in geom.interiors]


def _point_latlng(geom: Any) -> list[float] | None:
    if geom is None or geom.is_empty:
        return None
    p = geom if geom.geom_type == "Point" else geom.representative_point()
    return [round(p.y, COORD_DIGITS), round(p.x, COORD_DIGITS)]


class _Cols:
    """Columnar feature properties plus the popup rows that show them (label, column, digits, unit)."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {}
        self.popup: list[list] = []

    def add(self, key: str, values: list | None, label: str | None = None, digits: int | None = None,
            unit: str = "") -> None:
        if values is None:
            return
        self.cols[key] = values
        if label is not None:
            self.popup.append([label, key, digits, unit])

    def data(self, **extra: Any) -> dict[str, Any]:
        return {"cols": self.cols, "popup": self.popup, **extra}



# --------------------------------------------------------------------------- layers

#: Audit dimensions shown in settlement popups (``<dimension>_verdict``, ``<dimension>_reason``).
AUDIT_DIMENSIONS = ("network", "quality", "pressure", "price")


def _first_col(df: pd.DataFrame, names: Iterable[str]) -> str:
    for n in names:
        if n in df.columns:
            return n
    return ""


def _audit_source(st: pd.DataFrame, audit: pd.DataFrame | None) -> pd.DataFrame:
    if audit is None:
        return st.set_index(st["id"].astype(str))
    a = audit
    for key in ("id", "settlement_id"):
        if key in a.columns:
            a = a.set_index(key)
            break
    a = a.copy()
    a.index = a.index.astype(str)
    return a


def _audit_columns(c: _Cols, a: pd.DataFrame, lang: str) -> None:
    """Popup rows from an audit table: score, per-dimension verdicts, reasons of those not passed."""
    c.add("score", nums(a, "score", 0), text("score", lang), 0)
    for d in AUDIT_DIMENSIONS:
        col = f"{d}_verdict"
        if col in a.columns:
            c.add(f"v_{d}", [None if v is None else (text(v.lower(), lang) if v.lower() in VERDICT_COLOURS else v)
                             for v in strs(a, col)], text(f"dim_{d}", lang))
    reasons: list[str | None] = []
    dims = [d for d in AUDIT_DIMENSIONS if f"{d}_reason" in a.columns]
    for _, row in a.iterrows():
        parts = [str(row[f"{d}_reason"]) for d in dims
                 if isinstance(row[f"{d}_reason"], str) and row[f"{d}_reason"]
                 and str(row.get(f"{d}_verdict", "")).lower() != "pass"]
        if not dims:
            col = _first_col(a, ("reason", "reasons", "detail"))
            v = row[col] if col else None
            parts = [str(v)] if isinstance(v, str) and v else []
        reasons.append("; ".join(parts) or None)
    if any(reasons):
        c.add("reason", reasons, text("reason", lang))
    col = _first_col(a, ("fixes", "fix"))
    if col:
        c.add("fixes", strs(a, col), text("fixes", lang))


def settlement_data(st: gpd.GeoDataFrame, *, lang: str, t: Mapping[str, float], audit: pd.DataFrame | None,
                    diff: ScenarioOverlay | None, tol_m: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settlements' data (outline, class, label, label order, popup rows) and their legend."""
    status, legend = settlement_status(st, audit=audit, t=t, lang=lang)
    keys = legend["keys"]
    geoms = web_geoms(st, tol_m)
    c = _Cols()
    c.add("name", display_names(st, lang))
    ids = [str(i) for i in st["id"]]
    c.add("id", ids, text("id", lang))
    if "kind" in st.columns:
        c.add("kind", [text(k, lang) if k in ("village", "community") else str(k) for k in st["kind"]],
              text("kind", lang))
    basis = "verdict" if legend["title"] == text("settlement_verdict", lang) else "service_level"
    c.add("status", [legend["items"][keys.index(s)][1] for s in status], text(basis, lang))
    c.add("population", nums(st, "population", 0), text("population", lang), 0)
    c.add("minp", nums(st, "min_pressure_m"), text("min_pressure", lang), 1, "m")
    c.add("head", nums(st, "service_head_m"), text("service_head", lang), 1, "m")
    comp = nums(st, "pressure_compliance", 4)
    c.add("comp", None if comp is None else [None if v is None else round(100 * v, 1) for v in comp],
          text("compliance", lang), 1, "%")
    c.add("served", nums(st, "demand_served_pct", 1), text("served", lang), 1, "%")
    c.add("cl", nums(st, "min_chlorine_mgL", 3), text("min_chlorine", lang), 2, "mg/L")
    c.add("age", nums(st, "max_age_h", 1), text("max_age", lang), 1, "h")
    if basis == "verdict":
        _audit_columns(c, _audit_source(st, audit).reindex(ids), lang)
    changed: list[int] = []
    if diff is not None and len(diff.settlements):
        d = diff.settlements.reindex(ids)
        c.add("pww", nums(d, _first_col(d, DIFF_ALIASES["people_without_water_max"]), 0),
              text("people_without_water", lang), 0)
        c.add("pwh", nums(d, _first_col(d, DIFF_ALIASES["person_hours_without_water"]), 0),
              text("people_hours", lang), 0)
        c.add("dminp", nums(d, _first_col(d, DIFF_ALIASES["min_pressure_change_m"]), 2),
              text("min_pressure_change", lang), 1, "m")
        c.add("change", strs(d, "change"), text("change", lang))
        changed = [i for i, sid in enumerate(ids) if sid in diff.settlements.index]
    data = c.data(geom=[poly_latlng(g) for g in geoms], cls=[keys.index(s) for s in status],
                  label=c.cols["name"], order=label_order(st), changed=changed)
    return data, legend


def zone_data(zn: gpd.GeoDataFrame, *, lang: str, tol_m: float) -> dict[str, Any]:
    """The pressure zones' data (outline, label, popup rows), from a ``zones`` layer (:mod:`watersupply.zones`)."""
    geoms = web_geoms(zn, tol_m)
    c = _Cols()
    names = strs(zn, "zone") or [str(i) for i in zn["id"]]
    c.add("name", names, text("zone", lang))
    dev = strs(zn, "device_id")
    c.add("device", None if dev is None else [d or None for d in dev], text("zone_device", lang))
    c.add("setting", nums(zn, "setting_m", 1), text("zone_setting", lang), 1, "m")
    c.add("hgl", nums(zn, "hgl_m", 1), text("zone_hgl", lang), 1, "m")
    c.add("before", nums(zn, "max_static_before_m", 1), text("zone_static_before", lang), 1, "m")
    c.add("after", nums(zn, "max_static_m", 1), text("zone_static_after", lang), 1, "m")
    designed = [str(v).lower() in ("true", "1") for v in zn["designed"]] if "designed" in zn.columns \
        else [bool(d) for d in (dev or [""] * len(zn))]
    return c.data(geom=[poly_latlng(g) for g in geoms], label=names, designed=designed)


def pipe_data(pp: gpd.GeoDataFrame, nodes: gpd.GeoDataFrame | None, *, lang: str, t: Mapping[str, float],
              diff: ScenarioOverlay | None, tol_m: float, colour_by: str) -> dict[str, Any]:
    """The pipes' data: polylines, class and width, the available colourings, popup rows, changed pipes."""
    modes = pipe_colourings(pp, nodes, t, lang)
    if colour_by not in modes:
        need = {"min_pressure": "'min_pressure_m' on pipes or nodes", "velocity": "'max_velocity_ms'",
                "criticality": " or ".join(map(repr, CRITICALITY_COLUMNS))}[colour_by]
        warnings.warn(f"pipe_colour_by={colour_by!r} needs column {need} on the pipes layer; "
                      "colouring pipes by diameter and class instead", stacklevel=3)
        colour_by = "class"
    geoms = web_geoms(pp, tol_m)
    cls = [str(v) if v in ("main", "branch") else "main" for v in
           (pp["class"] if "class" in pp.columns else ["main"] * len(pp))]
    dn = pd.to_numeric(pp["diameter_mm"], errors="coerce").fillna(100.0).to_numpy() \
        if "diameter_mm" in pp.columns else np.full(len(pp), 100.0)
    weight = [round(float(min(2.5 + d / 150.0, 6.0)), 1) if k == "main" else round(float(min(1.2 + d / 150.0, 2.2)), 1)
              for k, d in zip(cls, dn)]
    c = _Cols()
    ids = [str(i) for i in pp["id"]]
    c.add("id", ids)
    c.add("class", [text(k, lang) for k in cls], text("class", lang))
    c.add("dn", nums(pp, "diameter_mm", 0), text("diameter", lang), 0, "mm")
    c.add("material", strs(pp, "material"), text("material", lang))
    length = nums(pp, "length_m", 0)
    if length is None:
        length = [int(round(x)) for x in pp.geometry.length] if not pp.crs.is_geographic else None
    c.add("length", length, text("length", lang), 0, "m")
    mp = pipe_min_pressure(pp, nodes)
    if mp is not None:
        c.add("minp", nums(pd.DataFrame({"v": mp}), "v"), text("min_pressure", lang), 1, "m")
    c.add("vmax", nums(pp, "max_velocity_ms", 3), text("max_velocity", lang), 2, "m/s")
    c.add("flow", nums(pp, "mean_flow_ls", 3), text("mean_flow", lang), 2, "L/s")
    crit = criticality_column(pp)
    if crit is not None:
        c.add("crit", nums(pp, crit, 0), text("criticality", lang), 0)
    changed: list[int] = []
    if diff is not None and len(diff.pipes):
        d = diff.pipes.reindex(ids)
        c.add("change", strs(d, "change") or [None if i not in diff.pipes.index else text("changed_pipe", lang)
                                                for i in ids], text("change", lang))
        changed = [i for i, pid in enumerate(ids) if pid in diff.pipes.index]
    return c.data(geom=[_line_latlng(g) for g in geoms], pclass=cls, weight=weight, modes=modes,
                  mode=colour_by, changed=changed, title="id")


def facility_data(fac: gpd.GeoDataFrame, *, lang: str, tank_level: pd.DataFrame | None,
                  pumps: gpd.GeoDataFrame | None) -> dict[str, Any]:
    """The plant, pump stations and reservoirs: points, kind (icon) and popup rows."""
    fac = fac[fac["kind"].isin(list(FACILITY_ICONS))] if "kind" in fac.columns else fac.iloc[0:0]
    geoms = fac.geometry.to_crs(WEB_CRS)
    c = _Cols()
    kinds = [str(k) for k in fac["kind"]]
    c.add("name", display_names(fac, lang))
    c.add("id", [str(i) for i in fac["id"]], text("id", lang))
    c.add("kind", [text(k, lang) for k in kinds], text("kind", lang))
    c.add("head", nums(fac, "head_m", 1), text("head", lang), 1, "m")
    c.add("capacity", nums(fac, "capacity_m3d", 0), text("capacity", lang), 0, "m³/d")
    c.add("qd", nums(fac, "design_flow_ls", 2), text("design_flow", lang), 1, "L/s")
    c.add("hd", nums(fac, "design_head_m", 1), text("design_head", lang), 1, "m")
    c.add("fills", strs(fac, "fills"), text("fills", lang))
    c.add("bottom", nums(fac, "bottom_elev_m", 1), text("bottom_elev", lang), 1, "m")
    lo, hi = nums(fac, "min_level_m", 2), nums(fac, "max_level_m", 2)
    if lo is not None and hi is not None:
        c.add("levels", [None if a is None or b is None else f"{a:g}–{b:g} m" for a, b in zip(lo, hi)],
              text("level_range", lang))
    vol = nums(fac, "volume_m3", 0)
    if vol is None and {"diameter_m", "max_level_m"} <= set(fac.columns):
        d = pd.to_numeric(fac["diameter_m"], errors="coerce") ** 2 * math.pi / 4.0
        vol = nums(pd.DataFrame({"v": d * pd.to_numeric(fac["max_level_m"], errors="coerce")}), "v", 0)
    c.add("volume", vol, text("volume", lang), 0, "m³")
    if tank_level is not None and len(tank_level.columns) and "node_id" in fac.columns:
        lv = tank_level.reindex(columns=fac["node_id"].astype(str))
        c.add("simlevel", [None if pd.isna(a) else f"{a:.2f}–{b:.2f} m" for a, b in zip(lv.min(), lv.max())],
              text("sim_level", lang))
    if pumps is not None and len(pumps) and {"station_id", "energy_kwh"} <= set(pumps.columns):
        e = pd.to_numeric(pumps["energy_kwh"], errors="coerce").groupby(pumps["station_id"].astype(str)).sum()
        c.add("energy", nums(pd.DataFrame({"v": e.reindex(fac["id"].astype(str)).to_numpy()}), "v", 0),
              text("energy", lang), 0, "kWh")
    return c.data(latlng=[_point_latlng(g) for g in geoms], fkind=kinds, title="name")


def node_data(nodes: gpd.GeoDataFrame, *, lang: str, t: Mapping[str, float], pressure: pd.DataFrame | None,
               settlements: gpd.GeoDataFrame | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The demand nodes (or the nodes of `pressure`): points, pressure class, popup rows, hourly series."""
    ids_all = nodes["id"].astype(str)
    if pressure is not None:
        cols = [str(c) for c in pressure.columns]
        unknown = sorted(set(cols) - set(ids_all))
        if unknown:
            raise NetworkDataError(f"pressure: node id(s) {', '.join(map(repr, unknown[:5]))} are not in the nodes "
                                   f"layer; {closest(unknown[0], ids_all)} — give the pressures of this network")
        show = nodes.set_index(ids_all).loc[cols].reset_index(drop=True)
    else:
        dem = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0)
        kind = nodes.get("kind", pd.Series("junction", index=nodes.index))
        mask = (kind == "junction") & (dem > 0)
        if not mask.any():
            mask = kind == "junction"
        show = nodes[mask.to_numpy()].reset_index(drop=True)
    show = gpd.GeoDataFrame(show, geometry=nodes.geometry.name, crs=nodes.crs)
    lg = pressure_legend(t, lang=lang)
    if "min_pressure_m" in show.columns:
        minp = pd.to_numeric(show["min_pressure_m"], errors="coerce").to_numpy(dtype=float)
    elif pressure is not None:
        minp = pressure.min().to_numpy(dtype=float)
    else:
        minp = np.full(len(show), np.nan)
    geoms = show.geometry.to_crs(WEB_CRS)
    c = _Cols()
    ids = [str(i) for i in show["id"]]
    c.add("id", ids)
    if "settlement_id" in show.columns:
        names = {}
        if settlements is not None and len(settlements):
            names = dict(zip(settlements["id"].astype(str), display_names(settlements, lang)))
        c.add("settlement", [None if s is None else names.get(s, s) for s in strs(show, "settlement_id")],
              text("settlement", lang))
    c.add("population", nums(show, "population", 0), text("population", lang), 0)
    c.add("elev", nums(show, "elevation_m", 1), text("elevation", lang), 1, "m")
    c.add("minp", [None if np.isnan(v) else round(float(v), 2) for v in minp], text("min_pressure", lang), 1, "m")
    c.add("head", nums(show, "service_head_m", 1), text("service_head", lang), 1, "m")
    c.add("cl", nums(show, "min_chlorine_mgL", 3), text("min_chlorine", lang), 2, "mg/L")
    c.add("age", nums(show, "max_age_h", 1), text("max_age", lang), 1, "h")
    data = c.data(latlng=[_point_latlng(g) for g in geoms], cls=[int(i) for i in classify(minp, lg)], title="id")
    series = None
    if pressure is not None and len(pressure.index):
        arr = np.round(pressure.to_numpy(dtype=float) * 10.0)
        flat = [None if np.isnan(v) else int(v) for v in arr.ravel()]
        hours = [float(h) for h in pd.to_numeric(pd.Index(pressure.index), errors="coerce")]
        series = {"hours": [int(h) if float(h).is_integer() else round(h, 2) for h in hours],
                  "n": len(ids), "scale": 10, "values": flat}
    return data, lg, series


def json_for_html(obj: Any) -> str:
    r"""JSON safe inside an HTML ``<script type="application/json">`` (no ``</``, no comment openers)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def bounds(geoms: list[gpd.GeoSeries]) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of the geometries (WGS84)."""
    b = pd.concat(geoms).total_bounds
    return [[round(float(b[1]), COORD_DIGITS), round(float(b[0]), COORD_DIGITS)],
            [round(float(b[3]), COORD_DIGITS), round(float(b[2]), COORD_DIGITS)]]


def tile_layers(tiles: str, key: str | None, lang: str) -> list[dict[str, Any]]:
    """The basemap's tile layers (URL template and options); none for ``tiles='none'``."""
    if tiles == "none":
        return []
    if tiles == "osm":
        return [{"name": text("osm", lang), "layers": [{
            "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "options": {"maxZoom": 19, "attribution": "&copy; OpenStreetMap contributors"}}]}]
    k = key or TIANDITU_KEY_PLACEHOLDER
    base = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=")
    opts = {"subdomains": "01234567", "maxZoom": 18, "attribution": "&copy; 天地图 Tianditu"}
    return [{"name": text("tianditu", lang), "layers": [
        {"url": base.replace("{layer}", "vec") + k, "options": opts},
        {"url": base.replace("{layer}", "cva") + k, "options": {**opts, "attribution": ""}}]}]
