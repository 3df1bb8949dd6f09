"""Generate the Tonghui reference network deterministically from documented parameters.

The published facts (1 plant, 7 pump stations, 9 reservoirs in a radial main
network; 177 km of mains and 262 km of branches; 7 villages and 4 communities)
are reproduced exactly; everything else is an engineering assumption written
down in :data:`LAYOUT` and the module constants, and documented in
``networks/tonghui/README.md``. Regenerating gives byte-identical files.

Geometry is laid out in a local frame (km east/north of 106.70°E, 29.02°N) and
projected to CGCS2000 / 3-degree Gauss-Kruger CM 108E (EPSG:4545). Pipes follow
S-shaped road alignments whose tortuosity is chosen per class so that the
lengths measured from the geometry match the published totals.

Examples
--------
>>> from watersupply.generator import generate_tonghui
>>> net = generate_tonghui()
>>> sorted(net)[:3]
['facilities', 'metadata', 'nodes']
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from .hydraulics import hazen_williams_headloss
from .schema import Network
from .standards import DIURNAL_PATTERNS, PATTERN_OF_KIND, PER_CAPITA_DESIGN_L_D

__all__ = ["LAYOUT", "CRS", "generate_tonghui", "write_tonghui"]

log = logging.getLogger(__name__)

CRS = "EPSG:4545"  # CGCS2000 / 3-degree Gauss-Kruger CM 108E
ORIGIN_LONLAT = (106.70, 29.02)
SEED = 20200101  # the system was built in 2020

#: Published totals (seed article) — reproduced from geometry within ±0.5 %.
MAIN_KM = 177.0
BRANCH_KM = 262.0

#: Design per-capita demand, peak day (L/person/day): :data:`watersupply.standards.PER_CAPITA_DESIGN_L_D`.
PER_CAPITA_L = PER_CAPITA_DESIGN_L_D
#: Food industrial park, existing demand (m³/d) — assumed; see README.
FOOD_PARK_M3D = 1500.0

#: Hourly demand patterns (24 values, normalised to mean 1) and the pattern of each settlement kind:
#: :data:`watersupply.standards.DIURNAL_PATTERNS`, :data:`watersupply.standards.PATTERN_OF_KIND`.
PATTERNS = DIURNAL_PATTERNS
PATTERN_OF = PATTERN_OF_KIND

#: Standard diameters (mm): transmission and community mains ductile iron DN150–DN500;
#: village trunk mains PE DN100–DN200 (smaller than FACTS' DN150 floor: DN150 trunks carrying
#: a few L/s hold water for a day and lose their chlorine); branches PE DN50–DN150.
MAIN_DN = [150, 200, 250, 300, 350, 400, 450, 500]
VILLAGE_MAIN_DN = [100, 125, 150, 200]
BRANCH_DN = [50, 75, 100, 125, 150]
#: Hazen-Williams C (EPANET 2.2 manual tbl 3.2; Chinese practice) and first-order wall decay
#: (m/d, assumed: cement-lined ductile iron reacts a little, PE practically not at all).
MATERIALS = {"DI": (130.0, -0.05), "PE": (145.0, 0.0)}
#: Sizing limits at design flow: (max velocity m/s, max unit headloss m/km).
SIZING = {"main": (1.2, 1.5), "branch": (1.0, 4.0)}
#: Reservoir design: hours of average throughput stored; operating levels (m).
STORAGE_HOURS = 10.0
TANK_LEVELS = {"min": 0.3, "max": 4.0, "on": 1.8, "off": 3.7, "init": 3.0}
PUMP_FACTOR = 1.35  # pump design flow / average peak-day throughput (≈18 h/day running)
PUMP_MARGIN_M = 3.0


@dataclass(frozen=True)
class Site:
    """A facility site in the local frame (km) with its ground elevation (m)."""

    x: float
    y: float
    z: float


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
    r: float          # radius of the settlement area (km)
    z: float          # terrace elevation (m); nodes lie within ±RELIEF_M
    zone: str         # feeding reservoir
    storeys: int
    groups: int       # village groups (村民小组) / neighbourhoods reached by trunk mains


#: The layout (assumed; FACTS "consistent starting schematic"). Local km east/north
#: of 106.70°E, 29.02°N. Reservoir z is the tank bottom elevation.
LAYOUT = {
    "plant": Site(-4.2, 0.2, 212.0),
    "plant_head_m": 215.0,
    "plant_capacity_m3d": 20000.0,
    "reservoirs": {
        "R1": Site(-2.3, 0.9, 310.0), "R2": Site(-2.5, -0.9, 302.0), "R3": Site(-0.2, 3.6, 360.0),
        "R4": Site(0.6, 0.9, 380.0), "R5": Site(2.4, 5.3, 430.0), "R6": Site(-0.5, -3.2, 350.0),
        "R7": Site(3.5, 2.2, 420.0), "R8": Site(2.7, -3.4, 460.0), "R9": Site(4.3, -1.9, 410.0),
    },
    # station: (site, source reservoir (None = plant clear well), filled reservoirs)
    "stations": {
        "PS1": (Site(-4.0, 0.3, 212.0), None, ("R1", "R2")),
        "PS2": (Site(-1.1, 1.9, 275.0), "R1", ("R3",)),
        "PS3": (Site(-0.9, 0.5, 280.0), "R1", ("R4",)),
        "PS4": (Site(1.2, 3.8, 335.0), "R3", ("R5",)),
        "PS5": (Site(-1.3, -1.8, 272.0), "R2", ("R6",)),
        "PS6": (Site(2.2, 1.0, 352.0), "R4", ("R7",)),
        "PS7": (Site(1.3, -3.6, 322.0), "R6", ("R8",)),
    },
    "gravity_fill": {"R9": "R8"},   # R9 is filled from R8 by gravity
    "settlements": [
        SettlementSpec("C1", "联惠社区", "Lianhui Community", "community", True, 15000, -3.3, 2.1, 0.8, 262.0, "R1", 6, 6),
        SettlementSpec("C2", "新街子社区", "Xinjiezi Community", "community", True, 14000, -1.6, 2.9, 0.8, 268.0, "R1", 6, 6),
        SettlementSpec("C3", "社区三(待核实)", "Community 3 (to be verified)", "community", False, 11000,
                       -3.4, -1.8, 0.8, 256.0, "R2", 5, 6),
        SettlementSpec("C4", "社区四(待核实)", "Community 4 (to be verified)", "community", False, 10000,
                       -1.9, -2.7, 0.75, 262.0, "R2", 5, 6),
        SettlementSpec("V1", "桥坝村", "Qiaoba Village", "village", True, 2800, 0.9, 4.3, 1.4, 331.0, "R3", 2, 9),
        SettlementSpec("V2", "思南村", "Sinan Village", "village", True, 2400, 1.5, -0.4, 1.4, 351.0, "R4", 2, 9),
        SettlementSpec("V3", "柏林村", "Bailin Village", "village", True, 2600, 3.6, 4.6, 1.4, 401.0, "R5", 2, 9),
        SettlementSpec("V4", "村四(待核实)", "Village 4 (to be verified)", "village", False, 2300, 0.3, -4.6, 1.4, 321.0, "R6", 2, 9),
        SettlementSpec("V5", "村五(待核实)", "Village 5 (to be verified)", "village", False, 2200, 4.6, 1.7, 1.3, 391.0, "R7", 2, 9),
        SettlementSpec("V6", "村六(待核实)", "Village 6 (to be verified)", "village", False, 2000, 3.2, -5.0, 1.3, 431.0, "R8", 2, 9),
        SettlementSpec("V7", "村七(待核实)", "Village 7 (to be verified)", "village", False, 1900, 5.2, -2.6, 1.2, 381.0, "R9", 2, 9),
    ],
    # the food industrial park (通惠食品工业园区) lies in 思南村
    "food_park": {"settlement": "V2", "x": 0.75, "y": -1.0, "r": 0.45, "demand_m3d": FOOD_PARK_M3D, "nodes": 14},
}
RELIEF_M = 6.0        # local relief on a settlement's terrace (±m)
TRUNK_SEG_KM = 0.30   # node spacing on trunk mains
TRANS_SEG_KM = 0.45   # node spacing on transmission mains
BRANCH_TORTUOSITY = 1.10


# ----------------------------------------------------------------------------- geometry helpers

def _rng(*keys: object) -> np.random.Generator:
    h = SEED
    for k in keys:
        for ch in str(k):
            h = (h * 131 + ord(ch)) % (2**32)
    return np.random.default_rng(h)


def _blob(spec_x: float, spec_y: float, r: float, key: str) -> Polygon:
    """A smooth irregular settlement outline of mean radius r (km)."""
    rng = _rng("blob", key)
    phases = rng.uniform(0, 2 * np.pi, 3)
    amps = np.array([0.12, 0.07, 0.04])
    t = np.linspace(0, 2 * np.pi, 73)[:-1]
    rr = r * (1 + sum(a * np.sin((k + 2) * t + p) for k, (a, p) in enumerate(zip(amps, phases))))
    return Polygon(np.column_stack([spec_x + rr * np.cos(t), spec_y + rr * np.sin(t)]))


def _relief(x: float, y: float, key: str) -> float:
    """Deterministic local relief (m) within ±RELIEF_M on a settlement terrace."""
    rng = _rng("relief", key)
    a, b, c, d = rng.uniform(0, 2 * np.pi, 4)
    tilt = rng.uniform(-1, 1, 2)
    v = 0.35 * math.sin(3.1 * x + a) * math.cos(2.7 * y + b) + 0.25 * math.sin(5.3 * x + 4.1 * y + c) \
        + 0.2 * math.cos(7.9 * y - 3.3 * x + d) + 0.2 * (tilt[0] * math.tanh(x) + tilt[1] * math.tanh(y))
    return float(np.clip(v, -1, 1) * RELIEF_M)


def _hw_unit_headloss(q: float, d_m: float, c: float) -> float:
    """Hazen-Williams unit headloss (m/m) for flow q (m³/s), SI form (:mod:`watersupply.hydraulics`)."""
    return float(hazen_williams_headloss(abs(q), length_m=1.0, roughness_c=c, diameter_m=d_m))


def _size(q: float, cls: str, material: str) -> int:
    """Smallest standard DN meeting the velocity and headloss limits at design flow q (m³/s)."""
    vmax, imax_km = SIZING[cls]
    dns = BRANCH_DN if cls == "branch" else (MAIN_DN if material == "DI" else VILLAGE_MAIN_DN)
    c = MATERIALS[material][0]
    for dn in dns:
        d = dn / 1000.0
        v = q / (math.pi * d * d / 4)
        if v <= vmax and _hw_unit_headloss(q, d, c) * 1000 <= imax_km:
            return dn
    return dns[-1]


_S_STEPS = 14


@functools.cache
def _s_amplitude(factor: float) -> float:
    """Amplitude (share of the chord) of a full sine whose polyline is `factor` × the chord long."""
    t = np.linspace(0, 1, _S_STEPS + 1)

    def length(amp: float) -> float:
        return float(np.hypot(np.diff(t), np.diff(amp * np.sin(2 * np.pi * t))).sum())

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if length(mid) < factor:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _s_curve(a: tuple[float, float], b: tuple[float, float], factor: float, key: str) -> list[tuple[float, float]]:
    """Vertices (local km) of an S-shaped alignment from a to b, `factor` × the chord long."""
    ax, ay = a
    bx, by = b
    L = math.hypot(bx - ax, by - ay)
    if factor <= 1.0 + 1e-9 or L == 0:
        return [a, b]
    ux, uy = (bx - ax) / L, (by - ay) / L
    sign = 1.0 if _rng("s", key).random() < 0.5 else -1.0
    t = np.linspace(0, 1, _S_STEPS + 1)
    off = sign * _s_amplitude(round(factor, 12)) * L * np.sin(2 * np.pi * t)
    p = np.column_stack([ax + t * L * ux - off * uy, ay + t * L * uy + off * ux])
    p[0], p[-1] = (ax, ay), (bx, by)
    return [tuple(v) for v in p]


# ----------------------------------------------------------------------------- network builder

class _Builder:
    """Accumulates nodes and pipes in the local frame (km)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.pipes: list[dict] = []
        self._n = 0

    def node(self, x: float, y: float, z: float, *, kind: str = "junction", zone: str, nid: str | None = None,
             settlement: str | None = None) -> str:
        if nid is None:
            self._n += 1
            nid = f"J{self._n:05d}"
        self.nodes[nid] = dict(id=nid, kind=kind, x=x, y=y, elevation_m=round(z, 2), zone=zone,
                               settlement_id=settlement, base_demand_m3d=0.0, pattern=None, population=0,
                               demand_category="none", head_m=None)
        return nid

    def pipe(self, a: str, b: str, *, cls: str, zone: str) -> dict:
        p = dict(from_node=a, to_node=b, cls=cls, zone=zone, q=0.0)
        self.pipes.append(p)
        return p

    def line(self, a: str, b: str, *, cls: str, zone: str, seg_km: float, z_a: float | None = None,
             z_b: float | None = None, settlement: str | None = None, terrace_z: float | None = None) -> list[dict]:
        """Join a to b with a main split into segments of at most seg_km.

        Intermediate nodes are graded linearly between the ends (a main laid along a
        graded road) or, inside a settlement, lie on its terrace (`terrace_z` ± relief).
        """
        na, nb = self.nodes[a], self.nodes[b]
        L = math.hypot(nb["x"] - na["x"], nb["y"] - na["y"])
        k = max(1, math.ceil(L / seg_km))
        za = na["elevation_m"] if z_a is None else z_a
        zb = nb["elevation_m"] if z_b is None else z_b
        prev, out = a, []
        for i in range(1, k):
            f = i / k
            x, y = na["x"] + f * (nb["x"] - na["x"]), na["y"] + f * (nb["y"] - na["y"])
            z = za + f * (zb - za)
            if terrace_z is not None and settlement is not None:
                z = terrace_z + _relief(x, y, settlement)
            cur = self.node(x, y, z, zone=zone, settlement=settlement)
            out.append(self.pipe(prev, cur, cls=cls, zone=zone))
            prev = cur
        out.append(self.pipe(prev, b, cls=cls, zone=zone))
        return out


