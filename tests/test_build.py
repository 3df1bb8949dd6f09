"""Tests of watersupply.build and ``watersupply build``: GIS layers written by the tests, clean and broken."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import wntr
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import LineString, Point, box

from watersupply import ConfigError, NetworkDataError
from watersupply.build import build_network, load_mapping, write_built
from watersupply.cli.main import cli
from watersupply.io import read_network

CRS = "EPSG:4545"
X0, Y0 = 380_000.0, 3_210_000.0

#: The user's pipes: their own column names (GXBH id, DN mm, CZ material).
PIPES = {
    "A1": [(0, 0), (100, 0)],
    "A2": [(100, 0), (200, 0)],
    "A3": [(200, 0), (200, 100)],
    "A4": [(200, 100), (100, 100)],
    "A5": [(100, 100), (100, 0)],
    "A6": [(200, 0), (250, 5), (300, 0)],
    "A7": [(300, 0), (300, 100)],
}
DN = {"A1": 200, "A2": 150, "A3": 100, "A4": 100, "A5": 100, "A6": 100, "A7": 150}
#: The user's nodes: id, elevation (Z), demand m³/d (Q).
NODES = {"W": (0, 0, 200.0, 0.0), "J1": (100, 0, 201.0, 0.0), "J2": (200, 0, 202.0, 30.0),
         "J3": (200, 100, 203.0, 20.0), "J4": (100, 100, 204.0, 20.0), "J5": (300, 0, 205.0, 10.0),
         "T": (300, 100, 230.0, 0.0)}
MAPPING = {"pipes": {"id": "GXBH", "diameter": "DN", "material": "CZ"},
           "nodes": {"id": "JDBH", "elevation": "Z", "demand": "Q"}}


def line(coords) -> LineString:
    return LineString([(X0 + x, Y0 + y) for x, y in coords])


def pipes_gdf(pipes: dict | None = None, dn: dict | None = None) -> gpd.GeoDataFrame:
    pipes = PIPES if pipes is None else pipes
    dn = {**DN, **(dn or {})}
    return gpd.GeoDataFrame({"GXBH": list(pipes), "DN": [dn.get(k, 100) for k in pipes],
                             "CZ": ["DI" if dn.get(k, 100) >= 150 else "PE" for k in pipes]},
                            geometry=[line(c) for c in pipes.values()], crs=CRS)


def nodes_gdf(nodes: dict | None = None) -> gpd.GeoDataFrame:
    nodes = NODES if nodes is None else nodes
    return gpd.GeoDataFrame({"JDBH": list(nodes), "Z": [v[2] for v in nodes.values()],
                             "Q": [v[3] for v in nodes.values()]},
                            geometry=[Point(X0 + v[0], Y0 + v[1]) for v in nodes.values()], crs=CRS)


def facilities_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ["WTP", "R1"], "kind": ["plant", "reservoir"], "name_zh": ["水厂", "水池"],
                             "head_m": [260.0, np.nan], "diameter_m": [np.nan, 10.0], "min_level_m": [np.nan, 0.5],
                             "max_level_m": [np.nan, 5.0], "init_level_m": [np.nan, 3.0],
                             "bottom_elev_m": [np.nan, 231.0]},
                            geometry=[Point(X0, Y0), Point(X0 + 300.2, Y0 + 100)], crs=CRS)


def settlements_gdf() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ["V1"], "name_zh": ["村一"], "kind": ["village"], "RK": [300]},
                            geometry=[box(X0 + 150, Y0 - 20, X0 + 320, Y0 + 120)], crs=CRS)


def build(pipes=None, **kw):
    kw.setdefault("nodes", nodes_gdf())
    kw.setdefault("facilities", facilities_gdf())
    kw.setdefault("mapping", MAPPING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return build_network(pipes_gdf() if pipes is None else pipes, **kw)


def ids(findings: pd.DataFrame, check: str) -> list[str]:
    return sorted(findings.loc[findings["check"] == check, "element_id"])


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The clean dataset as files: a GeoPackage per layer, a YAML mapping."""
    out = {"pipes": tmp_path / "pipes.gpkg", "nodes": tmp_path / "nodes.gpkg",
           "facilities": tmp_path / "facilities.gpkg", "settlements": tmp_path / "settlements.gpkg",
           "mapping": tmp_path / "map.yaml"}
    pipes_gdf().to_file(out["pipes"], layer="pipes")
    nodes_gdf().to_file(out["nodes"])
    facilities_gdf().to_file(out["facilities"])
    settlements_gdf().to_file(out["settlements"])
    out["mapping"].write_text("pipes:\n  id: GXBH\n  diameter: DN\n  material: CZ\n"
                              "nodes:\n  id: JDBH\n  elevation: Z\n  demand: Q\n"
                              "settlements:\n  population: RK\n", encoding="utf-8")
    return out


