"""Build a network in the project's layout from the user's GIS layers.

:func:`build_network` takes a pipes layer (GeoPackage, GeoJSON, Shapefile or a
GeoDataFrame) and optionally nodes, facilities and settlements layers and a
DEM. It renames the user's columns (a ``mapping``), snaps pipe ends into nodes
within a tolerance (creating nodes where ends meet without one), derives
``from_node``/``to_node``, takes elevations from the DEM or a node attribute,
attaches facilities (plants, reservoirs, pump stations) to nodes and returns the
layers together with the topology findings of
:func:`watersupply.validation.validate_topology` and the list of fixes applied.
It writes nothing; :func:`write_built` writes the GeoPackage, the INP beside it
and ``validation.csv``.

Mapping
-------
A dict or a YAML file, per layer, from our names to the user's column names::

    pipes:
      id: GXBH          # pipe number
      diameter: GJ      # mm
      material: CZ
    nodes:
      id: JDBH
      elevation: DMGC   # m
      demand: YSL       # m³/d

Our names: ``id`` in every layer; pipes ``diameter`` (mm), ``roughness``
(Hazen-Williams C), ``material``, ``length`` (m), ``status``, ``class``;
nodes ``elevation`` (m), ``demand`` (m³/d), ``population``, ``kind``,
``pattern``, ``head`` (m); facilities ``kind``, ``head``, ``node``, ``name``,
``bottom_elev``, ``diameter``, ``min_level``, ``max_level``, ``init_level`` (m);
settlements ``population``, ``kind``, ``name``, ``storeys``. The project's own
column names (``diameter_mm``, ``elevation_m``, ...) are accepted as keys too.
A flat mapping without layer names applies to every layer having the column.
Without a mapping, columns already named like ours (``diameter``, ``elevation``,
``demand``, ...) are recognised.

Examples
--------
>>> net, findings, fixes = build_network("pipes.gpkg", nodes="nodes.gpkg", dem="dem.tif")  # doctest: +SKIP
>>> write_built(net, "out/network.gpkg", findings=findings)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point
from shapely.ops import substring

from ._errors import ConfigError, NetworkDataError, closest
from .io import list_layers, read_layer
from .schema import FACILITY_KINDS, Network, validate_network
from .standards import DIURNAL_PATTERNS, MAIN_DIAMETER_MM, PATTERN_OF_KIND, PER_CAPITA_ESTIMATE_L_D
from .validation import COLUMNS, validate_topology

__all__ = ["DEFAULT_ROUGHNESS_C", "LOGICAL_COLUMNS", "build_network", "load_mapping", "sample_dem", "write_built"]

log = logging.getLogger(__name__)

#: Hazen-Williams C assumed by material when the pipes have no roughness
#: (mid-range values of the EPANET 2.2 manual, table 3.2, for pipes in service).
DEFAULT_ROUGHNESS_C = {
    "DI": 130.0, "CI": 120.0, "STEEL": 140.0, "GS": 120.0, "PE": 145.0, "HDPE": 145.0, "PVC": 150.0,
    "UPVC": 150.0, "PPR": 145.0, "CONCRETE": 130.0, "PCCP": 130.0, "UNKNOWN": 130.0,
}

#: Our names accepted in a mapping, per layer -> the layout's column.
LOGICAL_COLUMNS: dict[str, dict[str, str]] = {
    "pipes": {"id": "id", "diameter": "diameter_mm", "roughness": "roughness_c", "material": "material",
              "length": "length_m", "status": "status", "class": "class", "zone": "zone"},
    "nodes": {"id": "id", "elevation": "elevation_m", "demand": "base_demand_m3d", "population": "population",
              "kind": "kind", "pattern": "pattern", "head": "head_m", "zone": "zone",
              "settlement": "settlement_id"},
    "facilities": {"id": "id", "kind": "kind", "head": "head_m", "node": "node_id", "name": "name_en",
                   "name_zh": "name_zh", "name_en": "name_en", "zone": "zone", "bottom_elev": "bottom_elev_m",
                   "diameter": "diameter_m", "min_level": "min_level_m", "max_level": "max_level_m",
                   "init_level": "init_level_m", "capacity": "capacity_m3d"},
    "settlements": {"id": "id", "population": "population", "kind": "kind", "name": "name_en",
                    "name_zh": "name_zh", "name_en": "name_en", "storeys": "storeys", "zone": "zone"},
}
_ROLES = tuple(LOGICAL_COLUMNS)
_GEOMETRY = {"pipes": "LineString", "nodes": "Point", "facilities": "Point", "settlements": "Polygon"}
_RESERVOIR_REQUIRED = ("diameter_m", "min_level_m", "max_level_m", "init_level_m")

# ----------------------------------------------------------------------------- reading


def load_mapping(mapping: Mapping[str, Any] | str | os.PathLike | None) -> dict[str, dict[str, str]]:
    """Read a column mapping (a dict or a YAML file) into ``{layer: {our name: user column}}``.

    A flat mapping (no layer names) is returned under the key ``"*"``.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or a name is not one of ours.
    """
    if mapping is None:
        return {}
    source = "mapping"
    if isinstance(mapping, (str, os.PathLike)):
        from .io import read_yaml

        p = Path(mapping)
        source = str(p)
        mapping = read_yaml(p, missing="mapping file not found; give a YAML file such as 'pipes: {diameter: DN}'",
                            invalid="not a YAML mapping ({error})")
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{source}: a mapping must be a dict of layer -> {{our name: your column}}, "
                          f"got {type(mapping).__name__}")
    nested = {k: v for k, v in mapping.items() if k in _ROLES and isinstance(v, Mapping)}
    flat = {k: v for k, v in mapping.items() if k not in nested}
    out: dict[str, dict[str, str]] = {}
    groups = [(layer, dict(m)) for layer, m in nested.items()] + ([("*", flat)] if flat else [])
    for layer, m in groups:
        valid = set().union(*(set(LOGICAL_COLUMNS[r]) | set(LOGICAL_COLUMNS[r].values()) for r in
                             (_ROLES if layer == "*" else (layer,))))
        for key, col in m.items():
            if key not in valid:
                raise ConfigError(f"{source}: {key!r} is not one of our column names for "
                                  f"{'any layer' if layer == '*' else 'layer ' + repr(layer)}; "
                                  f"{closest(str(key), valid)}")
            if not isinstance(col, (str, int)) or isinstance(col, bool):
                raise ConfigError(f"{source}: the column for {key!r} must be a column name, got {col!r}")
        out[layer] = {str(k): str(v) for k, v in m.items()}
    return out


def _read_layer(src: Any, role: str) -> tuple[gpd.GeoDataFrame, str]:
    """A layer as a GeoDataFrame and a label naming it for messages."""
    if isinstance(src, gpd.GeoDataFrame):
        df = src.copy()
        if df.geometry.name != "geometry":
            df = df.rename_geometry("geometry")
        return df, f"{role} layer"
    if isinstance(src, pd.DataFrame):
        raise NetworkDataError(f"the {role} layer is a table without geometry; give a GeoDataFrame or a GIS file")
    if not isinstance(src, (str, os.PathLike)):
        raise TypeError(f"{role!r} should be a path or a GeoDataFrame, got {type(src).__name__}")
    p = Path(src)
    listed = list_layers(p, fix=f"give the {role} layer as a GeoPackage, GeoJSON or Shapefile")
    layer = None
    if len(listed) > 1:
        if role in listed:
            layer = role
        else:
            raise NetworkDataError(f"{p}: has {len(listed)} layers ({', '.join(map(repr, listed[:10]))}) and none "
                                   f"is named {role!r}; name the layer {role!r} or give a file with one layer")
    df = read_layer(p, layer, id_columns=(), text_id=False)
    if not isinstance(df, gpd.GeoDataFrame) or df.geometry.isna().all():
        raise NetworkDataError(f"{p}: has no geometry (a plain table?); give the {role} layer as "
                               f"{_GEOMETRY[role]} features in a GeoPackage, GeoJSON or Shapefile")
    return df, str(p) + (f" (layer {layer!r})" if layer else "")


def _check_crs(frames: dict[str, tuple[gpd.GeoDataFrame, str]], crs: Any) -> pyproj.CRS:
    want = None
    if crs is not None:
        try:
            want = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise NetworkDataError(f"CRS {crs!r} is not valid ({exc}); give e.g. 'EPSG:4545'") from None
    seen: dict[str, pyproj.CRS] = {}
    for role, (df, label) in frames.items():
        if df.crs is None:
            if want is None:
                raise NetworkDataError(f"{label}: has no CRS; give the CRS of its coordinates (crs= or --crs, "
                                       "e.g. EPSG:4545) or assign one in your GIS")
            frames[role] = (df.set_crs(want), label)
        elif want is not None and df.crs != want:
            raise NetworkDataError(f"{label}: is in {df.crs.to_string()} but CRS {want.to_string()} was given "
                                   "(mixed CRS); drop the crs option or reproject the layer with to_crs()")
        seen[role] = frames[role][0].crs
    ref_role = "pipes"
    ref = seen[ref_role]
    for role, c in seen.items():
        if c != ref:
            raise NetworkDataError(f"mixed CRS: {frames[ref_role][1]} is in {ref.to_string()} but "
                                   f"{frames[role][1]} is in {c.to_string()}; reproject all layers to one "
                                   "projected CRS with to_crs()")
    if ref.is_geographic:
        utm = frames["pipes"][0].estimate_utm_crs()
        raise NetworkDataError(f"{frames['pipes'][1]}: CRS {ref.to_string()} is geographic (degrees); the "
                               f"tolerance and lengths need metres — reproject to a projected CRS, e.g. "
                               f"{utm.to_string()} (its UTM zone), with to_crs()")
    return ref


def _apply_mapping(df: gpd.GeoDataFrame, role: str, label: str, mapping: dict[str, dict[str, str]]) -> gpd.GeoDataFrame:
    """Rename the user's columns to ours; a mapped column that is not there is an error."""
    logical = LOGICAL_COLUMNS[role]
    rename: dict[str, str] = {}
    for key, col in mapping.get(role, {}).items():
        if col not in df.columns:
            raise NetworkDataError(f"{label}: the mapping gives column {col!r} for {key!r}, but the layer has no "
                                   f"such column; {closest(col, map(str, df.columns))}")
        rename[col] = logical.get(key, key)
    for key, col in mapping.get("*", {}).items():
        target = logical.get(key, key if key in logical.values() else None)
        if target is not None and col in df.columns and col not in rename:
            rename[col] = target
    # columns already named like ours
    for key, target in logical.items():
        if target not in rename.values() and target not in df.columns and key in df.columns and key not in rename:
            rename[key] = target
    clash = [t for t in rename.values() if t in df.columns and t not in rename]
    df = df.drop(columns=clash).rename(columns=rename)
    return df


