"""Tests of ``watersupply criticality`` through click's CliRunner, on a network written to a temp dir."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from watersupply.cli.main import cli


@pytest.fixture
def gpkg(tiny_net: dict, tmp_path: Path) -> Path:
    from watersupply.io import write_network

    return write_network(tiny_net, tmp_path / "tiny.gpkg")


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, ["criticality", *args], catch_exceptions=False)


def test_writes_ranked_outputs(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = invoke("--network", str(gpkg), "--workers", "1", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "most critical pipes" in res.output and "topology" in res.output
    assert {p.name for p in out.iterdir()} == {"criticality.csv", "results.gpkg", "criticality_map.html"}
    csv = pd.read_csv(out / "criticality.csv")
    assert list(csv["rank"]) == list(range(1, len(csv) + 1))
    assert csv.iloc[0]["people_without_water"] == 3830  # every settlement hangs below T1
    assert {"settlements_zh", "settlements_en", "person_hours_without_water", "demand_not_served_m3",
            "worst_pressure_drop_m", "status"} <= set(csv.columns)
    layer = pyogrio.read_dataframe(out / "results.gpkg", layer="criticality")
    assert len(layer) == len(csv) and layer.crs is not None


def test_pipes_subset_and_no_map(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "o2"
    res = invoke("--network", str(gpkg), "--pipes", "B1,B2", "--workers", "1", "--no-map", "-o", str(out))
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(out / "criticality.csv")
    assert sorted(csv["id"]) == ["B1", "B2"]
    assert not (out / "criticality_map.html").exists()


def test_unknown_pipe_exit_2_nothing_written(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    res = invoke("--network", str(gpkg), "--pipes", "B1,B9", "--workers", "1", "-o", str(out))
    assert res.exit_code == 2
    assert "unknown pipe id 'B9'" in res.output and "closest valid ids" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_workers_zero_exit_2(gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    res = invoke("--network", str(gpkg), "--workers", "0", "-o", str(out))
    assert res.exit_code == 2
    assert "--workers must be >= 1, got 0" in res.output
    assert not out.exists()


def test_unreachable_scheduler_exit_2_within_10_s(gpkg: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    out = tmp_path / "never"
    t0 = time.perf_counter()
    res = invoke("--network", str(gpkg), "--scheduler", address, "-o", str(out))
    assert time.perf_counter() - t0 < 10.0
    assert res.exit_code == 2
    assert address in res.output and "dask scheduler" in res.output
    assert not out.exists()


def test_segments_without_valves_exit_2(gpkg: Path, tmp_path: Path) -> None:
    res = invoke("--network", str(gpkg), "--segments", "--workers", "1", "-o", str(tmp_path / "never"))
    assert res.exit_code == 2
    assert "no 'valves' layer" in res.output
    assert not (tmp_path / "never").exists()


def test_help_lists_options() -> None:
    res = CliRunner().invoke(cli, ["criticality", "--help"])
    assert res.exit_code == 0
    for opt in ("--pipes", "--segments", "--duration-h", "--workers", "--scheduler", "--network", "--inp", "-o"):
        assert opt in res.output
