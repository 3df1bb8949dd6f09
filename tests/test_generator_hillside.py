"""The bundled Tonghui model (watersupply.generator_hillside) reproduces the published facts on its
synthetic hillside terrain, is designed from the ground, and is regenerated identically."""

from __future__ import annotations

import filecmp

import geopandas as gpd
import numpy as np
import pyogrio
import pytest

from watersupply.generator_hillside import BRANCH_KM, DEM_NAME, MAIN_KM, NAME, write_tonghui_hillside
from watersupply.io import get_path, read_network


@pytest.fixture(scope="module")
def tonghui_path():
    """The bundled Tonghui GeoPackage (networks/tonghui)."""
    return get_path(NAME)


@pytest.fixture(scope="module")
def tonghui_net(tonghui_path):
    return read_network(tonghui_path)


def test_published_counts_from_the_geopackage(tonghui_path):
    fac = gpd.read_file(tonghui_path, layer="facilities")
    counts = fac.loc[fac["part_of"].isna(), "kind"].value_counts().to_dict()
    assert counts == {"plant": 1, "pump_station": 7, "reservoir": 9}
    # the plant's clear well (清水池) is part of the plant, not one of the nine reservoirs
    assert fac.loc[fac["part_of"].notna(), "part_of"].tolist() == ["WTP"]
    st = gpd.read_file(tonghui_path, layer="settlements")
    assert (st["kind"] == "village").sum() == 7
    assert (st["kind"] == "community").sum() == 4
    named = dict(zip(st["name_zh"], st["name_verified"]))
    for name in ("柏林村", "桥坝村", "思南村", "联惠社区", "新街子社区"):
        assert named[name] is True or named[name] == 1
    placeholders = st[~st["name_verified"].astype(bool)]
    assert len(placeholders) == 6
    assert placeholders["name_zh"].str.contains("待核实").all()


def test_lengths_match_the_seed_from_geometry(tonghui_path):
    pipes = gpd.read_file(tonghui_path, layer="pipes")
    assert pipes.crs.to_epsg() == 4545
    km = pipes.geometry.length.groupby(pipes["class"]).sum() / 1000.0
    assert km["main"] == pytest.approx(MAIN_KM, rel=0.005)
    assert km["branch"] == pytest.approx(BRANCH_KM, rel=0.005)
    # the attribute agrees with the geometry within 1 % (a pipe split 1 m before a PRV keeps its length)
    from watersupply.zones import DEVICE_OFFSET_M

    diff = (pipes["length_m"] - pipes.geometry.length).abs()
    assert ((diff <= 0.01 * pipes["length_m"]) | (diff <= DEVICE_OFFSET_M + 0.01)).all()


def test_layers_and_columns(tonghui_path):
    layers = {name for name, _ in pyogrio.list_layers(tonghui_path)}
    assert {"nodes", "pipes", "facilities", "settlements", "pumps", "valves", "patterns", "metadata"} <= layers
    nodes = gpd.read_file(tonghui_path, layer="nodes")
    assert set(nodes["kind"]) == {"junction", "plant", "pump_station", "reservoir"}
    for col in ("id", "elevation_m", "settlement_id", "base_demand_m3d", "population"):
        assert col in nodes
    pipes = gpd.read_file(tonghui_path, layer="pipes")
    for col in ("id", "from_node", "to_node", "class", "diameter_mm", "material", "roughness_c", "length_m", "zone"):
        assert col in pipes
    # catalogue sizes (pipe_catalogue.size_pipes): PE by outside diameter dn and class, DI by DN
    for col in ("dn_mm", "pn_mpa", "existing"):
        assert col in pipes
    new = pipes[~pipes["existing"].astype(bool)]
    assert new.loc[new["material"] == "PE", "pn_mpa"].isin([1.0, 1.25, 1.6]).all()
    assert new["dn_mm"].between(32, 600).all()
    pe = new[new["material"] == "PE"]
    assert (pe["diameter_mm"] < pe["dn_mm"]).all()           # PE: dn is the outside diameter
    # a real model of this size: a few thousand pipes, demand nodes every 100-300 m on branches
    assert 2000 <= len(pipes) <= 5000
    branch_len = pipes.loc[pipes["class"] == "branch", "length_m"]
    assert 100 <= branch_len.median() <= 300