def _flat_mapping_used(mapping: dict[str, dict[str, str]], frames: dict[str, tuple[gpd.GeoDataFrame, str]]) -> None:
    for key, col in mapping.get("*", {}).items():
        if not any(col in df.columns for df, _ in frames.values()):
            raise NetworkDataError(f"the mapping gives column {col!r} for {key!r}, but no layer has such a column "
                                   f"(layers: {', '.join(label for _, label in frames.values())})")


def _ids(df: gpd.GeoDataFrame, label: str, prefix: str, notes: list[str]) -> gpd.GeoDataFrame:
    if "id" not in df.columns:
        width = max(5, len(str(len(df))))
        df["id"] = [f"{prefix}{i + 1:0{width}d}" for i in range(len(df))]
        notes.append(f"{label}: no 'id' column; ids {df['id'].iloc[0]}... were given in row order "
                     "(map your id column with mapping={'<layer>': {'id': 'YOUR_COLUMN'}})")
    ids = df["id"]
    if ids.isna().any():
        rows = list(np.flatnonzero(ids.isna().to_numpy())[:5])
        raise NetworkDataError(f"{label}: empty id in row(s) {rows}; every feature needs an id")
    df["id"] = ids.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
    dup = df["id"][df["id"].duplicated()].unique()
    if len(dup):
        raise NetworkDataError(f"{label}: duplicate id(s) {', '.join(map(repr, dup[:5]))}; ids must be unique")
    return df


def _numeric(df: pd.DataFrame, col: str, label: str) -> pd.Series:
    vals = pd.to_numeric(df[col], errors="coerce")
    bad = vals.isna() & df[col].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise NetworkDataError(f"{label}: column {col!r} of {df['id'].iloc[i]!r} must be a number, "
                               f"got {df[col].iloc[i]!r}")
    return vals.astype(float)


def _lines(pipes: gpd.GeoDataFrame, label: str) -> np.ndarray:
    geoms = shapely.force_2d(pipes.geometry.to_numpy())
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        pid = pipes["id"].iloc[i]
        if g is None or g.is_empty:
            raise NetworkDataError(f"{label}: pipe {pid!r} has no geometry; draw it or remove it")
        if g.geom_type == "MultiLineString":
            g = shapely.line_merge(g)
        if g.geom_type != "LineString":
            raise NetworkDataError(f"{label}: pipe {pid!r} is a {g.geom_type}, not one line; split it into "
                                   "separate pipes or join its parts")
        out[i] = g
    return out


