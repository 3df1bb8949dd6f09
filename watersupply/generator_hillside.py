"""Generate the Tonghui reference network on hillside terrain: synthetic DEM, zones, PE sizes, pump curves.

The same published facts as :mod:`watersupply.generator` (1 plant, 7 pump
stations, 9 reservoirs in a radial main network; 177 km of mains and 262 km of
branches; 7 villages and 4 communities), laid out on a deterministic synthetic
DEM (:mod:`watersupply.terrain`) instead of flat terraces: mains follow
least-cost paths over the ground, settlements are irregular footprints in
elevation bands, node elevations are sampled from the DEM through
:func:`watersupply.build.sample_dem` (the ``build --dem`` path), and an
engineering pass designs the model from the ground: pressure zones with PRVs
(:mod:`watersupply.zones`), PE/DI sizes from the catalogue
(:mod:`watersupply.pipe_catalogue`), pump curves (:mod:`watersupply.pumpcurves`),
a float valve, PE wall decay and the plant's clear well with level-controlled production
(:mod:`watersupply.operations`), reinforcement of the community pipes the zoning overloads,
hydrants (:mod:`watersupply.hydrants`), unforeseen demand and leakage emitters
(:mod:`watersupply.leakage`). Written to ``networks/tonghui/``
(documented in its README); regenerating gives byte-identical files.

This is the bundled ``tonghui`` model (``watersupply generate``). The earlier
flat-terraced model stays in :mod:`watersupply.generator` for reference (``watersupply
generate --flat -o DIR``); this module takes its unchanged helpers from there.

Examples
--------
>>> from watersupply.generator_hillside import generate_tonghui_hillside
>>> net = generate_tonghui_hillside()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point, Polygon

from .generator import (BRANCH_KM, CRS, FOOD_PARK_M3D, MAIN_KM, MATERIALS, ORIGIN_LONLAT, PATTERNS, PUMP_MARGIN_M, SEED,
                        STORAGE_HOURS, TANK_LEVELS, TRANS_SEG_KM, TRUNK_SEG_KM, _assign_demands, _design_flows,
                        _hw_unit_headloss, _rng, _size, _valves)
from .schema import Network
from .terrain import (Terrain, TerrainParams, grade_cost_graph, read_dem, river_x_km, route_tree, slope, smooth_line,
                      synthetic_dem, write_dem)

__all__ = ["LAYOUT", "CRS", "TERRAIN", "NAME", "generate_tonghui_hillside", "tonghui_terrain", "write_tonghui_hillside"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    """A site in the local frame (km); for a reservoir `z` is the target bottom elevation (m), the
    site itself being the ground nearest that elevation within :data:`RESERVOIR_SEARCH_KM`."""

    x: float
    y: float
    z: float = float("nan")


@dataclass(frozen=True)
class SettlementSpec:
    id: str
    name_zh: str
    name_en: str
    kind: str
    verified: bool
    population: int
    x: float
    y: float
    r: float          # nominal radius (km) within which the trunk mains reach their groups
    zone: str         # feeding reservoir
    storeys: int
    groups: int       # village groups (村民小组) / neighbourhoods reached by trunk mains
    z_lo: float       # the settlement's ground lies between these elevations (m): its houses
    z_hi: float       # ... stand in this band (villages on slopes and ridges, the town on the floor)


#: The layout (assumed; FACTS "consistent starting schematic"). Local km east/north of
#: 106.70°E, 29.02°N. The ground comes from the DEM (:mod:`watersupply.terrain`); a reservoir's
#: ``z`` is its target bottom elevation, met by the ground within :data:`RESERVOIR_SEARCH_KM`.
LAYOUT = {
    "plant": Site(-4.5, 0.2),
    "plant_capacity_m3d": 20000.0,
    "reservoirs": {
        "R1": Site(-0.9, 2.1, 330.0), "R2": Site(-0.9, -1.9, 320.0), "R3": Site(1.2, 4.1, 440.0),
        "R4": Site(1.3, 1.3, 430.0), "R5": Site(3.1, 5.7, 560.0), "R6": Site(0.9, -3.3, 440.0),
        "R7": Site(3.3, 2.0, 540.0), "R8": Site(3.6, -4.0, 560.0), "R9": Site(3.3, -1.1, 520.0),
    },
    # station: (source reservoir (None = plant clear well), filled reservoirs); sites from the ground
    "stations": {
        "PS1": (None, ("R1", "R2")),
        "PS2": ("R1", ("R3",)),
        "PS3": ("R1", ("R4",)),
        "PS4": ("R3", ("R5",)),
        "PS5": ("R2", ("R6",)),
        "PS6": ("R4", ("R7",)),
        "PS7": ("R6", ("R8",)),
    },
    "gravity_fill": {"R9": "R8"},   # R9 is filled from R8 by gravity
    "settlements": [
        SettlementSpec("C1", "联惠社区", "Lianhui Community", "community", True, 15000, -3.3, 2.3, 0.9, "R1", 6, 10, 205, 240),
        SettlementSpec("C2", "新街子社区", "Xinjiezi Community", "community", True, 14000, -1.9, 3.5, 0.9, "R1", 6, 10, 235, 275),
        SettlementSpec("C3", "社区三(待核实)", "Community 3 (to be verified)", "community", False, 11000,
                       -3.4, -1.9, 0.9, "R2", 5, 10, 205, 240),
        SettlementSpec("C4", "社区四(待核实)", "Community 4 (to be verified)", "community", False, 10000,
                       -2.0, -3.3, 0.85, "R2", 5, 10, 235, 275),
        SettlementSpec("V1", "桥坝村", "Qiaoba Village", "village", True, 2800, 0.2, 4.8, 1.3, "R3", 2, 14, 310, 420),
        SettlementSpec("V2", "思南村", "Sinan Village", "village", True, 2400, 0.2, 0.5, 1.3, "R4", 2, 14, 300, 410),
        SettlementSpec("V3", "柏林村", "Bailin Village", "village", True, 2600, 2.2, 6.3, 1.3, "R5", 2, 14, 430, 540),
        SettlementSpec("V4", "村四(待核实)", "Village 4 (to be verified)", "village", False, 2300, 0.0, -4.5, 1.3, "R6", 2, 14, 310, 420),
        SettlementSpec("V5", "村五(待核实)", "Village 5 (to be verified)", "village", False, 2200, 2.4, 2.5, 1.2, "R7", 2, 14, 410, 520),
        SettlementSpec("V6", "村六(待核实)", "Village 6 (to be verified)", "village", False, 2000, 2.6, -5.2, 1.2, "R8", 2, 14, 430, 540),
        SettlementSpec("V7", "村七(待核实)", "Village 7 (to be verified)", "village", False, 1900, 2.2, -1.6, 1.2, "R9", 2, 14, 390, 500),
    ],
    # the food industrial park (通惠食品工业园区) lies in 思南村
    "food_park": {"settlement": "V2", "x": -0.5, "y": 0.2, "r": 0.45, "demand_m3d": FOOD_PARK_M3D, "nodes": 14},
}
#: Terrain of the service area (synthetic; see :class:`watersupply.terrain.TerrainParams`).
TERRAIN = TerrainParams(seed=SEED)
NAME = "tonghui"
DEM_NAME = f"{NAME}_dem.tif"
CLEAR_WELL_M = 3.0           # clear-well water level above the plant's ground (m)
CLEAR_WELL_INLET_HEAD_M = 10.0  # head of the treatment works' outlet above the clear well's top (its FCV caps the flow)
CLEAR_WELL_SHARE = 0.20      # clear-well volume, share of a day's production (GB 50013-2018 §9.11: 10-20 %)
CLEAR_WELL_STOP_M = 3.9      # production stops when the clear well rises above this level (m above its bottom) ...
CLEAR_WELL_RESUME_M = 3.0    # ... and resumes at capacity below this one (the works follow the high-lift draw)
RESERVOIR_SEARCH_KM = 1.0    # a reservoir goes on the ground nearest its target elevation within this radius
STATION_SEARCH_KM = 0.8      # a booster goes within this radius of the reservoir it draws from ...
STATION_BELOW_M = 12.0       # ... at least this far below that reservoir's bottom (flooded suction)
FRICTION_ALLOWANCE_M = 10.0  # a zone's taps lie below its reservoir's bottom by the service head plus this
TRUNK_CLIMB_COST = 40.0      # trunk mains leave the entry downhill: a metre of climb costs 40 m of main ...
TRUNK_MAX_CLIMB_M = 5.0      # ... and a settlement is the ground they reach climbing at most this much
GRADE_REF = 0.08             # road grade at which a metre of main costs double (least-cost routing)
BRANCH_GRADE_REF = 0.05      # ... and for service branches (tree weights)
BRANCH_RISE_M = 2.0          # a service branch may climb this much to a tap (else it is fed from higher up)
RIVER_PENALTY = 20.0         # cost multiplier for crossing the river channel
HOUSE_SLOPE_MAX = 0.45       # no houses on ground steeper than this (m/m)
FOOTPRINT_KM = {"community": 0.40, "village": 0.30}   # settlement footprint: this far either side of its trunk roads
MAIN_COVER_M = 2.0    # a main keeps at least this far below the reservoir (or clear well) that drives it


# ----------------------------------------------------------------------------- helpers


class _Ground:
    """The DEM in the local frame (km): cell lookups, cost graphs and least-cost paths."""

    def __init__(self, t: Terrain, origin: tuple[float, float]) -> None:
        self.t = t
        self.e0, self.n0 = origin
        ny, nx = t.shape
        self.xk = (t.left + (np.arange(nx) + 0.5) * t.cell_m - self.e0) / 1000.0
        self.yk = (t.top - (np.arange(ny) + 0.5) * t.cell_m - self.n0) / 1000.0
        self.X, self.Y = np.meshgrid(self.xk, self.yk)
        self.slope = slope(t)
        river = np.abs(self.X - river_x_km(self.Y, TERRAIN)) < 0.12
        self.river = river
        self.graph = grade_cost_graph(t, grade_ref=GRADE_REF, penalty=np.where(river, RIVER_PENALTY, 1.0))
        self._pred: dict[int, np.ndarray] = {}

    def cell(self, x: float, y: float) -> int:
        r, c = self.t.index(self.e0 + 1000.0 * x, self.n0 + 1000.0 * y)
        return int(r) * self.t.shape[1] + int(c)

    def xy(self, cell: int) -> tuple[float, float]:
        r, c = divmod(int(cell), self.t.shape[1])
        return float(self.xk[c]), float(self.yk[r])

    def z(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        return self.t.at(self.e0 + 1000.0 * np.asarray(x), self.n0 + 1000.0 * np.asarray(y)).astype(float)

    def pred(self, source: int) -> np.ndarray:
        if source not in self._pred:
            self._pred[source] = dijkstra(self.graph, directed=True, indices=source, return_predecessors=True)[1]
        return self._pred[source]

    def path(self, a: tuple[float, float], b: tuple[float, float], *, ceiling: float | None = None) -> np.ndarray:
        """Smoothed least-cost alignment (local km) from point a to point b, ending exactly at both.

        With `ceiling` (m) the route keeps to ground below it: a main must stay under the
        hydraulic grade that drives it (a gravity main under its reservoir, a rising main under
        the reservoir it fills), or it would run at negative pressure over a ridge.
        """
        ca, cb = self.cell(*a), self.cell(*b)
        if ceiling is not None:
            near = np.zeros(self.t.shape, dtype=bool)   # the ends themselves (a reservoir at its own level)
            for c in (ca, cb):
                r, k = divmod(c, self.t.shape[1])
                near[max(r - 2, 0):r + 3, max(k - 2, 0):k + 3] = True
            graph = grade_cost_graph(self.t, mask=(self.t.z <= ceiling) | near, grade_ref=GRADE_REF,
                                     penalty=np.where(self.river, RIVER_PENALTY, 1.0))
            pred = dijkstra(graph, directed=True, indices=ca, return_predecessors=True)[1]
            cells = route_tree(pred, ca, [cb])
            chain = [c for ch in cells for c in ch[1:]]
            return self.polyline(a, [ca] + chain, b)
        cells = route_tree(self.pred(ca), ca, [cb])
        chain = [c for ch in cells for c in ch[1:]]
        return self.polyline(a, [ca] + chain, b)

    def polyline(self, a: tuple[float, float], cells: list[int], b: tuple[float, float]) -> np.ndarray:
        inner = [self.xy(c) for c in cells[1:-1]]
        pts = np.array([a, *inner, b], dtype=float)
        return smooth_line(pts, tolerance=0.4 * self.t.cell_m / 1000.0)

    def nearest(self, cand: np.ndarray, score: np.ndarray) -> tuple[float, float]:
        """Centre of the candidate cell (boolean grid) with the lowest score (ties: first in row order)."""
        s = np.where(cand, score, np.inf)
        k = int(np.argmin(s))
        if not np.isfinite(s.flat[k]):
            raise RuntimeError("no candidate cell for a site; widen the search or change the layout")
        return self.xy(k)


# ----------------------------------------------------------------------------- network builder

class _Builder:
    """Accumulates nodes and pipes in the local frame (km)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.pipes: list[dict] = []
        self._n = 0

    def node(self, x: float, y: float, *, kind: str = "junction", zone: str, nid: str | None = None,
             settlement: str | None = None) -> str:
        if nid is None:
            self._n += 1
            nid = f"J{self._n:05d}"
        self.nodes[nid] = dict(id=nid, kind=kind, x=float(x), y=float(y), elevation_m=np.nan, zone=zone,
                               settlement_id=settlement, base_demand_m3d=0.0, pattern=None, population=0,
                               demand_category="none", head_m=None)
        return nid

    def pipe(self, a: str, b: str, *, cls: str, zone: str, verts: np.ndarray | None = None) -> dict:
        if verts is None:
            na, nb = self.nodes[a], self.nodes[b]
            verts = np.array([(na["x"], na["y"]), (nb["x"], nb["y"])])
        p = dict(from_node=a, to_node=b, cls=cls, zone=zone, q=0.0, verts=np.asarray(verts, dtype=float))
        self.pipes.append(p)
        return p

    def line(self, a: str, b: str, verts: np.ndarray, *, cls: str, zone: str, seg_km: float,
             settlement: str | None = None) -> list[dict]:
        """Lay a main from node a to node b along `verts`, split into equal pieces of at most seg_km."""
        line = LineString(verts)
        k = max(1, math.ceil(line.length / seg_km))
        prev, out = a, []
        cuts = [line.length * i / k for i in range(k + 1)]
        for i in range(1, k + 1):
            piece = shapely.ops.substring(line, cuts[i - 1], cuts[i])
            coords = np.asarray(piece.coords)
            if i < k:
                cur = self.node(coords[-1][0], coords[-1][1], zone=zone, settlement=settlement)
            else:
                cur = b
                coords[-1] = (self.nodes[b]["x"], self.nodes[b]["y"])
            coords[0] = (self.nodes[prev]["x"], self.nodes[prev]["y"])
            out.append(self.pipe(prev, cur, cls=cls, zone=zone, verts=coords))
            prev = cur
        return out


