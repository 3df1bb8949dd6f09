"""Synthetic terrain and least-cost routing over a DEM.

The Tonghui reference model has no surveyed DEM, so :func:`synthetic_dem` makes a
deterministic one from documented parameters (:class:`TerrainParams`): the 綦江
valley floor at ~203–211 m (the river falls gently northward), low terraces
east of it, and hills rising eastward to ~600–700 m, cut by tributary valleys
that drain to the river; seeded fractal noise (value-noise fBm, ridged in the
hills) roughens it and a priority-flood fill removes closed depressions so every
cell drains to the river or the edge. :func:`write_dem` writes it as a
compressed GeoTIFF that ``watersupply build --dem`` (and the generator) read
back through :func:`watersupply.build.sample_dem`.

:func:`route` and :func:`route_tree` lay pipes along the ground: least-cost
paths over an 8-connected grid graph (scipy's Dijkstra) whose edge cost grows
with the square of the grade, so alignments follow valleys and contours the
way rural roads do.

Examples
--------
>>> from watersupply.terrain import TerrainParams, synthetic_dem
>>> t = synthetic_dem(TerrainParams(bounds_km=(-6.0, -1.0, 2.0, 1.0), cell_m=100.0), origin_xy=(0.0, 0.0))
>>> t.z.shape
(20, 80)
>>> bool(t.z.min() > 195 and t.z.max() < 800)
True
"""

from __future__ import annotations

import heapq
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from ._errors import NetworkDataError

__all__ = ["TerrainParams", "Terrain", "synthetic_dem", "write_dem", "read_dem", "grade_cost_graph", "route",
           "route_tree", "river_x_km", "smooth_line", "slope"]


@dataclass(frozen=True)
class TerrainParams:
    """Parameters of the synthetic Tonghui terrain (all assumed; see ``networks/tonghui/README.md``).

    Distances are km in the generator's local frame (east/north of its origin), heights metres.
    """

    seed: int = 20200101
    cell_m: float = 25.0
    #: (xmin, ymin, xmax, ymax) of the raster in the local frame (km)
    bounds_km: tuple[float, float, float, float] = (-7.0, -7.5, 8.0, 7.5)
    #: river centreline x(y) = x0 + Σ a·sin(y / w + φ)  (km): a meandering 綦江 flowing north
    river_x0_km: float = -5.3
    river_meanders: tuple[tuple[float, float, float], ...] = ((0.45, 2.4, 0.3), (0.2, 0.8, 1.7))
    river_z_south_m: float = 211.0
    river_z_north_m: float = 203.0
    #: height above the river (m) by distance east of it (km), piecewise linear: floor, terraces, hills
    east_profile: tuple[tuple[float, float], ...] = (
        (0.0, 0.0), (0.3, 2.0), (1.2, 8.0), (2.2, 25.0), (3.4, 60.0), (4.5, 120.0), (6.0, 230.0), (7.5, 330.0),
        (9.5, 410.0), (11.5, 460.0), (14.0, 500.0))
    #: ... and west of it (the old-town side)
    west_profile: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.3, 2.0), (1.0, 20.0), (2.0, 60.0), (4.0, 130.0))
    #: tributary valleys running east-west to the river: centreline y (km) at the river
    tributaries_y_km: tuple[float, ...] = (-6.2, -3.4, -0.6, 2.2, 5.2)
    tributary_depth: float = 0.40          # share of the local height above the river cut away at the axis
    tributary_halfwidth_km: float = 0.80   # half-width of the V (km)
    #: fractal noise: amplitude (m) on the floor and in the hills, octaves, largest wavelength (km), persistence
    noise_floor_m: float = 3.0
    noise_hills_m: float = 110.0
    noise_octaves: int = 5
    noise_wavelength_km: float = 4.0
    noise_persistence: float = 0.5
    #: fill closed depressions (priority flood) so that every cell drains
    condition: bool = True


