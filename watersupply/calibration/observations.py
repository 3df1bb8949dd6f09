"""Field logs for calibration: long-form CSV ``time,element,quantity,value,unit``.

``quantity`` is one of pressure | head | level | flow | demand; ``time`` is
hours from the run start, or an ISO 8601 timestamp (then the run start is the
``start`` argument, or the earliest timestamp in the file). Values are
converted to SI (m, m³/s). An optional ``sigma`` column gives the reading's
standard error in the same unit (the weight of the reading is 1/σ).

Validation errors name the CSV line (the header is line 1).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import ConfigError, closest
from ..hydraulics import G, LS_TO_M3S, M3D_TO_M3S, SECONDS_PER_HOUR
from ..schema import Network

__all__ = ["QUANTITIES", "UNITS", "read_observations", "validate_observations", "sensor_table"]

QUANTITIES = ("pressure", "head", "level", "flow", "demand")

_WATER_KG_M3 = 1000.0
_LENGTH = {"m": 1.0, "cm": 0.01, "mm": 0.001, "ft": 0.3048,
           "kpa": 1e3 / (_WATER_KG_M3 * G), "mpa": 1e6 / (_WATER_KG_M3 * G), "bar": 1e5 / (_WATER_KG_M3 * G),
           "psi": 6894.757 / (_WATER_KG_M3 * G)}
_FLOW = {"m3/s": 1.0, "l/s": LS_TO_M3S, "lps": LS_TO_M3S, "m3/h": 1.0 / SECONDS_PER_HOUR,
         "m3/d": M3D_TO_M3S, "l/min": LS_TO_M3S / 60.0}
#: Accepted units per quantity and their factor to SI (m of water, m³/s). ``m³`` may be written ``m3``.
UNITS: dict[str, dict[str, float]] = {"pressure": _LENGTH, "head": {k: _LENGTH[k] for k in ("m", "ft")},
                                      "level": {k: _LENGTH[k] for k in ("m", "cm", "mm", "ft")},
                                      "flow": _FLOW, "demand": _FLOW}
_COLUMNS = ("time", "element", "quantity", "value", "unit")

#: Default standard error of a reading when the file gives none: m for pressure, head and level;
#: for flow and demand a share of the sensor's mean absolute reading (floor 0.1 L/s).
DEFAULT_SIGMA = {"pressure": 0.2, "head": 0.2, "level": 0.2, "flow": 0.02, "demand": 0.02}



def _line(i: int) -> str:
    return f"line {i + 2}"


def read_observations(path: str | os.PathLike, net: Network, *, start: str | None = None,
                      duration_h: float | None = None, min_readings: int = 3) -> pd.DataFrame:
    """Read and validate an observation CSV (see the module docstring for the format).

    Parameters
    ----------
    path
        The CSV file (UTF-8).
    net
        The network the readings belong to (element ids and kinds are checked).
    start
        Run start (ISO 8601) when times are timestamps; default: the earliest one.
    duration_h
        Run length (h); readings after it are rejected. Default: the network's.
    min_readings
        Minimum readings per sensor.

    Returns
    -------
    DataFrame
        Columns ``time_h, element, quantity, value, sigma, line`` (SI values; ``sigma`` NaN where not
        given), sorted by time, sensor.

    Raises
    ------
    ConfigError
        Naming the file and line: missing column, unknown element/quantity/unit, value not a number,
        duplicate reading, reading outside the run, too few readings per sensor.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: observation file not found; give a CSV with columns {','.join(_COLUMNS)}")
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{p}: not a readable UTF-8 CSV ({first}); expected columns {','.join(_COLUMNS)}") from None
    try:
        return validate_observations(raw, net, start=start, duration_h=duration_h, min_readings=min_readings)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def _elements(net: Network) -> tuple[set[str], set[str], set[str]]:
    nodes = net["nodes"]
    tanks = set(nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str))
    links = set(net["pipes"]["id"].astype(str))
    for layer in ("pumps", "control_valves"):
        df = net.get(layer)
        if df is not None and len(df):
            links |= set(df["id"].astype(str))
    return set(nodes["id"].astype(str)), tanks, links


