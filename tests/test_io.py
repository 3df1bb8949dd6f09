"""Reading, validating and atomically writing networks and files."""

from __future__ import annotations

import os

import pytest

from watersupply._errors import NetworkDataError
from watersupply.io import atomic_path, get_path, read_network, write_network, write_text


def test_get_path_lists_names_on_a_wrong_one():
    assert get_path("tonghui").name == "tonghui.gpkg"
    with pytest.raises(NetworkDataError, match="available: tonghui"):
        get_path("tonghiu")


def test_read_write_round_trip(tmp_path, tiny_net):
    path = write_network(tiny_net, tmp_path / "n.gpkg")
    back = read_network(path)
    assert list(back["nodes"]["id"]) == list(tiny_net["nodes"]["id"])
    assert back["pipes"].crs == tiny_net["pipes"].crs
    assert back["patterns"].shape == tiny_net["patterns"].shape


def test_missing_file_and_non_gis_file(tmp_path):
    with pytest.raises(NetworkDataError, match="missing.gpkg: file not found"):
        read_network(tmp_path / "missing.gpkg")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage", encoding="utf-8")
    with pytest.raises(NetworkDataError, match="not readable as GIS data"):
        read_network(bad)


def test_missing_layer_column_and_unknown_node(tmp_path, tiny_net):
    net = dict(tiny_net)
    p = write_network({k: v for k, v in net.items() if k != "pipes"}, tmp_path / "nopipes.gpkg")
    with pytest.raises(NetworkDataError, match="layer 'pipes' is missing"):
        read_network(p)
    pipes = net["pipes"].drop(columns=["diameter_mm"])
    p = write_network({**net, "pipes": pipes}, tmp_path / "nocol.gpkg")
    with pytest.raises(NetworkDataError, match="layer 'pipes': missing column\\(s\\) 'diameter_mm'"):
        read_network(p)
    pipes = net["pipes"].copy()
    pipes.loc[pipes["id"] == "B2", "from_node"] = "J99"
    p = write_network({**net, "pipes": pipes}, tmp_path / "badref.gpkg")
    with pytest.raises(NetworkDataError, match="pipe 'B2' has from_node 'J99'.*closest valid ids"):
        read_network(p)


def test_duplicate_ids_and_bad_numbers(tmp_path, tiny_net):
    nodes = tiny_net["nodes"].copy()
    nodes.loc[nodes["id"] == "J2", "id"] = "J1"
    with pytest.raises(NetworkDataError, match="duplicate id\\(s\\) 'J1'"):
        from watersupply.schema import validate_network
        validate_network({**tiny_net, "nodes": nodes})
    pipes = tiny_net["pipes"].copy()
    pipes.loc[pipes["id"] == "B1", "diameter_mm"] = -5
    with pytest.raises(NetworkDataError, match="'diameter_mm' of 'B1' must be a number > 0"):
        from watersupply.schema import validate_network
        validate_network({**tiny_net, "pipes": pipes})


def test_geographic_crs_is_refused(tiny_net):
    from watersupply.schema import validate_network
    net = {k: (v.to_crs("EPSG:4326") if hasattr(v, "to_crs") else v) for k, v in tiny_net.items()}
    with pytest.raises(NetworkDataError, match="geographic"):
        validate_network(net)


def test_atomic_path_leaves_previous_file_on_error(tmp_path):
    target = tmp_path / "report.md"
    write_text("old", target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["report.md"]


def test_geopackage_output_is_byte_identical(tmp_path, tiny_net):
    a = write_network(tiny_net, tmp_path / "a.gpkg").read_bytes()
    b = write_network(tiny_net, tmp_path / "b.gpkg").read_bytes()
    assert a == b