def write_dem(path: Path, *, crs: str = CRS, bounds: tuple[float, float, float, float] | None = None,
              cell: float = 5.0) -> tuple[Path, np.ndarray, object]:
    """A GeoTIFF whose value rises 0.1 m per column: z = 300 + 0.1 * col."""
    import rasterio
    from rasterio.transform import from_origin

    if bounds is None:
        bounds = (X0 - 50, Y0 - 50, X0 + 400, Y0 + 200)
    left, bottom, right, top = bounds
    w, h = int(np.ceil((right - left) / cell)), int(np.ceil((top - bottom) / cell))
    arr = (300.0 + 0.1 * np.arange(w)[None, :] + np.zeros((h, 1))).astype("float32")
    transform = from_origin(left, top, cell, cell)
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype="float32", crs=crs,
                       transform=transform, nodata=-9999.0) as dst:
        dst.write(arr, 1)
    return path, arr, transform


# ----------------------------------------------------------------------------- clean builds


def test_clean_build_from_files(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="no roughness column"):
        net, findings, fixes = build_network(files["pipes"], nodes=files["nodes"], facilities=files["facilities"],
                                             settlements=files["settlements"], mapping=files["mapping"])
    assert findings.empty and fixes == []
    nodes = net["nodes"].set_index("id")
    assert sorted(nodes.index) == sorted(NODES)  # every end met a user node
    assert nodes.loc["W", "kind"] == "plant" and nodes.loc["W", "head_m"] == 260.0
    assert nodes.loc["T", "kind"] == "reservoir" and nodes.loc["T", "elevation_m"] == 231.0
    assert nodes.loc["J3", "elevation_m"] == 203.0 and nodes.loc["J2", "base_demand_m3d"] == 30.0
    assert nodes.loc["J2", "settlement_id"] == "V1" and pd.isna(nodes.loc["J4", "settlement_id"])
    assert nodes.loc["J2", "population"] == 150 and nodes.loc["J5", "population"] == 50  # 300 shared by demand
    pipes = net["pipes"].set_index("id")
    assert (pipes.loc["A3", "from_node"], pipes.loc["A3", "to_node"]) == ("J2", "J3")
    assert pipes.loc["A6", "length_m"] == pytest.approx(2 * np.hypot(50, 5), abs=1e-3)
    assert pipes.loc["A1", "class"] == "main" and pipes.loc["A3", "class"] == "branch"
    assert pipes.loc["A1", "roughness_c"] == 130.0 and pipes.loc["A3", "roughness_c"] == 145.0
    fac = net["facilities"].set_index("id")
    assert fac.loc["WTP", "node_id"] == "W" and fac.loc["R1", "node_id"] == "T"
    assert net["settlements"].set_index("id").loc["V1", "population"] == 300

    written = write_built(net, tmp_path / "out" / "net.gpkg", findings=findings)
    assert set(written) == {"gpkg", "inp", "validation"}
    back = read_network(written["gpkg"])
    assert sorted(back["pipes"]["id"]) == sorted(PIPES)
    assert list(pd.read_csv(written["validation"]).columns) == ["check", "severity", "element_type", "element_id",
                                                                "x", "y", "message"]
    res = wntr.sim.EpanetSimulator(wntr.network.WaterNetworkModel(str(written["inp"]))).run_sim(
        file_prefix=str(tmp_path / "sim"))
    assert (res.node["pressure"].loc[0, ["J2", "J3", "J4", "J5"]] > 20).all()