@dataclass(frozen=True)
class Terrain:
    """A DEM on a north-up grid: ``z[row, col]`` (m), row 0 at the top; cell centres at
    ``(left + (col + 0.5)·cell, top − (row + 0.5)·cell)`` in `crs` (metres)."""

    z: np.ndarray
    left: float
    top: float
    cell_m: float
    crs: str = "EPSG:4545"

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape

    @property
    def transform(self):  # noqa: ANN201 - rasterio.Affine, imported lazily
        from rasterio.transform import from_origin

        return from_origin(self.left, self.top, self.cell_m, self.cell_m)

    def index(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells containing the points (clipped to the grid)."""
        col = np.clip(np.floor((np.asarray(x, dtype=float) - self.left) / self.cell_m), 0, self.shape[1] - 1)
        row = np.clip(np.floor((self.top - np.asarray(y, dtype=float)) / self.cell_m), 0, self.shape[0] - 1)
        return row.astype(int), col.astype(int)

    def centre(self, row: np.ndarray | int, col: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of cell centres."""
        return (self.left + (np.asarray(col) + 0.5) * self.cell_m, self.top - (np.asarray(row) + 0.5) * self.cell_m)

    def at(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Elevation of the cells containing the points (nearest-cell, as a raster sample)."""
        r, c = self.index(x, y)
        return self.z[r, c]


# ----------------------------------------------------------------------------- synthesis

def _value_noise(shape: tuple[int, int], cell_m: float, wavelength_m: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in [-1, 1]: a random lattice every `wavelength_m`, cubic-spline interpolated."""
    ny = int(math.ceil(shape[0] * cell_m / wavelength_m)) + 4
    nx = int(math.ceil(shape[1] * cell_m / wavelength_m)) + 4
    lattice = rng.uniform(-1.0, 1.0, (ny, nx))
    rows = (np.arange(shape[0]) + 0.5) * cell_m / wavelength_m + 1.5
    cols = (np.arange(shape[1]) + 0.5) * cell_m / wavelength_m + 1.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(lattice, [rr, cc], order=3, mode="nearest")


def _profile(d: np.ndarray, table: tuple[tuple[float, float], ...]) -> np.ndarray:
    xs, ys = zip(*table)
    return np.interp(d, xs, ys)


def _priority_flood(z: np.ndarray) -> np.ndarray:
    """Fill closed depressions (Barnes et al. 2014 priority flood) so every cell drains to the edge."""
    ny, nx = z.shape
    out = z.copy()
    done = np.zeros(z.shape, dtype=bool)
    heap: list[tuple[float, int]] = []
    edge = np.zeros(z.shape, dtype=bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    for i in np.flatnonzero(edge.ravel()):
        heap.append((float(out.flat[i]), int(i)))
        done.flat[i] = True
    heapq.heapify(heap)
    flat = out.ravel()
    dflat = done.ravel()
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    while heap:
        h, i = heapq.heappop(heap)
        r, c = divmod(i, nx)
        for dr, dc in offsets:
            rr, cc = r + dr, c + dc
            if 0 <= rr < ny and 0 <= cc < nx:
                j = rr * nx + cc
                if not dflat[j]:
                    dflat[j] = True
                    if flat[j] < h:
                        flat[j] = h
                    heapq.heappush(heap, (float(flat[j]), j))
    return flat.reshape(z.shape)


def river_x_km(y_km: np.ndarray | float, params: TerrainParams) -> np.ndarray:
    """x (km, local frame) of the river centreline at northing `y_km`."""
    y = np.asarray(y_km, dtype=float)
    return params.river_x0_km + sum(a * np.sin(y / w + p) for a, w, p in params.river_meanders)


def synthetic_dem(params: TerrainParams | None = None, *, origin_xy: tuple[float, float]) -> Terrain:
    """Make the deterministic synthetic DEM.

    Parameters
    ----------
    params
        The terrain parameters (default :class:`TerrainParams`).
    origin_xy
        Projected coordinates (m, EPSG:4545) of the local frame's origin; the raster's
        edges are snapped to whole cells in that CRS.

    Returns
    -------
    Terrain
        Elevations rounded to 0.1 m (float32).
    """
    p = params or TerrainParams()
    cell = float(p.cell_m)
    x0, y0, x1, y1 = p.bounds_km
    left = math.floor((origin_xy[0] + 1000.0 * x0) / cell) * cell
    top = math.ceil((origin_xy[1] + 1000.0 * y1) / cell) * cell
    nx = int(round((origin_xy[0] + 1000.0 * x1 - left) / cell))
    ny = int(round((top - (origin_xy[1] + 1000.0 * y0)) / cell))
    xs = ((left + (np.arange(nx) + 0.5) * cell) - origin_xy[0]) / 1000.0
    ys = ((top - (np.arange(ny) + 0.5) * cell) - origin_xy[1]) / 1000.0
    X, Y = np.meshgrid(xs, ys)
    rng = np.random.default_rng(p.seed)

    # warp the coordinates a little so contours and valleys are not straight
    warp = 0.35 * _value_noise((ny, nx), cell, 3000.0, rng)
    d = X - river_x_km(Y, p) + warp                  # km east of the river
    frac = np.clip((Y - y0) / (y1 - y0), 0.0, 1.0)
    river_z = p.river_z_south_m + frac * (p.river_z_north_m - p.river_z_south_m)
    rise = np.where(d >= 0, _profile(np.abs(d), p.east_profile), _profile(np.abs(d), p.west_profile))

    # tributary valleys: V-shaped cuts along wavy east-west lines, deepening uphill
    cut = np.zeros_like(rise)
    for k, yt in enumerate(p.tributaries_y_km):
        axis = yt + 0.6 * np.sin(X / 1.3 + k) + 0.25 * np.sin(X / 0.55 + 2 * k) + 0.1 * d
        dist = np.abs(Y - axis)
        v = np.clip(1.0 - dist / p.tributary_halfwidth_km, 0.0, 1.0) ** 2
        cut = np.maximum(cut, v * np.clip(d / 1.5, 0.0, 1.0))
    rise = rise * (1.0 - p.tributary_depth * cut)

    # fractal noise: value-noise fBm, ridged (1 - |n|) in the hills, amplitude growing with the rise
    fbm = np.zeros_like(rise)
    ridged = np.zeros_like(rise)
    amp, wl, norm = 1.0, 1000.0 * p.noise_wavelength_km, 0.0
    for _ in range(p.noise_octaves):
        n = _value_noise((ny, nx), cell, wl, rng)
        fbm += amp * n
        ridged += amp * (0.5 - np.abs(n)) * 2.0
        norm += amp
        amp *= p.noise_persistence
        wl /= 2.0
    fbm /= norm
    ridged /= norm
    hill = np.clip(rise / 250.0, 0.0, 1.0)
    noise = (1.0 - hill) * fbm + hill * (0.5 * fbm + 0.5 * ridged)
    amp_m = p.noise_floor_m + hill * (p.noise_hills_m - p.noise_floor_m)
    # the noise fades out toward the river so the floor stays a floor
    z = river_z + rise + amp_m * noise * np.clip(np.abs(d) / 0.8, 0.0, 1.0)
    # the channel itself: 3 m below the floor within 60 m of the centreline
    z = np.where(np.abs(d) < 0.06, river_z - 3.0 * (1.0 - np.abs(d) / 0.06), z)
    z = np.maximum(z, river_z - 3.0)
    if p.condition:
        z = _priority_flood(z)
    return Terrain(z=np.round(z, 1).astype(np.float32), left=float(left), top=float(top), cell_m=cell)


def slope(t: Terrain) -> np.ndarray:
    """Ground slope (rise over run, m/m) of each cell (central differences)."""
    gy, gx = np.gradient(t.z.astype(float), t.cell_m)
    return np.hypot(gx, gy)


# ----------------------------------------------------------------------------- GeoTIFF I/O

def write_dem(t: Terrain, path: str | os.PathLike, *, description: str = "") -> Path:
    """Write the DEM as a DEFLATE-compressed, tiled float32 GeoTIFF (atomically; byte-identical on rewrite)."""
    import rasterio

    from .io import atomic_path

    profile = dict(driver="GTiff", width=t.shape[1], height=t.shape[0], count=1, dtype="float32", crs=t.crs,
                   transform=t.transform, nodata=-9999.0, compress="deflate", predictor=3, zlevel=9,
                   tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(t.z.astype(np.float32), 1)
        dst.set_band_unit(1, "metre")
        if description:
            dst.update_tags(DESCRIPTION=description)
    return Path(path)


def read_dem(path: str | os.PathLike) -> Terrain:
    """Read a north-up, square-celled single-band DEM into a :class:`Terrain`."""
    import rasterio

    p = Path(path)
    if not p.is_file():
        raise NetworkDataError(f"{p}: DEM file not found; give a GeoTIFF (or any raster GDAL reads)")
    with rasterio.open(p) as src:
        tr = src.transform
        if tr.b != 0 or tr.d != 0 or abs(tr.a + tr.e) > 1e-9 * abs(tr.a):
            raise NetworkDataError(f"{p}: the DEM must be north-up with square cells; warp it (gdalwarp -tr)")
        z = src.read(1).astype(np.float32)
        crs = src.crs.to_string() if src.crs else "EPSG:4545"
    return Terrain(z=z, left=float(tr.c), top=float(tr.f), cell_m=float(tr.a), crs=crs)


# ----------------------------------------------------------------------------- routing

_STEPS = ((0, 1), (1, -1), (1, 0), (1, 1))


def grade_cost_graph(t: Terrain, *, mask: np.ndarray | None = None, grade_ref: float = 0.08,
                     penalty: np.ndarray | None = None, climb_cost: float = 0.0) -> csr_matrix:
    """8-connected grid graph whose edge cost is ``length · (1 + (grade / grade_ref)²) · penalty``
    (+ ``climb_cost`` × the rise of an uphill step: the graph is then directed).

    Parameters
    ----------
    t
        The terrain.
    mask
        Boolean array, True where the route may pass (default everywhere).
    grade_ref
        Grade (m/m) at which a metre costs double: 0.08, a steep rural road.
    penalty
        Optional per-cell multiplier (e.g. to make river crossings expensive).
    climb_cost
        Metres of route charged per metre of climb: paths from a high source then descend
        and keep to the contours rather than dip and climb again (a main leaving its
        reservoir downhill, so that pressure zones can follow the ground).
    """
    ny, nx = t.shape
    z = t.z.astype(float)
    ok = np.ones(t.shape, dtype=bool) if mask is None else mask
    pen = np.ones(t.shape) if penalty is None else penalty
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows, cols, w = [], [], []
    for dr, dc in _STEPS:
        r0 = slice(0, ny - dr)
        c0 = slice(max(0, -dc), nx - max(0, dc))
        r1 = slice(dr, ny)
        c1 = slice(max(0, -dc) + dc, nx - max(0, dc) + dc)
        a, b = idx[r0, c0], idx[r1, c1]
        length = t.cell_m * math.hypot(dr, dc)
        grade = np.abs(z[r1, c1] - z[r0, c0]) / length
        cost = length * (1.0 + (grade / grade_ref) ** 2) * 0.5 * (pen[r0, c0] + pen[r1, c1])
        keep = ok[r0, c0] & ok[r1, c1]
        rise = (z[r1, c1] - z[r0, c0])[keep]
        rows += [a[keep], b[keep]]
        cols += [b[keep], a[keep]]
        w += [cost[keep] + climb_cost * np.maximum(rise, 0.0), cost[keep] + climb_cost * np.maximum(-rise, 0.0)]
    return csr_matrix((np.concatenate(w), (np.concatenate(rows), np.concatenate(cols))), shape=(ny * nx, ny * nx))


def _predecessors(graph: csr_matrix, source: int) -> tuple[np.ndarray, np.ndarray]:
    dist, pred = dijkstra(graph, directed=True, indices=source, return_predecessors=True)
    return dist, pred


def _walk(pred: np.ndarray, source: int, target: int) -> list[int]:
    cells = [target]
    while cells[-1] != source:
        nxt = int(pred[cells[-1]])
        if nxt < 0:
            raise NetworkDataError(f"no route over the terrain from cell {source} to cell {target}")
        cells.append(nxt)
    return cells[::-1]


def route(t: Terrain, graph: csr_matrix, a: tuple[float, float], b: tuple[float, float]) -> list[int]:
    """Cells (flat indices, a → b) of the least-cost path between two points."""
    ra, ca = t.index(*a)
    rb, cb = t.index(*b)
    src, dst = int(ra) * t.shape[1] + int(ca), int(rb) * t.shape[1] + int(cb)
    _, pred = _predecessors(graph, src)
    return _walk(pred, src, dst)


def route_tree(pred: np.ndarray, source: int, targets: list[int]) -> list[list[int]]:
    """Decompose the least-cost paths from `source` to `targets` into a tree of chains.

    Paths sharing a prefix share its cells, so the union is a tree rooted at `source`.
    Returns chains of cells, each from a key cell (the source, a fork) down to the next
    key cell (a fork or a target), ordered from the root outward.
    """
    parent: dict[int, int] = {}
    for tgt in targets:
        path = _walk(pred, source, tgt)
        for u, v in zip(path[:-1], path[1:]):
            parent[v] = u
    children: dict[int, list[int]] = {}
    for v, u in parent.items():
        children.setdefault(u, []).append(v)
    key = {source} | set(targets) | {u for u, ch in children.items() if len(ch) > 1}
    chains = []
    stack = [source]
    while stack:
        k = stack.pop()
        for ch in sorted(children.get(k, [])):
            chain = [k, ch]
            while chain[-1] not in key:
                chain.append(children[chain[-1]][0])
            chains.append(chain)
            stack.append(chain[-1])
    return chains


def smooth_line(coords: np.ndarray, *, tolerance: float, iterations: int = 2) -> np.ndarray:
    """Straighten a grid path: Douglas–Peucker to `tolerance`, then Chaikin corner cutting.

    The ends are kept; the staircase of an 8-connected path would otherwise add
    length that no road has.
    """
    import shapely

    pts = np.asarray(coords, dtype=float)
    if len(pts) <= 2:
        return pts
    pts = shapely.get_coordinates(shapely.simplify(shapely.linestrings(pts), tolerance, preserve_topology=False))
    for _ in range(iterations):
        if len(pts) <= 2:
            break
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        inner = np.empty((2 * (len(pts) - 1), 2))
        inner[0::2], inner[1::2] = q, r
        pts = np.vstack([pts[:1], inner, pts[-1:]])
    return pts
