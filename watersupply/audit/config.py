"""Thresholds for an audit: the standards' defaults, a YAML config file, command-line values."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path


from .._errors import ConfigError
from ..standards import Thresholds, thresholds

__all__ = ["load_config", "audit_thresholds"]


def load_config(path: str | os.PathLike) -> dict[str, float]:
    """Read threshold overrides from a YAML file with a ``thresholds:`` mapping.

    Parameters
    ----------
    path
        YAML file, e.g. ``thresholds: {water_tariff_yuan_m3: 3.1}``.

    Returns
    -------
    dict
        Threshold name → value, checked against :data:`watersupply.standards.STANDARDS`.

    Raises
    ------
    ConfigError
        File missing or not YAML, no ``thresholds`` mapping, an unknown key or
        threshold name (with the closest valid names), a non-numeric or negative value.
    """
    from ..io import read_yaml

    p = Path(path)
    data = read_yaml(p, missing="config file not found; give a YAML file with a 'thresholds:' mapping",
                     invalid="not valid YAML ({error}); write e.g. 'thresholds: {{water_tariff_yuan_m3: 3.1}}'")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with key 'thresholds', got {type(data).__name__}")
    extra = sorted(str(k) for k in data if k != "thresholds")
    if extra:
        raise ConfigError(f"{p}: unknown key(s) {', '.join(map(repr, extra))}; the only key is 'thresholds' "
                          "(a mapping of threshold name to value, see watersupply.standards.STANDARDS)")
    over = data.get("thresholds") or {}
    if not isinstance(over, dict):
        raise ConfigError(f"{p}: 'thresholds' must be a mapping of threshold name to number, got {over!r}")
    try:
        thresholds(over)  # validates names and values
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return {str(k): float(v) for k, v in over.items()}


def audit_thresholds(config: str | os.PathLike | None = None, *, tariff: float | None = None,
                     electricity_tariff: float | None = None,
                     overrides: Mapping[str, float] | None = None) -> Thresholds:
    """Thresholds for an audit: defaults, then a config file, then explicit values.

    Parameters
    ----------
    config
        YAML file with a ``thresholds:`` mapping (see :func:`load_config`).
    tariff
        Uniform water tariff, ¥/m³ (``water_tariff_yuan_m3``).
    electricity_tariff
        Electricity tariff for pumping, ¥/kWh (``electricity_tariff_yuan_kwh``).
    overrides
        Further threshold overrides (applied last).

    Raises
    ------
    ConfigError
        Naming the option or threshold, the value received and what is allowed.
    """
    values: dict[str, float] = dict(load_config(config)) if config is not None else {}
    for name, value, option in (("water_tariff_yuan_m3", tariff, "--tariff"),
                                ("electricity_tariff_yuan_kwh", electricity_tariff, "--electricity-tariff")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{option} ({name}) must be a number >= 0, got {value!r}")
        values[name] = float(value)
    values.update(overrides or {})
    return thresholds(values)