def _line_km(verts: np.ndarray) -> float:
    return float(np.hypot(*np.diff(verts, axis=0).T).sum())


def _farthest_points(xy: np.ndarray, start: tuple[float, float], n: int) -> list[int]:
    """Indices of n points spread by farthest-point sampling, starting away from `start`."""
    d = np.hypot(xy[:, 0] - start[0], xy[:, 1] - start[1])
    out: list[int] = []
    for _ in range(min(n, len(xy))):
        k = int(np.argmax(d))
        if d[k] <= 0:
            break
        out.append(k)
        d = np.minimum(d, np.hypot(xy[:, 0] - xy[k, 0], xy[:, 1] - xy[k, 1]))
    return out


@dataclass
class _Area:
    """A settlement's buildable ground: its window on the DEM and the cells it may use."""

    spec: SettlementSpec
    cell: Polygon            # Voronoi cell (local km), settlements never overlap
    r0: int
    c0: int
    ok: np.ndarray           # window mask: buildable and reachable from the entry
    entry: tuple[float, float]
    entry_cell: int          # window flat index
    pred: np.ndarray
    ground: _Ground

    def xy(self, k: int) -> tuple[float, float]:
        r, c = divmod(int(k), self.ok.shape[1])
        return float(self.ground.xk[self.c0 + c]), float(self.ground.yk[self.r0 + r])

    def trunk(self, scale: float) -> list[tuple[int, int, np.ndarray]]:
        """Trunk-main alignments (entry → village groups) with groups spread within scale × r."""
        s = self.spec
        ks = np.flatnonzero(self.ok.ravel())
        rr, cc = np.divmod(ks, self.ok.shape[1])
        X, Y = self.ground.xk[self.c0 + cc], self.ground.yk[self.r0 + rr]
        near = np.hypot(X - s.x, Y - s.y) <= scale * s.r
        cand = ks[near]
        pts = np.column_stack([X[near], Y[near]])
        targets = [int(cand[i]) for i in _farthest_points(pts, self.entry, s.groups)]
        chains = route_tree(self.pred, self.entry_cell, targets)
        out = []
        for ch in chains:
            verts = np.array([self.xy(c) for c in ch])
            out.append((ch[0], ch[-1], smooth_line(verts, tolerance=0.4 * self.ground.t.cell_m / 1000.0)))
        return out


