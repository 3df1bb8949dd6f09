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
    from watersupply.simulation import quality_window

    cl = res.chlorine.loc[quality_window(res), ids].min()
    sd = tonghui_baseline.soundness
    assert (cl >= 0.05).mean() == pytest.approx(sd.loc["chlorine_node_share", "figure"])
    assert sd["passed"].all()   # every soundness check, tap chlorine included (issue 15 model)
    # no EPANET warning (the clear well's FCV no longer feeds a full tank), C1 meets its 28 m service head
    assert res.sanity is None or not (res.sanity["kind"] == "epanet_warning").any()
    c1 = tonghui_net["nodes"].loc[(tonghui_net["nodes"]["settlement_id"] == "C1")
                                  & (tonghui_net["nodes"]["base_demand_m3d"] > 0), "id"]
    assert res.pressure[c1].min().min() >= 28.0


def test_tonghui_quality_is_at_steady_state(tonghui_baseline):
    """Issue 14: the 72 h run no longer reports the initial 0.5 mg/L as the villages' chlorine."""
    q = tonghui_baseline.result.quality
    assert q.method == "periodic steady state"
    assert q.residual["chlorine"] < 0.001 and q.residual["age"] < 0.1
    assert not q.unsettled["chlorine"] and not q.unsettled["age"] and not q.growing_age
    st = tonghui_baseline.settlements
    # issue-15 model (zoned, catalogue PE sizes, PE wall decay, leakage): at steady state every settlement
    # keeps GB 5749's 0.05 mg/L at its far ends (lowest 村七 V7, 0.08 mg/L) and no water is older than 3 days
    assert (st["min_chlorine_mgL"] >= 0.05).all() and st["min_chlorine_mgL"].min() < 0.1
    assert st["max_age_h"].max() < 72.0 and st["max_age_h"].idxmax() == "C1"
    assert (st["age_status"] == "settled").all() and (st["chlorine_status"] == "assessed").all()


@pytest.mark.slow
def test_tonghui_default_run_agrees_with_a_14_day_run(tonghui_net, tonghui_baseline):
    from watersupply.simulation import run_simulation

    long = metrics.settlement_summary(run_simulation(tonghui_net, duration_h=336), tonghui_net)
    st = tonghui_baseline.settlements
    assert (long["min_chlorine_mgL"] - st["min_chlorine_mgL"]).abs().max() < 0.005
    assert (long["max_age_h"] - st["max_age_h"]).abs().max() < 0.5


def test_settlement_summary_covers_all_eleven(tonghui_baseline):
    st = tonghui_baseline.settlements
    assert len(st) == 11
    assert st["population"].sum() == tonghui_baseline.net["settlements"]["population"].sum()
    assert st[["min_pressure_m", "min_chlorine_mgL", "max_age_h"]].notna().all().all()
    # villages behind two lifts (PS2/PS4, PS3/PS6, PS5/PS7) have older water than the terrace communities
    # fed straight from R1/R2 (C2, C4); C1 and C3, the town's large existing networks, hold water longest
    assert st.loc[["V3", "V5", "V6", "V7"], "max_age_h"].min() > st.loc[["C2", "C4"], "max_age_h"].max()


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
