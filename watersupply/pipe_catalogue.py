"""Pipe sizes the Chinese way, and sizing pipes from their design flows.

Two catalogues of standard pipe, as a designer in China specifies them:

PE100 (GB/T 13663.2-2018)
    Polyethylene pressure pipe by *outside* diameter ``dn`` (dn32 … dn315 for
    rural supply; dn400–dn630 are listed for the design tables) and pressure
    class ``PN``: PN 1.0 / 1.25 / 1.6 MPa are the SDR 17 / 13.6 / 11 series of
    PE100 (design stress 8 MPa: PN = 2 σ / (SDR − 1)). The wall thicknesses
    are those of the standard's PE100 table (identical to ISO 4427-2); the
    inner diameter is ``dn − 2 e``.
Ductile iron (GB/T 13295-2019)
    Cement-mortar-lined centrifugally cast pipe by nominal ``DN`` (DN100 …
    DN1000), class K9. Inner diameter = outside diameter − 2 × (K9 iron wall
    + lining): K9 wall e = 9 (0.5 + 0.001 DN) mm, at least 6 mm; lining 3 mm
    up to DN300, 5 mm DN350–DN600, 6 mm above (GB/T 17457-2019 nominal
    thicknesses).

:func:`select_pipe` picks the smallest size whose velocity at the design
flow is within the sizing rule, and the pressure class from the static head;
:func:`size_pipes` does it for every pipe of a network; :func:`static_heads`
gives each pipe's static head from the network itself (highest still-water
level that can reach it).

Sizing rule (documented parameters, module constants):

- velocity at design flow ≤ :data:`V_MAX_MS` (1.2 m/s; the economic band of
  GB 50013-2018 is about 0.6–1.5 m/s);
- unit headloss at design flow (Hazen-Williams, the material's C) ≤ a limit:
  small rural pipes are limited by headloss, not velocity (dn32 at 1.2 m/s
  loses ~65 m/km). :func:`select_pipe` takes one limit (default
  :data:`I_MAX_M_KM`, 5 m/km); :func:`size_pipes` one per pipe class
  (:data:`I_MAX_BY_CLASS`: mains 2 m/km, branches 5 m/km — assumed, so that
  a village path of ~4 km of main and ~1 km of branches loses ≤ ~13 m of
  the ~30 m a hill reservoir gives over the village, leaving the 10–12 m
  rural service head; on the flat-terraced Tonghui model of 2026-12 one
  EPANET run of the sized network kept every demand node ≥ 14 m, where
  3 / 10 m/km left 24 of 2,096 below 10 m);
- where a fire flow applies (a hydrant main): at least dn110 (PE) / DN100
  (ductile iron) — GB 50974-2014 §8.1.4 wants hydrant mains ≥ DN100 — and the
  velocity at design flow + fire flow ≤ :data:`V_FIRE_MAX_MS` (2.5 m/s, the
  project's maximum main velocity, ``standards.main_velocity_max_ms``);
- pressure class: the smallest PN whose rating covers static head +
  :data:`SURGE_MARGIN_M` (20 m ≈ 0.2 MPa water-hammer allowance, assumed; GB
  50268-2008 tests PE mains at 1.5 × working pressure, so 20 m keeps the
  test pressure of a PN 1.0 pipe at 102 m static inside the pipe's rating).

Examples
--------
>>> pe_inner_diameter_mm(110, 1.6)
90.0
>>> spec = select_pipe(3.0, static_head_m=60.0)
>>> spec.dn_mm, spec.pn_mpa, round(spec.velocity_ms, 2)
(110, 1.0, 0.41)
>>> select_pipe(3.0, static_head_m=60.0, fire_flow_ls=15.0).dn_mm
110
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from ._errors import ConfigError, NetworkDataError, closest
from .hydraulics import G, LS_TO_M3S, RHO_WATER, hazen_williams_headloss
from .schema import Network

__all__ = [
    "PE_WALL_MM", "PE_SDR", "DI_OUTSIDE_MM", "MATERIALS", "V_MAX_MS", "I_MAX_M_KM", "I_MAX_BY_CLASS", "V_FIRE_MAX_MS", "SURGE_MARGIN_M",
    "FIRE_MIN_DN", "MIN_DN_BY_CLASS", "PipeSpec", "pn_label", "catalogue", "pe_inner_diameter_mm", "di_inner_diameter_mm",
    "pressure_class", "select_pipe", "static_heads", "size_pipes",
]

#: PE100 pressure class (MPa) → SDR (GB/T 13663.2-2018, PE100, design stress 8 MPa).
PE_SDR: Mapping[float, float] = {1.0: 17.0, 1.25: 13.6, 1.6: 11.0}

#: PE100 wall thickness (mm) by dn and SDR (SDR 17, 13.6, 11): GB/T 13663.2-2018 PE100 table
#: (= ISO 4427-2:2019 table 2).
PE_WALL_MM: Mapping[int, tuple[float, float, float]] = {
    32: (2.0, 2.4, 3.0), 40: (2.4, 3.0, 3.7), 50: (3.0, 3.7, 4.6), 63: (3.8, 4.7, 5.8),
    75: (4.5, 5.6, 6.8), 90: (5.4, 6.7, 8.2), 110: (6.6, 8.1, 10.0), 125: (7.4, 9.2, 11.4),
    140: (8.3, 10.3, 12.7), 160: (9.5, 11.8, 14.6), 180: (10.7, 13.3, 16.4), 200: (11.9, 14.7, 18.2),
    225: (13.4, 16.6, 20.5), 250: (14.8, 18.4, 22.7), 280: (16.6, 20.6, 25.4), 315: (18.7, 23.2, 28.6),
    400: (23.7, 29.4, 36.3), 500: (29.7, 36.8, 45.4), 630: (37.4, 46.3, 57.2),
}
#: Largest PE dn offered for rural supply (the issue's dn32 … dn315); larger PE is for the design tables.
PE_RURAL_MAX_DN = 315

#: Ductile iron outside diameter (mm) by DN (GB/T 13295-2019 table 1).
DI_OUTSIDE_MM: Mapping[int, float] = {
    100: 118.0, 150: 170.0, 200: 222.0, 250: 274.0, 300: 326.0, 350: 378.0, 400: 429.0, 450: 480.0,
    500: 532.0, 600: 635.0, 700: 738.0, 800: 842.0, 1000: 1048.0,
}
#: Pressure classes (MPa) a ductile-iron K9 line is specified at (the fittings' PN).
DI_PN = (1.0, 1.6, 2.5)

#: Material codes the catalogue knows, with their Hazen-Williams C (GB 50013-2018 Table 7.2.2; the
#: project's generator uses the same values).
MATERIALS: Mapping[str, float] = {"PE": 145.0, "DI": 130.0}
_MATERIAL_ALIASES = {"PE": "PE", "PE100": "PE", "HDPE": "PE", "DI": "DI", "DUCTILE IRON": "DI", "DIP": "DI",
                     "K9": "DI"}

#: Maximum velocity at design flow (m/s), see the module docstring.
V_MAX_MS = 1.2
#: Maximum unit headloss at design flow (m/km) for :func:`select_pipe`, see the module docstring.
I_MAX_M_KM = 5.0
#: Maximum unit headloss at design flow (m/km) by pipe class, for :func:`size_pipes` (assumed).
I_MAX_BY_CLASS: Mapping[str, float] = {"main": 2.0, "branch": 5.0}
#: Maximum velocity at design flow + fire flow (m/s).
V_FIRE_MAX_MS = 2.5
#: Water-hammer allowance added to the static head to choose the pressure class (m).
SURGE_MARGIN_M = 20.0
#: Smallest dn of a new pipe by its class, when sizing a network (assumed: a village trunk main stays
#: ≥ dn63 so that it can take later connections and be flushed; a branch may go down to dn32, the usual
#: smallest rural distribution pipe).
MIN_DN_BY_CLASS: Mapping[str, int] = {"main": 63, "branch": 32}
#: Smallest size of a hydrant main, per material (GB 50974-2014 §8.1.4: ≥ DN100).
FIRE_MIN_DN: Mapping[str, int] = {"PE": 110, "DI": 100}

_M_PER_MPA = 1e6 / (RHO_WATER * G)  # metres of water per MPa (101.9)


@dataclass(frozen=True)
class PipeSpec:
    """One standard pipe chosen for a flow: what to order and what the model uses.

    Attributes
    ----------
    material
        ``"PE"`` (PE100) or ``"DI"`` (ductile iron K9).
    dn_mm
        PE: outside diameter dn; DI: nominal DN.
    pn_mpa
        Pressure class (MPa).
    inner_mm
        Inner (hydraulic) diameter, mm — the model's ``diameter_mm``.
    velocity_ms
        Velocity at the design flow.
    nominal
        Label as written on a drawing, e.g. ``"dn110 PN1.0"`` or ``"DN150 K9"``.
    """

    material: str
    dn_mm: int
    pn_mpa: float
    inner_mm: float
    velocity_ms: float
    nominal: str


def pn_label(pn_mpa: float) -> str:
    """A pressure class as written on a drawing: ``1.0``, ``1.25``, ``1.6``."""
    s = f"{float(pn_mpa):.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _material(material: str) -> str:
    key = str(material).strip().upper()
    if key not in _MATERIAL_ALIASES:
        raise ConfigError(f"unknown pipe material {material!r}; the catalogue has PE (PE100, GB/T 13663.2) and "
                          "DI (ductile iron K9, GB/T 13295)")
    return _MATERIAL_ALIASES[key]


def pe_inner_diameter_mm(dn_mm: int, pn_mpa: float) -> float:
    """Inner diameter (mm) of a PE100 pipe of outside diameter `dn_mm` and class `pn_mpa`.

    >>> pe_inner_diameter_mm(200, 1.6), pe_inner_diameter_mm(63, 1.0)
    (163.6, 55.4)

    Raises
    ------
    ConfigError
        `dn_mm` or `pn_mpa` is not in the catalogue (the valid values are listed).
    """
    dn = int(dn_mm) if float(dn_mm).is_integer() else dn_mm
    if dn not in PE_WALL_MM:
        raise ConfigError(f"PE dn{dn_mm} is not a GB/T 13663.2 size; valid dn: {', '.join(map(str, PE_WALL_MM))}")
    pn = float(pn_mpa)
    if pn not in PE_SDR:
        raise ConfigError(f"PE pressure class PN{pn_mpa} is not offered; choose PN {', '.join(map(str, PE_SDR))} MPa")
    wall = PE_WALL_MM[dn][list(PE_SDR).index(pn)]
    return round(dn - 2.0 * wall, 1)


def di_inner_diameter_mm(dn_mm: int) -> float:
    """Inner diameter (mm) of a cement-lined K9 ductile-iron pipe of nominal size DN.

    >>> di_inner_diameter_mm(150), di_inner_diameter_mm(400)
    (152.0, 402.8)

    Raises
    ------
    ConfigError
        `dn_mm` is not a GB/T 13295 size.
    """
    dn = int(dn_mm) if float(dn_mm).is_integer() else dn_mm
    if dn not in DI_OUTSIDE_MM:
        raise ConfigError(f"ductile iron DN{dn_mm} is not a GB/T 13295 size; valid DN: "
                          f"{', '.join(map(str, DI_OUTSIDE_MM))}")
    wall = max(6.0, round(9.0 * (0.5 + 0.001 * dn), 1))
    lining = 3.0 if dn <= 300 else (5.0 if dn <= 600 else 6.0)
    return round(DI_OUTSIDE_MM[dn] - 2.0 * (wall + lining), 1)


def catalogue(material: str = "PE", *, rural: bool = True) -> pd.DataFrame:
    """The catalogue of one material: one row per size and class.

    Parameters
    ----------
    material
        ``"PE"`` or ``"DI"``.
    rural
        PE only: stop at dn315 (the rural range); ``False`` lists dn400–dn630 too.

    Returns
    -------
    DataFrame
        Columns ``material``, ``dn_mm``, ``pn_mpa``, ``sdr`` (NaN for DI), ``inner_mm``, ``nominal``.

    >>> catalogue("PE").groupby("pn_mpa").size().tolist()
    [16, 16, 16]
    """
    mat = _material(material)
    rows = []
    if mat == "PE":
        for dn in PE_WALL_MM:
            if rural and dn > PE_RURAL_MAX_DN:
                continue
            for pn, sdr in PE_SDR.items():
                rows.append(dict(material="PE", dn_mm=dn, pn_mpa=pn, sdr=sdr, inner_mm=pe_inner_diameter_mm(dn, pn),
                                 nominal=f"dn{dn} PN{pn_label(pn)}"))
    else:
        for dn in DI_OUTSIDE_MM:
            for pn in DI_PN:
                rows.append(dict(material="DI", dn_mm=dn, pn_mpa=pn, sdr=np.nan, inner_mm=di_inner_diameter_mm(dn),
                                 nominal=f"DN{dn} K9"))
    return pd.DataFrame(rows)


def pressure_class(static_head_m: float, *, material: str = "PE", surge_margin_m: float = SURGE_MARGIN_M) -> float:
    """The smallest pressure class (MPa) whose rating covers static head + surge margin.

    >>> pressure_class(60.0), pressure_class(90.0), pressure_class(120.0)
    (1.0, 1.25, 1.6)

    Raises
    ------
    ConfigError
        The head is negative or not a number, or beyond the highest class (PE
        PN1.6 ≈ 163 m with the margin): the fix is a pressure zone (PRV or break
        tank) or ductile iron.
    """
    h = float(static_head_m)
    if not math.isfinite(h) or h < 0:
        raise ConfigError(f"static head {static_head_m!r} m is not a number >= 0; give the height of the highest "
                          "still-water level above the pipe")
    mat = _material(material)
    need = (h + float(surge_margin_m)) / _M_PER_MPA
    classes = tuple(PE_SDR) if mat == "PE" else DI_PN
    for pn in classes:
        if pn + 1e-9 >= need:
            return pn
    raise ConfigError(f"static head {h:.1f} m + {surge_margin_m:g} m surge margin needs {need:.2f} MPa, above "
                      f"{mat} PN{classes[-1]:g}; split the pressure zone (PRV or break-pressure tank) or use "
                      f"{'ductile iron' if mat == 'PE' else 'steel'}")


def select_pipe(design_flow_ls: float, *, static_head_m: float, material: str = "PE", fire_flow_ls: float = 0.0,
                v_max: float = V_MAX_MS, i_max_m_km: float | None = I_MAX_M_KM,
                v_fire_max: float = V_FIRE_MAX_MS, min_dn: int | None = None,
                surge_margin_m: float = SURGE_MARGIN_M, rural: bool = True) -> PipeSpec:
    """The smallest standard pipe for a design flow, in the class its static head needs.

    Parameters
    ----------
    design_flow_ls
        Design (peak-hour) flow, L/s, >= 0.
    static_head_m
        Static head on the pipe, m (highest still-water level above it).
    material
        ``"PE"`` (PE100 by dn, default) or ``"DI"`` (ductile iron by DN).
    fire_flow_ls
        Fire flow the pipe must also carry (a hydrant main), L/s; > 0 imposes the
        hydrant-main minimum (:data:`FIRE_MIN_DN`) and the fire velocity limit.
    i_max_m_km
        Unit headloss limit at design flow, m/km (None: no limit).
    v_max, v_fire_max
        Velocity limits (m/s) at design flow and at design + fire flow.
    min_dn
        Smallest dn/DN allowed (default: the catalogue's smallest).
    surge_margin_m
        Added to the static head to choose the class (m).
    rural
        PE only: largest size dn315 (``False``: up to dn630).

    Returns
    -------
    PipeSpec

    Raises
    ------
    ConfigError
        Negative or non-numeric flow, unknown material, a head beyond the
        highest class, or a flow too large for the largest size (the fix: a
        larger material range, twin mains, or a higher `v_max`).

    Examples
    --------
    >>> select_pipe(0.2, static_head_m=30.0).nominal
    'dn40 PN1.0'
    >>> select_pipe(40.0, static_head_m=30.0, material="DI").nominal
    'DN250 K9'
    """
    for name, val in (("design_flow_ls", design_flow_ls), ("fire_flow_ls", fire_flow_ls)):
        try:
            ok = math.isfinite(float(val)) and float(val) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{name} {val!r} is not a flow >= 0 L/s; give the pipe's design (peak-hour) flow")
    for name, val in (("v_max", v_max), ("v_fire_max", v_fire_max)):
        if not float(val) > 0:
            raise ConfigError(f"{name} {val!r} must be a velocity > 0 m/s")
    mat = _material(material)
    pn = pressure_class(static_head_m, material=mat, surge_margin_m=surge_margin_m)
    q = float(design_flow_ls) * LS_TO_M3S
    qf = q + float(fire_flow_ls) * LS_TO_M3S
    lo = int(min_dn) if min_dn is not None else 0
    if fire_flow_ls > 0:
        lo = max(lo, FIRE_MIN_DN[mat])
    sizes = [dn for dn in (PE_WALL_MM if mat == "PE" else DI_OUTSIDE_MM)
             if not (mat == "PE" and rural and dn > PE_RURAL_MAX_DN)]
    for dn in sizes:
        if dn < lo:
            continue
        inner = pe_inner_diameter_mm(dn, pn) if mat == "PE" else di_inner_diameter_mm(dn)
        area = math.pi * (inner / 1000.0) ** 2 / 4.0
        slope = float(hazen_williams_headloss(q, length_m=1000.0, roughness_c=MATERIALS[mat],
                                              diameter_m=inner / 1000.0))
        if q / area <= v_max + 1e-12 and (i_max_m_km is None or slope <= i_max_m_km + 1e-9) \
                and (fire_flow_ls <= 0 or qf / area <= v_fire_max + 1e-12):
            label = f"dn{dn} PN{pn_label(pn)}" if mat == "PE" else f"DN{dn} K9"
            return PipeSpec(material=mat, dn_mm=dn, pn_mpa=pn, inner_mm=inner, velocity_ms=q / area, nominal=label)
    largest = f"dn{sizes[-1]}" if mat == "PE" else f"DN{sizes[-1]}"
    fix = "ductile iron (material='DI')" if mat == "PE" else "twin mains"
    raise ConfigError(f"{float(design_flow_ls):g} L/s (+ {float(fire_flow_ls):g} L/s fire) exceeds {mat} {largest} "
                      f"at v <= {v_max:g} m/s{'' if i_max_m_km is None else f' and <= {i_max_m_km:g} m/km'}; use {fix} "
                      "or raise the limits")


# --------------------------------------------------------------------------------------------- network

def _tank_levels(net: Network) -> dict[str, float]:
    """Still-water level (m) of every source node: plants at their head, reservoirs at their top water level."""
    nodes = net["nodes"]
    out: dict[str, float] = {}
    elev = dict(zip(nodes["id"].astype(str), pd.to_numeric(nodes["elevation_m"], errors="coerce")))
    if "head_m" in nodes:
        for nid, kind, head in zip(nodes["id"].astype(str), nodes["kind"], nodes["head_m"]):
            if kind == "plant":
                out[nid] = float(head) if pd.notna(head) else elev[nid]
    fac = net.get("facilities")
    if fac is not None and len(fac):
        for _i, f in fac.iterrows():
            nid = str(f.get("node_id"))
            if f.get("kind") == "reservoir":
                bottom = f.get("bottom_elev_m")
                base = float(bottom) if pd.notna(bottom) else elev.get(nid, 0.0)
                out[nid] = base + float(f.get("max_level_m", 0.0) or 0.0)
            elif f.get("kind") == "plant" and nid not in out and pd.notna(f.get("head_m")):
                out[nid] = float(f["head_m"])
    for nid, kind in zip(nodes["id"].astype(str), nodes["kind"]):
        if kind in ("plant", "reservoir") and nid not in out:
            out[nid] = elev[nid]
    return out


def _shutoff_head(pump: pd.Series, curves: pd.DataFrame | None) -> float | None:
    """A pump's shutoff head (m): the top of its head curve, else 1.33 × design head (EPANET's one-point curve)."""
    cid = pump.get("curve")
    if curves is not None and cid is not None and pd.notna(cid) and str(cid):
        pts = curves[(curves["curve"].astype(str) == str(cid))]
        if len(pts):
            return float(pd.to_numeric(pts["y"], errors="coerce").max())
    head = pd.to_numeric(pd.Series([pump.get("design_head_m")]), errors="coerce").iloc[0]
    return 1.33 * float(head) if pd.notna(head) else None


def static_heads(net: Network) -> pd.Series:
    """Static head (m) on every pipe: the highest still-water level that can reach it, above its lower end.

    Pipes are grouped into hydraulic compartments bounded by storage nodes
    (reservoirs, plants), pumps and pressure-reducing valves. A compartment's
    still-water level is the highest of: the top water level of every reservoir
    or plant at its edge, the suction compartment's level + shutoff head of
    every pump discharging into it (a pump running against a closed valve), and
    the outlet elevation + setting of every PRV feeding it. Compartments are
    settled in order until no level changes (pumps in cascade).

    Returns
    -------
    Series
        Indexed by pipe id, m (NaN where no source reaches the pipe).
    """
    nodes, pipes = net["nodes"], net["pipes"]
    elev = dict(zip(nodes["id"].astype(str), pd.to_numeric(nodes["elevation_m"], errors="coerce")))
    sources = _tank_levels(net)
    g = nx.Graph()
    for pid, a, b in zip(pipes["id"].astype(str), pipes["from_node"].astype(str), pipes["to_node"].astype(str)):
        # a storage node splits compartments: each pipe end at a tank gets its own copy of the tank
        ka = ("tank", a, pid) if a in sources else a
        kb = ("tank", b, pid) if b in sources else b
        g.add_edge(ka, kb, pid=pid)
    cv = net.get("control_valves")
    prvs = []
    if cv is not None and len(cv):
        for _i, v in cv.iterrows():
            a, b = str(v["from_node"]), str(v["to_node"])
            if str(v.get("type", "")).upper() == "PRV" and str(v.get("status", "ACTIVE") or "ACTIVE").upper() != "OPEN":
                prvs.append((a, b, float(v["setting"])))
                g.add_node(a)
                g.add_node(b)
            elif str(v.get("status", "") or "").upper() != "CLOSED":
                g.add_edge(a, b)
    comp_of: dict = {}
    for i, comp in enumerate(nx.connected_components(g)):
        for n in comp:
            comp_of[n] = i
    level = np.full(len(set(comp_of.values())), -np.inf)
    for n, c in comp_of.items():
        if isinstance(n, tuple):
            level[c] = max(level[c], sources[n[1]])
        elif n in sources:
            level[c] = max(level[c], sources[n])
    for _a, b, setting in prvs:
        if b in comp_of:
            level[comp_of[b]] = max(level[comp_of[b]], elev.get(b, 0.0) + setting)
    pumps = net.get("pumps")
    lifts = []
    if pumps is not None and len(pumps):
        for _i, p in pumps.iterrows():
            head = _shutoff_head(p, net.get("curves"))
            a, b = str(p["from_node"]), str(p["to_node"])
            if head is None:
                warnings.warn(f"pump {p['id']!r} has neither a head curve nor a design head; its discharge main's "
                              "static head ignores it", UserWarning, stacklevel=2)
                continue
            lifts.append((comp_of.get(a), comp_of.get(b), head, a))
    for _round in range(len(lifts) + 1):
        changed = False
        for ca, cb, head, a in lifts:
            if cb is None:
                continue
            suction = sources.get(a, level[ca] if ca is not None else -np.inf)
            if np.isfinite(suction) and suction + head > level[cb] + 1e-9:
                level[cb] = suction + head
                changed = True
        if not changed:
            break
    out = {}
    for (u, v, d) in g.edges(data=True):
        pid = d.get("pid")
        if pid is None:
            continue
        lv = level[comp_of[u]]
        ends = [elev.get(n[1] if isinstance(n, tuple) else n, np.nan) for n in (u, v)]
        out[pid] = lv - min(ends) if np.isfinite(lv) else np.nan
    return pd.Series(out, dtype=float).reindex(pipes["id"].astype(str)).clip(lower=0.0)


def _per_pipe(value, pipes: pd.DataFrame, name: str, default: float) -> pd.Series:
    ids = pipes["id"].astype(str)
    if value is None:
        return pd.Series(default, index=ids, dtype=float)
    if isinstance(value, (int, float)):
        return pd.Series(float(value), index=ids, dtype=float)
    s = pd.Series(value, dtype=float) if isinstance(value, Mapping) else pd.Series(value).astype(float)
    s.index = s.index.astype(str)
    unknown = s.index.difference(ids)
    if len(unknown):
        raise NetworkDataError(f"{name} names pipe {unknown[0]!r}, which is not in layer 'pipes'; "
                               f"{closest(unknown[0], ids)}")
    return s.reindex(ids).fillna(default)


def size_pipes(net: Network, *, design_flows: Mapping[str, float] | pd.Series | None = None,
               fire_flows: float | Mapping[str, float] | pd.Series | None = None,
               static_head: Mapping[str, float] | pd.Series | None = None,
               material: str = "PE", existing: str | Callable[[Network], pd.Series] | None = None,
               v_max: float = V_MAX_MS, i_max_m_km: float | Mapping[str, float] | None = None,
               v_fire_max: float = V_FIRE_MAX_MS, min_dn: int | Mapping[str, int] | None = None, surge_margin_m: float = SURGE_MARGIN_M,
               update_roughness: bool = True) -> Network:
    """A copy of `net` with every new pipe sized from its design flow: dn/DN, class, inner diameter, material.

    Parameters
    ----------
    net
        The network; pipes need ``design_flow_ls`` (peak-hour design flow, L/s)
        unless `design_flows` is given.
    design_flows
        Design flow per pipe id, L/s (default: the pipes' ``design_flow_ls``).
    fire_flows
        Fire flow per pipe id (or one value for all), L/s; default the pipes'
        ``fire_flow_ls`` column where present, else none. Pipes with a fire flow
        are sized as hydrant mains (:func:`select_pipe`).
    static_head
        Static head per pipe id, m (default :func:`static_heads`).
    material
        Material of the new pipes: ``"PE"`` (default: rural PE100 along roads;
        where PE cannot serve — a flow beyond dn315 at the velocity limit or a
        head beyond PN1.6 — the pipe becomes ductile iron), ``"DI"`` (ductile
        iron throughout) or ``"keep"`` (each pipe keeps its material where it is
        PE or DI, else PE, with the same fallback).
    existing
        Which pipes are pre-existing assets kept as they are (their size is
        not changed and :func:`watersupply.costing.capital_cost` does not price
        them): ``None`` (default: the pipes' ``existing`` column where present,
        else none); ``"communities"`` (pipes with both ends in a community
        settlement: the town's existing urban network, reused),
        ``"villages"`` (the villages' own networks of their former water
        stations) or ``"settlements"`` (both); or a function of the network
        returning a boolean Series by pipe id.
    min_dn
        Smallest dn of a new pipe: one value, or by pipe ``class`` (default
        :data:`MIN_DN_BY_CLASS`; a class not listed: the catalogue's smallest).
    i_max_m_km
        Unit headloss limit at design flow (m/km): one value, or by pipe
        ``class`` (default :data:`I_MAX_BY_CLASS`; a class not listed:
        :data:`I_MAX_M_KM`).
    v_max, v_fire_max, surge_margin_m
        Sizing rule, see :func:`select_pipe`.
    update_roughness
        Set ``roughness_c`` of resized pipes to the material's C (:data:`MATERIALS`).
        Other material properties (e.g. ``wall_coeff_m_d``) are left as they are:
        a caller that changes a pipe's material sets them afterwards.

    Returns
    -------
    Network
        A new network; pipes get ``diameter_mm`` (inner), ``dn_mm``, ``pn_mpa``,
        ``material``, ``existing`` (bool) and ``static_head_m``.

    Raises
    ------
    NetworkDataError
        No design flows, or a flow/option names an unknown pipe, or a pipe's
        flow is negative/missing or no source reaches it (its static head is
        unknown) — the message names the pipe.
    ConfigError
        Unknown material or an impossible size (from :func:`select_pipe`), naming the pipe.
    """
    pipes = net["pipes"]
    ids = pipes["id"].astype(str)
    if design_flows is None:
        if "design_flow_ls" not in pipes.columns:
            raise NetworkDataError("pipes have no design_flow_ls column; give design_flows={pipe id: L/s} or add "
                                   "the column (peak-hour design flow of each pipe)")
        q = pd.Series(pd.to_numeric(pipes["design_flow_ls"], errors="coerce").to_numpy(), index=ids)
    else:
        q = _per_pipe(design_flows, pipes, "design_flows", np.nan)
    if fire_flows is None and "fire_flow_ls" in pipes.columns:
        fire_flows = pd.Series(pd.to_numeric(pipes["fire_flow_ls"], errors="coerce").fillna(0.0).to_numpy(), index=ids)
    fire = _per_pipe(fire_flows, pipes, "fire_flows", 0.0)
    heads = static_heads(net) if static_head is None else _per_pipe(static_head, pipes, "static_head", np.nan)
    if existing is None:
        keep = (pipes["existing"].fillna(False).astype(bool).to_numpy() if "existing" in pipes.columns
                else np.zeros(len(pipes), bool))
    elif isinstance(existing, str) and existing in _EXISTING_KINDS:
        keep = np.zeros(len(pipes), bool)
        for kind in _EXISTING_KINDS[existing]:
            keep |= _in_kind(net, kind)
    elif callable(existing):
        keep = pd.Series(existing(net)).reindex(ids).fillna(False).astype(bool).to_numpy()
    else:
        raise ConfigError(f"existing={existing!r}: give None, {', '.join(map(repr, _EXISTING_KINDS))} or a function "
                          "of the network returning a boolean Series by pipe id")
    keep_material = str(material).strip().lower() == "keep"
    forced = None if keep_material else _material(material)
    floors = MIN_DN_BY_CLASS if min_dn is None else min_dn
    slopes = I_MAX_BY_CLASS if i_max_m_km is None else i_max_m_km
    cls = pipes["class"].astype(str).to_numpy() if "class" in pipes.columns else np.full(len(pipes), "")
    out_p = pipes.copy()
    col = {c: (pd.to_numeric(out_p[c], errors="coerce").to_numpy(float).copy() if c in out_p.columns
               else np.full(len(out_p), np.nan)) for c in ("diameter_mm", "dn_mm", "pn_mpa", "roughness_c")}
    mats = (out_p["material"].astype(object).to_numpy().copy() if "material" in out_p.columns
            else np.full(len(out_p), "PE", dtype=object))
    for i, pid in enumerate(ids):
        if keep[i]:
            continue
        flow = float(q.iloc[i])
        if not (pd.notna(flow) and flow >= 0):
            raise NetworkDataError(f"pipe {pid!r}: design flow {flow!r} L/s is missing or negative; give a flow "
                                   ">= 0 (peak-hour) in design_flow_ls")
        if not pd.notna(heads.iloc[i]):
            raise NetworkDataError(f"pipe {pid!r}: no plant or reservoir reaches it, so its static head is unknown; "
                                   "connect it or pass static_head={pipe id: m}")
        mat = forced or (_MATERIAL_ALIASES.get(str(pipes["material"].iloc[i]).strip().upper(), "PE")
                         if "material" in pipes.columns else "PE")
        fallback = mat == "PE" and (keep_material or forced == "PE")
        floor = floors.get(cls[i]) if isinstance(floors, Mapping) else floors
        slope = slopes.get(cls[i], I_MAX_M_KM) if isinstance(slopes, Mapping) else slopes
        try:
            spec = select_pipe(float(flow), static_head_m=float(heads.iloc[i]), material=mat,
                               fire_flow_ls=float(fire.iloc[i]), v_max=v_max, i_max_m_km=slope, v_fire_max=v_fire_max,
                               min_dn=floor, surge_margin_m=surge_margin_m)
        except ConfigError as exc:
            if fallback:
                try:
                    spec = select_pipe(float(flow), static_head_m=float(heads.iloc[i]), material="DI",
                                       fire_flow_ls=float(fire.iloc[i]), v_max=v_max, i_max_m_km=slope, v_fire_max=v_fire_max,
                                       min_dn=floor, surge_margin_m=surge_margin_m)
                except ConfigError as exc2:
                    raise ConfigError(f"pipe {pid!r}: {exc2}") from None
            else:
                raise ConfigError(f"pipe {pid!r}: {exc}") from None
        col["diameter_mm"][i], col["dn_mm"][i], col["pn_mpa"][i] = spec.inner_mm, float(spec.dn_mm), spec.pn_mpa
        mats[i] = spec.material
        if update_roughness:
            col["roughness_c"][i] = MATERIALS[spec.material]
    for c, vals in col.items():
        out_p[c] = vals
    out_p["material"] = mats
    out_p["existing"] = keep
    out_p["static_head_m"] = heads.to_numpy(float)
    out = dict(net)
    out["pipes"] = out_p
    return out


_EXISTING_KINDS = {"communities": ("community",), "villages": ("village",),
                   "settlements": ("community", "village")}


def _in_kind(net: Network, kind: str) -> np.ndarray:
    """Pipes with both ends at nodes of a settlement of the given kind."""
    nodes, pipes = net["nodes"], net["pipes"]
    st = net.get("settlements")
    if st is None or not len(st) or "settlement_id" not in nodes.columns:
        raise NetworkDataError(f"marking {kind} pipes as existing needs a settlements layer and nodes.settlement_id; this "
                               "network has none — mark pre-existing pipes with a boolean 'existing' column instead")
    ids = set(st.loc[st["kind"] == kind, "id"].astype(str))
    sid = dict(zip(nodes["id"].astype(str), nodes["settlement_id"].astype(object)))
    return np.array([str(sid.get(str(a))) in ids and str(sid.get(str(b))) in ids
                     for a, b in zip(pipes["from_node"], pipes["to_node"])], dtype=bool)
