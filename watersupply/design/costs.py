"""Cost tables for network design: candidate pipe sizes, pumps and reservoirs.

A *candidate table* lists the pipe sizes a design may choose, one row each:

``diameter_mm`` (required)
    Internal (hydraulic) diameter, mm.
``unit_cost…`` (required, one column)
    Supply-and-lay cost per metre; the column name carries the currency, e.g.
    ``unit_cost_usd_per_m`` or ``unit_cost_yuan_per_m`` (plain ``unit_cost`` is
    accepted too).
``roughness_c`` (optional)
    Hazen-Williams C of the new pipe; without it a replaced pipe keeps its C.
``material``, ``nominal`` (optional)
    Labels written to ``works.csv`` (e.g. ``PE100``, ``dn200``).

The default tables ship as package data (``watersupply/design/data/*.csv``,
found through :mod:`importlib.resources`), each row with its source; every
cost figure there is an *assumed* order of magnitude, not a Qijiang quotation:

``pe``
    PE100 SDR11 (1.6 MPa) pipe by outside diameter dn110–dn630; internal
    diameters from GB/T 13663.2-2018, C = 140 (GB 50013-2018 Table 7.2.2).
``di``
    Cement-lined ductile-iron (K9) pipe by DN100–DN1000, C = 130.
``pumps`` / ``reservoirs``
    ¥ per kW of pump motor and per m³ of storage, plus a fixed cost per new
    station or reservoir (:func:`pump_costs`, :func:`reservoir_costs`).

Examples
--------
>>> t = pipe_costs("pe")
>>> t.loc[t["nominal"] == "dn200", "diameter_mm"].item()
163.6
>>> t.attrs["currency"]
'yuan'
"""

from __future__ import annotations

import io
import os
import warnings
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import ConfigError

__all__ = ["DEFAULT_TABLES", "pipe_costs", "read_candidates", "check_candidates", "pump_costs", "pump_sizes", "reservoir_costs"]

#: Name of each shipped pipe cost table → its file in ``watersupply/design/data``.
DEFAULT_TABLES = {"pe": "pipes_pe100_dn.csv", "di": "pipes_ductile_iron_dn.csv"}


def _data(name: str) -> str:
    return files("watersupply.design").joinpath("data", name).read_text(encoding="utf-8")


def _currency(col: str) -> str:
    rest = col[len("unit_cost"):].strip("_")
    return rest.split("_per_")[0] if rest else "cost units"


