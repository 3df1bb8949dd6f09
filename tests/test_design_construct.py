"""Tests of watersupply.design.construct: supply chain, feasible-first construction, cost reduction, verification."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import wntr
from wntr.network.controls import Comparison, ControlAction, TankLevelCondition
from wntr.network.controls import Control as WControl

from watersupply.design import check_candidates, verify_design
from watersupply.design.construct import (DUTY_TARGET, design_by_construction, simulate, supply_chain,
                                          surrogate_model)
from watersupply.design.problem import Evaluator, design_space
from watersupply.design.works import pump_extras
from watersupply.hydraulics import LS_TO_M3S

# a plant → pump station (duty 10 L/s at 60 m + identical standby) → fill main → hill tank → zone main → 2 nodes
DEMAND_LS = {"A": 3.0, "B": 3.0}
PEAK = [0.6] * 6 + [1.4] * 12 + [0.8] * 6  # mean 1.05
REQUIRED_M = 10.0


def cascade(growth: float = 1.0, hours: int = 48) -> wntr.network.WaterNetworkModel:
    wn = wntr.network.WaterNetworkModel()
    wn.options.time.duration = hours * 3600
    wn.options.time.hydraulic_timestep = 3600
    wn.options.time.pattern_timestep = 3600
    wn.options.time.report_timestep = 3600
    wn.add_pattern("day", PEAK)
    wn.add_reservoir("WTP", base_head=100.0, coordinates=(0, 0))
    wn.add_junction("S", elevation=95.0, coordinates=(100, 0))
    wn.add_junction("D", elevation=95.0, coordinates=(110, 0))
    wn.add_tank("T", elevation=145.0, init_level=3.0, min_level=0.3, max_level=4.0, diameter=8.0,
                coordinates=(1100, 0))
    wn.add_junction("A", elevation=125.0, base_demand=DEMAND_LS["A"] * growth * LS_TO_M3S, demand_pattern="day",
                    coordinates=(2100, 0))
    wn.add_junction("B", elevation=124.0, base_demand=DEMAND_LS["B"] * growth * LS_TO_M3S, demand_pattern="day",
                    coordinates=(2900, 0))
    wn.add_pipe("S1", "WTP", "S", length=200.0, diameter=0.3, roughness=130.0)
    for pid, status in (("P1", "OPEN"), ("P2", "CLOSED")):
        wn.add_curve(f"C_{pid}", "HEAD", [(10.0 * LS_TO_M3S, 60.0)])
        wn.add_pump(pid, "S", "D", "HEAD", f"C_{pid}", initial_status=status)
    wn.add_pipe("F1", "D", "T", length=1000.0, diameter=0.15, roughness=130.0)
    wn.add_pipe("Z1", "T", "A", length=1000.0, diameter=0.15, roughness=130.0)
    wn.add_pipe("Z2", "A", "B", length=800.0, diameter=0.15, roughness=130.0)
    tank, pump = wn.get_node("T"), wn.get_link("P1")
    wn.add_control("P1_on", WControl(TankLevelCondition(tank, "level", Comparison.lt, 1.8), ControlAction(pump, "status", 1)))
    wn.add_control("P1_off", WControl(TankLevelCondition(tank, "level", Comparison.gt, 3.7), ControlAction(pump, "status", 0)))
    return wn


def table() -> pd.DataFrame:
    return check_candidates(pd.DataFrame({"diameter_mm": [100, 150, 200, 250, 300],
                                          "unit_cost_yuan_per_m": [300, 420, 580, 760, 960],
                                          "roughness_c": [130.0] * 5}))


def base_drop(base: wntr.sim.SimulationResults) -> dict[str, float]:
    """How far the tank falls from 24 h to the end on the existing network (held to no worse)."""
    h = base.node["head"]["T"]
    return {"T": max(0.0, float(h.loc[24 * 3600] - h.iloc[-1]))}


def required() -> pd.Series:
    return pd.Series(REQUIRED_M, index=pd.Index(["A", "B"], name="node"))


def test_supply_chain_follows_tank_pump_and_mains():
    wn = cascade(growth=2.5)
    res = simulate(surrogate_model(wn))
    p = res.node["pressure"][["A", "B"]].min()
    failing = list(p.index[p < REQUIRED_M])
    assert failing  # the grown demand fails on the existing network
    chain = supply_chain(wn, res, failing, demand_nodes=["A", "B"])
    assert chain.pumps == ["P1"] and chain.tanks == ["T"]
    assert chain.suction["P1"] == ["S1"] and chain.delivery["P1"] == ["F1"]
    assert {"Z1", "Z2", "S1", "F1"} <= set(chain.pipes)
    assert all(chain.feeds[n] == "T" for n in failing)
    mean_demand = 2.5 * sum(DEMAND_LS.values()) * float(np.mean(PEAK))
    assert chain.need_ls["P1"] == pytest.approx(mean_demand / DUTY_TARGET, rel=1e-3)


def test_construction_is_feasible_verified_and_reproducible(tmp_path):
    wn = cascade(growth=2.5)
    base = simulate(cascade())
    one = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=base_drop(base),
                                 max_velocity_ms=2.5, seed=2,
                                 pop_size=6, generations=2, max_evaluations=60)
    assert one.feasible and one.cost > 0
    assert one.settings["search_model"].startswith("first 24 h")
    pump_rows = one.works[one.works["action"].str.startswith("pump")]
    assert list(pump_rows["element"]) == ["P1"]  # 10 L/s cannot carry 15.75 L/s on average
    assert one.works["cost"].sum() == pytest.approx(one.cost)
    assert one.cost <= one.settings["constructed_cost"] + 1e-6
    # independent check: the designed model run in full (48 h) by WNTR meets the target, tanks cycling
    out, res = verify_design(one.wn, required(), tank_baseline_drop_m=base_drop(base))
    assert out["feasible"] and float(res.node["pressure"][["A", "B"]].min().min()) >= REQUIRED_M - 1e-6
    two = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=base_drop(base),
                                 max_velocity_ms=2.5, seed=2,
                                 pop_size=6, generations=2, max_evaluations=60)
    assert two.cost == one.cost and two.works["element"].tolist() == one.works["element"].tolist()


def test_cost_reduction_reaches_the_enumerated_optimum():
    """Every design of the chain's pipes and the pump, solved on the same one-day search model, by enumeration."""
    wn = cascade(growth=2.5)
    base = simulate(cascade())
    res = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=base_drop(base),
                                 seed=1, pop_size=8, generations=4, max_evaluations=400)
    ws = surrogate_model(wn)
    space = design_space(ws, table(), pipes=["F1", "Z1", "Z2"], action="replace", extras=pump_extras(ws, "P1"))
    drop = {"T": max(0.0, float(base.node["head"]["T"].iloc[0] - base.node["head"]["T"].loc[24 * 3600]))}
    ev = Evaluator(ws, space, required(), cycle_from_s=0, tank_baseline_drop_m=drop)
    try:
        grid = [(ev.evaluate(np.array(x)), x) for x in itertools.product(*[range(u + 1) for u in space.upper])]
    finally:
        ev.close()
    best = min(e.cost for e, _x in grid if e.feasible)
    assert res.feasible and res.cost == pytest.approx(best)


