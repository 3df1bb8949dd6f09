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
