"""Layers → WNTR model → INP round trip."""

from __future__ import annotations

import pytest
import wntr

from watersupply._errors import NetworkDataError
from watersupply.model import sim_options, to_wntr, write_inp


def test_inp_round_trip_keeps_ids_lengths_diameters_elevations(tmp_path, tonghui_net):
    wn = to_wntr(tonghui_net)
    path = write_inp(wn, tmp_path / "t.inp")
    back = wntr.network.WaterNetworkModel(str(path))
    pipes = tonghui_net["pipes"].set_index("id")
    assert sorted(back.pipe_name_list) == sorted(pipes.index)
    for pid in pipes.index[::97]:
        link = back.get_link(pid)
        assert link.length == pytest.approx(pipes.loc[pid, "length_m"], rel=1e-4)
        assert link.diameter * 1000 == pytest.approx(pipes.loc[pid, "diameter_mm"], rel=1e-4)
        assert link.roughness == pytest.approx(pipes.loc[pid, "roughness_c"])
    nodes = tonghui_net["nodes"].set_index("id")
    for nid in nodes.index[nodes["kind"] == "junction"][::101]:
        node = back.get_node(nid)
        assert node.elevation == pytest.approx(nodes.loc[nid, "elevation_m"], abs=1e-3)
        assert node.base_demand * 86400 == pytest.approx(nodes.loc[nid, "base_demand_m3d"], rel=1e-3, abs=1e-6)
    assert back.options.hydraulic.demand_model in ("PDD", "PDA")


def test_bundled_inp_runs_with_wntr_alone(tmp_path, tonghui_path):
    wn = wntr.network.WaterNetworkModel(str(tonghui_path.with_suffix(".inp")))
    wn.options.time.duration = 6 * 3600
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "bare"))
    assert res.node["pressure"].shape[0] == 7
    # 9 reservoirs (水池) + the plant's clear well WTP as EPANET tanks; the treatment works' outlet WTP-RAW
    assert len(wn.pump_name_list) == 15 and len(wn.tank_name_list) == 10 and wn.reservoir_name_list == ["WTP-RAW"]


def test_pdd_options_set_deliberately(tiny_net):
    wn = to_wntr(tiny_net)
    h = wn.options.hydraulic
    assert h.demand_model in ("PDD", "PDA")
    assert h.required_pressure == 10.0 and h.minimum_pressure == 1.0
    assert wn.options.time.duration == 48 * 3600  # from the network's metadata
    assert "P1_on" in wn.control_name_list and "P1_off" in wn.control_name_list


def test_options_validation(tiny_net):
    with pytest.raises(NetworkDataError, match="unknown simulation option 'durashun'"):
        sim_options(tiny_net, durashun=3)
    with pytest.raises(NetworkDataError, match="duration_h must be > 0"):
        sim_options(tiny_net, duration_h=0)


def test_inp_is_deterministic(tmp_path, tiny_net):
    a = write_inp(to_wntr(tiny_net), tmp_path / "a.inp").read_bytes()
    b = write_inp(to_wntr(tiny_net), tmp_path / "b.inp").read_bytes()
    assert a == b
    assert b"Created:" not in a


# ----------------------------------------------------------------------------- a file's own EPANET model

KY4 = wntr.library.__path__[0] + "/networks/ky4.inp"


@pytest.fixture(scope="module")
def ky4_net():
    import warnings

    from watersupply.convert import read_inp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_inp(KY4)


def test_analyses_change_a_file_model_only_on_purpose_and_say_so(ky4_net):
    from watersupply.model import analysis_changes, is_epanet_model

    assert is_epanet_model(ky4_net)
    orig = wntr.network.WaterNetworkModel(KY4)
    wn = to_wntr(ky4_net)
    # the file's own model: its power pumps, controls and options ...
    assert [p.pump_type for _, p in wn.pumps()] == [p.pump_type for _, p in orig.pumps()]
    assert len(wn.control_name_list) == len(orig.control_name_list)
    assert wn.options.hydraulic.trials == orig.options.hydraulic.trials
    # ... with the deliberate changes, listed once
    assert wn.options.hydraulic.demand_model in ("PDD", "PDA") and orig.options.hydraulic.demand_model == "DDA"
    assert wn.options.quality.parameter == "CHEMICAL"
    assert all(r.initial_quality > 0 for _, r in wn.reservoirs())
    changes = analysis_changes(ky4_net)
    assert len(changes) == 1
    assert "pressure-dependent demand" in changes[0] and "demand-driven (DDA)" in changes[0]
    assert "24 h horizon" in changes[0] and "no chlorine source" in changes[0] and "--as-is" in changes[0]


def test_as_is_keeps_the_file_model(ky4_net):
    from watersupply.model import analysis_changes, is_as_is, keep_as_is

    net = keep_as_is(ky4_net)
    assert is_as_is(net) and not is_as_is(ky4_net)  # the original is not changed
    assert analysis_changes(net) == []
    wn = to_wntr(net)
    assert wn.options.hydraulic.demand_model == "DDA" and wn.options.time.duration == 0
    assert wn.options.quality.parameter == wntr.network.WaterNetworkModel(KY4).options.quality.parameter
    assert to_wntr(net, duration_h=3).options.time.duration == 3 * 3600  # explicit options still apply


def test_project_network_has_no_analysis_changes(tiny_net):
    from watersupply.model import analysis_changes, is_epanet_model

    assert not is_epanet_model(tiny_net) and analysis_changes(tiny_net) == []
