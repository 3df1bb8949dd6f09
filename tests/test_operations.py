"""Float valves, the plant's clear well and wall decay (watersupply.operations), solved by EPANET."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_network
from watersupply import operations as op
from watersupply._errors import NetworkDataError
from watersupply.model import to_wntr
from watersupply.schema import validate_network
from watersupply.simulation import run_simulation


@pytest.fixture
def gravity_net() -> dict:
    """A plant filling a small hill tank T2 by gravity; T2 feeds a village of two nodes."""
    from watersupply.generator import PATTERNS
    nodes = [
        dict(id="WTP", kind="plant", x=0, y=0, elevation_m=340, head_m=345),
        dict(id="T2", kind="reservoir", x=800, y=0, elevation_m=300),
        dict(id="J1", x=1200, y=0, elevation_m=265, base_demand_m3d=150, population=1250, pattern="rural",
             settlement_id="V1"),
        dict(id="J2", x=1500, y=200, elevation_m=262, base_demand_m3d=100, population=830, pattern="rural",
             settlement_id="V1"),
    ]
    pipes = [dict(id="IN", from_node="WTP", to_node="T2", diameter_mm=150),
             dict(id="OUT", from_node="T2", to_node="J1", diameter_mm=150),
             dict(id="B1", from_node="J1", to_node="J2", diameter_mm=100)]
    tanks = [dict(node_id="T2", diameter_m=6.0, min_level_m=0.3, max_level_m=4.0, init_level_m=3.0)]
    settlements = [dict(id="V1", kind="village", population=2080, storeys=2, bounds=(1100, -100, 1600, 300))]
    return make_network(nodes, pipes, tanks=tanks, settlements=settlements, patterns={"rural": PATTERNS["rural"]},
                        metadata={"name": "gravity", "duration_h": "48"})


def _switches(flow_ls) -> int:
    on = (flow_ls > 0.05).astype(int)
    return int((on.diff().abs() > 0).sum())


def test_inlet_found_by_topology(gravity_net: dict, tiny_net: dict) -> None:
    assert op.gravity_filled_reservoirs(gravity_net) == {"T2": "IN"}
    assert op.gravity_filled_reservoirs(tiny_net) == {}  # T1 is filled by a pump


def test_float_valve_makes_the_tank_cycle(gravity_net: dict) -> None:
    net = op.add_float_valves(gravity_net)
    assert "inlet_link" not in gravity_net["facilities"].columns  # input untouched
    row = net["facilities"].set_index("id").loc["T2"]
    assert row["inlet_link"] == "IN" and row["inlet_close_m"] == pytest.approx(3.9)
    assert row["inlet_open_m"] == pytest.approx(2.9)
    validate_network(net)
    fine = dict(hydraulic_timestep_s=300, report_timestep_s=300, age=False)
    before = run_simulation(gravity_net, **fine)
    after = run_simulation(net, **fine)
    lv_b, lv_a = before.tank_level["T2"], after.tank_level["T2"]
    # without the valve the tank sits at its top; with it, it turns over through the band
    assert lv_b.iloc[12:].min() > 3.8
    assert lv_a.iloc[12:].min() < 3.0 and lv_a.max() <= 3.95
    # the inlet opens a few times a day (hours apart), not at every step
    n = _switches(after.flow["IN"] * 1000.0)
    assert 2 <= n <= 2 * 12 * 2
    # the inlet brings what the village draws, not a through-flow into a full tank
    vol_in = float(after.flow["IN"].clip(lower=0).sum() * 300)
    vol_dem = float(after.demand[["J1", "J2"]].sum(axis=1).sum() * 300)
    assert vol_in == pytest.approx(vol_dem, rel=0.1)
    # the daily top-up makes the day repeat
    assert abs(lv_a.loc[24.0] - lv_a.loc[48.0]) < 0.05


def test_float_valve_errors(gravity_net: dict) -> None:
    with pytest.raises(NetworkDataError, match="not a pipe ending at it"):
        op.add_float_valves(gravity_net, inlets={"T2": "B1"})
    with pytest.raises(NetworkDataError, match="no room"):
        op.add_float_valves(gravity_net, close_margin_m=3.7)
    bad = op.add_float_valves(gravity_net)
    bad["facilities"].loc[bad["facilities"]["id"] == "T2", "inlet_link"] = "B1"
    with pytest.raises(NetworkDataError, match="inlet_link 'B1'"):
        validate_network(bad)


def test_wall_decay_by_material(tiny_net: dict) -> None:
    net = op.add_wall_decay(tiny_net)
    assert (net["pipes"]["wall_coeff_m_d"] == op.WALL_DECAY_M_D["PE"]).all()
    wn = to_wntr(net)
    assert wn.get_link("B1").wall_coeff == pytest.approx(-0.05 / 86400.0)
    with pytest.raises(NetworkDataError, match="'PE'"):
        op.add_wall_decay(tiny_net, rates={"DI": -0.05})
    # decay at the wall lowers the tap chlorine
    a = run_simulation(tiny_net, duration_h=24, age=False).chlorine["J3"].mean()
    b = run_simulation(net, duration_h=24, age=False).chlorine["J3"].mean()
    assert b < a


def test_clear_well_limits_production(tiny_net: dict) -> None:
    cap = 400.0  # m³/d ≈ 4.6 L/s, below the pump's 12 L/s
    net = op.add_clear_well(tiny_net, capacity_m3d=cap, volume_m3=60.0)
    validate_network(net)
    kinds = net["nodes"].set_index("id")["kind"]
    assert kinds["WTP"] == "reservoir" and kinds["WTP-RAW"] == "plant"
    fac = net["facilities"].set_index("id")
    assert fac.loc["WTP-CW", "part_of"] == "WTP" and fac.loc["WTP", "node_id"] == "WTP-RAW"
    res = run_simulation(net, duration_h=24, age=False)
    q = res.flow["WTP-FCV"] * 1000.0
    assert q.max() <= cap / 86.4 + 1e-3
    assert res.tank_level["WTP"].min() < res.tank_level["WTP"].iloc[0]  # the clear well is drawn on
    with pytest.raises(NetworkDataError, match="no production capacity"):
        op.add_clear_well(tiny_net)


def _fcv_warnings(res) -> int:
    """EPANET "FCV ... cannot deliver" events of a run (its sanity table)."""
    ev = res.sanity
    return 0 if ev is None or not len(ev) else int(ev["detail"].astype(str).str.contains("cannot deliver").sum())


def test_clear_well_level_control_stops_production_without_fcv_warnings(tiny_net: dict) -> None:
    cap = 2000.0  # m³/d ≈ 23 L/s, above the pump's 12 L/s: without a level control the clear well fills
    plain = run_simulation(op.add_clear_well(tiny_net, capacity_m3d=cap, volume_m3=60.0), duration_h=24, age=False)
    assert _fcv_warnings(plain) > 0
    net = op.add_clear_well(tiny_net, capacity_m3d=cap, volume_m3=60.0, stop_above_m=3.8, resume_below_m=3.0)
    validate_network(net)
    row = net["control_valves"].set_index("id").loc["WTP-FCV"]
    assert (row["control_node"], row["off_above_m"], row["on_below_m"]) == ("WTP", 3.8, 3.0)
    wn = to_wntr(net)
    assert {"WTP-FCV_off", "WTP-FCV_on"} <= set(wn.control_name_list)
    res = run_simulation(net, duration_h=24, age=False)
    assert _fcv_warnings(res) == 0
    q = res.flow["WTP-FCV"] * 1000.0
    assert q.min() < 1e-3 and q.max() == pytest.approx(cap / 86.4, rel=1e-3)   # stopped, then at capacity
    assert res.tank_level["WTP"].iloc[1:].max() < 3.9   # it starts full (init = max)
    with pytest.raises(NetworkDataError, match="both stop_above_m and resume_below_m"):
        op.add_clear_well(tiny_net, capacity_m3d=cap, stop_above_m=3.8)
    with pytest.raises(NetworkDataError, match="resume_below_m < stop_above_m"):
        op.add_clear_well(tiny_net, capacity_m3d=cap, stop_above_m=3.0, resume_below_m=3.5)


@pytest.mark.slow
def test_tonghui_r9_cycles(tonghui_net: dict) -> None:
    assert op.gravity_filled_reservoirs(tonghui_net) == {"R9": "M00092"}
    net = op.add_float_valves(tonghui_net)
    res = run_simulation(net, age=False, hydraulic_timestep_s=300, report_timestep_s=300)
    lv = res.tank_level["R9"]
    assert lv.max() - lv.min() > 0.5 and lv.max() <= 3.95
    nodes = net["nodes"]
    # R9's zone and the pressure zones below it (R9-Z1, ...: the model is zoned, issue 15)
    zone = nodes.loc[nodes["zone"].astype(str).str.match(r"R9($|-)") & (nodes["kind"] == "junction"), "id"]
    vol_in = float(res.flow["M00092"].clip(lower=0).to_numpy()[:-1].sum() * 300)
    vol_dem = float(res.demand[zone].sum(axis=1).to_numpy()[:-1].sum() * 300)
    assert vol_in == pytest.approx(vol_dem, rel=0.15)
    assert np.allclose(lv.loc[24.0:48.0].to_numpy(), lv.loc[48.0:72.0].to_numpy(), atol=0.05)


def test_scenario_closing_a_float_valve_inlet_wins(gravity_net: dict) -> None:
    from watersupply.scenario import parse_scenario, run_scenario
    net = op.add_float_valves(gravity_net)
    sc = parse_scenario(dict(name="inlet_shut", title_zh="进水管关闭", title_en="inlet shut", duration_h=48,
                             events=[dict(type="set_link", link="IN", status="CLOSED", at_h=20, for_h=6)]))
    run = run_scenario(sc, net=net, age=False)
    q = run.result.flow["IN"]
    win = (q.index > 20) & (q.index < 26)
    assert (q[win].abs() < 1e-6).all()  # the float valve's controls do not reopen it during the event
    lv = run.result.tank_level["T2"]
    assert lv.loc[25.0] < lv.loc[20.0]
    assert (q[q.index > 26].abs() > 1e-4).any()  # back under the float valve afterwards
