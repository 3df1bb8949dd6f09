"""Thresholds from Chinese standards, and the design assumptions, as data, each with its source.

One place for every limit the model is checked against. Values are SI (m head,
mg/L, hours, m/s). Sources are those collected in the project's FACTS; where a
value is an engineering assumption the source says so.

Use :func:`thresholds` to get the defaults, optionally overridden; the result
records which names were overridden so reports can say so.

The design assumptions (:data:`DESIGN`) are the values the model is *built*
with rather than checked against: per-capita demand, diurnal patterns, the
diameter that separates mains from branches. They are read by the generator,
the GIS builder and the INP converter from here.

>>> DESIGN["main_diameter_mm"].value, DESIGN["main_diameter_mm"].unit
(150.0, 'mm')
>>> PER_CAPITA_DESIGN_L_D["village"], PER_CAPITA_ESTIMATE_L_D
(120.0, 150.0)
>>> round(sum(DIURNAL_PATTERNS["urban"]) / 24, 3)
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigError, closest

__all__ = [
    "Threshold",
    "STANDARDS",
    "thresholds",
    "urban_service_head_m",
    "rural_service_head_m",
    "service_head_m",
    "DesignAssumption",
    "DESIGN",
    "PER_CAPITA_DESIGN_L_D",
    "PER_CAPITA_ESTIMATE_L_D",
    "DIURNAL_PATTERNS",
    "PATTERN_OF_KIND",
    "MAIN_DIAMETER_MM",
]


@dataclass(frozen=True)
class Threshold:
    """One limit: its value, unit, meaning and the clause it comes from."""

    name: str
    value: float
    unit: str
    meaning: str
    source: str


_ITEMS = [
    # Service pressure
    Threshold("urban_head_1_storey_m", 10.0, "m", "min service head at connection, 1 storey", "GB 50013-2018 §3.0.10"),
    Threshold("urban_head_2_storeys_m", 12.0, "m", "min service head at connection, 2 storeys",
              "GB 50013-2018 §3.0.10"),
    Threshold("urban_head_per_storey_m", 4.0, "m", "additional head per storey above 2", "GB 50013-2018 §3.0.10"),
    Threshold("urban_planning_target_m", 28.0, "m", "urban planning service head target (≈6 storeys)",
              "GB 50282-2016 (paraphrase)"),
    Threshold("network_end_head_m", 14.0, "m", "minimum pressure at network ends", "CJ/T 316-2009 §6.2"),
    Threshold("pressure_compliance_min", 0.97, "fraction", "pressure compliance rate (node-hours meeting service head)",
              "CJ/T 316-2009 §6.2"),
    Threshold("rural_head_1_storey_m", 5.0, "m", "rural min service head, 1 storey",
              "村镇供水工程技术规范 (secondary source)"),
    Threshold("rural_head_2_storeys_m", 10.0, "m", "rural min service head, 2 storeys (lower end of 10–12 m)",
              "村镇供水工程技术规范 (secondary source)"),
    Threshold("rural_head_per_storey_m", 4.0, "m", "rural additional head per storey above 2 (upper end of 3.5–4 m)",
              "村镇供水工程技术规范 (secondary source)"),
    Threshold("rural_max_static_head_m", 40.0, "m", "max static head at a rural tap (else reduce pressure)",
              "村镇供水工程技术规范 (secondary source)"),
    Threshold("urban_max_static_head_m", 45.0, "m", "max static head at an urban connection (the static pressure "
              "of a supply zone, 0.45 MPa; residential entry pressure should stay under 0.35 MPa, §3.4.5)",
              "GB 50015-2019 §3.4.3 (分区静水压力不宜大于0.45 MPa; secondary source)"),
    Threshold("main_max_static_head_m", 160.0, "m", "max static head a pipe without taps may hold (PE PN 1.6 MPa, "
              "the highest class of the rural PE catalogue)", "assumed: GB/T 13663.2-2018 PN series"),
    Threshold("zone_service_margin_m", 5.0, "m", "head kept above the highest tap's service head when a pressure "
              "zone's level is set (allowance for friction at peak hour)", "assumed"),
    Threshold("hydrant_residual_head_m", 10.0, "m", "min residual head at a hydrant during fire flow",
              "村镇供水工程技术规范 (secondary source)"),
    # Hydraulic simulation (pressure-dependent demand)
    Threshold("pdd_required_pressure_m", 10.0, "m", "pressure at which a connection receives its full demand (PDD)",
              "assumed: GB 50013-2018 §3.0.10 1-storey head"),
    Threshold("pdd_minimum_pressure_m", 1.0, "m", "pressure below which a connection receives no water (PDD); "
              "people at such nodes count as without water", "assumed"),
    # Water quality
    Threshold("tap_chlorine_min_mgL", 0.05, "mg/L", "free chlorine at the tap (末梢水)", "GB 5749-2022"),
    Threshold("plant_chlorine_min_mgL", 0.3, "mg/L", "free chlorine at the plant outlet, minimum",
              "GB 5749-2022 (assumed from)"),
    Threshold("plant_chlorine_max_mgL", 2.0, "mg/L", "free chlorine at the plant outlet, maximum",
              "GB 5749-2022 (assumed from)"),
    Threshold("chlorine_node_share_min", 0.95, "fraction", "share of demand nodes whose tap chlorine stays compliant",
              "assumed (project soundness target)"),
    Threshold("water_age_warn_h", 72.0, "h", "water age above which quality is at risk",
              "assumed (common utility practice)"),
    # Velocity
    Threshold("main_velocity_max_ms", 2.5, "m/s", "maximum velocity in mains", "GB 50013 (secondary), assumed"),
    Threshold("main_velocity_economic_min_ms", 0.6, "m/s", "economic velocity in mains, lower end",
              "GB 50013 (secondary), assumed"),
    Threshold("main_velocity_economic_max_ms", 1.5, "m/s", "economic velocity in mains, upper end",
              "GB 50013 (secondary), assumed"),
    # Storage
    Threshold("reservoir_cycle_tolerance", 0.10, "fraction",
              "reservoir level at 72 h within this share of its level at 24 h", "assumed (project soundness target)"),
    # Price
    Threshold("water_tariff_yuan_m3", 2.35, "¥/m³", "uniform water tariff (同价); no Qijiang figure found",
              "news, secondary (one district under 同网同价同质)"),
    Threshold("electricity_tariff_yuan_kwh", 0.65, "¥/kWh", "electricity tariff for pumping", "assumed"),
    Threshold("pump_efficiency", 0.75, "fraction", "wire-to-water pump efficiency", "assumed"),
    # 同网·同价·同质 audit (watersupply.audit)
    Threshold("other_cost_yuan_m3", 1.20, "¥/m³", "cost per m³ sold besides pumping energy and distribution O&M: "
              "treatment chemicals and plant power, raw-water resource fee, staff, administration, depreciation",
              "assumed (order of magnitude of Chinese county water utilities; no Qijiang figure found)"),
    Threshold("distribution_om_yuan_km_year", 3000.0, "¥/km/year", "O&M of distribution pipes (leak repair, "
              "valves, flushing) per km of pipe and year", "assumed (≈0.5 % a year of ¥0.6 M/km installed PE pipe)"),
    Threshold("average_to_peak_day_ratio", 0.77, "fraction", "average-day / peak-day demand, to turn design-day "
              "demand into annual volume", "assumed: 1/1.3, GB 50013-2018 daily peaking factor 1.1–1.5"),
    Threshold("cost_recovery_min", 0.5, "fraction", "uniform tariff / cost to serve below which 同价 fails (the "
              "uniform price rests mostly on subsidy)", "assumed (audit rule)"),
    Threshold("network_plant_share_min", 0.95, "fraction", "share of a settlement's delivered water traced to "
              "the unified network's plant(s) for a 同网 pass", "assumed (audit rule)"),
    Threshold("supply_share_min", 0.01, "fraction", "traced share above which a reservoir or pump station counts "
              "as feeding a settlement", "assumed (audit rule)"),
    Threshold("community_storeys_default", 6.0, "storeys", "storeys of a community when the settlements layer has "
              "none", "assumed: GB 50282-2016 28 m urban target ≈ 6 storeys"),
    Threshold("village_storeys_default", 2.0, "storeys", "storeys of village houses when the settlements layer has "
              "none", "assumed: typical 2-storey rural houses"),
]

STANDARDS: Mapping[str, Threshold] = MappingProxyType({t.name: t for t in _ITEMS})


class Thresholds(dict):
    """A name → value mapping that remembers which values were overridden."""

    overridden: dict[str, tuple[float, float]]

    def __init__(self, values: Mapping[str, float], overridden: Mapping[str, tuple[float, float]]):
        super().__init__(values)
        self.overridden = dict(overridden)


def thresholds(overrides: Mapping[str, Any] | None = None) -> Thresholds:
    """Return the threshold values, with `overrides` applied and recorded.

    Parameters
    ----------
    overrides
        Mapping of threshold name to a new numeric value.

    Raises
    ------
    ConfigError
        An unknown name (with the closest valid names) or a non-numeric or
        negative value.

    Examples
    --------
    >>> t = thresholds({"tap_chlorine_min_mgL": 0.1})
    >>> t["tap_chlorine_min_mgL"], t.overridden["tap_chlorine_min_mgL"]
    (0.1, (0.05, 0.1))
    """
    values = {name: t.value for name, t in STANDARDS.items()}
    changed: dict[str, tuple[float, float]] = {}
    for name, raw in (overrides or {}).items():
        if name not in STANDARDS:
            raise ConfigError(f"unknown threshold {name!r}; {closest(name, STANDARDS)}")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(f"threshold {name!r} must be a number, got {raw!r}")
        value = float(raw)
        if not value >= 0 or value == float("inf"):
            raise ConfigError(f"threshold {name!r} must be a finite number >= 0, got {raw!r}")
        if value != values[name]:
            changed[name] = (values[name], value)
        values[name] = value
    return Thresholds(values, changed)


def _storeys_rule(prefix: str, storeys: int, t: Mapping[str, float] | None) -> float:
    """Head for `storeys` floors from the ``<prefix>_head_1_storey_m`` / ``_2_storeys_m`` /
    ``_per_storey_m`` thresholds: 1 storey, 2 storeys, then a fixed step per storey."""
    t = t or thresholds()
    n = int(storeys)
    if n < 1:
        raise ConfigError(f"storeys must be >= 1, got {storeys!r}")
    if n == 1:
        return float(t[f"{prefix}_head_1_storey_m"])
    return float(t[f"{prefix}_head_2_storeys_m"] + t[f"{prefix}_head_per_storey_m"] * (n - 2))


def urban_service_head_m(storeys: int, t: Mapping[str, float] | None = None) -> float:
    """Minimum service head for urban buildings of `storeys` floors (GB 50013-2018 §3.0.10).

    Examples
    --------
    >>> urban_service_head_m(1), urban_service_head_m(2), urban_service_head_m(6)
    (10.0, 12.0, 28.0)
    """
    return _storeys_rule("urban", storeys, t)


def rural_service_head_m(storeys: int, t: Mapping[str, float] | None = None) -> float:
    """Minimum service head for rural houses of `storeys` floors (村镇供水工程技术规范).

    Examples
    --------
    >>> rural_service_head_m(1), rural_service_head_m(2), rural_service_head_m(3)
    (5.0, 10.0, 14.0)
    """
    return _storeys_rule("rural", storeys, t)


def service_head_m(kind: str, storeys: int, t: Mapping[str, float] | None = None) -> float:
    """Service head by the rule that applies: GB 50013 for communities, the rural rule for villages."""
    if kind == "community":
        return urban_service_head_m(storeys, t)
    if kind == "village":
        return rural_service_head_m(storeys, t)
    raise ConfigError(f"settlement kind must be 'village' or 'community', got {kind!r}")


# ----------------------------------------------------------------------------- design assumptions


@dataclass(frozen=True)
class DesignAssumption:
    """One value the model is built with: its value, unit, meaning and source (or "assumed")."""

    name: str
    value: Any
    unit: str
    meaning: str
    source: str


#: Hourly demand multipliers before normalisation (24 values from 00:00).
_RAW_PATTERNS = {
    # urban: hourly peak ≈1.45 (GB 50013 hourly factor 1.2–1.6)
    "urban": [0.55, 0.45, 0.42, 0.42, 0.50, 0.75, 1.20, 1.45, 1.35, 1.15, 1.05, 1.15,
              1.25, 1.05, 0.95, 0.95, 1.00, 1.15, 1.40, 1.45, 1.30, 1.05, 0.85, 0.65],
    # rural: hourly peak ≈2.0 (rural 1.6–3.0, assumed)
    "rural": [0.25, 0.20, 0.20, 0.20, 0.30, 0.70, 1.60, 2.00, 1.50, 1.00, 0.90, 1.20,
              1.50, 1.00, 0.80, 0.80, 1.00, 1.50, 2.00, 1.80, 1.30, 0.90, 0.50, 0.35],
    # industrial: two shifts, 08:00–24:00
    "industrial": [0.55, 0.50, 0.50, 0.50, 0.50, 0.55, 0.80, 1.20, 1.30, 1.30, 1.30, 1.25,
                   1.10, 1.30, 1.30, 1.30, 1.25, 1.20, 1.10, 1.10, 1.05, 1.00, 0.80, 0.65],
}

_DESIGN_ITEMS = [
    DesignAssumption("per_capita_design_l_d", MappingProxyType({"community": 200.0, "village": 120.0}),
                     "L/person/day", "design per-capita demand on the peak day, by settlement kind (the "
                     "generator's nodal demand = population × this)", "FACTS (assumed)"),
    DesignAssumption("per_capita_estimate_l_d", 150.0, "L/person/day",
                     "average-day domestic use per person, to estimate a population from nodal demand (INP "
                     "conversion) or a demand from a population (GIS build) when the data give only one; between "
                     "the two design values above because the settlement kind is not known then",
                     "assumed: typical Chinese residential use lies between 100 and 200 L/person/day"),
    DesignAssumption("diurnal_patterns",
                     MappingProxyType({k: tuple(round(v / (sum(p) / 24.0), 4) for v in p)
                                       for k, p in _RAW_PATTERNS.items()}),
                     "multiplier", "hourly demand patterns from 00:00, normalised to mean 1",
                     "assumed: urban hourly peak ≈1.45 (GB 50013-2018 hourly factor 1.2–1.6), rural ≈2.0 "
                     "(rural 1.6–3.0), industrial two shifts 08:00–24:00"),
    DesignAssumption("pattern_of_kind",
                     MappingProxyType({"community": "urban", "village": "rural", "industrial": "industrial"}),
                     "pattern name", "the diurnal pattern of each settlement kind", "assumed"),
    DesignAssumption("main_diameter_mm", 150.0, "mm",
                     "pipes of at least this diameter are of class 'main'; smaller ones 'branch'",
                     "assumed: FACTS' DN150 floor for mains"),
]

#: Design assumptions by name.
DESIGN: Mapping[str, DesignAssumption] = MappingProxyType({a.name: a for a in _DESIGN_ITEMS})

#: Peak-day design demand per person by settlement kind (L/person/day).
PER_CAPITA_DESIGN_L_D: Mapping[str, float] = DESIGN["per_capita_design_l_d"].value
#: Average-day use per person for estimating population ↔ demand (L/person/day).
PER_CAPITA_ESTIMATE_L_D: float = DESIGN["per_capita_estimate_l_d"].value
#: Hourly demand patterns (24 multipliers from 00:00, mean 1) by pattern name.
DIURNAL_PATTERNS: Mapping[str, tuple[float, ...]] = DESIGN["diurnal_patterns"].value
#: Pattern name of each settlement kind.
PATTERN_OF_KIND: Mapping[str, str] = DESIGN["pattern_of_kind"].value
#: Diameter from which a pipe is a main (mm).
MAIN_DIAMETER_MM: float = DESIGN["main_diameter_mm"].value
