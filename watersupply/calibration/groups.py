"""Calibration parameter groups: roughness, demand multipliers and (optional) status groups.

Every group has one unknown: a factor on its members' initial values (pipe
Hazen-Williams C, or nodal base demand), bounded; a status group is a set of
links that may be closed in the field (a yes/no unknown, tried after the fit).

Roughness groups come from a pipe attribute (``material``, ``class``,
``zone``, or ``diameter`` in the classes of :data:`DIAMETER_CLASSES_MM`) or
from a user's CSV ``pipe,group[,lower,upper]``; demand groups from the node's
``zone`` or ``settlement_id``, or a CSV ``node,group[,lower,upper]``; status
groups from a CSV ``link,group``. Members left out of a user's CSV keep their
values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import ConfigError, closest
from ..schema import Network

__all__ = ["Group", "DIAMETER_CLASSES_MM", "ROUGHNESS_BOUNDS", "DEMAND_BOUNDS", "roughness_groups",
           "demand_groups", "status_groups", "read_group_csv", "zone_labels"]

#: Upper edges (mm) of the diameter classes used by ``by="diameter"``; the last class is open.
DIAMETER_CLASSES_MM = (80.0, 130.0, 260.0)
#: Default bounds of the roughness factor (× initial C).
ROUGHNESS_BOUNDS = (0.4, 1.6)
#: Default bounds of a demand multiplier.
DEMAND_BOUNDS = (0.5, 1.5)
ROUGHNESS_BY = ("diameter", "material", "class", "zone")
DEMAND_BY = ("zone", "reservoir_zone", "settlement")


@dataclass(frozen=True)
class Group:
    """One calibration unknown.

    Attributes
    ----------
    name
        ``C:<label>`` (roughness), ``D:<label>`` (demand) or ``S:<label>`` (status).
    kind
        ``"roughness"``, ``"demand"`` or ``"status"``.
    members
        Pipe, node or link ids, sorted.
    lower, upper
        Bounds of the factor (status groups: 0 closed, 1 as built).
    initial
        Length-weighted mean C (roughness), total base demand m³/d (demand), or 1 (status).
    """

    name: str
    kind: str
    members: tuple[str, ...]
    lower: float
    upper: float
    initial: float


def _diameter_label(d: float, edges: Sequence[float]) -> str:
    lo = 0.0
    for hi in edges:
        if d < hi:
            return f"DN{lo:g}-{hi:g}" if lo else f"DN<{hi:g}"
        lo = hi
    return f"DN>={lo:g}"


def _check_bounds(name: str, lower: float, upper: float) -> None:
    if not (np.isfinite(lower) and np.isfinite(upper) and 0 < lower < 1.0 < upper):
        raise ConfigError(f"group {name!r}: bounds must satisfy 0 < lower < 1 < upper (factors on the initial "
                          f"value), got {lower:g}..{upper:g}")


def read_group_csv(path: str | os.PathLike, *, member: str, valid: Sequence[str]) -> pd.DataFrame:
    """Read a ``<member>,group[,lower,upper]`` CSV, checking ids against `valid`.

    Raises
    ------
    ConfigError
        Naming the file and line: missing columns, unknown id, id listed twice, bad bounds.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: group file not found; give a CSV with columns {member},group[,lower,upper]")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8", skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a readable UTF-8 CSV ({str(exc).strip().splitlines()[0]})") from None
    df = df.rename(columns=lambda c: str(c).strip().lower())
    if member not in df.columns or "group" not in df.columns:
        raise ConfigError(f"{p}: the header must be {member},group[,lower,upper], got {','.join(df.columns)}")
    if not len(df):
        raise ConfigError(f"{p}: has no rows")
    ok = set(map(str, valid))
    seen: dict[str, int] = {}
    rows = []
    for i, r in enumerate(df.to_dict("records")):
        line = i + 2
        el, grp = str(r[member]).strip(), str(r["group"]).strip()
        if el not in ok:
            raise ConfigError(f"{p}: line {line}: unknown {member} {el!r}; {closest(el, ok)}")
        if not grp:
            raise ConfigError(f"{p}: line {line}: {member} {el!r} has an empty group name")
        if el in seen:
            raise ConfigError(f"{p}: line {line}: {member} {el!r} is already in a group (line {seen[el]}); "
                              "each element belongs to one group")
        seen[el] = line
        bounds = []
        for col in ("lower", "upper"):
            text = str(r.get(col, "")).strip()
            try:
                bounds.append(float(text) if text else np.nan)
            except ValueError:
                raise ConfigError(f"{p}: line {line}: {col} {text!r} is not a number") from None
        rows.append((el, grp, *bounds, line))
    return pd.DataFrame(rows, columns=[member, "group", "lower", "upper", "line"])


