"""``watersupply map`` through click's CliRunner: outputs, results folders, bad input."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from watersupply.baseline import run_baseline
from watersupply.cli.main import cli
from watersupply.io import write_network


@pytest.fixture
def tiny_gpkg(tmp_path, tiny_net):
    return write_network(tiny_net, tmp_path / "tiny.gpkg")


@pytest.fixture
def tiny_results(tmp_path, tiny_net):
    out = tmp_path / "results"
    run_baseline(tiny_net, out_dir=out, make_map=False, with_audit=False)
    return out


def _payload(path):
    m = re.search(r'<script type="application/json" id="ws-data">(.*?)</script>', path.read_text(encoding="utf-8"),
                  flags=re.S)
    return json.loads(m.group(1))


def _invoke(*args):
    return CliRunner().invoke(cli, ["map", *map(str, args)])


def test_map_runs_the_baseline_and_writes_html_and_png(tmp_path, tiny_gpkg):
    out = tmp_path / "out"
    res = _invoke("--network", tiny_gpkg, "-o", out, "--png", "--lang", "en", "--duration-h", "24")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["map.html", "map.png"]
    assert "map.html" in res.output and "MB" in res.output
    data = _payload(out / "map.html")
    assert data["lang"] == "en" and data["text"]["mains"] == "Mains"
    assert data["pressure"]["hours"][-1] == 24  # the time slider covers the run
    assert (out / "map.png").read_bytes()[:4] == b"\x89PNG"


def test_map_from_a_results_folder_with_layers_and_audit(tmp_path, tiny_gpkg, tiny_results):
    pd.DataFrame({"id": ["V1", "C1"], "verdict": ["fail", "pass"], "network_verdict": ["fail", "pass"],
                  "network_reason": ["own well", ""]}).to_csv(tiny_results / "audit.csv", index=False)
    out = tmp_path / "out"
    res = _invoke("--network", tiny_gpkg, "--results", tiny_results, "-o", out, "--layers", "settlements,pipes",
                  "--lang", "zh", "--pipe-colour-by", "velocity")
    assert res.exit_code == 0, res.output
    data = _payload(out / "map.html")
    assert "nodes" not in data and "facilities" not in data and "pressure" not in data
    assert data["pipes"]["mode"] == "velocity"
    items = data["legends"]["settlements"]["items"]
    assert [items[i][1] for i in data["settlements"]["cls"]] == ["不达标", "达标"]
    assert data["settlements"]["cols"]["reason"] == ["own well", None]
    # the results.gpkg itself is accepted too
    res = _invoke("--network", tiny_gpkg, "--results", tiny_results / "results.gpkg", "-o", tmp_path / "o2")
    assert res.exit_code == 0, res.output


def test_results_of_another_network_are_refused(tmp_path, tiny_results):
    out = tmp_path / "out"
    res = _invoke("--results", tiny_results, "-o", out)  # the bundled Tonghui network
    assert res.exit_code == 2
    assert "layer 'nodes' does not match the network" in res.output and "come from another network" in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.parametrize("args, expect", [
    (["--lang", "fr"], "Invalid value for '--lang'"),
    (["--tiles", "gaode"], "Invalid value for '--tiles'"),
    (["--layers", "pipes,roads"], "--layers: unknown layer(s) 'roads'"),
    (["--layers", ","], "--layers is empty"),
    (["--pipe-colour-by", "age"], "Invalid value for '--pipe-colour-by'"),
    (["--tiles", "tianditu", "--tianditu-key", "bad key!"], "tianditu_key must be"),
    (["--layers", "district"], "'district' asked for but not in the data"),
    (["--results", "NOPE"], "no results found"),
    (["--audit", "NOPE.csv"], "file not found"),
    (["--duration-h", "0"], "--duration-h must be > 0"),
])
def test_bad_input_exit_2_no_traceback_nothing_written(tmp_path, tiny_gpkg, args, expect):
    out = tmp_path / "out"
    args = [a if a not in ("NOPE", "NOPE.csv") else str(tmp_path / a) for a in args]
    res = _invoke("--network", tiny_gpkg, "-o", out, *args)
    assert res.exit_code == 2, res.output
    assert expect in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_bad_audit_file(tmp_path, tiny_gpkg, tiny_results):
    bad = tmp_path / "audit.csv"
    bad.write_text("settlement,score\nV1,50\n", encoding="utf-8")
    res = _invoke("--network", tiny_gpkg, "--results", tiny_results, "--audit", bad, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "needs columns 'id' (or 'settlement_id') and 'verdict'" in res.output
    bad.write_text("id,verdict\nX9,pass\n", encoding="utf-8")
    res = _invoke("--network", tiny_gpkg, "--results", tiny_results, "--audit", bad, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "settlement id(s) 'X9'" in res.output
    assert not (tmp_path / "out").exists()


def test_tianditu_without_key_warns(tmp_path, tiny_gpkg, tiny_results):
    out = tmp_path / "out"
    res = _invoke("--network", tiny_gpkg, "--results", tiny_results, "--tiles", "tianditu", "-o", out)
    assert res.exit_code == 0, res.output
    assert "placeholder key" in res.output
    assert _payload(out / "map.html")["tiles"][0]["layers"][0]["url"].endswith("tk=YOUR_TIANDITU_KEY")


def test_map_of_an_inp_without_crs_is_schematic(tmp_path, tiny_net):
    from watersupply.model import to_wntr, write_inp

    inp = write_inp(to_wntr(tiny_net), tmp_path / "tiny.inp")
    out = tmp_path / "out"
    res = _invoke("--inp", inp, "-o", out, "--duration-h", "12", "--png", "--lang", "en")
    assert res.exit_code == 0, res.output
    assert any("not georeferenced" in n for n in _payload(out / "map.html")["notes"])
    assert (out / "map.png").is_file()
    res = _invoke("--inp", inp, "-o", tmp_path / "o2", "--tiles", "osm")
    assert res.exit_code == 2 and "cannot be drawn on a basemap" in res.output
    assert not (tmp_path / "o2").exists()
