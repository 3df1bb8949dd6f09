"""Pump scheduling against a time-of-use tariff: tariffs as data, the MILP, EPANET verification."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wntr

from conftest import make_network
from watersupply import ConfigError
from watersupply.metrics import service_heads, demand_nodes
from watersupply.schedule import optimise_schedule, pump_controls, starts_per_day
from watersupply.schedule.output import schedule_summary, write_schedule
from watersupply.tariff import default_tariff_path, hourly_kinds, hourly_prices, load_tariff, parse_tariff

DEMAND_M3D = 216.0  # 2.5 L/s, constant

TWO_PERIOD = {"name": "two", "title_zh": "两段", "title_en": "two periods", "source": "test", "assumed": True,
              "periods": [{"kind": "valley", "price_yuan_kwh": 0.2, "hours": ["22:00-06:00"]},
                          {"kind": "peak", "price_yuan_kwh": 1.0, "hours": ["06:00-22:00"]}]}


def one_pump_one_tank(*, settlement: bool = False, **pump: object) -> dict:
    """Plant → pump → hill tank → one constant demand (no pattern); with `settlement`, J1 is village V1."""
    nodes = [
        dict(id="WTP", kind="plant", x=0, y=0, elevation_m=100, head_m=100),
        dict(id="PS-S", kind="pump_station", x=20, y=0, elevation_m=100),
        dict(id="PS-D", kind="pump_station", x=30, y=0, elevation_m=100),
        dict(id="T1", kind="reservoir", x=500, y=0, elevation_m=130),
        dict(id="J1", x=1000, y=0, elevation_m=100, base_demand_m3d=DEMAND_M3D, population=1800,
             settlement_id="V1" if settlement else None),
    ]
    pipes = [dict(id="M1", from_node="WTP", to_node="PS-S", diameter_mm=300),
             dict(id="M2", from_node="PS-D", to_node="T1", diameter_mm=200),
             dict(id="M3", from_node="T1", to_node="J1", diameter_mm=200)]
    pumps = [dict(id="P1", station_id="PS1", from_node="PS-S", to_node="PS-D", design_flow_ls=10, design_head_m=40,
                  control_node="T1", on_below_m=1.5, off_above_m=4.0, **pump),
             dict(id="P2", station_id="PS1", from_node="PS-S", to_node="PS-D", design_flow_ls=10, design_head_m=40,
                  role="standby", status="CLOSED")]
    tanks = [dict(node_id="T1", diameter_m=12, min_level_m=0.2, max_level_m=5.0, init_level_m=2.5)]
    st = [dict(id="V1", kind="village", population=1800, storeys=2, bounds=(900, -100, 1100, 100), name_zh="村一")]
    return make_network(nodes, pipes, pumps=pumps, tanks=tanks, settlements=st if settlement else (),
                        metadata={"name": "one_pump", "duration_h": "48"})


@pytest.fixture(scope="module")
def tiny_result():
    return optimise_schedule(one_pump_one_tank(), tariff=parse_tariff(TWO_PERIOD), days=2, seed=1)


# ----------------------------------------------------------------------------- tariffs

def test_default_tariff_is_bundled_documented_and_covers_the_day():
    path = default_tariff_path()
    assert path.is_file() and path.parent.name == "tariffs"
    t = load_tariff()
    assert t.assumed is True and "1093" in t.source
    prices = hourly_prices(t)
    assert np.isfinite(prices).all() and prices.min() > 0
    kinds = hourly_kinds(t)
    assert {"peak", "flat", "valley"} <= set(kinds)
    assert prices[kinds == "peak"].min() >= 4 * prices[kinds == "valley"].max() - 1e-9


def _write(tmp_path: Path, periods: str, extra: str = "") -> Path:
    p = tmp_path / "tariff.yaml"
    p.write_text("name: t\ntitle_zh: 测试\ntitle_en: test\nsource: test\nassumed: true\n" + extra +
                 "periods:\n" + periods, encoding="utf-8")
    return p


@pytest.mark.parametrize("periods, expect", [
    ('  - {kind: valley, price_yuan_kwh: 0.2, hours: ["00:00-09:00"]}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["08:00-24:00"]}\n', r"tariff.yaml:\d+: periods\[1\] \(peak\) and "
                                                                        r"periods\[0\] \(valley\) overlap at 08:00"),
    ('  - {kind: valley, price_yuan_kwh: 0.2, hours: ["00:00-08:00"]}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["08:00-20:00"]}\n', r"no period covers 20:00-21:00.*23:00-24:00"),
    ('  - {kind: valley, price_yuan_kwh: -0.2, hours: ["00:00-08:00"]}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["08:00-24:00"]}\n', r"tariff.yaml:7: periods\[0\].price_yuan_kwh: "
                                                                        r"a price must be >= 0"),
    ('  - {kind: valley, price_yuan_kwh: 0.2, hours: ["00:00-07:30"]}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["07:30-24:00"]}\n', r"must start and end on whole hours"),
    ('  - {kind: valey, price_yuan_kwh: 0.2, hours: ["00:00-08:00"]}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["08:00-24:00"]}\n', r"unknown period kind 'valey'"),
    ('  - {kind: valley, price_yuan_kwh: 0.2, hours: ["00:00-08:00"], colour: red}\n'
     '  - {kind: peak, price_yuan_kwh: 1.0, hours: ["08:00-24:00"]}\n', r"unknown field 'colour'"),
    ('  - {kind: valley, price_yuan_kwh: 0.2, hours: [00:00-08:00\n', r"malformed YAML"),
])
def test_bad_tariff_files_get_clear_errors(tmp_path, periods, expect):
    with pytest.raises(ConfigError, match=expect):
        load_tariff(_write(tmp_path, periods))


def test_missing_tariff_file_and_wrapping_ranges(tmp_path):
    with pytest.raises(ConfigError, match="tariff file not found"):
        load_tariff(tmp_path / "nope.yaml")
    t = parse_tariff(TWO_PERIOD)
    assert hourly_kinds(t)[[21, 22, 23, 0, 5, 6]].tolist() == ["peak", "valley", "valley", "valley", "valley", "peak"]


# ----------------------------------------------------------------------------- helpers

def test_pump_controls_and_starts_are_cyclic():
    s = pd.DataFrame({"A": [1] * 6 + [0] * 12 + [1] * 6, "B": [0, 1] * 12})
    assert pump_controls(s[["A"]]) == [("A", 6, "CLOSED"), ("A", 18, "OPEN")]
    assert starts_per_day(s).to_dict() == {"A": 1, "B": 12}


# ----------------------------------------------------------------------------- the one-pump, one-tank optimum

def test_two_period_optimum_is_the_hand_computed_one(tiny_result):
    """The tank holds a day's demand, so the cheapest periodic schedule pumps the day's demand in
    valley hours only: n = ceil(demand / pump flow) hours, cost = 0.2 ¥/kWh × the day's kWh."""
    r = tiny_result
    on = r.schedule["P1"]
    valley = set(range(22, 24)) | set(range(0, 6))
    assert set(on.index[on == 1]) <= valley
    q = r.optimised_energy.xs("P1", level="pump")["flow_m3s"]
    q_on = float(q[q > 0].mean())
    n_hand = math.ceil(DEMAND_M3D / (q_on * 3600.0) - 1e-6)
    assert int(on.sum()) in (n_hand, n_hand + 1)   # +1 only when the periodic margin needs it
    kwh = float(r.optimised_energy["kwh"].sum())
    assert r.optimised_cost_yuan_day == pytest.approx(0.2 * kwh, rel=1e-9)
    assert r.baseline_cost_yuan_day > r.optimised_cost_yuan_day
    # the baseline level controls run whenever the level falls: mostly in the peak, so the saving is large
    assert r.saving_pct > 50


