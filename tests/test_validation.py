"""Tests of watersupply.validation.validate_topology: one broken network per check."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from watersupply import ConfigError, NetworkDataError
from watersupply.validation import CHECKS, COLUMNS, validate_topology

CRS = "EPSG:4545"
X0, Y0 = 380_000.0, 3_210_000.0

#: id -> (x, y, kind, elevation, demand m3/d)
NODES = {
    "R": (0, 0, "plant", 250.0, 0.0),
    "J1": (100, 0, "junction", 200.0, 0.0),
    "J2": (200, 0, "junction", 201.0, 10.0),
    "J3": (200, 100, "junction", 202.0, 10.0),
    "J4": (100, 100, "junction", 203.0, 10.0),
}
#: id -> (from, to)
PIPES = {"P1": ("R", "J1"), "P2": ("J1", "J2"), "P3": ("J2", "J3"), "P4": ("J3", "J4"), "P5": ("J4", "J1")}


def layers(nodes: dict | None = None, pipes: dict | None = None, *, geoms: dict | None = None,
           attrs: dict | None = None, node_attrs: dict | None = None) -> dict:
    """A network; `geoms` overrides pipe lines (local coordinates), `attrs`/`node_attrs` override columns."""
    nodes = dict(NODES if nodes is None else nodes)
    pipes = dict(PIPES if pipes is None else pipes)
    nrows = [dict(id=k, kind=v[2], elevation_m=v[3], base_demand_m3d=v[4], head_m=v[3] if v[2] == "plant" else np.nan,
                  geometry=Point(X0 + v[0], Y0 + v[1])) for k, v in nodes.items()]
    for row in nrows:
        row.update((node_attrs or {}).get(row["id"], {}))
    prows = []
    for k, (a, b) in pipes.items():
        coords = (geoms or {}).get(k) or [nodes[a][:2], nodes[b][:2]]
        line = LineString([(X0 + x, Y0 + y) for x, y in coords])
        row = dict(id=k, from_node=a, to_node=b, diameter_mm=150.0, roughness_c=130.0, length_m=line.length,
                   status="OPEN", geometry=line)
        row.update((attrs or {}).get(k, {}))
        prows.append(row)
    return {"nodes": gpd.GeoDataFrame(nrows, geometry="geometry", crs=CRS),
            "pipes": gpd.GeoDataFrame(prows, geometry="geometry", crs=CRS)}


def ids(findings: pd.DataFrame, check: str, severity: str | None = None) -> list[str]:
    f = findings[findings["check"] == check]
    if severity:
        f = f[f["severity"] == severity]
    return sorted(f["element_id"])


def test_clean_network_has_no_findings(tiny_net: dict) -> None:
    f = validate_topology(layers())
    assert list(f.columns) == COLUMNS and f.empty
    assert validate_topology(tiny_net).empty  # pumps join the plant to the rest


def test_bundled_network_has_no_errors(tonghui_net: dict) -> None:
    f = validate_topology(tonghui_net)
    assert (f["severity"] != "error").all()
    assert set(f["check"]) <= {"crossing", "near_miss"}


def test_dangling_end() -> None:
    net = layers(geoms={"P3": [(200, 0), (200, 60), (203, 95)]})  # stops 5.8 m short of J3
    f = validate_topology(net)
    row = f[f["check"] == "dangling_end"].iloc[0]
    assert (row["element_id"], row["severity"]) == ("P3", "error")
    assert (row["x"], row["y"]) == (X0 + 203, Y0 + 95)
    assert "5.83 m from its node 'J3'" in row["message"]
    assert ids(validate_topology(net, tolerance_m=6.0), "dangling_end") == []


def test_pipe_end_far_from_every_node_without_node_references() -> None:
    net = layers(geoms={"P3": [(200, 0), (210, 130)]})
    net["pipes"] = net["pipes"].drop(columns=["from_node", "to_node"])
    f = validate_topology(net)
    assert ids(f, "dangling_end") == ["P3"]
    assert "from every node" in f.loc[f["check"] == "dangling_end", "message"].iloc[0]


def test_near_miss_with_a_node() -> None:
    nodes = {**NODES, "J5": (300.4, 0, "junction", 200.0, 1.0), "J6": (400, 0, "junction", 200.0, 0.0)}
    pipes = {**PIPES, "P6": ("J2", "J7"), "P7": ("J5", "J6")}
    nodes["J7"] = (300, 0, "junction", 200.0, 1.0)
    f = validate_topology(layers(nodes, pipes))
    near = f[f["check"] == "near_miss"]
    assert sorted(near["element_id"]) == ["P6", "P7"]
    assert "0.40 m from node 'J5'" in near.set_index("element_id").loc["P6", "message"]
    assert (near["severity"] == "warning").all()


def test_near_miss_with_a_pipe_interior() -> None:
    nodes = {**NODES, "J5": (150, -50, "junction", 200.0, 1.0)}
    pipes = {**PIPES, "P6": ("J5", "J8")}
    nodes["J8"] = (150, -0.6, "junction", 200.0, 1.0)  # 0.6 m short of P2
    f = validate_topology(layers(nodes, pipes))
    row = f[f["check"] == "near_miss"].iloc[0]
    assert row["element_id"] == "P6" and "0.60 m from pipe 'P2'" in row["message"]
    assert ids(validate_topology(layers(nodes, pipes), tolerance_m=0.5), "near_miss") == []
    # a T exactly on the pipe without a node is reported too
    nodes["J8"] = (150, 0, "junction", 200.0, 1.0)
    assert ids(validate_topology(layers(nodes, pipes)), "near_miss") == ["P6"]


def test_zero_length_and_self_loop() -> None:
    net = layers(pipes={**PIPES, "P6": ("J2", "J2")}, attrs={"P2": {"length_m": 0.0}},
                 geoms={"P6": [(200, 0), (210, 10), (200, 0)]})
    f = validate_topology(net)
    assert ids(f, "zero_length", "error") == ["P2"]
    assert ids(f, "self_loop", "error") == ["P6"]


def test_duplicate_and_parallel_pipes() -> None:
    pipes = {**PIPES, "P2b": ("J2", "J1"), "P3b": ("J2", "J3")}
    net = layers(pipes=pipes, geoms={"P2b": [(200, 0), (100, 0)], "P3b": [(200, 0), (230, 50), (200, 100)]})
    f = validate_topology(net).set_index("element_id")
    dup = f[f["check"] == "duplicate_pipe"]
    assert sorted(dup.index) == ["P2b", "P3b"]
    assert "duplicates pipe 'P2'" in dup.loc["P2b", "message"]
    assert "parallel to pipe 'P3'" in dup.loc["P3b", "message"]


def test_crossing_without_node() -> None:
    nodes = {**NODES, "A": (150, -50, "junction", 200.0, 1.0), "B": (150, 50, "junction", 200.0, 1.0)}
    pipes = {**PIPES, "X1": ("A", "B")}
    f = validate_topology(layers(nodes, pipes))
    row = f[f["check"] == "crossing"].iloc[0]
    assert row["element_id"] == "P2" and "crosses pipe 'X1'" in row["message"]
    assert (round(row["x"] - X0, 6), round(row["y"] - Y0, 6)) == (150.0, 0.0)
    # pipes meeting at a shared node are not crossings
    assert ids(validate_topology(layers()), "crossing") == []


def test_disconnected_component_and_no_source() -> None:
    nodes = {**NODES, "K1": (500, 500, "junction", 200.0, 5.0), "K2": (600, 500, "junction", 200.0, 0.0)}
    pipes = {**PIPES, "Q1": ("K1", "K2")}
    f = validate_topology(layers(nodes, pipes))
    assert ids(f, "disconnected", "warning") == ["K1"]
    assert "2 node(s) ('K1', 'K2')" in f.loc[f["check"] == "disconnected", "message"].iloc[0]
    assert ids(f, "no_source", "error") == ["K1"]  # K2 has no demand


def test_closed_pipe_cuts_off_supply() -> None:
    f = validate_topology(layers(attrs={"P1": {"status": "CLOSED"}}))
    assert ids(f, "no_source") == ["J2", "J3", "J4"]
    assert ids(f, "disconnected") == []


def test_pumps_and_control_valves_connect() -> None:
    net = layers(pipes={k: v for k, v in PIPES.items() if k != "P1"})
    f = validate_topology(net)
    assert ids(f, "disconnected") == ["R"] and ids(f, "no_source") == ["J2", "J3", "J4"]
    for layer in ("pumps", "control_valves"):
        linked = dict(net)
        linked[layer] = gpd.GeoDataFrame([dict(id="L1", from_node="R", to_node="J1", status="OPEN",
                                               geometry=Point(X0 + 50, Y0))], geometry="geometry", crs=CRS)
        assert validate_topology(linked).empty, layer


def test_unknown_node_reference() -> None:
    net = layers()
    net["pipes"].loc[net["pipes"]["id"] == "P3", "to_node"] = "J9"
    net["pumps"] = gpd.GeoDataFrame([dict(id="PU", from_node="R", to_node="J0", geometry=Point(X0, Y0))],
                                    geometry="geometry", crs=CRS)
    f = validate_topology(net)
    unknown = f[f["check"] == "unknown_node"].set_index("element_id")
    assert sorted(unknown.index) == ["P3", "PU"] and unknown.loc["PU", "element_type"] == "pump"
    assert "'J9'" in unknown.loc["P3", "message"]


def test_implausible_values() -> None:
    net = layers(attrs={"P1": {"diameter_mm": np.nan}, "P2": {"diameter_mm": 0.0}, "P3": {"diameter_mm": 0.15},
                        "P4": {"diameter_mm": 5000.0, "roughness_c": 0.26}, "P5": {"roughness_c": np.nan}},
                 node_attrs={"J2": {"elevation_m": np.nan}, "J3": {"elevation_m": 12000.0},
                             "J4": {"elevation_m": -10.0}})
    f = validate_topology(net)
    assert ids(f, "diameter", "error") == ["P1", "P2"]
    assert ids(f, "diameter", "warning") == ["P3", "P4"]
    assert ids(f, "roughness", "error") == ["P5"] and ids(f, "roughness", "warning") == ["P4"]
    assert ids(f, "elevation", "error") == ["J2"] and ids(f, "elevation", "warning") == ["J3"]
    net["pipes"] = net["pipes"].drop(columns="roughness_c")
    f = validate_topology(net)
    assert f[(f["check"] == "roughness")][["element_type", "element_id"]].values.tolist() == [["layer", "pipes"]]


def test_crs_findings() -> None:
    net = layers()
    net["pipes"] = net["pipes"].to_crs("EPSG:4326")
    f = validate_topology(net)
    row = f[f["check"] == "crs"].iloc[0]
    assert (row["element_type"], row["element_id"], row["severity"]) == ("layer", "pipes", "error")
    assert "mixed CRS" in row["message"] and "geometric checks were skipped" in row["message"]
    assert ids(f, "dangling_end") == []  # not computed on mixed coordinates
    net = layers()
    net["nodes"] = net["nodes"].set_crs(None, allow_override=True)
    f = validate_topology(net)
    assert ids(f, "crs") == ["nodes"]
    assert "has no CRS" in f[f["check"] == "crs"]["message"].iloc[0]


def test_missing_geometry_is_reported() -> None:
    net = layers()
    net["pipes"].loc[1, "geometry"] = None
    f = validate_topology(net)
    assert ids(f, "geometry") == ["P2"]


def test_output_is_deterministic_and_ordered() -> None:
    nodes = {**NODES, "K1": (500, 500, "junction", np.nan, 5.0), "A": (150, -50, "junction", 200.0, 1.0),
             "B": (150, 50, "junction", 200.0, 1.0)}
    pipes = {**PIPES, "X1": ("A", "B"), "P6": ("J2", "J2")}
    net = layers(nodes, pipes, geoms={"P6": [(200, 0), (220, 20), (200, 0)]}, attrs={"P2": {"diameter_mm": 1.0}})
    a = validate_topology(net)
    shuffled = {k: v.sample(frac=1.0, random_state=3) for k, v in net.items()}
    b = validate_topology(shuffled)
    pd.testing.assert_frame_equal(a, b)
    order = [CHECKS.index(c) for c in a["check"]]
    assert order == sorted(order)
    assert set(a["check"]) >= {"self_loop", "crossing", "disconnected", "no_source", "diameter", "elevation"}


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="tolerance_m"):
        validate_topology(layers(), tolerance_m=-1)
    with pytest.raises(NetworkDataError, match="'pipes' is missing"):
        validate_topology({"nodes": layers()["nodes"]})
    with pytest.raises(TypeError, match="mapping"):
        validate_topology([1, 2])  # type: ignore[arg-type]


def test_xy_are_finite_for_located_findings() -> None:
    f = validate_topology(layers(attrs={"P2": {"diameter_mm": 1.0}}))
    assert all(math.isfinite(v) for v in f[["x", "y"]].to_numpy().ravel())
