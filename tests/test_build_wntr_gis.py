"""`watersupply build` on WNTR's GIS layers (wntr.network.to_gis) and on a QGIS plug-in's layer set (Gusnet).

The round trip INP -> to_gis -> watersupply build -> INP is solved by EPANET on both
ends and compared at every reporting time (0.01 m head, 0.01 L/s flow).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import wntr
from click.testing import CliRunner

from watersupply._errors import NetworkDataError
from watersupply.cli.main import cli
from watersupply.equivalence import equivalence
from watersupply.gis_schema import (
    build_from_layers,
    convert_to_layers,
    load_layer_mapping,
    read_layers,
    wn_from_layers,
)

LIB = Path(wntr.library.__path__[0]) / "networks"
HEAD_M, FLOW_LS = 0.01, 0.01


def _to_geojson(name: str, folder: Path) -> Path:
    wn = wntr.network.WaterNetworkModel(str(LIB / f"{name}.inp"))
    folder.mkdir(parents=True, exist_ok=True)
    with _quiet():
        wntr.network.to_gis(wn).write_geojson(str(folder / name))
    return folder


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *a):
        self._w.__exit__(*a)


def _build(args: list[str]) -> None:
    res = CliRunner().invoke(cli, ["build", *args])
    assert res.exit_code == 0, res.output


def _assert_same(original: Path, built: Path) -> None:
    d = equivalence(original, built)
    assert len(d) > 0
    assert d["max_head_diff_m"].max() <= HEAD_M, d.sort_values("max_head_diff_m").tail(3)
    assert d["max_flow_diff_ls"].max() <= FLOW_LS, d.sort_values("max_flow_diff_ls").tail(3)


@pytest.mark.parametrize("name", ["Net1", "Net2", "Net3", "ky4",
                                  pytest.param("Net6", marks=pytest.mark.slow)])
def test_round_trip_to_gis_build_solves_like_the_original(name, tmp_path):
    layers = _to_geojson(name, tmp_path / "layers")
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(layers), "--inp-options", str(LIB / f"{name}.inp"), "-o", str(out)])
    _assert_same(LIB / f"{name}.inp", out.with_suffix(".inp"))


def test_layers_one_by_one_and_a_wntr_json_companion(tmp_path):
    layers = _to_geojson("Net3", tmp_path / "layers")
    wn = wntr.network.WaterNetworkModel(str(LIB / "Net3.inp"))
    wntr.network.write_json(wn, str(tmp_path / "net3.json"))
    out = tmp_path / "out" / "net.gpkg"
    f = {k: str(layers / f"Net3_{k}.geojson") for k in ("junctions", "tanks", "reservoirs", "pipes", "pumps")}
    _build(["--pipes", f["pipes"], "--nodes", f["junctions"], "--tanks", f["tanks"], "--reservoirs",
            f["reservoirs"], "--pumps", f["pumps"], "--inp-options", str(tmp_path / "net3.json"), "-o", str(out)])
    _assert_same(LIB / "Net3.inp", out.with_suffix(".inp"))


def test_links_without_node_names_are_snapped(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    for k in ("pipes", "pumps"):
        p = layers / f"Net1_{k}.geojson"
        gpd.read_file(p).drop(columns=["start_node_name", "end_node_name"]).to_file(p)
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(layers), "--inp-options", str(LIB / "Net1.inp"), "-o", str(out)])
    _assert_same(LIB / "Net1.inp", out.with_suffix(".inp"))


def test_layer_values_win_over_the_companion(tmp_path):
    """A diameter changed in GIS must change the model (the companion only fills gaps)."""
    layers = _to_geojson("Net1", tmp_path / "layers")
    p = layers / "Net1_pipes.geojson"
    df = gpd.read_file(p)
    df.loc[df["name"] == "10", "diameter"] = 0.1
    df.to_file(p)
    wn, _ = wn_from_layers(read_layers(layers), companion=wntr.network.WaterNetworkModel(str(LIB / "Net1.inp")))
    assert wn.get_link("10").diameter == pytest.approx(0.1)


def test_layers_out_with_companion_and_back(tmp_path):
    """convert_to_layers (the library side of `convert --schema wntr`) writes WNTR's layers and the companion INP;
    building them back solves like the original."""
    files = convert_to_layers(LIB / "Net2.inp", tmp_path / "gis" / "net2.gpkg")
    import pyogrio

    assert sorted(pyogrio.list_layers(files["layers"])[:, 0]) == ["junctions", "pipes", "tanks"]
    cols = set(gpd.read_file(files["layers"], layer="pipes").columns)
    assert {"name", "start_node_name", "end_node_name", "diameter", "roughness"} <= cols
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(files["layers"]), "--inp-options", str(files["inp"]), "-o", str(out)])
    _assert_same(LIB / "Net2.inp", out.with_suffix(".inp"))


# ----------------------------------------------------------------------------- Gusnet


def _gusnet_layers(folder: Path) -> Path:
    """Net1 as Gusnet writes it: LPS units (L/s, mm, kW), no node names on links, patterns and curves inline."""
    wn = wntr.network.WaterNetworkModel(str(LIB / "Net1.inp"))
    g = wntr.network.to_gis(wn)
    folder.mkdir(parents=True, exist_ok=True)
    pat = {n: " ".join(repr(float(v)) for v in wn.get_pattern(n).multipliers) for n in wn.pattern_name_list}
    j = g.junctions.reset_index()
    j["base_demand"] = j["base_demand"] * 1000.0
    j["demand_pattern"] = j["demand_pattern"].map(lambda n: pat.get(n) if n else None)
    t = g.tanks.reset_index().rename(columns={"diameter": "tank_diameter", "vol_curve_name": "vol_curve"})
    r = g.reservoirs.reset_index().rename(columns={"head_pattern_name": "head_pattern"})
    p = g.pipes.reset_index().drop(columns=["start_node_name", "end_node_name"])
    p["diameter"] = p["diameter"] * 1000.0
    pu = g.pumps.reset_index().drop(columns=["start_node_name", "end_node_name"])
    curve = wn.get_curve(wn.get_link("9").pump_curve_name)
    pu["pump_curve"] = "[" + ", ".join(f"({x * 1000.0!r}, {y!r})" for x, y in curve.points) + "]"
    pu = pu.drop(columns=["pump_curve_name"])
    for df, name in ((j, "JUNCTIONS"), (t, "TANKS"), (r, "RESERVOIRS"), (p, "PIPES"), (pu, "PUMPS")):
        with _quiet():
            gpd.GeoDataFrame(df, geometry="geometry").to_file(folder / "net1.gpkg", layer=name, driver="GPKG")
    return folder / "net1.gpkg"


def test_gusnet_layer_set_through_the_shipped_mapping(tmp_path):
    gpkg = _gusnet_layers(tmp_path / "gusnet")
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(gpkg), "--layer-mapping", "gusnet", "--inp-options", str(LIB / "Net1.inp"),
            "-o", str(out)])
    _assert_same(LIB / "Net1.inp", out.with_suffix(".inp"))


def test_shipped_mapping_loads_and_bad_mapping_is_named():
    m = load_layer_mapping("gusnet")
    assert m["units"] == "LPS" and m["columns"]["tanks"]["diameter"] == "tank_diameter"
    from watersupply._errors import ConfigError

    with pytest.raises(ConfigError, match="unknown layer"):
        load_layer_mapping({"columns": {"hydrants": {"name": "ID"}}})
    with pytest.raises(ConfigError, match="units 'furlongs' unknown; use SI or EPANET's flow units AFD, CFS, CMD"):
        load_layer_mapping({"units": "furlongs"})


# ----------------------------------------------------------------------------- errors


def test_referenced_pattern_missing_names_layer_feature_column(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    with pytest.raises(NetworkDataError, match=r"pattern '1' \(referenced by layer junctions "
                                               r"\(Net1_junctions.geojson\), column 'demand_pattern', feature\(s\) "
                                               r"'10'.*--inp-options"):
        build_from_layers(layers)
    res = CliRunner().invoke(cli, ["build", "--layers", str(layers), "-o", str(tmp_path / "o" / "n.gpkg")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "curve '1'" in res.output and not (tmp_path / "o" / "n.gpkg").exists()


def test_unknown_node_name_names_layer_feature_column(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    p = layers / "Net1_pipes.geojson"
    df = gpd.read_file(p)
    df.loc[df["name"] == "10", "end_node_name"] = "nowhere"
    df.to_file(p)
    with pytest.raises(NetworkDataError, match=r"layer pipes \(Net1_pipes.geojson\): feature '10', column "
                                               r"'end_node_name': node 'nowhere' is in none"):
        build_from_layers(layers, inp_options=LIB / "Net1.inp")


def test_missing_value_and_far_line_end_are_named(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    read = read_layers(layers)
    read["junctions"].loc[read["junctions"]["name"] == "12", "elevation"] = None
    with pytest.raises(NetworkDataError, match=r"layer junctions .*feature '12' has no 'elevation'; fill the column"):
        wn_from_layers(read)
    read = read_layers(layers)
    pipes = read["pipes"]
    pipes.loc[pipes["name"] == "10", "start_node_name"] = None
    from shapely.affinity import translate

    i = pipes.index[pipes["name"] == "10"][0]
    pipes.loc[i, "geometry"] = translate(pipes.loc[i, "geometry"], 500.0, 500.0)
    with pytest.raises(NetworkDataError, match=r"feature '10' has no 'start_node_name' and its start is .* from the "
                                               r"nearest node .*raise --tolerance-m"):
        wn_from_layers(read, companion=wntr.network.WaterNetworkModel(str(LIB / "Net1.inp")))


def test_control_on_element_missing_from_layers_is_named(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    read = read_layers(layers)
    del read["pumps"]
    with pytest.raises(NetworkDataError, match=r"a control or rule names '9', which no layer has"):
        wn_from_layers(read, companion=wntr.network.WaterNetworkModel(str(LIB / "Net1.inp")),
                       companion_label="Net1.inp")


def test_our_options_are_refused_with_wntr_layers(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    res = CliRunner().invoke(cli, ["build", "--layers", str(layers), "--fix", "-o", str(tmp_path / "n.gpkg")])
    assert res.exit_code != 0 and "--fix apply to our own layer schema" in res.output


def test_wntr_shapefiles_with_truncated_column_names(tmp_path):
    wn = wntr.network.WaterNetworkModel(str(LIB / "Net1.inp"))
    with _quiet():
        wntr.network.to_gis(wn).write_shapefile(str(tmp_path / "shp" / "net1"))
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(tmp_path / "shp"), "--inp-options", str(LIB / "Net1.inp"), "-o", str(out)])
    _assert_same(LIB / "Net1.inp", out.with_suffix(".inp"))


def test_pipes_and_junctions_alone_ask_for_the_tank_layer(tmp_path):
    """The issue's first attempt: WNTR pipes and junctions only; the tank is named and --tanks suggested."""
    layers = _to_geojson("Net1", tmp_path / "layers")
    res = CliRunner().invoke(cli, ["build", "--pipes", str(layers / "Net1_pipes.geojson"), "--nodes",
                                   str(layers / "Net1_junctions.geojson"), "-o", str(tmp_path / "o" / "n.gpkg")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "column 'start_node_name': node '2' is in none of the junctions" in res.output or \
        "column 'end_node_name': node '2' is in none" in res.output or "node '9' is in none" in res.output
    assert "--tanks" in res.output


@pytest.fixture
def valves_inp(tmp_path) -> Path:
    """A small model with every valve type, a power pump, a check valve, two demands on one junction,
    a head pattern on the reservoir, a control and a rule: what Net1..ky4 do not all have."""
    wn = wntr.network.WaterNetworkModel()
    wn.options.time.duration = 6 * 3600
    wn.options.time.hydraulic_timestep = 3600
    wn.options.time.report_timestep = 3600
    wn.add_pattern("day", [1.0, 1.4, 0.6])
    wn.add_pattern("lvl", [1.0, 0.98, 1.02])
    wn.add_curve("gpv", "HEADLOSS", [(0.0, 0.0), (0.05, 5.0), (0.2, 20.0)])
    wn.add_reservoir("R", base_head=80.0, head_pattern="lvl", coordinates=(0, 0))
    for i, (x, z) in enumerate([(100, 20), (200, 18), (300, 15), (400, 12), (500, 10), (600, 8), (700, 5)], 1):
        wn.add_junction(f"J{i}", base_demand=0.002 * i, demand_pattern="day", elevation=z, coordinates=(x, 0))
    wn.get_node("J7").demand_timeseries_list.append((0.003, wn.get_pattern("day"), "industry"))
    wn.add_tank("T", elevation=40.0, init_level=3.0, min_level=0.5, max_level=6.0, diameter=12.0,
                coordinates=(400, 200))
    wn.add_pipe("P1", "R", "J1", length=500, diameter=0.3, roughness=120)
    wn.add_valve("PRV1", "J1", "J2", diameter=0.25, valve_type="PRV", initial_setting=35.0)
    wn.add_pipe("P2", "J2", "J3", length=400, diameter=0.25, roughness=110, check_valve=True)
    wn.add_valve("FCV1", "J3", "J4", diameter=0.2, valve_type="FCV", initial_setting=0.04)
    wn.add_valve("TCV1", "J4", "J5", diameter=0.2, valve_type="TCV", initial_setting=2.5)
    wn.add_valve("GPV1", "J5", "J6", diameter=0.2, valve_type="GPV", initial_setting="gpv")
    wn.add_pipe("P3", "J6", "J7", length=300, diameter=0.2, roughness=100, minor_loss=2.0)
    wn.add_pump("PU", "J4", "T", pump_type="POWER", pump_parameter=8000.0)
    wn.add_pipe("P4", "T", "J6", length=350, diameter=0.2, roughness=100)
    wn.add_valve("PSV1", "J6", "J3", diameter=0.1, valve_type="PSV", initial_setting=10.0)
    wn.add_valve("PBV1", "J7", "J5", diameter=0.1, valve_type="PBV", initial_setting=1.0)
    path = tmp_path / "valves.inp"
    text_controls = "LINK PU CLOSED IF NODE T ABOVE 45.5\nLINK PU OPEN IF NODE T BELOW 41.5\n"
    wntr.network.write_inpfile(wn, str(path), units="LPS")
    src = path.read_text()
    src = src.replace("[CONTROLS]\n", "[CONTROLS]\n" + text_controls, 1)
    src = src.replace("[RULES]\n", "[RULES]\nRULE 1\nIF SYSTEM CLOCKTIME >= 03:00\nTHEN VALVE TCV1 SETTING IS 5\n", 1)
    path.write_text(src)
    assert not __import__("watersupply.equivalence", fromlist=["check_inp"]).check_inp(path)
    return path


def test_valves_power_pump_demands_controls_round_trip(valves_inp, tmp_path):
    wn = wntr.network.WaterNetworkModel(str(valves_inp))
    assert len(wn.get_node("J7").demand_timeseries_list) == 2 and wn.num_valves == 6
    (tmp_path / "gis").mkdir()
    with _quiet():
        wntr.network.to_gis(wn).write_geojson(str(tmp_path / "gis" / "v"))
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(tmp_path / "gis"), "--inp-options", str(valves_inp), "-o", str(out)])
    _assert_same(valves_inp, out.with_suffix(".inp"))
    back = wntr.network.WaterNetworkModel(str(out.with_suffix(".inp")))
    assert len(back.get_node("J7").demand_timeseries_list) == 2  # the second demand from the companion
    assert back.get_link("P2").check_valve and back.get_link("PU").pump_type == "POWER"