@pytest.mark.parametrize("driver, suffix", [("GeoJSON", ".geojson"), ("ESRI Shapefile", ".shp")])
def test_other_formats_give_the_same_network(tmp_path: Path, driver: str, suffix: str) -> None:
    paths = {}
    for name, gdf in (("pipes", pipes_gdf()), ("nodes", nodes_gdf()), ("facilities", facilities_gdf())):
        paths[name] = tmp_path / f"{name}{suffix}"
        gdf.to_file(paths[name], driver=driver)
    mapping = MAPPING
    if suffix == ".shp":  # Shapefiles cut column names to 10 characters
        with pytest.raises(NetworkDataError, match=r"Shapefiles cut column names.*'min_level_m': 'min_level_'"):
            build(paths["pipes"], nodes=paths["nodes"], facilities=paths["facilities"])
        mapping = {**MAPPING, "facilities": {c: c[:10] for c in ("min_level_m", "max_level_m", "init_level_m",
                                                                  "bottom_elev_m")}}
    net, findings, _ = build(paths["pipes"], nodes=paths["nodes"], facilities=paths["facilities"], mapping=mapping)
    ref, _, _ = build()
    assert findings.empty
    cols = ["id", "from_node", "to_node", "diameter_mm", "length_m"]
    pd.testing.assert_frame_equal(pd.DataFrame(net["pipes"][cols]), pd.DataFrame(ref["pipes"][cols]))


def test_nodes_are_created_where_pipe_ends_meet(tmp_path: Path) -> None:
    pipes = pipes_gdf()
    pipes.loc[pipes["GXBH"] == "A4", "geometry"] = line([(200.4, 100.3), (100, 100)])  # 0.5 m off J3
    nodes = nodes_gdf({k: v for k, v in NODES.items() if k not in ("J3", "J4")})
    dem, _, _ = write_dem(tmp_path / "dem.tif")
    net, findings, _ = build(pipes, nodes=nodes, dem=dem)
    made = net["nodes"][~net["nodes"]["id"].isin(list(NODES))]
    assert sorted(made["id"]) == ["J00001", "J00002"]
    at = {nid: (round(g.x - X0, 2), round(g.y - Y0, 2)) for nid, g in zip(made["id"], made.geometry)}
    assert at["J00001"] == (200.2, 100.15)  # mean of the two ends that met
    a4 = net["pipes"].set_index("id").loc["A4"]
    assert a4["from_node"] == "J00001" and a4.geometry.coords[0] == (X0 + 200.2, Y0 + 100.15)
    assert findings.empty


# ----------------------------------------------------------------------------- DEM


def test_elevations_from_dem(tmp_path: Path) -> None:
    dem, arr, transform = write_dem(tmp_path / "dem.tif")
    net, _, _ = build(dem=dem)
    nodes = net["nodes"].set_index("id")
    for nid in ("J1", "J2", "J5"):
        g = nodes.geometry[nid]
        col, row = ~transform * (g.x, g.y)
        assert nodes.loc[nid, "elevation_m"] == pytest.approx(float(arr[int(row), int(col)]), abs=1e-3)
    assert nodes.loc["T", "elevation_m"] == 231.0  # a reservoir sits at its bottom elevation