def _settlement_cells() -> dict[str, Polygon]:
    """Voronoi cells of the settlement centres, shrunk 100 m so neighbours keep a gap."""
    centres = shapely.MultiPoint([(s.x, s.y) for s in LAYOUT["settlements"]])
    x0, y0, x1, y1 = TERRAIN.bounds_km
    box = shapely.box(x0 + 0.2, y0 + 0.2, x1 - 0.2, y1 - 0.2)
    cells = shapely.get_parts(shapely.voronoi_polygons(centres, extend_to=box))
    out = {}
    for s in LAYOUT["settlements"]:
        p = Point(s.x, s.y)
        cell = next(c for c in cells if c.contains(p))
        out[s.id] = cell.intersection(box).buffer(-0.1)
    return out


def _sites(g: _Ground) -> dict[str, tuple[float, float]]:
    """Facility sites from the ground: reservoirs nearest their target elevation, boosters below their source."""
    sites: dict[str, tuple[float, float]] = {}
    pl = LAYOUT["plant"]
    sites["WTP"] = g.xy(g.cell(pl.x, pl.y))
    for rid, s in LAYOUT["reservoirs"].items():
        d = np.hypot(g.X - s.x, g.Y - s.y)
        sites[rid] = g.nearest(d <= RESERVOIR_SEARCH_KM, np.abs(g.t.z - s.z) + 10.0 * d)
    for sid, (src, fills) in LAYOUT["stations"].items():
        if src is None:   # the plant's high-lift station beside the clear well
            sites[sid] = g.xy(g.cell(pl.x + 0.15, pl.y + 0.05))
            continue
        sx, sy = sites[src]
        fx, fy = sites[fills[0]]
        zsrc = float(g.z(sx, sy))
        d = np.hypot(g.X - sx, g.Y - sy)
        cand = (d <= STATION_SEARCH_KM) & (d >= 0.1) & (g.t.z <= zsrc - STATION_BELOW_M) & ~g.river
        for other, (ox, oy) in sites.items():   # keep stations apart from every site placed so far
            if other.startswith("PS"):
                cand &= np.hypot(g.X - ox, g.Y - oy) >= 0.2
        sites[sid] = g.nearest(cand, np.hypot(g.X - fx, g.Y - fy))
    return sites


def _areas(g: _Ground, sites: dict[str, tuple[float, float]]) -> dict[str, _Area]:
    from .standards import service_head_m

    cells = _settlement_cells()
    out = {}
    for s in LAYOUT["settlements"]:
        cell = cells[s.id]
        rx, ry = sites[s.zone]
        ceiling = float(g.z(rx, ry)) - service_head_m(s.kind, s.storeys) - FRICTION_ALLOWANCE_M
        x0, y0, x1, y1 = cell.bounds
        c0, c1 = int(np.searchsorted(g.xk, x0)), int(np.searchsorted(g.xk, x1))
        r0, r1 = int(np.searchsorted(-g.yk, -y1)), int(np.searchsorted(-g.yk, -y0))
        wx, wy = g.X[r0:r1, c0:c1], g.Y[r0:r1, c0:c1]
        east = wx > river_x_km(wy, TERRAIN) + 0.2   # all settlements lie east of the river (Eastern New City)
        zw = g.t.z[r0:r1, c0:c1]
        ok = shapely.contains_xy(cell, wx, wy) & east & (zw <= min(ceiling, s.z_hi)) & (zw >= s.z_lo) \
            & (g.slope[r0:r1, c0:c1] <= HOUSE_SLOPE_MAX) & ~g.river[r0:r1, c0:c1]
        win = Terrain(z=g.t.z[r0:r1, c0:c1], left=g.t.left + c0 * g.t.cell_m, top=g.t.top - r0 * g.t.cell_m,
                      cell_m=g.t.cell_m, crs=g.t.crs)
        graph = grade_cost_graph(win, mask=ok, grade_ref=GRADE_REF, climb_cost=TRUNK_CLIMB_COST)
        # entry: the buildable cell nearest the reservoir, in the largest connected piece of ground
        from scipy.sparse.csgraph import connected_components

        _, lab = connected_components(graph, directed=True, connection="weak")
        lab = np.where(ok.ravel(), lab, -1)
        big = np.bincount(lab[lab >= 0]).argmax()
        ok = (lab == big).reshape(ok.shape)
        d = np.where(ok, np.hypot(wx - rx, wy - ry), np.inf)
        ek = int(np.argmin(d))
        dist, pred = dijkstra(graph, directed=True, indices=ek, return_predecessors=True)
        # the ground a trunk reaches from the entry without climbing more than TRUNK_MAX_CLIMB_M on the way:
        # a zone (PRV) can only lower the head, so a tap above a dip in its supply path would be left short
        reach = np.flatnonzero(np.isfinite(dist))
        reach = reach[np.argsort(dist[reach], kind="stable")]
        zf = zw.ravel().astype(float)
        climb = np.full(dist.shape, np.inf)
        climb[ek] = 0.0
        for c in reach[1:]:
            climb[c] = climb[pred[c]] + max(zf[c] - zf[pred[c]], 0.0)
        ok &= (climb <= TRUNK_MAX_CLIMB_M).reshape(ok.shape)
        er, ec = divmod(ek, ok.shape[1])
        out[s.id] = _Area(spec=s, cell=cell, r0=r0, c0=c0, ok=ok, entry=(float(g.xk[c0 + ec]), float(g.yk[r0 + er])),
                          entry_cell=ek, pred=pred, ground=g)
    return out


def _ok_polygon(area: _Area) -> Polygon:
    """The buildable ground of an area as a polygon (local km)."""
    from rasterio import features
    from rasterio.transform import from_origin

    g = area.ground
    ck = g.t.cell_m / 1000.0
    tr = from_origin(g.xk[area.c0] - ck / 2, g.yk[area.r0] + ck / 2, ck, ck)
    geoms = [shapely.geometry.shape(geom) for geom, v in features.shapes(area.ok.astype(np.uint8), mask=area.ok,
                                                                          transform=tr) if v == 1]
    return shapely.union_all(geoms)


