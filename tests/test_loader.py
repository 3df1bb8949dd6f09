"""loader.py: the one entry that loads a network (GeoPackage, INP or the bundled model)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from watersupply import NetworkDataError
from watersupply.io import write_network
from watersupply.loader import DEFAULT_NETWORK, load_network, network_name
from watersupply.model import to_wntr, write_inp


def test_bundled_network_by_default():
    net = load_network()
    assert net["nodes"].crs.to_epsg() == 4545 and len(net["pipes"]) > 1000
    assert network_name() == DEFAULT_NETWORK == "tonghui"


def test_gpkg_and_inp_through_the_same_entry(tmp_path: Path, tiny_net: dict):
    gpkg = write_network(tiny_net, tmp_path / "tiny.gpkg")
    inp = write_inp(to_wntr(tiny_net), tmp_path / "tiny_copy.inp")
    assert sorted(load_network(network=gpkg)["nodes"]["id"]) == sorted(tiny_net["nodes"]["id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_inp = load_network(inp=inp, crs="EPSG:4545")
        by_suffix = load_network(network=inp, crs="EPSG:4545")  # an .inp given as --network / scenario network
    assert sorted(by_inp["nodes"]["id"]) == sorted(by_suffix["nodes"]["id"])
    assert network_name(network=gpkg) == "tiny" and network_name(inp=inp) == "tiny_copy"


def test_bad_arguments_are_named(tmp_path: Path, tiny_net: dict):
    gpkg = write_network(tiny_net, tmp_path / "tiny.gpkg")
    with pytest.raises(NetworkDataError, match="not both"):
        load_network(network=gpkg, inp=tmp_path / "x.inp")
    with pytest.raises(NetworkDataError, match=r"CRS 'EPSG:nope' is not a valid CRS.*give e\.g\. 'EPSG:4545'"):
        load_network(network=gpkg, crs="EPSG:nope")
    with pytest.raises(NetworkDataError, match="--crs only applies to INP files"):
        load_network(network=gpkg, crs="EPSG:32648")
    with pytest.raises(NetworkDataError, match=r"missing\.gpkg: file not found"):
        load_network(network=tmp_path / "missing.gpkg")


def test_a_bundled_network_by_name():
    net = load_network(network="tonghui")
    meta = dict(zip(net["metadata"]["key"], net["metadata"]["value"]))
    assert meta["name"] == "tonghui" and "synthetic" in meta["dem_kind"]
    with pytest.raises(NetworkDataError, match="no bundled network 'tonghui_flat'.*available: tonghui"):
        load_network(network="tonghui_flat")
