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
    assert len(wn.pump_name_list) == 15 and len(wn.tank_name_list) == 9 and len(wn.reservoir_name_list) == 1


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
