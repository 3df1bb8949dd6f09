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
