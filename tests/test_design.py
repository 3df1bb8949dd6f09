"""Tests of watersupply.design: cost tables, the evaluator, the optimiser and the scenario design."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest
import wntr

from conftest import make_network
from watersupply._errors import ConfigError, NetworkDataError
from watersupply.design import (InfeasibleDesignError, check_candidates, design_network, design_scenario, pipe_costs,
                                pump_costs, read_candidates, reservoir_costs, todini, verify_design)
from watersupply.design.problem import Evaluator, design_space
from watersupply.hydraulics import LS_TO_M3S, MM_TO_M, hazen_williams_headloss

# ----------------------------------------------------------------------------- a tree whose answer is enumerable

SIZES_MM = [100, 150, 200, 250, 300]
UNIT_COST = [20, 35, 55, 80, 110]
# pipe: (from, to, length m, flow L/s through it); node: (elevation m, demand L/s)
TREE_PIPES = {"P1": ("R", "J1", 1000.0), "P2": ("J1", "J2", 800.0), "P3": ("J1", "J3", 600.0),
              "P4": ("J3", "J4", 500.0)}
TREE_NODES = {"J1": (10.0, 18.0), "J2": (15.0, 12.0), "J3": (5.0, 10.0), "J4": (8.0, 10.0)}
HEAD_R, MIN_P = 50.0, 25.0


def tree_model() -> wntr.network.WaterNetworkModel:
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=HEAD_R, coordinates=(0, 0))
    for k, (name, (elev, q)) in enumerate(TREE_NODES.items()):
        wn.add_junction(name, base_demand=q * LS_TO_M3S, elevation=elev, coordinates=(100 * (k + 1), 50 * k))
    for name, (a, b, length) in TREE_PIPES.items():
        wn.add_pipe(name, a, b, length=length, diameter=0.1, roughness=130.0)
    return wn


def table() -> pd.DataFrame:
    return check_candidates(pd.DataFrame({"diameter_mm": SIZES_MM, "unit_cost_usd_per_m": UNIT_COST}))


def enumerate_tree() -> list[tuple[float, float, tuple[int, ...]]]:
    """(cost, worst margin, sizes) of every design, by Hazen-Williams along the tree (flows are fixed in a tree)."""
    flow = {"P1": 50.0, "P2": 12.0, "P3": 20.0, "P4": 10.0}
    out = []
    for x in itertools.product(range(len(SIZES_MM)), repeat=4):
        hl = {p: float(hazen_williams_headloss(flow[p] * LS_TO_M3S, length_m=TREE_PIPES[p][2], roughness_c=130.0,
                                               diameter_m=SIZES_MM[k] * MM_TO_M)) for p, k in zip(TREE_PIPES, x)}
        head = {"R": HEAD_R}
        for p, (a, b, _l) in TREE_PIPES.items():
            head[b] = head[a] - hl[p]
        margin = min(head[n] - TREE_NODES[n][0] - MIN_P for n in TREE_NODES)
        cost = sum(UNIT_COST[k] * TREE_PIPES[p][2] for p, k in zip(TREE_PIPES, x))
        out.append((cost, margin, x))
    return out


def test_least_cost_design_matches_enumeration():
    designs = enumerate_tree()
    feasible = sorted(d for d in designs if d[1] >= 0)
    best = feasible[0]
    cheaper = [d for d in designs if d[0] < best[0]]
    # the answer is well separated from the cheaper designs, so EPANET's tolerance cannot blur it
    assert best[1] > 0.5 and max(d[1] for d in cheaper) < -1.0
    assert feasible[1][0] > best[0]  # unique
    res = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=20, generations=15, seed=3)
    assert res.feasible
    assert res.cost == pytest.approx(best[0])
    got = res.works.set_index("pipe")["new_diameter_mm"]
    assert [got[p] for p in TREE_PIPES] == [float(SIZES_MM[k]) for k in best[2]]
    # the designed model, re-simulated independently, meets the target
    ver, _ = verify_design(res.wn, pd.Series(MIN_P, index=list(TREE_NODES)))
    assert ver["feasible"] and ver["min_pressure_m"] >= MIN_P
    assert res.works["cost"].sum() == pytest.approx(res.cost)
    assert res.evaluations > 0 and res.summary().loc[0, "feasible"]


def test_design_is_reproducible_with_a_seed():
    a = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=10, generations=3, seed=7)
    b = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=10, generations=3, seed=7)
    assert a.cost == b.cost and list(a.x) == list(b.x) and a.evaluations == b.evaluations


def test_infeasible_problem_names_the_binding_nodes():
    with pytest.raises(InfeasibleDesignError, match=r"infeasible.*binding: J2") as info:
        design_network(tree_model(), table(), min_pressure=40.0, pop_size=10, generations=2)
    b = info.value.binding
    assert list(b.index[:1]) == ["J2"]  # highest and farthest: the worst
    assert set(b.index) == {"J1", "J2", "J4"} and (b["deficit_m"] > 0).all()  # J3 (5 m) can reach 40 m


def test_infeasible_with_fewer_candidates_binds_only_what_they_cannot_reach():
    with pytest.raises(InfeasibleDesignError, match="binding") as info:
        design_network(tree_model(), table(), min_pressure=MIN_P, pipes=["P2", "P3"], pop_size=10, generations=2)
    assert "J1" in info.value.binding.index  # P1 stays at 100 mm: nothing downstream can be saved


def test_replace_keeps_existing_and_parallel_duplicates():
    wn = tree_model()
    for p in TREE_PIPES:
        wn.get_link(p).diameter = 0.15
    res = design_network(wn, table(), min_pressure=MIN_P, action="replace", pop_size=16, generations=10)
    assert res.feasible and (res.works["new_diameter_mm"] > res.works["old_diameter_mm"]).all()
    assert "P4" not in set(res.works["pipe"])  # a branch with margin is kept, at no cost
    par = design_network(wn, table(), min_pressure=MIN_P, action="parallel", pop_size=16, generations=10)
    assert par.feasible and all(e.endswith("~par") for e in par.works["element"])
    assert all(e in par.wn.pipe_name_list for e in par.works["element"])


def test_velocity_limit_is_a_constraint():
    res = design_network(tree_model(), table(), min_pressure=MIN_P, max_velocity_ms=1.0, pop_size=16,
                         generations=10)
    assert res.feasible and res.verification["max_velocity_ms"] <= 1.0
    assert res.works.set_index("pipe").loc["P1", "new_diameter_mm"] >= 300  # 50 L/s in 250 mm is 1.02 m/s


def test_evaluator_agrees_with_wntr_and_todini_with_wntr_metrics():
    wn = tree_model()
    sp = design_space(wn, table())
    req = pd.Series(MIN_P, index=list(TREE_NODES))
    ev = Evaluator(wn, sp, req, resilience=True)
    try:
        x = np.array([2, 2, 1, 1])
        e = ev.evaluate(x)
    finally:
        ev.close()
    from watersupply.design import apply_design

    designed = apply_design(wn, sp, x)
    ver, res = verify_design(designed, req)
    assert e.min_pressure_m.min() == pytest.approx(ver["min_pressure_m"], abs=1e-3)
    ref = wntr.metrics.todini_index(res.node["head"], res.node["pressure"], res.node["demand"],
                                    res.link["flowrate"], designed, MIN_P)
    assert todini(res, designed, req).iloc[0] == pytest.approx(float(ref.iloc[0]), rel=1e-4)
    assert e.resilience == pytest.approx(float(ref.iloc[0]), rel=1e-3)


def test_pareto_front_is_verified_and_monotone():
    res = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=16, generations=8, pareto=True,
                         pareto_generations=8)
    f = res.pareto
    assert len(f) >= 2 and f["cost"].is_monotonic_increasing and f["resilience"].is_monotonic_increasing
    assert f["cost"].iloc[0] == pytest.approx(res.cost)
    assert np.allclose(f["resilience"], f["resilience_verified"], atol=1e-3)


# ----------------------------------------------------------------------------- cost tables

def test_shipped_tables_are_documented():
    pe, di = pipe_costs("pe"), pipe_costs("di")
    assert pe.attrs["currency"] == "yuan" and di.attrs["currency"] == "yuan"
    assert (pe["source"].str.len() > 0).all() and pe["source"].str.contains("assumed").any()
    assert pe["unit_cost"].is_monotonic_increasing and di["unit_cost"].is_monotonic_increasing
    dn = pe["nominal"].str[2:].astype(float)
    assert (pe["diameter_mm"] < dn).all()  # PE internal diameter below the outside diameter dn
    assert pe.loc[pe["nominal"] == "dn200", "diameter_mm"].item() == pytest.approx(163.6)
    assert len(pipe_costs("pe+di")) == len(pe) + len(di)
    assert int(pump_costs().loc["pump_set_per_kw", "cost_yuan"]) > 0
    assert "assumed" in reservoir_costs().loc["storage_per_m3", "source"]


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"diameter": [100], "unit_cost": [1]}), "no 'diameter_mm' column"),
    (pd.DataFrame({"diameter_mm": [100]}), "no unit cost column"),
    (pd.DataFrame({"diameter_mm": [100], "unit_cost_a": [1], "unit_cost_b": [2]}), "several unit cost columns"),
    (pd.DataFrame({"diameter_mm": [100, 150], "unit_cost": [1, -2]}), r"row 3 .*'unit_cost'.*positive"),
    (pd.DataFrame({"diameter_mm": ["100", "abc"], "unit_cost": [1, 2]}), r"row 3 .*'diameter_mm': 'abc'"),
    (pd.DataFrame({"diameter_mm": [100, 100], "unit_cost": [1, 2]}), "repeat diameter 100 mm"),
    (pd.DataFrame({"diameter_mm": [], "unit_cost": []}), "no rows"),
    (pd.DataFrame({"diameter_mm": [100], "unit_cost": [1], "roughness_c": [0]}), "'roughness_c'"),
])
def test_bad_cost_tables_get_clear_errors(frame, match):
    with pytest.raises(ConfigError, match=match):
        check_candidates(frame, source="costs.csv")


def test_read_candidates_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_candidates(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a readable UTF-8 CSV"):
        read_candidates(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a readable"):
        read_candidates(empty)
    with pytest.raises(ConfigError, match="no shipped pipe cost table 'steel'"):
        pipe_costs("steel")
    dearer = tmp_path / "odd.csv"
    dearer.write_text("diameter_mm,unit_cost\n100,5\n150,4\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="unit cost falls"):
        read_candidates(dearer)


def test_bad_design_options():
    with pytest.raises(NetworkDataError, match="candidate pipe 'P9'.*closest valid ids"):
        design_network(tree_model(), table(), min_pressure=MIN_P, pipes=["P9"])
    with pytest.raises(ConfigError, match="action must be one of"):
        design_network(tree_model(), table(), min_pressure=MIN_P, action="grow")
    with pytest.raises(ConfigError, match="min_pressure must be"):
        design_network(tree_model(), table(), min_pressure=-1)
    wn = tree_model()
    wn.get_link("P1").diameter = 0.4
    with pytest.raises(ConfigError, match="'P1' .*already as large"):
        design_network(wn, table(), min_pressure=MIN_P, action="replace")


# ----------------------------------------------------------------------------- a scenario that fails, then passes

def scenario_net() -> dict:
    nodes = [dict(id="WTP", x=0, y=0, kind="plant", elevation_m=0.0, head_m=30.0),
             dict(id="A", x=600, y=0, elevation_m=5.0),
             dict(id="B", x=1200, y=0, elevation_m=10.0, base_demand_m3d=400.0, population=2000,
                  settlement_id="V1"),
             dict(id="C", x=1200, y=500, elevation_m=8.0, base_demand_m3d=300.0, population=1500,
                  settlement_id="V1")]
    pipes = [dict(id="M1", from_node="WTP", to_node="A", diameter_mm=200.0),
             dict(id="M2", from_node="A", to_node="B", diameter_mm=150.0),
             dict(id="B1", from_node="A", to_node="C", diameter_mm=100.0)]
    settlements = [dict(id="V1", kind="village", population=3500, storeys=2, bounds=(1000, -100, 1400, 600))]
    return make_network(nodes, pipes, settlements=settlements, patterns={"domestic": [1.0] * 24},
                        metadata={"name": "tiny_design"})


@pytest.mark.slow
def test_design_scenario_makes_it_pass(tmp_path):
    from watersupply.design.output import write_design
    from watersupply.scenario import parse_scenario

    net = scenario_net()
    sc = parse_scenario({"name": "growth", "title_zh": "增长", "title_en": "Growth", "duration_h": 24,
                         "events": [{"type": "demand_change", "multiplier": 6.0}]})
    sd = design_scenario(sc, net=net, candidates=pipe_costs("di"), pipes="all", pop_size=12, generations=6)
    assert not sd.verdict_before["passes"]
    assert sd.verdict_after["passes"] and sd.design.feasible
    assert sd.design.cost > 0 and sd.designed_net["pipes"].set_index("id").loc[sd.design.works["pipe"].iloc[0],
                                                                                 "diameter_mm"] > 100
    files = write_design(sd.design, tmp_path, net=sd.designed_net, title="growth", scenario=sd)
    for name in ("designed.inp", "designed.gpkg", "works.csv", "design_summary.csv", "report.md",
                 "rerun_growth/settlements.csv"):
        assert files[name].is_file()
    import geopandas as gpd

    layer = gpd.read_file(files["designed.gpkg"], layer="works")
    assert len(layer) == len(sd.design.works) and layer.crs == net["pipes"].crs
    summary = pd.read_csv(files["design_summary.csv"])
    assert bool(summary.loc[0, "rerun_passes"]) and not bool(summary.loc[0, "before_passes"])
    assert "通过 passes" in files["report.md"].read_text(encoding="utf-8")
    # designed.inp re-simulated independently meets the targets too
    wn = wntr.network.WaterNetworkModel(str(files["designed.inp"]))
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "chk"))
    assert res.node["pressure"][["B", "C"]].min().min() >= 10.0 - 1e-3


def test_time_limit_stops_the_search_and_says_so():
    res = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=20, generations=500, time_limit_s=0.5)
    assert res.settings["stopped_at_time_limit"] and any("time limit" in n for n in res.notes)
    assert res.feasible  # the best design found by then, verified


def test_restarts_in_worker_processes_agree():
    one = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=12, generations=6, seed=5)
    two = design_network(tree_model(), table(), min_pressure=MIN_P, pop_size=12, generations=6, seed=5,
                         restarts=2, workers=2)
    assert two.feasible and two.cost <= one.cost and two.evaluations > one.evaluations


def test_nothing_to_do_when_the_network_already_passes():
    wn = tree_model()
    for p in TREE_PIPES:
        wn.get_link(p).diameter = 0.25
    res = design_network(wn, table(), min_pressure=MIN_P, action="replace", pop_size=10, generations=50)
    assert res.feasible and res.cost == 0 and res.works.empty and res.evaluations <= 2
    assert any("no search needed" in n for n in res.notes)


@pytest.mark.slow
def test_scenario_beyond_pipe_works_names_binding_nodes_and_capacity():
    from watersupply.scenario import parse_scenario

    net = scenario_net()
    sc = parse_scenario({"name": "huge", "title_zh": "超大", "title_en": "Huge", "duration_h": 24,
                         "events": [{"type": "demand_change", "multiplier": 100.0}]})
    with pytest.raises(InfeasibleDesignError, match=r"huge: infeasible: .*binding: B") as info:
        design_scenario(sc, net=net, candidates=pipe_costs("pe"), pipes="all", pop_size=8, generations=2,
                        rerun=False)
    assert "B" in info.value.binding.index


# ----------------------------------------------------------------------------- a pump station that is too small

def booster_model() -> wntr.network.WaterNetworkModel:
    """A well (head 0 m) → duty pump (10 L/s at 40 m) + identical standby → 1.5 km main → a town taking 18 L/s."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("W", base_head=0.0, coordinates=(0, 0))
    wn.add_junction("S", elevation=-40.0, coordinates=(10, 0))  # pump pit below the well's level
    wn.add_junction("D", elevation=-40.0, coordinates=(20, 0))
    wn.add_junction("T", base_demand=18.0 * LS_TO_M3S, elevation=0.0, coordinates=(1500, 0))
    wn.add_pipe("IN", "W", "S", length=10.0, diameter=0.3, roughness=130.0)
    for pid, status in (("P1", "OPEN"), ("P2", "CLOSED")):
        wn.add_curve(f"C_{pid}", "HEAD", [(10.0 * LS_TO_M3S, 40.0)])
        wn.add_pump(pid, "S", "D", "HEAD", f"C_{pid}", initial_status=status)
    wn.add_pipe("MAIN", "D", "T", length=1500.0, diameter=0.15, roughness=130.0)
    return wn


