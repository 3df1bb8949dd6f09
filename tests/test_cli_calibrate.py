"""``watersupply calibrate`` through click's CliRunner: outputs, summary, bad input."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from watersupply.calibration import demand_groups, make_synthetic_logs, roughness_groups
from watersupply.cli.main import cli
from watersupply.io import write_network

from test_calibrate import TRUTH, calib_net  # noqa: F401  (fixture)


@pytest.fixture
def case(tmp_path, calib_net):  # noqa: F811
    gpkg = write_network(calib_net, tmp_path / "calib.gpkg")
    groups = roughness_groups(calib_net, by="diameter") + demand_groups(calib_net, by="zone")
    logs, _ = make_synthetic_logs(calib_net, groups=groups, truth=TRUTH, n_loggers=6, flow_links=["M1", "MB"], seed=11)
    logs_csv = tmp_path / "logs.csv"
    logs.to_csv(logs_csv, index=False)
    return gpkg, logs_csv


def test_calibrate_writes_outputs(tmp_path, case):
    gpkg, logs = case
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["calibrate", "--network", str(gpkg), "--observations", str(logs),
                                   "--fit-window", "0:32", "--validate-window", "32:48", "--workers", "1",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("calibrated.inp", "calibrated.gpkg", "parameters.csv", "fit.csv", "residuals.png", "report.md"):
        assert (out / name).is_file(), name
    params = pd.read_csv(out / "parameters.csv").set_index("group")
    assert {"initial", "fitted", "lower", "upper", "ci95_low", "ci95_high"} <= set(params.columns)
    assert params.loc["C:DN80-130", "factor"] == pytest.approx(TRUTH["C:DN80-130"], rel=0.05)
    fit = pd.read_csv(out / "fit.csv")
    assert set(fit["window"]) == {"fit", "validate"} and {"rmse", "bias", "within_0.5m", "within_1m"} <= set(fit.columns)
    sensors = gpd.read_file(out / "calibrated.gpkg", layer="sensors")
    assert len(sensors) == 8 and sensors.crs.to_epsg() == 4545
    pipes = gpd.read_file(out / "calibrated.gpkg", layer="pipes").set_index("id")
    assert pipes.loc["A-1", "roughness_c"] == pytest.approx(130 * params.loc["C:DN80-130", "factor"])
    assert "calibration" in res.output and "within ±0.5 m" in res.output
    assert "identifiable (findings):" in res.output
    for g in params.index[~params["finding"].astype(bool)]:  # every group that is not a finding is named
        assert f"{g}: not identifiable from these data (confounded with" in res.output.replace("\n", " ")


@pytest.mark.parametrize("args, match", [
    (["--fit-window", "0-32"], "--fit-window must be H0:H1"),
    (["--fit-window", "40:30"], "fit window 40:30 must satisfy"),
    (["--roughness-by", "age"], "cannot group roughness by 'age'"),
    (["--max-se", "2"], "--max-se must be between 0 and 1"),
    (["--tolerance", "0"], "--tolerance must be between 0 and 1"),
    (["--max-correlation", "1.5"], "--max-correlation must be in (0, 1]"),
])
def test_bad_options_exit_2(tmp_path, case, args, match):
    gpkg, logs = case
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["calibrate", "--network", str(gpkg), "--observations", str(logs), "-o", str(out),
                                   *args])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_bad_observation_file_names_line(tmp_path, case):
    gpkg, _ = case
    bad = tmp_path / "bad.csv"
    bad.write_text("time,element,quantity,value,unit\n0,A1,pressure,30,m\n1,NOPE,pressure,30,m\n", encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["calibrate", "--network", str(gpkg), "--observations", str(bad), "-o", str(out)])
    assert res.exit_code == 2
    assert "line 3: pressure sensor on 'NOPE', which is not a node" in res.output
    assert "Traceback" not in res.output and not out.exists()
    res = CliRunner().invoke(cli, ["calibrate", "--network", str(gpkg), "--observations", str(tmp_path / "no.csv")])
    assert res.exit_code == 2 and "observation file not found" in res.output
