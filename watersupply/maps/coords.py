"""Coordinates for web maps: GCJ-02 ("Mars" coordinates of AMap/Gaode) to and from WGS84, and
district outlines read from GCJ-02 GeoJSON.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from .._errors import NetworkDataError
from ..io import NETWORKS_DIR

__all__ = ["WEB_CRS", "gcj02_to_wgs84", "wgs84_to_gcj02", "read_district", "bundled_district"]

#: CRS of everything put on a web map.
WEB_CRS = "EPSG:4326"

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_GCJ_EE = 0.00669342162296594323


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
            + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
            + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * pi
    magic = 1.0 - _GCJ_EE * np.sin(rad) ** 2
    sq = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sq) * pi)
    dlon = dlon * 180.0 / (_GCJ_A / sq * np.cos(rad) * pi)
    return dlon, dlat


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Forward GCJ-02 ("Mars") obfuscation of WGS84 longitudes/latitudes (degrees).

    Points outside China are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)
    >>> round(float(lon), 9), round(float(lat), 9)
    (121.531541859, 31.175303984)
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(lon, lat)
    inside = _in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-10, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Invert GCJ-02 to WGS84 by fixed-point iteration (accurate to well under 1 m).

    Starts from ``gcj - delta(gcj)`` and repeats ``wgs -= forward(wgs) - gcj``
    until the largest correction is below `tol_deg`.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(121.531541859215, 31.17530398364597)
    >>> round(float(lon), 7), round(float(lat), 7)
    (121.5272106, 31.1774276)
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    dlon, dlat = _gcj_delta(glon, glat)
    wlon, wlat = glon - dlon, glat - dlat
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon, wlat = wlon - elon, wlat - elat
        if max(float(np.max(np.abs(elon), initial=0.0)), float(np.max(np.abs(elat), initial=0.0))) < tol_deg:
            break
    inside = _in_china(glon, glat)
    return np.where(inside, wlon, glon), np.where(inside, wlat, glat)


def read_district(path: str | os.PathLike, *, gcj02: bool = True) -> gpd.GeoDataFrame:
    """Read a district outline (GeoJSON geometry, Feature or FeatureCollection) in WGS84.

    Parameters
    ----------
    path
        The GeoJSON file.
    gcj02
        The coordinates are GCJ-02 (AMap/Gaode) and are converted to WGS84.

    Raises
    ------
    NetworkDataError
        The file is missing or not GeoJSON with (multi)polygons.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NetworkDataError(f"{p}: district outline not found; give a GeoJSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NetworkDataError(f"{p}: not valid GeoJSON ({exc}); give a GeoJSON polygon file") from None
    feats = raw.get("features") if raw.get("type") == "FeatureCollection" else [raw]
    geoms, props = [], []
    for f in feats:
        g = f.get("geometry", f) if f.get("type") == "Feature" else f
        try:
            geom = shapely.geometry.shape(g)
        except Exception as exc:  # shapely raises several types on bad input
            raise NetworkDataError(f"{p}: a geometry cannot be read ({exc}); give (Multi)Polygon GeoJSON") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise NetworkDataError(f"{p}: geometry type {geom.geom_type!r}; a district outline must be (Multi)Polygon")
        if gcj02:
            geom = shapely.transform(geom, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
        geoms.append(geom)
        props.append({k: v for k, v in (f.get("properties") or {}).items()})
    return gpd.GeoDataFrame(props, geometry=geoms, crs=WEB_CRS)


def bundled_district(name: str | None) -> gpd.GeoDataFrame | None:
    """The district outline bundled with network `name` (``networks/<name>/*_gcj02.geojson``), or None."""
    if not name or not re.fullmatch(r"[\w-]+", str(name)):
        return None
    folder = NETWORKS_DIR / str(name)
    files = sorted(folder.glob("*_gcj02.geojson")) if folder.is_dir() else []
    return read_district(files[0], gcj02=True) if files else None
