"""Bill of quantities and capital-cost estimate of a network's works, beside a published cost.

Unit rates live in one place, the YAML files of ``watersupply/data/costs/``
(each with its source; every figure there is an *assumed* order of magnitude,
not a quotation):

``pipes_pe100.yaml``
    PE100 by dn and pressure class, supply and lay in a rural road.
``pipes_ductile_iron.yaml``
    Ductile iron K9 by DN, supply and lay in a road trench.
``pump_stations.yaml``
    ¥ per kW of pump set and ¥ per station.
``reservoirs.yaml``
    ¥ per m³ of storage and ¥ per reservoir.

The design subpackage reads its candidate tables from the same files
(:func:`watersupply.design.pipe_costs`).

:func:`bill_of_quantities` lists the pipes by material, dn and class (km),
the pump stations (kW) and the reservoirs (m³), each priced;
:func:`capital_cost` totals it and sets it beside the published figure — for
Tonghui the source article's ¥15 M+ for the 2020 works (1 plant, 7 pump
stations, 9 reservoirs, 439 km of pipe: about ¥34 per metre all in). Pipes
and facilities flagged ``existing`` (pre-existing assets reused, see
:func:`watersupply.pipe_catalogue.size_pipes`) are listed but not priced; the
water plant is listed but not priced (treatment works have no unit rate here).

Examples
--------
>>> r = pipe_rates()
>>> float(r.loc[("PE", 110, 1.0), "rate_yuan_m"]), float(r.loc[("DI", 150, 1.0), "rate_yuan_m"])
(69.0, 540.0)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

import numpy as np
import pandas as pd

from ._errors import ConfigError, NetworkDataError
from .hydraulics import LS_TO_M3S, pump_power_kw
from .pipe_catalogue import DI_PN, PE_SDR, pn_label
from .schema import Network

__all__ = ["PUBLISHED_COST_YUAN", "PUBLISHED_PIPE_M", "COST_FACTOR", "RATE_FILES", "read_rates", "pipe_rates",
           "item_rates", "pipe_rate", "bill_of_quantities", "CostEstimate", "capital_cost"]

#: The source article's cost of the 2020 works (¥15 M+), yuan.
PUBLISHED_COST_YUAN = 15.0e6
#: Pipe length of the 2020 works in the article: 177 km mains + 262 km branches, m.
PUBLISHED_PIPE_M = 439_000.0
#: An estimate "agrees" with the published cost within this factor either way.
COST_FACTOR = 1.5
#: The shipped unit-rate files (``watersupply/data/costs``) by what they price.
RATE_FILES = {"PE": "pipes_pe100.yaml", "DI": "pipes_ductile_iron.yaml", "pump_stations": "pump_stations.yaml",
              "reservoirs": "reservoirs.yaml"}
#: Default pump efficiency when a pump has none (``standards.pump_efficiency``).
_DEFAULT_EFFICIENCY = 0.75


@cache
def _load(name: str) -> dict:
    import yaml

    text = files("watersupply").joinpath("data", "costs", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def read_rates(what: str) -> dict:
    """The parsed unit-rate file for `what` (``"PE"``, ``"DI"``, ``"pump_stations"``, ``"reservoirs"``).

    Raises
    ------
    ConfigError
        Unknown name (the valid ones are listed).
    """
    if what not in RATE_FILES:
        raise ConfigError(f"no unit-rate file for {what!r}; choose from {', '.join(RATE_FILES)}")
    return copy.deepcopy(_load(RATE_FILES[what]))


def pipe_rates() -> pd.DataFrame:
    """All shipped pipe unit rates, indexed by (material, dn_mm, pn_mpa).

    Returns
    -------
    DataFrame
        Columns ``rate_yuan_m`` (supply and lay, ¥/m) and ``source``. Ductile iron
        has one rate per DN, repeated for each class it is specified at.
    """
    rows = []
    pe = read_rates("PE")
    for dn, by_pn in pe["rates"].items():
        for pn, rate in by_pn.items():
            rows.append(("PE", int(dn), float(pn), float(rate), pe["source"]))
    di = read_rates("DI")
    for dn, rate in di["rates"].items():
        for pn in DI_PN:
            rows.append(("DI", int(dn), float(pn), float(rate), di["source"]))
    df = pd.DataFrame(rows, columns=["material", "dn_mm", "pn_mpa", "rate_yuan_m", "source"])
    bad = ~(df["rate_yuan_m"] > 0)
    if bad.any():
        r = df[bad].iloc[0]
        raise ConfigError(f"unit rate of {r['material']} {r['dn_mm']} PN{r['pn_mpa']:g} is {r['rate_yuan_m']!r}; "
                          "every rate must be > 0 ¥/m")
    return df.set_index(["material", "dn_mm", "pn_mpa"]).sort_index()


def item_rates(what: str) -> pd.DataFrame:
    """Station or reservoir cost parameters (``"pump_stations"`` or ``"reservoirs"``), indexed by item.

    Columns ``unit``, ``cost_yuan``, ``source`` — the layout of
    :func:`watersupply.design.pump_costs` / :func:`~watersupply.design.reservoir_costs`.

    >>> int(item_rates("reservoirs").loc["storage_per_m3", "cost_yuan"])
    950
    """
    if what not in ("pump_stations", "reservoirs"):
        raise ConfigError(f"no item rates for {what!r}; choose 'pump_stations' or 'reservoirs'")
    items = read_rates(what)["items"]
    df = pd.DataFrame([{"item": k, "unit": v["unit"], "cost_yuan": v["cost_yuan"], "source": v["source"]}
                       for k, v in items.items()]).set_index("item")
    return df


def pipe_rate(material: str, dn_mm: float, pn_mpa: float, *, rates: pd.DataFrame | None = None) -> float:
    """Supply-and-lay rate (¥/m) of one pipe size.

    >>> pipe_rate("PE", 63, 1.0)
    38.0

    Raises
    ------
    ConfigError
        The size is not in the rate table (naming the sizes it has).
    """
    t = rates if rates is not None else pipe_rates()
    mat = str(material).upper()
    key = (mat, int(round(float(dn_mm))), float(pn_mpa))
    if key in t.index:
        return float(t.loc[key, "rate_yuan_m"])
    have = sorted({int(d) for m, d, _p in t.index if m == mat})
    if not have:
        raise ConfigError(f"no unit rates for material {material!r}; the rate tables have "
                          f"{', '.join(sorted({m for m, _d, _p in t.index}))}")
    sizes = "dn" if mat == "PE" else "DN"
    raise ConfigError(f"no unit rate for {mat} {sizes}{key[1]} PN{pn_label(key[2])} in watersupply/data/costs/"
                      f"{RATE_FILES.get(mat, '?')}; it has {sizes} {', '.join(map(str, have))} at PN "
                      f"{', '.join(pn_label(p) for p in (PE_SDR if mat == 'PE' else DI_PN))} — add the size or "
                      "resize the pipe")


def _existing(df: pd.DataFrame) -> np.ndarray:
    if "existing" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df["existing"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes", "1.0")).to_numpy(bool)


def _pipe_lines(net: Network, rates: pd.DataFrame) -> pd.DataFrame:
    pipes = net["pipes"]
    missing = [c for c in ("dn_mm", "pn_mpa", "material") if c not in pipes.columns]
    if missing:
        raise NetworkDataError(f"pipes have no {', '.join(missing)} column(s); size them first with "
                               "watersupply.pipe_catalogue.size_pipes (or add dn_mm, pn_mpa and material)")
    length = pd.to_numeric(pipes["length_m"], errors="coerce") if "length_m" in pipes.columns \
        else pipes.geometry.length
    df = pd.DataFrame({"id": pipes["id"].astype(str), "material": pipes["material"].astype(str).str.upper(),
                       "dn_mm": pd.to_numeric(pipes["dn_mm"], errors="coerce"),
                       "pn_mpa": pd.to_numeric(pipes["pn_mpa"], errors="coerce"),
                       "length_m": length.to_numpy(), "existing": _existing(pipes)})
    new = ~df["existing"]
    bad = new & (df["dn_mm"].isna() | df["pn_mpa"].isna() | ~(df["length_m"] > 0))
    if bad.any():
        r = df[bad].iloc[0]
        raise NetworkDataError(f"pipe {r['id']!r} has dn_mm {r['dn_mm']!r}, pn_mpa {r['pn_mpa']!r}, length_m "
                               f"{r['length_m']!r}; a new pipe needs all three (size it with size_pipes, or mark it "
                               "existing=True)")
    groups = df.groupby(["existing", "material", "dn_mm", "pn_mpa"], dropna=False, sort=True)
    rows = []
    for (ex, mat, dn, pn), g in groups:
        m = float(g["length_m"].sum())
        rate = 0.0 if ex else pipe_rate(mat, dn, pn, rates=rates)
        src = "existing asset, not priced" if ex else rates.loc[(mat, int(round(dn)), float(pn)), "source"]
        label = (f"dn{dn:g} PN{pn_label(pn)}" if mat == "PE" else f"DN{dn:g} K9 PN{pn_label(pn)}") \
            if pd.notna(dn) and pd.notna(pn) else "as built"
        rows.append(dict(item="pipe", description=f"{mat} {label}", material=mat, dn_mm=dn, pn_mpa=pn,
                         quantity=m / 1000.0, unit="km", rate_yuan=rate, unit_rate="¥/m", cost_yuan=m * rate,
                         existing=bool(ex), n=len(g), source=src))
    return pd.DataFrame(rows)


def _facility_lines(net: Network) -> pd.DataFrame:
    fac = net.get("facilities")
    rows = []
    if fac is None or not len(fac):
        return pd.DataFrame(rows)
    ex = _existing(fac)
    st, rs = item_rates("pump_stations"), item_rates("reservoirs")
    pumps = net.get("pumps")
    for i, (_k, f) in enumerate(fac.iterrows()):
        kind, fid = f.get("kind"), str(f["id"])
        part_of = f.get("part_of")
        if part_of is not None and not pd.isna(part_of) and str(part_of):
            continue   # part of another facility (a plant's clear well, 清水池): priced with it, not on its own
        if kind == "pump_station":
            kw = 0.0
            if pumps is not None and len(pumps) and "station_id" in pumps.columns:
                own = pumps[pumps["station_id"].astype(str) == fid]
                eta = pd.to_numeric(own.get("efficiency", pd.Series(dtype=float)), errors="coerce") \
                    .reindex(own.index).fillna(_DEFAULT_EFFICIENCY)
                kw = float(np.sum(pump_power_kw(pd.to_numeric(own["design_flow_ls"], errors="coerce").fillna(0.0)
                                                * LS_TO_M3S,
                                                pd.to_numeric(own["design_head_m"], errors="coerce").fillna(0.0),
                                                eta)))
            per_kw, fixed = float(st.loc["pump_set_per_kw", "cost_yuan"]), float(st.loc["pump_station_fixed",
                                                                                      "cost_yuan"])
            cost = 0.0 if ex[i] else fixed + per_kw * kw
            rows.append(dict(item="pump_station", description=f"{fid} {f.get('name_zh', '') or ''}".strip(),
                             quantity=kw, unit="kW", rate_yuan=per_kw, unit_rate="¥/kW + ¥/station",
                             cost_yuan=cost, existing=bool(ex[i]), n=1,
                             source="existing asset, not priced" if ex[i] else
                             f"{fixed:,.0f} ¥/station + {per_kw:,.0f} ¥/kW (pump_stations.yaml, assumed)"))
        elif kind == "reservoir":
            vol = pd.to_numeric(pd.Series([f.get("volume_m3")]), errors="coerce").iloc[0]
            if not pd.notna(vol):
                d, top = f.get("diameter_m"), f.get("max_level_m")
                vol = math.pi * float(d) ** 2 / 4.0 * float(top) if pd.notna(d) and pd.notna(top) else np.nan
            if not (pd.notna(vol) and vol > 0):
                raise NetworkDataError(f"reservoir {fid!r} has no volume_m3 (nor diameter_m and max_level_m); give "
                                       "its storage volume to price it")
            per_m3, fixed = float(rs.loc["storage_per_m3", "cost_yuan"]), float(rs.loc["reservoir_fixed",
                                                                                     "cost_yuan"])
            cost = 0.0 if ex[i] else fixed + per_m3 * float(vol)
            rows.append(dict(item="reservoir", description=f"{fid} {f.get('name_zh', '') or ''}".strip(),
                             quantity=float(vol), unit="m³", rate_yuan=per_m3, unit_rate="¥/m³ + ¥/reservoir",
                             cost_yuan=cost, existing=bool(ex[i]), n=1,
                             source="existing asset, not priced" if ex[i] else
                             f"{fixed:,.0f} ¥/reservoir + {per_m3:,.0f} ¥/m³ (reservoirs.yaml, assumed)"))
        elif kind == "plant":
            rows.append(dict(item="plant", description=f"{fid} {f.get('name_zh', '') or ''}".strip(),
                             quantity=pd.to_numeric(pd.Series([f.get("capacity_m3d")]), errors="coerce").iloc[0],
                             unit="m³/d", rate_yuan=np.nan, unit_rate="", cost_yuan=0.0, existing=bool(ex[i]), n=1,
                             source="not priced: no unit rate for treatment works (outside this estimate)"))
    return pd.DataFrame(rows)


def bill_of_quantities(net: Network, *, rates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The network's bill of quantities, priced at the shipped unit rates.

    Parameters
    ----------
    net
        A network whose pipes carry ``dn_mm``, ``pn_mpa`` and ``material``
        (:func:`watersupply.pipe_catalogue.size_pipes`) and ``length_m``;
        optional ``existing`` flags on pipes and facilities.
    rates
        Pipe rates indexed by (material, dn_mm, pn_mpa) with ``rate_yuan_m``
        and ``source`` (default :func:`pipe_rates`).

    Returns
    -------
    DataFrame
        One row per pipe group (existing, material, dn, class), per pump
        station and per reservoir (and the plant, not priced): ``item``,
        ``description``, ``material``, ``dn_mm``, ``pn_mpa``, ``quantity``,
        ``unit`` (km, kW, m³), ``rate_yuan``, ``unit_rate``, ``cost_yuan``,
        ``existing``, ``n`` (pipes in the group), ``source``.

    Raises
    ------
    NetworkDataError
        Pipes not sized (no dn_mm/pn_mpa/material), a new pipe without a size or
        length, a reservoir without a volume — naming the element.
    ConfigError
        A pipe size with no unit rate (naming the size and the file).
    """
    t = rates if rates is not None else pipe_rates()
    parts = [_pipe_lines(net, t), _facility_lines(net)]
    boq = pd.concat([p for p in parts if len(p)], ignore_index=True)
    for col in ("material", "dn_mm", "pn_mpa"):
        if col not in boq.columns:
            boq[col] = np.nan
    return boq[["item", "description", "material", "dn_mm", "pn_mpa", "quantity", "unit", "rate_yuan", "unit_rate",
                "cost_yuan", "existing", "n", "source"]]