def test_radial_mains_plant_to_settlements(tonghui_net):
    import networkx as nx

    g = nx.DiGraph()
    for p in tonghui_net["pipes"].itertuples():
        g.add_edge(p.from_node, p.to_node)
        g.add_edge(p.to_node, p.from_node)
    for p in tonghui_net["pumps"].itertuples():
        g.add_edge(p.from_node, p.to_node)
    for v in tonghui_net["control_valves"].itertuples():   # PRVs of the pressure zones, the plant's FCV
        g.add_edge(v.from_node, v.to_node)
    nodes = tonghui_net["nodes"]
    demand = nodes.loc[nodes["base_demand_m3d"] > 0, "id"]
    reach = nx.descendants(g, "WTP-RAW")   # the treatment works' outlet, behind the clear well WTP
    assert set(demand) <= reach
    # mains alone form a tree (radial): edges = nodes - components
    mains = tonghui_net["pipes"][tonghui_net["pipes"]["class"] == "main"]
    gm = nx.Graph(list(zip(mains["from_node"], mains["to_node"])))
    assert gm.number_of_edges() == gm.number_of_nodes() - nx.number_connected_components(gm)


def test_geography_near_qijiang(tonghui_net):
    st = tonghui_net["settlements"].to_crs("EPSG:4326")
    b = st.total_bounds
    assert 106.6 < b[0] < b[2] < 106.8
    assert 28.95 < b[1] < b[3] < 29.1


def test_elevations_come_from_the_shipped_dem_through_the_build_path(tonghui_path, tonghui_net):
    """Issue 15: every node's elevation is the DEM sampled as `watersupply build --dem` samples it."""
    from watersupply.build import sample_dem

    dem = tonghui_path.parent / DEM_NAME
    nodes = tonghui_net["nodes"]
    # the layout's nodes (not the 1 m PRV offsets or the plant's clear-well fittings added after it)
    nodes = nodes[~nodes["id"].str.contains("-U$|^WTP-", regex=True)]
    z = sample_dem(nodes[["id", "geometry"]], dem).round(2)
    assert (z - nodes["elevation_m"]).abs().max() < 0.006
    meta = dict(zip(tonghui_net["metadata"]["key"], tonghui_net["metadata"]["value"]))
    assert meta["dem"] == DEM_NAME and "synthetic" in meta["dem_kind"]


def test_dem_is_a_small_synthetic_geotiff_of_the_service_area(tonghui_path, tonghui_net):
    import rasterio

    dem = tonghui_path.parent / DEM_NAME
    assert dem.stat().st_size < 3_000_000
    with rasterio.open(dem) as src:
        assert src.crs.to_epsg() == 4545 and 10 <= src.res[0] <= 30 and src.res[0] == src.res[1]
        assert "SYNTHETIC" in src.tags()["DESCRIPTION"]
        z = src.read(1)
        b = src.bounds
    assert 195 < z.min() < 215 and 600 < z.max() < 760     # the 綦江 at ~200-220 m, ridges to ~600-700 m
    x0, y0, x1, y1 = tonghui_net["pipes"].total_bounds
    assert b.left < x0 and b.bottom < y0 and x1 < b.right and y1 < b.top