def test_gusnet_valve_settings_in_their_own_columns(valves_inp, tmp_path):
    """Gusnet keeps PRV/PSV/PBV settings in pressure_setting, FCV in flow_setting (L/s), GPV in headloss_curve."""
    wn = wntr.network.WaterNetworkModel(str(valves_inp))
    g = wntr.network.to_gis(wn)
    v = g.valves.reset_index().drop(columns=["start_node_name", "end_node_name"])
    v["diameter"] = v["diameter"] * 1000.0
    typ = v["valve_type"]
    v["pressure_setting"] = v["initial_setting"].where(typ.isin(["PRV", "PSV", "PBV"]))
    v["flow_setting"] = v["initial_setting"].where(typ == "FCV").astype(float) * 1000.0
    v["throttle_setting"] = v["initial_setting"].where(typ == "TCV")
    curve = wn.get_curve("gpv").points
    v["headloss_curve"] = ["[" + ", ".join(f"({x * 1000.0!r}, {y!r})" for x, y in curve) + "]" if t == "GPV"
                           else None for t in typ]
    v = v.drop(columns=["initial_setting"]).rename(columns={"initial_status": "valve_status"})
    folder = tmp_path / "gus"
    folder.mkdir()
    j = g.junctions.reset_index()
    j["base_demand"] = j["base_demand"] * 1000.0
    p = g.pipes.reset_index()
    p["diameter"] = p["diameter"] * 1000.0
    pu = g.pumps.reset_index().rename(columns={"speed_pattern_name": "speed_pattern"})
    pu["power"] = pu["power"] / 1000.0  # kW
    t = g.tanks.reset_index().rename(columns={"diameter": "tank_diameter"})
    r = g.reservoirs.reset_index().rename(columns={"head_pattern_name": "head_pattern"})
    r["head_pattern"] = " ".join(repr(float(m)) for m in wn.get_pattern("lvl").multipliers)  # inline, as Gusnet
    with _quiet():
        for df, name in ((j, "JUNCTIONS"), (t, "TANKS"), (r, "RESERVOIRS"), (p, "PIPES"),
                         (pu, "PUMPS"), (v, "VALVES")):
            gpd.GeoDataFrame(df, geometry="geometry").to_file(folder / "g.gpkg", layer=name, driver="GPKG")
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(folder / "g.gpkg"), "--layer-mapping", "gusnet", "--inp-options", str(valves_inp),
            "-o", str(out)])
    _assert_same(valves_inp, out.with_suffix(".inp"))


def test_bad_values_name_layer_feature_column(tmp_path):
    layers = _to_geojson("Net1", tmp_path / "layers")
    read = read_layers(layers)
    read["pipes"]["roughness"] = read["pipes"]["roughness"].astype(object)
    read["pipes"].loc[read["pipes"]["name"] == "11", "roughness"] = "rough"
    with pytest.raises(NetworkDataError, match=r"layer pipes .*feature '11', column 'roughness': 'rough' is not a "
                                               r"number"):
        wn_from_layers(read)
    read = read_layers(layers)
    read["pipes"].loc[read["pipes"]["name"] == "12", "diameter"] = 0.0
    with pytest.raises(NetworkDataError, match=r"feature '12', column 'diameter': must be above 0"):
        wn_from_layers(read)