def test_reported_schedule_violates_no_constraint(tiny_result):
    r = tiny_result
    assert r.passed, r.checks
    assert (r.schedule["P2"] == 0).all()
    assert starts_per_day(r.schedule[["P1"]]).max() <= r.max_starts
    lv = r.optimised.tank_level["T1"]
    for d in range(r.days):
        assert lv.loc[24 * (d + 1)] >= lv.loc[24 * d] - 0.005
    assert lv.min() > 0.2
    p = r.optimised.pressure[list(demand_nodes(one_pump_one_tank()))]
    assert (p.min() >= service_heads(one_pump_one_tank())).all()


def test_scheduled_inp_reproduces_the_schedule_in_epanet_alone(tiny_result, tmp_path):
    files = write_schedule(tiny_result, one_pump_one_tank(), tmp_path)
    text = files["inp"].read_text(encoding="utf-8")
    assert "AT CLOCKTIME" in text
    wn = wntr.network.WaterNetworkModel(str(files["inp"]))
    assert str(wn.get_link("P2").initial_status).upper().endswith("CLOSED")
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "re"))
    q = res.link["flowrate"]["P1"]
    hours = (q.index / 3600).astype(int)
    on = pd.Series((q.to_numpy() > 1e-6).astype(int), index=hours)
    last = on.loc[24:47].to_numpy()
    assert last.tolist() == tiny_result.schedule["P1"].tolist()
    lv = res.node["pressure"]["T1"]
    assert lv.iloc[-1] >= lv.iloc[0] - 0.005
    summary = pd.read_csv(files["summary"], index_col=0)
    for col in ("baseline_kwh_day", "optimised_kwh_day", "baseline_cost_yuan_day", "optimised_cost_yuan_day",
                "saving_pct", "starts_per_day"):
        assert col in summary.columns
    assert "total" in summary.index
    assert (tmp_path / "schedule_PS1.png").stat().st_size > 10_000
    report = files["report"].read_text(encoding="utf-8")
    assert "分时电价" in report and "Daily energy cost" in report