def _branch_tree(pts: np.ndarray, zp: np.ndarray, anchors: np.ndarray, za: np.ndarray) -> list[tuple[int, int]]:
    """A downhill tree joining points to anchors (index -1-k = anchor k).

    Points are attached from the highest down, each to the cheapest already-connected node
    (an anchor or a point) that is not lower than it by more than :data:`BRANCH_RISE_M`, with a
    cost that grows with the grade so service pipes keep to the contours. Every tap is then fed
    along a path that only falls, so that pressure zones can follow the ground (a branch that
    dips and climbs again would leave its high end short of head below a PRV). A point with no
    such node within reach joins the cheapest node of all.
    """
    from scipy.spatial import cKDTree

    n = len(pts)
    if n == 0:
        return []
    allxy = np.vstack([anchors, pts])
    allz = np.concatenate([za, zp])
    m = len(anchors)
    tree = cKDTree(allxy)
    placed = np.zeros(len(allxy), dtype=bool)
    placed[:m] = True
    edges = []
    for i in np.argsort(-zp, kind="stable"):
        j = m + int(i)
        k = min(len(allxy), 40)
        dd, jj = tree.query(allxy[j], k=k)
        ok = placed[jj]
        dd, jj = dd[ok], jj[ok]
        if not len(jj):
            dd, jj = cKDTree(allxy[placed]).query(allxy[j], k=1)
            jj = np.flatnonzero(placed)[[int(jj)]]
            dd = np.atleast_1d(dd)
        dz = allz[jj] - allz[j]
        grade = np.abs(dz) / np.maximum(dd * 1000.0, 1.0)
        cost = dd * (1.0 + (grade / BRANCH_GRADE_REF) ** 2) + np.where(dz >= -BRANCH_RISE_M, 0.0, 1e3)
        best = int(jj[int(np.argmin(cost))])
        edges.append((int(i), best - m if best >= m else -1 - best))
        placed[j] = True
    return edges


def _sample_points(poly: Polygon, spacing: float, key: str, *, grid: bool) -> np.ndarray:
    """Demand-node sites in a footprint: a street grid (communities) or dispersed house clusters (villages)."""
    if poly.is_empty:
        return np.empty((0, 2))
    minx, miny, maxx, maxy = poly.bounds
    rng = _rng("pts", key)
    inner = poly.buffer(-spacing * 0.3)
    if grid:
        ang = rng.uniform(0, np.pi / 2)
        cx, cy = poly.centroid.x, poly.centroid.y
        n = int(math.ceil(max(maxx - minx, maxy - miny) / spacing)) + 2
        ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
        gx, gy = ii.ravel() * spacing, jj.ravel() * spacing
        xs = cx + gx * math.cos(ang) - gy * math.sin(ang)
        ys = cy + gx * math.sin(ang) + gy * math.cos(ang)
        inside = shapely.contains_xy(inner, xs, ys)
        return np.column_stack([xs[inside], ys[inside]]).reshape(-1, 2)
    # Poisson-disk-like dart throwing with a fixed number of candidates
    n_target = int(poly.area / (spacing * spacing))
    cand = np.column_stack([rng.uniform(minx, maxx, n_target * 30), rng.uniform(miny, maxy, n_target * 30)])
    cand = cand[shapely.contains_xy(inner, cand[:, 0], cand[:, 1])]
    pts = np.empty((n_target, 2))
    k = 0
    min_d2 = (spacing * 0.8) ** 2
    for x, y in cand:
        if k and np.min((pts[:k, 0] - x) ** 2 + (pts[:k, 1] - y) ** 2) < min_d2:
            continue
        pts[k] = (x, y)
        k += 1
        if k >= n_target:
            break
    return pts[:k]


@dataclass
class _Plan:
    """Everything laid out before the nodes are built: sites, routes, trunks and footprints."""

    sites: dict[str, tuple[float, float]]
    stations: dict[str, dict]
    transmission: list[dict]
    trunks: dict[str, list[tuple[int, int, np.ndarray]]]
    park_hub: tuple[float, float]
    park_src: tuple[float, float]
    park_main: np.ndarray
    footprints: dict[str, Polygon]


def _station_nodes(sites: dict[str, tuple[float, float]]) -> dict[str, dict]:
    stations = {}
    for sid, (src, fills) in LAYOUT["stations"].items():
        x, y = sites[sid]
        outs = [(f"{sid}-D{k}" if len(fills) > 1 else f"{sid}-D", (x + 0.01, y + 0.01 * (k - 1)))
                for k in range(1, len(fills) + 1)]
        stations[sid] = dict(suction=(f"{sid}-S", (x - 0.01, y)), discharge=outs, src=src, fills=fills)
    return stations


def _transmission(g: _Ground, sites: dict, stations: dict, areas: dict[str, _Area]) -> list[dict]:
    """Least-cost alignments of the transmission mains (plant → PS1, reservoirs → boosters → reservoirs,
    gravity fills, reservoirs → settlement entries)."""
    pos = {k: v for k, v in sites.items() if not k.startswith("PS")}
    for st in stations.values():
        pos[st["suction"][0]] = st["suction"][1]
        for nid, xy in st["discharge"]:
            pos[nid] = xy
    routes = []
    ground = {k: float(g.z(*xy)) for k, xy in pos.items()}

    def add(a: str, b: str, zone: str, ceiling: float, b_xy: tuple[float, float] | None = None, **tag: object) -> None:
        bxy = pos[b] if b_xy is None else b_xy
        routes.append(dict(a=a, b=b, zone=zone, verts=g.path(pos[a], bxy, ceiling=ceiling), tag=tag))

    # each main keeps below the grade that drives it, less MAIN_COVER_M of head to spare
    add("WTP", "PS1-S", "WTP", ground["WTP"] + CLEAR_WELL_M - MAIN_COVER_M)
    for sid, st in stations.items():
        if st["src"] is not None:
            add(st["src"], st["suction"][0], st["src"], ground[st["src"]] - MAIN_COVER_M, suction_of=sid)
        for (out, _), rid in zip(st["discharge"], st["fills"]):
            add(out, rid, sid, ground[rid], rising_of=(sid, rid))
    for rid, src in LAYOUT["gravity_fill"].items():
        add(src, rid, src, ground[src] - MAIN_COVER_M, gravity_fill=rid)
    for s in LAYOUT["settlements"]:
        add(s.zone, f"entry:{s.id}", s.zone, ground[s.zone] - MAIN_COVER_M, b_xy=areas[s.id].entry, entry_of=s.id)
    return routes


def _park(g: _Ground, area: _Area, trunks: list[tuple[int, int, np.ndarray]]) -> tuple:
    """The food park's hub (buildable ground nearest its nominal centre) and its main from the nearest trunk vertex."""
    fp = LAYOUT["food_park"]
    ks = np.flatnonzero(area.ok.ravel())
    xy = np.array([area.xy(k) for k in ks])
    hub = tuple(xy[int(np.argmin(np.hypot(xy[:, 0] - fp["x"], xy[:, 1] - fp["y"])))])
    ends = np.array([v[-1] for _, _, v in trunks] + [area.entry])
    src = tuple(ends[int(np.argmin(np.hypot(ends[:, 0] - hub[0], ends[:, 1] - hub[1])))])
    return hub, src, g.path(src, hub)


def _plan(g: _Ground) -> _Plan:
    """Sites, mains and footprints, with the trunk reach calibrated to the published main length."""
    sites = _sites(g)
    stations = _station_nodes(sites)
    areas = _areas(g, sites)
    trans = _transmission(g, sites, stations, areas)
    trans_km = sum(_line_km(r["verts"]) for r in trans)
    fp_id = LAYOUT["food_park"]["settlement"]

    def mains(scale: float) -> tuple[float, dict, tuple]:
        trunks = {sid: area.trunk(scale) for sid, area in areas.items()}
        park = _park(g, areas[fp_id], trunks[fp_id])
        km = trans_km + sum(_line_km(v) for ch in trunks.values() for _, _, v in ch) + _line_km(park[2])
        return km, trunks, park

    lo, hi = 0.3, 3.0
    best = None
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        km, trunks, park = mains(mid)
        if best is None or abs(km - MAIN_KM) < abs(best[0] - MAIN_KM):
            best = (km, trunks, park, mid)
        if abs(km - MAIN_KM) <= 0.002 * MAIN_KM:
            break
        if km < MAIN_KM:
            lo = mid
        else:
            hi = mid
    km, trunks, park, scale = best
    log.debug("trunk reach %.3f × r: mains %.2f km", scale, km)
    if abs(km - MAIN_KM) > 0.004 * MAIN_KM:
        raise RuntimeError(f"mains come to {km:.2f} km, not {MAIN_KM} km: change the groups or radii in LAYOUT")
    footprints = {}
    fp = LAYOUT["food_park"]
    for sid, area in areas.items():
        kind = area.spec.kind
        roads = shapely.union_all([LineString(v) for _, _, v in trunks[sid]] + [Point(area.entry)])
        shape = roads.buffer(FOOTPRINT_KM[kind], quad_segs=4)
        if sid == fp_id:
            shape = shape.union(Point(park[0]).buffer(fp["r"], quad_segs=8))
        shape = shape.intersection(_ok_polygon(area)).intersection(area.cell)
        shape = shape.buffer(0.03, quad_segs=2).buffer(-0.03, quad_segs=2).intersection(area.cell)
        # keep the pieces the roads reach (a band of ground can leave pockets beside them)
        reach = roads.buffer(0.03) if sid != fp_id else roads.buffer(0.03).union(Point(park[0]).buffer(0.03))
        parts = [q for q in shapely.get_parts(shapely.simplify(shape, 0.005)) if q.intersects(reach)]
        footprints[sid] = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return _Plan(sites=sites, stations=stations, transmission=trans, trunks=trunks, park_hub=park[0], park_src=park[1],
                 park_main=park[2], footprints=footprints)


