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

The default tables are built from the project's one set of unit rates,
``watersupply/data/costs/*.yaml`` (read by :mod:`watersupply.costing`, each
file with its source; every cost figure there is an *assumed* order of
magnitude, not a Qijiang quotation), and the pipe catalogue
(:mod:`watersupply.pipe_catalogue`) for inner diameters and C:

``pe``
    PE100 SDR11 (PN 1.6 MPa) pipe by outside diameter dn110–dn630, supplied
    and laid in a rural road; inner diameters from GB/T 13663.2-2018, C = 145.
``di``
    Cement-lined ductile-iron (K9) pipe by DN100–DN1000 (inner diameter from
    GB/T 13295-2019 walls and lining), C = 130.
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

#: Name of each shipped pipe cost table → the material of :func:`watersupply.costing.pipe_rates` it is built from.
DEFAULT_TABLES = {"pe": "PE", "di": "DI"}
#: Sizes offered by the design tables (the usual trunk-main series; the catalogue has more).
_DESIGN_SIZES = {"PE": (110, 160, 200, 250, 315, 400, 500, 630), "DI": (100, 150, 200, 250, 300, 400, 500, 600, 700,
                                                                      800, 1000)}


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
        frames.append(_shipped_table(DEFAULT_TABLES[part]))
    raw = pd.concat(frames, ignore_index=True)
    out = check_candidates(raw.drop(columns=["source"]), source=f"shipped table {name!r}")
    out["source"] = raw.set_index(["diameter_mm", "material"])["source"].reindex(
        pd.MultiIndex.from_frame(out[["diameter_mm", "material"]])).to_numpy()
    return out


def _shipped_table(material: str) -> pd.DataFrame:
    """A candidate table from the shared unit rates: PE100 at PN1.6, or ductile iron, in the design sizes."""
    from ..costing import pipe_rates
    from ..pipe_catalogue import MATERIALS, di_inner_diameter_mm, pe_inner_diameter_mm

    r = pipe_rates().loc[material].reset_index()
    if material == "PE":
        r = r[(r["pn_mpa"] == 1.6) & r["dn_mm"].isin(_DESIGN_SIZES["PE"])]
        inner = [pe_inner_diameter_mm(dn, 1.6) for dn in r["dn_mm"]]
        nominal, label = [f"dn{dn}" for dn in r["dn_mm"]], "PE100"
    else:
        r = r[(r["pn_mpa"] == r["pn_mpa"].min()) & r["dn_mm"].isin(_DESIGN_SIZES["DI"])]
        inner = [di_inner_diameter_mm(dn) for dn in r["dn_mm"]]
        nominal, label = [f"DN{dn}" for dn in r["dn_mm"]], "ductile iron"
    return pd.DataFrame({"nominal": nominal, "diameter_mm": inner, "unit_cost_yuan_per_m": r["rate_yuan_m"].to_numpy(),
                         "roughness_c": MATERIALS[material], "material": label, "source": r["source"].to_numpy()})


def pump_costs() -> pd.DataFrame:
    """Shipped pump cost parameters (¥ per kW of motor, ¥ per new station), with sources.

    Read from ``watersupply/data/costs/pump_stations.yaml`` (:func:`watersupply.costing.item_rates`).

    >>> int(pump_costs().loc["pump_set_per_kw", "cost_yuan"])
    3500
    """
    from ..costing import item_rates

    return item_rates("pump_stations")


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

    Read from ``watersupply/data/costs/reservoirs.yaml`` (:func:`watersupply.costing.item_rates`).

    >>> int(reservoir_costs().loc["storage_per_m3", "cost_yuan"])
    950
    """
    from ..costing import item_rates

    return item_rates("reservoirs")
