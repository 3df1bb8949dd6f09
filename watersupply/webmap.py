"""Interactive service map (folium/Leaflet) of a network and its results.

First version: settlements, pipes by class, facilities and demand nodes by
minimum pressure, bilingual labels. Written atomically by :func:`write_map`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd

from .io import atomic_path

__all__ = ["service_map", "write_map"]

WEB_CRS = "EPSG:4326"


def _pressure_colour(p: float) -> str:
    if pd.isna(p):
        return "#888888"
    if p < 0:
        return "#7f0000"
    if p < 10:
        return "#d7301f"
    if p < 20:
        return "#fc8d59"
    if p < 28:
        return "#fdcc8a"
    return "#2b8cbe"


def service_map(layers: Mapping[str, gpd.GeoDataFrame], *, title: str = "", lang: str = "both",
                pressure: pd.DataFrame | None = None) -> folium.Map:
    """Build the service map from result layers (any projected CRS; shown in WGS84)."""
    web = {k: v.to_crs(WEB_CRS) for k, v in layers.items() if isinstance(v, gpd.GeoDataFrame) and len(v)}
    bounds = pd.concat([g.geometry for g in web.values()]).total_bounds
    m = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2], zoom_start=13,
                   tiles=None, control_scale=True)
    if "settlements" in web:
        st = web["settlements"]
        fg = folium.FeatureGroup(name="居民点 Settlements")
        for row in st.itertuples(index=False):
            tip = html.escape(f"{getattr(row, 'name_zh', '')} {getattr(row, 'name_en', '')}")
            folium.GeoJson(row.geometry.__geo_interface__, tooltip=tip,
                           style_function=lambda _f: {"color": "#555", "weight": 1, "fillOpacity": 0.15}).add_to(fg)
        fg.add_to(m)
    if "pipes" in web:
        pp = web["pipes"]
        for cls, colour, weight in (("main", "#08519c", 3), ("branch", "#6baed6", 1)):
            sub = pp[pp["class"] == cls] if "class" in pp else pp
            if not len(sub):
                continue
            fg = folium.FeatureGroup(name={"main": "主管网 Mains", "branch": "支管网 Branches"}[cls])
            folium.GeoJson(sub[["id", "geometry"]].to_json(),
                           style_function=lambda _f, c=colour, w=weight: {"color": c, "weight": w}).add_to(fg)
            fg.add_to(m)
    if "nodes" in web and "min_pressure_m" in web["nodes"]:
        nd = web["nodes"]
        fg = folium.FeatureGroup(name="用水节点 Demand nodes")
        for row in nd.itertuples(index=False):
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=2, weight=0, fill=True, fill_opacity=0.9,
                                fill_color=_pressure_colour(row.min_pressure_m)).add_to(fg)
        fg.add_to(m)
    if "facilities" in web:
        fg = folium.FeatureGroup(name="设施 Facilities")
        for row in web["facilities"].itertuples(index=False):
            tip = html.escape(f"{row.name_zh} {row.name_en}")
            folium.Marker([row.geometry.y, row.geometry.x], tooltip=tip).add_to(fg)
        fg.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return m


def write_map(m: folium.Map, path: str | os.PathLike) -> Path:
    """Write the map as one HTML file, atomically."""
    with atomic_path(path) as tmp:
        m.save(str(tmp))
    return Path(path)
