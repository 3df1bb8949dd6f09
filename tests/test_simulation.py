"""Extended-period simulation: PDD, chlorine, water age, error reporting."""

from __future__ import annotations

import numpy as np
import pytest

from watersupply._errors import HydraulicError
from watersupply.model import to_wntr
from watersupply.simulation import quality_window, run_simulation, run_wntr


def test_results_indexed_by_hour_and_element(tiny_net):
    res = run_simulation(tiny_net, duration_h=6)
    assert list(res.hours) == [0, 1, 2, 3, 4, 5, 6]
    assert {"J2", "T1", "WTP"} <= set(res.pressure.columns)
    assert {"M1", "P1"} <= set(res.flow.columns)
    assert res.age is not None and res.chlorine is not None
    tidy = res.nodes_tidy()
    assert tidy.index.names == ["node", "time_h"]
    assert tidy.loc[("J2", 3.0), "pressure_m"] == pytest.approx(res.pressure.loc[3.0, "J2"])
    assert res.links_tidy().index.names == ["link", "time_h"]


def test_chlorine_decays_with_age(tiny_net):
    res = run_simulation(tiny_net, duration_h=48)
    win = quality_window(res)
    assert win.min() == 24.0
    cl = res.chlorine.loc[win]
    # far end of the village branch has older water and less chlorine than the tank outlet
    assert res.age.loc[win, "J3"].mean() > res.age.loc[win, "J1"].mean()
    assert cl["J3"].mean() < cl["J1"].mean() <= 1.0 + 1e-6


def test_pdd_reduces_delivery_when_pressure_is_low(tiny_net):
    net = dict(tiny_net)
    nodes = net["nodes"].copy()
    nodes.loc[nodes["id"] == "J3", "elevation_m"] = 270.0  # above the tank's top water level
    net["nodes"] = nodes
    res = run_simulation(net, duration_h=4, age=False)
    assert (res.pressure["J3"] < 1.0).all()
    assert res.demand["J3"].max() == pytest.approx(0.0, abs=1e-7)
    assert res.expected_demand["J3"].min() > 0
    assert any("J3" in w for w in res.warnings)


def test_unsolvable_network_raises_hydraulic_error_naming_the_run(tiny_net):
    wn = to_wntr(tiny_net, duration_h=2)
    # a pump that must lift 1000 m: EPANET cannot balance it
    wn.get_node("T1").elevation = 5000.0
    wn.get_node("T1").init_level = 1.0
    wn.get_node("T1").max_level = 5.0
    for name in list(wn.control_name_list):
        wn.remove_control(name)
    try:
        res = run_wntr(wn, age=False)
    except HydraulicError as exc:
        assert "EPANET" in str(exc)
    else:  # EPANET may "solve" with the pump closed: then the pump cannot deliver
        assert np.allclose(res.flow["P1"], 0.0, atol=1e-6)


# --- periodic steady state (issue 14 item 1) -------------------------------------------------

def _taps(res):
    from watersupply.simulation import quality_window

    win = quality_window(res)
    return res.chlorine.loc[win], res.age.loc[win]


def test_steady_state_does_not_depend_on_initial_chlorine_or_age(tiny_net):
    """Initial chlorine 0 vs 1 mg/L and initial age 0 vs 100 h give the same taps (0.005 mg/L, 0.5 h)."""
    demand = ["J1", "J2", "J3"]
    runs = {}
    for cl0, age0 in ((0.0, 0.0), (1.0, 100.0)):
        wn = to_wntr(tiny_net, duration_h=48)
        for tk in wn.tank_name_list:
            wn.get_node(tk).initial_quality = cl0 * 1e-3
        runs[cl0] = run_wntr(wn, initial_chlorine_mgL=cl0, initial_age_h=age0)
    (cl_a, age_a), (cl_b, age_b) = _taps(runs[0.0]), _taps(runs[1.0])
    assert runs[0.0].quality.method == "periodic steady state"
    assert (cl_a[demand] - cl_b[demand]).abs().max().max() < 0.005
    assert (age_a[demand] - age_b[demand]).abs().max().max() < 0.5
    # and the transient figures did depend on them (the test can fail)
    wn0, wn1 = to_wntr(tiny_net, duration_h=48), to_wntr(tiny_net, duration_h=48)
    t0 = run_wntr(wn0, initial_chlorine_mgL=0.0, initial_age_h=0.0, steady=False)
    t1 = run_wntr(wn1, initial_chlorine_mgL=1.0, initial_age_h=100.0, steady=False)
    assert t0.quality.method == "transient"
    assert (t0.age.loc[0.0, demand] - t1.age.loc[0.0, demand]).abs().max() > 50


