"""Pump head and efficiency curves sized to the duty (watersupply.pumpcurves), solved by EPANET."""

from __future__ import annotations

import numpy as np
import pytest

from watersupply import pumpcurves as pc
from watersupply._errors import NetworkDataError
from watersupply.metrics import pump_energy
from watersupply.model import to_wntr
from watersupply.simulation import run_simulation


def test_head_curve_passes_duty_and_shuts_off_above_it() -> None:
    pts = pc.head_curve(7.3, 121.6)
    qs, hs = zip(*pts)
    assert len(pts) == 5 and qs[0] == 0.0 and hs[-1] == pytest.approx(0.0)
    assert hs[0] == pytest.approx(pc.SHUTOFF_HEAD_RATIO * 121.6)
    assert 1.2 <= hs[0] / 121.6 <= 1.35
    assert np.interp(7.3, qs, hs) == pytest.approx(121.6)
    assert all(np.diff(hs) < 0) and all(np.diff(qs) > 0)


def test_efficiency_fits_pump_size() -> None:
    small = [pc.bep_efficiency(q, h) for q, h in ((4.12, 47.5), (4.87, 78.3), (7.31, 121.6))]
    big = pc.bep_efficiency(132.81, 104.2)
    assert all(0.55 <= e <= 0.70 for e in small), small
    assert 0.78 <= big <= 0.86
    assert big > max(small)
    # the efficiency curve peaks at the duty flow
    q, e = zip(*pc.efficiency_curve(10.0, 0.7))
    assert q[int(np.argmax(e))] == pytest.approx(10.0) and max(e) == pytest.approx(70.0)


def test_bad_duty_is_named() -> None:
    with pytest.raises(NetworkDataError, match="design_flow_ls > 0"):
        pc.head_curve(0.0, 30.0)


def test_fit_pump_curves_runs_in_epanet(tiny_net: dict) -> None:
    net = pc.fit_pump_curves(tiny_net)
    assert "curves" not in tiny_net and "curve" not in tiny_net["pumps"].columns  # input untouched
    pumps = net["pumps"].set_index("id")
    assert pumps.loc["P1", "curve"] == "H_P1" and pumps.loc["P1", "efficiency_curve"] == "E_P1"
    wn = to_wntr(net)
    pump = wn.get_link("P1")
    assert len(pump.get_pump_curve().points) == 5
    assert pump.efficiency is not None and len(pump.efficiency.points) == 7
    res = run_simulation(net, duration_h=24, age=False)
    q = res.flow["P1"] * 1000.0
    on = q > 1e-3
    assert on.any()
    gain = (res.head["PS-D"] - res.head["PS-S"])[on]
    # the operating points lie on the fitted head curve
    qs, hs = zip(*pc.head_curve(12.0, 70.0))
    assert np.allclose(gain, np.interp(q[on], qs, hs), atol=0.5)
    # energy uses the curve's efficiency at the pumped flow, not the flat 75 %
    e_curve = pump_energy(res, net).loc["P1", "energy_kwh"]
    e_flat = pump_energy(res, tiny_net).loc["P1", "energy_kwh"]
    eta = pc.efficiency_at(net, "P1", q[on].to_numpy())
    assert eta is not None and (eta < 0.75).all()
    assert e_curve > e_flat


def test_fit_keeps_existing_curves_unless_replace(tiny_net: dict) -> None:
    once = pc.fit_pump_curves(tiny_net)
    again = pc.fit_pump_curves(once)
    assert len(again["curves"]) == len(once["curves"])
    replaced = pc.fit_pump_curves(once, replace=True, shutoff_ratio=1.3)
    h = replaced["curves"].query("curve == 'H_P1'").sort_values("point")["y"].iloc[0]
    assert h == pytest.approx(1.3 * 70.0) and len(replaced["curves"]) == len(once["curves"])


def test_tonghui_pump_efficiencies(tonghui_net: dict) -> None:
    net = pc.fit_pump_curves(tonghui_net)
    eff = pc.pump_efficiencies(net)
    duty = net["pumps"].set_index("id")
    small = eff[duty["design_flow_ls"] < 8]["bep_efficiency"]
    assert len(small) and small.between(0.55, 0.70).all()
    assert eff.loc["PS1-P1", "bep_efficiency"] >= 0.78
    wn = to_wntr(net)
    assert {c for c in wn.curve_name_list if c.startswith("E_")} == {f"E_{p}" for p in duty.index}