def _branch_points(plan: _Plan, g: _Ground, factor: float) -> dict[str, np.ndarray]:
    fp = LAYOUT["food_park"]
    out = {}
    for s in LAYOUT["settlements"]:
        sp = BRANCH_SPACING_KM[s.kind] * factor
        pts = _sample_points(plan.footprints[s.id], sp, s.id, grid=s.kind == "community")
        if s.id == fp["settlement"] and len(pts):
            park = Point(plan.park_hub).buffer(fp["r"])
            pts = pts[~shapely.contains_xy(park, pts[:, 0], pts[:, 1])]
        out[s.id] = pts
    return out


#: Nominal spacing of demand nodes on branches (km), scaled together to reach the published branch length.
BRANCH_SPACING_KM = {"community": 0.15, "village": 0.19}
LOOP_SHARE = 0.30  # communities: share of the street grid's other links added back as loops


def _build_mains(plan: _Plan, g: _Ground) -> _Builder:
    b = _Builder()
    b.node(*plan.sites["WTP"], kind="plant", zone="WTP", nid="WTP")
    for rid in LAYOUT["reservoirs"]:
        b.node(*plan.sites[rid], kind="reservoir", zone=rid, nid=rid)
    for sid, st in plan.stations.items():
        b.node(*st["suction"][1], kind="pump_station", zone=sid, nid=st["suction"][0])
        for nid, xy in st["discharge"]:
            b.node(*xy, kind="pump_station", zone=sid, nid=nid)
    specs = {s.id: s for s in LAYOUT["settlements"]}
    entries = {}
    for r in plan.transmission:
        if "entry_of" in r["tag"]:
            s = specs[r["tag"]["entry_of"]]
            entries[s.id] = b.node(*r["verts"][-1], zone=s.zone, settlement=s.id)
            bid = entries[s.id]
        else:
            bid = r["b"]
        seg = TRANS_SEG_KM
        for p in b.line(r["a"], bid, r["verts"], cls="main", zone=r["zone"], seg_km=seg):
            for k, v in r["tag"].items():
                if k != "entry_of":
                    p[k] = v
    fp = LAYOUT["food_park"]
    for s in LAYOUT["settlements"]:
        at = {}
        for c_from, c_to, verts in plan.trunks[s.id]:
            a = at.get(c_from) or entries[s.id]
            at.setdefault(c_from, a)
            if c_to not in at:
                at[c_to] = b.node(*verts[-1], zone=s.zone, settlement=s.id)
            b.line(a, at[c_to], verts, cls="main", zone=s.zone, seg_km=TRUNK_SEG_KM, settlement=s.id)
        if s.id == fp["settlement"]:
            src = next(nid for nid, n in b.nodes.items() if n["settlement_id"] == s.id
                       and math.isclose(n["x"], plan.park_src[0]) and math.isclose(n["y"], plan.park_src[1]))
            hub = b.node(*plan.park_hub, zone=s.zone, settlement=s.id, nid=None)
            b.nodes[hub]["park_hub"] = True
            b.line(src, hub, plan.park_main, cls="main", zone=s.zone, seg_km=TRUNK_SEG_KM, settlement=s.id)
    return b


def _branches(b: _Builder, plan: _Plan, g: _Ground, factor: float, *, add: bool) -> float:
    """Lay (or, with add=False, only measure) the branch networks at `factor` × the nominal spacing (km)."""
    fp = LAYOUT["food_park"]
    pts_by = _branch_points(plan, g, factor)
    total = 0.0
    for s in LAYOUT["settlements"]:
        trunk_ids = [nid for nid, n in b.nodes.items() if n["settlement_id"] == s.id and not n.get("park_hub")]
        anchors = np.array([(b.nodes[n]["x"], b.nodes[n]["y"]) for n in trunk_ids])
        pts = pts_by[s.id]
        if len(pts):
            d_anchor = np.min(np.hypot(pts[:, 0][:, None] - anchors[:, 0], pts[:, 1][:, None] - anchors[:, 1]), axis=1)
            pts = pts[d_anchor > 0.06]
        zp, za = g.z(pts[:, 0], pts[:, 1]), g.z(anchors[:, 0], anchors[:, 1])
        edges = _branch_tree(pts, zp, anchors, za)
        for i, j in edges:
            q = pts[j] if j >= 0 else anchors[-1 - j]
            total += math.hypot(*(pts[i] - q))
        pids = [b.node(x, y, zone=s.zone, settlement=s.id) for x, y in pts] if add else []
        if add:
            for i, j in edges:
                b.pipe(pids[i], pids[j] if j >= 0 else trunk_ids[-1 - j], cls="branch", zone=s.zone)
        if s.kind == "community":
            # partly looped: add back a share of the grid's neighbour links
            rng2 = _rng("loops", s.id)
            sp = BRANCH_SPACING_KM[s.kind] * factor
            tree_pairs = {tuple(sorted((i, j))) for i, j in edges if j >= 0}
            from scipy.spatial import cKDTree

            pairs = sorted(cKDTree(pts).query_pairs(sp * 1.05)) if len(pts) else []
            for i, j in pairs:
                if (i, j) not in tree_pairs and rng2.random() < LOOP_SHARE:
                    total += math.hypot(*(pts[i] - pts[j]))
                    if add:
                        b.pipe(pids[i], pids[j], cls="branch", zone=s.zone)
    # food park: industrial nodes on a tree from the hub
    s2 = fp["settlement"]
    hub = next(nid for nid, n in b.nodes.items() if n.get("park_hub"))
    rng = _rng("park")
    park_poly = plan.footprints[s2].intersection(Point(plan.park_hub).buffer(fp["r"]))
    cand = np.column_stack([plan.park_hub[0] + rng.uniform(-fp["r"], fp["r"], 400),
                            plan.park_hub[1] + rng.uniform(-fp["r"], fp["r"], 400)])
    cand = cand[shapely.contains_xy(park_poly, cand[:, 0], cand[:, 1])]
    park_pts: list[np.ndarray] = []
    for c in cand:
        if all(math.dist(c, q) >= 0.08 for q in park_pts) and math.dist(c, plan.park_hub) >= 0.06:
            park_pts.append(c)
        if len(park_pts) == fp["nodes"]:
            break
    arr = np.asarray(park_pts)
    hub_xy = np.array([plan.park_hub])
    edges = _branch_tree(arr, g.z(arr[:, 0], arr[:, 1]), hub_xy, g.z(hub_xy[:, 0], hub_xy[:, 1]))
    for i, j in edges:
        total += math.hypot(*(arr[i] - (arr[j] if j >= 0 else hub_xy[0])))
    if add:
        park_ids = []
        for x, y in arr:
            nid = b.node(x, y, zone=b.nodes[hub]["zone"], settlement=s2)
            b.nodes[nid]["demand_category"] = "industrial"
            park_ids.append(nid)
        for i, j in edges:
            b.pipe(park_ids[i], park_ids[j] if j >= 0 else hub, cls="branch", zone=b.nodes[hub]["zone"])
    return total


