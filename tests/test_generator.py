"""The earlier flat-terraced Tonghui generator (watersupply.generator), kept for reference: it still
reproduces the published facts. The bundled model is the hillside one (tests/test_generator_hillside.py)."""

from __future__ import annotations

import networkx as nx
import pytest

from watersupply.generator import BRANCH_KM, MAIN_KM, generate_tonghui
from watersupply.schema import validate_network


@pytest.fixture(scope="module")
def flat_net():
    return generate_tonghui()


def test_flat_reference_reproduces_the_published_facts(flat_net):
    validate_network(flat_net)
    counts = flat_net["facilities"]["kind"].value_counts().to_dict()
    assert counts == {"plant": 1, "pump_station": 7, "reservoir": 9}
    st = flat_net["settlements"]
    assert (st["kind"] == "village").sum() == 7 and (st["kind"] == "community").sum() == 4
    named = dict(zip(st["name_zh"], st["name_verified"]))
    for name in ("柏林村", "桥坝村", "思南村", "联惠社区", "新街子社区"):
        assert named[name]
    pipes = flat_net["pipes"]
    km = pipes.geometry.length.groupby(pipes["class"]).sum() / 1000.0
    assert km["main"] == pytest.approx(MAIN_KM, rel=0.005)
    assert km["branch"] == pytest.approx(BRANCH_KM, rel=0.005)
    meta = dict(zip(flat_net["metadata"]["key"], flat_net["metadata"]["value"]))
    assert meta["name"] == "tonghui" and "dem" not in meta       # flat terraces, no DEM


def test_flat_reference_mains_are_radial_and_reach_every_tap(flat_net):
    g = nx.DiGraph()
    for p in flat_net["pipes"].itertuples():
        g.add_edge(p.from_node, p.to_node)
        g.add_edge(p.to_node, p.from_node)
    for p in flat_net["pumps"].itertuples():
        g.add_edge(p.from_node, p.to_node)
    nodes = flat_net["nodes"]
    assert set(nodes.loc[nodes["base_demand_m3d"] > 0, "id"]) <= nx.descendants(g, "WTP")
    mains = flat_net["pipes"][flat_net["pipes"]["class"] == "main"]
    gm = nx.Graph(list(zip(mains["from_node"], mains["to_node"])))
    assert gm.number_of_edges() == gm.number_of_nodes() - nx.number_connected_components(gm)
