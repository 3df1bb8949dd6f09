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


def test_convert_schema_wntr_goes_out_and_back(tmp_path):
    res = CliRunner().invoke(cli, ["convert", "--schema", "wntr", str(LIB / "Net2.inp"), "-o",
                                   str(tmp_path / "gis" / "net2.gpkg")])
    assert res.exit_code == 0, res.output
    import pyogrio

    assert sorted(pyogrio.list_layers(tmp_path / "gis" / "net2.gpkg")[:, 0]) == ["junctions", "pipes", "tanks"]
    cols = set(gpd.read_file(tmp_path / "gis" / "net2.gpkg", layer="pipes").columns)
    assert {"name", "start_node_name", "end_node_name", "diameter", "roughness"} <= cols
    out = tmp_path / "out" / "net.gpkg"
    _build(["--layers", str(tmp_path / "gis" / "net2.gpkg"), "--inp-options", str(tmp_path / "gis" / "net2.inp"),
            "-o", str(out)])
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