def _sample_points(poly: Polygon, spacing: float, key: str, *, grid: bool) -> np.ndarray:
    """Demand-node sites in a polygon: a street grid (communities) or dispersed house clusters (villages)."""
    minx, miny, maxx, maxy = poly.bounds
    rng = _rng("pts", key)
    if grid:
        ang = rng.uniform(0, np.pi / 2)
        cx, cy = poly.centroid.x, poly.centroid.y
        n = int(math.ceil(max(maxx - minx, maxy - miny) / spacing)) + 2
        ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
        gx, gy = ii.ravel() * spacing, jj.ravel() * spacing
        xs = cx + gx * math.cos(ang) - gy * math.sin(ang)
        ys = cy + gx * math.sin(ang) + gy * math.cos(ang)
        inside = shapely.contains_xy(poly.buffer(-spacing * 0.3), xs, ys)
        return np.column_stack([xs[inside], ys[inside]]).reshape(-1, 2)
    # Poisson-disk-like dart throwing with a fixed number of candidates
    n_target = int(poly.area / (spacing * spacing))
    inner = poly.buffer(-spacing * 0.3)
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


def _attach_tree(points: np.ndarray, anchors: np.ndarray) -> list[tuple[int, int]]:
    """Minimum spanning forest joining points to the nearest anchors (index -1-k = anchor k)."""
    g = nx.Graph()
    n = len(points)
    for i in range(n):
        d = np.hypot(points[:, 0] - points[i, 0], points[:, 1] - points[i, 1])
        for j in np.argsort(d)[1:9]:
            g.add_edge(i, int(j), weight=float(d[j]))
        da = np.hypot(anchors[:, 0] - points[i, 0], anchors[:, 1] - points[i, 1])
        k = int(np.argmin(da))
        g.add_edge(i, "root", weight=float(da[k]), anchor=k)
    tree = nx.minimum_spanning_tree(g, algorithm="kruskal")
    edges = []
    for u, v, data in sorted(tree.edges(data=True), key=lambda e: (str(e[0]), str(e[1]))):
        if "root" in (u, v):
            i = v if u == "root" else u
            edges.append((int(i), -1 - int(data["anchor"])))
        else:
            edges.append((int(u), int(v)))
    return edges


