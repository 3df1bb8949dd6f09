"""The equivalence contract: INP -> network (GeoPackage) -> INP gives EPANET the same answers.

Every INP here is solved by the EPANET 2.2 toolkit as given and after the round trip
through the project's layers and a GeoPackage file, compared at every reporting
time (heads within 1 mm, flows within 0.001 L/s or 1e-6 relative); and
GeoPackage -> INP -> GeoPackage gives equal layers.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import wntr

from watersupply import NetworkDataError
from watersupply.conversion import convert_file
from watersupply.convert import compare_networks, equivalence, read_inp
from watersupply.equivalence import check_inp, solve_inp
from watersupply.io import read_network

LIB = Path(wntr.library.__path__[0]) / "networks"

BASE = """\
[TITLE]
feature test {name}

[JUNCTIONS]
;ID Elev Demand Pattern
 J1  10  2.0  PD
 J2  12  1.5  PD
 J3  8   1.0
 J4  9   0.8  PD
 J5  6   0.5
 J6  6   0.5

[RESERVOIRS]
 R1  40 {head_pattern}

[TANKS]
;ID Elev InitLvl MinLvl MaxLvl Diam MinVol VolCurve Overflow
 T1  45  3  0.5  6  12  0 {tank_rest}

[PIPES]
;ID N1 N2 Length Diam Rough Minor Status
 P1  J1  J2  400  200  {r}  0  Open
 P2  J2  J3  300  150  {r}  {minor}  Open
 P3  J3  J4  250  100  {r}  0  {p3status}
 P4  J2  T1  500  200  {r}  0  Open
 P5  J4  J1  350  100  {r}  0  Open
 P6  J5  J6  100  100  {r}  0  Open

[PUMPS]
 PU1 R1 J1 {pump}

[VALVES]
 V1 J3 J5 100 {valve}

[CURVES]
;pump head curve (L/s, m)
 C1  0    50
 C1  10   40
 C1  20   20
{curves}

[PATTERNS]
 PD 1.0 1.3 0.7 1.1 0.9 1.2
{patterns}

{sections}

[OPTIONS]
 Units LPS
 Headloss {headloss}
{options}

[TIMES]
 Duration {duration}
 Hydraulic Timestep 1:00
 Pattern Timestep 1:00
{times}

[COORDINATES]
 J1 100 0
 J2 300 0
 J3 500 0
 J4 400 -150
 J5 600 0
 J6 700 0
 R1 0 0
 T1 300 200

[END]
"""

DEFAULTS = dict(head_pattern="", tank_rest="", r="120", minor="0", p3status="Open", pump="HEAD C1",
                valve="PRV 20 0", curves="", patterns="", sections="", headloss="H-W", options="",
                duration="12:00", times="")

#: One small INP per EPANET 2.2 feature: name -> (overrides of DEFAULTS, check on the converted network).
FEATURES: dict[str, tuple[dict[str, str], object]] = {
    "rule_else_priority": (dict(sections="""[RULES]
RULE R1
IF TANK T1 LEVEL ABOVE 4
AND SYSTEM CLOCKTIME >= 2 AM
THEN PUMP PU1 STATUS IS CLOSED
ELSE PUMP PU1 STATUS IS OPEN
PRIORITY 2

