"""Synthetic terrain, GeoTIFF I/O and least-cost routing (watersupply.terrain)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from watersupply._errors import NetworkDataError
from watersupply.build import sample_dem
from watersupply.terrain import (Terrain, TerrainParams, grade_cost_graph, read_dem, route, route_tree, smooth_line,
                                 synthetic_dem, write_dem)

SMALL = TerrainParams(bounds_km=(-7.0, -1.5, 3.0, 1.5), cell_m=100.0)


def _bowl(n: int = 41, cell: float = 10.0) -> Terrain:
    """A flat plain at 100 m with a 60 m cone hill in the middle."""
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - n // 2, yy - n // 2) * cell
    z = 100.0 + np.clip(60.0 - 0.6 * r, 0.0, None)
    return Terrain(z=z.astype(np.float32), left=0.0, top=n * cell, cell_m=cell)


def test_synthetic_dem_is_deterministic_and_seeded():
    a = synthetic_dem(SMALL, origin_xy=(0.0, 0.0))
    b = synthetic_dem(SMALL, origin_xy=(0.0, 0.0))
    c = synthetic_dem(TerrainParams(**{**SMALL.__dict__, "seed": 7}), origin_xy=(0.0, 0.0))
    assert np.array_equal(a.z, b.z)
    assert not np.array_equal(a.z, c.z)
    assert a.z.dtype == np.float32 and a.shape == (30, 100)


def test_synthetic_dem_has_a_valley_floor_and_hills():
    t = synthetic_dem(SMALL, origin_xy=(0.0, 0.0))
    x = (t.left + (np.arange(t.shape[1]) + 0.5) * t.cell_m) / 1000.0
    floor = t.z[:, x < -4.0]
    hills = t.z[:, x > 1.5]
    assert floor.min() >= 195 and np.median(floor) < 240          # the 綦江 valley floor, ~200-220 m
    assert np.median(hills) > 350 and hills.max() < 800          # hills rising eastward


def test_conditioning_leaves_no_closed_depression():
    t = synthetic_dem(SMALL, origin_xy=(0.0, 0.0))
    z = t.z.astype(float)
    inner = z[1:-1, 1:-1]
    lowest_neighbour = np.min([z[1 + dr:z.shape[0] - 1 + dr, 1 + dc:z.shape[1] - 1 + dc]
                               for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)], axis=0)
    assert (lowest_neighbour <= inner).all()   # every cell has a way down (or level) toward the edge


def test_geotiff_round_trip_is_byte_identical_and_read_by_the_build_path(tmp_path):
    t = synthetic_dem(SMALL, origin_xy=(500000.0, 3200000.0))
    a = write_dem(t, tmp_path / "a.tif", description="synthetic test")
    b = write_dem(t, tmp_path / "b.tif", description="synthetic test")
    assert a.read_bytes() == b.read_bytes()
    back = read_dem(a)
    assert np.array_equal(back.z, t.z) and back.cell_m == 100.0 and back.crs == "EPSG:4545"
    x, y = back.centre(np.array([3, 17]), np.array([10, 80]))
    pts = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[Point(v) for v in zip(x, y)], crs="EPSG:4545")
    sampled = sample_dem(pts, a).to_numpy()
    assert sampled == pytest.approx([t.z[3, 10], t.z[17, 80]])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_dem_errors_name_the_file(tmp_path):
    with pytest.raises(NetworkDataError, match="DEM file not found"):
        read_dem(tmp_path / "missing.tif")


def test_least_cost_path_goes_round_a_hill_not_over_it():
    t = _bowl()
    g = grade_cost_graph(t, grade_ref=0.08)
    a = t.centre(20, 2)
    b = t.centre(20, 38)
    cells = route(t, g, (float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
    r, c = np.divmod(np.array(cells), t.shape[1])
    assert t.z[r, c].max() < 115.0           # the straight line would climb to 160 m
    xy = np.column_stack(t.centre(r, c))
    assert np.hypot(*np.diff(xy, axis=0).T).sum() > 370.0   # ... so the path is longer than the straight 360 m


def test_mask_keeps_the_route_inside():
    t = _bowl()
    mask = np.ones(t.shape, dtype=bool)
    mask[:21, :] = False                      # only the southern half
    g = grade_cost_graph(t, mask=mask)
    a, b = t.centre(30, 2), t.centre(30, 38)
    cells = route(t, g, (float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
    assert mask.ravel()[cells].all()
    with pytest.raises(NetworkDataError, match="no route"):
        n = t.centre(5, 5)
        route(t, g, (float(a[0]), float(a[1])), (float(n[0]), float(n[1])))


def test_route_tree_shares_the_common_prefix():
    from scipy.sparse.csgraph import dijkstra

    t = Terrain(z=np.zeros((5, 9), dtype=np.float32), left=0.0, top=50.0, cell_m=10.0)
    g = grade_cost_graph(t)
    src = 2 * 9 + 0
    _, pred = dijkstra(g, indices=src, return_predecessors=True)
    chains = route_tree(pred, src, [0 * 9 + 8, 4 * 9 + 8, 2 * 9 + 8])
    # a tree: every cell but the source has one parent
    cells = [c for ch in chains for c in ch[1:]]
    assert len(cells) == len(set(cells))
    assert chains[0][0] == src
    assert {ch[-1] for ch in chains} >= {8, 44, 26}


def test_smooth_line_keeps_ends_and_does_not_lengthen():
    stair = np.array([(i // 2, (i + 1) // 2) for i in range(20)], dtype=float)
    out = smooth_line(stair, tolerance=0.4)
    assert tuple(out[0]) == tuple(stair[0]) and tuple(out[-1]) == tuple(stair[-1])
    length = lambda p: np.hypot(*np.diff(p, axis=0).T).sum()  # noqa: E731
    assert length(out) < length(stair)
