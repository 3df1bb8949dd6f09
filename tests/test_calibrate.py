"""Calibration library: observation files, groups, identifiability, the fit on synthetic truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from watersupply import ConfigError
from watersupply.calibration import (TONGHUI_DEMO, apply_parameters, calibrate, demand_groups, example_path,
                                     identifiability, make_synthetic_logs, read_observations, roughness_groups,
                                     status_groups)
from watersupply.calibration.outputs import calibration_report, write_calibration
from watersupply.calibration.solver import ModelSpec, ToolkitModel
from watersupply.model import to_wntr, write_inp
from watersupply.simulation import run_simulation
from conftest import make_network


def _write(tmp_path, text, name="logs.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


HEADER = "time,element,quantity,value,unit\n"


# ----------------------------------------------------------------------------- observation files

def test_read_observations_converts_units_and_times(tmp_path, tiny_net):
    p = _write(tmp_path, HEADER + "".join(
        f"{h},J2,pressure,{300 + h},kPa\n{h},P1,flow,{36 + h},m3/h\n{h},T1,level,{250 + h},cm\n" for h in range(3)))
    obs = read_observations(p, tiny_net)
    assert len(obs) == 9 and set(obs.quantity) == {"pressure", "flow", "level"}
    pr = obs[(obs.quantity == "pressure") & (obs.time_h == 0)].value.iloc[0]
    assert pr == pytest.approx(300e3 / (1000 * 9.81))
    assert obs[(obs.quantity == "flow") & (obs.time_h == 0)].value.iloc[0] == pytest.approx(0.01)
    assert obs[(obs.quantity == "level") & (obs.time_h == 2)].value.iloc[0] == pytest.approx(2.52)


def test_iso_times_are_hours_from_the_start(tmp_path, tiny_net):
    p = _write(tmp_path, HEADER + "".join(f"2026-07-01T{h:02d}:30,J2,pressure,30,m\n" for h in range(3)))
    assert read_observations(p, tiny_net).time_h.tolist() == [0.0, 1.0, 2.0]
    assert read_observations(p, tiny_net, start="2026-07-01T00:00").time_h.tolist() == [0.5, 1.5, 2.5]


@pytest.mark.parametrize("rows, match", [
    ("0,JX,pressure,30,m\n", r"line 2: pressure sensor on 'JX', which is not a node; closest valid ids: 'J6'"),
    ("0,J2,velocity,1,m/s\n", r"line 2: unknown quantity 'velocity'"),
    ("0,J2,pressure,30,atm\n", r"line 2: unit 'atm' is not known for pressure"),
    ("0,J2,flow,3,L/s\n", r"line 2: flow sensor on 'J2', which is not a pipe, pump or valve"),
    ("0,J2,level,3,m\n", r"line 2: level sensor on 'J2', which is not a reservoir"),
    ("0,J2,pressure,abc,m\n", r"line 2: value 'abc' is not a finite number"),
    ("0,J2,pressure,30,m\n1,J2,pressure,30,m\n0,J2,pressure,31,m\n",
     r"line 4: duplicate pressure reading of 'J2' at 0 h \(already on line 2\)"),
    ("0,J2,pressure,30,m\n99,J2,pressure,30,m\n", r"line 3: time '99' \(99 h\) is outside the run \(0–48 h\)"),
    ("0,J2,pressure,30,m\n1,J2,pressure,30,m\n", r"sensor 'J2' \(pressure\) has 2 reading\(s\), fewer than 3"),
    ("yesterday,J2,pressure,30,m\n", r"line 2: time 'yesterday' is neither hours"),
])
def test_bad_observations_name_the_row(tmp_path, tiny_net, rows, match):
    with pytest.raises(ConfigError, match=match):
        read_observations(_write(tmp_path, HEADER + rows), tiny_net)


def test_observation_header_checked(tmp_path, tiny_net):
    with pytest.raises(ConfigError, match=r"missing column\(s\) unit"):
        read_observations(_write(tmp_path, "time,element,quantity,value\n0,J2,pressure,3\n"), tiny_net)


# ----------------------------------------------------------------------------- groups

def test_roughness_and_demand_groups(tiny_net):
    rg = roughness_groups(tiny_net, by="diameter")
    assert [g.name for g in rg] == ["C:DN130-260", "C:DN80-130", "C:DN<80", "C:DN>=260"]
    assert dict((g.name, g.members) for g in rg)["C:DN<80"] == ("B2",)
    dg = demand_groups(tiny_net, by="settlement")
    assert [(g.name, round(g.initial)) for g in dg] == [("D:C1", 600), ("D:V1", 100)]
    assert [g.name for g in roughness_groups(tiny_net, by="material,class")] == ["C:PE/branch", "C:PE/main"]
    unzoned = {**tiny_net, "nodes": tiny_net["nodes"].assign(zone=None)}  # e.g. a plain INP file
    assert [(g.name, len(g.members)) for g in demand_groups(unzoned)] == [("D:unzoned", 5)]


def test_group_csv_errors(tmp_path, tiny_net):
    ok = _write(tmp_path, "pipe,group,lower,upper\nB1,old,0.3,1.2\nB3,old,,\n", "g.csv")
    g = roughness_groups(tiny_net, csv=ok)
    assert [(x.name, x.members, x.lower, x.upper) for x in g] == [("C:old", ("B1", "B3"), 0.3, 1.2)]
    with pytest.raises(ConfigError, match=r"line 3: unknown pipe 'B9'"):
        roughness_groups(tiny_net, csv=_write(tmp_path, "pipe,group\nB1,a\nB9,a\n", "b.csv"))
    with pytest.raises(ConfigError, match=r"line 3: pipe 'B1' is already in a group \(line 2\)"):
        roughness_groups(tiny_net, csv=_write(tmp_path, "pipe,group\nB1,a\nB1,b\n", "c.csv"))
    with pytest.raises(ConfigError, match=r"bounds must satisfy 0 < lower < 1 < upper"):
        roughness_groups(tiny_net, csv=_write(tmp_path, "pipe,group,lower\nB1,a,1.2\n", "d.csv"))
    with pytest.raises(ConfigError, match="cannot group roughness by 'age'"):
        roughness_groups(tiny_net, by="age")
    with pytest.raises(ConfigError, match=r"line 2: unknown node 'X'"):
        demand_groups(tiny_net, csv=_write(tmp_path, "node,group\nX,a\n", "e.csv"))
    st = status_groups(tiny_net, _write(tmp_path, "link,group\nB5,loop valve\n", "s.csv"))
    assert st[0].name == "S:loop valve" and st[0].kind == "status"


def test_identifiability_names_a_collinear_pair_and_a_blind_group():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200) * 50
    J = np.column_stack([a, 2 * a, rng.normal(size=200) * 50, np.zeros(200)])
    out = identifiability(J, ["a", "b", "c", "blind"], max_se=0.025)
    assert out["rank"] == 2 and out["condition"] > 1e6
    assert out["identifiable"] == ["b", "c"] and out["unidentifiable"] == ["a", "blind"]


# ----------------------------------------------------------------------------- engine

def test_toolkit_matches_wntr(tmp_path, tiny_net):
    """The in-memory EPANET 2.2 solve agrees with WNTR (same engine) at the reading times."""
    groups = roughness_groups(tiny_net, by="diameter") + demand_groups(tiny_net, by="settlement")
    write_inp(to_wntr(tiny_net), tmp_path / "m.inp")
    sensors = [("J3", "pressure"), ("J5", "pressure"), ("T1", "level"), ("P1", "flow")]
    times = np.repeat(np.arange(0, 48, 1.0), len(sensors))
    spec = ModelSpec(inp=str(tmp_path / "m.inp"), sensors=sensors, reading_time_s=times * 3600,
                     reading_sensor=np.tile(np.arange(len(sensors)), 48),
                     roughness_groups={g.name: list(g.members) for g in groups if g.kind == "roughness"},
                     demand_groups={g.name: list(g.members) for g in groups if g.kind == "demand"})
    model = ToolkitModel(spec)
    factors = {"C:DN80-130": 0.7, "D:C1": 1.2}
    sim = model.evaluate(factors)
    res = run_simulation(apply_parameters(tiny_net, groups, factors), age=False)
    ref = np.array([res.pressure.loc[t, "J3"] if s == 0 else res.pressure.loc[t, "J5"] if s == 1 else
                    res.tank_level.loc[t, "T1"] if s == 2 else res.flow.loc[t, "P1"]
                    for t, s in zip(times, spec.reading_sensor)])
    assert np.abs(sim - ref).max() < 0.02
    # a different parameter set changes the answer, and going back reproduces the first
    assert np.abs(model.evaluate({}) - sim).max() > 0.5
    assert np.allclose(model.evaluate(factors), sim)
    model.close()


# ----------------------------------------------------------------------------- the fit

@pytest.fixture
def calib_net() -> dict:
    """A gravity network with real head losses: plant → DN200 main → zone A (a tree) and zone B (a loop).

    ::

        WTP ─M1(DN200)─ J1 ─A-1(DN100)─ A1 ─A-2(DN100)─ A2 ─A-3(DN75)─ A3
                         └─MB(DN150)─ B1 ─B-1(DN100)─ B2 ─B-2(DN100)─ B3 ─B-3(DN75)─ B1
    """
    from watersupply.generator import PATTERNS

    nodes = [dict(id="WTP", kind="plant", x=0, y=0, elevation_m=100, head_m=160),
             dict(id="J1", x=2000, y=0, elevation_m=105, zone="A")]
    for i, (x, y, q) in enumerate([(2800, 200, 200), (3400, 300, 250), (3900, 300, 150)], 1):
        nodes.append(dict(id=f"A{i}", x=x, y=y, elevation_m=105 + i, base_demand_m3d=q, zone="A", pattern="urban",
                          settlement_id="SA"))
    for i, (x, y, q) in enumerate([(3000, -900, 300), (3600, -1200, 300), (3100, -1500, 200)], 1):
        nodes.append(dict(id=f"B{i}", x=x, y=y, elevation_m=104 + i, base_demand_m3d=q, zone="B", pattern="urban",
                          settlement_id="SB"))
    pipes = [dict(id="M1", from_node="WTP", to_node="J1", diameter_mm=200),
             dict(id="A-1", from_node="J1", to_node="A1", diameter_mm=100),
             dict(id="A-2", from_node="A1", to_node="A2", diameter_mm=100),
             dict(id="A-3", from_node="A2", to_node="A3", diameter_mm=75),
             dict(id="MB", from_node="J1", to_node="B1", diameter_mm=150),
             dict(id="B-1", from_node="B1", to_node="B2", diameter_mm=100),
             dict(id="B-2", from_node="B2", to_node="B3", diameter_mm=100),
             dict(id="B-3", from_node="B3", to_node="B1", diameter_mm=75)]
    return make_network(nodes, pipes, patterns={"urban": PATTERNS["urban"]}, metadata={"name": "calib", "duration_h": "48"})


TRUTH = {"C:DN80-130": 0.7, "C:DN130-260": 1.2, "C:DN<80": 0.8, "D:A": 1.1, "D:B": 0.88}


def _case(net, tmp_path, truth=TRUTH, **kw):
    groups = roughness_groups(net, by="diameter") + demand_groups(net, by="zone")
    logs, _ = make_synthetic_logs(net, groups=groups, truth=truth, n_loggers=6, flow_links=["M1", "MB"], seed=7, **kw)
    p = tmp_path / "logs.csv"
    logs.to_csv(p, index=False)
    return groups, read_observations(p, net)


def test_calibration_recovers_truth_and_validates(tmp_path, calib_net):
    truth = TRUTH
    groups, obs = _case(calib_net, tmp_path)
    res = calibrate(calib_net, obs, groups=groups, fit_window=(0, 32), validate_window=(32, 48))
    p = res.parameters
    findings = p[p.finding]
    assert len(findings) >= 3 and (findings.state == "fitted").all()
    for g, row in findings.iterrows():
        assert row.factor == pytest.approx(truth.get(g, 1.0), rel=0.05), g
        assert row.ci95_low <= row.fitted <= row.ci95_high
        assert row.ci95_pct <= 5.0 and abs(row.correlation) <= 0.9
    # the rest are named with their partner, and are not findings
    assert set(p.index[~p.finding]) == set(res.identifiability["not_identifiable"])
    for g, row in p[~p.finding].iterrows():
        assert row.note.startswith("not identifiable from these data (confounded with "), g
        assert row.most_correlated in row.note
    v = res.overall.loc[("validate", "pressure")]
    assert v["within_0.5m"] >= 0.85 and v["within_1m"] >= 0.95
    assert v["rmse"] < v["rmse_before"]
    assert res.engine_agreement_m < 0.05
    assert res.n_evaluations > len(groups)
    # the calibrated network carries the fitted values
    pipes = res.network["pipes"].set_index("id")
    assert pipes.loc["A-1", "roughness_c"] == pytest.approx(130 * p.loc["C:DN80-130", "factor"])
    files = write_calibration(res, tmp_path / "out")
    for name in ("calibrated.inp", "calibrated.gpkg", "parameters.csv", "fit.csv", "residuals.png", "report.md"):
        assert files[name].is_file() and files[name].stat().st_size > 0
    text = files["report.md"].read_text(encoding="utf-8")
    assert "模型校准 Model calibration" in text and "可辨识性 Identifiability" in text
    # the calibrated INP, re-simulated independently, reproduces the validation readings
    import wntr
    wn = wntr.network.WaterNetworkModel(str(files["calibrated.inp"]))
    sim = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "indep"))
    pr = sim.node["pressure"]
    val = obs[(obs.quantity == "pressure") & (obs.time_h > 32)]
    err = np.array([pr.loc[round(t * 3600), el] - v for t, el, v in zip(val.time_h, val.element, val.value)])
    assert np.mean(np.abs(err) <= 0.5) >= 0.85


def test_misfit_is_reported_and_no_group_is_a_finding(tmp_path, calib_net):
    """Zone B's demand is 30 % lower in the field but no group covers it: the fit compensates with the
    others, so the model is flagged as not reproducing the readings and nothing is a finding."""
    groups = roughness_groups(calib_net, by="diameter") + demand_groups(calib_net, by="zone")
    logs, _ = make_synthetic_logs(calib_net, groups=groups, truth={**TRUTH, "D:B": 0.7}, n_loggers=6,
                                  flow_links=["M1", "MB"], seed=7)
    p = tmp_path / "logs.csv"
    logs.to_csv(p, index=False)
    fitted = [g for g in groups if g.name != "D:B"]
    res = calibrate(calib_net, read_observations(p, calib_net), groups=fitted, fit_window=(0, 32))
    assert not res.parameters["finding"].any()
    notes = res.parameters["note"]
    assert notes.str.contains("does not reproduce").all(), notes.tolist()
    assert "flow MB" in notes.iloc[0]
    assert any(w.startswith("model misfit: ") for w in res.warnings)
    assert set(res.identifiability["not_identifiable"]) == set(res.parameters.index)
    assert "Not identifiable from these data" in calibration_report(res)


def test_status_group_found_closed(tmp_path, calib_net):
    groups = roughness_groups(calib_net, by="diameter") + demand_groups(calib_net, by="zone")
    sg = status_groups(calib_net, _write(tmp_path, "link,group\nB-3,loop valve\nA-3,end of A\n", "s.csv"))
    closed_net = apply_parameters(calib_net, sg, {}, closed=["S:loop valve"])  # the truth: B-3 shut
    logs, _ = make_synthetic_logs(closed_net, groups=groups, truth={}, n_loggers=6, flow_links=["M1", "MB"], seed=3)
    p = tmp_path / "logs.csv"
    logs.to_csv(p, index=False)
    res = calibrate(calib_net, read_observations(p, calib_net), groups=groups + sg, fit_window=(0, 32))
    assert res.closed_groups == ["S:loop valve"]
    assert res.parameters.loc["S:loop valve", "state"] == "closed"
    assert res.parameters.loc["S:end of A", "state"] == "open"
    assert res.network["pipes"].set_index("id").loc["B-3", "status"] == "CLOSED"
    for g in ("D:A", "D:B"):
        assert res.parameters.loc[g, "factor"] == pytest.approx(1.0, abs=0.03)


def test_calibrate_rejects_bad_windows_and_too_few_readings(tmp_path, tiny_net):
    groups = roughness_groups(tiny_net, by="diameter")
    obs = read_observations(_write(tmp_path, HEADER + "".join(f"{h},J2,pressure,30,m\n" for h in range(3))), tiny_net)
    with pytest.raises(ConfigError, match="fit window 10:5"):
        calibrate(tiny_net, obs, groups=groups, fit_window=(10, 5))
    with pytest.raises(ConfigError, match="no readings in the fit window 20:30"):
        calibrate(tiny_net, obs, groups=groups, fit_window=(20, 30))
    with pytest.raises(ConfigError, match="3 readings in the fit window for 4 unknowns"):
        calibrate(tiny_net, obs, groups=groups)
    with pytest.raises(ConfigError, match="unknown loss 'l2'; use one of linear, soft_l1"):
        calibrate(tiny_net, obs, groups=groups, loss="l2")
    with pytest.raises(ConfigError, match="probe must be a share in"):
        calibrate(tiny_net, obs, groups=groups, probe=1.5)
    with pytest.raises(ConfigError, match="probe must be a share in"):
        calibrate(tiny_net, obs, groups=groups, probe=(0.05, 1.2))
    with pytest.raises(ConfigError, match="level_relax >= 1, got .* and 0.5"):
        calibrate(tiny_net, obs, groups=groups, level_relax=0.5)


def test_report_lists_unidentifiable_groups(tmp_path, calib_net):
    groups = roughness_groups(calib_net, by="diameter") + demand_groups(calib_net, by="zone")
    logs, _ = make_synthetic_logs(calib_net, groups=groups, truth={"D:A": 1.1}, n_loggers=2, flow_links=["M1"], seed=5)
    logs = logs[logs.element == "M1"]  # only the total flow: roughness is invisible, A and B inseparable
    p = tmp_path / "logs.csv"
    logs.to_csv(p, index=False)
    res = calibrate(calib_net, read_observations(p, calib_net), groups=groups, fit_window=(0, 32))
    un = res.identifiability["unidentifiable"]
    assert {"C:DN<80", "C:DN80-130", "C:DN130-260"} <= set(un)
    assert len({"D:A", "D:B"} & set(un)) == 1
    assert res.identifiability["rank"] < len(groups)
    report = calibration_report(res)
    assert "C:DN<80" in report and "Not identifiable from these data" in report
    row = res.parameters.loc["C:DN<80"]
    assert row.fitted == pytest.approx(row.initial) and row.state == "not identifiable, kept at initial"
    assert not row.finding and row.note.startswith("not identifiable from these data")
    # the one of D:A / D:B kept in the fit carries both: it is not a finding either
    assert not res.parameters.loc[["D:A", "D:B"], "finding"].any()


# ----------------------------------------------------------------------------- Tonghui demonstration

def test_bundled_example_is_found_and_valid(tonghui_net):
    obs = read_observations(example_path("tonghui_logs.csv"), tonghui_net)
    counts = obs.groupby("quantity").element.nunique().to_dict()
    pumps = tonghui_net["pumps"]
    n_duty = int((pumps["status"].astype(str).str.upper() != "CLOSED").sum())
    n_tanks = int((tonghui_net["nodes"]["kind"] == "reservoir").sum())
    assert counts == {"flow": n_duty + len(TONGHUI_DEMO["flow_links"]), "level": n_tanks,
                      "pressure": TONGHUI_DEMO["n_loggers"]}
    # the loggers are spread over the reservoir zones (not piled into the largest pressure zones)
    zones = tonghui_net["nodes"].set_index("id")["zone"].astype(str).str.replace(r"(-Z\d+)+$", "", regex=True)
    logged = obs.loc[obs.quantity == "pressure", "element"].unique()
    assert zones.reindex(logged).nunique() == 9
    truth = pd.read_csv(example_path("tonghui_truth.csv")).set_index("group").factor
    assert truth.to_dict() == pytest.approx({k: TONGHUI_DEMO["truth"].get(k, 1.0) for k in truth.index})
    with pytest.raises(ConfigError, match="available: tonghui_logs.csv"):
        example_path("nope.csv")


# The Tonghui synthetic-truth demonstration (13 groups against TONGHUI_DEMO's truth, fit 0-48 h, validate
# 48-72 h) runs once, in notebooks/04_engineer_calibration.ipynb, whose cells assert its targets (every
# finding within ±5 % of the truth, the others naming their partner, validation ≥ 85 % / 95 % within
# ±0.5 / ±1.0 m, toolkit against WNTR < 0.01 m); tests/test_notebooks.py executes it. A second copy here
# would repeat a ~380-solve fit.


# ----------------------------------------------------------------------------- identifiability at the fit

def test_confidence_names_an_exactly_confounded_pair():
    from watersupply.calibration.identifiability import confidence, correlations

    rng = np.random.default_rng(3)
    a, c = rng.normal(size=(2, 300)) * 30
    J = np.column_stack([a, 0.5 * a, c])  # x and y move the readings the same way
    assert correlations(J)[0, 1] == pytest.approx(-1.0, abs=1e-3)
    out = confidence(J, ["x", "y", "z"], [1.0, 1.0, 1.0], cost=297.0)
    assert out["identifiable"] == ["z"]
    assert out["not_identifiable"]["x"].startswith("not identifiable from these data (confounded with y (r = -1.00)")
    assert out["not_identifiable"]["y"].startswith("not identifiable from these data (confounded with x (r = -1.00)")
    # a wide interval alone (no partner) is also not a finding; scaling by s² matters
    out = confidence(np.column_stack([a * 0.05, c]), ["w", "z"], [1.0, 1.0], cost=298.0 * 4)
    assert "w" in out["not_identifiable"] and "wider than ±5 %" in out["not_identifiable"]["w"]
    assert out["identifiable"] == ["z"] and out["s2"] == pytest.approx(4.0)


def _series_groups(tmp_path, net):
    """Two roughness groups in series on the only path to A3 (A-1, A-2), and the rest."""
    rows = ["pipe,group", "A-1,a1", "A-2,a2"] + [f"{p},rest" for p in ("M1", "A-3", "MB", "B-1", "B-2", "B-3")]
    return roughness_groups(net, csv=_write(tmp_path, "\n".join(rows) + "\n", "series.csv"))


def test_perfectly_confounded_groups_are_reported_with_their_partner(tmp_path, calib_net):
    groups = _series_groups(tmp_path, calib_net)
    # loggers only downstream of both pipes: change every reading in the same proportion
    logs, _ = make_synthetic_logs(calib_net, groups=groups, truth={"C:a1": 0.8, "C:a2": 1.2, "C:rest": 0.9},
                                  loggers=["A3", "B2"], flow_links=["MB"], seed=2)
    p = tmp_path / "logs.csv"
    logs.to_csv(p, index=False)
    res = calibrate(calib_net, read_observations(p, calib_net), groups=groups, fit_window=(0, 32))
    par = res.parameters
    for g, partner in (("C:a1", "C:a2"), ("C:a2", "C:a1")):
        assert not par.loc[g, "finding"], g
        assert par.loc[g, "note"].startswith(f"not identifiable from these data (confounded with {partner}"), g
        assert g in res.identifiability["not_identifiable"] and g not in res.identifiability["findings"]
    assert res.identifiability["rank"] == 2
    assert "C:a1" not in [g for g in res.identifiability["findings"]]
    # the logger that separates them is the one between the two pipes (A1), and it would
    sugg = {s["quantity"]: s for s in res.identifiability["separating_sensors_table"]}
    assert sugg["pressure"]["element"] == "A1" and sugg["pressure"]["groups"] == ["C:a1", "C:a2"]
    assert max(sugg["pressure"]["after"].values()) < 5.0
    report = calibration_report(res)
    assert "a pressure logger at junction A1" in report and "Not identifiable from these data" in report


def test_sensitivity_placement_picks_the_separating_node(tmp_path, calib_net):
    from watersupply.calibration.sensors import place_loggers

    groups = _series_groups(tmp_path, calib_net)
    sites = place_loggers(calib_net, groups, n=2, hours=np.arange(0, 33.0), installed=[("A3", "pressure")])
    assert "A1" in sites and len(set(sites)) == 2
    # deterministic, and the synthetic logs use it when asked
    assert place_loggers(calib_net, groups, n=2, hours=np.arange(0, 33.0), installed=[("A3", "pressure")]) == sites
    logs, _ = make_synthetic_logs(calib_net, groups=groups, truth={}, n_loggers=2, placement="sensitivity",
                                  design_hours=(0, 32), flow_links=["MB"], seed=1)
    assert set(logs.loc[logs.quantity == "pressure", "element"]) <= set(calib_net["nodes"]["id"])
    with pytest.raises(ConfigError, match="unknown logger placement 'random'"):
        make_synthetic_logs(calib_net, groups=groups, truth={}, placement="random")
