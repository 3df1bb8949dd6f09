"""Electricity tariffs as data: time-of-use periods and prices, validated on load.

A tariff file is a small YAML document (read with ``yaml.safe_load``, validated
by a pydantic schema that refuses unknown fields); errors name the file, line
and field, and say how to fix it::

    name: chongqing_tou_assumed          # [a-z0-9_-]
    title_zh: 重庆一般工商业分时电价(假定)
    title_en: Chongqing general industrial & commercial time-of-use tariff (assumed)
    source: where the hours and prices come from
    assumed: true                        # true when they are not from a published schedule
    periods:                             # together they cover 00:00-24:00 exactly once
      - {kind: valley, price_yuan_kwh: 0.26, hours: ["00:00-08:00"]}
      - {kind: flat, price_yuan_kwh: 0.65, hours: ["08:00-11:00", "17:00-20:00", "22:00-24:00"]}
      - {kind: peak, price_yuan_kwh: 1.04, hours: ["11:00-17:00", "20:00-22:00"]}
    demand_charge_yuan_kw_month: 0.0     # optional: ¥ per kW of a station's highest power per month

Period kinds: ``critical_peak`` (尖峰), ``peak`` (高峰), ``flat`` (平段), ``valley``
(低谷); hours are whole-hour ranges ``HH:00-HH:00`` (``24:00`` ends the day; a
range may wrap past midnight, ``23:00-07:00``). Critical-peak hours are listed
under ``critical_peak`` only, not also under ``peak``.

The bundled default (:data:`DEFAULT_TARIFF`, found through
:mod:`importlib.resources` so it works from a wheel) is a Chongqing general
industrial-and-commercial structure whose hours and prices are **assumed**; the
file says why.

>>> tariff = load_tariff()
>>> tariff.assumed, [round(float(p), 2) for p in hourly_prices(tariff)[[0, 9, 12]]]
(True, [0.26, 0.65, 1.04])
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from ._errors import ConfigError, closest
from .io import read_yaml_document, yaml_line_map

__all__ = ["PERIOD_KINDS", "PERIOD_LABELS", "DEFAULT_TARIFF", "Tariff", "TariffPeriod", "default_tariff_path",
           "load_tariff", "parse_tariff", "hourly_prices", "hourly_kinds"]

#: Period kinds, most expensive first.
PERIOD_KINDS = ("critical_peak", "peak", "flat", "valley")
#: Labels of the period kinds: (Chinese, English).
PERIOD_LABELS = {"critical_peak": ("尖峰", "critical peak"), "peak": ("高峰", "peak"), "flat": ("平段", "flat"),
                 "valley": ("低谷", "valley")}
#: File name of the bundled default tariff (package data under ``watersupply/data/tariffs``).
DEFAULT_TARIFF = "chongqing_tou.yaml"
#: Largest tariff file accepted (bytes).
MAX_TARIFF_BYTES = 64_000

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class TariffPeriod(BaseModel):
    """One time-of-use period: its kind, price and the hours it covers."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["critical_peak", "peak", "flat", "valley"]
    price_yuan_kwh: float = Field(ge=0, allow_inf_nan=False)
    hours: list[str] = Field(min_length=1)
    name_zh: str | None = None
    name_en: str | None = None

    @field_validator("hours")
    @classmethod
    def _ranges(cls, v: list[str]) -> list[str]:
        for text in v:
            hour_range(text)
        return v

    def hour_list(self) -> list[int]:
        """Hours of the day (0–23) this period covers, in order."""
        out: list[int] = []
        for text in self.hours:
            out += hour_range(text)
        return out