def _points(df: gpd.GeoDataFrame, label: str, what: str) -> np.ndarray:
    geoms = shapely.force_2d(df.geometry.to_numpy())
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g is not None and g.geom_type == "MultiPoint" and len(g.geoms) == 1:
            g = g.geoms[0]
        if g is None or g.is_empty or g.geom_type != "Point":
            raise NetworkDataError(f"{label}: {what} {df['id'].iloc[i]!r} must be a point, got "
                                   f"{'nothing' if g is None or g.is_empty else g.geom_type}")
        out[i] = g
    return out


# ----------------------------------------------------------------------------- snapping and fixes


class _NodeIds:
    """New node ids J00001, J00002, ... skipping ids already used."""

    def __init__(self, used: set[str], prefix: str = "J") -> None:
        self.used, self.prefix, self.k = set(used), prefix, 0

    def __call__(self) -> str:
        while True:
            self.k += 1
            nid = f"{self.prefix}{self.k:05d}"
            if nid not in self.used:
                self.used.add(nid)
                return nid


def _snap(lines: np.ndarray, pipe_ids: list[str], user_xy: np.ndarray, user_ids: list[str], tol: float,
          new_id: _NodeIds, have_user_nodes: bool) -> tuple[list[str], list[str], dict[str, tuple[float, float]],
                                                            list[dict]]:
    """Assign every pipe end to a user node within `tol` or to a node created where ends meet."""
    n = len(lines)
    ends = np.array([[ln.coords[0], ln.coords[-1]] for ln in lines], dtype=float).reshape(2 * n, 2)
    ends = np.vstack([ends[0::2], ends[1::2]])  # starts, then ends
    node_of = np.full(2 * n, None, dtype=object)
    r = tol + 1e-9
    if len(user_xy):
        d, j = cKDTree(user_xy).query(ends, k=1, distance_upper_bound=r)
        hit = np.isfinite(d)
        node_of[hit] = np.asarray(user_ids, dtype=object)[j[hit]]
    free = np.flatnonzero(node_of == None)  # noqa: E711
    created: dict[str, tuple[float, float]] = {}
    findings: list[dict] = []
    if len(free):
        parent = list(range(len(free)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for a, b in sorted(cKDTree(ends[free]).query_pairs(r)):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        clusters: dict[int, list[int]] = {}
        for k in range(len(free)):
            clusters.setdefault(find(k), []).append(k)
        # in order of first appearance: pipe order, start before end
        order = sorted(clusters.values(), key=lambda m: min((free[k] % n, free[k] // n) for k in m))
        user_tree = cKDTree(user_xy) if len(user_xy) else None
        for members in order:
            idx = free[members]
            xy = ends[idx].mean(axis=0)
            nid = new_id()
            created[nid] = (float(xy[0]), float(xy[1]))
            node_of[idx] = nid
            if have_user_nodes and len(idx) == 1:
                e = int(idx[0])
                pid, which = pipe_ids[e % n], ("start", "end")[e // n]
                near = ""
                if user_tree is not None:
                    dd, jj = user_tree.query(ends[e])
                    near = f"; the nearest node is {user_ids[int(jj)]!r} at {dd:.2f} m"
                findings.append(dict(check="dangling_end", severity="warning", element_type="pipe", element_id=pid,
                                     x=float(ends[e][0]), y=float(ends[e][1]), node=nid,
                                     message=f"the {which} of pipe {pid!r} is not at any node within {tol:g} m"
                                             f"{near}; node {nid!r} was created there (a dead end) — check it"))
    return list(node_of[:n]), list(node_of[n:]), created, findings


def _set_ends(line: LineString, a: tuple[float, float], b: tuple[float, float]) -> LineString:
    coords = list(line.coords)
    coords[0], coords[-1] = a, b
    if len(coords) > 2 and coords[0] == coords[1]:
        coords.pop(1)
    if len(coords) > 2 and coords[-1] == coords[-2]:
        coords.pop(-2)
    return LineString(coords)


def _split_pipes(pipes: pd.DataFrame, splits: dict[int, list[tuple[float, str]]],
                 pos: dict[str, tuple[float, float]]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Split pipes (by row position) at distances along them, ending the parts on the given nodes."""
    used = set(pipes["id"])
    rows, parts_of = [], {}
    for i, row in enumerate(pipes.to_dict("records")):
        cuts = sorted({node: d for d, node in splits.get(i, [])}.items(), key=lambda kv: kv[1])
        if not cuts:
            rows.append(row)
            continue
        line = row["geometry"]
        total = line.length
        bounds = [0.0] + [d for _, d in cuts] + [total]
        nodes_at = [row["from_node"]] + [n for n, _ in cuts] + [row["to_node"]]
        names = []
        for k in range(len(bounds) - 1):
            part = substring(line, bounds[k], bounds[k + 1])
            if part.geom_type != "LineString":
                continue
            part = _set_ends(part, pos[nodes_at[k]], pos[nodes_at[k + 1]])
            pid = row["id"]
            if k > 0:
                m = k + 1
                pid = f"{row['id']}-{m}"
                while pid in used:
                    m += 1
                    pid = f"{row['id']}-{m}"
                used.add(pid)
            new = dict(row, id=pid, from_node=nodes_at[k], to_node=nodes_at[k + 1], geometry=part)
            if row["_given_length"] and total > 0:
                new["length_m"] = float(row["length_m"]) * (bounds[k + 1] - bounds[k]) / total
            rows.append(new)
            names.append(pid)
        parts_of[row["id"]] = names
    out = pd.DataFrame(rows, columns=pipes.columns)
    return out, parts_of


def _near_miss_splits(pipes: pd.DataFrame, pos: dict[str, tuple[float, float]], tol: float) \
        -> dict[int, list[tuple[float, str]]]:
    """Nodes within `tol` of a pipe's interior that the pipe does not end at: where to split it."""
    geoms = pipes["geometry"].to_numpy()
    tree = shapely.STRtree(geoms)
    names = sorted(pos)
    pts = shapely.points(np.array([pos[n] for n in names]))
    qi, qj = tree.query(pts, predicate="dwithin", distance=max(tol, 1e-9))
    frm, to = pipes["from_node"].to_numpy(), pipes["to_node"].to_numpy()
    splits: dict[int, list[tuple[float, str]]] = {}
    for i, j in zip(qi, qj):
        node = names[i]
        if node in (frm[j], to[j]):
            continue
        line = geoms[j]
        d = line.project(pts[i])
        if d <= tol or d >= line.length - tol:
            continue
        splits.setdefault(int(j), []).append((float(d), node))
    return splits


def _crossing_points(pipes: pd.DataFrame, tol: float) -> list[tuple[int, int, Point]]:
    geoms = pipes["geometry"].to_numpy()
    tree = shapely.STRtree(geoms)
    a_idx, b_idx = tree.query(geoms, predicate="crosses")
    frm, to = pipes["from_node"].to_numpy(), pipes["to_node"].to_numpy()
    out = []
    for a, b in zip(a_idx, b_idx):
        if a >= b or {frm[a], to[a]} & {frm[b], to[b]}:
            continue
        ends = [geoms[a].coords[0], geoms[a].coords[-1], geoms[b].coords[0], geoms[b].coords[-1]]
        for part in shapely.get_parts(shapely.intersection(geoms[a], geoms[b])):
            if part.geom_type == "Point" and min(math.dist((part.x, part.y), e) for e in ends) > tol:
                out.append((int(a), int(b), part))
    return out


# ----------------------------------------------------------------------------- elevations


def sample_dem(points: gpd.GeoDataFrame, dem: str | os.PathLike) -> pd.Series:
    """Ground elevation at each point from a DEM raster (reprojecting the points to the raster's CRS).

    The one DEM code path: ``watersupply build --dem`` and the Tonghui generator both sample here.

    Parameters
    ----------
    points
        Point layer with an ``id`` column and a CRS.
    dem
        A raster GDAL reads (GeoTIFF), with a CRS; each point takes the value of the cell it falls in.

    Returns
    -------
    pandas.Series
        Elevation (m), indexed like `points`.

    Raises
    ------
    NetworkDataError
        If the file is missing or not a raster, has no CRS, or a point falls outside it or on a no-data cell.
    """
    try:
        import rasterio
    except ImportError:  # pragma: no cover - rasterio is a core dependency
        raise ImportError("reading a DEM needs rasterio: pip install rasterio") from None
    import wntr.gis

    p = Path(dem)
    if not p.is_file():
        raise NetworkDataError(f"{p}: DEM file not found; give a GeoTIFF (or any raster GDAL reads)")
    try:
        with rasterio.open(p) as src:
            rcrs, bounds, nodata = src.crs, src.bounds, src.nodata
    except rasterio.errors.RasterioIOError as exc:
        raise NetworkDataError(f"{p}: not a raster DEM ({' '.join(str(exc).split())[:200]})") from None
    if rcrs is None:
        raise NetworkDataError(f"{p}: the DEM has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:4545)")
    pts = points.to_crs(rcrs.to_wkt()) if pyproj.CRS.from_user_input(rcrs.to_wkt()) != points.crs else points
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    outside = (x < bounds.left) | (x > bounds.right) | (y < bounds.bottom) | (y > bounds.top)
    if outside.any():
        ids = points["id"].to_numpy()[outside]
        raise NetworkDataError(
            f"{p}: {int(outside.sum())} of {len(points)} nodes fall outside the DEM (e.g. "
            f"{', '.join(map(repr, ids[:3]))}); DEM bounds ({bounds.left:.1f}, {bounds.bottom:.1f}, "
            f"{bounds.right:.1f}, {bounds.top:.1f}) in {rcrs.to_string()}, nodes span ({x.min():.1f}, {y.min():.1f}, "
            f"{x.max():.1f}, {y.max():.1f}); give a DEM that covers the whole network")
    values = wntr.gis.sample_raster(gpd.GeoDataFrame({"id": points["id"].to_numpy()}, geometry=pts.geometry.values,
                                                     crs=pts.crs), str(p))
    values = pd.Series(np.asarray(values, dtype=float).reshape(-1), index=points.index)
    bad = values.isna()
    if nodata is not None:
        bad |= np.isclose(values, nodata)
    if bad.any():
        ids = points["id"].to_numpy()[bad.to_numpy()]
        raise NetworkDataError(f"{p}: {int(bad.sum())} node(s) fall on DEM cells without data (e.g. "
                               f"{', '.join(map(repr, ids[:3]))}); fill the DEM's gaps or give node elevations")
    return values


# ----------------------------------------------------------------------------- public


def build_network(pipes: Any, *, nodes: Any = None, facilities: Any = None, settlements: Any = None,
                  dem: str | os.PathLike | None = None, crs: Any = None,
                  mapping: Mapping[str, Any] | str | os.PathLike | None = None, tolerance_m: float = 1.0,
                  fix: bool = False, split_crossings: bool = False) -> tuple[Network, pd.DataFrame, list[str]]:
    """Build a network in the project's layout from GIS layers.

    Parameters
    ----------
    pipes
        Pipe lines: a path (GeoPackage, GeoJSON, Shapefile; a file with several
        layers must have one named ``pipes``) or a GeoDataFrame. Needs a diameter
        (mm); roughness defaults by material (:data:`DEFAULT_ROUGHNESS_C`).
    nodes
        Optional node points (junctions with elevation, demand, population).
    facilities
        Optional points of plants (``head_m``), reservoirs (``diameter_m``,
        ``min_level_m``, ``max_level_m``, ``init_level_m``, optional
        ``bottom_elev_m``) and pump stations, each on a node within the tolerance
        or naming it in ``node_id``.
    settlements
        Optional polygons with ``population`` (and ``kind``: village|community).
        Without them, settlements are derived from the demand nodes.
    dem
        A DEM raster: node elevations are sampled from it (``wntr.gis.sample_raster``),
        reprojecting the nodes to the raster's CRS.
    crs
        CRS of layers that have none. A layer with another CRS is an error.
    mapping
        Column names (dict or YAML file); see the module docstring.
    tolerance_m
        Pipe ends within this distance (m) of a node, or of each other, are joined.
    fix
        Apply safe fixes and list them: drop pipes shorter than the tolerance whose
        ends meet, split pipes where a node lies on them within the tolerance
        (near misses), drop exact duplicate pipes.
    split_crossings
        With `fix`, also put a node where two pipes cross and split both.

    Returns
    -------
    tuple
        ``(network, findings, fixes)``: the validated layers, the topology findings
        (:func:`watersupply.validation.validate_topology` plus the dead ends met
        while snapping) and one line per fix applied.

    Raises
    ------
    NetworkDataError
        A file that is not GIS data, a layer without CRS and no `crs`, mixed CRS,
        a mapped column that is not there, missing diameters or elevations, a DEM
        that does not cover the network, a facility away from every node, ...
    ConfigError
        A malformed mapping or options.
    """
    tol = float(tolerance_m)
    if not tol >= 0:
        raise ConfigError(f"tolerance_m must be a distance >= 0 in metres, got {tolerance_m!r}")
    if split_crossings and not fix:
        raise ConfigError("split_crossings only applies with fix=True (--split-crossings needs --fix)")
    maps = load_mapping(mapping)
    for layer in maps:
        given = {"pipes": pipes, "nodes": nodes, "facilities": facilities, "settlements": settlements}
        if layer != "*" and given[layer] is None:
            raise ConfigError(f"the mapping has columns for layer {layer!r}, but no {layer} layer was given")
    frames: dict[str, tuple[gpd.GeoDataFrame, str]] = {}
    for role, src in (("pipes", pipes), ("nodes", nodes), ("facilities", facilities), ("settlements", settlements)):
        if src is not None:
            df, label = _read_layer(src, role)
            if not len(df):
                raise NetworkDataError(f"{label}: has no features")
            frames[role] = (df, label)
    out_crs = _check_crs(frames, crs)
    _flat_mapping_used(maps, frames)
    frames = {role: (_apply_mapping(df, role, label, maps), label) for role, (df, label) in frames.items()}
    notes: list[str] = []
    fixes: list[str] = []

    # --- pipes
    p, plabel = frames["pipes"]
    p = _ids(p, plabel, "P", notes)
    if "diameter_mm" not in p.columns:
        raise NetworkDataError(f"{plabel}: no diameter column; map yours with mapping={{'pipes': {{'diameter': "
                               f"'YOUR_COLUMN'}}}} (mm); columns: {', '.join(map(str, p.columns[:15]))}")
    p["diameter_mm"] = _numeric(p, "diameter_mm", plabel)
    p["material"] = p["material"].astype("string").fillna("unknown").astype(str) if "material" in p.columns \
        else "unknown"
    if "roughness_c" in p.columns:
        p["roughness_c"] = _numeric(p, "roughness_c", plabel)
    else:
        p["roughness_c"] = [DEFAULT_ROUGHNESS_C.get(str(m).upper(), DEFAULT_ROUGHNESS_C["UNKNOWN"])
                            for m in p["material"]]
        notes.append(f"{plabel}: no roughness column; Hazen-Williams C was assumed from the material "
                     f"({', '.join(f'{m} {c:g}' for m, c in sorted(set(zip(p['material'], p['roughness_c']))))[:200]})")
    if "length_m" in p.columns:
        p["length_m"] = _numeric(p, "length_m", plabel)
        p["_given_length"] = p["length_m"].notna() & (p["length_m"] > 0)
    else:
        p["length_m"] = np.nan
        p["_given_length"] = False
    if "status" in p.columns:
        st = p["status"].astype("string").str.upper().fillna("OPEN")
        bad = ~st.isin(["OPEN", "CLOSED", "CV"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise NetworkDataError(f"{plabel}: pipe {p['id'].iloc[i]!r} has status {p['status'].iloc[i]!r}; use "
                                   "OPEN, CLOSED or CV (or map another column to 'status')")
        p["status"] = st.astype(str)
    else:
        p["status"] = "OPEN"
    lines = _lines(p, plabel)

    # --- user nodes
    if "nodes" in frames:
        n, nlabel = frames["nodes"]
        n = _ids(n, nlabel, "N", notes)
        npts = _points(n, nlabel, "node")
        user_xy = np.array([(g.x, g.y) for g in npts], dtype=float)
        for col in ("elevation_m", "base_demand_m3d", "population", "head_m"):
            if col in n.columns:
                n[col] = _numeric(n, col, nlabel)
    else:
        n, nlabel = gpd.GeoDataFrame({"id": pd.Series(dtype=str)}, geometry=[], crs=out_crs), "nodes"
        user_xy = np.zeros((0, 2))
    user_ids = list(n["id"])
    new_id = _NodeIds(set(user_ids) | set(p["id"]))
    frm, to, created, pre_findings = _snap(lines, list(p["id"]), user_xy, user_ids, tol, new_id, "nodes" in frames)
    if created:
        log.info("created %d node(s) where pipe ends meet without a node", len(created))
    pos: dict[str, tuple[float, float]] = {nid: (float(x), float(y)) for nid, (x, y) in zip(user_ids, user_xy)}
    pos.update(created)
    p["from_node"], p["to_node"] = frm, to
    p["geometry"] = [_set_ends(ln, pos[a], pos[b]) for ln, a, b in zip(lines, frm, to)]

    # --- fixes
    p = pd.DataFrame(p)
    if fix:
        short = (p["from_node"] == p["to_node"]) & (shapely.length(p["geometry"].to_numpy()) <= max(tol, 1e-9))
        for pid, nid in zip(p.loc[short, "id"], p.loc[short, "from_node"]):
            fixes.append(f"dropped pipe {pid!r}: both its ends are on node {nid!r} (shorter than {tol:g} m)")
        p = p.loc[~short].reset_index(drop=True)
        splits = _near_miss_splits(p, pos, tol)
        if splits:
            p2, parts = _split_pipes(p, splits, pos)
            for i, cuts in sorted(splits.items(), key=lambda kv: p["id"].iloc[kv[0]]):
                pid = p["id"].iloc[i]
                nodes_on = ", ".join(repr(nid) for _, nid in sorted(cuts))
                fixes.append(f"split pipe {pid!r} at node(s) {nodes_on} lying within {tol:g} m of it (near miss) "
                             f"into {', '.join(map(repr, parts[pid]))}")
            p = p2.reset_index(drop=True)
        if split_crossings:
            splits2: dict[int, list[tuple[float, str]]] = {}
            made = []
            for a, b, pt in _crossing_points(p, tol):
                nid = new_id()
                pos[nid] = created[nid] = (pt.x, pt.y)
                made.append((nid, p["id"].iloc[a], p["id"].iloc[b], pt))
                for k in (a, b):
                    splits2.setdefault(k, []).append((float(p["geometry"].iloc[k].project(pt)), nid))
            if splits2:
                p = _split_pipes(p, splits2, pos)[0].reset_index(drop=True)
                for nid, a, b, pt in made:
                    fixes.append(f"created node {nid!r} where pipes {a!r} and {b!r} cross ({pt.x:.2f}, {pt.y:.2f}) "
                                 "and split both there")
        # exact duplicates: same end nodes, diameter and alignment
        seen: dict[tuple, int] = {}
        drop = []
        for i, (a, b, d, g) in enumerate(zip(p["from_node"], p["to_node"], p["diameter_mm"], p["geometry"])):
            key = (min(a, b), max(a, b), float(d))
            if a == b:
                continue
            if key in seen and shapely.hausdorff_distance(g, p["geometry"].iloc[seen[key]]) <= max(tol, 1e-9):
                drop.append(i)
                fixes.append(f"dropped pipe {p['id'].iloc[i]!r}: duplicate of pipe {p['id'].iloc[seen[key]]!r} "
                             "(same nodes, diameter and alignment)")
            else:
                seen.setdefault(key, i)
        if drop:
            p = p.loc[~p.index.isin(drop)].reset_index(drop=True)
    geom_len = shapely.length(p["geometry"].to_numpy())
    p["length_m"] = np.where(p["_given_length"].to_numpy(dtype=bool), p["length_m"].to_numpy(dtype=float),
                             np.round(geom_len, 3))
    p = p.drop(columns="_given_length")
    zero = (p["length_m"] <= 0) | p["length_m"].isna()
    if zero.any():
        ids = list(p.loc[zero, "id"])
        raise NetworkDataError(f"{plabel}: pipe(s) {', '.join(map(repr, ids[:5]))} have length 0 after snapping "
                               f"their ends within {tol:g} m; remove them, or build with fix=True (--fix) to drop them")
    if "class" not in p.columns:
        p["class"] = np.where(p["diameter_mm"] >= MAIN_DIAMETER_MM, "main", "branch")
    if "zone" not in p.columns:
        p["zone"] = None

    # --- the nodes layer: user nodes plus created ones
    rows = [dict(id=nid, geometry=Point(xy)) for nid, xy in created.items()]
    allnodes = pd.concat([pd.DataFrame(n).drop(columns="geometry").assign(geometry=list(map(Point, user_xy))),
                          pd.DataFrame(rows, columns=["id", "geometry"])], ignore_index=True)
    allnodes = gpd.GeoDataFrame(allnodes, geometry="geometry", crs=out_crs)
    for col, default in (("kind", "junction"), ("base_demand_m3d", 0.0), ("zone", None), ("settlement_id", None),
                         ("pattern", None), ("head_m", np.nan), ("demand_category", None)):
        if col not in allnodes.columns:
            allnodes[col] = default
    allnodes["kind"] = allnodes["kind"].astype(object).where(allnodes["kind"].notna(), "junction")
    allnodes["base_demand_m3d"] = pd.to_numeric(allnodes["base_demand_m3d"], errors="coerce").fillna(0.0)
    crossing_nodes = [nid for nid in created if nid not in set(frm) | set(to)]

    # --- elevations
    if dem is not None:
        if "elevation_m" in allnodes.columns and allnodes["elevation_m"].notna().any():
            log.info("elevations from the DEM %s replace the nodes' elevation attribute", dem)
        allnodes["elevation_m"] = sample_dem(allnodes[["id", "geometry"]], dem).round(3)
    else:
        if "elevation_m" not in allnodes.columns:
            raise NetworkDataError("no elevations: give a DEM (dem= or --dem) or a nodes layer with an elevation "
                                   "column (map yours with mapping={'nodes': {'elevation': 'YOUR_COLUMN'}})")
        if crossing_nodes:
            _interpolate_elevations(allnodes, p, crossing_nodes)
        missing = allnodes["elevation_m"].isna().to_numpy()
        if missing.any():
            ids = allnodes.loc[missing, "id"].tolist()
            made = [i for i in ids if i in created]
            where = f"; {len(made)} of them were created at pipe ends without a node (e.g. {made[0]!r} at " \
                    f"{created[made[0]][0]:.1f}, {created[made[0]][1]:.1f})" if made else ""
            raise NetworkDataError(f"{len(ids)} node(s) have no elevation ({', '.join(map(repr, ids[:5]))}){where}; "
                                   "give a DEM (dem= or --dem), or nodes with elevations at every pipe end")

    # --- facilities
    fac_layer = None
    if "facilities" in frames:
        fac_layer = _facilities(frames["facilities"], allnodes, tol, notes)

    # --- settlements, populations and patterns
    st_layer = None
    if "settlements" in frames:
        st_layer = _settlements(frames["settlements"], allnodes, notes)
    _populate(allnodes, st_layer, notes)
    if st_layer is None:
        from .convert import derive_settlements

        links = pd.DataFrame(p[["from_node", "to_node", "length_m"]])
        st_layer, sid, pop = derive_settlements(allnodes, links)
        if len(st_layer):
            allnodes["settlement_id"] = sid.where(sid.notna(), None)
            if not (pd.to_numeric(allnodes.get("population"), errors="coerce").fillna(0) > 0).any():
                allnodes["population"] = pop
            notes.append(f"no settlements layer: {len(st_layer)} settlements were derived from clusters of demand "
                         "nodes (graph communities), population estimated from demand")
    patterns = _patterns(allnodes, st_layer, notes)

    node_cols = ["id", "kind", "elevation_m", "zone", "settlement_id", "base_demand_m3d", "pattern", "population",
                 "demand_category", "head_m"]
    extra = [c for c in allnodes.columns if c not in node_cols and c != "geometry"]
    allnodes = allnodes[node_cols + extra + ["geometry"]]
    pipe_cols = ["id", "from_node", "to_node", "class", "diameter_mm", "material", "roughness_c", "length_m", "zone",
                 "status"]
    extra = [c for c in p.columns if c not in pipe_cols and c != "geometry"]
    pipes_gdf = gpd.GeoDataFrame(p[pipe_cols + extra + ["geometry"]], geometry="geometry", crs=out_crs)
    name = Path(frames["pipes"][1].split(" (layer")[0]).stem if not isinstance(pipes, gpd.GeoDataFrame) else "network"
    meta = {
        "name": name,
        "source": "; ".join(label for _, label in frames.values()),
        "builder": "watersupply.build.build_network",
        "crs": out_crs.to_string(),
        "tolerance_m": f"{tol:g}",
        "elevations": f"DEM {dem}" if dem is not None else "node attribute",
    }
    net: Network = {"nodes": allnodes, "pipes": pipes_gdf}
    if fac_layer is not None:
        net["facilities"] = fac_layer
    net["settlements"] = st_layer
    net["patterns"] = patterns
    net["metadata"] = pd.DataFrame(sorted(meta.items()), columns=["key", "value"])
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    validate_network(net, source=frames["pipes"][1])
    findings = validate_topology(net, tolerance_m=tol)
    # ends that met no node: still dead ends after the fixes?
    degree = pd.concat([p["from_node"], p["to_node"]]).value_counts()
    dangling = [f for f in pre_findings if degree.get(f["node"], 0) == 1]
    if dangling:
        findings = _sort(pd.concat([pd.DataFrame(dangling, columns=COLUMNS), findings], ignore_index=True))
    log.info("built %s: %d nodes (%d created), %d pipes, %d finding(s), %d fix(es)", name, len(allnodes),
             len(created), len(pipes_gdf), len(findings), len(fixes))
    return net, findings, fixes


def _truncation_hint(df: pd.DataFrame, missing: list[str], role: str) -> str:
    """A hint when a Shapefile cut the wanted column names to 10 characters."""
    cut = {m: c for m in missing for c in map(str, df.columns) if len(m) > 10 and m[:10] == c}
    if not cut:
        return ""
    pairs = ", ".join(f"{m!r}: {c!r}" for m, c in cut.items())
    return f"; Shapefiles cut column names to 10 characters — map them with mapping={{{role!r}: {{{pairs}}}}}"


def _sort(findings: pd.DataFrame) -> pd.DataFrame:
    from .validation import CHECKS

    order = {c: i for i, c in enumerate(CHECKS)}
    f = findings.assign(_o=findings["check"].map(order))
    return f.sort_values(["_o", "element_type", "element_id", "x", "y", "message"], kind="mergesort",
                         na_position="first").drop(columns="_o").reset_index(drop=True)


def _interpolate_elevations(nodes: gpd.GeoDataFrame, pipes: pd.DataFrame, targets: list[str]) -> None:
    """Elevation of nodes created at crossings: linear along the first pipe through them."""
    elev = dict(zip(nodes["id"], pd.to_numeric(nodes["elevation_m"], errors="coerce")))
    for nid in targets:
        if not pd.isna(elev.get(nid)):
            continue
        # walk the chain of pipe parts through nid to the nearest nodes with elevations on each side
        nbrs = pipes.loc[(pipes["from_node"] == nid) | (pipes["to_node"] == nid)]
        vals, dists = [], []
        for row in nbrs.itertuples(index=False):
            other = row.to_node if row.from_node == nid else row.from_node
            if not pd.isna(elev.get(other)):
                vals.append(float(elev[other]))
                dists.append(float(row.geometry.length))
            if len(vals) == 2:
                break
        if len(vals) == 2 and sum(dists) > 0:
            elev[nid] = vals[0] + (vals[1] - vals[0]) * dists[0] / sum(dists)
        elif vals:
            elev[nid] = vals[0]
    nodes["elevation_m"] = nodes["id"].map(elev).astype(float)


def _facilities(frame: tuple[gpd.GeoDataFrame, str], nodes: gpd.GeoDataFrame, tol: float,
                notes: list[str]) -> gpd.GeoDataFrame:
    fac, label = frame
    fac = _ids(fac, label, "F", notes)
    pts = _points(fac, label, "facility")
    if "kind" not in fac.columns:
        raise NetworkDataError(f"{label}: no 'kind' column; give each facility a kind "
                               f"({', '.join(FACILITY_KINDS)}) or map your column to 'kind'")
    kinds = fac["kind"].astype("string").str.lower()
    bad = ~kinds.isin(FACILITY_KINDS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise NetworkDataError(f"{label}: facility {fac['id'].iloc[i]!r} has kind {fac['kind'].iloc[i]!r}; "
                               f"allowed: {', '.join(FACILITY_KINDS)}")
    fac["kind"] = kinds.astype(str)
    for col in ("head_m", "bottom_elev_m", *_RESERVOIR_REQUIRED, "capacity_m3d"):
        if col in fac.columns:
            fac[col] = _numeric(fac, col, label)
    node_ids = nodes["id"].tolist()
    tree = cKDTree(np.array([(g.x, g.y) for g in nodes.geometry]))
    attach = []
    for i, (fid, pt) in enumerate(zip(fac["id"], pts)):
        given = fac["node_id"].iloc[i] if "node_id" in fac.columns else None
        if given is not None and not pd.isna(given):
            if str(given) not in set(node_ids):
                raise NetworkDataError(f"{label}: facility {fid!r} names node {given!r}, which is not in the network; "
                                       f"{closest(str(given), node_ids)}")
            attach.append(str(given))
            continue
        d, j = tree.query((pt.x, pt.y))
        if d > tol:
            raise NetworkDataError(f"{label}: facility {fid!r} is {d:.1f} m from the nearest node {node_ids[j]!r} "
                                   f"(tolerance {tol:g} m); move it onto the pipe end, give its node in a "
                                   "'node_id' column, or raise the tolerance")
        attach.append(node_ids[j])
    fac["node_id"] = attach
    dup = fac["node_id"][fac["node_id"].duplicated()]
    if len(dup):
        raise NetworkDataError(f"{label}: several facilities are on node {dup.iloc[0]!r}; one facility per node")
    idx = {nid: k for k, nid in enumerate(node_ids)}
    elev = nodes["elevation_m"].to_numpy(dtype=float)
    for row_i, (fid, kind, nid) in enumerate(zip(fac["id"], fac["kind"], fac["node_id"])):
        k = idx[nid]
        nodes.loc[nodes.index[k], "kind"] = kind
        if kind == "plant":
            head = fac["head_m"].iloc[row_i] if "head_m" in fac.columns else np.nan
            if pd.isna(head):
                raise NetworkDataError(f"{label}: plant {fid!r} needs 'head_m', the water level of its clear well "
                                       "(m above datum)")
            nodes.loc[nodes.index[k], "head_m"] = float(head)
        elif kind == "reservoir":
            missing = [c for c in _RESERVOIR_REQUIRED if c not in fac.columns or pd.isna(fac[c].iloc[row_i])]
            if missing:
                raise NetworkDataError(f"{label}: reservoir {fid!r} needs {', '.join(missing)} (m)"
                                       f"{_truncation_hint(fac, missing, 'facilities')}")
            if "bottom_elev_m" not in fac.columns:
                fac["bottom_elev_m"] = np.nan
            if pd.isna(fac["bottom_elev_m"].iloc[row_i]):
                fac.loc[fac.index[row_i], "bottom_elev_m"] = elev[k]
                notes.append(f"{label}: reservoir {fid!r} has no bottom_elev_m; the ground elevation {elev[k]:g} m "
                             "of its node was used")
            else:
                nodes.loc[nodes.index[k], "elevation_m"] = float(fac["bottom_elev_m"].iloc[row_i])
        nodes.loc[nodes.index[k], "base_demand_m3d"] = 0.0
    for col in ("name_zh", "name_en", "zone"):
        if col not in fac.columns:
            fac[col] = None
    cols = ["id", "kind", "name_zh", "name_en", "node_id", "zone"]
    rest = [c for c in fac.columns if c not in cols and c != "geometry"]
    return gpd.GeoDataFrame(fac[cols + rest], geometry=list(pts), crs=nodes.crs)


def _settlements(frame: tuple[gpd.GeoDataFrame, str], nodes: gpd.GeoDataFrame, notes: list[str]) -> gpd.GeoDataFrame:
    st, label = frame
    st = _ids(st, label, "S", notes)
    types = set(st.geometry.geom_type.dropna())
    if not types <= {"Polygon", "MultiPolygon"}:
        raise NetworkDataError(f"{label}: settlements must be polygons, got {', '.join(sorted(types))}")
    if "population" not in st.columns:
        raise NetworkDataError(f"{label}: no 'population' column; map yours with "
                               "mapping={'settlements': {'population': 'YOUR_COLUMN'}}")
    st["population"] = _numeric(st, "population", label).fillna(0).round().astype("int64")
    if "kind" not in st.columns:
        st["kind"] = "village"
        notes.append(f"{label}: no 'kind' column; every settlement was taken as a village (rural service head)")
    st["kind"] = st["kind"].astype("string").str.lower().astype(str)
    bad = ~st["kind"].isin(["village", "community"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise NetworkDataError(f"{label}: settlement {st['id'].iloc[i]!r} has kind {st['kind'].iloc[i]!r}; "
                               "use village or community")
    for col, default in (("name_zh", None), ("name_en", None), ("storeys", 2), ("zone", None),
                         ("name_verified", False)):
        if col not in st.columns:
            st[col] = default
    st["storeys"] = pd.to_numeric(st["storeys"], errors="coerce").fillna(2).astype("int64")
    st["name_verified"] = st["name_verified"].fillna(False).astype(bool)
    # nodes inside a settlement belong to it (the first by id where polygons overlap)
    demand = nodes["kind"].eq("junction").to_numpy()
    joined = gpd.sjoin(nodes.loc[demand, ["geometry"]], st[["id", "geometry"]].sort_values("id"),
                       how="left", predicate="within")
    first = joined[~joined.index.duplicated(keep="first")]["id"]
    has_sid = nodes["settlement_id"].notna() if "settlement_id" in nodes.columns else pd.Series(False, nodes.index)
    sid = nodes["settlement_id"].astype(object).copy()
    sid.loc[first.index] = np.where(has_sid.loc[first.index], sid.loc[first.index], first.to_numpy())
    nodes["settlement_id"] = sid.where(sid.notna(), None)
    cols = ["id", "name_zh", "name_en", "kind", "population", "name_verified", "storeys", "zone"]
    rest = [c for c in st.columns if c not in cols and c != "geometry"]
    return gpd.GeoDataFrame(st[cols + rest + ["geometry"]], geometry="geometry", crs=nodes.crs)


def _populate(nodes: gpd.GeoDataFrame, st: gpd.GeoDataFrame | None, notes: list[str]) -> None:
    """Fill demand from population or population from the settlements, where one is missing."""
    junction = nodes["kind"].eq("junction")
    demand = pd.to_numeric(nodes["base_demand_m3d"], errors="coerce").fillna(0.0)
    pop = pd.to_numeric(nodes["population"], errors="coerce") if "population" in nodes.columns \
        else pd.Series(np.nan, index=nodes.index)
    if not (demand > 0).any() and (pop.fillna(0) > 0).any():
        demand = (pop.fillna(0) * PER_CAPITA_ESTIMATE_L_D / 1000.0).where(junction, 0.0)
        notes.append(f"nodes have population but no demand: demand was estimated at {PER_CAPITA_ESTIMATE_L_D:g} "
                     "L/person/day")
    if pop.isna().all() and st is not None and len(st) and (demand > 0).any():
        sid = nodes["settlement_id"]
        pop = pd.Series(0.0, index=nodes.index)
        for row in st.itertuples(index=False):
            members = junction & (sid == row.id) & (demand > 0)
            total = demand[members].sum()
            if total > 0:
                pop[members] = row.population * demand[members] / total
        notes.append("nodes have no population: each settlement's population was shared among its demand nodes "
                     "in proportion to demand")
    nodes["base_demand_m3d"] = demand.where(junction | (demand > 0), 0.0)
    nodes["population"] = pop.fillna(0).round().astype("int64")
    cat = nodes["demand_category"] if "demand_category" in nodes.columns else pd.Series(None, index=nodes.index)
    nodes["demand_category"] = np.where(cat.notna(), cat.astype(object),
                                        np.where(nodes["base_demand_m3d"] > 0, "domestic", "none"))


def _patterns(nodes: gpd.GeoDataFrame, st: gpd.GeoDataFrame | None, notes: list[str]) -> pd.DataFrame:
    """The generator's diurnal patterns; demand nodes without one get urban/rural by settlement kind."""
    pat = nodes["pattern"].astype(object).where(nodes["pattern"].notna(), None)
    unknown = sorted({str(v) for v in pat.dropna()} - set(DIURNAL_PATTERNS))
    if unknown:
        raise NetworkDataError(f"nodes use pattern(s) {', '.join(map(repr, unknown[:5]))}; a built network has the "
                               f"patterns {', '.join(sorted(DIURNAL_PATTERNS))} (leave the pattern empty to get one by "
                               "settlement kind)")
    kind_of = dict(zip(st["id"], st["kind"])) if st is not None and len(st) else {}
    need = (nodes["base_demand_m3d"] > 0) & pat.isna()
    if need.any():
        pat[need] = [PATTERN_OF_KIND.get(kind_of.get(s, "village"), "rural") for s in nodes.loc[need, "settlement_id"]]
        notes.append(f"{int(need.sum())} demand node(s) had no pattern: the diurnal pattern 'urban' (communities) "
                     "or 'rural' (villages and elsewhere) of watersupply.generator was assigned")
    nodes["pattern"] = pat
    return pd.DataFrame([(k, h, v) for k in sorted(DIURNAL_PATTERNS) for h, v in enumerate(DIURNAL_PATTERNS[k])],
                        columns=["pattern", "hour", "multiplier"])


def write_built(net: Network, path: str | os.PathLike, *, findings: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write a built network: the GeoPackage, the INP beside it and, given findings, ``validation.csv``.

    The EPANET model is built first, so a network EPANET cannot represent fails
    before any file is written; each file is written atomically.

    Parameters
    ----------
    net
        Layers from :func:`build_network`.
    path
        The GeoPackage to write (``.gpkg``); the INP gets the same name with ``.inp``.
    findings
        The findings table, written as ``validation.csv`` in the same folder.

    Returns
    -------
    dict
        ``{"gpkg": ..., "inp": ..., "validation": ...}`` (no ``validation`` without findings).
    """
    from .io import write_csv, write_network
    from .model import is_epanet_model, keep_as_is, to_wntr, write_inp

    gpkg = Path(path)
    if gpkg.suffix.lower() != ".gpkg":
        raise ConfigError(f"{gpkg}: the output must be a GeoPackage ending in .gpkg")
    # a network carrying a whole EPANET model (built from WNTR's layers) is written as that model
    wn = to_wntr(keep_as_is(net) if is_epanet_model(net) else net)
    out = {"gpkg": write_network(net, gpkg), "inp": write_inp(wn, gpkg.with_suffix(".inp"))}
    if findings is not None:
        # coordinates as text with mm precision: write_csv's 6 significant digits would round them to ~10 m
        xy = {c: findings[c].map(lambda v: "" if pd.isna(v) else f"{float(v):.3f}") for c in ("x", "y")}
        out["validation"] = write_csv(findings.assign(**xy), gpkg.with_name("validation.csv"), index=False)
    return out
