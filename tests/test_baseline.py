"""The Tonghui baseline is hydraulically sound; outputs are complete and reproducible."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from watersupply import metrics
from watersupply.baseline import network_facts, run_baseline


def test_tonghui_baseline_is_sound(tonghui_baseline, tonghui_net):
    """Recompute each soundness figure from the raw results, not from the summary."""
    res = tonghui_baseline.result
    assert float(res.hours.max()) == 72.0
    ids = metrics.demand_nodes(tonghui_net)
    p = res.pressure[ids]
    assert (p >= 0).all().all(), "negative pressure at a demand node"
    sh = metrics.service_heads(tonghui_net)
    assert p.ge(sh, axis=1).to_numpy().mean() >= 0.97
    fac = tonghui_net["facilities"].set_index("id")
    for tank in [f"R{i}" for i in range(1, 10)]:
        lv = res.tank_level[tank]
        assert lv.min() > fac.loc[tank, "min_level_m"] + 0.05, f"{tank} empties"
        assert abs(lv.loc[72.0] - lv.loc[24.0]) <= 0.10 * lv.loc[24.0], f"{tank} does not cycle"
    mains = tonghui_net["pipes"].loc[tonghui_net["pipes"]["class"] == "main", "id"]
    assert res.velocity[mains].max().max() <= 2.5
    cl = res.chlorine.loc[res.hours >= 48, ids].min()
    assert (cl >= 0.05).mean() >= 0.95
    assert tonghui_baseline.soundness["passed"].all()


def test_settlement_summary_covers_all_eleven(tonghui_baseline):
    st = tonghui_baseline.settlements
    assert len(st) == 11
    assert st["population"].sum() == tonghui_baseline.net["settlements"]["population"].sum()
    assert st[["min_pressure_m", "min_chlorine_mgL", "max_age_h"]].notna().all().all()
    # villages at the end of cascaded lifts have older water than the communities
    assert st.loc[st["kind"] == "village", "max_age_h"].min() > st.loc[st["kind"] == "community", "max_age_h"].max()


def test_network_facts_reproduce_the_source(tonghui_net):
    f = network_facts(tonghui_net)
    assert f["水厂 plants"] == 1 and f["泵站 pump stations"] == 7 and f["水池 reservoirs"] == 9
    assert f["村 villages"] == 7 and f["社区 communities"] == 4
    assert f["主管网 mains km"] == pytest.approx(177.0, rel=0.005)
    assert f["支管网 branches km"] == pytest.approx(262.0, rel=0.005)


def test_outputs_written_and_reproducible(tmp_path, tiny_net):
    a = run_baseline(tiny_net, out_dir=tmp_path / "a")
    run_baseline(tiny_net, out_dir=tmp_path / "b")
    assert set(a.files) >= {"results.gpkg", "summary.csv", "report.md", "map.html"}
    for name in ("summary.csv", "report.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    nodes = gpd.read_file(tmp_path / "a" / "results.gpkg", layer="nodes")
    assert {"min_pressure_m", "min_chlorine_mgL", "max_age_h"} <= set(nodes.columns)
    assert nodes.crs.to_epsg() == 4545
    summary = pd.read_csv(tmp_path / "a" / "summary.csv", index_col="id")
    assert list(summary.index) == ["V1", "C1"]
    assert np.isfinite(summary["min_pressure_m"]).all()
    report = (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    assert "Soundness checks" in report and "村与社区" in report
    # no temp files left behind
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]