def test_dem_in_another_crs_is_sampled_at_reprojected_points(tmp_path: Path) -> None:
    tr = Transformer.from_crs(CRS, "EPSG:32648", always_xy=True)
    xs, ys = tr.transform([X0 - 100, X0 + 450, X0 - 100, X0 + 450], [Y0 - 100, Y0 - 100, Y0 + 250, Y0 + 250])
    dem, arr, transform = write_dem(tmp_path / "utm.tif", crs="EPSG:32648",
                                    bounds=(min(xs), min(ys), max(xs), max(ys)))
    net, _, _ = build(dem=dem)
    g = net["nodes"].set_index("id").geometry["J5"]
    col, row = ~transform * tr.transform(g.x, g.y)
    assert net["nodes"].set_index("id").loc["J5", "elevation_m"] == pytest.approx(float(arr[int(row), int(col)]))


def test_dem_not_covering_the_network(tmp_path: Path) -> None:
    dem, _, _ = write_dem(tmp_path / "small.tif", bounds=(X0 - 50, Y0 - 50, X0 + 150, Y0 + 50))
    with pytest.raises(NetworkDataError, match=r"small\.tif: 5 of 7 nodes fall outside the DEM.*bounds"):
        build(dem=dem)


def test_dem_errors(tmp_path: Path) -> None:
    with pytest.raises(NetworkDataError, match="DEM file not found"):
        build(dem=tmp_path / "none.tif")
    bad = tmp_path / "bad.tif"
    bad.write_text("not a raster")
    with pytest.raises(NetworkDataError, match=r"bad\.tif: not a raster"):
        build(dem=bad)


def test_elevations_are_required(tmp_path: Path) -> None:
    with pytest.raises(NetworkDataError, match="no elevations: give a DEM"):
        build(nodes=None, facilities=None, mapping={"pipes": MAPPING["pipes"]})
    nodes = nodes_gdf({k: v for k, v in NODES.items() if k != "J3"})
    with pytest.raises(NetworkDataError, match=r"node\(s\) have no elevation \('J00001'\).*created at pipe ends"):
        build(nodes=nodes)


# ----------------------------------------------------------------------------- broken layers


def test_dangling_end_is_reported(tmp_path: Path) -> None:
    pipes = pipes_gdf({**PIPES, "A8": [(200, 0), (200, -40)]})
    net, findings, _ = build(pipes, dem=write_dem(tmp_path / "dem.tif")[0])
    assert ids(findings, "dangling_end") == ["A8"]
    row = findings[findings["check"] == "dangling_end"].iloc[0]
    assert (row["x"], row["y"]) == (X0 + 200, Y0 - 40) and "node 'J00001' was created" in row["message"]


def test_near_miss_reported_then_fixed() -> None:
    pipes = pipes_gdf({**PIPES, "A8": [(150, -50), (150, -0.6)]})  # stops 0.6 m short of A2
    nodes = nodes_gdf({**NODES, "K": (150, -50, 200.0, 5.0), "E": (150, -0.6, 201.0, 0.0)})
    _, findings, fixes = build(pipes, nodes=nodes)
    assert ids(findings, "near_miss") == ["A8"] and ids(findings, "no_source") == ["K"]
    net, findings, fixes = build(pipes, nodes=nodes, fix=True)
    assert fixes == ["split pipe 'A2' at node(s) 'E' lying within 1 m of it (near miss) into 'A2', 'A2-2'"]
    assert findings.empty
    p = net["pipes"].set_index("id")
    assert (p.loc["A2", "to_node"], p.loc["A2-2", "from_node"]) == ("E", "E")
    assert p.loc["A2", "length_m"] + p.loc["A2-2", "length_m"] == pytest.approx(100.0, abs=0.01)


def test_node_on_a_pipe_is_connected_by_fix() -> None:
    nodes = nodes_gdf({**NODES, "H": (150, 0.3, 201.5, 2.0)})  # a demand node drawn on A2
    _, findings, _ = build(nodes=nodes)
    assert ids(findings, "near_miss") == ["H"] and ids(findings, "no_source") == ["H"]
    net, findings, fixes = build(nodes=nodes, fix=True)
    assert findings.empty and "split pipe 'A2' at node(s) 'H'" in fixes[0]


