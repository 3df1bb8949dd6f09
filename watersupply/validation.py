"""Topology and plausibility checks of a network's layers.

:func:`validate_topology` returns one row per finding instead of raising, so a
user sees every problem of a GIS dataset at once (the CLI writes them to
``validation.csv``). :func:`watersupply.schema.validate_network` is the strict
gate for the layout; this module looks at what the layout cannot: geometry,
connectivity and implausible values.

Checks (in output order)
------------------------
crs
    A layer without a CRS, a geographic CRS, or layers in different CRSes (error).
geometry
    A node or pipe without geometry (error).
unknown_node
    A pipe, pump or control valve referring to a node that does not exist (error).
dangling_end
    A pipe end farther than the tolerance from its node (or, without node
    references, from every node): the pipe is not connected there (error).
near_miss
    A pipe end within the tolerance of a node or of another pipe's interior it
    is not connected to: probably meant to connect (warning).
zero_length
    ``length_m`` <= 0 or missing, or a geometry of length 0 (error).
self_loop
    A pipe whose two ends are the same node (error).
duplicate_pipe
    Pipes joining the same two nodes (warning); the message says whether it is
    an exact duplicate (same diameter and alignment within the tolerance: digitised
    twice) or a parallel pipe (often intended).
crossing
    Pipes that cross away from their ends without a node (warning: a main may
    pass over a branch without a connection, but usually a node is missing).
disconnected
    Each connected component other than the largest (warning).
no_source
    A demand node with no path to a plant or reservoir, ignoring closed pipes (error).
diameter
    Missing or <= 0 (error); below 15 mm or above 3000 mm (warning: units?).
roughness
    Missing or <= 0 (error); Hazen-Williams C outside 40–160 (warning).
elevation
    Missing (error); below -500 m or above 9000 m (warning: units?).

Examples
--------
>>> from watersupply.loader import load_network
>>> findings = validate_topology(load_network())
>>> list(findings.columns)
['check', 'severity', 'element_type', 'element_id', 'x', 'y', 'message']
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from ._errors import ConfigError, NetworkDataError

__all__ = ["CHECKS", "COLUMNS", "LIMITS", "validate_topology"]

log = logging.getLogger(__name__)

#: The checks, in the order findings are listed.
CHECKS = ("crs", "geometry", "unknown_node", "dangling_end", "near_miss", "zero_length", "self_loop",
          "duplicate_pipe", "crossing", "disconnected", "no_source", "diameter", "roughness", "elevation")

#: Columns of the findings table.
COLUMNS = ["check", "severity", "element_type", "element_id", "x", "y", "message"]

#: Plausible ranges: outside them a value is reported as a warning.
LIMITS = {
    "diameter_mm": (15.0, 3000.0),
    "roughness_c": (40.0, 160.0),
    "elevation_m": (-500.0, 9000.0),
}

_LINK_LAYERS = ("pumps", "control_valves")


def _f(check: str, severity: str, etype: str, eid: Any, xy: tuple[float, float] | None, message: str) -> dict:
    x, y = (float(xy[0]), float(xy[1])) if xy is not None else (math.nan, math.nan)
    return dict(check=check, severity=severity, element_type=etype, element_id=str(eid), x=x, y=y, message=message)


def _ids(df: pd.DataFrame) -> np.ndarray:
    return df["id"].astype(str).to_numpy() if "id" in df.columns else np.array([str(i) for i in range(len(df))])


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)


def _crs_findings(net: Mapping[str, Any]) -> tuple[list[dict], bool]:
    """CRS findings and whether the geometric checks can run (nodes and pipes share a projected CRS)."""
    out: list[dict] = []
    ref = net["nodes"].crs if isinstance(net["nodes"], gpd.GeoDataFrame) else None
    ok = True
    for name, df in net.items():
        if not isinstance(df, gpd.GeoDataFrame):
            continue
        if df.crs is None:
            out.append(_f("crs", "error", "layer", name, None,
                          f"layer {name!r} has no CRS; assign one with set_crs() (or --crs)"))
            ok = ok and name not in ("nodes", "pipes")
        elif ref is not None and df.crs != ref:
            out.append(_f("crs", "error", "layer", name, None,
                          f"layer {name!r} is in {df.crs.to_string()} but 'nodes' is in {ref.to_string()} "
                          "(mixed CRS); reproject it with to_crs()"))
            ok = ok and name != "pipes"
    if ref is not None and ref.is_geographic:
        out.append(_f("crs", "error", "layer", "nodes", None,
                      f"CRS {ref.to_string()} is geographic (degrees); the tolerance and lengths need metres — "
                      "reproject to a projected CRS with to_crs()"))
        ok = False
    if not ok:
        out[-1]["message"] += "; geometric checks were skipped"
    return out, ok


def _endpoints(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last coordinates of each (non-empty) line."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    _, first = np.unique(idx, return_index=True)
    last = np.append(first[1:], len(idx)) - 1
    return coords[first], coords[last]


def validate_topology(net: Mapping[str, Any], *, tolerance_m: float = 1.0) -> pd.DataFrame:
    """Check a network's topology and values; one row per finding.

    Parameters
    ----------
    net
        Network layers (at least ``nodes`` and ``pipes``); it need not have passed
        :func:`~watersupply.schema.validate_network`.
    tolerance_m
        Distance (m) within which a pipe end counts as at a node, and within which
        unconnected ends, nodes and pipes count as near misses.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: ``check`` (one of :data:`CHECKS`), ``severity``
        (``error`` or ``warning``), ``element_type`` (node, pipe, pump,
        control_valve, layer), ``element_id``, ``x``, ``y`` (where, in the layers'
        CRS; NaN for layers) and ``message``. Sorted by check, element and
        position, so the same network always gives the same table.

    Raises
    ------
    NetworkDataError
        If ``nodes`` or ``pipes`` is missing.
    ConfigError
        If `tolerance_m` is negative.

    Examples
    --------
    >>> from watersupply.loader import load_network
    >>> f = validate_topology(load_network(), tolerance_m=1.0)
    >>> sorted(f["severity"].unique()) in ([], ["warning"], ["error", "warning"], ["error"])
    True
    """
    if not isinstance(net, Mapping):
        raise TypeError(f"'net' should be a mapping of layer name to GeoDataFrame, got {type(net).__name__}")
    for layer in ("nodes", "pipes"):
        if layer not in net:
            raise NetworkDataError(f"layer {layer!r} is missing; topology needs layers 'nodes' and 'pipes'")
    tol = float(tolerance_m)
    if not tol >= 0:
        raise ConfigError(f"tolerance_m must be a distance >= 0 in metres, got {tolerance_m!r}")
    nodes, pipes = net["nodes"], net["pipes"]
    found, geo_ok = _crs_findings(net)

    node_ids = _ids(nodes)
    pipe_ids = _ids(pipes)
    node_set = set(node_ids)
    node_geom = nodes.geometry.to_numpy() if isinstance(nodes, gpd.GeoDataFrame) else np.full(len(nodes), None)
    pipe_geom = pipes.geometry.to_numpy() if isinstance(pipes, gpd.GeoDataFrame) else np.full(len(pipes), None)
    node_ok = ~(shapely.is_missing(node_geom) | shapely.is_empty(node_geom))
    pipe_ok = ~(shapely.is_missing(pipe_geom) | shapely.is_empty(pipe_geom))
    node_xy = {nid: (g.x, g.y) for nid, g, ok in zip(node_ids, node_geom, node_ok) if ok}
    for nid in node_ids[~node_ok]:
        found.append(_f("geometry", "error", "node", nid, None, f"node {nid!r} has no geometry; give it a point"))
    for pid in pipe_ids[~pipe_ok]:
        found.append(_f("geometry", "error", "pipe", pid, None, f"pipe {pid!r} has no geometry; give it a line"))

    def mid(g: Any) -> tuple[float, float] | None:
        if g is None or g.is_empty:
            return None
        p = shapely.line_interpolate_point(g, 0.5, normalized=True)
        return p.x, p.y

    # --- node references of pipes, pumps and valves
    has_ends = {"from_node", "to_node"} <= set(pipes.columns)
    frm = pipes["from_node"].astype(str).to_numpy() if has_ends else np.full(len(pipes), None)
    to = pipes["to_node"].astype(str).to_numpy() if has_ends else np.full(len(pipes), None)
    links: list[tuple[str, str, str, str, str]] = []  # (type, id, a, b, status)
    status = pipes["status"].astype(str).str.upper().to_numpy() if "status" in pipes.columns else \
        np.full(len(pipes), "OPEN")
    if has_ends:
        for pid, a, b, g, st in zip(pipe_ids, frm, to, pipe_geom, status):
            bad = [e for e in (a, b) if e not in node_set]
            for e in bad:
                found.append(_f("unknown_node", "error", "pipe", pid, mid(g),
                                f"pipe {pid!r} refers to node {e!r}, which is not in layer 'nodes'"))
            if not bad:
                links.append(("pipe", pid, a, b, st))
    for layer in _LINK_LAYERS:
        df = net.get(layer)
        if df is None or not len(df) or not {"from_node", "to_node"} <= set(df.columns):
            continue
        etype = layer[:-1]
        st_col = df["status"].astype(str).str.upper() if "status" in df.columns else pd.Series("OPEN", index=df.index)
        for lid, a, b, st in zip(_ids(df), df["from_node"].astype(str), df["to_node"].astype(str), st_col):
            bad = [e for e in (a, b) if e not in node_set]
            what = etype.replace("_", " ")
            for e in bad:
                found.append(_f("unknown_node", "error", etype, lid, node_xy.get(a) or node_xy.get(b),
                                f"{what} {lid!r} refers to node {e!r}, which is not in layer 'nodes'"))
            if not bad:
                links.append((etype, lid, a, b, st))

    # --- geometric checks
    if geo_ok and pipe_ok.any() and node_ok.any():
        linked: dict[str, set[str]] = {}
        for _, _, a, b, _ in links:
            linked.setdefault(a, set()).add(b)
            linked.setdefault(b, set()).add(a)
        found += _geometric(node_ids[node_ok], node_geom[node_ok], pipe_ids[pipe_ok], pipe_geom[pipe_ok],
                            frm[pipe_ok], to[pipe_ok], has_ends, node_xy, tol, linked)

    # --- lengths and self loops
    plen = _num(pipes, "length_m") if "length_m" in pipes.columns else None
    for i, pid in enumerate(pipe_ids):
        g = pipe_geom[i]
        glen = g.length if pipe_ok[i] else math.nan
        if plen is not None and not plen[i] > 0:
            found.append(_f("zero_length", "error", "pipe", pid, mid(g),
                            f"pipe {pid!r} has length_m {plen[i]!r}; give its length in metres (> 0)"))
        elif pipe_ok[i] and glen <= 1e-9 and (plen is None):
            found.append(_f("zero_length", "error", "pipe", pid, mid(g),
                            f"pipe {pid!r} has a geometry of length 0; remove it or redraw it"))
        if has_ends and frm[i] == to[i]:
            found.append(_f("self_loop", "error", "pipe", pid, mid(g),
                            f"pipe {pid!r} starts and ends at node {frm[i]!r}; EPANET rejects such links — "
                            "remove it or connect its other end"))

    # --- duplicates
    if has_ends:
        diam = _num(pipes, "diameter_mm") if "diameter_mm" in pipes.columns else np.full(len(pipes), np.nan)
        groups: dict[tuple[str, str], list[int]] = {}
        for i in range(len(pipes)):
            if frm[i] != to[i]:
                groups.setdefault(tuple(sorted((frm[i], to[i]))), []).append(i)
        for key, members in groups.items():
            if len(members) < 2:
                continue
            members = sorted(members, key=lambda k: pipe_ids[k])
            first = members[0]
            for k in members[1:]:
                same_d = diam[k] == diam[first] or (np.isnan(diam[k]) and np.isnan(diam[first]))
                same_line = pipe_ok[k] and pipe_ok[first] and \
                    shapely.hausdorff_distance(pipe_geom[k], pipe_geom[first]) <= max(tol, 1e-9)
                if same_d and same_line:
                    found.append(_f("duplicate_pipe", "warning", "pipe", pipe_ids[k], mid(pipe_geom[k]),
                                    f"pipe {pipe_ids[k]!r} duplicates pipe {pipe_ids[first]!r} (same nodes "
                                    f"{key[0]!r}-{key[1]!r}, diameter and alignment); drop one (build --fix does)"))
                else:
                    found.append(_f("duplicate_pipe", "warning", "pipe", pipe_ids[k], mid(pipe_geom[k]),
                                    f"pipe {pipe_ids[k]!r} runs parallel to pipe {pipe_ids[first]!r} between nodes "
                                    f"{key[0]!r} and {key[1]!r}; keep it if the parallel main is real"))

    # --- connectivity
    found += _connectivity(nodes, node_ids, node_xy, links)

    # --- values
    found += _values(pipes, pipe_ids, pipe_geom, nodes, node_ids, node_xy, mid)

    out = pd.DataFrame(found, columns=COLUMNS)
    out["x"] = out["x"].astype(float)
    out["y"] = out["y"].astype(float)
    order = {c: i for i, c in enumerate(CHECKS)}
    out["_o"] = out["check"].map(order)
    out = out.sort_values(["_o", "element_type", "element_id", "x", "y", "message"], kind="mergesort",
                          na_position="first").drop(columns="_o").reset_index(drop=True)
    log.debug("validate_topology: %d finding(s)", len(out))
    return out


def _geometric(node_ids: np.ndarray, node_geom: np.ndarray, pipe_ids: np.ndarray, pipe_geom: np.ndarray,
               frm: np.ndarray, to: np.ndarray, has_ends: bool, node_xy: dict, tol: float,
               linked: dict[str, set[str]]) -> list[dict]:
    out: list[dict] = []
    start, end = _endpoints(pipe_geom)
    node_tree = shapely.STRtree(node_geom)
    # orientation: match each pipe's geometry ends to its from/to nodes, either way round
    own = np.full((len(pipe_ids), 2), None, dtype=object)
    if has_ends:
        for i in range(len(pipe_ids)):
            a, b = node_xy.get(frm[i]), node_xy.get(to[i])
            if a is None or b is None:
                continue
            fwd = max(math.dist(start[i], a), math.dist(end[i], b))
            rev = max(math.dist(start[i], b), math.dist(end[i], a))
            own[i] = (frm[i], to[i]) if fwd <= rev else (to[i], frm[i])
    ends = np.vstack([start, end])
    which = np.repeat([0, 1], len(pipe_ids))
    pidx = np.tile(np.arange(len(pipe_ids)), 2)
    pts = shapely.points(ends)
    near_i, dist = node_tree.query_nearest(pts, return_distance=True, all_matches=False)
    nearest = np.empty(len(pts), dtype=object)
    ndist = np.full(len(pts), np.inf)
    nearest[near_i[0]] = node_ids[near_i[1]]
    ndist[near_i[0]] = dist
    label = ("start", "end")
    for k in range(len(pts)):
        i, w = pidx[k], which[k]
        nid = own[i][w] if own[i] is not None else None
        d_own = math.dist(ends[k], node_xy[nid]) if nid is not None else ndist[k]
        if d_own > tol:
            near = f"the nearest node is {nearest[k]!r} at {ndist[k]:.2f} m" if nearest[k] is not None else "no node"
            at = f"its node {nid!r}" if nid is not None else "every node"
            out.append(_f("dangling_end", "error", "pipe", pipe_ids[i], tuple(ends[k]),
                          f"the {label[w]} of pipe {pipe_ids[i]!r} is {d_own:.2f} m from {at} (tolerance {tol:g} m); "
                          f"{near} — snap the end to a node (build_network does)"))
    # near misses with nodes the end is not connected to
    q_in, q_node = node_tree.query(pts, predicate="dwithin", distance=tol) if tol > 0 else \
        node_tree.query(pts, predicate="intersects")
    for k, j in zip(q_in, q_node):
        i, w = pidx[k], which[k]
        other = node_ids[j]
        here = own[i][w] if own[i] is not None else nearest[k]
        if other == here or (own[i] is not None and other in own[i]) or other in linked.get(here, set()):
            continue  # its own node, or a node linked to it (e.g. a pump drawn with coincident nodes)
        d = math.dist(ends[k], node_xy[other])
        out.append(_f("near_miss", "warning", "pipe", pipe_ids[i], tuple(ends[k]),
                      f"the {label[w]} of pipe {pipe_ids[i]!r} is {d:.2f} m from node {other!r}, which it is not "
                      "connected to; snap it or move the node"))
    # near misses with pipe interiors
    pipe_tree = shapely.STRtree(pipe_geom)
    q_in, q_pipe = pipe_tree.query(pts, predicate="dwithin", distance=tol) if tol > 0 else \
        pipe_tree.query(pts, predicate="intersects")
    incident: dict[str, set[int]] = {}
    for i in range(len(pipe_ids)):
        if own[i] is not None:
            for nid in own[i]:
                incident.setdefault(nid, set()).add(i)
    for k, j in zip(q_in, q_pipe):
        i, w = pidx[k], which[k]
        if j == i:
            continue
        nid = own[i][w] if own[i] is not None else None
        if nid is not None and j in incident.get(nid, set()):
            continue
        line = pipe_geom[j]
        at = line.project(shapely.Point(ends[k]))
        if at <= tol or at >= line.length - tol:
            continue  # near the other pipe's end: reported against its node
        d = line.distance(shapely.Point(ends[k]))
        out.append(_f("near_miss", "warning", "pipe", pipe_ids[i], tuple(ends[k]),
                      f"the {label[w]} of pipe {pipe_ids[i]!r} is {d:.2f} m from pipe {pipe_ids[j]!r} without a node "
                      "there; split that pipe at this point (build --fix does) or move the end"))
    # nodes without any link lying on (or within the tolerance of) a pipe
    lone = [k for k, nid in enumerate(node_ids) if nid not in linked]
    if lone:
        q_in, q_pipe = pipe_tree.query(node_geom[lone], predicate="dwithin", distance=max(tol, 1e-9))
        for k, j in zip(q_in, q_pipe):
            nid = node_ids[lone[k]]
            pt = node_geom[lone[k]]
            d = pipe_geom[j].distance(pt)
            out.append(_f("near_miss", "warning", "node", nid, (pt.x, pt.y),
                          f"node {nid!r} lies {d:.2f} m from pipe {pipe_ids[j]!r} but no pipe ends there; split the "
                          "pipe at the node (build --fix does) or move the node"))
    # crossings away from the pipes' ends
    a_idx, b_idx = pipe_tree.query(pipe_geom, predicate="intersects")
    keep = a_idx < b_idx
    a_idx, b_idx = a_idx[keep], b_idx[keep]
    if len(a_idx):
        inter = shapely.intersection(pipe_geom[a_idx], pipe_geom[b_idx])
        for a, b, geom in zip(a_idx, b_idx, inter):
            if own[a] is not None and own[b] is not None and set(own[a]) & set(own[b]):
                continue
            ends_ab = [start[a], end[a], start[b], end[b]]
            parts = shapely.get_parts(geom)
            where = None
            for part in parts:
                if part.geom_type != "Point":
                    where = part.interpolate(0.5, normalized=True)
                    break
                if min(math.dist((part.x, part.y), e) for e in ends_ab) > tol:
                    where = part
                    break
            if where is None:
                continue
            pa, pb = sorted((pipe_ids[a], pipe_ids[b]))
            kind = "overlaps" if where is not None and geom.geom_type not in ("Point", "MultiPoint") else "crosses"
            out.append(_f("crossing", "warning", "pipe", pa, (where.x, where.y),
                          f"pipe {pa!r} {kind} pipe {pb!r} without a node; if they connect, split both there "
                          "(build --fix --split-crossings does), otherwise ignore"))
    return out


def _connectivity(nodes: pd.DataFrame, node_ids: np.ndarray, node_xy: dict,
                  links: list[tuple[str, str, str, str, str]]) -> list[dict]:
    out: list[dict] = []
    g = nx.Graph()
    g.add_nodes_from(node_ids)
    g.add_edges_from((a, b) for _, _, a, b, _ in links if a != b)
    comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c[0]))
    main = len(comps[0]) if comps else 0
    for comp in comps[1:]:
        first = comp[0]
        shown = ", ".join(repr(c) for c in comp[:5]) + (", ..." if len(comp) > 5 else "")
        out.append(_f("disconnected", "warning", "node", first, node_xy.get(first),
                      f"{len(comp)} node(s) ({shown}) are not connected to the main network of {main} nodes; "
                      "connect them or remove them"))
    kind = nodes["kind"].astype(str).to_numpy() if "kind" in nodes.columns else np.full(len(nodes), "junction")
    demand = _num(nodes, "base_demand_m3d") if "base_demand_m3d" in nodes.columns else np.zeros(len(nodes))
    sources = {nid for nid, k in zip(node_ids, kind) if k in ("plant", "reservoir")}
    open_g = nx.Graph()
    open_g.add_nodes_from(node_ids)
    open_g.add_edges_from((a, b) for _, _, a, b, st in links if a != b and st != "CLOSED")
    fed: set[str] = set()
    for comp in nx.connected_components(open_g):
        if comp & sources:
            fed |= comp
    for nid, k, q in zip(node_ids, kind, demand):
        if k == "junction" and q > 0 and nid not in fed:
            out.append(_f("no_source", "error", "node", nid, node_xy.get(nid),
                          f"demand node {nid!r} has no path through open pipes to any plant or reservoir; "
                          "connect it, open the closed pipe, or add a source"))
    return out


def _values(pipes: pd.DataFrame, pipe_ids: np.ndarray, pipe_geom: np.ndarray, nodes: pd.DataFrame,
            node_ids: np.ndarray, node_xy: dict, mid: Any) -> list[dict]:
    out: list[dict] = []
    specs = [("diameter", pipes, pipe_ids, "pipe", "diameter_mm", "mm", "a diameter in mm (> 0)",
              "— is it in metres or inches?"),
             ("roughness", pipes, pipe_ids, "pipe", "roughness_c", "", "a Hazen-Williams C (> 0)",
              "— is it a Darcy-Weisbach roughness or Manning's n?"),
             ("elevation", nodes, node_ids, "node", "elevation_m", "m", "a ground elevation in m",
              "— is it in feet or mm?")]
    for check, df, ids, etype, col, unit, need, hint in specs:
        if col not in df.columns:
            layer = "pipes" if etype == "pipe" else "nodes"
            out.append(_f(check, "error", "layer", layer, None,
                          f"layer {layer!r} has no column {col!r}; add it (or map a column to it)"))
            continue
        vals = _num(df, col)
        lo, hi = LIMITS[col]
        for i, v in enumerate(vals):
            where = mid(pipe_geom[i]) if etype == "pipe" else node_xy.get(ids[i])
            if np.isnan(v) or (check != "elevation" and v <= 0):
                out.append(_f(check, "error", etype, ids[i], where,
                              f"{etype} {ids[i]!r} has {col} {df[col].iloc[i]!r}; give {need}"))
            elif v < lo or v > hi:
                out.append(_f(check, "warning", etype, ids[i], where,
                              f"{etype} {ids[i]!r} has {col} {v:g}{unit}, outside the plausible range "
                              f"{lo:g}–{hi:g}{unit} {hint}"))
    return out