def test_beyond_any_pump_is_reported_infeasible_with_the_binding_nodes():
    wn = cascade(growth=40.0)  # 250 L/s on average: beyond 8 × the duty pump and any pipe of the table
    res = design_by_construction(wn, table(), required(), baseline=simulate(cascade()), pop_size=4,
                                 generations=1, max_evaluations=5)
    assert not res.feasible
    assert set(res.verification["binding"].index) <= {"A", "B"} and len(res.verification["binding"])


def test_nothing_to_do_when_it_already_passes():
    wn = cascade(growth=1.0)
    base = simulate(cascade())
    res = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=base_drop(base),
                                 max_evaluations=5)
    assert res.feasible and res.cost == 0 and res.works.empty


def test_surrogate_is_the_first_day_and_leaves_the_model_alone():
    wn = cascade(growth=2.5, hours=72)
    before = copy.deepcopy(wn.options.time.duration)
    ws = surrogate_model(wn)
    assert ws.options.time.duration == 24 * 3600 and wn.options.time.duration == before


@pytest.mark.slow
def test_tonghui_food_park_chain_reaches_ps3_and_its_mains():
    """The food-park expansion on the bundled Tonghui model: the chain of the park hub's failing nodes."""
    from watersupply.design.scenario import _model
    from watersupply.metrics import demand_nodes
    from watersupply.scenario import load_scenario, resolve_scenario, scenario_network

    sc = load_scenario(resolve_scenario("food_park_expansion"))
    net, _name = scenario_network(sc)
    wn = surrogate_model(_model(net, sc, events=True))
    res = simulate(wn)
    ids = list(demand_nodes(net))
    p = res.node["pressure"][ids].min()
    failing = list(p.index[p < 10.0])
    assert "J00469" in failing  # the park hub
    chain = supply_chain(wn, res, failing, demand_nodes=ids)
    assert chain.pumps[0] == "PS3-P1" and "R4" in chain.tanks and "PS1-P1" in chain.pumps
    assert "M00030" in chain.suction["PS3-P1"] and "M00034" in chain.delivery["PS3-P1"]
    assert {"M00030", "M00034", "M00001"} <= set(chain.pipes)
    # the clear well is in the chain: the plant's production (20,000 m³/d) is short of what it feeds
    assert "WTP" in chain.tanks and chain.production_need_m3d["WTP-FCV"] > 20_000.0
    assert chain.need_ls["PS3-P1"] > 96.0  # the park alone takes 96 L/s on average


