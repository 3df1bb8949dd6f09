"""Tests of watersupply.convert: EPANET/WNTR networks into the project's layers."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wntr

from watersupply import NetworkDataError
from watersupply.convert import (PER_CAPITA_L_D, SCHEMATIC_CRS, equivalence,
                                 hazen_williams_equivalent, network_from_wntr, read_inp)
from watersupply.io import read_network, write_network
from watersupply.loader import load_network
from watersupply.model import analysis_changes, keep_as_is, to_wntr, write_inp
from watersupply.schema import validate_network

LIB = Path(wntr.library.__path__[0]) / "networks"
NET1, NET3 = LIB / "Net1.inp", LIB / "Net3.inp"

SMALL_INP = """\
[TITLE]
small test network

[JUNCTIONS]
;ID  Elev  Demand  Pattern
 J0   20    0
 J1   10    1.5     P1
 J2   12    2.0
 J3   11    0.5     P1
 J4   10    1.0
 J5    5    1.0
 J6    5    1.0

[RESERVOIRS]
 R1   60

[TANKS]
;ID Elev InitLvl MinLvl MaxLvl Diam MinVol
 T1  40  3  0.5  5  10  0

[PIPES]
 P1  R1  J0  100  300  {r}  0  Open
 P2  J1  J2  200  250  {r}  0  Open
 P3  J2  J3  150  100  {r}  0  Open
 P4  J2  T1  300  200  {r}  0  Open
 P5  J3  J4  100  100  {r}  0  CV
 P6  J5  J6   50   80  {r}  0  Open

[PUMPS]
 PU1 J0 J1 {pump}

[VALVES]
 V1 J3 J5 100 PRV 30 0
 V2 J4 J6 80 FCV 5 0

[CURVES]
 C1  120  25

[PATTERNS]
 P1 1.0 1.2 0.8

[OPTIONS]
 Units LPS
 Headloss {headloss}

[TIMES]
 Duration 6:00
 Pattern Timestep 1:00

{coords}
[END]
"""

SMALL_COORDS = """\
[COORDINATES]
 J0  50 0
 J1  150 0
 J2  350 0
 J3  500 0
 J4  600 0
 J5  500 -100
 J6  600 -100
 R1  0 0
 T1  350 300