def _bounds_of(df: pd.DataFrame, default: tuple[float, float], name: str) -> tuple[float, float]:
    lo = df["lower"].dropna().unique()
    hi = df["upper"].dropna().unique()
    if len(lo) > 1 or len(hi) > 1:
        raise ConfigError(f"group {name!r} has different bounds on different lines (lines "
                          f"{', '.join(map(str, df['line'].tolist()[:5]))}); give them once or the same everywhere")
    lower = float(lo[0]) if len(lo) else default[0]
    upper = float(hi[0]) if len(hi) else default[1]
    _check_bounds(name, lower, upper)
    return lower, upper


def roughness_groups(net: Network, *, by: str | Sequence[str] = "diameter", csv: str | os.PathLike | None = None,
                     bounds: tuple[float, float] = ROUGHNESS_BOUNDS,
                     diameter_classes_mm: Sequence[float] = DIAMETER_CLASSES_MM) -> list[Group]:
    """Roughness groups of a network's pipes.

    Parameters
    ----------
    by
        Pipe attribute(s) to group by: ``diameter``, ``material``, ``class``, ``zone`` or a combination
        such as ``"material,diameter"``. Ignored when `csv` is given.
    csv
        A ``pipe,group[,lower,upper]`` file; pipes not in it are not calibrated.
    bounds
        Default factor bounds.

    Examples
    --------
    >>> from watersupply.loader import load_network
    >>> [g.name for g in roughness_groups(load_network(), by="material")]
    ['C:DI', 'C:PE']
    """
    _check_bounds("roughness default", *bounds)
    pipes = net["pipes"]
    ids = pipes["id"].astype(str)
    c = pd.to_numeric(pipes["roughness_c"], errors="coerce").to_numpy(dtype=float)
    length = pd.to_numeric(pipes["length_m"], errors="coerce").fillna(1.0).to_numpy(dtype=float) \
        if "length_m" in pipes else np.ones(len(pipes))
    if csv is not None:
        df = read_group_csv(csv, member="pipe", valid=ids)
        labels = pd.Series(None, index=ids.to_numpy(), dtype=object)
        labels.loc[df["pipe"].to_numpy()] = df["group"].to_numpy()
        user = {g: _bounds_of(d, bounds, g) for g, d in df.groupby("group", sort=True)}
    else:
        keys = [k.strip() for k in (by.split(",") if isinstance(by, str) else by)]
        bad = [k for k in keys if k not in ROUGHNESS_BY]
        if bad or not keys:
            raise ConfigError(f"cannot group roughness by {bad[0] if bad else by!r}; use one or more of "
                              f"{', '.join(ROUGHNESS_BY)} (comma-separated), or a pipe,group CSV")
        parts = []
        for k in keys:
            if k == "diameter":
                parts.append(pipes["diameter_mm"].astype(float).map(lambda d: _diameter_label(d, diameter_classes_mm)))
            else:
                if k not in pipes.columns:
                    raise ConfigError(f"cannot group roughness by {k!r}: the pipes layer has no column {k!r}")
                parts.append(pipes[k].astype(str).where(pipes[k].notna(), "none"))
        labels = pd.Series(["/".join(v) for v in zip(*[p.astype(str) for p in parts])], index=ids.to_numpy())
        user = {}
    out = []
    lab = labels.where(labels.notna(), "").astype(str).to_numpy()
    for g in sorted({v for v in lab if v}):
        mask = lab == g
        lo, hi = user.get(g, bounds)
        c0 = float(np.average(c[mask], weights=length[mask]))
        out.append(Group(f"C:{g}", "roughness", tuple(sorted(ids[mask])), lo, hi, c0))
    return out


