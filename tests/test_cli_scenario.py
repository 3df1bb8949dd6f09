"""``watersupply scenario list|validate|run`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from watersupply.cli.main import cli
from watersupply.io import write_network


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def small_files(tiny_net, tmp_path) -> Path:
    """The tiny network as a GeoPackage and three scenario files beside it."""
    write_network(tiny_net, tmp_path / "tiny.gpkg")
    common = dict(title_zh="测试", network="tiny.gpkg", duration_h=24)
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump(dict(
        name="cut", title_en="pump cut", events=[dict(type="pump_station_outage", station="PS1", at_h=2, for_h=20)],
        **common), allow_unicode=True), encoding="utf-8")
    (tmp_path / "hot.yaml").write_text(yaml.safe_dump(dict(
        name="hot", title_en="heat", events=[dict(type="demand_change", multiplier=1.3)], **common),
        allow_unicode=True), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(dict(
        name="bad", title_en="bad", events=[dict(type="pipe_break", pipe="M44")], **common),
        allow_unicode=True), encoding="utf-8")
    return tmp_path


def test_list_shows_shipped_scenarios(runner):
    res = runner.invoke(cli, ["scenario", "list"])
    assert res.exit_code == 0, res.output
    for name in ("baseline", "ps3_power_cut", "plant_outage", "heat_wave", "fire_flow_c1", "main_break",
                 "food_park_expansion", "eastern_new_city_plant"):
        assert name in res.output
    assert "Eastern New City" in res.output


def test_validate_ok_and_bad(runner, small_files):
    res = runner.invoke(cli, ["scenario", "validate", str(small_files / "cut.yaml"), str(small_files / "hot.yaml")])
    assert res.exit_code == 0, res.output
    assert res.output.count("ok:") == 2
    res = runner.invoke(cli, ["scenario", "validate", str(small_files / "bad.yaml")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "bad.yaml:" in res.output and "events[0].pipe: unknown pipe 'M44'" in res.output
    assert len([ln for ln in res.output.splitlines() if ln.startswith("Error")]) == 1


def test_validate_shipped_against_another_network_names_the_ids(runner, small_files):
    res = runner.invoke(cli, ["scenario", "validate", "ps3_power_cut", "--network", str(small_files / "tiny.gpkg")])
    assert res.exit_code == 2
    assert "events[0].station: unknown pump station 'PS3'; closest valid ids: 'PS1'" in res.output


def test_validate_malformed_yaml(runner, tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nevents:\n  - type: plant_outage\n    at_h: [1\n", encoding="utf-8")
    res = runner.invoke(cli, ["scenario", "validate", str(p)])
    assert res.exit_code == 2 and "broken.yaml:" in res.output and "malformed YAML" in res.output
    assert "Traceback" not in res.output


def test_run_in_parallel_writes_each_scenario(runner, small_files):
    out = small_files / "out"
    res = runner.invoke(cli, ["scenario", "run", str(small_files / "cut.yaml"), str(small_files / "hot.yaml"),
                              "--workers", "2", "-o", str(out), "--no-age"])
    assert res.exit_code == 0, res.output
    for name in ("cut", "hot"):
        for f in ("results.gpkg", "diff.csv", "settlements.csv", "report.md", "map.html", "scenario.yaml"):
            assert (out / name / f).is_file(), (name, f)
    st = pd.read_csv(out / "cut" / "settlements.csv", index_col="id")
    assert st.loc["C1", "person_hours_without_water"] > 0 and bool(st.loc["C1", "downstream"])
    assert "person-hours without water" in res.output


def test_run_with_a_bad_file_writes_nothing(runner, small_files):
    out = small_files / "out"
    res = runner.invoke(cli, ["scenario", "run", str(small_files / "cut.yaml"), str(small_files / "bad.yaml"),
                              "-o", str(out)])
    assert res.exit_code == 2
    assert "unknown pipe 'M44'" in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.parametrize("args, match", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--network", "a.gpkg", "--inp", "b.inp"], "either --network or --inp"),
    ([], "give scenario files"),
])
def test_run_bad_options(runner, args, match):
    res = runner.invoke(cli, ["scenario", "run", *args] + (["baseline"] if args and args[0] == "--workers" else []))
    assert res.exit_code == 2 and match in res.output


def test_unknown_scenario_name(runner):
    res = runner.invoke(cli, ["scenario", "run", "ps3_powercut"])
    assert res.exit_code == 2 and "closest valid ids: 'ps3_power_cut'" in res.output


@pytest.mark.slow
def test_run_shipped_ps3_power_cut_on_tonghui(runner, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(cli, ["scenario", "run", "ps3_power_cut", "-o", str(out), "--no-age"])
    assert res.exit_code == 0, res.output
    folder = out / "ps3_power_cut"
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "3号泵站" in report and "## 与基准比较 Change from the baseline" in report
    diff = pd.read_csv(folder / "diff.csv", index_col="id")
    assert diff.loc["V2", "delta_person_hours_without_water"] > 0
    assert (diff.drop(index=["V2", "V5"])["delta_person_hours_without_water"] == 0).all()
    assert (folder / "map.html").stat().st_size > 10_000
