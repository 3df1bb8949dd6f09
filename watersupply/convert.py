"""Convert any EPANET / WNTR network into the project's layers.

:func:`read_inp` reads an EPANET INP file (any flow units; WNTR converts to SI)
and :func:`network_from_wntr` turns a ``WaterNetworkModel`` into a
:data:`~watersupply.schema.Network`: nodes, pipes, pumps, control valves,
facilities, settlements, patterns and metadata. :func:`watersupply.loader.load_network`
is what the CLI calls for ``--network`` / ``--inp`` / ``--crs``.

Nothing EPANET 2.2 expresses is dropped: the layers carry the model itself
(curves, controls, rules, extra demand categories, sources, every option, pump
curves or power, speeds, valve settings, roughness in the file's own headloss
formula, emitters, tank volume curves and mixing; see :mod:`watersupply.schema`),
so INP -> network -> INP gives EPANET the same model (:func:`equivalence` checks it).
What EPANET 2.3 adds and 2.2 cannot express (:data:`EPANET23_FEATURES`) is refused
with an error naming it, and a file EPANET 2.2 rejects gets EPANET's own error
codes and messages with the section and line. Two things are derived, each with a
:class:`UserWarning`:

* settlements are derived from the demand nodes (graph communities) with the
  population estimated at :data:`PER_CAPITA_L_D`;
* constant-power pumps get a design point (for summaries; the model keeps the power).

Coordinates: with a ``crs`` the INP coordinates are taken as given (projected
to UTM if the CRS is geographic). Without one they are a schematic drawing:
they are scaled to metres (so drawn lengths match pipe lengths) and placed in
:data:`SCHEMATIC_CRS`, a local engineering CRS that is not georeferenced. An
INP without coordinates is laid out with networkx.

Examples
--------
>>> import wntr
>>> from watersupply.convert import read_inp
>>> net = read_inp(wntr.library.__path__[0] + "/networks/Net1.inp")  # doctest: +SKIP
>>> sorted(net)  # doctest: +SKIP
['facilities', 'metadata', 'nodes', 'patterns', 'pipes', 'pumps', 'settlements']
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import shapely
import wntr
from shapely.geometry import LineString, Point

from ._errors import NetworkDataError
from .epanet_tables import model_tables
from .equivalence import equivalence
from .standards import MAIN_DIAMETER_MM as STANDARD_MAIN_DIAMETER_MM
from .standards import PER_CAPITA_ESTIMATE_L_D
from .schema import Network, validate_network

__all__ = [
    "SCHEMATIC_CRS",
    "PER_CAPITA_L_D",
    "MAIN_DIAMETER_MM",
    "network_from_wntr",
    "read_inp",
    "derive_settlements",
    "hazen_williams_equivalent",
    "epanet23_features",
    "EPANET23_FEATURES",
    "equivalence",
    "compare_networks",
]

log = logging.getLogger(__name__)

#: Local engineering CRS (metres, not georeferenced) for schematic INP drawings.
SCHEMATIC_CRS = pyproj.CRS.from_wkt(
    'ENGCRS["watersupply local schematic (m)",'
    'EDATUM["schematic drawing, not georeferenced"],'
    'CS[Cartesian,2],'
    'AXIS["easting",east,ORDER[1],LENGTHUNIT["metre",1]],'
    'AXIS["northing",north,ORDER[2],LENGTHUNIT["metre",1]]]'
)

#: Assumed average-day domestic use per person (L/person/day) used to estimate
#: the population of derived settlements from nodal demand
#: (:data:`watersupply.standards.PER_CAPITA_ESTIMATE_L_D`, with its source).
PER_CAPITA_L_D = PER_CAPITA_ESTIMATE_L_D

#: Settlements estimated at this many people or more are ``community``; fewer, ``village``.
COMMUNITY_MIN_POPULATION = 2000

#: Pipes of at least this diameter are of class ``main``; smaller ones ``branch``
#: (:data:`watersupply.standards.MAIN_DIAMETER_MM`).
MAIN_DIAMETER_MM = STANDARD_MAIN_DIAMETER_MM

SECONDS_PER_DAY = 86_400.0
#: Horizon (h) the analyses give a single-period (steady-state) model; the model itself keeps duration 0.
SINGLE_PERIOD_HORIZON_H = 24.0
GAMMA_WATER = 9810.0          # specific weight of water, N/m³
KINEMATIC_VISCOSITY = 1.0e-6  # m²/s, water at 20 °C
_REFERENCE_VELOCITY = 1.0     # m/s, for converting roughness between formulas


# ----------------------------------------------------------------------------- helpers


def _crs(crs: Any) -> pyproj.CRS | None:
    if crs is None:
        return None
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise NetworkDataError(f"CRS {crs!r} is not a valid CRS ({exc}); give e.g. 'EPSG:4545'") from None


def hazen_williams_equivalent(roughness: np.ndarray, diameter_m: np.ndarray, *, formula: str) -> np.ndarray:
    """Hazen-Williams C giving the same unit headloss as another formula at 1 m/s.

    Parameters
    ----------
    roughness
        Darcy-Weisbach absolute roughness in metres (``formula="D-W"``) or
        Manning's n (``formula="C-M"``), as WNTR stores them.
    diameter_m
        Pipe diameters (m).
    formula
        ``"D-W"`` or ``"C-M"``.

    Returns
    -------
    numpy.ndarray
        The equivalent C (approximate: the formulas scale differently with velocity).

    Examples
    --------
    >>> round(float(hazen_williams_equivalent([0.0001], [0.3], formula="D-W")[0]))
    140
    """
    eps = np.asarray(roughness, dtype=float)
    d = np.asarray(diameter_m, dtype=float)
    v = _REFERENCE_VELOCITY
    if formula == "D-W":
        re = v * d / KINEMATIC_VISCOSITY
        f = 0.25 / np.log10(eps / (3.7 * d) + 5.74 / re**0.9) ** 2  # Swamee-Jain
        slope = f * v * v / (2 * 9.81 * d)
    elif formula == "C-M":
        slope = eps**2 * v * v / (d / 4.0) ** (4.0 / 3.0)
    else:
        raise ValueError(f"formula must be 'D-W' or 'C-M', got {formula!r}")
    q = v * math.pi * d * d / 4.0
    return (10.67 * q**1.852 / (slope * d**4.8704)) ** (1 / 1.852)


#: WNTR's names of the tank mixing models -> EPANET's.
_MIXING = {"MIXED": "MIXED", "MIX1": "MIXED", "TWO_COMP": "2COMP", "TWOCOMP": "2COMP", "MIX2": "2COMP",
           "2COMP": "2COMP", "FIFO": "FIFO", "LIFO": "LIFO"}


def _pipe_class(diameter_mm: float) -> str:
    return "main" if diameter_mm >= MAIN_DIAMETER_MM else "branch"


def _has_coordinates(wn: wntr.network.WaterNetworkModel) -> dict[str, bool]:
    """Which nodes have coordinates: from the INP's [COORDINATES] section when known."""
    inp = getattr(wn, "_inpfile", None)
    sections = getattr(inp, "sections", None) if inp is not None else None
    if sections is not None and "[COORDINATES]" in sections:
        listed = set()
        for _, line in sections["[COORDINATES]"]:
            parts = line.split(";")[0].split()
            if parts:
                listed.add(parts[0])
        return {name: name in listed for name in wn.node_name_list}
    xy = {name: tuple(map(float, node.coordinates)) if node.coordinates is not None else None
          for name, node in wn.nodes()}
    at_origin = sum(1 for v in xy.values() if v == (0.0, 0.0))
    return {name: v is not None and not (v == (0.0, 0.0) and at_origin > 1) for name, v in xy.items()}