def test_multi_point_pump_curve_grows_and_shrinks_in_the_evaluator():
    """Pump options are curves of their own, switched by index: up and back down leaves the model as it was."""
    wn = cascade(growth=2.5)
    for pid in ("P1", "P2"):
        wn.get_curve(f"C_{pid}").points = [(0.0, 80.0), (10.0 * LS_TO_M3S, 60.0), (14.0 * LS_TO_M3S, 45.0)]
    ws = surrogate_model(wn)
    space = design_space(ws, table(), pipes=["Z1"], action="replace", extras=pump_extras(ws, "P1"))
    ev = Evaluator(ws, space, required(), cycle_from_s=0)
    try:
        first = ev.evaluate(np.array([0, 0])).min_pressure_m.copy()
        top = int(space.upper[1])
        ev.evaluate(np.array([0, top]))  # the largest pump (every point × its factor)
        ev.evaluate(np.array([0, 1]))    # and back down
        ev.cache.clear()
        again = ev.evaluate(np.array([0, 0])).min_pressure_m
    finally:
        ev.close()
    assert np.allclose(first, again)


def with_clear_well(wn: wntr.network.WaterNetworkModel, capacity_ls: float) -> wntr.network.WaterNetworkModel:
    """`wn` with its plant as a clear well filled through an FCV at `capacity_ls` (production stops above 3.9 m
    and resumes below 3.0 m), as watersupply.operations.add_clear_well builds it."""
    wn.remove_link("S1")
    wn.remove_node("WTP")
    wn.add_reservoir("RAW", base_head=110.0, coordinates=(-40, 0))
    wn.add_junction("FU", elevation=95.0, coordinates=(-30, 0))
    wn.add_junction("FD", elevation=95.0, coordinates=(-20, 0))
    wn.add_tank("WTP", elevation=95.0, init_level=4.0, min_level=0.3, max_level=4.0, diameter=12.0,
                coordinates=(0, 0))
    wn.add_pipe("RAWP", "RAW", "FU", length=10.0, diameter=0.3, roughness=130.0)
    wn.add_valve("FCV", "FU", "FD", diameter=0.3, valve_type="FCV", initial_setting=capacity_ls * LS_TO_M3S)
    wn.add_pipe("CWIN", "FD", "WTP", length=10.0, diameter=0.3, roughness=130.0)
    wn.add_pipe("S1", "WTP", "S", length=200.0, diameter=0.3, roughness=130.0)
    cw, fcv = wn.get_node("WTP"), wn.get_link("FCV")
    wn.add_control("FCV_off", WControl(TankLevelCondition(cw, "level", Comparison.gt, 3.9),
                                       ControlAction(fcv, "setting", 0.0)))
    wn.add_control("FCV_on", WControl(TankLevelCondition(cw, "level", Comparison.lt, 3.0),
                                      ControlAction(fcv, "setting", capacity_ls * LS_TO_M3S)))
    return wn


def test_a_clear_well_that_cannot_cycle_is_traced_to_the_plant_production():
    """The scenario draws more than the plant produces: only a larger production lets the clear well cycle."""
    from watersupply.design.works import plant_extras, production_valves

    wn = with_clear_well(cascade(growth=2.5), capacity_ls=9.0)   # 15.75 L/s on average > 9 L/s
    base_wn = with_clear_well(cascade(), capacity_ls=9.0)
    assert production_valves(wn) == {"FCV": ("WTP", pytest.approx(9.0 * LS_TO_M3S))}
    e = plant_extras(wn, "all")[0]
    assert e.labels[0] == "keep" and e.costs[0] == 0 and (np.diff(e.costs) > 0).all()
    base = simulate(base_wn)
    h = base.node["head"]
    drop = {t: max(0.0, float(h[t].loc[24 * 3600] - h[t].iloc[-1])) for t in ("T", "WTP")}
    res = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=drop,
                                 max_velocity_ms=2.5, pop_size=4, generations=1, max_evaluations=30)
    assert res.feasible and res.settings["plant_candidates"] == 1
    row = res.works[res.works["action"] == "plant expansion"]
    assert list(row["element"]) == ["FCV"] and float(row["cost"].iloc[0]) > 0
    # independent check: the designed model's FCV produces more, and the clear well cycles over the full run
    out, vres = verify_design(res.wn, required(), tank_baseline_drop_m=drop)
    assert out["feasible"] and out["tanks_short_m"] == {}
    assert float(vres.link["flowrate"]["FCV"].max()) > 9.0 * LS_TO_M3S * 1.1
    # without the production option the same construction cannot make it
    no = design_by_construction(wn, table(), required(), baseline=base, tank_baseline_drop_m=drop,
                                max_velocity_ms=2.5, pop_size=4, generations=1, max_evaluations=10, production=False)
    assert not no.feasible and no.settings["plant_candidates"] == 0
