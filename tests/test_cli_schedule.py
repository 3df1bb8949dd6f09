"""``watersupply schedule`` through click's CliRunner: outputs, the 同价 recomputation, bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from test_schedule import one_pump_one_tank
from watersupply.cli.main import cli
from watersupply.io import write_network


@pytest.fixture(scope="module")
def pump_gpkg(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("net") / "one_pump.gpkg"
    write_network(one_pump_one_tank(settlement=True), path)
    return path


def _run(*args: str):
    return CliRunner().invoke(cli, ["schedule", *args])


def test_schedule_writes_every_output(tmp_path, pump_gpkg):
    out = tmp_path / "sched"
    res = _run("--network", str(pump_gpkg), "-o", str(out), "--days", "2")
    assert res.exit_code == 0, res.output
    assert "saved" in res.output and "Checks: all passed" in res.output
    for name in ("schedule.csv", "scheduled.inp", "scheduled.gpkg", "schedule_summary.csv", "cost_to_serve.csv",
                 "schedule_checks.csv", "schedule_iterations.csv", "schedule_PS1.png", "schedule_report.md"):
        assert (out / name).is_file(), name
    sched = pd.read_csv(out / "schedule.csv", index_col=0)
    assert len(sched) == 24 and {"period", "price_yuan_kwh", "P1", "P2"} <= set(sched.columns)
    assert (sched["P2"] == 0).all()
    summary = pd.read_csv(out / "schedule_summary.csv", index_col=0)
    assert list(summary.index) == ["PS1", "total"]
    assert summary.loc["total", "optimised_cost_yuan_day"] < summary.loc["total", "baseline_cost_yuan_day"]
    cost = pd.read_csv(out / "cost_to_serve.csv", index_col=0)
    assert "V1" in cost.index
    assert cost.loc["V1", "energy_yuan_m3_after"] < cost.loc["V1", "energy_yuan_m3_before"]
    assert cost.loc["V1", "price_verdict_after"] in ("pass", "warn", "fail")
    import pyogrio
    layers = [n for n, _ in pyogrio.list_layers(out / "scheduled.gpkg")]
    assert {"nodes", "pumps", "pump_schedule", "schedule_controls"} <= set(layers)


@pytest.mark.parametrize("args, expect", [
    (["--max-starts", "0"], "Invalid value for '--max-starts'"),
    (["--days", "1"], "Invalid value for '--days'"),
])
def test_bad_options_exit_2(tmp_path, pump_gpkg, args, expect):
    out = tmp_path / "o"
    res = _run("--network", str(pump_gpkg), "-o", str(out), *args)
    assert res.exit_code == 2 and expect in res.output
    assert not out.exists()


def test_bad_tariff_exit_2_one_line_nothing_written(tmp_path, pump_gpkg):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ntitle_zh: 测试\ntitle_en: t\nsource: s\nassumed: true\nperiods:\n"
                   "  - {kind: valley, price_yuan_kwh: 0.2, hours: ['00:00-08:00']}\n", encoding="utf-8")
    out = tmp_path / "o"
    res = _run("--network", str(pump_gpkg), "--tariff", str(bad), "-o", str(out))
    assert res.exit_code == 2
    assert "no period covers 08:00-09:00" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()