def _graph(wn: wntr.network.WaterNetworkModel) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(wn.node_name_list)
    for name, link in wn.links():
        length = float(getattr(link, "length", 0.0) or 0.0)
        a, b = link.start_node_name, link.end_node_name
        if a == b:
            continue
        w = length if length > 0 else 10.0
        if g.has_edge(a, b):
            w = min(w, g[a][b]["length"])
        g.add_edge(a, b, length=w)
    return g


def _stress_layout(g: nx.Graph) -> dict[str, tuple[float, float]]:
    """Positions (m) whose distances follow the pipe-length distances of the graph.

    Pivot MDS (up to 50 pivots) on shortest-path lengths, refined by stress
    majorization (SMACOF) for networks of up to :data:`_SMACOF_MAX_NODES` nodes.
    Deterministic; a few seconds for thousands of nodes.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    names = list(g.nodes)
    n = len(names)
    if n == 1:
        return {names[0]: (0.0, 0.0)}
    idx = {v: i for i, v in enumerate(names)}
    rows, cols, w = [], [], []
    for a, b, d in g.edges(data=True):
        rows += [idx[a], idx[b]]
        cols += [idx[b], idx[a]]
        w += [float(d["length"])] * 2
    adj = csr_matrix((w, (rows, cols)), shape=(n, n))
    full = shortest_path(adj, method="D", directed=False) if n <= _SMACOF_MAX_NODES else None
    pivots = [0]
    dist_rows = []
    nearest = None
    for _ in range(min(50, n)):
        d = full[pivots[-1]] if full is not None else shortest_path(adj, method="D", directed=False,
                                                                    indices=[pivots[-1]])[0]
        dist_rows.append(d)
        nearest = d if nearest is None else np.minimum(nearest, d)
        nxt = int(np.argmax(np.where(np.isfinite(nearest), nearest, -1.0)))
        if nxt in pivots:
            break
        pivots.append(nxt)
    c = np.array(dist_rows).T
    finite = np.isfinite(c)
    big = float(c[finite].max()) * 1.2 if finite.any() and c[finite].max() > 0 else 1.0
    c = np.where(finite, c, big) ** 2
    c = -0.5 * (c - c.mean(axis=0) - c.mean(axis=1, keepdims=True) + c.mean())
    u, s, _ = np.linalg.svd(c, full_matrices=False)
    x = u[:, :2] * np.sqrt(s[:2])
    if x.shape[1] < 2:
        x = np.column_stack([x, np.zeros(n)])
    x += np.random.default_rng(0).normal(scale=1e-6 * big, size=x.shape)  # separate coincident nodes
    if full is not None:
        dd = np.where(np.isfinite(full), full, big)
        for _ in range(100):  # Guttman transform
            diff = x[:, None, :] - x[None, :, :]
            cur = np.sqrt((diff**2).sum(axis=2))
            np.fill_diagonal(cur, 1.0)
            b = -dd / cur
            np.fill_diagonal(b, 0.0)
            np.fill_diagonal(b, -b.sum(axis=1))
            x = b @ x / n
    x = x - x.mean(axis=0)
    sign = np.sign(x[np.argmax(np.abs(x), axis=0), [0, 1]])
    x = x * np.where(sign == 0, 1.0, sign)
    return {v: (float(x[i, 0]), float(x[i, 1])) for i, v in enumerate(names)}


_SMACOF_MAX_NODES = 400


def _layout(g: nx.Graph, known: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Positions in metres for nodes without coordinates (all of them, or the missing few)."""
    missing = [n for n in g.nodes if n not in known]
    if not known:
        pos = _stress_layout(g)
        drawn = [math.dist(pos[a], pos[b]) for a, b in g.edges]
        lengths = [d["length"] for _, _, d in g.edges(data=True)]
        ratios = [L / c for L, c in zip(lengths, drawn) if c > 1e-9]
        scale = float(np.median(ratios)) if ratios else 1.0
        return {n: (round(x * scale, 3), round(y * scale, 3)) for n, (x, y) in pos.items()}
    # a few nodes lack coordinates: place each at the mean of its placed neighbours
    pos = dict(known)
    todo = list(missing)
    for _ in range(len(todo) + 1):
        if not todo:
            break
        left = []
        for n in todo:
            nb = [pos[m] for m in sorted(g.neighbors(n)) if m in pos]
            if nb:
                pos[n] = (float(np.mean([p[0] for p in nb])) + 1.0, float(np.mean([p[1] for p in nb])) + 1.0)
            else:
                left.append(n)
        if len(left) == len(todo):
            break
        todo = left
    if todo:  # isolated from every placed node: a row below the drawing
        xs = [p[0] for p in known.values()]
        ys = [p[1] for p in known.values()]
        for i, n in enumerate(sorted(todo)):
            pos[n] = (min(xs) + 10.0 * i, min(ys) - 10.0)
    return pos


