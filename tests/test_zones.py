"""Pressure zones from the ground (watersupply.zones): static head, the cut rule, devices, EPANET verification."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import make_network
from watersupply import ConfigError, NetworkDataError
from watersupply.zones import apply_zones, check_zones, plan_zones, static_heads, tap_limits, zones_layer

HILL = [280, 270, 260, 250, 240, 230, 220, 210, 200, 190, 180, 170, 160, 150]
RURAL = [0.25, 0.20, 0.20, 0.20, 0.30, 0.70, 1.60, 2.00, 1.50, 1.00, 0.90, 1.20,
         1.50, 1.00, 0.80, 0.80, 1.00, 1.50, 2.00, 1.80, 1.30, 0.90, 0.50, 0.35]


def hillside(*, loop: bool = False, source_kind: str = "plant") -> dict:
    """A source at 300 m and a chain of village taps every 100 m, from 280 m down to 150 m.

    Rural limit 40 m, 2-storey service head 10 m, margin 5 m: a zone spans taps within 25 m
    of each other, so the 14 taps need zones {280,270}, {260..240}, {230..210}, {200..180},
    {170..150}: PRVs on P260, P230, P200, P170, each set to 20 m (the zone's lowest tap at 40 m).
    `loop` adds a parallel pipe from T270 to T250 (crossing a zone boundary: it must close).
    """
    nodes = [dict(id="SRC", kind=source_kind, x=0, y=0, elevation_m=300 if source_kind == "plant" else 296,
                  head_m=300)]
    pipes, prev = [], "SRC"
    for i, z in enumerate(HILL):
        nodes.append(dict(id=f"T{z}", x=100 * (i + 1), y=0, elevation_m=z, base_demand_m3d=20, population=160,
                          pattern="rural"))
        pipes.append(dict(id=f"P{z}", from_node=prev, to_node=f"T{z}", diameter_mm=100))
        prev = f"T{z}"
    if loop:
        pipes.append(dict(id="L1", from_node="T270", to_node="T250", diameter_mm=50, length_m=400))
    tanks = [dict(node_id="SRC", diameter_m=30, min_level_m=0.5, max_level_m=4.0, init_level_m=3.5)] \
        if source_kind == "reservoir" else []
    return make_network(nodes, pipes, tanks=tanks, patterns={"rural": RURAL})


def test_hillside_needs_four_prvs_at_known_pipes():
    net = hillside()
    plan = plan_zones(net)
    assert plan.devices["pipe"].tolist() == ["P260", "P230", "P200", "P170"]
    assert plan.devices["setting_m"].tolist() == [20.0, 20.0, 20.0, 20.0]
    assert (plan.devices["device"] == "prv").all()
    assert plan.devices["diameter_mm"].tolist() == [100.0] * 4  # sized to the pipe
    taps = plan.nodes[plan.nodes["tap"]]
    assert taps["static_before_m"].max() == pytest.approx(150.0)
    assert taps["static_m"].max() == pytest.approx(40.0)
    assert taps["static_m"].min() == pytest.approx(20.0)
    assert (taps["flag"] == "ok").all()
    assert plan.zones["zone"].nunique() == 5
    assert plan.boundary.empty


def test_hillside_zoned_passes_epanet():
    net = hillside()
    zoned = apply_zones(net, plan_zones(net))
    cv = zoned["control_valves"]
    assert cv["type"].tolist() == ["PRV"] * 4 and cv["to_node"].tolist() == ["T260", "T230", "T200", "T170"]
    check = check_zones(zoned)
    assert check.passed, check.notes
    assert check.taps["static_m"].max() <= 40.05
    assert check.taps["static_m"].to_numpy() == pytest.approx(check.taps["static_rule_m"].to_numpy(), abs=0.05)
    assert check.peak_hour == 7.0
    before = check_zones(net)
    assert not before.passed and (~before.taps["static_ok"]).sum() == 11


def test_flat_network_gets_no_zones(tiny_net):
    nodes = [dict(id="SRC", kind="plant", x=0, y=0, elevation_m=120, head_m=125)]
    nodes += [dict(id=f"J{i}", x=100 * i, y=50 * (i % 2), elevation_m=100 + (i % 3), base_demand_m3d=10, population=80)
              for i in range(1, 8)]
    pipes = [dict(id=f"P{i}", from_node="SRC" if i == 1 else f"J{i - 1}", to_node=f"J{i}", diameter_mm=100)
             for i in range(1, 8)]
    for net in (make_network(nodes, pipes), tiny_net):
        plan = plan_zones(net)
        assert plan.devices.empty and plan.boundary.empty
        assert (plan.nodes["zone"] == plan.nodes["zone_before"]).all()
        assert (plan.nodes["flag"] == "ok").all()


def test_loop_across_a_zone_boundary_is_closed():
    net = hillside(loop=True)
    plan = plan_zones(net)
    assert plan.boundary["pipe"].tolist() == ["L1"]
    zoned = apply_zones(net, plan)
    assert zoned["pipes"].set_index("id").at["L1", "status"] == "CLOSED"
    assert static_heads(zoned).loc[[f"T{z}" for z in HILL], "static_head_m"].max() <= 40.0 + 1e-6


def test_break_pressure_tanks_from_a_tank_source():
    net = hillside(source_kind="reservoir")  # tank bottom 296 m + 4 m: overflow at 300 m
    plan = plan_zones(net, device="break_tank")
    assert plan.devices["pipe"].tolist() == ["P260", "P230", "P200", "P170"]
    zoned = apply_zones(net, plan)
    fac = zoned["facilities"].set_index("id")
    bpt = fac[fac["role"] == "break_tank"]
    assert len(bpt) == 4 and (bpt["name_zh"] == "减压池").all()
    assert (bpt["bottom_elev_m"] + bpt["max_level_m"]).tolist() == pytest.approx([280.0, 250.0, 220.0, 190.0])
    assert static_heads(zoned).loc[[f"T{z}" for z in HILL], "static_head_m"].max() <= 40.0 + 1e-6
    check = check_zones(zoned)  # the float valve (a PRV at the overflow level) keeps each tank full, not overflowing
    assert check.passed, check.notes
    assert check.taps["min_pressure_m"].min() > 10.0


def test_static_head_rules_for_pumps_and_prvs():
    # a pump lifting straight into taps (no tank): shut-off head 1.33 × design; a pump filling a tank: the tank level
    nodes = [dict(id="W", kind="plant", x=0, y=0, elevation_m=100, head_m=100),
             dict(id="S", x=10, y=0, elevation_m=100), dict(id="D", x=20, y=0, elevation_m=100),
             dict(id="A", x=200, y=0, elevation_m=110, base_demand_m3d=10),
             dict(id="S2", x=10, y=100, elevation_m=100), dict(id="D2", x=20, y=100, elevation_m=100),
             dict(id="T", kind="reservoir", x=300, y=100, elevation_m=150),
             dict(id="B", x=400, y=100, elevation_m=120, base_demand_m3d=10)]
    pipes = [dict(id="P1", from_node="W", to_node="S", diameter_mm=100),
             dict(id="P2", from_node="D", to_node="A", diameter_mm=100),
             dict(id="P3", from_node="W", to_node="S2", diameter_mm=100),
             dict(id="P4", from_node="D2", to_node="T", diameter_mm=100),
             dict(id="P5", from_node="T", to_node="B", diameter_mm=100)]
    pumps = [dict(id="PU1", from_node="S", to_node="D", design_flow_ls=5, design_head_m=30),
             dict(id="PU2", from_node="S2", to_node="D2", design_flow_ls=5, design_head_m=60, control_node="T",
                  on_below_m=1, off_above_m=3)]
    net = make_network(nodes, pipes, pumps=pumps,
                       tanks=[dict(node_id="T", diameter_m=5, min_level_m=0.2, max_level_m=4, init_level_m=2)])
    sh = static_heads(net)
    assert sh.at["A", "hgl_m"] == pytest.approx(100 + 1.33 * 30) and sh.at["A", "source"] == "PU1"
    assert sh.at["D2", "hgl_m"] == pytest.approx(154.0) and sh.at["B", "static_head_m"] == pytest.approx(34.0)


def test_too_tall_building_is_flagged_short():
    nodes = [dict(id="SRC", kind="plant", x=0, y=0, elevation_m=150, head_m=150),
             dict(id="J1", x=100, y=0, elevation_m=100, base_demand_m3d=100, population=500, settlement_id="C")]
    net = make_network(nodes, [dict(id="P1", from_node="SRC", to_node="J1", diameter_mm=150)],
                       settlements=[dict(id="C", kind="community", population=500, storeys=12,
                                         bounds=(50, -50, 150, 50))])
    lim = tap_limits(net)
    assert lim.at["J1", "kind"] == "community" and lim.at["J1", "limit_m"] == 45.0
    assert lim.at["J1", "service_m"] == 52.0  # GB 50013: 12 m + 4 m × 10 storeys
    plan = plan_zones(net)
    assert plan.nodes.at["J1", "flag"] == "short"  # held at the 45 m limit, below its 52 m service head
    assert plan.nodes.at["J1", "static_m"] == pytest.approx(45.0)


def test_inputs_are_not_mutated_and_layer_round_trips(tmp_path):
    from watersupply.io import read_network, write_network

    net = hillside(loop=True)
    snapshot = {k: v.copy() for k, v in net.items()}
    plan = plan_zones(net)
    zoned = apply_zones(net, plan)
    for k, v in snapshot.items():
        assert v.equals(net[k]), k
    layer = zones_layer(plan)
    assert layer.crs.to_epsg() == 4545 and len(layer) == 5
    assert layer.geometry.is_valid.all() and set(layer["zone"]) == set(plan.nodes["zone"])
    assert layer.set_index("zone").at["Z-Z1", "device_id"] == "PRV-1"
    write_network(zoned, tmp_path / "z.gpkg")
    back = read_network(tmp_path / "z.gpkg")
    assert len(back["zones"]) == 5 and len(back["control_valves"]) == 4


def test_bad_input_gives_clear_errors():
    net = hillside()
    with pytest.raises(ConfigError, match="device must be one of prv, break_tank"):
        plan_zones(net, device="valve")
    with pytest.raises(ConfigError, match="default_kind must be one of village, community"):
        plan_zones(net, default_kind="town")
    with pytest.raises(ConfigError, match="unknown threshold 'rural_max_static_m'.*rural_max_static_head_m"):
        plan_zones(net, limits={"rural_max_static_m": 30})
    with pytest.raises(ConfigError, match="margin_m must be a finite number >= 0"):
        plan_zones(net, margin_m=-1)
    bad = {k: v.copy() for k, v in net.items()}
    bad["nodes"]["elevation_m"] = bad["nodes"]["elevation_m"].astype(float)
    bad["nodes"].loc[3, "elevation_m"] = float("nan")
    with pytest.raises(NetworkDataError, match=r"elevation_m is missing at 1 node\(s\) \(T260\).*--dem"):
        plan_zones(bad)
    other = hillside(loop=True)
    plan = plan_zones(other)
    plan.devices.loc[0, "pipe"] = "NOPE"
    with pytest.raises(NetworkDataError, match="device 'PRV-1' is on pipe 'NOPE'"):
        apply_zones(net, plan)


def test_tonghui_is_zoned_from_the_ground(tonghui_net):
    """Issue 15: the shipped model was zoned with plan_zones/apply_zones (generator); planning it again
    adds nothing, every tap is within its limit, and the hill villages needed PRVs as well as the town."""
    plan = plan_zones(tonghui_net)
    taps = plan.nodes[plan.nodes["tap"]]
    assert len(plan.devices) == 0
    assert (taps["flag"] == "ok").all()
    assert taps.loc[taps["kind"] == "village", "static_m"].max() <= 40.0 + 1e-6
    assert taps.loc[taps["kind"] == "community", "static_m"].max() <= 45.0 + 1e-6
    prv = tonghui_net["control_valves"]
    prv = prv[prv["id"].str.startswith("PRV-")]
    assert (prv["type"] == "PRV").all() and len(prv) > 100
    zone_of = tonghui_net["nodes"].set_index("id")["settlement_id"]
    assert set(zone_of.reindex(prv["to_node"]).dropna()) == {f"C{i}" for i in range(1, 5)} | {f"V{i}" for i in range(1, 8)}
    assert "zones" in tonghui_net and len(tonghui_net["zones"]) > len(prv) // 2


def test_zones_layer_is_drawn_on_the_maps():
    from test_webmap import payload
    from watersupply.maps import map_html, service_map, static_map

    net = hillside()
    zoned = apply_zones(net, plan_zones(net))
    layers = {k: zoned[k] for k in ("nodes", "pipes", "facilities", "zones") if k in zoned}
    data = payload(map_html(service_map(layers, lang="en")))
    assert data["zones"]["label"] == ["Z", "Z-Z1", "Z-Z2", "Z-Z3", "Z-Z4"]
    assert data["zones"]["designed"] == [False, True, True, True, True]
    assert data["zones"]["cols"]["device"][1] == "PRV-1" and data["text"]["zones"] == "Pressure zones"
    fig = static_map(layers, lang="en")
    texts = {t.get_text() for t in fig.axes[0].get_legend().get_texts()} if fig.axes[0].get_legend() else set()
    texts |= {t.get_text() for ax in fig.axes for lg in ([ax.get_legend()] if ax.get_legend() else [])
              for t in lg.get_texts()}
    texts |= {t.get_text() for lg in fig.legends for t in lg.get_texts()}
    assert "Pressure zones" in texts and "Z-Z1, Z-Z2, Z-Z3, Z-Z4" in texts


def test_pumped_hillside_is_zoned_below_the_pump():
    # a plant at 150 m lifts straight into the hillside (no tank): static head = shut-off head 1.33 × 120 m + 150 m
    net = hillside()
    nodes = net["nodes"].copy()
    nodes.loc[nodes["id"] == "SRC", ["elevation_m", "head_m"]] = [150.0, 150.0]
    import geopandas as gpd
    from shapely.geometry import Point

    extra = gpd.GeoDataFrame([dict(id=n, kind="junction", elevation_m=150.0, zone="Z", base_demand_m3d=0.0,
                                   population=0, demand_category="none", geometry=Point(380_000 + dx, 3_210_000))
                              for n, dx in (("PS", 10), ("PD", 20))], geometry="geometry", crs=nodes.crs)
    nodes = gpd.GeoDataFrame(pd.concat([nodes, extra], ignore_index=True), geometry="geometry", crs=nodes.crs)
    pipes = net["pipes"].copy()
    pipes.loc[pipes["id"] == "P280", "from_node"] = "PD"
    pumps = gpd.GeoDataFrame([dict(id="PU", station_id="PU", from_node="PS", to_node="PD", role="duty",
                                   design_flow_ls=5.0, design_head_m=120.0, efficiency=0.7, status="OPEN",
                                   geometry=Point(380_015, 3_210_001))], geometry="geometry", crs=nodes.crs)
    link = pipes.iloc[[0]].copy()
    link["id"], link["from_node"], link["to_node"] = "PIN", "SRC", "PS"
    pipes = gpd.GeoDataFrame(pd.concat([pipes, link], ignore_index=True), geometry="geometry", crs=nodes.crs)
    net = {**net, "nodes": nodes, "pipes": pipes, "pumps": pumps}
    sh = static_heads(net)
    assert sh.at["T280", "hgl_m"] == pytest.approx(150 + 1.33 * 120) and sh.at["T280", "source"] == "PU"
    plan = plan_zones(net)
    assert (plan.nodes.loc[plan.nodes["tap"], "flag"] == "ok").all()
    assert plan.devices["pipe"].tolist() == ["P260", "P230", "P200", "P170"]  # HGL 309.6 m: T270 at 39.6 m
    assert static_heads(apply_zones(net, plan)).loc[[f"T{z}" for z in HILL], "static_head_m"].max() <= 40 + 1e-6


@pytest.mark.browser
def test_browser_draws_the_zones(tmp_path):
    from test_webmap import CHROMIUM, Visit

    if not __import__("os").path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    from watersupply.maps import service_map, write_map

    net = hillside()
    zoned = apply_zones(net, plan_zones(net))
    path = write_map(service_map({k: zoned[k] for k in ("nodes", "pipes", "facilities", "zones")}, lang="en"),
                     tmp_path / "zones.html")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            v = Visit(b, path)
            page = v.page
            assert page.locator("path.ws-zone").count() == 5
            assert "Pressure zones" in page.locator(".leaflet-control-layers-overlays").inner_text()
            assert "Z-Z1, Z-Z2, Z-Z3, Z-Z4" in page.locator(".ws-legend").inner_text()
            v.assert_clean()
        finally:
            b.close()