def test_crossing_reported_and_split_on_request() -> None:
    pipes = pipes_gdf({**PIPES, "X1": [(150, -50), (150, 50)]})
    nodes = nodes_gdf({**NODES, "K1": (150, -50, 200.0, 5.0), "K2": (150, 50, 200.0, 5.0)})
    _, findings, _ = build(pipes, nodes=nodes)
    assert ids(findings, "crossing") == ["A2"] and ids(findings, "no_source") == ["K1", "K2"]
    _, findings, fixes = build(pipes, nodes=nodes, fix=True)
    assert ids(findings, "crossing") == ["A2"] and fixes == []  # not split unless asked
    net, findings, fixes = build(pipes, nodes=nodes, fix=True, split_crossings=True)
    assert fixes == ["created node 'J00001' where pipes 'A2' and 'X1' cross (380150.00, 3210000.00) and split both "
                     "there"]
    assert findings.empty
    nodes_out = net["nodes"].set_index("id")
    assert nodes_out.loc["J00001", "elevation_m"] == pytest.approx(201.5)  # between J1 and J2
    assert {"A2", "A2-2", "X1", "X1-2"} <= set(net["pipes"]["id"])
    with pytest.raises(ConfigError, match="split_crossings only applies with fix=True"):
        build(pipes, nodes=nodes, split_crossings=True)


def test_duplicates_reported_then_dropped() -> None:
    pipes = pipes_gdf({**PIPES, "A2b": [(200, 0), (100, 0)], "A3b": [(200, 0), (230, 50), (200, 100)]},
                      dn={"A2b": 150, "A3b": 100})
    _, findings, _ = build(pipes)
    assert ids(findings, "duplicate_pipe") == ["A2b", "A3b"]
    net, findings, fixes = build(pipes, fix=True)
    assert fixes == ["dropped pipe 'A2b': duplicate of pipe 'A2' (same nodes, diameter and alignment)"]
    assert ids(findings, "duplicate_pipe") == ["A3b"]  # a real parallel pipe stays
    assert "A2b" not in set(net["pipes"]["id"])


def test_zero_length_pipe_is_an_error_unless_fixed() -> None:
    pipes = pipes_gdf({**PIPES, "Z": [(100, 0), (100.5, 0.2)]})
    with pytest.raises(NetworkDataError, match=r"pipe\(s\) 'Z' have length 0.*fix=True"):
        build(pipes)
    net, findings, fixes = build(pipes, fix=True)
    assert fixes == ["dropped pipe 'Z': both its ends are on node 'J1' (shorter than 1 m)"]
    assert findings.empty


def test_disconnected_part_and_implausible_values() -> None:
    pipes = pipes_gdf({**PIPES, "I1": [(500, 500), (600, 500)]}, dn={"A3": 5000})
    nodes = nodes_gdf({**NODES, "K1": (500, 500, 200.0, 5.0), "K2": (600, 500, 200.0, 0.0)})
    _, findings, _ = build(pipes, nodes=nodes)
    assert ids(findings, "disconnected") == ["K1"] and ids(findings, "no_source") == ["K1"]
    assert ids(findings, "diameter") == ["A3"]


# ----------------------------------------------------------------------------- bad input


def test_not_gis_data(tmp_path: Path) -> None:
    junk = tmp_path / "pipes.gpkg"
    junk.write_text("id,diameter\nP1,100\n")
    with pytest.raises(NetworkDataError, match=r"pipes\.gpkg: not readable as GIS data"):
        build(junk)
    table = tmp_path / "table.csv"
    table.write_text("id,diameter\nP1,100\n")
    with pytest.raises(NetworkDataError, match=r"table\.csv: has no geometry"):
        build(table)
    with pytest.raises(NetworkDataError, match="file not found"):
        build(tmp_path / "missing.gpkg")


