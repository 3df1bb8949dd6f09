"""``watersupply zones`` through click's CliRunner: outputs, --apply, the EPANET check, bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from test_zones import hillside
from watersupply.cli.main import cli
from watersupply.io import read_network, write_network


@pytest.fixture(scope="module")
def hill_gpkg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("net") / "hill.gpkg"
    write_network(hillside(loop=True), path)
    return path


def _run(*args: str):
    return CliRunner().invoke(cli, ["zones", *args])


def test_zones_apply_writes_the_zoned_network(tmp_path, hill_gpkg):
    out = tmp_path / "z"
    res = _run("--network", str(hill_gpkg), "-o", str(out), "--apply")
    assert res.exit_code == 0, res.output
    assert "4 prv device(s), 1 boundary pipe(s) closed" in res.output and "EPANET check: passed" in res.output
    for name in ("zones.gpkg", "zones.csv", "zone_devices.csv", "zone_nodes.csv", "zone_check.csv",
                 "zones_report.md", "zoned.gpkg", "zoned.inp"):
        assert (out / name).is_file(), name
    assert [n for n, _ in pyogrio.list_layers(out / "zones.gpkg")] == ["zones", "zone_devices", "zone_nodes"]
    zones = pd.read_csv(out / "zones.csv")
    assert len(zones) == 5 and zones["max_static_m"].max() == pytest.approx(40.0)
    check = pd.read_csv(out / "zone_check.csv", index_col=0)
    assert check["static_ok"].all() and check["service_ok"].all() and len(check) == 14
    zoned = read_network(out / "zoned.gpkg")
    assert len(zoned["control_valves"]) == 4 and len(zoned["zones"]) == 5
    assert zoned["pipes"].set_index("id").at["L1", "status"] == "CLOSED"
    inp = (out / "zoned.inp").read_text(encoding="utf-8")
    assert inp.count(" PRV ") == 4
    report = (out / "zones_report.md").read_text(encoding="utf-8")
    assert "GB 50015-2019" in report and "verdict: PASSED" in report and "| L1 |" in report
    assert "designed zones with at most 2 taps: 0" in report


def test_zones_without_apply_or_check(tmp_path, hill_gpkg):
    out = tmp_path / "z"
    res = _run("--network", str(hill_gpkg), "-o", str(out), "--no-check", "--device", "break_tank",
               "--limit", "rural_max_static_head_m=50")
    assert res.exit_code == 0, res.output
    assert not (out / "zoned.gpkg").exists() and not (out / "zone_check.csv").exists()
    dev = pd.read_csv(out / "zone_devices.csv")
    assert (dev["device"] == "break_tank").all() and len(dev) == 3  # 50 m: zones span 35 m of ground
    assert "overridden" in (out / "zones_report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("args, expect", [
    (["--device", "valve"], "Invalid value for '--device'"),
    (["--kind", "town"], "Invalid value for '--kind'"),
    (["--limit", "rural_max_static_m=30"], "unknown threshold 'rural_max_static_m'"),
    (["--limit", "rural_max_static_head_m"], "give NAME=VALUE"),
    (["--limit", "rural_max_static_head_m=high"], "is not a number"),
    (["--margin", "-1"], "Invalid value for '--margin'"),
])
def test_bad_options_exit_2(tmp_path, hill_gpkg, args, expect):
    out = tmp_path / "o"
    res = _run("--network", str(hill_gpkg), "-o", str(out), "--no-check", *args)
    assert res.exit_code == 2 and expect in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()


def test_network_without_elevations_exits_2(tmp_path):
    net = hillside()
    net["nodes"]["elevation_m"] = net["nodes"]["elevation_m"].astype(float)
    net["nodes"].loc[2, "elevation_m"] = float("nan")
    path = tmp_path / "noelev.gpkg"
    write_network(net, path)
    res = _run("--network", str(path), "-o", str(tmp_path / "o"))
    assert res.exit_code == 2 and "elevation_m" in res.output and "Traceback" not in res.output, res.output