def validate_observations(raw: pd.DataFrame, net: Network, *, start: str | None = None,
                          duration_h: float | None = None, min_readings: int = 3) -> pd.DataFrame:
    """Validate observations given as a DataFrame of strings (as read from the CSV); see :func:`read_observations`."""
    from ..model import sim_options

    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in _COLUMNS if c not in raw.columns]
    if missing:
        raise ConfigError(f"missing column(s) {', '.join(missing)}; the header must be {','.join(_COLUMNS)}"
                          f"[,sigma], got {','.join(map(str, raw.columns))}")
    if not len(raw):
        raise ConfigError("has no readings")
    duration = float(duration_h) if duration_h is not None else sim_options(net)["duration_h"]
    nodes, tanks, links = _elements(net)
    times = raw["time"].astype(str).str.strip()
    hours = pd.to_numeric(times, errors="coerce")
    if hours.isna().any():
        stamps = pd.to_datetime(times, errors="coerce", format="ISO8601")
        bad = stamps.isna() & hours.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(f"{_line(i)}: time {times.iloc[i]!r} is neither hours from the run start nor an "
                              "ISO 8601 timestamp (e.g. 2026-07-01T06:00)")
        if hours.notna().any():
            i = int(np.flatnonzero(hours.notna().to_numpy())[0])
            raise ConfigError(f"{_line(i)}: time {times.iloc[i]!r} is in hours but other rows are timestamps; "
                              "use one form for the whole file")
        t0 = pd.Timestamp(start) if start is not None else stamps.min()
        if stamps.dt.tz is not None and t0.tz is None:
            t0 = t0.tz_localize(stamps.dt.tz)
        hours = (stamps - t0).dt.total_seconds() / SECONDS_PER_HOUR
    out_rows = []
    has_sigma = "sigma" in raw.columns
    for i, row in enumerate(raw.itertuples(index=False)):
        q = str(row.quantity).strip().lower()
        if q not in QUANTITIES:
            raise ConfigError(f"{_line(i)}: unknown quantity {row.quantity!r}; use one of {', '.join(QUANTITIES)}")
        el = str(row.element).strip()
        if q == "flow":
            if el not in links:
                raise ConfigError(f"{_line(i)}: flow sensor on {el!r}, which is not a pipe, pump or valve; "
                                  f"{closest(el, links)}")
        elif q == "level":
            if el not in tanks:
                raise ConfigError(f"{_line(i)}: level sensor on {el!r}, which is not a reservoir (tank); "
                                  f"{closest(el, tanks)}")
        elif el not in nodes:
            raise ConfigError(f"{_line(i)}: {q} sensor on {el!r}, which is not a node; {closest(el, nodes)}")
        unit = str(row.unit).strip().lower().replace("³", "3").replace(" ", "")
        factor = UNITS[q].get(unit)
        if factor is None:
            raise ConfigError(f"{_line(i)}: unit {row.unit!r} is not known for {q}; use one of "
                              f"{', '.join(UNITS[q])}")
        try:
            value = float(str(row.value).strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"{_line(i)}: value {row.value!r} is not a finite number")
        sigma = math.nan
        if has_sigma and str(row.sigma).strip():
            try:
                sigma = float(str(row.sigma).strip()) * factor
            except ValueError:
                sigma = math.nan
            if not sigma > 0:
                raise ConfigError(f"{_line(i)}: sigma {row.sigma!r} must be a number > 0 (or left empty)")
        h = float(hours.iloc[i])
        if not (0.0 <= h <= duration + 1e-9):
            raise ConfigError(f"{_line(i)}: time {times.iloc[i]!r} ({h:g} h) is outside the run (0–{duration:g} h); "
                              "drop the reading, or lengthen the run (duration_h)")
        out_rows.append((round(h, 6), el, q, value * factor, sigma, i + 2))
    obs = pd.DataFrame(out_rows, columns=["time_h", "element", "quantity", "value", "sigma", "line"])
    dup = obs.duplicated(["time_h", "element", "quantity"], keep="first")
    if dup.any():
        j = int(np.flatnonzero(dup.to_numpy())[0])
        r = obs.iloc[j]
        first = obs[(obs.time_h == r.time_h) & (obs.element == r.element) & (obs.quantity == r.quantity)].line.iloc[0]
        raise ConfigError(f"line {r.line}: duplicate {r.quantity} reading of {r.element!r} at {r.time_h:g} h "
                          f"(already on line {first}); keep one")
    counts = obs.groupby(["element", "quantity"]).size()
    few = counts[counts < min_readings]
    if len(few):
        (el, q), n = next(iter(few.items()))
        raise ConfigError(f"sensor {el!r} ({q}) has {n} reading(s), fewer than {min_readings}; add readings "
                          f"or drop the sensor ({len(few)} sensor(s) too short)")
    return obs.sort_values(["time_h", "quantity", "element"], kind="stable").reset_index(drop=True)


def sensor_table(obs: pd.DataFrame) -> pd.DataFrame:
    """One row per sensor (``element, quantity``) with its number of readings, sorted.

    >>> sensor_table(pd.DataFrame({"element": ["a", "a", "b"], "quantity": ["pressure"] * 3})).n.tolist()
    [2, 1]
    """
    return (obs.groupby(["element", "quantity"]).size().rename("n").reset_index()
            .sort_values(["quantity", "element"], kind="stable").reset_index(drop=True))

