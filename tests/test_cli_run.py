"""``watersupply run`` through click's CliRunner: outputs, summary, bad input."""

from __future__ import annotations

import geopandas as gpd
import pytest
from click.testing import CliRunner

from watersupply.cli.main import cli
from watersupply.io import write_network


@pytest.fixture
def tiny_gpkg(tmp_path, tiny_net):
    return write_network(tiny_net, tmp_path / "tiny.gpkg")


def test_run_writes_outputs_and_prints_summary(tmp_path, tiny_gpkg):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", "--network", str(tiny_gpkg), "-o", str(out), "--duration-h", "24"])
    assert res.exit_code == 0, res.output
    for name in ("results.gpkg", "summary.csv", "report.md", "map.html"):
        assert (out / name).is_file()
    assert "Soundness checks" in res.output and str(out) in res.output
    assert "村一" in res.output


@pytest.mark.parametrize("case, expect", [
    ("missing", "file not found"),
    ("nolayer", "layer 'pipes' is missing"),
    ("nocolumn", "missing column(s) 'roughness_c'"),
    ("badnode", "pipe 'B1' has to_node 'NOPE'"),
])
def test_bad_network_exit_2_no_traceback_nothing_written(tmp_path, tiny_net, case, expect):
    path = tmp_path / f"{case}.gpkg"
    if case == "nolayer":
        write_network({k: v for k, v in tiny_net.items() if k != "pipes"}, path)
    elif case == "nocolumn":
        write_network({**tiny_net, "pipes": tiny_net["pipes"].drop(columns=["roughness_c"])}, path)
    elif case == "badnode":
        pipes = tiny_net["pipes"].copy()
        pipes.loc[pipes["id"] == "B1", "to_node"] = "NOPE"
        write_network({**tiny_net, "pipes": pipes}, path)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", "--network", str(path), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert expect in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_bad_duration(tmp_path, tiny_gpkg):
    res = CliRunner().invoke(cli, ["run", "--network", str(tiny_gpkg), "--duration-h", "-1", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--duration-h must be > 0" in res.output


@pytest.mark.slow
def test_run_on_bundled_tonghui(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["run"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "tonghui"
    pipes = gpd.read_file(out / "results.gpkg", layer="pipes")
    assert len(pipes) == len(gpd.read_file(out / "results.gpkg", layer="pipes"))
    assert "max_velocity_ms" in pipes
    assert "FAIL" not in res.output