def check_candidates(table: pd.DataFrame, *, source: str = "candidate table") -> pd.DataFrame:
    """Validate a candidate pipe table and return it tidy (sorted by diameter, 0-based index).

    Parameters
    ----------
    table
        Rows of candidate sizes (see the module docstring for the columns).
    source
        Where the table came from, named in error messages.

    Returns
    -------
    DataFrame
        Columns ``diameter_mm``, ``unit_cost``, ``roughness_c`` (NaN where not
        given), ``material``, ``nominal``; ``attrs["currency"]`` and
        ``attrs["source"]`` set.

    Raises
    ------
    ConfigError
        A column is missing or duplicated, a value is not a positive number
        (naming the row), or two rows have the same diameter and material.

    Examples
    --------
    >>> check_candidates(pd.DataFrame({"diameter_mm": [100, 150], "unit_cost": [10, 20]}))["unit_cost"].tolist()
    [10.0, 20.0]
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"'table' should be a DataFrame, got {type(table).__name__}")
    df = table.copy()
    df.columns = [str(c).strip() for c in df.columns]
    cols = list(df.columns)
    if "diameter_mm" not in cols:
        raise ConfigError(f"{source}: no 'diameter_mm' column (columns: {', '.join(cols) or 'none'}); "
                          "add the internal diameter of each candidate size in mm")
    cost_cols = [c for c in cols if c.startswith("unit_cost")]
    if not cost_cols:
        raise ConfigError(f"{source}: no unit cost column (columns: {', '.join(cols)}); add one named "
                          "'unit_cost_<currency>_per_m', e.g. unit_cost_yuan_per_m")
    if len(cost_cols) > 1:
        raise ConfigError(f"{source}: several unit cost columns ({', '.join(cost_cols)}); keep exactly one")
    if not len(df):
        raise ConfigError(f"{source}: the table has no rows; list at least one candidate size")
    ccol = cost_cols[0]
    rough_col = "roughness_c" if "roughness_c" in cols else ("roughness" if "roughness" in cols else None)
    checks = [("diameter_mm", "diameter_mm"), (ccol, "unit cost")] + ([(rough_col, "roughness_c")] if rough_col else [])
    out = pd.DataFrame(index=df.index)
    for col, what in checks:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = ~(vals > 0) & ~(df[col].isna() & (col == rough_col))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(f"{source}: row {i + 2} (line {i + 2} of a CSV file), column {col!r}: "
                              f"{df[col].iloc[i]!r} is not a positive number; every {what} must be > 0")
        out[col if col != ccol else "unit_cost"] = vals.astype(float)
    if rough_col and rough_col != "roughness_c":
        out = out.rename(columns={rough_col: "roughness_c"})
    if "roughness_c" not in out:
        out["roughness_c"] = np.nan
    out["material"] = df["material"].astype(str) if "material" in cols else ""
    out["nominal"] = (df["nominal"].astype(str) if "nominal" in cols
                      else out["diameter_mm"].map(lambda d: f"{d:g} mm"))
    dup = out.duplicated(["diameter_mm", "material"], keep=False)
    if dup.any():
        rows = [str(i + 2) for i in np.flatnonzero(dup.to_numpy())]
        raise ConfigError(f"{source}: rows {', '.join(rows)} repeat diameter "
                          f"{out.loc[dup, 'diameter_mm'].iloc[0]:g} mm; keep one row per size (and material)")
    out = out.sort_values(["diameter_mm", "unit_cost"], kind="stable").reset_index(drop=True)
    falls = any((np.diff(g["unit_cost"].to_numpy()) < 0).any() for _m, g in out.groupby("material", sort=True))
    if falls:
        warnings.warn(f"{source}: unit cost falls as the diameter grows somewhere (within one material); a larger "
                      "pipe that is "
                      "cheaper makes the smaller one pointless — check the table", UserWarning, stacklevel=2)
    out.attrs["currency"] = _currency(ccol)
    out.attrs["source"] = source
    return out[["diameter_mm", "unit_cost", "roughness_c", "material", "nominal"]]


def read_candidates(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a candidate pipe table from a CSV file (see :func:`check_candidates`).

    Raises
    ------
    ConfigError
        The file is missing, not a CSV table, or fails the checks.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: candidate table not found; give a CSV with columns diameter_mm and "
                          "unit_cost_<currency>_per_m")
    try:
        df = pd.read_csv(p, encoding="utf-8", comment="#", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{p}: not a readable UTF-8 CSV table ({first})") from None
    return check_candidates(df, source=str(p))


def pipe_costs(name: str = "pe") -> pd.DataFrame:
    """A shipped pipe cost table: ``"pe"`` (PE100 by dn) or ``"di"`` (ductile iron by DN), or both (``"pe+di"``).

    Raises
    ------
    ConfigError
        Unknown name (the valid ones are listed).
    """
    parts = [s.strip().lower() for s in str(name).split("+")]
    frames = []
    for part in parts:
        if part not in DEFAULT_TABLES:
            raise ConfigError(f"no shipped pipe cost table {part!r}; choose from {', '.join(DEFAULT_TABLES)} "
                              "(or join them: 'pe+di'), or give your own CSV")
        frames.append(pd.read_csv(io.StringIO(_data(DEFAULT_TABLES[part]))))
    raw = pd.concat(frames, ignore_index=True)
    out = check_candidates(raw.drop(columns=["source"]), source=f"shipped table {name!r}")
    out["source"] = raw.set_index(["diameter_mm", "material"])["source"].reindex(
        pd.MultiIndex.from_frame(out[["diameter_mm", "material"]])).to_numpy()
    return out


def _items(name: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(_data(name))).set_index("item")


def pump_costs() -> pd.DataFrame:
    """Shipped pump cost parameters (¥ per kW of motor, ¥ per new station), with sources.

    >>> int(pump_costs().loc["pump_set_per_kw", "cost_yuan"])
    3500
    """
    return _items("pumps.csv")


def pump_sizes() -> pd.DataFrame:
    """Shipped catalogue of pump duty flows (L/s) a replacement pump is chosen from, with the source.

    >>> pump_sizes()["duty_flow_ls"].tolist()[:4]
    [5.0, 8.0, 10.0, 12.5]
    """
    t = pd.read_csv(io.StringIO(_data("pump_sizes.csv")))
    t["duty_flow_ls"] = t["duty_flow_ls"].astype(float)
    return t


def reservoir_costs() -> pd.DataFrame:
    """Shipped reservoir cost parameters (¥ per m³ of storage, ¥ per new reservoir), with sources.

    >>> int(reservoir_costs().loc["storage_per_m3", "cost_yuan"])
    950
    """
    return _items("reservoirs.csv")