def test_pump_upgrade_is_the_only_fix_and_matches_enumeration():
    wn = booster_model()
    t = check_candidates(pd.DataFrame({"diameter_mm": [150, 200, 250], "unit_cost_yuan_per_m": [300, 420, 580]}))
    with pytest.raises(InfeasibleDesignError, match=r"binding: T"):  # pipe works alone cannot do it
        design_network(wn, t, min_pressure=30.0, nodes=["T"], pipes=["MAIN"], action="replace", pop_size=8,
                       generations=3)
    res = design_network(wn, t, min_pressure=30.0, nodes=["T"], pipes=["MAIN"], action="replace", pumps="all",
                         pop_size=12, generations=8, seed=3)
    # every combination (pipe option × pump option), solved in EPANET
    ev = Evaluator(wn, res.space, res.required)
    try:
        grid = [(ev.evaluate(np.array(x)), x) for x in itertools.product(*[range(u + 1) for u in res.space.upper])]
    finally:
        ev.close()
    feasible = sorted((e.cost, x) for e, x in grid if e.feasible)
    assert feasible and all(x[1] > 0 for _c, x in feasible)  # no feasible design keeps the pump
    assert res.feasible and res.cost == pytest.approx(feasible[0][0])
    pump_rows = res.works[res.works["action"].str.startswith("pump")]
    assert list(pump_rows["element"]) == ["P1"] and pump_rows["cost"].iloc[0] > 0
    assert res.works["cost"].sum() == pytest.approx(res.cost)
    # the designed model, re-run in full with WNTR, meets the target with the works as built
    out = verify_design(res.wn, res.required)[0]
    assert out["feasible"] and out["min_pressure_m"] >= 30.0 - 1e-6