def _coordinates(wn: wntr.network.WaterNetworkModel, crs: pyproj.CRS | None,
                 notes: list[str]) -> tuple[dict[str, tuple[float, float]], dict[str, list], pyproj.CRS, str]:
    """Node positions, link vertices, the CRS and how the coordinates were obtained."""
    has = _has_coordinates(wn)
    known = {n: (float(wn.get_node(n).coordinates[0]), float(wn.get_node(n).coordinates[1]))
             for n, ok in has.items() if ok}
    vertices = {name: [tuple(map(float, v)) for v in (link.vertices or [])] for name, link in wn.links()}
    g = _graph(wn)
    if not known:
        pos = _layout(g, {})
        notes.append("the network has no coordinates; nodes were laid out by stress majorization of pipe-length "
                     "distances (drawn lengths ~ pipe lengths) in a local schematic CRS (not georeferenced)")
        return pos, {k: [] for k in vertices}, SCHEMATIC_CRS, "layout"
    pos = dict(known)
    if len(known) < len(has):
        missing = sorted(n for n, ok in has.items() if not ok)
        pos = _layout(g, known)
        notes.append(f"{len(missing)} node(s) have no coordinates ({', '.join(missing[:5])}"
                     f"{', ...' if len(missing) > 5 else ''}); they were placed beside their neighbours")
    if crs is not None:
        if crs.is_geographic:
            pts = gpd.GeoSeries([Point(p) for p in pos.values()], crs=crs)
            utm = pts.estimate_utm_crs()
            tr = pyproj.Transformer.from_crs(crs, utm, always_xy=True)
            pos = {n: tuple(map(float, tr.transform(*p))) for n, p in pos.items()}
            vertices = {k: [tuple(map(float, tr.transform(*v))) for v in vs] for k, vs in vertices.items()}
            notes.append(f"coordinates in geographic CRS {crs.to_string()} were projected to "
                         f"{utm.to_string()} (lengths need metres)")
            return pos, vertices, utm, "inp"
        return pos, vertices, crs, "inp"
    # schematic drawing: scale to metres unless the drawing already looks metric
    ratios = []
    for _, link in wn.pipes():
        a, b = pos[link.start_node_name], pos[link.end_node_name]
        pts = [a, *vertices[link.name], b]
        drawn = sum(math.dist(p, q) for p, q in zip(pts[:-1], pts[1:]))
        if drawn > 0 and link.length > 0:
            ratios.append(link.length / drawn)
    scale = float(np.median(ratios)) if ratios else 1.0
    if 0.5 <= scale <= 2.0:
        scale = 1.0
    if scale != 1.0:
        pos = {n: (x * scale, y * scale) for n, (x, y) in pos.items()}
        vertices = {k: [(x * scale, y * scale) for x, y in vs] for k, vs in vertices.items()}
    scaled = f" after scaling by {scale:.6g} so drawn lengths match pipe lengths" if scale != 1.0 else ""
    notes.append("drawn schematically: the INP coordinates have no CRS, so they were placed in a local engineering "
                 f"CRS (metres, not georeferenced){scaled}; give crs= (or --crs) if they are real map coordinates")
    return pos, vertices, SCHEMATIC_CRS, "schematic"


def _design_point(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    pts = sorted((float(q), float(h)) for q, h in points)
    if not pts:
        return None
    mid = len(pts) // 2
    order = sorted(range(len(pts)), key=lambda i: (abs(i - mid), i))
    for i in order:
        q, h = pts[i]
        if q > 0 and h > 0:
            return q, h
    return None


def _power_pump_flows(wn: wntr.network.WaterNetworkModel) -> dict[str, float]:
    """Flow (m³/s) of each constant-power pump in a snapshot with every pump running.

    `wn` is changed for the snapshot (no controls, pumps open, no quality, duration 0)
    and restored afterwards; copying a large model would take longer than the run.
    """
    from wntr.network.base import LinkStatus

    controls = [(name, wn.get_control(name)) for name in list(wn.control_name_list)]
    statuses = {name: pump.initial_status for name, pump in wn.pumps()}
    duration, quality = wn.options.time.duration, wn.options.quality.parameter
    try:
        for name, _ in controls:
            wn.remove_control(name)
        for _, pump in wn.pumps():
            pump.initial_status = LinkStatus.Open
        wn.options.time.duration = 0
        wn.options.quality.parameter = "NONE"
        with tempfile.TemporaryDirectory(prefix="watersupply-power-") as tmp:
            res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=os.path.join(tmp, "snapshot"))
        flows = res.link["flowrate"].iloc[0]
    except Exception as exc:  # EPANET may not solve a foreign model; the caller falls back to 1 m/s
        log.info("snapshot simulation for constant-power pumps failed: %s", exc)
        return {}
    finally:
        wn.options.time.duration, wn.options.quality.parameter = duration, quality
        for name, status in statuses.items():
            wn.get_link(name).initial_status = status
        for name, ctl in controls:
            wn.add_control(name, ctl)
    return {name: float(flows.get(name, 0.0)) for name in statuses}


def _velocity_flow(wn: wntr.network.WaterNetworkModel, pump: Any) -> float:
    """Flow (m³/s) at 1 m/s in the largest pipe at the pump's discharge or suction."""
    diam = [link.diameter for n in (pump.end_node_name, pump.start_node_name)
            for link in (wn.get_link(ln) for ln in wn.get_links_for_node(n)) if link.link_type == "Pipe"]
    d = max(diam) if diam else 0.1
    return _REFERENCE_VELOCITY * math.pi * d * d / 4.0


