"""Hydraulic trouble is reported with element ids and hours, not swallowed and not a crash."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
from click.testing import CliRunner
from shapely.geometry import LineString, Point

from conftest import X0, Y0
from watersupply import metrics
from watersupply.cli.main import cli
from watersupply.io import write_network
from watersupply.simulation import diagnose_topology, run_simulation
from watersupply.model import to_wntr


def _with_island(net: dict) -> dict:
    """Add a demand node J7 (100 people) joined only to J8: no path to any source."""
    n, p = net["nodes"], net["pipes"]
    add = gpd.GeoDataFrame([
        dict(id="J7", kind="junction", elevation_m=230, base_demand_m3d=50, population=100, settlement_id="V1",
             pattern="rural", zone="Z", demand_category="domestic", geometry=Point(X0 + 2000, Y0)),
        dict(id="J8", kind="junction", elevation_m=230, base_demand_m3d=0, population=0, zone="Z",
             demand_category="none", geometry=Point(X0 + 2100, Y0))], crs=n.crs)
    pipe = gpd.GeoDataFrame([dict(id="X1", from_node="J7", to_node="J8", diameter_mm=100, roughness_c=130,
                                  length_m=100, material="PE", zone="Z", status="OPEN", **{"class": "branch"},
                                  geometry=LineString([(X0 + 2000, Y0), (X0 + 2100, Y0)]))], crs=n.crs)
    return {**net, "nodes": gpd.GeoDataFrame(pd.concat([n, add], ignore_index=True), crs=n.crs),
            "pipes": gpd.GeoDataFrame(pd.concat([p, pipe], ignore_index=True), crs=n.crs)}


def test_disconnected_demand_is_named_and_counted_without_water(tiny_net):
    net = _with_island(tiny_net)
    assert diagnose_topology(to_wntr(net))["disconnected_demand_nodes"] == ["J7"]
    res = run_simulation(net, duration_h=6, age=False)
    assert any("cut off from every source" in w and "J7" in w for w in res.warnings)
    people = metrics.people_without_water(res, net, by="node")
    assert (people["J7"] == 100).all()
    assert (people.drop(columns=["J7"]) == 0).all().all()


def test_closed_off_reservoir_is_reported(tiny_net):
    pipes = tiny_net["pipes"].copy()
    pipes.loc[pipes["id"].isin(["M2", "M3"]), "status"] = "CLOSED"
    res = run_simulation({**tiny_net, "pipes": pipes}, duration_h=4, age=False)
    text = " ".join(res.warnings)
    assert "closed off" in text and "T1" in text
    assert "negative pressure" in text and "hour" in text


def test_cli_reports_trouble_and_still_writes_the_report(tmp_path, tiny_net):
    path = write_network(_with_island(tiny_net), tmp_path / "island.gpkg")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", "--network", str(path), "-o", str(out), "--duration-h", "6", "--no-map"])
    assert res.exit_code == 0, res.output  # the user asked for nothing impossible
    assert "J7" in res.output and "warning" in res.output.lower()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "J7" in report and "Hydraulic warnings" in report
    assert "negative pressure" in report and "hour" in report