RULE R2
IF TANK T1 LEVEL BELOW 1.5
OR JUNCTION J2 PRESSURE BELOW 15
THEN PUMP PU1 STATUS IS OPEN
AND PIPE P3 STATUS IS CLOSED
PRIORITY 5
"""), lambda n: {"ELSE", "PRIORITY", "OR"} <= {t.split()[0].upper() for t in n["rules"]["text"]}),
    "power_pump": (dict(pump="POWER 4"), lambda n: n["pumps"]["power_kw"].iloc[0] == 4),
    "gpv_curve": (dict(valve="GPV GC 0", curves=" GC 0 0\n GC 5 2\n GC 15 9"),
                  lambda n: n["control_valves"]["curve"].iloc[0] == "GC"),
    "darcy_weisbach": (dict(headloss="D-W", r="0.25"), lambda n: (n["pipes"]["roughness_c"] == 0.25).all()),
    "chezy_manning": (dict(headloss="C-M", r="0.012"), lambda n: (n["pipes"]["roughness_c"] == 0.012).all()),
    "tank_volume_curve": (dict(tank_rest="VC", curves=" VC 0 0\n VC 2 150\n VC 4 400\n VC 6 800"),
                          lambda n: n["facilities"].set_index("id").loc["T1", "vol_curve"] == "VC"),
    "two_demand_categories": (dict(sections="[DEMANDS]\n J3 1.0 PD ;domestic\n J3 2.5 PI ;industry\n J5 0.7 PI",
                                   patterns=" PI 0.5 1.5 2.0 0.2"),
                              lambda n: len(n["demands"]) == 1 and n["demands"]["category"].iloc[0] == "industry" and
                              n["nodes"].set_index("id").loc["J3", "demand_name"] == "domestic"),
    "clocktime_control": (dict(sections="[CONTROLS]\n LINK PU1 CLOSED AT CLOCKTIME 3 AM\n"
                                        " LINK PU1 OPEN AT CLOCKTIME 7:30 AM\n LINK P3 CLOSED AT TIME 5\n"
                                        " LINK V1 25 IF NODE T1 ABOVE 3.5",
                               times=" Start ClockTime 1 AM"),
                          lambda n: len(n["controls"]) == 4),
    "pump_speed_pattern": (dict(pump="HEAD C1 SPEED 0.9 PATTERN SP", patterns=" SP 1.0 0.8 1.1 0.6"),
                           lambda n: n["pumps"]["speed_pattern"].iloc[0] == "SP" and n["pumps"]["speed"].iloc[0] == 0.9),
    "valve_types_and_status": (dict(valve="TCV 5 0", sections="""[VALVES]
 V2 J5 J6 80 FCV 1.5 0
[STATUS]
 PU1 0.95
 V1 OPEN
"""), lambda n: set(n["control_valves"]["type"]) == {"TCV", "FCV"} and
                                      n["pumps"]["initial_setting"].iloc[0] == 0.95),
    "psv_pbv": (dict(valve="PSV 25 0", sections="[VALVES]\n V2 J5 J6 80 PBV 3 0.2"),
                lambda n: set(n["control_valves"]["type"]) == {"PSV", "PBV"}),
    "cv_pipe_minor_loss_closed_pipe": (dict(minor="2.5", p3status="CV", sections="[STATUS]\n P5 CLOSED"),
                                       lambda n: n["pipes"].set_index("id").loc["P3", "status"] == "CV" and
                                       n["pipes"].set_index("id").loc["P5", "status"] == "CLOSED"),
    "emitters": (dict(sections="[EMITTERS]\n J4 0.5\n J6 0.2", options=" Emitter Exponent 0.6"),
                 lambda n: n["nodes"]["emitter_coeff"].notna().sum() == 2),
    "reservoir_head_pattern": (dict(head_pattern="RH", patterns=" RH 1.0 1.05 0.95"),
                               lambda n: n["nodes"].set_index("id").loc["R1", "head_pattern"] == "RH"),
    "tank_overflow_mixing_quality": (dict(tank_rest="* YES", sections="""[MIXING]
 T1 2COMP 0.3
[QUALITY]
 R1 1.2
 T1 0.4
[SOURCES]
 J2 SETPOINT 0.8 PD
[REACTIONS]
 Order Bulk 1
 Global Bulk -0.6
 Global Wall -0.1
 Bulk P1 -0.9
 Wall P2 -0.3
 Tank T1 -0.2
""", options=" Quality Chlorine mg/L"),
        lambda n: len(n["sources"]) == 1 and n["facilities"].set_index("id").loc["T1", "mixing_model"] == "2COMP"),
    "energy": (dict(curves=" EF 5 50\n EF 15 75\n EF 25 60", patterns=" EP 1 1.5 0.5", sections="""[ENERGY]
 Global Efficiency 70
 Global Price 0.3
 Demand Charge 2
 Pump PU1 Efficiency EF
 Pump PU1 Price 0.4
 Pump PU1 Pattern EP