def _layout_network(g: _Ground) -> tuple[_Builder, _Plan]:
    """Mains along least-cost paths, then branches at the spacing that reproduces the published length."""
    plan = _plan(g)
    b = _build_mains(plan, g)
    lo, hi = 0.3, 3.0
    best = None
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        km = _branches(b, plan, g, mid, add=False)
        if best is None or abs(km - BRANCH_KM) < abs(best[0] - BRANCH_KM):
            best = (km, mid)
        if abs(km - BRANCH_KM) <= 0.002 * BRANCH_KM:
            break
        if km > BRANCH_KM:
            lo = mid
        else:
            hi = mid
    km, factor = best
    log.debug("branch spacing × %.3f: branches %.2f km", factor, km)
    if abs(km - BRANCH_KM) > 0.004 * BRANCH_KM:
        raise RuntimeError(f"branches come to {km:.2f} km, not {BRANCH_KM} km: change the footprints in LAYOUT")
    _branches(b, plan, g, factor, add=True)
    plan.branch_factor = factor  # type: ignore[attr-defined]
    return b, plan


def _frame(b: _Builder, plan: _Plan, design: dict) -> Network:
    e0, n0 = _origin()
    polys, stations, sites = plan.footprints, plan.stations, plan.sites

    def xy(x: float, y: float) -> tuple[float, float]:
        return (round(e0 + 1000.0 * x, 3), round(n0 + 1000.0 * y, 3))

    nodes = pd.DataFrame(list(b.nodes.values())).drop(columns=["park_hub"], errors="ignore")
    geom = [Point(xy(x, y)) for x, y in zip(nodes.pop("x"), nodes.pop("y"))]
    nodes = gpd.GeoDataFrame(nodes, geometry=geom, crs=CRS)
    nodes["population"] = nodes["population"].astype("int64")

    # tortuosity (alignment length / straight line between the pipe's ends), reported, not imposed
    chord = {"main": 0.0, "branch": 0.0}
    along = {"main": 0.0, "branch": 0.0}
    for p in b.pipes:
        chord[p["cls"]] += float(np.hypot(*(p["verts"][-1] - p["verts"][0])))
        along[p["cls"]] += _line_km(p["verts"])
    factor = {k: along[k] / chord[k] for k in chord}
    rows = []
    villages = {s.id for s in LAYOUT["settlements"] if s.kind == "village"}
    counters = {"main": 0, "branch": 0}
    for p in b.pipes:
        counters[p["cls"]] += 1
        pid = f"{'M' if p['cls'] == 'main' else 'B'}{counters[p['cls']]:05d}"
        line = LineString([xy(x, y) for x, y in p["verts"]])
        in_village = all(b.nodes[e]["settlement_id"] in villages for e in (p["from_node"], p["to_node"]))
        mat = "DI" if p["cls"] == "main" and not in_village else "PE"
        dn = _size(p["q"], p["cls"], mat)
        rows.append(dict(id=pid, from_node=p["from_node"], to_node=p["to_node"], **{"class": p["cls"]},
                         diameter_mm=float(dn), material=mat, roughness_c=MATERIALS[mat][0],
                         length_m=round(line.length, 2), zone=p["zone"], status="OPEN",
                         wall_coeff_m_d=MATERIALS[mat][1], design_flow_ls=round(p["q"] * 1000, 3), geometry=line))
    pipes = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)

    # facilities
    lv = TANK_LEVELS
    fac_rows = []
    z = {nid: n["elevation_m"] for nid, n in b.nodes.items()}
    plant_head = b.nodes["WTP"]["head_m"]
    fac_rows.append(dict(id="WTP", kind="plant", name_zh="通惠水厂", name_en="Tonghui Water Plant", node_id="WTP",
                         zone="WTP", head_m=plant_head, capacity_m3d=LAYOUT["plant_capacity_m3d"],
                         geometry=Point(xy(*sites["WTP"]))))
    pump_rows = []
    for sid, (src, fills) in LAYOUT["stations"].items():
        st = stations[sid]
        site = Site(*sites[sid])
        q_tot = sum(design["pump_q"][(sid, r)] for r in fills)
        heads = []
        for k, ((out, _), rid) in enumerate(zip(st["discharge"], fills), start=1):
            q = design["pump_q"][(sid, rid)]
            src_head = plant_head if src is None else z[src] + lv["on"]
            loss = 0.0
            rising = [p for p in b.pipes if p.get("rising_of") == (sid, rid)]
            suction = [p for p in b.pipes if p.get("suction_of") == sid] if src else []
            for p in rising + suction:
                length = _line_km(p["verts"]) * 1000.0
                dn = _size(p["q"], "main", "DI") / 1000.0
                loss += _hw_unit_headloss(p["q"], dn, MATERIALS["DI"][0]) * length
            head = round(z[rid] + lv["max"] - src_head + loss + PUMP_MARGIN_M, 1)
            heads.append(head)
            pump_rows.append(dict(id=f"{sid}-P{k}", station_id=sid, from_node=st["suction"][0], to_node=out,
                                  role="duty", design_flow_ls=round(q * 1000, 2), design_head_m=head,
                                  efficiency=0.75, status="OPEN", control_node=rid, on_below_m=lv["on"],
                                  off_above_m=lv["off"], geometry=Point(xy(site.x + 0.02 * k, site.y - 0.02))))
        k = len(fills) + 1
        pump_rows.append(dict(id=f"{sid}-P{k}", station_id=sid, from_node=st["suction"][0], to_node=st["discharge"][0][0],
                              role="standby", design_flow_ls=pump_rows[-len(fills)]["design_flow_ls"],
                              design_head_m=heads[0], efficiency=0.75, status="CLOSED", control_node=None,
                              on_below_m=np.nan, off_above_m=np.nan,
                              geometry=Point(xy(site.x + 0.02 * k, site.y - 0.02))))
        names = {"PS1": ("水厂送水泵站", "Plant high-lift pump station")}
        zh, en = names.get(sid, (f"{sid[2:]}号加压泵站", f"Booster pump station {sid[2:]}"))
        fac_rows.append(dict(id=sid, kind="pump_station", name_zh=zh, name_en=en, node_id=st["suction"][0], zone=sid,
                             design_flow_ls=round(q_tot * 1000, 2), design_head_m=max(heads),
                             fills=",".join(fills), source=src or "WTP", geometry=Point(xy(site.x, site.y))))
    for rid in LAYOUT["reservoirs"]:
        site = Site(*sites[rid])
        vol = STORAGE_HOURS * 3600.0 * design["through"][rid]
        usable = lv["max"] - lv["min"]
        diam = round(math.sqrt(4 * vol / (math.pi * usable)), 1)
        fac_rows.append(dict(id=rid, kind="reservoir", name_zh=f"{rid[1:]}号水池", name_en=f"Reservoir {rid[1:]}",
                             node_id=rid, zone=rid, bottom_elev_m=z[rid], diameter_m=diam, min_level_m=lv["min"],
                             max_level_m=lv["max"], init_level_m=lv["init"],
                             volume_m3=round(math.pi * diam * diam / 4 * lv["max"], 0),
                             geometry=Point(xy(site.x, site.y))))
    facilities = gpd.GeoDataFrame(fac_rows, geometry="geometry", crs=CRS)
    pumps = gpd.GeoDataFrame(pump_rows, geometry="geometry", crs=CRS)

    st_rows = []
    for s in LAYOUT["settlements"]:
        poly = polys[s.id]
        st_rows.append(dict(id=s.id, name_zh=s.name_zh, name_en=s.name_en, kind=s.kind, population=s.population,
                            name_verified=s.verified, storeys=s.storeys, zone=s.zone,
                            geometry=shapely.transform(poly, lambda c: np.round(
                                np.column_stack([e0 + 1000.0 * c[:, 0], n0 + 1000.0 * c[:, 1]]), 3))))
    settlements = gpd.GeoDataFrame(st_rows, geometry="geometry", crs=CRS)

    patterns = pd.DataFrame([(k, h, v) for k in sorted(PATTERNS) for h, v in enumerate(PATTERNS[k])],
                            columns=["pattern", "hour", "multiplier"])
    meta = pd.DataFrame(sorted({
        "name": NAME,
        "title_zh": "綦江区通惠街道城乡供水一体化工程(山地参考模型)",
        "title_en": "Tonghui Subdistrict urban-rural integrated water supply (hillside reference model)",
        "crs": CRS,
        "generator": "watersupply.generator_hillside.generate_tonghui_hillside",
        "seed": str(SEED),
        "duration_h": "72",
        "plant_chlorine_mgL": "1.0",
        "bulk_coeff_per_day": "-0.5",
        "tank_initial_chlorine_mgL": "0.5",
        "main_tortuosity": f"{factor['main']:.4f}",
        "branch_tortuosity": f"{factor['branch']:.4f}",
        "dem": DEM_NAME,
        "dem_kind": "synthetic (watersupply.terrain.synthetic_dem)",
    }.items()), columns=["key", "value"])
    return {"nodes": nodes, "pipes": pipes, "pumps": pumps, "facilities": facilities, "settlements": settlements,
            "patterns": patterns, "metadata": meta}