def test_steady_state_reports_horizon_and_residual(tiny_net):
    res = run_simulation(tiny_net, duration_h=24)
    q = res.quality
    assert q.method == "periodic steady state"
    assert q.days["chlorine"] >= 1 and q.days["age"] >= 1
    assert q.residual["chlorine"] < 0.001 and q.residual["age"] < 0.1
    assert "residual" in q.summary()
    assert res.quality_state is not None and set(res.quality_state) == {"chlorine", "age"}


def test_dead_end_without_flow_is_named_not_settled(tiny_net):
    from watersupply.metrics import settlement_summary

    net = dict(tiny_net)
    pipes = net["pipes"].copy()
    pipes.loc[pipes["id"] == "B2", "status"] = "CLOSED"  # J3 is cut off: no flow ever renews its water
    net["pipes"] = pipes
    res = run_simulation(net, duration_h=24)
    q = res.quality
    assert "J3" in q.growing_age
    assert any("never settles" in w and "J3" in w for w in res.warnings)
    st = settlement_summary(res, net)
    assert np.isnan(st.loc["V1", "max_age_h"])
    assert st.loc["V1", "age_status"].startswith("not settled at 1 node(s): J3")
    assert st.loc["C1", "age_status"] == "settled" and st.loc["C1", "max_age_h"] > 0
    assert "J3" in set(res.sanity.loc[res.sanity["kind"] == "disconnected", "element"])


def test_scenario_warm_start_uses_the_baseline_state(tiny_net):
    base = run_simulation(tiny_net, duration_h=48)
    warm = run_simulation(tiny_net, duration_h=48, warm_state=base.quality_state)
    assert warm.quality.method == "warm start"
    # no event: the warm-started run stays on the settled cycle (pipe contents restart from their end node)
    win = quality_window(base)
    assert (warm.chlorine.loc[win, ["J1", "J2", "J3"]] - base.chlorine.loc[win, ["J1", "J2", "J3"]]).abs().max().max() < 0.02


# --- honesty about missing data (issue 13 item 5) --------------------------------------------

@pytest.mark.slow
def test_ky4_chlorine_is_not_assessed_and_net1_is():
    import warnings

    import wntr

    from watersupply.convert import read_inp
    from watersupply.metrics import settlement_summary, soundness

    lib = wntr.library.__path__[0] + "/networks/"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ky4 = read_inp(lib + "ky4.inp")
        net1 = read_inp(lib + "Net1.inp")
    r = run_simulation(ky4, duration_h=24, age=False)
    assert not r.quality.chlorine_assessed
    assert r.quality.not_assessed_reason.startswith("not assessed — the model has no chlorine source")
    st = settlement_summary(r, ky4)
    assert st["min_chlorine_mgL"].isna().all()
    assert st["chlorine_status"].str.startswith("not assessed").all()
    sd = soundness(r, ky4)
    assert sd.loc["chlorine_node_share", "target"] == "not assessed"
    assert not sd.loc["chlorine_node_share", "passed"]
    assert any("not assessed" in w for w in r.warnings)
    r1 = run_simulation(net1, duration_h=24, age=False)
    assert r1.quality.chlorine_assessed
    assert (settlement_summary(r1, net1)["chlorine_status"] == "assessed").all()


