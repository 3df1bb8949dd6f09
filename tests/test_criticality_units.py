"""Criticality of a model whose INP file is in US units: the answers are the recipe's (SI inside)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import wntr

from watersupply.criticality import pipe_criticality, reference_criticality


def _looped_gpm(path) -> str:
    """A reservoir feeding a looped grid of 3 x 3 junctions, written in GPM (feet, psi)."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_pattern("day", [0.6, 0.8, 1.2, 1.5, 1.1, 0.8])
    wn.add_reservoir("R", base_head=80.0, coordinates=(-300.0, 0.0))
    for i in range(3):
        for j in range(3):
            wn.add_junction(f"J{i}{j}", base_demand=0.004 + 0.001 * (i + j), elevation=20.0 + 3 * i + 2 * j,
                            demand_pattern="day", coordinates=(300.0 * j, -300.0 * i))
    wn.add_pipe("P0", "R", "J00", 400.0, 0.3, 120.0)
    for i in range(3):
        for j in range(3):
            if j < 2:
                wn.add_pipe(f"H{i}{j}", f"J{i}{j}", f"J{i}{j + 1}", 300.0, 0.15 if i else 0.2, 110.0)
            if i < 2:
                wn.add_pipe(f"V{i}{j}", f"J{i}{j}", f"J{i + 1}{j}", 300.0, 0.1 if j else 0.2, 110.0)
    wn.options.time.duration = 24 * 3600
    wn.options.time.hydraulic_timestep = 3600
    wn.options.time.pattern_timestep = 4 * 3600
    wn.options.time.report_timestep = 3600
    wn.options.hydraulic.inpfile_units = "GPM"
    out = path / "grid_gpm.inp"
    wntr.network.write_inpfile(wn, str(out), units="GPM")
    return out


def test_a_model_in_gpm_gives_the_recipes_pressures(tmp_path) -> None:
    """EPANET reports a GPM model's heads in feet and pressures in psi; the sweep compares them with
    thresholds in metres, so it must solve the model in SI units (it once read psi as metres)."""
    from watersupply.loader import load_network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net = load_network(inp=_looped_gpm(tmp_path))
    pipes = ["H00", "V01", "H11", "V12"]
    fast = pipe_criticality(net, pipes=pipes, workers=1)
    recipe = reference_criticality(net, pipes=pipes).loc[fast.index]
    assert (fast["status"] == "ok").all()
    pd.testing.assert_series_equal(fast["people_without_water"], recipe["people_without_water"], check_dtype=False)
    assert (fast["worst_pressure_drop_m"] > 0.05).all()
    np.testing.assert_allclose(fast["worst_pressure_drop_m"], recipe["worst_pressure_drop_m"], atol=0.02)
    np.testing.assert_allclose(fast["demand_not_served_m3"], recipe["demand_not_served_m3"], rtol=1e-3, atol=0.05)