def test_standby_as_second_duty_runs_the_real_standby():
    from watersupply.design.works import apply_extras, pump_extras

    wn = booster_model()
    e = pump_extras(wn, "P1")
    assert e[0].standby == "P2" and e[0].modes[:2] == ["keep", "standby"]
    built = copy.deepcopy(wn)
    apply_extras(built, e, np.array([1]))
    assert str(built.get_link("P2").initial_status).upper().endswith("OPEN")
    t = check_candidates(pd.DataFrame({"diameter_mm": [150, 200], "unit_cost": [1, 2]}))
    space = design_space(wn, t, pipes=["MAIN"], action="replace", extras=e)
    req = pd.Series({"T": 0.0})
    ev = Evaluator(wn, space, req)
    try:
        p_search = float(ev.evaluate(np.array([0, 1])).min_pressure_m[0])
    finally:
        ev.close()
    _v, r = verify_design(built, req)
    assert float(r.node["pressure"]["T"].min()) == pytest.approx(p_search, abs=0.05)  # 2 pumps ≡ the point ×2


def test_bad_pump_and_storage_candidates():
    with pytest.raises(NetworkDataError, match=r"duty pump 'P9'"):
        design_network(booster_model(), table(), min_pressure=10.0, nodes=["T"], pipes=["MAIN"], pumps="P9")
    with pytest.raises(NetworkDataError, match=r"tank 'R1'"):
        design_network(booster_model(), table(), min_pressure=10.0, nodes=["T"], pipes=["MAIN"], storage="R1")


def test_infeasible_with_pumps_is_reported_after_the_search():
    wn = booster_model()
    wn.get_node("T").demand_timeseries_list[0].base_value = 200.0 * LS_TO_M3S  # > 8 × the duty: beyond any pump
    t = check_candidates(pd.DataFrame({"diameter_mm": [150, 200, 250], "unit_cost": [300, 420, 580]}))
    with pytest.raises(InfeasibleDesignError, match=r"found no design .* binding: T") as info:
        design_network(wn, t, min_pressure=30.0, nodes=["T"], pipes=["MAIN"], action="replace", pumps="all",
                       pop_size=8, generations=3)
    assert list(info.value.binding.index) == ["T"]