def _engineer(net: Network) -> Network:
    """The engineering pass over the laid-out network, each step a library function any network can use.

    1. Pressure zones from the ground (:func:`watersupply.zones.plan_zones` /
       :func:`~watersupply.zones.apply_zones`): a PRV wherever static head at a tap would
       exceed its limit (rural 40 m, urban 45 m).
    2. Catalogue sizes (:func:`watersupply.pipe_catalogue.size_pipes`): PE dn and pressure class
       (or ductile-iron DN) by design flow and the zoned static head; the communities' networks
       are the town's existing assets, kept (:data:`EXISTING_ASSETS`). A PRV takes the inner
       diameter of the pipe it sits on.
    3. Multi-point pump head and efficiency curves sized to each duty
       (:func:`watersupply.pumpcurves.fit_pump_curves`).
    4. Operations (:mod:`watersupply.operations`): an altitude (float) valve on every
       gravity-filled reservoir's inlet, chlorine wall decay by material, and the plant as a
       clear well fed at its production capacity, production stopped and resumed by the
       clear well's level (:data:`CLEAR_WELL_STOP_M`, :data:`CLEAR_WELL_RESUME_M`).
    5. Fire and losses: hydrants (:func:`watersupply.hydrants.add_hydrants`, GB 50974 ≤ 120 m
       on mains ≥ DN100 in the communities and the village centres), the unforeseen-demand
       allowance (:func:`watersupply.leakage.add_unforeseen_demand`, GB 50013 10 %, added
       first) and background-leakage emitters calibrated to the CJJ 92 rate
       (:func:`watersupply.leakage.add_leakage`, last: it solves the finished network).
    """
    from .hydrants import add_hydrants
    from .leakage import add_leakage, add_unforeseen_demand
    from .operations import add_clear_well, add_float_valves, add_wall_decay
    from .pipe_catalogue import size_pipes
    from .pumpcurves import fit_pump_curves
    from .zones import apply_zones, plan_zones

    net = add_unforeseen_demand(net)
    net = _inherit_settlements(apply_zones(net, plan_zones(net)))
    net = _reinforce(size_pipes(_village_fire_mains(net), existing=EXISTING_ASSETS))
    if "control_valves" in net and len(net["control_valves"]):
        pipes = net["pipes"]
        cv = net["control_valves"].copy()
        size = {}
        for frm in cv["from_node"]:
            hit = pipes.loc[(pipes["from_node"] == frm) | (pipes["to_node"] == frm), "diameter_mm"]
            size[frm] = float(hit.max()) if len(hit) else np.nan
        cv["diameter_mm"] = [size[f] if np.isfinite(size[f]) else d for f, d in zip(cv["from_node"], cv["diameter_mm"])]
        net["control_valves"] = cv
    net = fit_pump_curves(net)
    net = add_float_valves(net)
    net = add_wall_decay(net)
    cap = float(net["facilities"].set_index("id").loc["WTP", "capacity_m3d"])
    net = add_clear_well(net, source_head_m=CLEAR_WELL_INLET_HEAD_M, volume_m3=CLEAR_WELL_SHARE * cap,
                         stop_above_m=CLEAR_WELL_STOP_M, resume_below_m=CLEAR_WELL_RESUME_M)
    # the clear well's inlet fittings are part of the treatment works: design flow = production, kept as built
    pipes = net["pipes"].copy()
    new = pipes["design_flow_ls"].isna()
    pipes.loc[new, "design_flow_ls"] = round(cap / 86.4, 3)
    pipes["existing"] = pipes["existing"].astype(object)
    pipes.loc[new, "existing"] = True
    pipes["existing"] = pipes["existing"].astype(bool)
    pipes["reinforced"] = pipes["reinforced"].astype(object).where(pipes["reinforced"].notna(), False).astype(bool)
    # existing pipes are laid out at nominal DN: their dn is that size (hydrants go on dn >= 100)
    pipes["dn_mm"] = pipes["dn_mm"].fillna(pipes["diameter_mm"])
    net["pipes"] = pipes
    net = _own_mains_only(add_hydrants(net))
    net = {k: _numeric_columns(v) for k, v in net.items()}
    return add_leakage(net)


#: Rounds of :func:`_reinforce` (each one EPANET run of the design day).
REINFORCE_ROUNDS = 4


def _reinforce(net: Network) -> Network:
    """Existing community pipes the zoning overloads are replaced (sized and priced as new pipe).

    Closing the zone boundaries reroutes the communities' looped networks, so some existing pipes
    (DN50 branches) end up carrying a far end's peak. After each EPANET run of the design day (PDA,
    24 h) an existing pipe whose peak unit headloss exceeds the sizing limit of new pipe of its
    class (:data:`watersupply.pipe_catalogue.I_MAX_BY_CLASS`) gets that peak as its design flow and
    is re-sized from the catalogue (column ``reinforced``); repeated until none is left or
    :data:`REINFORCE_ROUNDS` runs.
    """
    from .hydraulics import hazen_williams_headloss
    from .model import to_wntr
    from .pipe_catalogue import I_MAX_BY_CLASS, size_pipes
    from .simulation import _epanet, _hours

    import tempfile

    pipes = net["pipes"].copy()
    pipes["reinforced"] = False
    net = dict(net)
    net["pipes"] = pipes
    for _ in range(REINFORCE_ROUNDS):
        wn = to_wntr(net, duration_h=24.0)
        wn.options.quality.parameter = "NONE"
        with tempfile.TemporaryDirectory(prefix="ws_reinforce_") as tmp:
            res = _epanet(wn, f"{tmp}/r", "reinforcement run")
        pipes = net["pipes"].copy()
        ids = pipes["id"].astype(str)
        q = _hours(res.link["flowrate"]).abs().max().reindex(ids).fillna(0.0).to_numpy()
        unit = hazen_williams_headloss(q, length_m=1.0, roughness_c=pipes["roughness_c"].to_numpy(float),
                                       diameter_m=pipes["diameter_mm"].to_numpy(float) / 1000.0) * 1000.0
        limit = pipes["class"].map(dict(I_MAX_BY_CLASS)).fillna(max(I_MAX_BY_CLASS.values())).to_numpy(float)
        hit = pipes["existing"].astype(bool).to_numpy() & (unit > limit) \
            & ~pipes["status"].astype(str).str.upper().eq("CLOSED").to_numpy()
        if not hit.any():
            break
        pipes.loc[hit, "design_flow_ls"] = np.round(q[hit] * 1000.0, 3)
        pipes.loc[hit, "existing"] = False
        pipes.loc[hit, "reinforced"] = True
        net["pipes"] = pipes
        net = size_pipes(net)
    return net