def test_settlements_are_irregular_non_overlapping_footprints(tonghui_net):
    st = tonghui_net["settlements"].set_index("id")
    area = st.geometry.area
    assert st.geometry.union_all().area == pytest.approx(area.sum(), rel=1e-9)       # no overlap
    compactness = 4 * np.pi * area / st.geometry.length ** 2
    assert compactness.max() < 0.8                                                  # not near-circles
    assert area.round(-3).nunique() == len(st)                                     # no repeated areas
    nodes = tonghui_net["nodes"]
    dem = nodes[nodes["base_demand_m3d"] > 0]
    for sid, geom in st.geometry.items():
        pts = dem[dem["settlement_id"] == sid]
        assert pts.within(geom.buffer(1.0)).all(), sid


def test_terrain_relief_and_reservoirs_above_their_zones(tonghui_net):
    """Hill villages span 100 m and more; communities lie on the valley floor and low terraces; every
    reservoir sits above its zone's highest tap by at least the service head."""
    from watersupply.metrics import service_heads

    nodes = tonghui_net["nodes"]
    dem = nodes[nodes["base_demand_m3d"] > 0]
    st = tonghui_net["settlements"].set_index("id")
    z = dem.groupby("settlement_id")["elevation_m"].agg(["min", "max"])
    relief = z["max"] - z["min"]
    villages = st.index[st["kind"] == "village"]
    communities = st.index[st["kind"] == "community"]
    assert (relief[villages] >= 100).all()
    assert z.loc[communities, "max"].max() < 300 and z.loc[communities, "min"].min() < 220
    fac = tonghui_net["facilities"].set_index("id")
    head = service_heads(tonghui_net).reindex(dem["id"]).to_numpy()
    top = dem.assign(need=dem["elevation_m"].to_numpy() + head).groupby("settlement_id")["need"].max()
    for sid, zone in st["zone"].items():
        assert fac.loc[zone, "bottom_elev_m"] + fac.loc[zone, "min_level_m"] > top[sid], sid


def test_pump_heads_cover_the_lift_from_the_ground(tonghui_net):
    fac = tonghui_net["facilities"].set_index("id")
    duty = tonghui_net["pumps"][tonghui_net["pumps"]["role"] == "duty"]
    assert len(duty) == 8
    for p in duty.itertuples():
        st = fac.loc[p.station_id]
        src = fac.loc["WTP", "head_m"] if st["source"] == "WTP" else fac.loc[st["source"], "bottom_elev_m"]
        top = fac.loc[p.control_node, "bottom_elev_m"] + fac.loc[p.control_node, "max_level_m"]
        assert p.design_head_m > top - src, p.id


def test_mains_follow_the_ground_without_stretching(tonghui_net):
    meta = dict(zip(tonghui_net["metadata"]["key"], tonghui_net["metadata"]["value"]))
    assert 1.0 <= float(meta["main_tortuosity"]) < 1.15      # per pipe: alignment / straight line
    assert float(meta["branch_tortuosity"]) == pytest.approx(1.0)


@pytest.mark.slow
def test_regeneration_is_byte_identical(tmp_path, tonghui_path):
    write_tonghui_hillside(tmp_path)
    assert filecmp.cmp(tmp_path / DEM_NAME, tonghui_path.parent / DEM_NAME, shallow=False)
    assert filecmp.cmp(tmp_path / f"{NAME}.gpkg", tonghui_path, shallow=False)
    assert filecmp.cmp(tmp_path / f"{NAME}.inp", tonghui_path.with_suffix(".inp"), shallow=False)


def test_hydrants_on_the_settlements_own_mains_at_most_120_m_apart(tonghui_net):
    from watersupply.hydrants import HYDRANT_MIN_DN_MM, HYDRANT_SPACING_M

    hyd = tonghui_net["hydrants"]
    st = tonghui_net["settlements"]
    assert set(hyd["settlement_id"]) == set(st["id"])          # every community and every village centre
    pipes = tonghui_net["pipes"].set_index("id")
    on = pipes.loc[hyd["pipe"]]
    assert (on["dn_mm"].to_numpy() >= HYDRANT_MIN_DN_MM).all() and on["status"].ne("CLOSED").all()
    home = tonghui_net["nodes"].set_index("id")["settlement_id"]
    assert (home.reindex(on["from_node"]).to_numpy() == hyd["settlement_id"].to_numpy()).all()
    assert (home.reindex(on["to_node"]).to_numpy() == hyd["settlement_id"].to_numpy()).all()
    gaps = hyd.sort_values(["pipe", "chainage_m"]).groupby("pipe")["chainage_m"].diff().dropna()
    assert gaps.max() <= HYDRANT_SPACING_M + 0.1
    assert (hyd["id"] == [f"H{i:04d}" for i in range(1, len(hyd) + 1)]).all()