def _layout_network(branch_spacing: dict[str, float], groups: dict[str, int]) -> tuple[_Builder, dict]:
    b = _Builder()
    L = LAYOUT
    plant = L["plant"]
    b.node(plant.x, plant.y, plant.z, kind="plant", zone="WTP", nid="WTP")
    b.nodes["WTP"]["head_m"] = L["plant_head_m"]
    for rid, s in L["reservoirs"].items():
        b.node(s.x, s.y, s.z, kind="reservoir", zone=rid, nid=rid)
    stations = {}
    for sid, (s, src, fills) in L["stations"].items():
        zone = sid
        suction = b.node(s.x - 0.01, s.y, s.z, kind="pump_station", zone=zone, nid=f"{sid}-S")
        outs = []
        for k, _rid in enumerate(fills, start=1):
            nid = f"{sid}-D{k}" if len(fills) > 1 else f"{sid}-D"
            outs.append(b.node(s.x + 0.01, s.y + 0.01 * (k - 1), s.z, kind="pump_station", zone=zone, nid=nid))
        stations[sid] = dict(suction=suction, discharge=outs, src=src, fills=fills)

    # transmission: plant → PS1, sources → stations, stations → reservoirs, gravity fills
    trans = []
    trans += b.line("WTP", "PS1-S", cls="main", zone="WTP", seg_km=TRANS_SEG_KM)
    for sid, st in stations.items():
        if st["src"] is not None:
            ps = b.line(st["src"], st["suction"], cls="main", zone=st["src"], seg_km=TRANS_SEG_KM)
            for p in ps:
                p["suction_of"] = sid
            trans += ps
        for out, rid in zip(st["discharge"], st["fills"]):
            ps = b.line(out, rid, cls="main", zone=sid, seg_km=TRANS_SEG_KM)
            for p in ps:
                p["rising_of"] = (sid, rid)
            trans += ps
    for rid, src in L["gravity_fill"].items():
        ps = b.line(src, rid, cls="main", zone=src, seg_km=TRANS_SEG_KM)
        for p in ps:
            p["gravity_fill"] = rid
        trans += ps

    # settlements: entry, trunk mains to village groups, branch networks
    polys: dict[str, Polygon] = {}
    fp = L["food_park"]
    for s in L["settlements"]:
        poly = _blob(s.x, s.y, s.r, s.id)
        polys[s.id] = poly
        src = L["reservoirs"][s.zone]
        dx, dy = src.x - s.x, src.y - s.y
        dd = math.hypot(dx, dy)
        ex, ey = s.x + 0.85 * s.r * dx / dd, s.y + 0.85 * s.r * dy / dd
        entry = b.node(ex, ey, s.z + _relief(ex, ey, s.id), zone=s.zone, settlement=s.id)
        b.line(s.zone, entry, cls="main", zone=s.zone, seg_km=TRANS_SEG_KM)
        # trunk: radial mains from the entry to each group centre (放射主管网)
        rng = _rng("groups", s.id)
        n_g = groups[s.id]
        ang0 = rng.uniform(0, 2 * np.pi)
        centres = [(ex, ey)]
        for k in range(n_g):
            ring = 0.35 if k % 3 == 0 else 0.7
            a = ang0 + 2 * np.pi * k / n_g + rng.uniform(-0.2, 0.2)
            centres.append((s.x + ring * s.r * math.cos(a), s.y + ring * s.r * math.sin(a)))
        ids = {0: entry}
        for k in range(1, len(centres)):
            cx, cy = centres[k]
            ids[k] = b.node(cx, cy, s.z + _relief(cx, cy, s.id), zone=s.zone, settlement=s.id)
        for v in range(1, len(centres)):
            b.line(entry, ids[v], cls="main", zone=s.zone, seg_km=TRUNK_SEG_KM, settlement=s.id,
                   terrace_z=s.z)
        trunk_ids = [nid for nid, n in b.nodes.items() if n["settlement_id"] == s.id]
        anchors = np.array([(b.nodes[n]["x"], b.nodes[n]["y"]) for n in trunk_ids])
        # branch network
        grid = s.kind == "community"
        pts = _sample_points(poly, branch_spacing[s.id], s.id, grid=grid)
        if s.id == fp["settlement"]:
            park = Point(fp["x"], fp["y"]).buffer(fp["r"])
            pts = pts[~shapely.contains_xy(park, pts[:, 0], pts[:, 1])]
        if len(anchors):
            d_anchor = np.min(np.hypot(pts[:, 0][:, None] - anchors[:, 0], pts[:, 1][:, None] - anchors[:, 1]), axis=1)
            pts = pts[d_anchor > 0.06]
        pids = [b.node(x, y, s.z + _relief(x, y, s.id), zone=s.zone, settlement=s.id) for x, y in pts]
        for i, j in _attach_tree(pts, anchors):
            b.pipe(pids[i], pids[j] if j >= 0 else trunk_ids[-1 - j], cls="branch", zone=s.zone)
        if grid:
            # partly looped: add back a share of the grid's neighbour links
            rng2 = _rng("loops", s.id)
            sp = branch_spacing[s.id]
            tree_pairs = {tuple(sorted((p["from_node"], p["to_node"]))) for p in b.pipes}
            cand = []
            for i in range(len(pts)):
                d = np.hypot(pts[:, 0] - pts[i, 0], pts[:, 1] - pts[i, 1])
                for j in np.flatnonzero((d > 0) & (d < sp * 1.05)):
                    if i < j and tuple(sorted((pids[i], pids[int(j)]))) not in tree_pairs:
                        cand.append((i, int(j)))
            for i, j in cand:
                if rng2.random() < 0.30:
                    b.pipe(pids[i], pids[j], cls="branch", zone=s.zone)
    # food park: industrial nodes on their own trunk from the nearest V2 trunk node
    s2 = next(s for s in L["settlements"] if s.id == fp["settlement"])
    rng = _rng("park")
    park_pts = []
    for k in range(fp["nodes"]):
        a = 2 * np.pi * k / fp["nodes"] + rng.uniform(-0.2, 0.2)
        rad = fp["r"] * (0.3 + 0.6 * rng.random())
        park_pts.append((fp["x"] + rad * math.cos(a), fp["y"] + rad * math.sin(a)))
    v2_trunk = [nid for nid, n in b.nodes.items() if n["settlement_id"] == s2.id and n["demand_category"] == "none"
                and any(p["cls"] == "main" and nid in (p["from_node"], p["to_node"]) for p in b.pipes)]
    anchors = np.array([(b.nodes[n]["x"], b.nodes[n]["y"]) for n in v2_trunk])
    d = np.hypot(anchors[:, 0] - fp["x"], anchors[:, 1] - fp["y"])
    hub_src = v2_trunk[int(np.argmin(d))]
    hub = b.node(fp["x"], fp["y"], s2.z + _relief(fp["x"], fp["y"], s2.id), zone=s2.zone, settlement=s2.id)
    b.line(hub_src, hub, cls="main", zone=s2.zone, seg_km=TRUNK_SEG_KM, settlement=s2.id, terrace_z=s2.z)
    park_ids = []
    for x, y in park_pts:
        nid = b.node(x, y, s2.z + _relief(x, y, s2.id), zone=s2.zone, settlement=s2.id)
        b.nodes[nid]["demand_category"] = "industrial"
        park_ids.append(nid)
    arr = np.asarray(park_pts)
    for i, j in _attach_tree(arr, np.array([[fp["x"], fp["y"]]])):
        b.pipe(park_ids[i], park_ids[j] if j >= 0 else hub, cls="branch", zone=s2.zone)
    return b, {"polys": polys, "stations": stations}


