"""The Tonghui reference network reproduces the published facts and is regenerated identically."""

from __future__ import annotations

import filecmp

import geopandas as gpd
import pyogrio
import pytest

from watersupply.generator import BRANCH_KM, MAIN_KM, write_tonghui


def test_published_counts_from_the_geopackage(tonghui_path):
    fac = gpd.read_file(tonghui_path, layer="facilities")
    counts = fac["kind"].value_counts().to_dict()
    assert counts == {"plant": 1, "pump_station": 7, "reservoir": 9}
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
    # the attribute agrees with the geometry within 1 %
    ratio = pipes["length_m"] / pipes.geometry.length
    assert ratio.between(0.99, 1.01).all()


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
    assert pipes.loc[pipes["class"] == "branch", "diameter_mm"].between(50, 150).all()
    assert pipes.loc[pipes["class"] == "main", "diameter_mm"].between(100, 500).all()
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
    nodes = tonghui_net["nodes"]
    demand = nodes.loc[nodes["base_demand_m3d"] > 0, "id"]
    reach = nx.descendants(g, "WTP")
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


@pytest.mark.slow
def test_regeneration_is_byte_identical(tmp_path, tonghui_path):
    write_tonghui(tmp_path)
    assert filecmp.cmp(tmp_path / "tonghui.gpkg", tonghui_path, shallow=False)
    assert filecmp.cmp(tmp_path / "tonghui.inp", tonghui_path.with_suffix(".inp"), shallow=False)
