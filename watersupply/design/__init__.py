"""Least-cost network design: pipe sizes, replacements or duplicates that meet a pressure target or make a scenario pass.

- :mod:`.costs` — candidate and default cost tables (PE100 by dn, ductile iron by DN,
  pumps, reservoirs), built from the unit rates in watersupply/data/costs with their sources;
- :mod:`.problem` — the design space and the evaluator (EPANET kept open in memory);
- :mod:`.optimize` — pymoo's GA, local-search polishing, NSGA-II cost–resilience front;
- :mod:`.core` — :func:`design_network` (a model and a pressure target), verification;
- :mod:`.construct` — feasible-first design of a failing scenario: the supply chain of the failing
  nodes (mains, tank, the pumps filling it, their suction and delivery mains, up the cascade), pumps
  sized by mass balance and pipes by hydraulic gradient run after run, then pymoo's GA and local
  search to cut the cost, on a one-day search model verified on the full run;
- :mod:`.scenario` — :func:`design_scenario` (a failing scenario → the works that make it pass);
- :mod:`.output` — files in ``out/<network>/design/``.

Examples
--------
>>> from watersupply.design import pipe_costs
>>> sorted(pipe_costs("di")["diameter_mm"])[:3]
[100.0, 152.0, 203.4]
"""

from .core import DesignResult, InfeasibleDesignError, apply_design, design_network, todini, verify_design, works_table
from .costs import DEFAULT_TABLES, check_candidates, pipe_costs, pump_costs, read_candidates, reservoir_costs
from .problem import ACTIONS
from .scenario import ScenarioDesign, design_scenario, scenario_verdict

__all__ = [
    "DesignResult", "InfeasibleDesignError", "design_network", "apply_design", "verify_design", "works_table",
    "todini", "DEFAULT_TABLES", "check_candidates", "pipe_costs", "pump_costs", "read_candidates",
    "reservoir_costs", "ACTIONS", "ScenarioDesign", "design_scenario", "scenario_verdict",
]
