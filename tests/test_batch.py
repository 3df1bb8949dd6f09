"""scenario/batch.py: its per-process cache of networks and baselines is invalidated when a file changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from watersupply.io import write_network
from watersupply.scenario import batch
from watersupply.scenario.batch import clear_cache, run_scenario_files

SCENARIO = """\
name: more_demand
title_zh: 用水增加
title_en: More demand
network: net.gpkg
duration_h: 24
start: 0
events:
  - type: demand_change
    multiplier: 1.2
"""


def _run(folder: Path, out: Path) -> pd.DataFrame:
    [summary] = run_scenario_files([folder / "more_demand.yaml"], out=out, workers=1, make_map=False, age=False)
    assert "error" not in summary, summary
    return pd.read_csv(out / "more_demand" / "settlements.csv", index_col="id")


@pytest.fixture
def scenario_folder(tmp_path: Path, tiny_net: dict) -> Path:
    clear_cache()
    write_network(tiny_net, tmp_path / "net.gpkg")
    (tmp_path / "more_demand.yaml").write_text(SCENARIO, encoding="utf-8")
    yield tmp_path
    clear_cache()


def test_a_changed_network_file_gives_fresh_results(scenario_folder: Path, tiny_net: dict):
    first = _run(scenario_folder, scenario_folder / "out1")
    assert len(batch._NETS) == 1 and len(batch._BASES) == 1
    again = _run(scenario_folder, scenario_folder / "out2")   # unchanged file: served from the cache
    assert len(batch._NETS) == 1 and len(batch._BASES) == 1
    pd.testing.assert_frame_equal(first, again)

    # raise the plant's head by 20 m and rewrite the file in place: the next run must see it
    nodes = tiny_net["nodes"].copy()
    nodes.loc[nodes["id"] == "WTP", "head_m"] = nodes.loc[nodes["id"] == "WTP", "head_m"] + 20.0
    write_network({**tiny_net, "nodes": nodes}, scenario_folder / "net.gpkg")
    changed = _run(scenario_folder, scenario_folder / "out3")
    assert len(batch._NETS) == 2 and len(batch._BASES) == 2  # a new key each: path + mtime + size
    assert not changed["mean_pressure_m"].equals(first["mean_pressure_m"])

    # the same answer as a process that never saw the old file
    clear_cache()
    assert not batch._NETS and not batch._BASES
    fresh = _run(scenario_folder, scenario_folder / "out4")
    pd.testing.assert_frame_equal(changed, fresh)


def test_cache_is_bounded(monkeypatch):
    clear_cache()
    monkeypatch.setattr(batch, "CACHE_SIZE", 2)
    made = []
    for key in ("a", "b", "a", "c"):
        batch._cached(batch._NETS, key, lambda k=key: made.append(k) or k)
    assert made == ["a", "b", "c"]          # "a" was reused once
    assert list(batch._NETS) == ["a", "c"]  # "b", least recently used, was dropped
    clear_cache()