def _assign_demands(b: _Builder) -> None:
    """Spread each settlement's population over its demand nodes (seeded weights, exact totals)."""
    fp = LAYOUT["food_park"]
    for s in LAYOUT["settlements"]:
        ids = [nid for nid, n in b.nodes.items() if n["settlement_id"] == s.id and n["kind"] == "junction"
               and n["demand_category"] != "industrial"]
        w = _rng("pop", s.id).uniform(0.5, 1.5, len(ids))
        share = w / w.sum() * s.population
        pop = np.floor(share).astype(int)
        rest = s.population - pop.sum()
        pop[np.argsort(-(share - pop), kind="stable")[:rest]] += 1
        for nid, p in zip(ids, pop):
            n = b.nodes[nid]
            n["population"] = int(p)
            n["demand_category"] = "domestic"
            n["pattern"] = PATTERN_OF[s.kind]
            n["base_demand_m3d"] = round(p * PER_CAPITA_L[s.kind] / 1000.0, 4)
    park = [nid for nid, n in b.nodes.items() if n["demand_category"] == "industrial"]
    w = _rng("park-demand").uniform(0.5, 1.5, len(park))
    for nid, q in zip(park, w / w.sum() * fp["demand_m3d"]):
        b.nodes[nid]["base_demand_m3d"] = round(float(q), 4)
        b.nodes[nid]["pattern"] = "industrial"


