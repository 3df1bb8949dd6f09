"""Outage and planning scenarios: validated YAML files, run with pressure-dependent demand against the baseline.

A scenario file (``scenarios/*.yaml``) names a network, a run length and start
hour, and events — pipe breaks, pump-station, plant and reservoir outages,
demand changes, fire flows, new sources, links opened or closed. It is loaded
and validated by :func:`load_scenario`, applied to a WNTR model by
:func:`apply_events`, run and compared with the baseline by
:func:`run_scenario`, and written by :func:`write_scenario`
(``out/<network>/<scenario>/``: results.gpkg, diff.csv, report.md, map.html, ...).

Modules: :mod:`.spec` (file format), :mod:`.events` (events → EPANET input),
:mod:`.impact` (run and figures), :mod:`.output` (files), :mod:`.batch`
(several files in parallel), :mod:`.sweep` (which main's break hurts most).

Examples
--------
>>> from watersupply.scenario import load_scenario, SCENARIOS_DIR
>>> sc = load_scenario(SCENARIOS_DIR / "heat_wave.yaml")
>>> sc.events[0].multiplier
1.3
"""

from .batch import ScenarioJob, prepare_scenarios, run_scenario_files
from .events import AppliedEvents, apply_events, isolation_segment, plant_outlet
from .impact import (DIFF_COLUMNS, RECOVERY_TOLERANCE_M, ScenarioRun, baseline_for, downstream_settlements,
                     run_scenario, scenario_settlement_table)
from .output import scenario_layers, scenario_report, write_scenario
from .spec import (EVENT_TYPES, OUTAGE_TYPES, SCENARIOS_DIR, DemandChange, Event, FireFlow, NewSource, PipeBreak,
                   PlantOutage, PumpStationOutage, ReservoirOutOfService, Scenario, SetLink, check_scenario,
                   load_scenario, parse_scenario, resolve_scenario, scenario_network, shipped_scenarios)
from .sweep import rank_main_breaks, screen_main_breaks

__all__ = [
    "SCENARIOS_DIR", "EVENT_TYPES", "OUTAGE_TYPES", "DIFF_COLUMNS", "RECOVERY_TOLERANCE_M",
    "Scenario", "Event", "PipeBreak", "PumpStationOutage", "PlantOutage", "ReservoirOutOfService",
    "DemandChange", "FireFlow", "NewSource", "SetLink",
    "load_scenario", "parse_scenario", "check_scenario", "scenario_network", "shipped_scenarios",
    "resolve_scenario",
    "apply_events", "isolation_segment", "plant_outlet", "AppliedEvents",
    "ScenarioRun", "run_scenario", "baseline_for", "scenario_settlement_table", "downstream_settlements",
    "scenario_layers", "scenario_report", "write_scenario",
    "ScenarioJob", "prepare_scenarios", "run_scenario_files",
    "screen_main_breaks", "rank_main_breaks",
]