@dataclass
class CostEstimate:
    """A capital-cost estimate beside a published figure.

    Attributes
    ----------
    boq
        The bill of quantities (:func:`bill_of_quantities`).
    pipes_yuan, stations_yuan, reservoirs_yuan, total_yuan
        Costs of the new works (existing assets excluded).
    new_pipe_m, existing_pipe_m
        Lengths of new and pre-existing pipe.
    published_yuan, published_pipe_m, factor
        The figure compared against, its pipe length, and the agreement band.
    changes
        When outside the band: what would have to change for the estimate to
        agree (computed figures, one sentence each).
    """

    boq: pd.DataFrame
    pipes_yuan: float
    stations_yuan: float
    reservoirs_yuan: float
    new_pipe_m: float
    existing_pipe_m: float
    published_yuan: float = PUBLISHED_COST_YUAN
    published_pipe_m: float = PUBLISHED_PIPE_M
    factor: float = COST_FACTOR
    changes: list[str] = field(default_factory=list)

    @property
    def total_yuan(self) -> float:
        return self.pipes_yuan + self.stations_yuan + self.reservoirs_yuan

    @property
    def total_pipe_m(self) -> float:
        return self.new_pipe_m + self.existing_pipe_m

    @property
    def yuan_per_m(self) -> float:
        """All-in cost per metre of the network's pipe (new + existing), comparable with the published ¥/m."""
        return self.total_yuan / self.total_pipe_m if self.total_pipe_m else float("nan")

    @property
    def pipe_yuan_per_m(self) -> float:
        """Pipe cost per metre of new pipe."""
        return self.pipes_yuan / self.new_pipe_m if self.new_pipe_m else float("nan")

    @property
    def published_yuan_per_m(self) -> float:
        return self.published_yuan / self.published_pipe_m

    @property
    def ratio(self) -> float:
        """Estimate / published."""
        return self.total_yuan / self.published_yuan

    @property
    def within(self) -> bool:
        """Whether the estimate is within the factor of the published cost, either way."""
        return 1.0 / self.factor <= self.ratio <= self.factor

    def summary(self) -> str:
        """One line: the estimate, its ¥/m, and the comparison."""
        verdict = (f"within ×{self.factor:g} of" if self.within
                   else f"{'above' if self.ratio > 1 else 'below'} ×{self.factor:g} of")
        return (f"¥{self.total_yuan / 1e6:,.1f} M (pipes ¥{self.pipes_yuan / 1e6:,.1f} M for "
                f"{self.new_pipe_m / 1000:,.1f} km new pipe, stations ¥{self.stations_yuan / 1e6:,.1f} M, "
                f"reservoirs ¥{self.reservoirs_yuan / 1e6:,.1f} M; {self.yuan_per_m:,.0f} ¥/m all in over "
                f"{self.total_pipe_m / 1000:,.1f} km) = {self.ratio:.2f} × the published "
                f"¥{self.published_yuan / 1e6:,.0f} M+ ({self.published_yuan_per_m:,.0f} ¥/m): {verdict} it")


