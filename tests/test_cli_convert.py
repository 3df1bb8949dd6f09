"""``watersupply convert`` and ``--as-is`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import wntr
from click.testing import CliRunner

from watersupply.cli.main import cli

NET1 = Path(wntr.library.__path__[0]) / "networks" / "Net1.inp"


def test_convert_both_ways_with_check(tmp_path: Path) -> None:
    gpkg = tmp_path / "net1.gpkg"
    res = CliRunner().invoke(cli, ["convert", str(NET1), "-o", str(gpkg), "--crs", "EPSG:4545", "--check"])
    assert res.exit_code == 0, res.output
    assert gpkg.is_file() and "-> equivalent" in res.output and "largest head difference 0 m" in res.output
    inp = tmp_path / "net1.inp"
    res = CliRunner().invoke(cli, ["convert", str(gpkg), "-o", str(inp), "--units", "LPS"])
    assert res.exit_code == 0, res.output
    assert "LPS" in inp.read_text() and "[CONTROLS]" in inp.read_text()


def test_convert_bad_input_one_line_and_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.inp"
    bad.write_text(NET1.read_text().replace(" 21              \t700", " 21              \tseven", 1))
    out = tmp_path / "bad.gpkg"
    res = CliRunner().invoke(cli, ["convert", str(bad), "-o", str(out)])
    assert res.exit_code == 2
    assert "Error 202: illegal numeric value seven in [JUNCTIONS] section, line" in res.output
    assert "Traceback" not in res.output and not out.exists()
    res = CliRunner().invoke(cli, ["convert", str(NET1), "-o", str(tmp_path / "x.inp")])
    assert res.exit_code == 2 and "must be a .gpkg file" in res.output


def test_run_inp_lists_changes_once_and_as_is_keeps_the_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--inp", str(NET1), "-o", str(out), "--no-map"])
    assert res.exit_code == 0, res.output
    assert res.output.count("the analyses change the file's own model on purpose") == 1
    assert "the analyses change the file's own model" in (out / "report.md").read_text(encoding="utf-8")
    out2 = tmp_path / "as_is"
    res = CliRunner().invoke(cli, ["run", "--inp", str(NET1), "-o", str(out2), "--no-map", "--as-is"])
    assert res.exit_code == 0, res.output
    assert "on purpose" not in res.output
    res = CliRunner().invoke(cli, ["run", "-o", str(tmp_path / "t"), "--no-map", "--as-is", "--duration-h", "1"])
    assert res.exit_code == 2 and "--as-is applies to a network that carries its own EPANET model" in res.output
