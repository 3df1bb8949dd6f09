"""watersupply: a GIS network model of an urban-rural integrated water supply system.

Builds the hydraulic model of a network from GIS layers (or an EPANET file),
simulates pressure, flow, water age and chlorine with WNTR/EPANET, runs outage
and planning scenarios, audits service per settlement and renders maps.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("watersupply")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

from ._errors import (ConfigError, HydraulicError, NetworkDataError, ScenarioError,  # noqa: E402
                      WatersupplyError)

__all__ = [
    "__version__",
    "WatersupplyError",
    "NetworkDataError",
    "ScenarioError",
    "ConfigError",
    "HydraulicError",
]