def _changes(e: CostEstimate) -> list[str]:
    if e.within:
        return []
    out = []
    other = e.stations_yuan + e.reservoirs_yuan
    if e.ratio > e.factor:
        target = e.factor * e.published_yuan
        out.append(f"all unit rates {target / e.total_yuan:.0%} of the shipped ones (×{target / e.total_yuan:.2f})")
        room = target - other
        if room <= 0:
            out.append(f"stations and reservoirs alone (¥{other / 1e6:,.1f} M) exceed ×{e.factor:g} the published "
                       f"cost (¥{target / 1e6:,.1f} M): some of them would have to be pre-existing or much cheaper")
        else:
            if e.pipes_yuan > 0:
                share = 1.0 - room / e.pipes_yuan
                out.append(f"pipe rates at {room / e.pipes_yuan:.0%} of the shipped ones "
                           f"({room / e.new_pipe_m:,.0f} ¥/m of new pipe instead of {e.pipe_yuan_per_m:,.0f})")
                out.append(f"{share:.0%} of the new pipe length ({share * e.new_pipe_m / 1000:,.0f} km) "
                           "pre-existing (reused, not built in 2020), at the same mix of sizes")
    else:
        target = e.published_yuan / e.factor
        out.append(f"unit rates ×{target / e.total_yuan:.2f} the shipped ones, or works beyond those modelled "
                   f"(¥{(target - e.total_yuan) / 1e6:,.1f} M more)")
    return out


