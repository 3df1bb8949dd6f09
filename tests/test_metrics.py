"""Metrics: service heads, summaries, soundness, people without water."""

from __future__ import annotations

import pytest

from watersupply import metrics
from watersupply.simulation import run_simulation
from watersupply.standards import thresholds


@pytest.fixture
def tiny_result(tiny_net):
    return run_simulation(tiny_net)


def test_service_heads_follow_the_rules(tiny_net):
    sh = metrics.service_heads(tiny_net)
    assert sh["J2"] == 10.0  # village, 2 storeys: rural rule
    assert sh["J4"] == 16.0  # community, 3 storeys: GB 50013 12 + 4


def test_summaries_join_on_ids(tiny_net, tiny_result):
    ns = metrics.node_summary(tiny_result, tiny_net)
    assert ns.index.name == "id" and "J3" in ns.index
    assert ns.loc["J3", "min_pressure_m"] <= ns.loc["J3", "mean_pressure_m"] <= ns.loc["J3", "max_pressure_m"]
    ps = metrics.pipe_summary(tiny_result, tiny_net)
    assert set(ps.index) == set(tiny_net["pipes"]["id"])
    st = metrics.settlement_summary(tiny_result, tiny_net)
    assert list(st.index) == ["V1", "C1"]
    assert st.loc["V1", "population"] == 830
    assert st.loc["C1", "demand_m3d"] == pytest.approx(600, rel=0.01)


def test_pump_energy_is_physical(tiny_net, tiny_result):
    pe = metrics.pump_energy(tiny_result, tiny_net)
    row = pe.loc["P1"]
    assert row["volume_m3"] > 0
    # kWh/m³ = g·H/(3600·η) for a lift of roughly 60-75 m at 75 %
    assert 60 * 9.81 / 3600 / 0.75 * 0.8 < row["kwh_per_m3"] < 80 * 9.81 / 3600 / 0.75 * 1.2


def test_soundness_checks_pass_on_tiny_and_fail_when_broken(tiny_net, tiny_result):
    sd = metrics.soundness(tiny_result, tiny_net)
    assert sd.loc["min_pressure_demand_nodes_m", "passed"]
    assert sd.loc["chlorine_node_share", "passed"]
    strict = thresholds({"tap_chlorine_min_mgL": 5.0})
    assert not metrics.soundness(tiny_result, tiny_net, strict).loc["chlorine_node_share", "passed"]


def test_people_without_water_counts_population_below_minimum(tiny_net):
    net = dict(tiny_net)
    nodes = net["nodes"].copy()
    nodes.loc[nodes["id"] == "J3", "elevation_m"] = 270.0
    net["nodes"] = nodes
    res = run_simulation(net, duration_h=4, age=False)
    people = metrics.people_without_water(res, net)
    assert (people["V1"] == 330).all()
    assert (people["C1"] == 0).all()
