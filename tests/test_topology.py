"""Tests of watersupply.topology: one set of rules for direction, closed links, segments and reachability."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import wntr
from shapely.geometry import Point

from conftest import CRS, make_network
from watersupply import NetworkDataError
from watersupply.model import to_wntr
from watersupply.topology import (isolation_segment, layer_link_table, link_table, reachable, source_graph,
                                  supply_graph, valve_segments)


@pytest.fixture
def cv_net() -> dict:
    """Plant W → J1 → J2 (CV pipe C1 J2 → J3, the wrong way for supply) → J3; J4 behind a closed pipe."""
    nodes = [dict(id="W", kind="plant", x=0, y=0, elevation_m=100, head_m=150),
             dict(id="J1", x=100, y=0, elevation_m=100, base_demand_m3d=10, population=10),
             dict(id="J2", x=200, y=0, elevation_m=100, base_demand_m3d=10, population=10),
             dict(id="J3", x=300, y=0, elevation_m=100, base_demand_m3d=10, population=10),
             dict(id="J4", x=100, y=100, elevation_m=100, base_demand_m3d=10, population=10)]
    pipes = [dict(id="P1", from_node="W", to_node="J1", diameter_mm=150),
             dict(id="P2", from_node="J1", to_node="J2", diameter_mm=150),
             dict(id="C1", from_node="J3", to_node="J2", diameter_mm=100, status="CV"),
             dict(id="P4", from_node="J1", to_node="J4", diameter_mm=100, status="CLOSED")]
    return make_network(nodes, pipes, metadata={"name": "cv"})


def test_check_valve_pipes_are_one_way_from_the_model_and_the_layers(cv_net: dict) -> None:
    wn = to_wntr(cv_net)
    from_model = link_table(wn)
    from_layers = layer_link_table(cv_net)
    assert from_model.loc["C1", "one_way"] and from_layers.loc["C1", "one_way"]
    assert from_model.loc["P4", "closed"] and from_layers.loc["P4", "closed"]
    for links in (from_model, from_layers):
        g = supply_graph(links, nodes=wn.node_name_list)
        assert g.has_edge("J3", "J2") and not g.has_edge("J2", "J3")
        assert not g.has_edge("J1", "J4")  # closed
        assert sorted(reachable(g, ["W"])) == ["J1", "J2", "W"]
    assert supply_graph(from_model, include_closed=True).has_edge("J1", "J4")
    assert not supply_graph(from_model, closed=["P2"]).has_edge("J1", "J2")


def test_pumps_and_pressure_valves_one_way_other_valves_both() -> None:
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=10.0)
    for j in "ABCDE":
        wn.add_junction(j, elevation=0.0)
    wn.add_curve("c", "HEAD", [(0.01, 20.0)])
    wn.add_pump("PU", "R", "A", "HEAD", "c")
    wn.add_valve("PRV1", "A", "B", 0.1, "PRV", 0.0, 10.0)
    wn.add_valve("TCV1", "B", "C", 0.1, "TCV", 0.0, 1.0)
    wn.add_valve("FCV1", "D", "C", 0.1, "FCV", 0.0, 0.01)
    wn.add_pipe("P", "D", "E", 10.0, 0.1, 100.0)
    g = supply_graph(link_table(wn))
    assert g.has_edge("R", "A") and not g.has_edge("A", "R")
    assert g.has_edge("A", "B") and not g.has_edge("B", "A")
    assert g.has_edge("B", "C") and g.has_edge("C", "B")
    assert g.has_edge("D", "C") and not g.has_edge("C", "D")
    assert sorted(reachable(g, ["R"])) == ["A", "B", "C", "R"]  # D and E sit upstream of the FCV


def test_source_graph_agrees_with_the_directed_graph(cv_net: dict) -> None:
    wn = to_wntr(cv_net)
    links = link_table(wn)
    sg = source_graph(wn.node_name_list, wn.reservoir_name_list, links)
    cut = sg.cut_off(sg.base(), np.ones(len(sg.switch_names), dtype=bool))
    reach = reachable(supply_graph(links, nodes=wn.node_name_list), wn.reservoir_name_list)
    assert [n for n, c in zip(sg.nodes, cut) if c] == [n for n in wn.node_name_list if n not in reach]
    assert sorted(n for n, c in zip(sg.nodes, cut) if c) == ["J3", "J4"]


def _valves(net: dict, triples: list[tuple[str, str, str]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame([dict(id=i, link=lk, node=n, geometry=Point(0, 0)) for i, lk, n in triples],
                            geometry="geometry", crs=CRS)


def test_segments_are_wntrs_and_isolation_closes_the_valved_links_around(tiny_net: dict) -> None:
    wn = to_wntr(tiny_net)
    links = list(wn.link_name_list)
    # a valve on every second link, at its start node
    triples = [(f"V{i}", lk, wn.get_link(lk).start_node_name) for i, lk in enumerate(links) if i % 2 == 0]
    valves = _valves(tiny_net, triples)
    vl = pd.DataFrame({"link": valves["link"], "node": valves["node"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node_seg, link_seg, _ = wntr.metrics.valve_segments(wn.to_graph(), vl)
    segs = valve_segments(wn, valves)
    for s, seg in segs.items():
        assert sorted(seg.own) == sorted(link_seg.index[link_seg == s])
        assert sorted(seg.nodes) == sorted(node_seg.index[node_seg == s])
        extra = {lk for _v, lk, nd in triples if nd in seg.nodes}   # valves at its nodes close their links
        assert set(seg.links) == set(seg.own) | extra
    for lk in links:
        closed, nodes = isolation_segment(wn, lk, valves, segments=segs)
        assert lk in closed
        assert (closed, nodes) == isolation_segment(wn, lk, valves)


def test_bad_valves_are_named(tiny_net: dict) -> None:
    wn = to_wntr(tiny_net)
    link = wn.link_name_list[0]
    other = next(n for n in wn.node_name_list if n not in (wn.get_link(link).start_node_name,
                                                          wn.get_link(link).end_node_name))
    with pytest.raises(NetworkDataError, match=r"valve 'V1' is on link 'XX'"):
        valve_segments(wn, _valves(tiny_net, [("V1", "XX", other)]))
    with pytest.raises(NetworkDataError, match=rf"valve 'V1' protects node '{other}', which is not an end"):
        valve_segments(wn, _valves(tiny_net, [("V1", link, other)]))
    assert isolation_segment(wn, link, None) == ([link], [])


@pytest.mark.slow
def test_tonghui_segments_are_wntrs(tonghui_net: dict) -> None:
    wn = to_wntr(tonghui_net, duration_h=1)
    vl = tonghui_net["valves"][["link", "node"]].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ns, link_seg, _ = wntr.metrics.valve_segments(wn.to_graph(), vl)
    segs = valve_segments(wn, tonghui_net["valves"])
    assert {s: sorted(seg.own) for s, seg in segs.items() if seg.own} == \
        {int(s): sorted(link_seg.index[link_seg == s]) for s in sorted(set(link_seg))}