def capital_cost(net: Network, *, published_yuan: float = PUBLISHED_COST_YUAN,
                 published_pipe_m: float = PUBLISHED_PIPE_M, factor: float = COST_FACTOR,
                 rates: pd.DataFrame | None = None) -> CostEstimate:
    """Capital cost of the network's new works, beside a published cost.

    Parameters
    ----------
    net
        A sized network (see :func:`bill_of_quantities`).
    published_yuan, published_pipe_m
        The published cost and the pipe length it covers (default: the source
        article's ¥15 M+ for 439 km, Tonghui 2020).
    factor
        Agreement band: the estimate agrees when within `factor` either way.
    rates
        Pipe rates (default :func:`pipe_rates`).

    Returns
    -------
    CostEstimate
        With ``changes`` listing what would have to change when it disagrees.

    Raises
    ------
    ConfigError
        A published figure or the factor is not positive (or factor < 1).
    """
    if not (published_yuan > 0 and published_pipe_m > 0):
        raise ConfigError(f"published cost {published_yuan!r} ¥ and pipe length {published_pipe_m!r} m must be > 0")
    if not factor >= 1.0:
        raise ConfigError(f"factor {factor!r} must be >= 1 (the band is published / factor … published × factor)")
    boq = bill_of_quantities(net, rates=rates)
    pipes = boq[boq["item"] == "pipe"]
    e = CostEstimate(boq=boq, pipes_yuan=float(pipes["cost_yuan"].sum()),
                     stations_yuan=float(boq.loc[boq["item"] == "pump_station", "cost_yuan"].sum()),
                     reservoirs_yuan=float(boq.loc[boq["item"] == "reservoir", "cost_yuan"].sum()),
                     new_pipe_m=float(pipes.loc[~pipes["existing"], "quantity"].sum() * 1000.0),
                     existing_pipe_m=float(pipes.loc[pipes["existing"], "quantity"].sum() * 1000.0),
                     published_yuan=float(published_yuan), published_pipe_m=float(published_pipe_m),
                     factor=float(factor))
    e.changes = _changes(e)
    return e