def test_deterministic_with_a_seed(tiny_result):
    again = optimise_schedule(one_pump_one_tank(), tariff=parse_tariff(TWO_PERIOD), days=2, seed=1)
    pd.testing.assert_frame_equal(again.schedule, tiny_result.schedule)
    assert again.optimised_cost_yuan_day == tiny_result.optimised_cost_yuan_day


def test_start_limit_is_respected():
    r = optimise_schedule(one_pump_one_tank(), tariff=load_tariff(), days=2, max_starts=1, seed=0)
    assert r.passed
    assert starts_per_day(r.schedule[["P1"]]).max() <= 1


def test_bad_options_and_pumpless_networks_are_refused():
    from watersupply import NetworkDataError

    with pytest.raises(NetworkDataError, match="days must be >= 2"):
        optimise_schedule(one_pump_one_tank(), days=1)
    net = one_pump_one_tank()
    net["pumps"] = net["pumps"].iloc[0:0]
    with pytest.raises(NetworkDataError, match="no pumps"):
        optimise_schedule(net)


@pytest.mark.slow
def test_tonghui_saves_at_least_15_percent(tonghui_net):
    r = optimise_schedule(tonghui_net, days=2)
    assert r.passed, r.checks
    assert r.saving_pct >= 15.0
    s = schedule_summary(r)
    assert (s["starts_per_day"] <= 6).all()


def test_docstring_examples_run():
    import doctest
    import importlib

    for mod in ("watersupply.tariff", "watersupply.schedule.evaluate"):
        assert doctest.testmod(importlib.import_module(mod)).failed == 0, mod


def test_hostile_tariff_yaml_is_refused_quickly(tmp_path: Path) -> None:
    """The tariff reader shares the scenario reader's guards: an alias bomb fails fast, naming the file."""
    import time

    bomb = ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nperiods: [*e, *e]\n")
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb, encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: the YAML expands to more than"):
        load_tariff(path)
    assert time.perf_counter() - t0 < 5