def _peak(n: dict) -> float:
    pat = n["pattern"]
    return max(PATTERNS[pat]) if pat else 1.0


def _design_flows(b: _Builder, stations: dict) -> dict:
    """Design flows (m³/s) on every pipe from a spanning tree rooted at the sources, and pump duties."""
    g = nx.Graph()
    for i, p in enumerate(b.pipes):
        g.add_edge(p["from_node"], p["to_node"], idx=i)
    # zone demand (average and peak-hour) per reservoir, including what its boosters draw
    avg = {n: b.nodes[n]["base_demand_m3d"] / 86400.0 for n in b.nodes}
    peak = {n: avg[n] * _peak(b.nodes[n]) for n in b.nodes}
    zone_avg: dict[str, float] = {}
    for n in b.nodes.values():
        zone_avg[n["zone"]] = zone_avg.get(n["zone"], 0.0) + avg[n["id"]]
    through: dict[str, float] = {}

    def throughput(rid: str) -> float:
        if rid in through:
            return through[rid]
        tot = zone_avg.get(rid, 0.0)
        for st in stations.values():
            if st["src"] == rid:
                tot += sum(throughput(r) for r in st["fills"])
        for r, src in LAYOUT["gravity_fill"].items():
            if src == rid:
                tot += throughput(r)
        through[rid] = tot
        return tot

    for rid in LAYOUT["reservoirs"]:
        throughput(rid)
    pump_q = {}
    for sid, st in stations.items():
        for rid in st["fills"]:
            pump_q[(sid, rid)] = PUMP_FACTOR * through[rid]
    # distribution: a BFS tree from each reservoir over its zone; pipe flow = peak demand downstream
    for p in b.pipes:
        if "rising_of" in p:
            p["q"] = pump_q[p["rising_of"]]
        elif "suction_of" in p:
            sid = p["suction_of"]
            p["q"] = sum(pump_q[(sid, r)] for r in stations[sid]["fills"])
        elif "gravity_fill" in p:
            p["q"] = PUMP_FACTOR * through[p["gravity_fill"]]
    plant_q = sum(pump_q[("PS1", r)] for r in stations["PS1"]["fills"])
    for p in b.pipes:
        if p["zone"] == "WTP":
            p["q"] = plant_q
    dist = nx.Graph()
    for i, p in enumerate(b.pipes):
        if p["q"] == 0.0:
            dist.add_edge(p["from_node"], p["to_node"], idx=i)
    for rid in LAYOUT["reservoirs"]:
        if rid not in dist:
            continue
        tree = nx.bfs_tree(dist, rid)
        for n in reversed(list(nx.topological_sort(tree))):
            down = peak[n] + sum(tree.nodes[c].get("q", 0.0) for c in tree.successors(n))
            tree.nodes[n]["q"] = down
            for parent in tree.predecessors(n):
                b.pipes[dist.edges[parent, n]["idx"]]["q"] = down
    return {"pump_q": pump_q, "through": through, "plant_q": plant_q, "zone_avg": zone_avg}