def test_layer_without_crs(tmp_path: Path) -> None:
    pipes = pipes_gdf().set_crs(None, allow_override=True)
    with pytest.raises(NetworkDataError, match=r"pipes layer: has no CRS; give the CRS"):
        build(pipes)
    net, _, _ = build(pipes, crs=CRS)
    assert net["pipes"].crs.to_epsg() == 4545


def test_mixed_crs() -> None:
    with pytest.raises(NetworkDataError, match=r"mixed CRS: pipes layer is in EPSG:4545 but nodes layer is in "
                                               r"EPSG:32648"):
        build(nodes=nodes_gdf().to_crs("EPSG:32648"))
    with pytest.raises(NetworkDataError, match=r"is in EPSG:4545 but CRS EPSG:32648 was given \(mixed CRS\)"):
        build(crs="EPSG:32648")
    with pytest.raises(NetworkDataError, match=r"geographic.*EPSG:326\d\d"):
        build(pipes_gdf().to_crs(4326), nodes=nodes_gdf().to_crs(4326), facilities=facilities_gdf().to_crs(4326))


def test_mapping_errors(tmp_path: Path) -> None:
    with pytest.raises(NetworkDataError, match=r"the mapping gives column 'DIAM' for 'diameter', but the layer has "
                                               r"no such column"):
        build(mapping={**MAPPING, "pipes": {"id": "GXBH", "diameter": "DIAM"}})
    with pytest.raises(ConfigError, match="'diam' is not one of our column names"):
        load_mapping({"pipes": {"diam": "DN"}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipes: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not a YAML mapping"):
        load_mapping(bad)
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "none.yaml")
    with pytest.raises(NetworkDataError, match="no diameter column"):
        build(mapping={"nodes": MAPPING["nodes"]})
    # a flat mapping applies to every layer that has the column
    flat = {"id": "GXBH", "diameter": "DN", "material": "CZ", "elevation": "Z", "demand": "Q"}
    nodes = nodes_gdf().rename(columns={"JDBH": "id"})
    net, _, _ = build(mapping=flat, nodes=nodes)
    assert "A1" in set(net["pipes"]["id"]) and net["nodes"].set_index("id").loc["J2", "elevation_m"] == 202.0


def test_facility_errors() -> None:
    fac = facilities_gdf()
    fac.loc[0, "geometry"] = Point(X0 - 30, Y0)
    with pytest.raises(NetworkDataError, match=r"facility 'WTP' is 30.0 m from the nearest node 'W'"):
        build(facilities=fac)
    fac["node_id"] = ["W", None]
    net, _, _ = build(facilities=fac)
    assert net["facilities"].set_index("id").loc["WTP", "node_id"] == "W"
    fac = facilities_gdf()
    fac.loc[0, "head_m"] = np.nan
    with pytest.raises(NetworkDataError, match="plant 'WTP' needs 'head_m'"):
        build(facilities=fac)
    with pytest.raises(NetworkDataError, match="has no source"):
        build(facilities=None)


def test_inputs_are_not_modified() -> None:
    pipes, nodes = pipes_gdf(), nodes_gdf()
    before = (pipes.copy(), nodes.copy())
    build(pipes, nodes=nodes, fix=True)
    pd.testing.assert_frame_equal(pipes, before[0])
    pd.testing.assert_frame_equal(nodes, before[1])


# ----------------------------------------------------------------------------- CLI


def test_cli_build_writes_gpkg_inp_and_validation(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "result" / "network.gpkg"
    res = CliRunner().invoke(cli, ["build", "--pipes", str(files["pipes"]), "--nodes", str(files["nodes"]),
                                   "--facilities", str(files["facilities"]), "--settlements",
                                   str(files["settlements"]), "--mapping", str(files["mapping"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and out.with_suffix(".inp").is_file() and (out.parent / "validation.csv").is_file()
    assert "7 nodes, 7 pipes, 2 facilities, 1 settlements" in res.stdout
    assert "findings: none" in res.stdout
    assert "Warning: pipes.gpkg (layer 'pipes'): no roughness column" in res.stderr or \
        "no roughness column" in res.stderr


def test_cli_build_with_fix_lists_fixes(tmp_path: Path) -> None:
    pipes = pipes_gdf({**PIPES, "A2b": [(200, 0), (100, 0)]}, dn={"A2b": 150})
    pipes.to_file(tmp_path / "p.geojson", driver="GeoJSON")
    nodes_gdf().to_file(tmp_path / "n.geojson", driver="GeoJSON")
    facilities_gdf().to_file(tmp_path / "f.geojson", driver="GeoJSON")
    (tmp_path / "m.yaml").write_text("pipes: {id: GXBH, diameter: DN, material: CZ}\n"
                                     "nodes: {id: JDBH, elevation: Z, demand: Q}\n")
    out = tmp_path / "o" / "n.gpkg"
    res = CliRunner().invoke(cli, ["build", "--pipes", str(tmp_path / "p.geojson"), "--nodes",
                                   str(tmp_path / "n.geojson"), "--facilities", str(tmp_path / "f.geojson"),
                                   "--mapping", str(tmp_path / "m.yaml"), "--fix", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "fixed: dropped pipe 'A2b'" in res.stdout


@pytest.mark.parametrize("case, expect", [
    ("not_gis", "pipes.gpkg: not readable as GIS data"),
    ("no_crs", "has no CRS; give the CRS"),
    ("mixed_crs", "mixed CRS"),
    ("bad_mapping_column", "the mapping gives column 'NOPE' for 'diameter'"),
    ("missing_file", "missing.gpkg: file not found"),
    ("dem_outside", "nodes fall outside the DEM"),
    ("bad_tolerance", "tolerance_m must be a distance >= 0"),
    ("split_without_fix", "--split-crossings needs --fix"),
])
def test_cli_bad_input_exit_2_one_line_nothing_written(tmp_path: Path, case: str, expect: str) -> None:
    pipes, nodes = tmp_path / "pipes.gpkg", tmp_path / "nodes.gpkg"
    extra: list[str] = []
    mapping = "pipes: {id: GXBH, diameter: DN, material: CZ}\nnodes: {id: JDBH, elevation: Z, demand: Q}\n"
    if case == "not_gis":
        pipes.write_text("this is not a GeoPackage")
    elif case == "no_crs":
        pipes = tmp_path / "pipes.shp"
        pipes_gdf().to_file(pipes)
        pipes.with_suffix(".prj").unlink()
    else:
        pipes_gdf().to_file(pipes)
    nodes_gdf().to_crs("EPSG:32648" if case == "mixed_crs" else CRS).to_file(nodes)
    facilities_gdf().to_file(tmp_path / "fac.gpkg")
    if case == "bad_mapping_column":
        mapping = mapping.replace("diameter: DN", "diameter: NOPE")
    if case == "missing_file":
        pipes = tmp_path / "missing.gpkg"
    if case == "dem_outside":
        extra = ["--dem", str(write_dem(tmp_path / "dem.tif", bounds=(X0 - 50, Y0 - 50, X0 + 50, Y0 + 50))[0])]
    if case == "bad_tolerance":
        extra = ["--tolerance-m", "-1"]
    if case == "split_without_fix":
        extra = ["--split-crossings"]
    (tmp_path / "m.yaml").write_text(mapping)
    out = tmp_path / "out" / "net.gpkg"
    res = CliRunner().invoke(cli, ["build", "--pipes", str(pipes), "--nodes", str(nodes), "--facilities",
                                   str(tmp_path / "fac.gpkg"), "--mapping", str(tmp_path / "m.yaml"), *extra,
                                   "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert expect in res.stderr
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("Error: ")
    assert "Traceback" not in res.output
    assert not out.parent.exists()