def test_leakage_and_unforeseen_demand_applied(tonghui_net):
    from watersupply.leakage import LEAKAGE_RATE_TARGET, UNFORESEEN_SHARE

    meta = dict(zip(tonghui_net["metadata"]["key"], tonghui_net["metadata"]["value"]))
    assert float(meta["leakage_rate"]) == LEAKAGE_RATE_TARGET
    assert float(meta["leakage_rate_achieved"]) == pytest.approx(LEAKAGE_RATE_TARGET, abs=0.002)
    assert float(meta["unforeseen_demand_share"]) == UNFORESEEN_SHARE
    nodes = tonghui_net["nodes"]
    j = nodes[nodes["kind"] == "junction"]
    assert (j["leakage_coeff"] > 0).mean() > 0.99
    users = j[j["base_demand_m3d"] > 0]
    registered = users["base_demand_m3d"] - users["unforeseen_m3d"]
    assert np.allclose(users["unforeseen_m3d"], UNFORESEEN_SHARE * registered, atol=1e-3)


def test_clear_well_production_follows_its_level_and_overloaded_pipes_are_reinforced(tonghui_net):
    from watersupply.generator_hillside import CLEAR_WELL_RESUME_M, CLEAR_WELL_STOP_M

    fcv = tonghui_net["control_valves"].set_index("id").loc["WTP-FCV"]
    assert (fcv["control_node"], fcv["off_above_m"], fcv["on_below_m"]) == ("WTP", CLEAR_WELL_STOP_M,
                                                                              CLEAR_WELL_RESUME_M)
    pipes = tonghui_net["pipes"]
    re = pipes[pipes["reinforced"]]
    assert len(re) and not re["existing"].any() and re["pn_mpa"].notna().all()
    # the zoning's PRV nodes belong to the settlement they feed: a community's PRV pipes stay its own
    nodes = tonghui_net["nodes"].set_index("id")
    prv_u = nodes.index[nodes.index.str.match(r"^PRV-\d+-U$")]
    assert nodes.loc[prv_u, "settlement_id"].notna().mean() > 0.9


@pytest.mark.slow
def test_baseline_hydraulics_c1_service_head_no_fcv_warning_daily_cycle(tonghui_net):
    """72 h of the shipped model (hydraulics, EPANET): 联惠社区 meets its 28 m service head, the clear
    well's FCV always delivers, and every tank repeats its day (the quality cycle needs it)."""
    from watersupply.simulation import PERIODIC_DRIFT_MAX, run_simulation

    res = run_simulation(tonghui_net, age=False, duration_h=72, steady=False)
    nodes = tonghui_net["nodes"]
    c1 = nodes.loc[(nodes["settlement_id"] == "C1") & (nodes["base_demand_m3d"] > 0), "id"]
    assert res.pressure.loc[24:, c1].min().min() >= 28.0
    ev = res.sanity
    assert ev is None or not ev["detail"].astype(str).str.contains("cannot deliver").any()
    fac = tonghui_net["facilities"]
    tanks = fac[fac["kind"] == "reservoir"].set_index("node_id")
    span = tanks["max_level_m"] - tanks["min_level_m"]
    lv = res.tank_level
    drift = ((lv.loc[72.0, tanks.index] - lv.loc[48.0, tanks.index]).abs() / span).max()
    assert drift <= PERIODIC_DRIFT_MAX
