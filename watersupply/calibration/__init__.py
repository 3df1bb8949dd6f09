"""Calibration against field logs: roughness and demand groups fitted to pressure, flow and level readings.

- :mod:`.observations` reads and validates the long-form log CSV;
- :mod:`.groups` builds the parameter groups (roughness, demand, status);
- :mod:`.solver` runs EPANET in memory (owa-epanet toolkit);
- :mod:`.fit` does the weighted least squares and the statistics;
- :mod:`.identifiability` judges the groups: rank, condition, 95 % intervals, correlations, partners;
- :mod:`.sensors` computes sensor sensitivities: D-optimal logger placement and the sensors that
  would separate confounded groups;
- :mod:`.outputs` writes calibrated.inp/.gpkg, parameters.csv, fit.csv, figures and the report;
- :mod:`.synthetic` makes synthetic logs from a perturbed truth (the Tonghui demonstration).
"""

from .fit import CalibrationResult, apply_parameters, calibrate, fit_statistics, identifiability
from .groups import Group, demand_groups, roughness_groups, status_groups
from .observations import read_observations, validate_observations
from .synthetic import TONGHUI_DEMO, example_path, make_synthetic_logs

__all__ = ["CalibrationResult", "Group", "TONGHUI_DEMO", "apply_parameters", "calibrate", "demand_groups",
           "example_path", "fit_statistics", "identifiability", "make_synthetic_logs", "read_observations",
           "roughness_groups", "status_groups", "validate_observations"]