"""


def small_inp(tmp_path: Path, *, headloss: str = "H-W", roughness: float = 130, pump: str = "HEAD C1",
              coords: str = SMALL_COORDS, name: str = "small.inp") -> Path:
    path = tmp_path / name
    path.write_text(SMALL_INP.format(r=roughness, pump=pump, headloss=headloss, coords=coords), encoding="utf-8")
    return path


def quiet_read(path: Path, **kw) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = read_inp(path, **kw)
    return net, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def run_epanet(wn: wntr.network.WaterNetworkModel, tmp_path: Path, prefix: str):
    return wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / prefix))


# ----------------------------------------------------------------------------- EPANET examples


def test_net1_converts_and_simulates_like_the_original(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="drawn schematically"):
        net = read_inp(NET1)
    validate_network(net)
    nodes = net["nodes"].set_index("id")
    assert nodes.loc["9", "kind"] == "plant" and nodes.loc["2", "kind"] == "reservoir"
    assert nodes.loc["22", "base_demand_m3d"] == pytest.approx(200 * 0.0630901964 / 1000 * 86400, rel=1e-6)
    assert nodes.loc["22", "pattern"] == "1"
    assert net["nodes"].crs == SCHEMATIC_CRS
    pump = net["pumps"].set_index("id").loc["9"]
    assert pump["design_flow_ls"] == pytest.approx(1500 * 0.0630901964, rel=1e-6)
    assert pump["design_head_m"] == pytest.approx(250 * 0.3048, rel=1e-6)
    assert pump["curve"] == "1" and pd.isna(pump["control_node"])  # its controls are in the controls table
    assert list(net["controls"]["text"]) == ["Pump 9 Open IF Tank 2 below 110",
                                             "Pump 9 Closed IF Tank 2 above 140.0"]  # Net1's own units (GPM, ft)
    tank = net["facilities"].set_index("id").loc["2"]
    assert tank["diameter_m"] == pytest.approx(50.5 * 0.3048) and tank["max_level_m"] == pytest.approx(150 * 0.3048)
    pipes = net["pipes"].set_index("id")
    assert pipes.loc["10", "length_m"] == pytest.approx(10530 * 0.3048)
    assert pipes.loc["10", "class"] == "main" and pipes.loc["111", "class"] == "main"  # 18 in and 10 in
    assert pipes.loc["10", "material"] == "unknown"
    # Net1's 2-hour pattern became 24 hourly values
    assert len(net["patterns"]) == 24 and set(net["patterns"]["hour"]) == set(range(24))
    md = dict(zip(net["metadata"]["key"], net["metadata"]["value"]))
    assert md["duration_h"] == "24" and md["name"] == "Net1" and md["source"] == str(NET1)

    back = write_inp(to_wntr(keep_as_is(net)), tmp_path / "net1.inp")
    diff = equivalence(NET1, back)
    assert len(diff) == 25 and diff["ok"].all() and diff["max_head_diff_m"].max() < 1e-6


def test_net3_keeps_curves_time_controls_and_closed_pump(tmp_path: Path) -> None:
    net, msgs = quiet_read(NET3)
    assert not any("dropped" in m or "reduced" in m or "equivalent" in m for m in msgs)
    assert any("settlements" in m and f"{PER_CAPITA_L_D:g} L/person/day" in m for m in msgs)
    pumps = net["pumps"].set_index("id")
    assert pumps.loc["10", "curve"] == "1" and pumps.loc["10", "status"] == "CLOSED"
    curve = net["curves"].query("curve == '1'")
    assert curve["kind"].tolist() == ["HEAD"] * 3
    assert curve["x"].tolist() == pytest.approx([0.0, 2000 * 0.0630901964, 4000 * 0.0630901964], rel=1e-9)
    texts = net["controls"]["text"].tolist()
    assert len(texts) == 18 and "Pump 10 Open AT TIME 1" in texts and "Pump 10 Closed AT TIME 15" in texts
    assert pumps.loc["10", "design_flow_ls"] == pytest.approx(2000 * 0.0630901964, rel=1e-6)
    assert len(net["nodes"]) == 97 and len(net["pipes"]) == 117
    res = run_epanet(to_wntr(net, duration_h=24), tmp_path, "net3")
    assert res.node["pressure"].shape[0] == 25
    assert np.isfinite(res.node["pressure"].to_numpy()).all()


def test_settlements_are_derived_with_estimated_population() -> None:
    net, _ = quiet_read(NET3)
    st, nodes = net["settlements"], net["nodes"]
    assert len(st) >= 2 and st["id"].is_unique
    demand = nodes["base_demand_m3d"] > 0
    assert nodes.loc[demand, "settlement_id"].notna().all()
    assert nodes.loc[~demand, "settlement_id"].isna().all()
    pat = net["patterns"].groupby("pattern")["multiplier"].mean()  # Net3's patterns are not normalised
    mean = nodes.loc[demand, "base_demand_m3d"] * nodes.loc[demand, "pattern"].map(pat).fillna(1.0)
    assert (nodes.loc[demand, "population"] == np.round(mean * 1000 / PER_CAPITA_L_D)).all()
    by_st = nodes.groupby("settlement_id")["population"].sum()
    assert (st.set_index("id")["population"] == by_st).all()
    for row in st.itertuples():
        members = nodes[nodes["settlement_id"] == row.id]
        assert members.within(row.geometry).all()
    assert set(st["kind"]) <= {"village", "community"}


# ----------------------------------------------------------------------------- features of small INPs


def test_control_valves_survive_conversion_gpkg_and_model(tmp_path: Path) -> None:
    net, _ = quiet_read(small_inp(tmp_path), crs="EPSG:4545")
    cv = net["control_valves"].set_index("id")
    assert cv.loc["V1", "type"] == "PRV" and cv.loc["V1", "setting"] == pytest.approx(30.0)
    assert cv.loc["V2", "type"] == "FCV" and cv.loc["V2", "setting"] == pytest.approx(5.0)  # L/s
    assert cv.loc["V2", "diameter_mm"] == pytest.approx(80.0)
    write_network(net, tmp_path / "small.gpkg")
    back = read_network(tmp_path / "small.gpkg")
    assert list(back["control_valves"]["id"]) == ["V1", "V2"]
    wn = to_wntr(back, duration_h=2)
    v1, v2 = wn.get_link("V1"), wn.get_link("V2")
    assert v1.valve_type == "PRV" and v1.initial_setting == pytest.approx(30.0)
    assert v2.valve_type == "FCV" and v2.initial_setting == pytest.approx(0.005)
    assert wn.get_link("P5").check_valve
    res = run_epanet(wn, tmp_path, "valves")
    assert res.link["flowrate"].loc[0, "V2"] == pytest.approx(0.005, abs=1e-4) or \
        res.link["flowrate"].loc[0, "V2"] < 0.005  # an FCV never passes more than its setting


def test_gpv_curve_round_trips(tmp_path: Path) -> None:
    text = small_inp(tmp_path).read_text().replace("V2 J4 J6 80 FCV 5 0", "V2 J4 J6 80 GPV C2 0")
    text = text.replace(" C1  120  25", " C1  120  25\n C2  0  0\n C2  10  5\n C2  20  15")
    path = tmp_path / "gpv.inp"
    path.write_text(text)
    net, _ = quiet_read(path, crs="EPSG:4545")
    row = net["control_valves"].set_index("id").loc["V2"]
    assert row["type"] == "GPV" and row["curve"] == "C2"
    c2 = net["curves"].query("curve == 'C2'")
    assert c2["kind"].unique().tolist() == ["HEADLOSS"] and c2["x"].tolist() == [0, 10, 20]  # L/s
    wn = to_wntr(net, duration_h=1)
    assert wn.get_link("V2").headloss_curve.points == [(0.0, 0.0), (0.01, 5.0), (0.02, 15.0)]
    run_epanet(wn, tmp_path, "gpv")


def test_closed_pump_with_level_controls_stays_closed_and_switchable(tmp_path: Path) -> None:
    path = small_inp(tmp_path)
    path.write_text(path.read_text().replace("[END]", "[STATUS]\n PU1 Closed\n\n[CONTROLS]\n"
                                             " LINK PU1 OPEN IF NODE T1 BELOW 2\n"
                                             " LINK PU1 CLOSED IF NODE T1 ABOVE 4.5\n\n[END]"))
    net, msgs = quiet_read(path, crs="EPSG:4545")
    pump = net["pumps"].iloc[0]
    assert pump["status"] == "CLOSED" and pd.isna(pump["control_node"])
    assert net["controls"]["text"].tolist() == ["Pump PU1 Open IF Tank T1 below 2.0",
                                                "Pump PU1 Closed IF Tank T1 above 4.5"]
    wn = to_wntr(net)
    assert len(wn.control_name_list) == 2 and str(wn.get_link("PU1").initial_status) == "Closed"
    assert equivalence(path, write_inp(to_wntr(keep_as_is(net)), tmp_path / "back.inp"))["ok"].all()


def test_power_pump_keeps_its_power_and_gets_a_design_point(tmp_path: Path) -> None:
    path = small_inp(tmp_path, pump="POWER 15")
    wn = wntr.network.WaterNetworkModel(str(path))
    from wntr.network.controls import Control, ControlAction, ValueCondition
    wn.add_control("c1", Control(ValueCondition(wn.get_node("T1"), "level", ">", 4.5),
                                 ControlAction(wn.get_link("PU1"), "status", 0)))
    before = (list(wn.control_name_list), wn.get_link("PU1").initial_status, wn.options.time.duration)
    with pytest.warns(UserWarning, match="design point"):
        net = network_from_wntr(wn, crs="EPSG:4545")
    assert (list(wn.control_name_list), wn.get_link("PU1").initial_status, wn.options.time.duration) == before
    pump = net["pumps"].iloc[0]
    assert pump["power_kw"] == 15 and pd.isna(pump["curve"])
    q, h = pump["design_flow_ls"] / 1000.0, pump["design_head_m"]
    assert q > 0 and h > 0
    assert 9810.0 * q * h == pytest.approx(15000.0, rel=1e-6)  # on the constant-power curve
    rebuilt = to_wntr(keep_as_is(net)).get_link("PU1")
    assert rebuilt.pump_type == "POWER" and rebuilt.power == pytest.approx(15000.0)


@pytest.mark.parametrize("headloss, roughness", [("D-W", 0.1), ("C-M", 0.011)])
def test_other_headloss_formulas_keep_their_roughness(tmp_path: Path, headloss: str, roughness: float) -> None:
    path = small_inp(tmp_path, headloss=headloss, roughness=roughness)
    net, msgs = quiet_read(path, crs="EPSG:4545")
    assert not any("Hazen-Williams" in m for m in msgs)
    assert (net["pipes"]["roughness_c"] == roughness).all()  # D-W in mm, C-M n: as in the file
    wn0 = wntr.network.WaterNetworkModel(str(path))
    wn1 = to_wntr(keep_as_is(net))
    assert wn1.options.hydraulic.headloss == headloss
    assert wn1.get_link("P1").roughness == pytest.approx(wn0.get_link("P1").roughness, rel=1e-12)
    assert equivalence(path, write_inp(wn1, tmp_path / "back.inp"))["ok"].all()


def test_hazen_williams_equivalent_matches_headloss_at_one_metre_per_second() -> None:
    d, eps = 0.2, 0.00005
    c = hazen_williams_equivalent([eps], [d], formula="D-W")[0]
    q = math.pi * d * d / 4
    re = d / 1e-6
    f = 0.25 / math.log10(eps / (3.7 * d) + 5.74 / re**0.9) ** 2
    assert 10.67 * q**1.852 / (c**1.852 * d**4.8704) == pytest.approx(f / (2 * 9.81 * d), rel=1e-9)
    with pytest.raises(ValueError, match="formula"):
        hazen_williams_equivalent([1.0], [0.1], formula="X")


def test_coordinates_with_crs_are_kept(tmp_path: Path) -> None:
    net, msgs = quiet_read(small_inp(tmp_path), crs="EPSG:4545")
    assert not any("schematic" in m for m in msgs)
    assert net["nodes"].crs.to_epsg() == 4545
    j2 = net["nodes"].set_index("id").geometry["J2"]
    assert (j2.x, j2.y) == (350.0, 0.0)
    assert net["pipes"].set_index("id").geometry["P2"].length == pytest.approx(200.0)


def test_geographic_coordinates_are_projected_to_utm(tmp_path: Path) -> None:
    coords = "[COORDINATES]\n" + "\n".join(
        f" {n} {106.7 + 0.001 * i:.4f} {29.0 + 0.0005 * i:.4f}"
        for i, n in enumerate(["R1", "J0", "J1", "J2", "J3", "J4", "J5", "J6", "T1"])) + "\n"
    with pytest.warns(UserWarning, match="projected to"):
        net = read_inp(small_inp(tmp_path, coords=coords), crs="EPSG:4326")
    crs = net["nodes"].crs
    assert crs.is_projected and "UTM zone 48N" in crs.name


def test_schematic_coordinates_are_scaled_to_metres(tmp_path: Path) -> None:
    coords = SMALL_COORDS.replace(" 0\n", " 0.0\n")
    coords = "\n".join(
        f" {p[0]} {float(p[1]) / 100:g} {float(p[2]) / 100:g}" if len(p := line.split()) == 3 else line
        for line in coords.splitlines()) + "\n"
    with pytest.warns(UserWarning, match="drawn schematically.*scaling by 100"):
        net = read_inp(small_inp(tmp_path, coords=coords))
    assert net["nodes"].crs == SCHEMATIC_CRS
    assert net["pipes"].set_index("id").geometry["P2"].length == pytest.approx(200.0)


def test_network_without_coordinates_is_laid_out(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="no coordinates"):
        net = read_inp(small_inp(tmp_path, coords=""))
    pipes = net["pipes"]
    ratio = pipes["length_m"] / pipes.length
    assert 0.5 < float(ratio.median()) < 2.0
    assert net["nodes"].geometry.is_valid.all() and not net["nodes"].geometry.duplicated().any()
    md = dict(zip(net["metadata"]["key"], net["metadata"]["value"]))
    assert md["coordinates"] == "layout"
    again, _ = quiet_read(small_inp(tmp_path, coords=""))
    assert again["nodes"].geometry.equals(net["nodes"].geometry)  # deterministic


def test_single_period_model_gets_a_24_hour_duration(tmp_path: Path) -> None:
    path = small_inp(tmp_path)
    path.write_text(path.read_text().replace("Duration 6:00", "Duration 0"))
    net, msgs = quiet_read(path, crs="EPSG:4545")
    assert dict(zip(net["metadata"]["key"], net["metadata"]["value"]))["duration_h"] == "24"
    assert net["options"].set_index("key").loc["time.duration", "value"] == "0.0"  # the model keeps its own
    assert to_wntr(net).options.time.duration == 24 * 3600  # the analyses' horizon ...
    assert any("24 h horizon for the single-period" in m for m in analysis_changes(net))  # ... said once
    assert to_wntr(keep_as_is(net)).options.time.duration == 0


def test_network_without_source_is_rejected(tmp_path: Path) -> None:
    wn = wntr.network.WaterNetworkModel()
    wn.add_junction("A", base_demand=0.001, elevation=10, coordinates=(0, 0))
    wn.add_junction("B", base_demand=0.001, elevation=10, coordinates=(100, 0))
    wn.add_pipe("P", "A", "B", length=100, diameter=0.1, roughness=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(NetworkDataError, match="no source"):
            network_from_wntr(wn, crs="EPSG:4545", name="nosource")
    with pytest.raises(TypeError, match="WaterNetworkModel"):
        network_from_wntr("not a model")  # type: ignore[arg-type]
    with pytest.raises(NetworkDataError, match="not a valid CRS"):
        network_from_wntr(wn, crs="EPSG:99999999")


# ----------------------------------------------------------------------------- errors reading INP files


def test_read_inp_reports_file_and_line(tmp_path: Path) -> None:
    path = small_inp(tmp_path)
    lines = path.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("J2"))
    lines[i] = " J2   twelve    2.0"
    path.write_text("\n".join(lines))
    with pytest.raises(NetworkDataError, match=rf"small\.inp.*Error 202: illegal numeric value twelve in "
                                               rf"\[JUNCTIONS\] section, line {i + 1}"):
        read_inp(path)


def test_read_inp_reports_unknown_node(tmp_path: Path) -> None:
    path = small_inp(tmp_path)
    path.write_text(path.read_text().replace(" P3  J2  J3", " P3  J2  J99"))
    with pytest.raises(NetworkDataError, match=r"small\.inp: EPANET 2.2 rejects.*Error 203: undefined node J99 in "
                                               r"\[PIPES\] section, line 24: 'P3 J2 J99"):
        read_inp(path)


def test_read_inp_accepts_gbk_encoded_files(tmp_path: Path) -> None:
    path = small_inp(tmp_path)
    path.write_bytes(path.read_text().replace("small test network", "小型测试管网").encode("gbk"))
    net, _ = quiet_read(path, crs="EPSG:4545")
    assert dict(zip(net["metadata"]["key"], net["metadata"]["value"]))["title"] == "小型测试管网"


def test_read_inp_rejects_missing_and_non_inp_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkDataError, match=r"nothere\.inp: file not found"):
        read_inp(tmp_path / "nothere.inp")
    junk = tmp_path / "junk.inp"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 not an inp")
    with pytest.raises(NetworkDataError, match=r"junk\.inp: not a text file"):
        read_inp(junk)
    section = tmp_path / "section.inp"
    section.write_text("[JUNCTIONS]\n J1 10 0\n[NOSUCHSECTION]\n x\n")
    with pytest.raises(NetworkDataError, match=r"section\.inp: EPANET 2.2 rejects.*Error 224: no tanks or reservoirs"):
        read_inp(section)


# ----------------------------------------------------------------------------- round trips


def _compare(net: dict, back: dict) -> None:
    a, b = net["nodes"].set_index("id"), back["nodes"].set_index("id")
    assert sorted(a.index) == sorted(b.index)
    b = b.loc[a.index]
    junction = a["kind"].isin(["junction", "pump_station"])
    assert np.allclose(a.loc[junction, "elevation_m"], b.loc[junction, "elevation_m"])
    assert np.allclose(a.loc[junction, "base_demand_m3d"], b.loc[junction, "base_demand_m3d"], rtol=1e-6, atol=1e-6)
    assert (a.loc[junction, "pattern"].fillna("") == b.loc[junction, "pattern"].fillna("")).all()
    assert (a["kind"] == "plant").eq(b["kind"] == "plant").all()
    plant = a["kind"] == "plant"
    assert np.allclose(a.loc[plant, "head_m"], b.loc[plant, "head_m"])
    pa, pb = net["pipes"].set_index("id"), back["pipes"].set_index("id")
    assert sorted(pa.index) == sorted(pb.index)
    pb = pb.loc[pa.index]
    for col in ("length_m", "diameter_mm", "roughness_c"):
        assert np.allclose(pa[col], pb[col], rtol=1e-9, atol=1e-6), col
    assert (pa["from_node"] == pb["from_node"]).all() and (pa["to_node"] == pb["to_node"]).all()
    fa = net["facilities"].query("kind == 'reservoir'").set_index("node_id")
    fb = back["facilities"].query("kind == 'reservoir'").set_index("node_id").loc[fa.index]
    for col in ("bottom_elev_m", "diameter_m", "min_level_m", "max_level_m", "init_level_m"):
        assert np.allclose(fa[col], fb[col]), col
    ua, ub = net["pumps"].set_index("id"), back["pumps"].set_index("id").loc[net["pumps"]["id"]]
    for col in ("design_flow_ls", "design_head_m"):
        assert np.allclose(ua[col], ub[col]), col
    assert (ua["status"] == ub["status"]).all()
    on = ua["status"] == "OPEN"
    controlled = ua.loc[on & ua["control_node"].notna()].index
    texts = " ".join(back["controls"]["text"]) if "controls" in back else ""
    for pid in controlled:  # the level controls come back as EPANET controls
        assert f"Pump {pid} Open IF Tank {ua.loc[pid, 'control_node']} below" in texts


def test_small_network_round_trip(tiny_net: dict, tmp_path: Path) -> None:
    inp = write_inp(to_wntr(tiny_net), tmp_path / "tiny.inp")
    back, _ = quiet_read(inp, crs="EPSG:4545")
    _compare(tiny_net, back)
    assert back["nodes"].set_index("id").geometry["J2"].equals(tiny_net["nodes"].set_index("id").geometry["J2"])
    write_network(back, tmp_path / "tiny.gpkg")
    again = read_network(tmp_path / "tiny.gpkg")
    _compare(tiny_net, again)
    res = run_epanet(wntr.network.WaterNetworkModel(str(inp)), tmp_path, "tiny")
    assert res.node["pressure"].loc[0, "J2"] > 0


@pytest.mark.slow
def test_tonghui_round_trip_gpkg_inp_gpkg(tonghui_net: dict, tmp_path: Path) -> None:
    inp = write_inp(to_wntr(tonghui_net), tmp_path / "tonghui.inp")
    back, _ = quiet_read(inp, crs="EPSG:4545")
    _compare(tonghui_net, back)
    write_network(back, tmp_path / "back.gpkg")
    _compare(tonghui_net, read_network(tmp_path / "back.gpkg"))
    wn = wntr.network.WaterNetworkModel(str(inp))
    wn.options.time.duration = 3600
    wn.options.quality.parameter = "NONE"
    res = run_epanet(wn, tmp_path, "tonghui")
    assert res.node["pressure"].shape == (2, len(tonghui_net["nodes"]))


# ----------------------------------------------------------------------------- load_network


def test_load_network_sources(tmp_path: Path) -> None:
    default = load_network()
    assert default["nodes"].crs.to_epsg() == 4545 and len(default["pipes"]) > 1000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_inp = load_network(inp=small_inp(tmp_path), crs="EPSG:4545")
    assert "control_valves" in from_inp
    gpkg = write_network(from_inp, tmp_path / "small.gpkg")
    assert len(load_network(network=gpkg, crs="EPSG:4545")["nodes"]) == 9
    with pytest.raises(NetworkDataError, match="--crs only applies to INP"):
        load_network(network=gpkg, crs="EPSG:32648")
    with pytest.raises(NetworkDataError, match="not both"):
        load_network(network=gpkg, inp=tmp_path / "small.inp")
    with pytest.raises(NetworkDataError, match="file not found"):
        load_network(inp=tmp_path / "missing.inp")