def zone_labels(net: Network, *, by: str = "zone") -> pd.Series:
    """The label of every node by `by` (index: node id): ``zone``, ``reservoir_zone`` or ``settlement``.

    ``reservoir_zone`` is the zone a pressure zone was cut from (``R1`` for ``R1-Z23``, the names
    :func:`watersupply.zones.apply_zones` gives); nodes without a label get ``"unzoned"``. The demand
    groups and the spread logger placement (:func:`watersupply.calibration.synthetic.choose_loggers`)
    use the same labels.

    >>> from watersupply.loader import load_network
    >>> sorted(set(zone_labels(load_network(), by="reservoir_zone")) - {"WTP"})[:3]
    ['PS1', 'PS2', 'PS3']
    """
    nodes = net["nodes"]
    col = {"zone": "zone", "reservoir_zone": "zone", "settlement": "settlement_id"}.get(by)
    if col is None:
        raise ConfigError(f"cannot group demand by {by!r}; use one of {', '.join(DEMAND_BY)}, or a node,group CSV")
    if col not in nodes.columns:
        raise ConfigError(f"cannot group demand by {by!r}: the nodes layer has no column {col!r}")
    vals = nodes[col].astype(object).where(nodes[col].notna() & (nodes[col].astype(str).str.strip() != ""),
                                           "unzoned")
    if by == "reservoir_zone":
        vals = vals.astype(str).str.replace(r"(-Z\d+)+$", "", regex=True)
    return pd.Series(vals.to_numpy(), index=nodes["id"].astype(str).to_numpy(), dtype=object)


def demand_groups(net: Network, *, by: str = "zone", csv: str | os.PathLike | None = None,
                  bounds: tuple[float, float] = DEMAND_BOUNDS) -> list[Group]:
    """Demand-multiplier groups of the nodes with a base demand (groups without demand are left out).

    Parameters
    ----------
    by
        ``zone``, ``reservoir_zone`` (the zone a pressure zone was cut from: ``R1`` for ``R1-Z23``,
        the names :func:`watersupply.zones.apply_zones` gives) or ``settlement`` (node column
        ``settlement_id``); nodes without one form the group ``D:unzoned``. Ignored when `csv` is given.
    csv
        A ``node,group[,lower,upper]`` file; nodes not in it are not calibrated.

    Examples
    --------
    >>> from watersupply.loader import load_network
    >>> len(demand_groups(load_network(), by="settlement"))
    11
    """
    _check_bounds("demand default", *bounds)
    nodes = net["nodes"]
    ids = nodes["id"].astype(str)
    base = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0.0)
    has = (base > 0).to_numpy()
    if csv is not None:
        df = read_group_csv(csv, member="node", valid=ids)
        labels = pd.Series(None, index=ids.to_numpy(), dtype=object)
        labels.loc[df["node"].to_numpy()] = df["group"].to_numpy()
        user = {g: _bounds_of(d, bounds, g) for g, d in df.groupby("group", sort=True)}
    else:
        labels = zone_labels(net, by=by)  # no zone: group 'unzoned'
        user = {}
    out = []
    lab = labels.where(labels.notna(), "").astype(str).to_numpy()
    for g in sorted({v for v in lab[has] if v}):
        mask = (lab == g) & has
        lo, hi = user.get(g, bounds)
        out.append(Group(f"D:{g}", "demand", tuple(sorted(ids[mask])), lo, hi, float(base[mask].sum())))
    return out


def status_groups(net: Network, csv: str | os.PathLike) -> list[Group]:
    """Status groups (links suspected closed in the field) from a ``link,group`` CSV."""
    valid = list(net["pipes"]["id"].astype(str))
    df = read_group_csv(csv, member="link", valid=valid)
    return [Group(f"S:{g}", "status", tuple(sorted(d["link"])), 0.0, 1.0, 1.0)
            for g, d in df.groupby("group", sort=True)]
