"""Standards as data: values, sources, overrides."""

from __future__ import annotations

import doctest

import pytest

from watersupply import standards
from watersupply._errors import ConfigError


def test_every_threshold_has_a_source_and_unit():
    for t in standards.STANDARDS.values():
        assert t.source and t.unit and t.meaning


def test_gb50013_and_rural_rules():
    assert standards.urban_service_head_m(6) == 28.0
    assert standards.rural_service_head_m(2) == 10.0
    assert standards.service_head_m("community", 3) == 16.0


def test_overrides_are_recorded_and_checked():
    t = standards.thresholds({"water_tariff_yuan_m3": 3.0})
    assert t["water_tariff_yuan_m3"] == 3.0
    assert t.overridden == {"water_tariff_yuan_m3": (2.35, 3.0)}
    with pytest.raises(ConfigError, match="unknown threshold 'water_tarif'.*water_tariff_yuan_m3"):
        standards.thresholds({"water_tarif": 3})
    with pytest.raises(ConfigError, match="must be a finite number >= 0"):
        standards.thresholds({"water_tariff_yuan_m3": -1})


def test_docstring_examples():
    from watersupply import _errors
    for mod in (standards, _errors):
        assert doctest.testmod(mod).failed == 0


def test_design_assumptions_are_documented_data_used_by_the_builders():
    from watersupply import build, convert, generator

    for a in standards.DESIGN.values():
        assert a.source and a.unit and a.meaning, a.name
    assert dict(standards.PER_CAPITA_DESIGN_L_D) == {"community": 200.0, "village": 120.0}
    assert standards.PER_CAPITA_ESTIMATE_L_D == 150.0 and standards.MAIN_DIAMETER_MM == 150.0
    for name, pattern in standards.DIURNAL_PATTERNS.items():
        assert len(pattern) == 24 and abs(sum(pattern) / 24 - 1) < 1e-3, name
    assert set(standards.PATTERN_OF_KIND.values()) <= set(standards.DIURNAL_PATTERNS)
    # one source: the generator, the INP converter and the GIS builder read the same objects
    assert generator.PATTERNS is standards.DIURNAL_PATTERNS and generator.PER_CAPITA_L is standards.PER_CAPITA_DESIGN_L_D
    assert convert.PER_CAPITA_L_D == standards.PER_CAPITA_ESTIMATE_L_D
    assert convert.MAIN_DIAMETER_MM == standards.MAIN_DIAMETER_MM
    assert build.DIURNAL_PATTERNS is standards.DIURNAL_PATTERNS
    with pytest.raises(TypeError):
        standards.PER_CAPITA_DESIGN_L_D["village"] = 150.0  # read-only: change it in standards.py, documented