"""), lambda n: n["pumps"]["efficiency_curve"].iloc[0] == "EF" and n["pumps"]["price_pattern"].iloc[0] == "EP"),
    "time_options": (dict(times=" Pattern Start 2:00\n Report Start 3:00\n Report Timestep 2:00\n Rule Timestep 0:10",
                          sections="[RULES]\nRULE R9\nIF TANK T1 LEVEL ABOVE 3.2\nTHEN PIPE P3 STATUS IS CLOSED"),
                     lambda n: n["options"].set_index("key").loc["time.report_start", "value"] == "10800.0"),
    "pdd_options": (dict(options=" Demand Model PDA\n Minimum Pressure 2\n Required Pressure 18\n"
                                 " Pressure Exponent 0.6\n Demand Multiplier 1.3\n Trials 60\n Accuracy 0.0005"),
                    lambda n: n["options"].set_index("key").loc["hydraulic.demand_model", "value"] == '"PDA"'),
    "single_period": (dict(duration="0"), lambda n: True),
}


def feature_inp(tmp_path: Path, name: str) -> Path:
    over, _ = FEATURES[name]
    path = tmp_path / f"{name}.inp"
    path.write_text(BASE.format(name=name, **{**DEFAULTS, **over}), encoding="utf-8")
    return path


def quiet_read(path: Path, **kw) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_inp(path, **kw)


def round_trip(src: Path, tmp_path: Path) -> tuple[pd.DataFrame, list[str]]:
    """INP -> GeoPackage -> INP solved by EPANET against the original; and GPKG -> INP -> GPKG."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gpkg = convert_file(src, tmp_path / f"{src.stem}.gpkg", crs="EPSG:4545")
        back = convert_file(gpkg, tmp_path / f"{src.stem}_back.inp")
        again = convert_file(back, tmp_path / f"{src.stem}_again.gpkg", crs="EPSG:4545")
    return equivalence(src, back), compare_networks(read_network(gpkg), read_network(again))


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_feature_round_trip_solves_identically(name: str, tmp_path: Path) -> None:
    src = feature_inp(tmp_path, name)
    assert check_inp(src) == []  # EPANET 2.2 accepts the hand-made file
    net = quiet_read(src, crs="EPSG:4545")
    assert FEATURES[name][1](net), f"{name}: the feature is not in the converted network"
    diff, layers = round_trip(src, tmp_path)
    assert diff["ok"].all(), diff[~diff["ok"]].head()
    assert layers == []


def test_features_change_the_answer() -> None:
    """Each feature file differs from the base, so a dropped feature would be noticed."""
    base = BASE.format(name="x", **DEFAULTS)
    for name, (over, _) in FEATURES.items():
        assert BASE.format(name="x", **{**DEFAULTS, **over}) != base, name


@pytest.mark.parametrize("name", ["Net1", "Net2", "Net3", "ky4"])
def test_bundled_networks_round_trip_solve_identically(name: str, tmp_path: Path) -> None:
    diff, layers = round_trip(LIB / f"{name}.inp", tmp_path)
    assert len(diff) >= 1 and diff["ok"].all(), diff[~diff["ok"]].head()
    assert diff["max_head_diff_m"].max() <= 1e-3
    assert layers == []


@pytest.mark.slow
def test_net6_round_trip_solves_identically_and_fast(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        gpkg = convert_file(LIB / "Net6.inp", tmp_path / "net6.gpkg")
    t1 = time.perf_counter()
    back = convert_file(gpkg, tmp_path / "net6.inp")
    diff = equivalence(LIB / "Net6.inp", back)
    assert len(diff) == 97 and diff["ok"].all()
    assert t1 - t0 < 300  # a hang guard: 10 s on an idle machine is measured by benchmarks/convert.py


def test_equivalence_detects_a_changed_model(tmp_path: Path) -> None:
    src = feature_inp(tmp_path, "power_pump")
    changed = tmp_path / "changed.inp"
    changed.write_text(src.read_text().replace("POWER 4", "POWER 4.2"))
    diff = equivalence(src, changed)
    assert not diff["ok"].all() and diff["max_head_diff_m"].max() > 0.001
    other = tmp_path / "other.inp"
    other.write_text(src.read_text().replace(" J6 J5 J6", " J6 J5 J6"))
    renamed = tmp_path / "renamed.inp"
    renamed.write_text(src.read_text().replace("P6 ", "P66 "))
    with pytest.raises(NetworkDataError, match="different links"):
        equivalence(src, renamed)


def test_solve_inp_reports_in_si_units(tmp_path: Path) -> None:
    res = solve_inp(LIB / "Net1.inp")  # GPM and feet in the file
    wn = wntr.network.WaterNetworkModel(str(LIB / "Net1.inp"))
    sim = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "net1"))
    assert res["head"].loc[0, "10"] == pytest.approx(sim.node["head"].loc[0, "10"], abs=1e-4)
    assert res["flow"].loc[3600, "10"] == pytest.approx(sim.link["flowrate"].loc[3600, "10"] * 1000, rel=1e-5)