def _village_fire_mains(net: Network) -> Network:
    """The village trunk mains in each village centre carry its GB 50974 fire flow (column
    ``fire_flow_ls``): sized as hydrant mains (≥ dn110, :func:`watersupply.pipe_catalogue.select_pipe`),
    so the centres get hydrants. The communities' mains are the town's (existing, DN150 and up)."""
    from .hydrants import VILLAGE_CENTRE_RADIUS_M, _areas, fire_flow_ls

    pipes = net["pipes"].copy()
    st = net["settlements"].set_index("id")
    home = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["settlement_id"].astype(object)))
    centres = _areas(net, VILLAGE_CENTRE_RADIUS_M)
    fire = np.zeros(len(pipes))
    for sid in st.index[st["kind"] == "village"]:
        own = (pipes["class"] == "main") & pipes["from_node"].astype(str).map(home).eq(sid) \
            & pipes["to_node"].astype(str).map(home).eq(sid) & pipes.intersects(centres[sid])
        fire[own.to_numpy()] = fire_flow_ls(float(st.at[sid, "population"]))
    pipes["fire_flow_ls"] = fire
    out = dict(net)
    out["pipes"] = pipes
    return out


def _own_mains_only(net: Network) -> Network:
    """Hydrants on a settlement's own mains only (both ends of the pipe in the settlement), numbered
    afresh: not on the transmission and rising mains that cross a settlement, whose pressure is the
    pump's or sits just below a zone's PRV."""
    hyd = net["hydrants"]
    home = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["settlement_id"].astype(object)))
    ends = net["pipes"].set_index(net["pipes"]["id"].astype(str))[["from_node", "to_node"]]
    keep = [home.get(str(ends.at[str(p), "from_node"])) == s and home.get(str(ends.at[str(p), "to_node"])) == s
            for p, s in zip(hyd["pipe"], hyd["settlement_id"].astype(str))]
    hyd = hyd[keep].reset_index(drop=True)
    hyd["id"] = [f"H{i:04d}" for i in range(1, len(hyd) + 1)]
    out = dict(net)
    out["hydrants"] = hyd
    return out


def _inherit_settlements(net: Network) -> Network:
    """Nodes the zoning added (a PRV's upstream node, a break tank's nodes) take the settlement of the
    node the device feeds, so the pipes up to them count as the settlement's own (existing assets in
    the communities, not re-sized as new pipe)."""
    nodes = net["nodes"].copy()
    sid = nodes["settlement_id"].astype(object)
    known = dict(zip(nodes["id"].astype(str), sid))
    feeds: dict[str, str] = {}
    for layer in ("control_valves", "pipes"):
        df = net.get(layer)
        if df is not None and len(df):
            for a, b in zip(df["from_node"].astype(str), df["to_node"].astype(str)):
                feeds.setdefault(a, b)
    added = nodes["id"].astype(str).str.match(r"^(PRV|BPT)-\d+-(U|W)$|^BPT-\d+$") & sid.isna()
    for i in nodes.index[added]:
        nid, seen = str(nodes.at[i, "id"]), set()
        while nid in feeds and nid not in seen and not isinstance(known.get(nid), str):
            seen.add(nid)
            nid = feeds[nid]
        if isinstance(known.get(nid), str):
            nodes.at[i, "settlement_id"] = known[nid]
    out = dict(net)
    out["nodes"] = nodes
    return out


def _design_flows_with_allowances(b: _Builder, stations: dict) -> dict:
    """Design flows, pump duties and reservoir throughputs on the demand the network will carry: the
    users' demand plus the unforeseen allowance (GB 50013) plus leakage at the CJJ 92 rate (leakage
    is that share of the water supplied). The nodes' demands are left as they were."""
    from .leakage import LEAKAGE_RATE_TARGET, UNFORESEEN_SHARE

    factor = (1.0 + UNFORESEEN_SHARE) / (1.0 - LEAKAGE_RATE_TARGET)
    saved = {n: v["base_demand_m3d"] for n, v in b.nodes.items()}
    try:
        for n, v in b.nodes.items():
            v["base_demand_m3d"] = saved[n] * factor
        return _design_flows(b, stations)
    finally:
        for n, v in b.nodes.items():
            v["base_demand_m3d"] = saved[n]


def _numeric_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every value is a number (or empty) as float, not text: rows added by the steps
    above can leave a numeric column of object dtype, which the GeoPackage would store as text."""
    out = df.copy()
    for col in out.columns:
        if col == "geometry" or pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            continue
        vals = out[col].dropna()
        if len(vals) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                             for v in vals):
            out[col] = pd.to_numeric(out[col]).astype(float)
    return out


#: Pre-existing networks reused by the 2020 works (not re-sized, not priced): the town's (assumed).
EXISTING_ASSETS = "communities"


def _origin() -> tuple[float, float]:
    """EPSG:4545 coordinates (m) of the local frame's origin."""
    e0, n0 = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(*ORIGIN_LONLAT)
    return float(e0), float(n0)


def tonghui_terrain() -> Terrain:
    """The synthetic DEM of the Tonghui service area (:data:`TERRAIN`, aligned to the local frame)."""
    return synthetic_dem(TERRAIN, origin_xy=_origin())


def _elevations(b: _Builder, dem: str | Path) -> None:
    """Ground elevation of every node, sampled from the DEM file exactly as ``watersupply build --dem`` does."""
    from .build import sample_dem

    e0, n0 = _origin()
    ids = list(b.nodes)
    pts = gpd.GeoDataFrame({"id": ids}, geometry=[Point(round(e0 + 1000.0 * b.nodes[i]["x"], 3),
                                                        round(n0 + 1000.0 * b.nodes[i]["y"], 3)) for i in ids], crs=CRS)
    z = sample_dem(pts, dem)
    for nid, v in zip(ids, z.to_numpy()):
        b.nodes[nid]["elevation_m"] = round(float(v), 2)
    b.nodes["WTP"]["head_m"] = round(b.nodes["WTP"]["elevation_m"] + CLEAR_WELL_M, 2)


def generate_tonghui_hillside(*, dem: str | Path | None = None) -> Network:
    """Generate the Tonghui reference network (layers in EPSG:4545).

    Parameters
    ----------
    dem
        A DEM (GeoTIFF, EPSG:4545 or any CRS GDAL knows) covering the service area; by
        default the synthetic :func:`tonghui_terrain`, written to a temporary file so that
        node elevations are sampled through the same code path as a user's DEM
        (:func:`watersupply.build.sample_dem`).

    Mains follow least-cost paths over the ground; the reach of the trunk mains and
    the spacing of the demand nodes are calibrated so that the geometry lengths equal
    the published 177 km and 262 km (nothing is stretched).
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if dem is None:
            t = tonghui_terrain()
            dem = write_dem(t, Path(tmp) / DEM_NAME, description=DEM_DESCRIPTION)
        else:
            t = read_dem(dem)
        g = _Ground(t, _origin())
        b, plan = _layout_network(g)
        _elevations(b, dem)
    _assign_demands(b)
    design = _design_flows_with_allowances(b, plan.stations)
    net = _engineer(_frame(b, plan, design))
    net["valves"] = _valves(net)
    return net


DEM_DESCRIPTION = ("SYNTHETIC terrain of the Tonghui service area (not surveyed): watersupply.terrain.synthetic_dem "
                   "with watersupply.generator_hillside.TERRAIN; see networks/tonghui/README.md")


def write_tonghui_hillside(folder: str | Path) -> dict[str, Path]:
    """Write the synthetic DEM, then generate the network from it: ``tonghui_dem.tif``,
    ``tonghui.gpkg``, ``tonghui.inp`` in `folder`."""
    from .io import write_network
    from .model import to_wntr, write_inp

    folder = Path(folder)
    dem = write_dem(tonghui_terrain(), folder / DEM_NAME, description=DEM_DESCRIPTION)
    net = generate_tonghui_hillside(dem=dem)
    gpkg = write_network(net, folder / f"{NAME}.gpkg")
    inp = write_inp(to_wntr(net), folder / f"{NAME}.inp")
    return {"dem": dem, "gpkg": gpkg, "inp": inp}
