"""``watersupply audit`` through click's CliRunner: outputs, overrides, scenarios, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from watersupply.cli.main import cli
from watersupply.io import write_network


@pytest.fixture
def tiny_gpkg(tmp_path, tiny_net):
    return write_network(tiny_net, tmp_path / "tiny.gpkg")


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["audit", *args])


def test_audit_writes_outputs_and_prints_verdicts(tmp_path, tiny_gpkg):
    out = tmp_path / "out"
    res = _invoke("--network", str(tiny_gpkg), "-o", str(out), "--duration-h", "48")
    assert res.exit_code == 0, res.output
    for name in ("audit.csv", "audit_sources.csv", "audit.md", "audit.gpkg"):
        assert (out / name).is_file(), name
    csv = pd.read_csv(out / "audit.csv", index_col="id")
    assert list(csv.index) == ["V1", "C1"]
    assert csv.loc["C1", "service_head_m"] == 16.0  # community, 3 storeys: GB 50013
    assert "村一" in res.output and "同网" in res.output and "pass" in res.output
    assert "Overridden" not in res.output
    assert "全部为默认值 All defaults" in (out / "audit.md").read_text(encoding="utf-8")


def test_tariff_options_and_config_are_applied_and_reported(tmp_path, tiny_gpkg):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("thresholds:\n  other_cost_yuan_m3: 2.5\n  water_tariff_yuan_m3: 9.9\n", encoding="utf-8")
    out = tmp_path / "out"
    res = _invoke("--network", str(tiny_gpkg), "-o", str(out), "--config", str(cfg), "--tariff", "2.0",
                  "--electricity-tariff", "1.1")
    assert res.exit_code == 0, res.output
    assert "water_tariff_yuan_m3 2.35 → 2" in res.output and "other_cost_yuan_m3 1.2 → 2.5" in res.output
    csv = pd.read_csv(out / "audit.csv", index_col="id")
    assert np.allclose(csv["tariff_yuan_m3"], 2.0)  # --tariff wins over the file
    assert np.allclose(csv["energy_yuan_m3"], csv["kwh_per_m3"] * 1.1)
    assert (csv["price_verdict"] != "pass").all()  # 2.5 ¥/m³ of other costs alone exceed the tariff
    md = (out / "audit.md").read_text(encoding="utf-8")
    assert "已覆盖 Overridden: " in md and "electricity_tariff_yuan_kwh 0.65 → 1.1" in md


@pytest.mark.parametrize("case, args, expect", [
    ("negative tariff", ["--tariff", "-1"], "--tariff (water_tariff_yuan_m3) must be a number >= 0, got -1.0"),
    ("negative power tariff", ["--electricity-tariff", "-0.2"], "--electricity-tariff"),
    ("unknown threshold", ["--config", "{cfg}"], "cfg.yaml: unknown threshold 'water_tarif'"),
    ("missing config", ["--config", "{tmp}/none.yaml"], "none.yaml: config file not found"),
    ("duration with scenario", ["--scenario", "x.yaml", "--duration-h", "5"], "--duration-h applies to the baseline"),
    ("unknown scenario", ["--scenario", "no_such_scenario"], "no_such_scenario"),
])
def test_bad_options_exit_2_no_traceback_nothing_written(tmp_path, tiny_gpkg, case, args, expect):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("thresholds:\n  water_tarif: 3\n", encoding="utf-8")
    out = tmp_path / "out"
    args = [a.format(cfg=cfg, tmp=tmp_path) for a in args]
    res = _invoke("--network", str(tiny_gpkg), "-o", str(out), *args)
    assert res.exit_code == 2, res.output
    assert expect in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("population, expect", [
    (None, "settlement 'V1' has population"),   # caught when the GeoPackage is read
    (0, "settlement 'V1' (村一) has population 0"),  # caught by the audit before simulating
])
def test_settlement_without_population_exit_2(tmp_path, tiny_net, population, expect):
    st = tiny_net["settlements"].copy()
    st["population"] = st["population"].astype(float)
    st.loc[st["id"] == "V1", "population"] = np.nan if population is None else population
    path = write_network({**tiny_net, "settlements": st}, tmp_path / "bad.gpkg")
    out = tmp_path / "out"
    res = _invoke("--network", str(path), "-o", str(out))
    assert res.exit_code == 2, res.output
    assert expect in res.output and "population" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_scenario_audit_reports_what_dropped_and_why(tmp_path, tiny_gpkg):
    sc = tmp_path / "cut.yaml"
    sc.write_text("name: tiny_ps1_cut\ntitle_zh: 泵站停电\ntitle_en: PS1 power cut\ndescription: test\n"
                  "network: tiny.gpkg\nduration_h: 48\nstart: 0\nevents:\n"
                  "  - type: pump_station_outage\n    station: PS1\n    at_h: 20\n    for_h: 20\n",
                  encoding="utf-8")
    out = tmp_path / "out"
    res = _invoke("--scenario", str(sc), "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "Verdicts dropped against the baseline: V1 (pressure), C1 (pressure)" in res.output
    changes = pd.read_csv(out / "audit_changes.csv", index_col="id")
    assert list(changes["dropped"]) == ["pressure", "pressure"]
    md = (out / "audit.md").read_text(encoding="utf-8")
    assert "(tiny_ps1_cut)" in md.splitlines()[0]
    assert "reservoir T1 empty" in md and "pump station PS1 not pumping" in md


def test_bad_scenario_file_exit_2(tmp_path, tiny_gpkg):
    sc = tmp_path / "bad.yaml"
    sc.write_text("name: bad\ntitle_zh: 坏\ntitle_en: bad\nduration_h: 48\nnetwork: tiny.gpkg\nevents:\n"
                  "  - type: pump_station_outage\n    station: PS9\n    at_h: 1\n", encoding="utf-8")
    out = tmp_path / "out"
    res = _invoke("--scenario", str(sc), "-o", str(out))
    assert res.exit_code == 2, res.output
    assert "PS9" in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.slow
def test_audit_on_bundled_tonghui(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _invoke("--duration-h", "24")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "tonghui"
    csv = pd.read_csv(out / "audit.csv", index_col="id")
    assert len(csv) == 11 and csv["verdict"].isin(["pass", "warn", "fail"]).all()
    assert "思南村" in res.output and "Audit took" in res.output
