"""Tests of ``watersupply design`` through Click's runner, on a tiny INP file written in a temp folder."""

from __future__ import annotations

import pandas as pd
import pytest
import wntr
from click.testing import CliRunner

from test_design import MIN_P, SIZES_MM, UNIT_COST, booster_model, enumerate_tree, tree_model
from watersupply.cli.main import cli


@pytest.fixture
def tree_files(tmp_path):
    inp = tmp_path / "tree.inp"
    wntr.network.write_inpfile(tree_model(), str(inp), units="LPS")
    costs = tmp_path / "costs.csv"
    pd.DataFrame({"diameter_mm": SIZES_MM, "unit_cost_usd_per_m": UNIT_COST}).to_csv(costs, index=False)
    return inp, costs


def test_design_inp_writes_outputs_that_check_out(tree_files, tmp_path):
    inp, costs = tree_files
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["design", "--inp", str(inp), "--candidates", str(costs), "--min-pressure",
                                   str(MIN_P), "--pop-size", "20", "--generations", "15", "--seed", "3",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Full EPANET check: feasible" in res.output
    for name in ("designed.inp", "designed.gpkg", "works.csv", "design_summary.csv", "pressure_check.csv",
                 "report.md"):
        assert (out / name).is_file()
    best = min(d for d in enumerate_tree() if d[1] >= 0)
    summary = pd.read_csv(out / "design_summary.csv")
    assert summary.loc[0, "total_cost"] == pytest.approx(best[0]) and bool(summary.loc[0, "feasible"])
    # independent check: re-simulate designed.inp and recompute the cost from the table
    wn = wntr.network.WaterNetworkModel(str(out / "designed.inp"))
    unit = dict(zip(SIZES_MM, UNIT_COST))
    cost = sum(wn.get_link(p).length * unit[round(wn.get_link(p).diameter * 1000)] for p in wn.pipe_name_list)
    assert cost == pytest.approx(best[0])
    sim = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "chk"))
    assert sim.node["pressure"][wn.junction_name_list].min().min() >= MIN_P - 1e-6
    works = pd.read_csv(out / "works.csv")
    assert {"element", "old_diameter_mm", "new_diameter_mm", "length_m", "unit_cost_usd_per_m",
            "cost_usd"} <= set(works.columns)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "总造价 Total cost" in report and "可行 feasible" in report


def test_design_pareto_png(tree_files, tmp_path):
    inp, costs = tree_files
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["design", "--inp", str(inp), "--candidates", str(costs), "--min-pressure",
                                   str(MIN_P), "--pop-size", "12", "--generations", "6", "--pareto", "-o", str(out)])
    assert res.exit_code == 0, res.output
    front = pd.read_csv(out / "pareto.csv")
    assert len(front) >= 2 and (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, match", [
    (["--min-pressure", "100"], r"infeasible: .*binding: J2"),
    (["--min-pressure", "25", "--pipes", "P1,P9"], r"candidate pipe 'P9'"),
    (["--min-pressure", "25", "--action", "replace", "--candidates", "BAD"], r"BAD: candidate table not found"),
    ([], r"give a scenario .* or a pressure target"),
    (["--min-pressure", "25", "--max-velocity", "0"], r"--max-velocity must be > 0"),
    (["--min-pressure", "25", "--max-evaluations", "0"], r"--max-evaluations must be ≥ 1"),
])
def test_design_bad_input_one_line_exit_2(tree_files, tmp_path, args, match):
    inp, costs = tree_files
    base = ["design", "--inp", str(inp)]
    if "--candidates" not in args:
        base += ["--candidates", str(costs)]
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, base + args + ["--pop-size", "8", "--generations", "2", "-o", str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("Error")]
    assert len(lines) == 1 and "Traceback" not in res.output
    import re

    assert re.search(match, lines[0]), lines[0]
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_design_bad_cost_table_names_the_row(tree_files, tmp_path):
    inp, _costs = tree_files
    bad = tmp_path / "bad.csv"
    bad.write_text("diameter_mm,unit_cost_usd_per_m\n100,20\n150,-3\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["design", "--inp", str(inp), "--candidates", str(bad), "--min-pressure", "25"])
    assert res.exit_code == 2 and "row 3" in res.output and "unit_cost_usd_per_m" in res.output


def test_design_unknown_scenario(tmp_path):
    res = CliRunner().invoke(cli, ["design", "food_park_expanson", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "food_park_expansion" in res.output


def test_design_on_a_network_geopackage(tmp_path):
    from test_design import scenario_net
    from watersupply.io import write_network

    gpkg = write_network(scenario_net(), tmp_path / "tiny.gpkg")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["design", "--network", str(gpkg), "--candidates", "di", "--min-pressure", "15",
                                   "--action", "replace", "--pop-size", "10", "--generations", "5", "--restarts", "1",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    import geopandas as gpd

    works = gpd.read_file(out / "designed.gpkg", layer="works")
    summary = pd.read_csv(out / "design_summary.csv")
    assert bool(summary.loc[0, "feasible"]) and summary.loc[0, "currency"] == "yuan"
    assert len(works) == summary.loc[0, "pipes_laid"] and works.crs is not None


def test_design_inp_is_pipes_only_unless_pumps_are_named(tmp_path):
    inp = tmp_path / "booster.inp"
    wntr.network.write_inpfile(booster_model(), str(inp), units="LPS")
    costs = tmp_path / "costs.csv"
    pd.DataFrame({"diameter_mm": [150, 200, 250], "unit_cost_yuan_per_m": [300, 420, 580]}).to_csv(costs, index=False)
    args = ["design", "--inp", str(inp), "--candidates", str(costs), "--min-pressure", "30", "--pipes", "MAIN",
            "--action", "replace", "--pop-size", "10", "--generations", "5", "--restarts", "1"]
    res = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "a")])
    assert res.exit_code == 2 and "infeasible" in res.output and "binding: T" in res.output
    res = CliRunner().invoke(cli, args + ["--pumps", "auto"])
    assert res.exit_code == 2 and "needs a scenario" in res.output
    out = tmp_path / "b"
    res = CliRunner().invoke(cli, args + ["--pumps", "all", "-o", str(out)])
    assert res.exit_code == 0, res.output
    works = pd.read_csv(out / "works.csv")
    pump = works[works["action"].str.startswith("pump")]
    assert list(pump["element"]) == ["P1"] and pump["cost_yuan"].iloc[0] > 0 and "new_size" in works
    summary = pd.read_csv(out / "design_summary.csv")
    assert summary.loc[0, "total_cost"] == pytest.approx(works["cost_yuan"].sum()) and summary.loc[0, "pump_works"] == 1
    wn = wntr.network.WaterNetworkModel(str(out / "designed.inp"))  # re-simulated independently
    sim = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "chk"))
    assert sim.node["pressure"]["T"].min() >= 30.0 - 1e-6
