"""The 同网·同价·同质 audit: same network, same price, same quality, per village and community.

The promise of the integrated urban-rural supply is that every village gets what
the city gets: water from the same network (同网), at the same price (同价), of
the same quality (同质). :func:`audit` checks it for each settlement of a network
against the Chinese standards held in :mod:`watersupply.standards`, for the
baseline or for any scenario's :class:`~watersupply.simulation.SimulationResult`.

Four dimensions, each with a verdict (pass / warn / fail), the figures behind it
and the rule it rests on:

同网 ``network``
    Every demand node of the settlement has a directed path (pipes, pumps,
    valves) from a plant of the unified network (the plant of largest capacity
    and every plant connected to it); no stand-alone source — a plant node not
    connected to that network, or a reservoir it cannot fill: an own well or
    spring — lies in the settlement's polygon or zone or feeds its nodes. Which
    plant, pump stations and reservoirs feed it, and in what share, comes from
    EPANET trace runs (one quality-only run per source on hydraulics solved
    once; :func:`trace_shares`). Fail: a node not connected, or a stand-alone
    source. Warn: less than ``network_plant_share_min`` of its delivered water
    traced to the unified network's plants.
同质 ``quality``
    Free chlorine at the taps >= ``tap_chlorine_min_mgL`` (GB 5749-2022) over
    :func:`~watersupply.simulation.quality_window`: share of demand nodes and of
    node-hours compliant; water age (max, 95th percentile, demand-weighted
    mean; nodes whose water is as old as the run are "not converged"); the
    plant dose the settlement needs (:func:`required_plant_dose`). Fail: fewer
    than ``chlorine_node_share_min`` of its nodes compliant. Warn: some
    node-hours below the limit, a 95th-percentile age above
    ``water_age_warn_h``, or water older than the run at some nodes.
服务压力 ``pressure``
    Service head by the rule that applies (GB 50013-2018 §3.0.10 with the
    settlement's storeys for communities, the rural rule for villages); the
    pressure compliance rate (share of demand-node-hours at or above it,
    CJ/T 316-2009 §6.2 asks >= 97 %), hours below service head, people
    without water (pressure below the PDD minimum). Static head = the highest
    hydraulic grade of the sources bounding the settlement's own pressure zone
    (full reservoir: bottom + max level; a plant's head; a PRV's outlet grade)
    minus node elevation; where the zone is fed only by pumps, the maximum
    simulated pressure stands in for it. Fail: compliance below
    ``pressure_compliance_min``. Warn: some node-hours below service head, or a
    village static head above ``rural_max_static_head_m``.
同价 ``price``
    Cost to serve a m³: pumping energy along the supply chain (each pump
    station's kWh/m³ from :func:`watersupply.metrics.pump_energy`, weighted by
    the traced share of the settlement's water it lifted) at
    ``electricity_tariff_yuan_kwh``; plus ``other_cost_yuan_m3`` (treatment,
    O&M, depreciation); plus distribution O&M: the km of pipe serving the
    settlement × ``distribution_om_yuan_km_year`` / its annual volume. Annual
    volume = design-day demand × 365 × ``average_to_peak_day_ratio``. Against
    the uniform tariff ``water_tariff_yuan_m3``: cross-subsidy (¥/year) =
    (cost − tariff) × annual volume. Fail: a settlement tariff (column
    ``tariff_yuan_m3``) different from the uniform one, or cost recovery
    (tariff / cost) below ``cost_recovery_min``. Warn: cost above the tariff.

Score: pass 100, warn 50, fail 0 per dimension; the settlement's score is the
mean of the four (0–100) and its overall verdict the worst of the four.

Industrial nodes (``demand_category == "industrial"``, the food park in 思南村)
are left out of a settlement's figures by default: the promise is to residents.

Modules: :mod:`.assessment` (:func:`audit`, :func:`audit_scenario`), :mod:`.supply` (graph,
sources, supply chains, trace shares), :mod:`.figures` (the figures of each dimension),
:mod:`.verdicts` (rules, reasons and fixes), :mod:`.report` (comparison, GIS layer, report,
files), :mod:`.config` (thresholds from a YAML file and options).

Examples
--------
>>> from watersupply.io import get_path, read_network
>>> from watersupply.simulation import run_simulation
>>> net = read_network(get_path("tonghui"))
>>> res = run_simulation(net, duration_h=48)  # doctest: +SKIP
>>> aud = audit(net, res)  # doctest: +SKIP
>>> aud.table.loc["V3", ["network_verdict", "quality_verdict", "pressure_verdict", "price_verdict"]]  # doctest: +SKIP
"""

from ._common import DIMENSIONS, VERDICT_POINTS
from .assessment import AuditResult, audit, audit_scenario
from .config import audit_thresholds, load_config
from .figures import check_settlements, required_plant_dose
from .report import audit_layer, audit_report, compare_audits, write_audit
from .supply import network_sources, supply_chains, supply_graph, trace_shares

__all__ = [
    "DIMENSIONS",
    "VERDICT_POINTS",
    "AuditResult",
    "audit",
    "audit_scenario",
    "check_settlements",
    "load_config",
    "audit_thresholds",
    "supply_graph",
    "network_sources",
    "supply_chains",
    "trace_shares",
    "required_plant_dose",
    "compare_audits",
    "audit_layer",
    "audit_report",
    "write_audit",
]