def test_chlorine_assessment_names_what_is_missing(tiny_net):
    from watersupply.simulation import chlorine_assessment

    wn = to_wntr(tiny_net, duration_h=2)
    assert chlorine_assessment(wn) == ""
    wn.options.reaction.bulk_coeff = 0.0
    for _, p in wn.pipes():
        p.wall_coeff = 0.0
    assert chlorine_assessment(wn) == "not assessed — the model has no decay coefficient"
    for n in wn.reservoir_name_list + wn.tank_name_list:
        wn.get_node(n).initial_quality = 0.0
    assert "no chlorine source and no decay coefficient" in chlorine_assessment(wn)


# --- sanity report (issue 14 item 5) ---------------------------------------------------------

def test_sanity_report_lists_negative_pressure_by_element_and_hour(tiny_net):
    net = dict(tiny_net)
    nodes = net["nodes"].copy()
    nodes.loc[nodes["id"] == "J3", "elevation_m"] = 270.0
    net["nodes"] = nodes
    res = run_simulation(net, duration_h=4, age=False)
    sn = res.sanity
    row = sn[(sn["kind"] == "negative_pressure") & (sn["element"] == "J3")]
    assert len(row) == 1 and row["n_hours"].iloc[0] == 5 and row["hours"].iloc[0] == "0–4"
    assert any(w.startswith("negative pressure at a demand node") and "J3 (h 0–4)" in w for w in res.warnings)


def test_sanity_report_reads_epanet_warnings():
    from watersupply.simulation import SimulationResult, sanity_events
    import pandas as pd
    import wntr

    wn = wntr.network.WaterNetworkModel()
    empty = pd.DataFrame(index=pd.Index([0.0, 1.0]))
    res = SimulationResult(pressure=empty, head=empty, demand=empty, expected_demand=empty, flow=empty,
                           velocity=empty, status=empty, tank_level=empty)
    rpt = ("    5:00:00: WARNING: System unbalanced at 5:00:00 hrs.\n"
           "    6:00:00: WARNING: Node J9 disconnected at 6:00:00 hrs\n"
           "    7:00:00: WARNING: Pump P2 open but cannot deliver head at 7:00:00 hrs.\n")
    sn = sanity_events(wn, res, rpt_text=rpt, diagnosis={})
    assert list(sn["kind"]) == ["unbalanced", "disconnected", "pump_valve"]
    assert list(sn["element"]) == ["(system)", "J9", "P2"]
    assert list(sn["hours"]) == ["5", "6", "7"]


def test_unbalanced_hours_come_from_the_sanity_report_and_withhold_demand_served():
    from watersupply.report import served_text
    from watersupply.simulation import SimulationResult, sanity_events, unbalanced_hours, unbalanced_steps
    import pandas as pd
    import wntr

    wn = wntr.network.WaterNetworkModel()
    empty = pd.DataFrame(index=pd.Index([0.0, 1.0]))
    res = SimulationResult(pressure=empty, head=empty, demand=empty, expected_demand=empty, flow=empty,
                           velocity=empty, status=empty, tank_level=empty)
    assert unbalanced_hours(res) == ""  # no sanity report yet
    rpt = "".join(f"    {h}:00:00: WARNING: System unbalanced at {h}:00:00 hrs.\n" for h in (5, 6, 7, 30))
    res.sanity = sanity_events(wn, res, rpt_text=rpt + "    8:00:00: WARNING: Node J9 disconnected at 8:00:00 hrs\n",
                               diagnosis={})
    assert unbalanced_hours(res) == "5–7, 30"
    assert unbalanced_steps(res) == 4
    assert served_text(float("nan"), unbalanced_hours(res), 1) == "n/a (EPANET unbalanced at h 5–7, 30: no figure)"
    assert served_text(99.25, "", 1) == "99.2 %"