@pytest.mark.parametrize("text, feature", [
    ("[LEAKAGE]\n P1 0.5 1.0\n", "pipe leakage"),
    ("[VALVES]\n V9 J5 J6 80 PCV 50 0\n", "PCV"),
    ("[OPTIONS]\n Emitter Backflow No\n", "emitter backflow"),
])
def test_epanet23_features_are_refused_by_name(text: str, feature: str, tmp_path: Path) -> None:
    src = feature_inp(tmp_path, "power_pump")
    bad = tmp_path / "v23.inp"
    bad.write_text(src.read_text().replace("[COORDINATES]", text + "\n[COORDINATES]"))
    out = tmp_path / "v23.gpkg"
    with pytest.raises(NetworkDataError, match=rf"EPANET 2.3 feature.*{feature}.*at line \d+"):
        convert_file(bad, out)
    assert not out.exists()


def test_inp_epanet_rejects_gets_epanets_message_and_nothing_is_written(tmp_path: Path) -> None:
    src = feature_inp(tmp_path, "power_pump")
    bad = tmp_path / "bad.inp"
    bad.write_text(src.read_text().replace(" P4  J2  T1", " P4  J2  T9"))
    out = tmp_path / "bad.gpkg"
    with pytest.raises(NetworkDataError, match=r"Error 203: undefined node T9 in \[PIPES\] section, line \d+"):
        convert_file(bad, out)
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


# ----------------------------------------------------------------------------- WNTR's GIS layers (issue 19)


@pytest.mark.parametrize("name", ["Net1", "Net2", "Net3", "ky4"])
def test_wntr_gis_layers_round_trip_solve_identically(name: str, tmp_path: Path) -> None:
    """INP -> wntr.network.to_gis (GeoJSON files) -> network -> INP solves like the INP (issue 19: 0.01 m)."""
    src = LIB / f"{name}.inp"
    folder = tmp_path / "gis"
    folder.mkdir()
    wntr.network.to_gis(wntr.network.WaterNetworkModel(str(src)), crs="EPSG:4545").write_geojson(str(folder / name))
    back = convert_file(folder, tmp_path / f"{name}.inp", inp_options=src)
    diff = equivalence(src, back)
    assert diff["max_head_diff_m"].max() <= 0.01 and diff["max_flow_diff_ls"].max() <= 0.01
    # and out to WNTR's schema (for QGIS) and back again
    gpkg = convert_file(src, tmp_path / f"{name}_wntr.gpkg", schema="wntr")
    again = convert_file(gpkg, tmp_path / f"{name}_again.inp", inp_options=src)
    assert equivalence(src, again)["ok"].all()


def test_wntr_gis_layers_name_what_is_missing(tmp_path: Path) -> None:
    src = LIB / "Net3.inp"
    folder = tmp_path / "gis"
    folder.mkdir()
    wntr.network.to_gis(wntr.network.WaterNetworkModel(str(src)), crs="EPSG:4545").write_geojson(str(folder / "n"))
    with pytest.raises(NetworkDataError, match=r"referenced but missing.*pattern '\w+' \(referenced by layer "
                                               r"junctions.*column 'demand_pattern'.*--inp-options"):
        convert_file(folder, tmp_path / "x.inp")
    assert not (tmp_path / "x.inp").exists()
