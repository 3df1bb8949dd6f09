"""Unit rates, bill of quantities and the capital-cost estimate beside the published figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from watersupply._errors import ConfigError, NetworkDataError
from watersupply.costing import (PUBLISHED_COST_YUAN, RATE_FILES, bill_of_quantities, capital_cost, item_rates,
                                 pipe_rate, pipe_rates, read_rates)
from watersupply.hydraulics import pump_power_kw
from watersupply.pipe_catalogue import catalogue, size_pipes

FLOWS = {"M1": 12.0, "M2": 12.0, "M3": 10.0, "B1": 1.2, "B2": 0.5, "M4": 7.0, "B3": 3.0, "B4": 2.0, "B5": 1.0}


@pytest.fixture
def sized(tiny_net):
    net = dict(tiny_net)
    net["pipes"] = tiny_net["pipes"].assign(design_flow_ls=tiny_net["pipes"]["id"].map(FLOWS))
    return size_pipes(net)


def test_rate_files_are_documented():
    for what in RATE_FILES:
        doc = read_rates(what)
        assert doc["assumed"] is True and doc["currency"] == "yuan"
        srcs = [doc["source"]] if "source" in doc else [v["source"] for v in doc["items"].values()]
        assert all("assumed" in s for s in srcs)
    r = pipe_rates()
    assert r["rate_yuan_m"].gt(0).all() and r["source"].str.contains("assumed").all()
    # every catalogue size has a rate, and rates grow with size and class
    for mat in ("PE", "DI"):
        cat = catalogue(mat, rural=False)
        keys = list(zip(cat["material"], cat["dn_mm"], cat["pn_mpa"]))
        assert all(k in r.index for k in keys)
        for _pn, g in r.loc[mat].groupby(level="pn_mpa"):
            assert g["rate_yuan_m"].is_monotonic_increasing
    pe = r.loc["PE"]["rate_yuan_m"].unstack()
    assert (pe[1.0] <= pe[1.25]).all() and (pe[1.25] <= pe[1.6]).all()
    assert int(item_rates("pump_stations").loc["pump_set_per_kw", "cost_yuan"]) > 0
    with pytest.raises(ConfigError, match="no unit-rate file for 'steel'"):
        read_rates("steel")


def test_boq_lengths_equal_pipe_lengths(sized):
    boq = bill_of_quantities(sized)
    pipes = boq[boq["item"] == "pipe"]
    assert pipes["quantity"].sum() * 1000 == pytest.approx(sized["pipes"]["length_m"].sum())
    assert pipes["n"].sum() == len(sized["pipes"])
    by_size = sized["pipes"].groupby(["material", "dn_mm", "pn_mpa"])["length_m"].sum() / 1000
    got = pipes.set_index(["material", "dn_mm", "pn_mpa"])["quantity"]
    pd.testing.assert_series_equal(got.sort_index(), by_size.sort_index(), check_names=False)
    assert set(boq["item"]) == {"pipe", "pump_station", "reservoir", "plant"}


def test_cost_recomputed_from_the_tables(sized):
    e = capital_cost(sized)
    p = sized["pipes"]
    pipes = sum(length * pipe_rate(m, dn, pn) for length, m, dn, pn in
                zip(p["length_m"], p["material"], p["dn_mm"], p["pn_mpa"]))
    assert e.pipes_yuan == pytest.approx(pipes)
    st, rs = item_rates("pump_stations"), item_rates("reservoirs")
    kw = float(pump_power_kw(12.0 / 1000, 70.0, 0.75))
    assert e.stations_yuan == pytest.approx(st.loc["pump_station_fixed", "cost_yuan"]
                                            + kw * st.loc["pump_set_per_kw", "cost_yuan"])
    vol = math.pi * 12.0 ** 2 / 4 * 5.0  # no volume_m3 in the fixture: diameter × top level
    assert e.reservoirs_yuan == pytest.approx(rs.loc["reservoir_fixed", "cost_yuan"]
                                              + vol * rs.loc["storage_per_m3", "cost_yuan"])
    assert e.total_yuan == pytest.approx(e.boq["cost_yuan"].sum())
    assert e.yuan_per_m == pytest.approx(e.total_yuan / p["length_m"].sum())


def test_existing_assets_are_listed_not_priced(sized, tiny_net):
    net = dict(sized)
    net["pipes"] = sized["pipes"].assign(existing=sized["pipes"]["id"].isin(["B3", "B4", "B5"]))
    net["facilities"] = sized["facilities"].assign(existing=sized["facilities"]["id"] == "T1")
    full, part = capital_cost(sized), capital_cost(net)
    b = net["pipes"].set_index("id")
    saved = sum(b.loc[i, "length_m"] * pipe_rate("PE", b.loc[i, "dn_mm"], b.loc[i, "pn_mpa"]) for i in ("B3", "B4", "B5"))
    assert part.pipes_yuan == pytest.approx(full.pipes_yuan - saved)
    assert part.reservoirs_yuan == 0 and part.existing_pipe_m == pytest.approx(b.loc[["B3", "B4", "B5"], "length_m"].sum())
    assert part.total_pipe_m == pytest.approx(full.total_pipe_m)
    ex = part.boq[part.boq["existing"]]
    assert (ex["cost_yuan"] == 0).all() and ex["source"].str.contains("existing").all()


def test_comparison_and_what_would_have_to_change(sized):
    e = capital_cost(sized)
    same = capital_cost(sized, published_yuan=e.total_yuan)
    assert same.within and same.ratio == pytest.approx(1.0) and same.changes == []
    dear = capital_cost(sized, published_yuan=e.total_yuan / 3)
    assert not dear.within and dear.ratio == pytest.approx(3.0)
    assert dear.changes[0].startswith("all unit rates 50% of the shipped ones")
    assert "stations and reservoirs alone" in dear.changes[1]  # the tiny network is mostly its facilities
    # with the facilities pre-existing, the stated pipe-rate change brings the estimate to the band's edge
    pipes_only = dict(sized)
    pipes_only["facilities"] = sized["facilities"].assign(existing=True)
    e2 = capital_cost(pipes_only)
    dear2 = capital_cost(pipes_only, published_yuan=e2.total_yuan / 3)
    share = float(dear2.changes[1].split("pipe rates at ")[1].split("%")[0]) / 100
    assert share * e2.pipes_yuan == pytest.approx(1.5 * e2.total_yuan / 3, rel=0.01)
    assert dear2.changes[2].startswith("50% of the new pipe length")
    cheap = capital_cost(sized, published_yuan=e.total_yuan * 3)
    assert not cheap.within and "×2.00" in cheap.changes[0]
    assert "published" in e.summary() and "¥/m" in e.summary()
    with pytest.raises(ConfigError, match="factor 0.5 must be >= 1"):
        capital_cost(sized, factor=0.5)


def test_bad_inputs_are_clear_errors(sized, tiny_net):
    with pytest.raises(NetworkDataError, match="size them first with watersupply.pipe_catalogue.size_pipes"):
        bill_of_quantities(tiny_net)
    odd = dict(sized)
    odd["pipes"] = sized["pipes"].assign(dn_mm=np.where(sized["pipes"]["id"] == "B2", 33.0, sized["pipes"]["dn_mm"]))
    with pytest.raises(ConfigError, match=r"no unit rate for PE dn33 PN1.0 in watersupply/data/costs/pipes_pe100.yaml"):
        bill_of_quantities(odd)
    unsized = dict(sized)
    unsized["pipes"] = sized["pipes"].assign(pn_mpa=np.where(sized["pipes"]["id"] == "B2", np.nan,
                                                             sized["pipes"]["pn_mpa"]))
    with pytest.raises(NetworkDataError, match="pipe 'B2' has dn_mm"):
        bill_of_quantities(unsized)
    steel = dict(sized)
    steel["pipes"] = sized["pipes"].assign(material="ST")
    with pytest.raises(ConfigError, match="no unit rates for material 'ST'"):
        bill_of_quantities(steel)


def test_tonghui_estimate(tonghui_net):
    net = size_pipes(tonghui_net, existing="communities")
    e = capital_cost(net)
    assert e.total_pipe_m == pytest.approx(439_000, rel=0.005)
    assert e.existing_pipe_m > 0 and e.new_pipe_m < e.total_pipe_m
    assert (e.boq["item"] == "pump_station").sum() == 7 and (e.boq["item"] == "reservoir").sum() == 9
    assert e.published_yuan == PUBLISHED_COST_YUAN and e.within == (not e.changes)


def test_report_section_and_round_trip(sized, tmp_path):
    from watersupply.io import read_network, write_network
    from watersupply.report import cost_section

    e = capital_cost(sized, published_yuan=1.0e5)
    text = "\n".join(cost_section(e))
    assert text.startswith("## 工程量清单与投资估算 Bill of quantities and capital cost")
    assert f"{e.total_yuan / 1e6:,.2f}" in text and "would have to change" in text and e.changes[0] in text
    first = e.boq.loc[e.boq["item"] == "pipe", "description"].iloc[0]
    assert first.startswith("PE dn") and f"| {first} |" in text and "not priced" in text
    assert cost_section(None) == [] and "Not estimated: no rate" in "\n".join(cost_section("no rate"))
    # the catalogue columns survive the GeoPackage
    back = read_network(write_network(sized, tmp_path / "sized.gpkg"))
    pd.testing.assert_series_equal(back["pipes"]["dn_mm"], sized["pipes"]["dn_mm"], check_dtype=False)
    assert capital_cost(back).total_yuan == pytest.approx(capital_cost(sized).total_yuan)
    bad = dict(sized)
    bad["pipes"] = sized["pipes"].assign(dn_mm=-1.0)
    with pytest.raises(NetworkDataError, match="column 'dn_mm' of 'M1' must be a number > 0"):
        write_network(bad, tmp_path / "bad.gpkg") and read_network(tmp_path / "bad.gpkg")


def test_baseline_report_carries_the_estimate(sized, tmp_path):
    from watersupply.baseline import run_baseline

    run_baseline(sized, out_dir=tmp_path, make_map=False, duration_h=24)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## 工程量清单与投资估算 Bill of quantities and capital cost" in text
    assert f"{capital_cost(sized).total_yuan / 1e6:,.1f}" in text
