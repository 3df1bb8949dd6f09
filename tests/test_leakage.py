"""Background leakage emitters and unforeseen demand (watersupply.leakage), solved by EPANET."""

from __future__ import annotations

import numpy as np
import pytest

from watersupply import leakage as lk
from watersupply._errors import NetworkDataError
from watersupply.model import to_wntr
from watersupply.simulation import run_simulation


def test_leakage_calibrated_to_the_target(tiny_net: dict) -> None:
    net = lk.add_leakage(tiny_net, rate=0.10)
    assert "leakage_coeff" not in tiny_net["nodes"].columns
    c = net["nodes"].set_index("id")["leakage_coeff"]
    assert (c[["J1", "J2", "J3", "J4"]] > 0).all() and c["WTP"] == 0
    # proportional to the pipe length each junction stands for
    lengths = tiny_net["pipes"].set_index("id")["length_m"]
    assert c["J3"] / c["J2"] == pytest.approx(lengths["B2"] / (lengths["B1"] + lengths["B2"]), rel=1e-6)
    wn = to_wntr(net)
    assert wn.get_node("J3").emitter_coefficient == pytest.approx(c["J3"])
    res = run_simulation(net, duration_h=24, age=False)
    s = lk.leakage_summary(net, res)
    assert s["leakage_share"] == pytest.approx(0.10, abs=0.005)
    # leakage is C p^0.5 at the simulated pressures, and demand is the users' consumption without it
    p = res.pressure["J3"].clip(lower=0)
    assert np.allclose(res.leakage["J3"], c["J3"] * p ** 0.5)
    plain = run_simulation(tiny_net, duration_h=24, age=False)
    assert res.demand["J3"].sum() == pytest.approx(plain.demand["J3"].sum(), rel=0.02)
    # more leakage: the same calibration at 20 % doubles-and-more the volume
    more = lk.leakage_summary(net2 := lk.add_leakage(tiny_net, rate=0.2), run_simulation(net2, duration_h=24,
                                                                                        age=False))
    assert more["leakage_m3"] > 2 * s["leakage_m3"]


def test_leakage_errors(tiny_net: dict) -> None:
    with pytest.raises(NetworkDataError, match="share in"):
        lk.add_leakage(tiny_net, rate=0.7)


def test_unforeseen_demand(tiny_net: dict) -> None:
    net = lk.add_unforeseen_demand(tiny_net, share=0.10)
    base = tiny_net["nodes"].set_index("id")["base_demand_m3d"]
    new = net["nodes"].set_index("id")
    assert new["base_demand_m3d"].sum() == pytest.approx(1.10 * base.sum())
    assert new.loc["J4", "unforeseen_m3d"] == pytest.approx(30.0)
    again = lk.add_unforeseen_demand(net, share=0.12)  # replaces, never compounds
    assert again["nodes"]["base_demand_m3d"].sum() == pytest.approx(1.12 * base.sum())
    md = dict(zip(again["metadata"]["key"], again["metadata"]["value"]))
    assert md["unforeseen_demand_share"] == "0.12"
    with pytest.raises(NetworkDataError, match="0.08–0.12"):
        lk.add_unforeseen_demand(tiny_net, share=0.5)
    res = run_simulation(net, duration_h=24, age=False)
    assert res.expected_demand["J4"].iloc[:24].mean() == pytest.approx(330.0 / 86400.0, rel=1e-3)


@pytest.mark.slow
def test_tonghui_leakage_share(tonghui_net: dict) -> None:
    net = lk.add_leakage(tonghui_net)
    res = run_simulation(net, duration_h=24, age=False)
    s = lk.leakage_summary(net, res)
    assert s["leakage_share"] == pytest.approx(0.10, abs=0.005)


def test_baseline_report_shows_leakage(tiny_net: dict, tmp_path) -> None:
    from watersupply.baseline import run_baseline
    net = lk.add_leakage(tiny_net, rate=0.12)
    run = run_baseline(net, out_dir=tmp_path, make_map=False, with_audit=False, duration_h=24, age=False)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## 管网漏损 Leakage" in text and "leakage share" in text
    s = lk.leakage_summary(net, run.result)
    assert s["target_share"] == pytest.approx(0.12) and s["leakage_share"] == pytest.approx(0.12, abs=0.005)
    assert f"{s['leakage_m3']:,.3f}" in text
    plain = run_baseline(tiny_net, out_dir=tmp_path / "p", make_map=False, with_audit=False, duration_h=24, age=False)
    assert plain is not None and "Leakage" not in (tmp_path / "p" / "report.md").read_text(encoding="utf-8")