def _frame(b: _Builder, polys: dict, stations: dict, design: dict) -> Network:
    to_crs = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    e0, n0 = to_crs.transform(*ORIGIN_LONLAT)

    def xy(x: float, y: float) -> tuple[float, float]:
        return (round(e0 + 1000.0 * x, 3), round(n0 + 1000.0 * y, 3))

    nodes = pd.DataFrame(list(b.nodes.values()))
    geom = [Point(xy(x, y)) for x, y in zip(nodes.pop("x"), nodes.pop("y"))]
    nodes = gpd.GeoDataFrame(nodes, geometry=geom, crs=CRS)
    nodes["population"] = nodes["population"].astype("int64")

    # tortuosity per class so that geometry lengths reproduce the published totals
    chord = {"main": 0.0, "branch": 0.0}
    for p in b.pipes:
        a, c = b.nodes[p["from_node"]], b.nodes[p["to_node"]]
        chord[p["cls"]] += math.hypot(c["x"] - a["x"], c["y"] - a["y"])
    factor = {"main": MAIN_KM / chord["main"], "branch": BRANCH_KM / chord["branch"]}
    rows = []
    villages = {s.id for s in LAYOUT["settlements"] if s.kind == "village"}
    counters = {"main": 0, "branch": 0}
    for p in b.pipes:
        a, c = b.nodes[p["from_node"]], b.nodes[p["to_node"]]
        counters[p["cls"]] += 1
        pid = f"{'M' if p['cls'] == 'main' else 'B'}{counters[p['cls']]:05d}"
        verts = _s_curve((a["x"], a["y"]), (c["x"], c["y"]), factor[p["cls"]], pid)
        line = LineString([xy(x, y) for x, y in verts])
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
    pl = LAYOUT["plant"]
    fac_rows.append(dict(id="WTP", kind="plant", name_zh="通惠水厂", name_en="Tonghui Water Plant", node_id="WTP",
                         zone="WTP", head_m=LAYOUT["plant_head_m"], capacity_m3d=LAYOUT["plant_capacity_m3d"],
                         geometry=Point(xy(pl.x, pl.y))))
    pump_rows = []
    for sid, (site, src, fills) in LAYOUT["stations"].items():
        st = stations[sid]
        q_tot = sum(design["pump_q"][(sid, r)] for r in fills)
        heads = []
        for k, (out, rid) in enumerate(zip(st["discharge"], fills), start=1):
            q = design["pump_q"][(sid, rid)]
            r_site = LAYOUT["reservoirs"][rid]
            src_head = LAYOUT["plant_head_m"] if src is None else LAYOUT["reservoirs"][src].z + lv["on"]
            loss = 0.0
            rising = [p for p in b.pipes if p.get("rising_of") == (sid, rid)]
            suction = [p for p in b.pipes if p.get("suction_of") == sid] if src else []
            for p in rising + suction:
                a_, c_ = b.nodes[p["from_node"]], b.nodes[p["to_node"]]
                length = math.hypot(c_["x"] - a_["x"], c_["y"] - a_["y"]) * 1000 * factor["main"]
                dn = _size(p["q"], "main", "DI") / 1000.0
                loss += _hw_unit_headloss(p["q"], dn, MATERIALS["DI"][0]) * length
            head = round(r_site.z + lv["max"] - src_head + loss + PUMP_MARGIN_M, 1)
            heads.append(head)
            pump_rows.append(dict(id=f"{sid}-P{k}", station_id=sid, from_node=st["suction"], to_node=out,
                                  role="duty", design_flow_ls=round(q * 1000, 2), design_head_m=head,
                                  efficiency=0.75, status="OPEN", control_node=rid, on_below_m=lv["on"],
                                  off_above_m=lv["off"], geometry=Point(xy(site.x + 0.02 * k, site.y - 0.02))))
        k = len(fills) + 1
        pump_rows.append(dict(id=f"{sid}-P{k}", station_id=sid, from_node=st["suction"], to_node=st["discharge"][0],
                              role="standby", design_flow_ls=pump_rows[-len(fills)]["design_flow_ls"],
                              design_head_m=heads[0], efficiency=0.75, status="CLOSED", control_node=None,
                              on_below_m=np.nan, off_above_m=np.nan,
                              geometry=Point(xy(site.x + 0.02 * k, site.y - 0.02))))
        names = {"PS1": ("水厂送水泵站", "Plant high-lift pump station")}
        zh, en = names.get(sid, (f"{sid[2:]}号加压泵站", f"Booster pump station {sid[2:]}"))
        fac_rows.append(dict(id=sid, kind="pump_station", name_zh=zh, name_en=en, node_id=st["suction"], zone=sid,
                             design_flow_ls=round(q_tot * 1000, 2), design_head_m=max(heads),
                             fills=",".join(fills), source=src or "WTP", geometry=Point(xy(site.x, site.y))))
    for rid, site in LAYOUT["reservoirs"].items():
        vol = STORAGE_HOURS * 3600.0 * design["through"][rid]
        usable = lv["max"] - lv["min"]
        diam = round(math.sqrt(4 * vol / (math.pi * usable)), 1)
        fac_rows.append(dict(id=rid, kind="reservoir", name_zh=f"{rid[1:]}号水池", name_en=f"Reservoir {rid[1:]}",
                             node_id=rid, zone=rid, bottom_elev_m=site.z, diameter_m=diam, min_level_m=lv["min"],
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
                            geometry=Polygon([xy(x, y) for x, y in poly.exterior.coords])))
    settlements = gpd.GeoDataFrame(st_rows, geometry="geometry", crs=CRS)

    patterns = pd.DataFrame([(k, h, v) for k in sorted(PATTERNS) for h, v in enumerate(PATTERNS[k])],
                            columns=["pattern", "hour", "multiplier"])
    meta = pd.DataFrame(sorted({
        "name": "tonghui",
        "title_zh": "綦江区通惠街道城乡供水一体化工程(参考模型)",
        "title_en": "Tonghui Subdistrict urban-rural integrated water supply (reference model)",
        "crs": CRS,
        "generator": "watersupply.generator.generate_tonghui",
        "seed": str(SEED),
        "duration_h": "72",
        "plant_chlorine_mgL": "1.0",
        "bulk_coeff_per_day": "-0.5",
        "tank_initial_chlorine_mgL": "0.5",
        "main_tortuosity": f"{factor['main']:.4f}",
        "branch_tortuosity": f"{factor['branch']:.4f}",
    }.items()), columns=["key", "value"])
    return {"nodes": nodes, "pipes": pipes, "pumps": pumps, "facilities": facilities, "settlements": settlements,
            "patterns": patterns, "metadata": meta}


