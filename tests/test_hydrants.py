"""Hydrant placement, coverage and fire-flow checks (watersupply.hydrants), solved by EPANET."""

from __future__ import annotations

import numpy as np
import pytest

from watersupply import hydrants as hy
from watersupply._errors import NetworkDataError
from watersupply.io import read_network, write_network
from watersupply.scenario import parse_scenario, run_scenario
from watersupply.schema import validate_network
from watersupply.simulation import run_simulation


def test_fire_flow_table() -> None:
    assert hy.fire_flow_ls(10_000) == 15.0 and hy.fire_flow_ls(10_001) == 20.0
    assert hy.fire_flow_ls(25_000) == 20.0 and hy.fire_flow_ls(30_000) == 30.0
    assert hy.fires_at_once(30_000) == 2
    with pytest.raises(NetworkDataError, match="population"):
        hy.fire_flow_ls(-1)


def test_hydrants_on_large_mains_at_most_120_m_apart(tiny_net: dict, tmp_path) -> None:
    net = hy.add_hydrants(tiny_net)
    assert "hydrants" not in tiny_net
    h = net["hydrants"]
    assert len(h) and h["id"].is_unique
    pipes = tiny_net["pipes"].set_index("id")
    assert (pipes.loc[h["pipe"], "diameter_mm"].to_numpy() >= 100).all()
    # on each pipe, consecutive hydrants are <= 120 m apart and the ends are within 60 m
    for pid, grp in h.groupby("pipe"):
        ch = np.sort(grp["chainage_m"].to_numpy())
        assert (np.diff(ch) <= 120.0 + 1e-6).all(), pid
    # the community's ring B3-B4-B5 (DN100) gets hydrants; the village's DN75 branch none
    assert {"B3", "B4", "B5"} <= set(h["pipe"]) and "B2" not in set(h["pipe"])
    nodes = net["nodes"].set_index("id")
    assert (nodes.loc[h["node"], "kind"] == "junction").all()
    validate_network(net)
    back = read_network(write_network(net, tmp_path / "h.gpkg"))
    assert len(back["hydrants"]) == len(h)
    bad = dict(net)
    bad["hydrants"] = h.assign(node="NOPE")
    with pytest.raises(NetworkDataError, match="hydrant 'H0001' has node 'NOPE'"):
        validate_network(bad)


def test_coverage_and_fire_flow_residual(tiny_net: dict) -> None:
    net = hy.add_hydrants(tiny_net)
    cov = hy.hydrant_coverage(net)
    assert cov.loc["C1", "fire_flow_ls"] == 15.0 and cov.loc["C1", "hydrants"] > 0
    assert 0 < cov.loc["C1", "covered_share"] <= 1
    base = run_simulation(net, duration_h=48, age=False)
    crit = hy.critical_hydrants(net, base)
    node = crit.loc["C1", "node"]
    assert crit.loc["C1", "min_pressure_m"] == pytest.approx(base.pressure.loc[24:47, node].min())
    data = hy.fire_flow_scenario(net, "C1", node=node, at_h=42)
    assert data["events"][0]["flow_ls"] == 15.0
    run = run_scenario(parse_scenario(data), net=net, age=False)
    fire = run.fires.iloc[0]
    assert fire["node"] == node and fire["delivered_min_ls"] > 0
    # the residual is what EPANET gives at the hydrant, checked against 10 m
    assert fire["passed"] == (fire["min_residual_pressure_m"] >= 10.0)
    assert fire["min_residual_pressure_m"] < base.pressure.loc[42:43, node].min()


@pytest.mark.slow
def test_tonghui_communities_get_hydrants(tonghui_net: dict) -> None:
    net = hy.add_hydrants(tonghui_net)
    cov = hy.hydrant_coverage(net)
    comm = cov[cov["kind"] == "community"]
    assert (comm["hydrants"] > 20).all() and (comm["fire_flow_ls"] >= 15).all()
    assert (cov.loc[cov["kind"] == "village", "hydrants"] > 0).all()


def test_shipped_fire_flow_scenarios_follow_gb50974(tonghui_net: dict) -> None:
    from watersupply.scenario import SCENARIOS_DIR, check_scenario, load_scenario
    st = tonghui_net["settlements"].set_index("id")
    nodes = tonghui_net["nodes"].set_index("id")
    for sid in ("C2", "C3", "C4"):
        sc = check_scenario(load_scenario(SCENARIOS_DIR / f"fire_flow_{sid.lower()}.yaml"), tonghui_net)
        ev = sc.events[0]
        assert ev.type == "fire_flow" and ev.for_h == hy.FIRE_DURATION_H
        assert ev.flow_ls == hy.fire_flow_ls(st.loc[sid, "population"])
        assert nodes.loc[ev.node, "settlement_id"] == sid
    heat = check_scenario(load_scenario(SCENARIOS_DIR / "heat_drought_2022.yaml"), tonghui_net)
    assert {e.type for e in heat.events} == {"demand_change", "plant_outage", "pump_station_outage"}