class Tariff(BaseModel):
    """A time-of-use electricity tariff (see the module docstring for the file format)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    title_zh: str
    title_en: str
    source: str
    assumed: bool
    periods: list[TariffPeriod] = Field(min_length=1)
    demand_charge_yuan_kw_month: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    days_per_month: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    _source_path: str = PrivateAttr(default="tariff")

    @property
    def source_path(self) -> str:
        """The file the tariff was read from (or ``"tariff"``)."""
        return self._source_path


def hour_range(text: str) -> list[int]:
    """Hours covered by a range ``"HH:00-HH:00"`` (end excluded; wraps past midnight).

    >>> hour_range("22:00-24:00"), hour_range("23:00-02:00")
    ([22, 23], [23, 0, 1])
    """
    m = _RANGE.match(str(text))
    if not m:
        raise ValueError(f"hour range {text!r} must look like '08:00-11:00' (whole hours, 24:00 ends the day)")
    h0, m0, h1, m1 = (int(g) for g in m.groups())
    if m0 or m1:
        raise ValueError(f"hour range {text!r} must start and end on whole hours (the schedule is hourly); "
                         "round it to HH:00")
    if not (0 <= h0 <= 23 and 0 <= h1 <= 24):
        raise ValueError(f"hour range {text!r} has an hour outside 00:00-24:00")
    if h0 == h1 % 24:
        raise ValueError(f"hour range {text!r} is empty or covers the whole day; give start and end hours that differ")
    end = h1 if h1 > h0 else h1 + 24
    return [h % 24 for h in range(h0, end)]


def default_tariff_path() -> Path:
    """Path of the bundled default tariff (package data, found with :mod:`importlib.resources`)."""
    ref = resources.files("watersupply") / "data" / "tariffs" / DEFAULT_TARIFF
    with resources.as_file(ref) as p:
        return Path(p)


_line_map = yaml_line_map


def _path_of(loc: tuple) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] = f"{parts[-1]}[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _where(source: str, lines: Mapping[str, int], path: str) -> str:
    line = lines.get(path)
    while line is None and ("." in path or "[" in path):
        path = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
        line = lines.get(path)
    return f"{source}:{line}" if line else source


def parse_tariff(data: Any, *, source: str = "tariff", lines: Mapping[str, int] | None = None) -> Tariff:
    """Validate a tariff given as a mapping (e.g. from ``yaml.safe_load``).

    Raises
    ------
    ConfigError
        Naming the source (and line), the field and the fix: unknown fields,
        negative prices, malformed hour ranges, periods that overlap or leave
        hours of the day uncovered.

    Examples
    --------
    >>> t = parse_tariff({"name": "two", "title_zh": "两段", "title_en": "two periods", "source": "test",
    ...                   "assumed": True, "periods": [
    ...                       {"kind": "valley", "price_yuan_kwh": 0.3, "hours": ["22:00-06:00"]},
    ...                       {"kind": "peak", "price_yuan_kwh": 1.0, "hours": ["06:00-22:00"]}]})
    >>> hourly_kinds(t)[[0, 6, 21, 22]].tolist()
    ['valley', 'peak', 'peak', 'valley']
    """
    lines = dict(lines or {})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a tariff must be a YAML mapping with name, title_zh, title_en, source, "
                          f"assumed and periods; got {type(data).__name__}")
    try:
        tariff = Tariff.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            path = _path_of(tuple(err.get("loc", ())))
            kind, value = err.get("type", ""), err.get("input")
            name = path.rsplit(".", 1)[-1]
            if kind == "extra_forbidden":
                model = TariffPeriod if path.startswith("periods[") else Tariff
                valid = list(model.model_fields)
                text = f"unknown field {name!r}; valid fields here: {', '.join(valid)} ({closest(name, valid)})"
            elif kind == "missing":
                text = f"required field {name!r} is missing"
            elif kind == "literal_error":
                text = f"unknown period kind {value!r}; use one of {', '.join(PERIOD_KINDS)}"
            elif kind == "greater_than_equal" and "price" in name:
                text = f"a price must be >= 0 ¥/kWh, got {value!r}"
            else:
                msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
                text = f"{msg}, got {value!r}"
            problems.append(f"{_where(source, lines, path)}: {path or '(top level)'}: {text}")
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError("; ".join(problems[:3]) + more) from None
    owner: dict[int, int] = {}
    for i, period in enumerate(tariff.periods):
        for h in period.hour_list():
            if h in owner:
                j = owner[h]
                raise ConfigError(
                    f"{_where(source, lines, f'periods[{i}].hours')}: periods[{i}] ({period.kind}) and periods[{j}] "
                    f"({tariff.periods[j].kind}) overlap at {h:02d}:00-{h + 1:02d}:00; every hour of the day "
                    "belongs to exactly one period — remove it from one of them")
            owner[h] = i
    missing = [h for h in range(24) if h not in owner]
    if missing:
        spans = ", ".join(f"{h:02d}:00-{h + 1:02d}:00" for h in missing)
        raise ConfigError(f"{_where(source, lines, 'periods')}: periods: the hours do not cover the whole day; "
                          f"no period covers {spans} — add them to a period")
    tariff._source_path = source
    return tariff


def load_tariff(path: str | os.PathLike | None = None) -> Tariff:
    """Read and validate a tariff YAML file (default: the bundled :data:`DEFAULT_TARIFF`).

    Raises
    ------
    ConfigError
        Missing file, malformed YAML (with line and column), or an invalid tariff
        (see :func:`parse_tariff`).
    """
    p = Path(path) if path is not None else default_tariff_path()
    if not p.is_file():
        raise ConfigError(f"{p}: tariff file not found; give a YAML file with time-of-use periods "
                          f"(see the bundled {DEFAULT_TARIFF})")
    data, root = read_yaml_document(p, error=ConfigError, what="a tariff file", max_bytes=MAX_TARIFF_BYTES,
                                    syntax_hint="fix the syntax (indentation, ':' after keys, quotes around "
                                                "'08:00-11:00')",
                                    too_big_hint="a tariff is a few periods")
    if root is None:
        raise ConfigError(f"{p}: the file is empty; a tariff needs name, title_zh, title_en, source, assumed "
                          "and periods")
    return parse_tariff(data, source=str(p), lines=_line_map(root))


def hourly_prices(tariff: Tariff) -> np.ndarray:
    """Energy price (¥/kWh) of each hour of the day, 0–23."""
    out = np.full(24, np.nan)
    for period in tariff.periods:
        out[period.hour_list()] = period.price_yuan_kwh
    return out


def hourly_kinds(tariff: Tariff) -> np.ndarray:
    """Period kind of each hour of the day, 0–23."""
    out = np.empty(24, dtype=object)
    for period in tariff.periods:
        out[period.hour_list()] = period.kind
    return out
