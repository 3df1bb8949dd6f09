"""benchmarks/compare_outputs.py: finds what differs between two output folders, and nothing else."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from watersupply.io import write_csv, write_layers

_SPEC = importlib.util.spec_from_file_location(
    "compare_outputs", Path(__file__).resolve().parent.parent / "benchmarks" / "compare_outputs.py")
compare_outputs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare_outputs)


def _write(folder: Path, *, value: float = 1.25, name: str = "村一", x: float = 0.0) -> None:
    df = pd.DataFrame({"id": ["A", "B"], "name": [name, "社区"], "v": [value, float("nan")], "n": [3, 4]})
    write_csv(df, folder / "sub" / "table.csv", index=False)
    gdf = gpd.GeoDataFrame(df, geometry=[Point(x, 0.0), Point(1.0, 1.0)], crs="EPSG:4545")
    write_layers({"nodes": gdf, "plain": df}, folder / "results.gpkg")
    (folder / "report.md").write_text("anything", encoding="utf-8")


def test_identical_folders(tmp_path: Path, capsys):
    _write(tmp_path / "a")
    _write(tmp_path / "b")
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "identical" in capsys.readouterr().out


@pytest.mark.parametrize(("change", "expect"), [
    (dict(value=1.25 * (1 + 1e-6)), r"v: 1 value\(s\) differ"),
    (dict(name="村二"), r"name: 1 value\(s\) differ; A: '村一' -> '村二'"),
    (dict(x=0.5), r"layer 'nodes': geometry_wkb: 1 value\(s\) differ"),
])
def test_differences_are_named(tmp_path: Path, capsys, change, expect):
    _write(tmp_path / "a")
    _write(tmp_path / "b", **change)
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert re.search(expect, capsys.readouterr().out)


def test_tolerance_and_missing_files(tmp_path: Path, capsys):
    _write(tmp_path / "a")
    _write(tmp_path / "b", value=1.25 * (1 + 1e-12))  # below 1e-9 relative: equal
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    (tmp_path / "a" / "extra.csv").write_text("x\n1\n", encoding="utf-8")
    assert compare_outputs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "MISSING extra.csv: only in ref" in capsys.readouterr().out
