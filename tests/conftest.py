"""Shared fixtures: tiny networks built in code, and the Tonghui baseline solved once per session."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

CRS = "EPSG:4545"
X0, Y0 = 380_000.0, 3_210_000.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="run the fuzz tests with the long hypothesis profile")


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis profiles: 'fast' (500 cases per input kind, fixed seed) and 'long' (--fuzz-long)."""
    from hypothesis import HealthCheck, settings

    common = dict(derandomize=True, deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.data_too_large, HealthCheck.filter_too_much])
    settings.register_profile("fast", max_examples=500, **common)
    settings.register_profile("long", max_examples=5000, **common)
    settings.load_profile("long" if config.getoption("--fuzz-long") else "fast")


def make_network(
    nodes: Iterable[Mapping],
    pipes: Iterable[Mapping],
    *,
    pumps: Iterable[Mapping] = (),
    tanks: Iterable[Mapping] = (),
    settlements: Iterable[Mapping] = (),
    patterns: Mapping[str, list[float]] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict:
    """Build a network in the project's layout from plain dicts (coordinates in metres).

    nodes: dicts with id, x, y, kind (default junction), elevation_m, and optionally
        base_demand_m3d, population, settlement_id, pattern, head_m (plants), zone.
    pipes: dicts with id, from_node, to_node, diameter_mm, and optionally roughness_c,
        length_m (default: straight distance), class, status.
    pumps: dicts with id, from_node, to_node, design_flow_ls, design_head_m and optionally
        station_id, control_node, on_below_m, off_above_m, status.
    tanks: dicts with node_id, diameter_m, min_level_m, max_level_m, init_level_m
        (bottom_elev_m defaults to the node's elevation).
    settlements: dicts with id, kind, population, storeys, and a polygon given as
        ``bounds`` (minx, miny, maxx, maxy, in local metres); name_zh/name_en optional.
    """
    nrows = []
    for n in nodes:
        row = dict(id=str(n["id"]), kind=n.get("kind", "junction"), elevation_m=float(n.get("elevation_m", 0.0)),
                   zone=n.get("zone", "Z"), settlement_id=n.get("settlement_id"),
                   base_demand_m3d=float(n.get("base_demand_m3d", 0.0)), pattern=n.get("pattern"),
                   population=int(n.get("population", 0)),
                   demand_category="domestic" if n.get("base_demand_m3d", 0) else "none",
                   head_m=n.get("head_m"), geometry=Point(X0 + n["x"], Y0 + n["y"]))
        nrows.append(row)
    ng = gpd.GeoDataFrame(nrows, geometry="geometry", crs=CRS)
    xy = {r["id"]: (r["geometry"].x, r["geometry"].y) for r in nrows}
    prows = []
    for p in pipes:
        a, b = xy[str(p["from_node"])], xy[str(p["to_node"])]
        line = LineString([a, b])
        prows.append(dict(id=str(p["id"]), from_node=str(p["from_node"]), to_node=str(p["to_node"]),
                          **{"class": p.get("class", "main" if p["diameter_mm"] >= 150 else "branch")},
                          diameter_mm=float(p["diameter_mm"]), material=p.get("material", "PE"),
                          roughness_c=float(p.get("roughness_c", 130.0)),
                          length_m=float(p.get("length_m", line.length)), zone=p.get("zone", "Z"),
                          status=p.get("status", "OPEN"), geometry=line))
    pg = gpd.GeoDataFrame(prows, geometry="geometry", crs=CRS)
    net = {"nodes": ng, "pipes": pg}
    pumps = list(pumps)
    if pumps:
        rows = []
        for p in pumps:
            a = xy[str(p["from_node"])]
            rows.append(dict(id=str(p["id"]), station_id=p.get("station_id", str(p["id"])),
                             from_node=str(p["from_node"]), to_node=str(p["to_node"]), role=p.get("role", "duty"),
                             design_flow_ls=float(p["design_flow_ls"]), design_head_m=float(p["design_head_m"]),
                             efficiency=float(p.get("efficiency", 0.75)), status=p.get("status", "OPEN"),
                             control_node=p.get("control_node"), on_below_m=p.get("on_below_m"),
                             off_above_m=p.get("off_above_m"), geometry=Point(a[0] + 1, a[1] + 1)))
        net["pumps"] = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    frows = []
    elev = {r["id"]: r["elevation_m"] for r in nrows}
    for r in nrows:
        if r["kind"] == "plant":
            frows.append(dict(id=r["id"], kind="plant", name_zh="水厂", name_en="Plant", node_id=r["id"], zone="Z",
                              geometry=r["geometry"]))
    for tk in tanks:
        nid = str(tk["node_id"])
        frows.append(dict(id=nid, kind="reservoir", name_zh=f"水池{nid}", name_en=f"Reservoir {nid}", node_id=nid,
                          zone="Z", bottom_elev_m=float(tk.get("bottom_elev_m", elev[nid])),
                          diameter_m=float(tk["diameter_m"]), min_level_m=float(tk.get("min_level_m", 0.2)),
                          max_level_m=float(tk.get("max_level_m", 5.0)), init_level_m=float(tk.get("init_level_m", 3.0)),
                          geometry=Point(*xy[nid])))
    for p in pumps:
        sid = p.get("station_id", str(p["id"]))
        if not any(f["id"] == sid for f in frows):
            frows.append(dict(id=sid, kind="pump_station", name_zh=f"泵站{sid}", name_en=f"Pump station {sid}",
                              node_id=str(p["from_node"]), zone="Z", geometry=Point(*xy[str(p["from_node"])])))
    if frows:
        net["facilities"] = gpd.GeoDataFrame(frows, geometry="geometry", crs=CRS)
    srows = []
    for s in settlements:
        minx, miny, maxx, maxy = s["bounds"]
        from shapely.geometry import box
        srows.append(dict(id=str(s["id"]), name_zh=s.get("name_zh", s["id"]), name_en=s.get("name_en", s["id"]),
                          kind=s["kind"], population=int(s["population"]), name_verified=bool(s.get("name_verified", True)),
                          storeys=int(s.get("storeys", 2)), zone=s.get("zone", "Z"),
                          geometry=box(X0 + minx, Y0 + miny, X0 + maxx, Y0 + maxy)))
    if srows:
        net["settlements"] = gpd.GeoDataFrame(srows, geometry="geometry", crs=CRS)
    if patterns:
        net["patterns"] = pd.DataFrame([(k, h, float(v)) for k, vals in patterns.items() for h, v in enumerate(vals)],
                                       columns=["pattern", "hour", "multiplier"])
    if metadata:
        net["metadata"] = pd.DataFrame(sorted(metadata.items()), columns=["key", "value"])
    from watersupply.schema import validate_network
    return validate_network(net, source="test network")


@pytest.fixture
def tiny_net() -> dict:
    """Plant → pump → hill reservoir → two settlements (a community and a village on a tree).

    ::

        WTP ─P1→ T1 ─ J1 ─ J2 ─ J3 (village V1)
                       └─ J4 ─ J5 (community C1, loop J4-J5-J6-J4)
                             └ J6
    """
    nodes = [
        dict(id="WTP", kind="plant", x=0, y=0, elevation_m=200, head_m=203),
        dict(id="PS-S", kind="pump_station", x=50, y=0, elevation_m=200),
        dict(id="PS-D", kind="pump_station", x=60, y=0, elevation_m=200),
        dict(id="T1", kind="reservoir", x=600, y=0, elevation_m=260),
        dict(id="J1", x=900, y=0, elevation_m=230),
        dict(id="J2", x=1200, y=200, elevation_m=232, base_demand_m3d=60, population=500, settlement_id="V1", pattern="rural"),
        dict(id="J3", x=1400, y=400, elevation_m=235, base_demand_m3d=40, population=330, settlement_id="V1", pattern="rural"),
        dict(id="J4", x=1200, y=-200, elevation_m=220, base_demand_m3d=300, population=1500, settlement_id="C1", pattern="urban"),
        dict(id="J5", x=1400, y=-300, elevation_m=221, base_demand_m3d=200, population=1000, settlement_id="C1", pattern="urban"),
        dict(id="J6", x=1300, y=-450, elevation_m=222, base_demand_m3d=100, population=500, settlement_id="C1", pattern="urban"),
    ]
    pipes = [
        dict(id="M1", from_node="WTP", to_node="PS-S", diameter_mm=300),
        dict(id="M2", from_node="PS-D", to_node="T1", diameter_mm=200),
        dict(id="M3", from_node="T1", to_node="J1", diameter_mm=200),
        dict(id="B1", from_node="J1", to_node="J2", diameter_mm=100),
        dict(id="B2", from_node="J2", to_node="J3", diameter_mm=75),
        dict(id="M4", from_node="J1", to_node="J4", diameter_mm=150),
        dict(id="B3", from_node="J4", to_node="J5", diameter_mm=100),
        dict(id="B4", from_node="J5", to_node="J6", diameter_mm=100),
        dict(id="B5", from_node="J6", to_node="J4", diameter_mm=100),
    ]
    pumps = [dict(id="P1", station_id="PS1", from_node="PS-S", to_node="PS-D", design_flow_ls=12, design_head_m=70,
                  control_node="T1", on_below_m=2.0, off_above_m=4.5)]
    tanks = [dict(node_id="T1", diameter_m=12, min_level_m=0.2, max_level_m=5.0, init_level_m=3.0)]
    settlements = [
        dict(id="V1", kind="village", population=830, storeys=2, bounds=(1100, 100, 1500, 500), name_zh="村一"),
        dict(id="C1", kind="community", population=3000, storeys=3, bounds=(1100, -500, 1500, -100), name_zh="社区一"),
    ]
    from watersupply.generator import PATTERNS
    return make_network(nodes, pipes, pumps=pumps, tanks=tanks, settlements=settlements,
                        patterns={"urban": PATTERNS["urban"], "rural": PATTERNS["rural"]},
                        metadata={"name": "tiny", "duration_h": "48"})


@pytest.fixture(scope="session")
def tonghui_path() -> Path:
    from watersupply.io import get_path
    return get_path("tonghui")


@pytest.fixture(scope="session")
def tonghui_net(tonghui_path: Path) -> dict:
    from watersupply.io import read_network
    return read_network(tonghui_path)


@pytest.fixture(scope="session")
def tonghui_baseline(tonghui_net: dict):
    """The full Tonghui baseline (72 h, chlorine and age), solved once per test session.

    Tests must not mutate it.
    """
    from watersupply.baseline import run_baseline
    return run_baseline(tonghui_net)


@pytest.fixture
def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