def _valves(net: Network) -> gpd.GeoDataFrame:
    """Isolation valves: at every junction of degree >= 3 on all but one connected pipe (N-1), plus
    a valve at the start of every main leaving a facility (wntr's 'strategic' placement)."""
    import wntr
    from .model import to_wntr

    wn = to_wntr(net)
    layer = wntr.network.generate_valve_layer(wn, placement_type="strategic", n=1, seed=SEED)
    pipes = net["pipes"].set_index("id")
    layer = layer[layer["link"].isin(pipes.index)].sort_values(["link", "node"]).reset_index(drop=True)
    geoms = []
    for link, node in zip(layer["link"], layer["node"]):
        line = pipes.geometry[link]
        at_start = pipes.loc[link, "from_node"] == node
        d = min(5.0, line.length / 3)
        geoms.append(line.interpolate(d if at_start else line.length - d))
    layer.insert(0, "id", [f"V{i + 1:05d}" for i in range(len(layer))])
    return gpd.GeoDataFrame(layer, geometry=geoms, crs=CRS)


def generate_tonghui() -> Network:
    """Generate the Tonghui reference network (layers in EPSG:4545).

    The number of trunk groups and the branch-node spacing are calibrated so
    that the alignments' tortuosity stays plausible (mains ≈1.1–1.4, branches
    ≈1.1) while the geometry lengths equal the published 177 km and 262 km.
    """
    spacing = {s.id: (0.15 if s.kind == "community" else 0.19) for s in LAYOUT["settlements"]}
    groups = {s.id: s.groups for s in LAYOUT["settlements"]}
    for _ in range(6):
        b, extra = _layout_network(spacing, groups)
        chord = {"main": 0.0, "branch": 0.0}
        for p in b.pipes:
            a, c = b.nodes[p["from_node"]], b.nodes[p["to_node"]]
            chord[p["cls"]] += math.hypot(c["x"] - a["x"], c["y"] - a["y"])
        tb = BRANCH_KM / chord["branch"]
        tm = MAIN_KM / chord["main"]
        log.debug("calibration: main tortuosity %.3f, branch %.3f", tm, tb)
        ok_b = abs(tb - BRANCH_TORTUOSITY) < 0.04
        ok_m = 1.1 <= tm <= 1.4
        if ok_b and ok_m:
            break
        if not ok_b:
            # MST length scales with 1/spacing for a fixed area
            spacing = {k: round(v * BRANCH_TORTUOSITY / tb, 4) for k, v in spacing.items()}
        if not ok_m:
            step = 2 if tm > 1.4 else -1
            groups = {k: max(3, v + step) for k, v in groups.items()}
    _assign_demands(b)
    design = _design_flows(b, extra["stations"])
    net = _frame(b, extra["polys"], extra["stations"], design)
    net["valves"] = _valves(net)
    return net


def write_tonghui(folder: str | Path) -> dict[str, Path]:
    """Generate the network and write ``tonghui.gpkg`` and ``tonghui.inp`` into `folder`."""
    from .io import write_network
    from .model import to_wntr, write_inp

    folder = Path(folder)
    net = generate_tonghui()
    gpkg = write_network(net, folder / "tonghui.gpkg")
    inp = write_inp(to_wntr(net), folder / "tonghui.inp")
    return {"gpkg": gpkg, "inp": inp}
