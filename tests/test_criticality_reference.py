"""The recipe (copy, close, rerun) solves the same model as the fast sweep, every number exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wntr

from watersupply.criticality.reference import _epanet_simulator
from watersupply.model import write_inp


def _tiny() -> wntr.network.WaterNetworkModel:
    """A reservoir feeding two junctions whose demands and leakage emitter need 16 significant digits."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_pattern("day", [0.6, 1.4])
    wn.add_reservoir("R", base_head=60.0)
    wn.add_junction("A", base_demand=0.04328703703703703e-3, demand_pattern="day", elevation=20.0)
    wn.add_junction("B", base_demand=0.1935185185185185e-3, demand_pattern="day", elevation=25.0)
    wn.get_node("B").emitter_coefficient = 2.345678901234567e-5
    wn.add_pipe("P1", "R", "A", length=500.0, diameter=0.1, roughness=130)
    wn.add_pipe("P2", "A", "B", length=300.0, diameter=0.05, roughness=130)
    wn.options.time.duration = 2 * 3600
    wn.options.time.hydraulic_timestep = 3600
    wn.options.time.pattern_timestep = 3600
    wn.options.time.report_timestep = 3600
    wn.options.hydraulic.demand_model = "PDD"
    wn.options.hydraulic.required_pressure = 10.0
    wn.options.quality.parameter = "NONE"
    return wn


def test_the_recipe_solves_the_model_written_exactly(tmp_path: Path) -> None:
    """WNTR's run_sim rounds demands to 11 digits; on Tonghui that alone moved the recipe's pressures by
    0.84 m at ACCURACY 0.001 (M00320). The recipe's INP is the one the fast sweep opens."""
    wn = _tiny()
    res = _epanet_simulator(wn, str(tmp_path / "run"))
    solved = (tmp_path / "run.inp").read_bytes()
    assert solved == write_inp(wn, tmp_path / "fast.inp", units="LPS").read_bytes()
    back = wntr.network.WaterNetworkModel(str(tmp_path / "run.inp"))
    for name in ("A", "B"):  # exact to the unit conversion's last bit, not 11 significant digits (~1e-12)
        assert abs(back.get_node(name).base_demand / wn.get_node(name).base_demand - 1) < 1e-14
    assert abs(back.get_node("B").emitter_coefficient / wn.get_node("B").emitter_coefficient - 1) < 1e-14
    # the results are EPANET's, in SI: the same as WNTR's own EpanetSimulator within its rounding
    ref = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(tmp_path / "wntr"))
    got, want = res.node["pressure"], ref.node["pressure"]
    assert got.shape == want.shape == (3, 3)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), atol=1e-4)
    assert float(got.loc[0, "B"]) > 20.0  # solved, not an empty frame