def _patterns(wn: wntr.network.WaterNetworkModel, notes: list[str]) -> tuple[pd.DataFrame, float]:
    """The patterns table (hourly when the pattern step is whole hours) and its step in seconds."""
    step = float(wn.options.time.pattern_timestep)
    rep = int(step // 3600) if step >= 3600 and step % 3600 == 0 else 1
    out_step = 3600.0 if rep >= 1 and step % 3600 == 0 else step
    rows = []
    for name, pat in wn.patterns():
        mult = [float(m) for m in pat.multipliers]
        if rep > 1:
            mult = [m for m in mult for _ in range(rep)]
        rows.extend((str(name), h, m) for h, m in enumerate(mult))
    if rep > 1:
        notes.append(f"patterns with a {step / 3600:g} h step were expanded to hourly values (same demands)")
    df = pd.DataFrame(rows, columns=["pattern", "hour", "multiplier"])
    df["hour"] = df["hour"].astype("int64")
    df = df.sort_values(["pattern", "hour"], kind="stable").reset_index(drop=True)
    return df, out_step


def derive_settlements(nodes: gpd.GeoDataFrame, pipes: pd.DataFrame, *, per_capita_l_d: float = PER_CAPITA_L_D,
                       mean_demand_m3d: pd.Series | None = None) -> tuple[gpd.GeoDataFrame, pd.Series, pd.Series]:
    """Derive settlements from the demand nodes of a network that has none.

    Demand nodes are grouped by Louvain communities (``seed=0``) of the pipe
    graph; each group is a settlement whose polygon is the convex hull of its
    nodes buffered by half the median length of their pipes (20–200 m). The
    population is the demand divided by `per_capita_l_d`.

    Parameters
    ----------
    nodes
        The nodes layer (id, base_demand_m3d, geometry).
    pipes
        A table of links with from_node and to_node (pipes, pumps and valves).
    per_capita_l_d
        Assumed use per person, L/person/day.
    mean_demand_m3d
        Each node's average demand (base demand times the mean of its pattern), indexed
        like `nodes`, for the population; default ``base_demand_m3d``.

    Returns
    -------
    tuple
        The settlements layer, each node's settlement id (None outside any) and
        each node's estimated population, both indexed like `nodes`.
    """
    ids = nodes["id"].astype(str).tolist()
    demand = pd.to_numeric(nodes["base_demand_m3d"], errors="coerce").fillna(0.0).to_numpy()
    mean = demand if mean_demand_m3d is None else \
        pd.to_numeric(mean_demand_m3d, errors="coerce").reindex(nodes.index).fillna(0.0).to_numpy()
    pop_node = np.where((demand > 0) & (mean > 0), np.round(mean * 1000.0 / per_capita_l_d), 0).astype("int64")
    g = nx.Graph()
    g.add_nodes_from(ids)
    g.add_edges_from((str(a), str(b)) for a, b in zip(pipes["from_node"], pipes["to_node"]) if str(a) != str(b))
    communities = nx.community.louvain_communities(g, seed=0) if g.number_of_edges() else [{n} for n in ids]
    is_demand = dict(zip(ids, demand > 0))
    groups = sorted((sorted(n for n in c if is_demand.get(n)) for c in communities), key=lambda m: (m[0] if m else ""))
    groups = [m for m in groups if m]
    xy = dict(zip(ids, nodes.geometry))
    length = pd.to_numeric(pipes.get("length_m", pd.Series(dtype=float)), errors="coerce")
    incident: dict[str, list[float]] = {}
    if len(length):
        for a, b, L in zip(pipes["from_node"], pipes["to_node"], length):
            if pd.notna(L):
                incident.setdefault(str(a), []).append(float(L))
                incident.setdefault(str(b), []).append(float(L))
    width = max(2, len(str(len(groups))))
    rows, sid = [], {}
    pop_of = dict(zip(ids, pop_node))
    for i, members in enumerate(groups, start=1):
        s = f"S{i:0{width}d}"
        lens = [L for m in members for L in incident.get(m, [])]
        buf = float(np.clip(0.5 * np.median(lens), 20.0, 200.0)) if lens else 50.0
        hull = shapely.MultiPoint([xy[m] for m in members]).convex_hull.buffer(buf)
        pop = int(sum(pop_of[m] for m in members))
        rows.append(dict(id=s, name_zh=f"居民点{s}(推定)", name_en=f"Settlement {s} (derived)",
                         kind="community" if pop >= COMMUNITY_MIN_POPULATION else "village",
                         population=pop, name_verified=False, storeys=2, zone=None, geometry=hull))
        for m in members:
            sid[m] = s
    st = gpd.GeoDataFrame(rows, columns=["id", "name_zh", "name_en", "kind", "population", "name_verified",
                                         "storeys", "zone", "geometry"], geometry="geometry", crs=nodes.crs)
    if len(st):
        st["population"] = st["population"].astype("int64")
        st["storeys"] = st["storeys"].astype("int64")
        st["name_verified"] = st["name_verified"].astype(bool)
    settlement = pd.Series([sid.get(n) for n in ids], index=nodes.index, dtype=object)
    return st, settlement, pd.Series(pop_node, index=nodes.index, dtype="int64")


# ----------------------------------------------------------------------------- public


def network_from_wntr(wn: wntr.network.WaterNetworkModel, *, crs: Any = None, name: str | None = None,
                      source: str | None = None) -> Network:
    """Convert a WNTR ``WaterNetworkModel`` into the project's layers.

    Parameters
    ----------
    wn
        Any WNTR model, e.g. read from an EPANET INP file (WNTR holds it in SI units).
        It is not modified.
    crs
        CRS of the model's coordinates (anything pyproj accepts, e.g. ``"EPSG:4545"``).
        Without it the coordinates are treated as a schematic drawing and placed
        in :data:`SCHEMATIC_CRS`; a geographic CRS is projected to its UTM zone.
    name
        Network name for the metadata (default: the model's name).
    source
        Where the model came from, for the metadata (default: ``"WaterNetworkModel"``).

    Returns
    -------
    Network
        Validated layers: nodes, pipes, facilities, settlements, patterns,
        metadata, and pumps / control_valves when the model has them.

    Warns
    -----
    UserWarning
        For every approximation (see the module docstring).

    Raises
    ------
    NetworkDataError
        If the model has no source (reservoir or tank), a pump has no usable
        head curve, or `crs` is invalid.

    Examples
    --------
    >>> import wntr
    >>> wn = wntr.network.WaterNetworkModel(wntr.library.__path__[0] + "/networks/Net1.inp")
    >>> net = network_from_wntr(wn, crs="EPSG:4545")  # doctest: +SKIP
    """
    if not isinstance(wn, wntr.network.WaterNetworkModel):
        raise TypeError(f"'wn' should be a wntr WaterNetworkModel, got {type(wn).__name__}")
    notes: list[str] = []
    user_crs = _crs(crs)
    pos, vertices, out_crs, how = _coordinates(wn, user_crs, notes)
    label = name or (Path(wn.name).stem if wn.name else None) or "network"

    # --- nodes and facilities
    pump_suction = {p.start_node_name for _, p in wn.pumps()}
    node_rows, fac_rows = [], []
    total_demand: dict[str, float] = {}
    for nid, node in wn.nodes():
        xy = Point(pos[nid])
        base = dict(id=str(nid), zone=None, settlement_id=None, base_demand_m3d=0.0, pattern=None, population=0,
                    demand_category="none", head_m=np.nan, geometry=xy,
                    initial_quality=float(node.initial_quality or 0.0))
        if node.node_type == "Junction":
            dl = list(node.demand_timeseries_list)
            q = float(dl[0].base_value) * SECONDS_PER_DAY if dl else 0.0
            total_demand[str(nid)] = sum(float(d.base_value) for d in dl) * SECONDS_PER_DAY
            pat = dl[0].pattern_name if dl else None
            kind = "pump_station" if nid in pump_suction and q == 0 and len(dl) <= 1 else "junction"
            emitter = getattr(node, "emitter_coefficient", None)
            node_rows.append({**base, "kind": kind, "elevation_m": float(node.elevation),
                              "base_demand_m3d": q, "pattern": str(pat) if pat is not None else None,
                              "demand_category": "domestic" if total_demand[str(nid)] > 0 else "none",
                              "demand_name": dl[0].category if dl else None,
                              "emitter_coeff": float(emitter) if emitter else np.nan})
        elif node.node_type == "Reservoir":
            head = float(node.base_head)
            node_rows.append({**base, "kind": "plant", "elevation_m": head, "head_m": head,
                              "head_pattern": node.head_pattern_name})
            fac_rows.append(dict(id=str(nid), kind="plant", name_zh=None, name_en=f"Source {nid}", node_id=str(nid),
                                 zone=None, head_m=head, geometry=xy))
        else:  # Tank
            node_rows.append({**base, "kind": "reservoir", "elevation_m": float(node.elevation)})
            d = float(node.diameter)
            mix = node.mixing_model
            fac_rows.append(dict(id=str(nid), kind="reservoir", name_zh=None, name_en=f"Tank {nid}",
                                 node_id=str(nid), zone=None, bottom_elev_m=float(node.elevation), diameter_m=d,
                                 min_level_m=float(node.min_level), max_level_m=float(node.max_level),
                                 init_level_m=float(node.init_level),
                                 volume_m3=round(math.pi * d * d / 4.0 * float(node.max_level), 1),
                                 min_vol_m3=float(node.min_vol or 0.0), vol_curve=node.vol_curve_name,
                                 overflow=bool(node.overflow),
                                 mixing_model=_MIXING.get(str(getattr(mix, "name", mix)).upper(), str(mix))
                                 if mix is not None else None,
                                 mixing_fraction=float(node.mixing_fraction) if node.mixing_fraction is not None
                                 else np.nan,
                                 bulk_coeff_d=float(node.bulk_coeff) * SECONDS_PER_DAY if node.bulk_coeff is not None
                                 else np.nan, geometry=xy))
    nodes = gpd.GeoDataFrame(node_rows, columns=["id", "kind", "elevation_m", "zone", "settlement_id",
                                                 "base_demand_m3d", "pattern", "population", "demand_category",
                                                 "head_m", "demand_name", "emitter_coeff", "head_pattern",
                                                 "initial_quality", "geometry"], geometry="geometry", crs=out_crs)

    # --- pipes: roughness as given, in the model's headloss formula (H-W C, D-W mm, C-M n)
    headloss = str(wn.options.hydraulic.headloss).upper()
    pipe_rows = []
    for pid, pipe in wn.pipes():
        a, b = pipe.start_node_name, pipe.end_node_name
        geom = LineString([pos[a], *vertices.get(pid, []), pos[b]])
        status = "CV" if pipe.check_valve else ("CLOSED" if pipe.initial_status == wntr.network.base.LinkStatus.Closed
                                                 else "OPEN")
        dmm = float(pipe.diameter) * 1000.0
        rough = float(pipe.roughness) * (1000.0 if headloss == "D-W" else 1.0)
        pipe_rows.append({"id": str(pid), "from_node": str(a), "to_node": str(b), "class": _pipe_class(dmm),
                          "diameter_mm": dmm, "material": "unknown", "roughness_c": rough,
                          "length_m": float(pipe.length), "zone": None, "status": status,
                          "minor_loss": float(pipe.minor_loss),
                          "bulk_coeff_d": float(pipe.bulk_coeff) * SECONDS_PER_DAY if pipe.bulk_coeff is not None
                          else np.nan,
                          "wall_coeff_m_d": float(pipe.wall_coeff) * SECONDS_PER_DAY if pipe.wall_coeff is not None
                          else np.nan, "geometry": geom})
    pipes = gpd.GeoDataFrame(pipe_rows, columns=["id", "from_node", "to_node", "class", "diameter_mm", "material",
                                                 "roughness_c", "length_m", "zone", "status", "minor_loss",
                                                 "bulk_coeff_d", "wall_coeff_m_d", "geometry"],
                             geometry="geometry", crs=out_crs)

    # --- pumps and pump stations (design point for the analyses; the model keeps curve or power)
    pump_rows, derived = [], []
    power_flows: dict[str, float] | None = None
    global_eff = float(wn.options.energy.global_efficiency or 75.0) / 100.0
    for pid, pump in wn.pumps():
        a, b = pump.start_node_name, pump.end_node_name
        speed = float(pump.speed_timeseries.base_value if pump.speed_timeseries.base_value is not None else 1.0)
        curve_name, power_kw = None, np.nan
        if pump.pump_type == "HEAD":
            curve = pump.get_pump_curve()
            curve_name = str(curve.name)
            point = _design_point(curve.points)
            if point is None:
                raise NetworkDataError(f"pump {pid!r}: head curve {curve.name!r} has no point with flow and head "
                                       f"> 0 ({curve.points}); give the pump a head curve with a design point")
            q, h = point
        else:  # POWER
            if power_flows is None:
                power_flows = _power_pump_flows(wn)
            power = float(pump.power)
            power_kw = power / 1000.0
            q = abs(power_flows.get(pid, 0.0))
            method = "its flow in a snapshot simulation with all pumps running"
            if not q > 1e-6:
                q = _velocity_flow(wn, pump)
                method = "1 m/s in its largest adjacent pipe"
            h = power / (GAMMA_WATER * q)
            derived.append(f"{pid} ({power / 1000:g} kW -> {q * 1000:.1f} L/s at {h:.1f} m, flow from {method})")
        ds = speed if speed > 0 else 1.0
        q, h = q * ds, h * ds * ds
        eff = global_eff
        ecurve = pump.efficiency_curve
        if ecurve is not None and len(ecurve.points):
            xs, ys = zip(*sorted(ecurve.points))
            eff = float(np.interp(q, xs, ys)) / 100.0
        status = "CLOSED" if pump.initial_status == wntr.network.base.LinkStatus.Closed else "OPEN"
        geom = Point((pos[a][0] + pos[b][0]) / 2.0, (pos[a][1] + pos[b][1]) / 2.0)
        pump_rows.append(dict(id=str(pid), station_id=None, from_node=str(a), to_node=str(b), role="duty",
                              design_flow_ls=round(q * 1000.0, 6), design_head_m=round(h, 6), efficiency=eff,
                              status=status, control_node=None, on_below_m=np.nan, off_above_m=np.nan,
                              curve=curve_name, power_kw=power_kw, speed=speed,
                              initial_setting=float(pump.initial_setting)
                              if isinstance(pump.initial_setting, (int, float)) and pump.initial_setting != 1.0
                              else np.nan,
                              speed_pattern=pump.speed_pattern_name,
                              efficiency_curve=ecurve.name if ecurve is not None else None,
                              energy_price=float(pump.energy_price) if pump.energy_price is not None else np.nan,
                              price_pattern=pump.energy_pattern, geometry=geom))
    if derived:
        notes.append("constant-power pump(s) keep their power in the model; for the analyses' summaries their "
                     f"design point on H = P/(rho g Q) is: {'; '.join(derived[:5])}")
    pumps = gpd.GeoDataFrame(pump_rows, columns=["id", "station_id", "from_node", "to_node", "role", "design_flow_ls",
                                                 "design_head_m", "efficiency", "status", "control_node",
                                                 "on_below_m", "off_above_m", "curve", "power_kw", "speed", "initial_setting",
                                                 "speed_pattern", "efficiency_curve", "energy_price", "price_pattern",
                                                 "geometry"],
                             geometry="geometry", crs=out_crs)
    if len(pumps):
        fac_ids = {r["id"] for r in fac_rows}
        for suction, grp in pumps.groupby("from_node", sort=True):
            sid = f"PS-{suction}"
            while sid in fac_ids:
                sid += "~"
            fac_ids.add(sid)
            pumps.loc[grp.index, "station_id"] = sid
            fac_rows.append(dict(id=sid, kind="pump_station", name_zh=None, name_en=f"Pump station at {suction}",
                                 node_id=str(suction), zone=None, design_flow_ls=float(grp["design_flow_ls"].sum()),
                                 design_head_m=float(grp["design_head_m"].max()), geometry=Point(pos[suction])))

    # --- control valves
    valve_rows = []
    for vid, valve in wn.valves():
        a, b = valve.start_node_name, valve.end_node_name
        vtype = str(valve.valve_type).upper()
        setting, curve = np.nan, None
        if vtype == "GPV":
            curve = str(valve.headloss_curve_name)
        elif vtype == "FCV":
            setting = float(valve.initial_setting) * 1000.0
        else:
            setting = float(valve.initial_setting)
        st = str(valve.initial_status).split(".")[-1].upper()
        valve_rows.append(dict(id=str(vid), from_node=str(a), to_node=str(b), type=vtype,
                               diameter_mm=float(valve.diameter) * 1000.0, setting=setting,
                               status=st if st in ("OPEN", "CLOSED") else "ACTIVE",
                               minor_loss=float(valve.minor_loss), curve=curve,
                               geometry=Point((pos[a][0] + pos[b][0]) / 2.0, (pos[a][1] + pos[b][1]) / 2.0)))

    # --- patterns, settlements, metadata
    patterns, pat_step = _patterns(wn, notes)
    others = [dict(from_node=r["from_node"], to_node=r["to_node"]) for r in pump_rows + valve_rows]
    links = pd.concat([pd.DataFrame(pipe_rows, columns=["from_node", "to_node", "length_m"]),
                       pd.DataFrame(others, columns=["from_node", "to_node"])], ignore_index=True)
    pattern_mean = {name: float(np.mean(pat.multipliers)) if len(pat.multipliers) else 1.0
                    for name, pat in wn.patterns()}
    default_pat = wn.options.hydraulic.pattern
    mean_of = {str(n): sum(float(d.base_value) * pattern_mean.get(d.pattern_name or default_pat, 1.0)
                           for d in j.demand_timeseries_list) * SECONDS_PER_DAY for n, j in wn.junctions()}
    mean_demand = nodes["id"].map(lambda n: mean_of.get(n, 0.0))
    settlements, sid, pop = derive_settlements(nodes, links, mean_demand_m3d=mean_demand)
    nodes["settlement_id"] = sid.astype(object).where(sid.notna(), None)
    nodes["population"] = pop
    if len(settlements):
        notes.append(f"the network has no settlements: {len(settlements)} were derived from clusters of demand nodes "
                     f"(graph communities), population estimated from the average demand (base demand times the "
                     f"pattern mean) at {PER_CAPITA_L_D:g} L/person/day")

    duration_h = float(wn.options.time.duration) / 3600.0
    if duration_h <= 0:
        duration_h = SINGLE_PERIOD_HORIZON_H  # the analyses' horizon; the model keeps its own (options table)
    t = wn.options.time
    meta = {
        "name": label,
        "source": source or "WaterNetworkModel",
        "converter": "watersupply.convert.network_from_wntr",
        "crs": out_crs.to_string() if out_crs.to_epsg() else out_crs.name,
        "coordinates": how,
        "duration_h": f"{duration_h:g}",
        "hydraulic_timestep_s": f"{float(t.hydraulic_timestep):g}",
        "quality_timestep_s": f"{float(t.quality_timestep):g}",
        "report_timestep_s": f"{float(t.report_timestep):g}",
        "pattern_timestep_s": f"{pat_step:g}",
        "inp_flow_units": str(wn.options.hydraulic.inpfile_units),
        "inp_headloss": headloss,
    }
    if len(settlements):
        meta["per_capita_l_d"] = f"{PER_CAPITA_L_D:g}"
    title = getattr(wn, "title", None)
    if title:
        meta["title"] = " ".join(str(x) for x in title).strip()
    metadata = pd.DataFrame(sorted(meta.items()), columns=["key", "value"])

    net: Network = {"nodes": nodes, "pipes": pipes}
    if len(pumps):
        net["pumps"] = pumps
    facilities = gpd.GeoDataFrame(fac_rows, geometry="geometry", crs=out_crs) if fac_rows else None
    if facilities is not None:
        net["facilities"] = facilities
    net["settlements"] = settlements
    if valve_rows:
        net["control_valves"] = gpd.GeoDataFrame(valve_rows, geometry="geometry", crs=out_crs)
    net["patterns"] = patterns
    net["metadata"] = metadata
    tables = model_tables(wn)
    opts = tables["options"]
    opts.loc[opts["key"] == "time.pattern_timestep", "value"] = json.dumps(int(pat_step) if pat_step == int(pat_step)
                                                                           else pat_step)
    for key, df in tables.items():
        if len(df) or key == "options":
            net[key] = df
    for note in notes:
        log.info("%s: %s", label, note)
        warnings.warn(f"{label}: {note}", UserWarning, stacklevel=2)
    return validate_network(net, source=source or label)


def _inp_location(exc: BaseException) -> str:
    """'line N: text' of the INP line WNTR was parsing when it failed, if it can be found."""
    lnum, line = None, None
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        tb = e.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_filename.replace("\\", "/").endswith("wntr/epanet/io.py"):
                loc = frame.f_locals
                if isinstance(loc.get("lnum"), int) and loc["lnum"] > 0:
                    lnum, line = loc["lnum"], loc.get("line")
            tb = tb.tb_next
        e = e.__cause__ or e.__context__
    if lnum is None:
        return ""
    text = f"line {lnum}"
    if isinstance(line, str) and line.strip():
        text += f": {line.strip()!r}"
    return text


def _messages(exc: BaseException) -> str:
    """The most telling message of an exception chain raised while WNTR read an INP file."""
    from wntr.epanet.exceptions import EpanetException

    chain, seen = [], set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        chain.append(e)
        e = e.__cause__ or e.__context__
    specific = [c for c in chain if isinstance(c, EpanetException) and not str(c).startswith("(Error 200)")]
    if specific:
        c = specific[-1]
        msg = str(c.args[0] if c.args else c).split(", at line")[0]
        return " ".join(msg.replace("%s", "").replace("()", "").split())
    inner = chain[-1]
    if isinstance(inner, KeyError):
        return f"unknown id {inner.args[0]!r} (not defined in the file)" if inner.args else "unknown id"
    return f"{type(inner).__name__}: {' '.join(str(inner).split())}"


_RULE_CLOCKTIME = re.compile(r"(\bCLOCKTIME\s+(?:[<>=!]+|IS|NOT|BELOW|ABOVE)\s+)(\d{1,2})(\s+[AP]M\b)", re.IGNORECASE)


def _wntr_text(text: str) -> str:
    """Spellings EPANET accepts but WNTR's reader does not, rewritten to ones both read alike.

    In [RULES], ``SYSTEM CLOCKTIME >= 2 AM`` becomes ``2:00 AM``.
    """
    out, section = [], None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s.split()[0].upper()
        elif section == "[RULES]":
            line = _RULE_CLOCKTIME.sub(lambda m: f"{m.group(1)}{m.group(2)}:00{m.group(3)}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def _read_wn(p: Path) -> wntr.network.WaterNetworkModel:
    """Read with WNTR; a file in a legacy Chinese encoding (GB18030/GBK) is re-encoded to UTF-8 first,
    and spellings WNTR's reader lacks (:func:`_wntr_text`) are rewritten in a private copy."""
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise NetworkDataError(f"{p}: not readable as text in UTF-8 or GB18030; save the INP file as "
                                   "UTF-8") from None
        log.info("%s is not UTF-8; read it as GB18030", p)
        text = text + "\n"  # force the private copy
    fixed = _wntr_text(text)
    if fixed.rstrip("\n") == text.rstrip("\n") and raw.decode("utf-8", errors="replace") == text:
        return wntr.network.WaterNetworkModel(str(p))
    with tempfile.TemporaryDirectory(prefix="watersupply-inp-") as tmp:
        copy = Path(tmp) / p.name
        copy.write_text(fixed, encoding="utf-8")
        wn = wntr.network.WaterNetworkModel(str(copy))
    wn.name = str(p)
    return wn


#: What EPANET 2.3 adds that EPANET 2.2 (and so this project's network) cannot carry:
#: (section or None for any, regular expression on a data line, the feature's name).
EPANET23_FEATURES: tuple[tuple[str | None, str, str], ...] = (
    ("[LEAKAGE]", r".", "pipe leakage ([LEAKAGE] section)"),
    ("[VALVES]", r"^\S+\s+\S+\s+\S+\s+\S+\s+PCV\b", "positional control valves (PCV)"),
    ("[OPTIONS]", r"^UNITS\s+CMS\b", "flow units CMS"),
    ("[OPTIONS]", r"^PRESSURE\s+(UNITS\s+)?(KPA|METERS|PSI|BAR|FEET)\b", "pressure units (PRESSURE UNITS option)"),
    ("[OPTIONS]", r"^(EMITTER\s+BACKFLOW|BACKFLOW\s+ALLOWED)\b", "emitter backflow option"),
    ("[RULES]", r"^(DISABLED|ENABLED)\b", "enabled/disabled rules"),
    ("[CONTROLS]", r"\b(DISABLED|ENABLED)\s*$", "enabled/disabled controls"),
)


def epanet23_features(text: str) -> list[str]:
    """The EPANET 2.3 features in an INP file's text that EPANET 2.2 cannot express, with line numbers.

    Examples
    --------
    >>> epanet23_features("[VALVES]\\nV1 A B 100 PCV 50 0\\n")
    ['positional control valves (PCV) at line 2']
    """
    found: dict[str, int] = {}
    section = None
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.split()[0].upper()
            if section == "[LEAKAGE]":
                found.setdefault("pipe leakage ([LEAKAGE] section)", i)
            continue
        for sec, pattern, feature in EPANET23_FEATURES:
            if sec == section and re.search(pattern, line, flags=re.IGNORECASE):
                found.setdefault(feature, i)
    return [f"{f} at line {n}" for f, n in found.items()]


def _check_with_epanet(p: Path) -> None:
    """Refuse EPANET 2.3 features by name, then let EPANET 2.2 itself judge the file."""
    from .equivalence import check_inp

    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    new = epanet23_features(text)
    if new:
        raise NetworkDataError(f"{p}: uses EPANET 2.3 feature(s) this project cannot carry: {'; '.join(new)}. "
                               "Remove them or save the model for EPANET 2.2; nothing was converted")
    errors = check_inp(p)
    if errors:
        raise NetworkDataError(f"{p}: EPANET 2.2 rejects this INP file: {'; '.join(errors[:5])}"
                               f"{f' (and {len(errors) - 5} more)' if len(errors) > 5 else ''}")


def read_inp(path: str | os.PathLike, *, crs: Any = None) -> Network:
    """Read an EPANET INP file (any flow units) into the project's layers.

    Parameters
    ----------
    path
        The INP file.
    crs
        CRS of the INP coordinates; see :func:`network_from_wntr`.

    Returns
    -------
    Network
        Validated layers; the metadata records the file as ``source``.

    Raises
    ------
    NetworkDataError
        The file is missing, or EPANET/WNTR rejects it: the message names the file,
        WNTR's message and, where it can be found, the line number and text.

    Examples
    --------
    >>> import wntr
    >>> net = read_inp(wntr.library.__path__[0] + "/networks/Net3.inp")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkDataError(f"{p}: file not found; give the path of an EPANET .inp file")
    if b"\x00" in p.read_bytes()[:65536]:
        raise NetworkDataError(f"{p}: not a text file (binary data); give an EPANET .inp text file")
    _check_with_epanet(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # WNTR's own notes on options
            wn = _read_wn(p)
    except NetworkDataError:
        raise
    except Exception as exc:  # WNTR raises EpanetException, ValueError, KeyError, RuntimeError, ...
        where = _inp_location(exc)
        raise NetworkDataError(f"{p}: EPANET/WNTR cannot read this INP file"
                               f"{' at ' + where if where else ''}: {_messages(exc)}") from None
    if not wn.num_nodes or not wn.num_links:
        raise NetworkDataError(f"{p}: the INP file defines no {'nodes' if not wn.num_nodes else 'links'}; "
                               "is it truncated or empty? EPANET needs [JUNCTIONS]/[RESERVOIRS]/[TANKS] and "
                               "[PIPES]/[PUMPS]/[VALVES] sections")
    if not (wn.num_reservoirs or wn.num_tanks):
        raise NetworkDataError(f"{p}: the INP file has no [RESERVOIRS] or [TANKS]: a network needs a source")
    try:
        return network_from_wntr(wn, crs=crs, name=p.stem, source=str(p))
    except NetworkDataError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
        raise NetworkDataError(f"{p}: the network in this INP file cannot be converted: "
                               f"{type(exc).__name__}: {exc}") from None


#: Metadata keys that record where a network came from rather than what it is.
_PROVENANCE_KEYS = {"name", "source", "converter", "crs", "coordinates", "title", "as_is"}


def compare_networks(a: Network, b: Network, *, rtol: float = 1e-9, atol: float = 1e-6,
                     xy_tol_m: float = 0.01) -> list[str]:
    """Differences between two networks' layers (empty when equal).

    Layers, rows (by order), columns (in any order) and values are compared;
    numbers within `rtol`/`atol`, geometries within `xy_tol_m`, strings exactly,
    empty cells equal to empty cells. Provenance metadata (name, source, CRS label)
    is ignored.

    Examples
    --------
    >>> from watersupply.loader import load_network
    >>> net = load_network()
    >>> compare_networks(net, net)
    []
    """
    out: list[str] = []
    if set(a) != set(b):
        out.append(f"layers differ: only in the first {sorted(set(a) - set(b))}, only in the second "
                   f"{sorted(set(b) - set(a))}")
    for layer in sorted(set(a) & set(b)):
        x, y = a[layer], b[layer]
        if layer == "metadata":
            mx = {k: v for k, v in zip(x["key"], x["value"]) if k not in _PROVENANCE_KEYS}
            my = {k: v for k, v in zip(y["key"], y["value"]) if k not in _PROVENANCE_KEYS}
            diff = sorted(k for k in set(mx) | set(my) if mx.get(k) != my.get(k))
            if diff:
                out.append(f"metadata: {', '.join(f'{k}={mx.get(k)!r}/{my.get(k)!r}' for k in diff[:5])}")
            continue
        if set(x.columns) != set(y.columns):
            out.append(f"{layer}: columns only in the first {sorted(set(x.columns) - set(y.columns))}, only in "
                       f"the second {sorted(set(y.columns) - set(x.columns))}")
            continue
        if len(x) != len(y):
            out.append(f"{layer}: {len(x)} rows vs {len(y)}")
            continue
        for col in x.columns:
            u, v = x[col].reset_index(drop=True), y[col].reset_index(drop=True)
            if col == "geometry":
                d = gpd.GeoSeries(u).hausdorff_distance(gpd.GeoSeries(v), align=False) if len(u) else pd.Series([])
                if len(u) and float(np.nanmax(d.to_numpy())) > xy_tol_m:
                    out.append(f"{layer}: geometry moves by up to {float(np.nanmax(d)):.3g} m")
                continue
            empty_u = u.isna() | u.astype(str).isin(["", "None", "nan", "<NA>"])
            empty_v = v.isna() | v.astype(str).isin(["", "None", "nan", "<NA>"])
            if pd.api.types.is_bool_dtype(u) or pd.api.types.is_bool_dtype(v):
                un = vn = pd.Series(np.nan, index=u.index)
            else:
                un, vn = pd.to_numeric(u, errors="coerce"), pd.to_numeric(v, errors="coerce")
            both = un.notna() & vn.notna()  # numbers compare with a tolerance, the rest as text
            close = pd.Series(np.isclose(un.fillna(0).astype(float), vn.fillna(0).astype(float), rtol=rtol, atol=atol),
                              index=u.index)
            same_text = u.astype(str) == v.astype(str)
            bad = (empty_u != empty_v) | (~empty_u & ~empty_v & ~(both & close) & ~(~both & same_text))
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                ident = x["id"].iloc[i] if "id" in x.columns else i
                out.append(f"{layer}.{col}: {int(bad.sum())} value(s) differ, first at {ident!r}: "
                           f"{u.iloc[i]!r} vs {v.iloc[i]!r}")
    return out
