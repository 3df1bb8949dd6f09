"""Pressure zones designed from the ground: static head at every tap, PRVs or break-pressure tanks where it is too high.

On any network with elevations:

- :func:`static_heads` — the static hydraulic grade line (HGL) at every node: the
  level of the source that feeds it along the supply graph (:mod:`watersupply.topology`),
  with no flow. Plants give their head; storage tanks (水池) their overflow level
  (``bottom_elev_m + max_level_m``, a free surface resets the HGL); a pump adds its
  shut-off head only where it feeds a part of the network that no tank floats on
  (a pump that fills a tank stops when the tank is full); a PRV passes
  ``min(upstream HGL, downstream elevation + setting)``; other valves pass the
  upstream HGL. Where several sources meet, the highest counts (conservative).
- :func:`plan_zones` — compares the static head at every tap with the limit of
  :mod:`watersupply.standards` (rural 40 m; urban 45 m, GB 50015-2019), proposes
  zones and places a pressure-reducing valve (or a break-pressure tank, 减压池) on
  the pipe entering each over-pressured part, and flags taps short of service head.
- :func:`apply_zones` — the zoned network: PRVs in ``control_valves`` (or tanks in
  ``nodes``/``facilities``), zone boundary pipes closed, a ``zone`` on every node and
  pipe, and a ``zones`` polygon layer (:func:`zones_layer`).
- :func:`check_zones` — verifies a zoned network by EPANET runs: the static run
  (tanks full, taps at a token demand) and the peak hour of a day.

The cut rule (documented, deterministic)
----------------------------------------
Inside each part of the network fed at one static HGL, a shortest-path supply
tree (pipe length) is grown from its inlets: the sources that set its HGL, and
every pump or valve that feeds it (a device upstream of the governing source
would not protect what they feed). Each node admits an interval
of zone HGLs: a tap ``[z + service head + margin, z + static limit]``; a node
without demand ``[z, z + main limit]`` (no sub-atmospheric static pressure, pipe
class); a tank filled from the part ``[overflow level, ∞)``. Bottom-up, a node's
interval is intersected with its children's; when the intersection is empty, the
child subtree with the lowest upper bound (the lowest ground) is cut off — a device
on the tree pipe entering it — until it is not. At the source, a child subtree
whose interval does not contain the source HGL is cut too. Every zone then takes
the highest HGL its interval and its parent zone allow (most head for the peak
hour); a PRV's setting is rounded down to 0.1 m. In a part that pumps feed and a
tank floats, the tank's own outlet pipes are never cut (cutting them would leave
the pumps to run against the zone at shut-off head); over-pressured taps there
are flagged for a lower tank or a PRV below the pumped area. Pipes of the part's loops that
join two different zones are closed (zone boundary valves). On a chain this is the
least number of devices; on a tree it cuts where the ground falls, once per
branch that needs it, never a device per tap. Taps whose interval is empty (a
building too tall for the limit) or that no zone can serve are flagged, not hidden.

>>> sorted(ZONE_DEVICES)
['break_tank', 'prv']
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point
from shapely.ops import substring

from ._errors import ConfigError, NetworkDataError
from .schema import Network, validate_network
from .standards import service_head_m, thresholds
from .topology import layer_link_table

__all__ = ["ZONE_DEVICES", "ZonePlan", "static_heads", "tap_limits", "plan_zones", "apply_zones", "zones_layer",
           "check_zones", "ZoneCheck"]

#: Devices a zone boundary can get: a pressure-reducing valve, or a break-pressure tank (减压池).
ZONE_DEVICES = ("prv", "break_tank")
#: Settlement kinds whose limits apply to taps.
_KINDS = ("village", "community")
_TOL = 1e-6
#: Static head within this of a tap's limit counts as at the limit (a zone's HGL is set to the limit exactly).
OVER_TOL_M = 0.05
#: Break-pressure tank: water depth at overflow (m), minimum level (m), smallest diameter (m), storage (s of inflow).
BPT_MAX_LEVEL_M, BPT_MIN_LEVEL_M, BPT_MIN_DIAMETER_M, BPT_STORAGE_S = 2.0, 0.3, 2.0, 900.0
#: Offset of a device's new node from the zone's first node along the cut pipe (m).
DEVICE_OFFSET_M = 1.0


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)


# ----------------------------------------------------------------------------- limits per node


def tap_limits(net: Network, *, default_kind: str = "village", limits: Mapping[str, float] | None = None,
               ) -> pd.DataFrame:
    """Per node: is it a tap, its settlement kind, static-head limit and service head (m).

    A tap is a junction with a demand (``base_demand_m3d > 0``) or people
    (``population > 0``). Its kind and storeys come from its settlement
    (``settlement_id`` → ``settlements.kind``/``storeys``); nodes outside any
    settlement use `default_kind` and the default storeys of :mod:`watersupply.standards`.

    Returns
    -------
    DataFrame
        Indexed by node id: ``tap``, ``kind``, ``elevation_m``, ``limit_m`` (static
        head at the tap; for nodes without demand the main limit), ``service_m``.
    """
    if default_kind not in _KINDS:
        raise ConfigError(f"default_kind must be one of {', '.join(_KINDS)}, got {default_kind!r}")
    t = thresholds(limits)
    nodes = net["nodes"]
    ids = nodes["id"].astype(str)
    elev = _num(nodes["elevation_m"])
    if elev.isna().any():
        bad = ids[elev.isna()].tolist()
        raise NetworkDataError(f"nodes: elevation_m is missing at {len(bad)} node(s) ({', '.join(bad[:5])}); "
                               "zones are designed from the ground: give every node an elevation (e.g. watersupply "
                               "build --dem)")
    demand = _num(nodes["base_demand_m3d"]).fillna(0.0) if "base_demand_m3d" in nodes else pd.Series(0.0, nodes.index)
    pop = _num(nodes["population"]).fillna(0.0) if "population" in nodes else pd.Series(0.0, nodes.index)
    tap = (nodes["kind"] == "junction") & ((demand > 0) | (pop > 0))
    kind = pd.Series(default_kind, index=nodes.index)
    storeys = pd.Series(np.nan, index=nodes.index)
    st = net.get("settlements")
    if st is not None and len(st) and "settlement_id" in nodes:
        sk = dict(zip(st["id"].astype(str), st["kind"].astype(str)))
        ss = dict(zip(st["id"].astype(str), _num(st["storeys"]))) if "storeys" in st else {}
        sid = nodes["settlement_id"].map(_text)
        kind = sid.map(lambda s: sk.get(s, default_kind) if sk.get(s) in _KINDS else default_kind)
        storeys = sid.map(lambda s: ss.get(s, np.nan))
    default_storeys = {"village": t["village_storeys_default"], "community": t["community_storeys_default"]}
    storeys = [int(s) if s == s and s >= 1 else int(default_storeys[k]) for s, k in zip(storeys, kind)]
    limit = np.where(kind == "community", t["urban_max_static_head_m"], t["rural_max_static_head_m"])
    limit = np.where(tap, limit, t["main_max_static_head_m"])
    service = np.array([service_head_m(k, s, t) for k, s in zip(kind, storeys)])
    service = np.where(tap, service, 0.0)
    return pd.DataFrame({"tap": tap.to_numpy(), "kind": kind.to_numpy(), "elevation_m": elev.to_numpy(),
                         "limit_m": limit, "service_m": service}, index=pd.Index(ids, name="node"))


# ----------------------------------------------------------------------------- static head


@dataclass
class _Parts:
    """The network cut into parts of one static HGL: fixed-head nodes, pipe components, device links."""

    part: dict[str, int]            # node -> part number (fixed nodes: their own part)
    fixed: dict[str, float]         # fixed-head node -> level (m)
    hgl: dict[int, float]           # part -> static HGL (m)
    source: dict[int, str]          # part -> governing source (node, pump or valve id)
    entries: dict[int, list[tuple[str, str, float]]] = field(default_factory=dict)  # part -> (kind, node, hgl)
    floated: set[int] = field(default_factory=set)  # parts a tank (not a break tank) floats on


def _shutoff_head(pump: Any, curves: pd.DataFrame | None) -> float:
    """Shut-off head of a pump: its head curve's highest point, else EPANET's single-point rule (1.33 × design)."""
    name = _text(getattr(pump, "curve", None))
    if name and curves is not None and len(curves):
        pts = curves[(curves["curve"].astype(str) == name)]
        if len(pts):
            return float(_num(pts["y"]).max())
    h = float(pd.to_numeric(getattr(pump, "design_head_m", np.nan), errors="coerce"))
    if not h > 0:
        raise NetworkDataError(f"pumps: pump {pump.id!r} has neither a head curve nor a design_head_m > 0; its "
                               "shut-off head (static head downstream) cannot be known")
    return 1.33 * h


def _parts(net: Network) -> _Parts:
    """Static HGL of every part of the network (see the module notes)."""
    nodes = net["nodes"]
    ids = nodes["id"].astype(str).tolist()
    elev = dict(zip(ids, _num(nodes["elevation_m"])))
    fixed: dict[str, float] = {}
    for nid, kind, z, h in zip(ids, nodes["kind"], nodes["elevation_m"],
                               nodes["head_m"] if "head_m" in nodes else [np.nan] * len(ids)):
        if kind == "plant":
            hv = float(pd.to_numeric(h, errors="coerce"))
            fixed[nid] = hv if hv == hv else float(z)
    fac = net.get("facilities")
    break_tanks: set[str] = set()
    if fac is not None and len(fac):
        for row in fac[fac["kind"] == "reservoir"].itertuples(index=False):
            fixed[str(row.node_id)] = float(row.bottom_elev_m) + float(row.max_level_m)
            if _text(getattr(row, "role", None)) == "break_tank":
                break_tanks.add(str(row.node_id))
    links = layer_link_table(net)
    links = links[~links["closed"]]
    pipes = links[links["kind"] == "pipe"]
    # union-find over pipes between non-fixed nodes
    parent = {n: n for n in ids}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for u, v in zip(pipes["u"], pipes["v"]):
        if u not in fixed and v not in fixed:
            ru, rv = find(u), find(v)
            if ru != rv:
                parent[max(ru, rv)] = min(ru, rv)
    roots = sorted({find(n) for n in ids})
    number = {r: i for i, r in enumerate(roots)}
    part = {n: number[find(n)] for n in ids}
    hgl: dict[int, float] = {p: -math.inf for p in number.values()}
    source: dict[int, str] = {}
    entries: dict[int, list[tuple[str, str, float]]] = {p: [] for p in number.values()}
    floated: set[int] = set()
    for f, level in fixed.items():
        hgl[part[f]] = level
        source[part[f]] = f
    for u, v in zip(pipes["u"], pipes["v"]):
        for a, b in ((u, v), (v, u)):
            if a in fixed and b not in fixed:
                p = part[b]
                if a not in break_tanks:  # a break tank does not stop the pumps upstream of it
                    floated.add(p)
                entries[p].append(("fixed", a, fixed[a]))
                if fixed[a] > hgl[p]:
                    hgl[p], source[p] = fixed[a], a
    pumps = net.get("pumps")
    pump_rows = {}
    if pumps is not None and len(pumps):
        pump_rows = {str(r.id): r for r in pumps.itertuples(index=False)}
    curves = net.get("curves")
    valves = net.get("control_valves")
    vrows = {str(r.id): r for r in valves.itertuples(index=False)} if valves is not None and len(valves) else {}
    devices = links[links["kind"] != "pipe"]
    for _ in range(len(number) + 2):
        changed = False
        for lid, row in zip(devices.index, devices.itertuples(index=False)):
            pairs = [(row.u, row.v)] if row.one_way else [(row.u, row.v), (row.v, row.u)]
            for a, b in pairs:
                pa, pb = part[a], part[b]
                if pa == pb or b in fixed or hgl[pa] == -math.inf:
                    continue
                if row.kind == "pump":
                    if pb in floated:
                        continue  # a pump that fills a tank stops when it is full
                    h = hgl[pa] + _shutoff_head(pump_rows[lid], curves)
                elif row.valve_type == "PRV":
                    s = float(pd.to_numeric(getattr(vrows[lid], "setting", np.nan), errors="coerce"))
                    h = min(hgl[pa], elev[b] + s) if s == s else hgl[pa]
                else:
                    h = hgl[pa]
                if h > hgl[pb] + _TOL:
                    hgl[pb], source[pb], changed = h, lid, True
        if not changed:
            break
    else:
        raise NetworkDataError("static head does not settle: pumps lift water round a loop of the network with no "
                               "tank on it; give the loop a tank or close one of its pumps")
    for lid, row in zip(devices.index, devices.itertuples(index=False)):
        pairs = [(row.u, row.v)] if row.one_way else [(row.u, row.v), (row.v, row.u)]
        for a, b in pairs:
            pa, pb = part[a], part[b]
            if pa != pb and b not in fixed and hgl[pa] > -math.inf:
                entries[pb].append((row.kind, b, hgl[pb] if source.get(pb) == lid else -math.inf))
    return _Parts(part=part, fixed=fixed, hgl=hgl, source=source, entries=entries, floated=floated)


def static_heads(net: Network) -> pd.DataFrame:
    """Static HGL and static head (pressure, m) at every node, and the source that sets it.

    Returns
    -------
    DataFrame
        Indexed by node id: ``elevation_m``, ``hgl_m``, ``static_head_m`` (HGL −
        elevation; NaN where no source reaches), ``source`` (the plant, tank, pump
        or valve that sets the HGL).

    Examples
    --------
    >>> from watersupply.io import read_network, get_path
    >>> sh = static_heads(read_network(get_path("tonghui")))
    >>> round(float(sh.loc["R1", "hgl_m"]), 1)   # R1's overflow level: bottom 330.1 m + 4 m
    334.1
    """
    nodes = net["nodes"]
    ids = nodes["id"].astype(str)
    elev = _num(nodes["elevation_m"])
    if elev.isna().any():
        raise NetworkDataError(f"nodes: elevation_m is missing at {', '.join(ids[elev.isna()].tolist()[:5])}; "
                               "static head needs every node's elevation")
    p = _parts(net)
    hgl = np.array([p.fixed.get(n, p.hgl[p.part[n]]) for n in ids], dtype=float)
    hgl[~np.isfinite(hgl)] = np.nan
    src = [n if n in p.fixed else p.source.get(p.part[n], "") for n in ids]
    return pd.DataFrame({"elevation_m": elev.to_numpy(), "hgl_m": hgl, "static_head_m": hgl - elev.to_numpy(),
                         "source": src}, index=pd.Index(ids, name="node"))


# ----------------------------------------------------------------------------- the plan


@dataclass
class ZonePlan:
    """Proposed pressure zones of a network (from :func:`plan_zones`).

    Attributes
    ----------
    nodes : GeoDataFrame
        Indexed by node id: ``tap``, ``kind``, ``elevation_m``, ``limit_m``,
        ``service_m``, ``zone_before``, ``hgl_before_m``, ``static_before_m``,
        ``zone``, ``hgl_m``, ``static_m`` (after zoning, recomputed from the zoned
        network by :func:`static_heads`) and ``flag`` (``ok``, ``over`` the limit,
        ``short`` of service head even at no flow, ``unsupplied``).
    devices : DataFrame
        One row per device: ``id``, ``device`` (prv, break_tank), ``pipe`` (the cut
        pipe), ``upstream_node``, ``node`` (the zone's first node), ``zone``,
        ``parent_zone``, ``upstream_hgl_m``, ``hgl_m`` (the zone's static HGL),
        ``setting_m`` (PRV: pressure head at ``node``; break tank: water depth at
        overflow), ``diameter_mm`` (the pipe's), ``ground_m``.
    boundary : DataFrame
        Loop pipes closed because they join two zones: ``pipe``, ``zone_a``, ``zone_b``.
    zones : DataFrame
        Per zone: ``zone``, ``parent_zone``, ``device``, ``device_id``,
        ``setting_m``, ``hgl_m``, ``nodes``, ``taps``, ``min_elevation_m``,
        ``max_elevation_m``, ``max_static_before_m``, ``max_static_m``,
        ``min_static_m``, ``taps_over``, ``taps_short``.
    options : dict
        What the plan was made with (device, default kind, margin, the limits used
        and the overridden ones).
    pipes : GeoDataFrame
        Every pipe's zone (empty for a boundary pipe), for :func:`zones_layer`.
    """

    nodes: gpd.GeoDataFrame
    devices: pd.DataFrame
    boundary: pd.DataFrame
    zones: pd.DataFrame
    options: dict[str, Any]
    pipes: gpd.GeoDataFrame

    @property
    def crs(self) -> Any:
        return self.nodes.crs


def _supply_tree(members: set[str], roots: list[str], adj: Mapping[str, list[tuple[str, str, float]]],
                 fixed: Mapping[str, float]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Shortest-path forest (pipe length) from `roots` over `members`; fixed nodes other than roots are leaves.

    Returns parent node, parent pipe and the visiting order (roots first)."""
    dist = {r: 0.0 for r in roots}
    parent: dict[str, str] = {}
    ppipe: dict[str, str] = {}
    heap = [(0.0, r) for r in sorted(roots)]
    heapq.heapify(heap)
    done: set[str] = set()
    order: list[str] = []
    rootset = set(roots)
    while heap:
        d, u = heapq.heappop(heap)
        if u in done:
            continue
        done.add(u)
        order.append(u)
        if u in fixed and u not in rootset:
            continue  # a tank filled from this part: a leaf
        for v, pid, length in adj.get(u, ()):
            if v in done or (v not in members and v not in fixed) or v in rootset:
                continue
            nd = d + length
            if nd < dist.get(v, math.inf) - 1e-9 or (abs(nd - dist.get(v, math.inf)) <= 1e-9 and pid < ppipe.get(v, "")):
                dist[v], parent[v], ppipe[v] = nd, u, pid
                heapq.heappush(heap, (nd, v))
    return parent, ppipe, order


def plan_zones(net: Network, *, limits: Mapping[str, float] | None = None, device: str = "prv",
               default_kind: str = "village", margin_m: float | None = None) -> ZonePlan:
    """Propose pressure zones: devices where static head at a tap would exceed its limit.

    Parameters
    ----------
    net
        A network with elevations (see :mod:`watersupply.schema`); not modified.
    limits
        Overrides of :mod:`watersupply.standards` thresholds, e.g.
        ``{"rural_max_static_head_m": 35}``.
    device
        ``"prv"`` (a pressure-reducing valve on the cut pipe) or ``"break_tank"``
        (a break-pressure tank, 减压池, open to the atmosphere, at the same place and level).
    default_kind
        Settlement kind whose limits apply to taps outside any settlement
        (``"village"``: rural 40 m; ``"community"``: urban 45 m).
    margin_m
        Head kept above the highest tap's service head when a zone's level is set
        (default: threshold ``zone_service_margin_m``).

    Returns
    -------
    ZonePlan
        Zones, devices, closed boundary pipes and flags (see the module notes for the rule).

    Raises
    ------
    ConfigError
        An unknown device, kind or threshold name, or a negative margin.
    NetworkDataError
        A node without elevation, or a network whose static head cannot be settled.

    Examples
    --------
    >>> from watersupply.io import read_network, get_path
    >>> plan = plan_zones(read_network(get_path("tonghui")))
    >>> bool((plan.nodes.loc[plan.nodes["tap"], "flag"] != "over").all())
    True
    """
    if device not in ZONE_DEVICES:
        raise ConfigError(f"device must be one of {', '.join(ZONE_DEVICES)}, got {device!r}")
    t = thresholds(limits)
    margin = float(t["zone_service_margin_m"] if margin_m is None else margin_m)
    if not (margin >= 0 and math.isfinite(margin)):
        raise ConfigError(f"margin_m must be a finite number >= 0, got {margin_m!r}")
    lim = tap_limits(net, default_kind=default_kind, limits=limits)
    before = static_heads(net)
    parts = _parts(net)
    nodes = net["nodes"]
    ids = nodes["id"].astype(str).tolist()
    z = lim["elevation_m"].to_dict()
    zone_col = dict(zip(ids, nodes["zone"].map(_text))) if "zone" in nodes else {n: "" for n in ids}
    pipes = net["pipes"]
    links = layer_link_table(net)
    open_pipes = links[(links["kind"] == "pipe") & ~links["closed"]]
    plen = dict(zip(pipes["id"].astype(str), _num(pipes["length_m"]) if "length_m" in pipes else pipes.length))
    plen = {k: (v if v == v and v > 0 else 1.0) for k, v in plen.items()}
    adj: dict[str, list[tuple[str, str, float]]] = {}
    for pid, u, v in zip(open_pipes.index, open_pipes["u"], open_pipes["v"]):
        adj.setdefault(u, []).append((v, pid, plen[pid]))
        adj.setdefault(v, []).append((u, pid, plen[pid]))
    members_of: dict[int, set[str]] = {}
    for n in ids:
        if n not in parts.fixed:
            members_of.setdefault(parts.part[n], set()).add(n)
    zone_of: dict[str, str] = {}
    zone_hgl: dict[str, float] = {}
    zone_parent: dict[str, str] = {}
    devices: list[dict[str, Any]] = []
    boundary: list[dict[str, Any]] = []
    counters: dict[str, int] = {}
    taken = set(ids) | set(links.index.astype(str))

    def new_id(prefix: str) -> str:
        k = counters.get(prefix, 0) + 1
        while f"{prefix}{k}" in taken:
            k += 1
        counters[prefix] = k
        taken.add(f"{prefix}{k}")
        return f"{prefix}{k}"

    for p in sorted(members_of):
        members, H = members_of[p], parts.hgl[p]
        if not math.isfinite(H):
            continue
        # every inlet is a root: the governing sources, and pumps or valves feeding the part at a lower level
        # (a device upstream of the governing source would not protect what they feed)
        roots = sorted({n for kind, n, h in parts.entries[p] if h >= H - 1e-6 or kind != "fixed"})
        pumped = any(kind == "pump" for kind, _n, _h in parts.entries[p])
        if not roots:
            continue
        parent, ppipe, order = _supply_tree(members, roots, adj, parts.fixed)
        kids: dict[str, list[str]] = {}
        for n in order:
            if n in parent:
                kids.setdefault(parent[n], []).append(n)
        lo: dict[str, float] = {}
        hi: dict[str, float] = {}
        cut: set[str] = set()
        for n in reversed(order):
            if n in roots:
                continue
            if n in parts.fixed:
                own = (parts.fixed[n], math.inf)
            elif lim.at[n, "tap"]:
                own = (z[n] + lim.at[n, "service_m"] + margin, z[n] + lim.at[n, "limit_m"])
                own = (min(own), own[1])  # a building too tall for the limit: keep the limit, flag it short
            else:
                own = (z[n], z[n] + lim.at[n, "limit_m"])
            ks = sorted(kids.get(n, []), key=lambda k: (hi[k], k))
            while True:
                a = max([own[0]] + [lo[k] for k in ks])
                b = min([own[1]] + [hi[k] for k in ks])
                if a <= b + 1e-9 or not ks or hi[ks[0]] >= own[1]:
                    break
                cut.add(ks.pop(0))
            lo[n], hi[n] = (a, b) if a <= b else (b, b)
        for r in roots:
            if pumped and r in parts.fixed:
                continue  # keep the tank that floats a pumped part joined to it (else the pump runs to shut-off)
            for k in kids.get(r, []):
                if k not in parts.fixed and hi[k] + 1e-6 < H:
                    cut.add(k)
        # top-down: zone levels and labels
        base = next((zone_col.get(r, "") for r in roots if zone_col.get(r, "")), "") or parts.source.get(p, roots[0])
        root_zone = f"{base}"
        zone_hgl.setdefault(root_zone, H)
        stack = [(r, root_zone) for r in reversed(roots)]
        while stack:
            n, zn = stack.pop()
            if n in parts.fixed and n not in roots:
                continue
            if n in members:
                zone_of[n] = zn
            for k in reversed(kids.get(n, [])):
                if k in cut:
                    hp = zone_hgl[zn]
                    h = min(hi[k], hp)
                    setting = math.floor((h - z[k]) * 10.0 + 1e-6) / 10.0
                    label = new_id(f"{base}-Z")
                    zone_hgl[label] = z[k] + setting
                    zone_parent[label] = zn
                    pid = ppipe[k]
                    devices.append(dict(id=new_id("PRV-" if device == "prv" else "BPT-"), device=device, pipe=pid,
                                        upstream_node=n, node=k, zone=label, parent_zone=zn, upstream_hgl_m=hp,
                                        hgl_m=z[k] + setting,
                                        setting_m=setting if device == "prv" else BPT_MAX_LEVEL_M,
                                        diameter_mm=float(_num(pipes.loc[pipes["id"].astype(str) == pid,
                                                                         "diameter_mm"]).iloc[0]),
                                        ground_m=z[k]))
                    stack.append((k, label))
                else:
                    stack.append((k, zn))
        cut_pipes = {ppipe[k] for k in cut}
        local = {**{r: root_zone for r in roots}, **{n: zone_of[n] for n in members if n in zone_of}}
        for pid, u, v in zip(open_pipes.index, open_pipes["u"], open_pipes["v"]):
            if pid in cut_pipes or u not in local or v not in local or not (u in members or v in members):
                continue
            if local[u] != local[v]:
                boundary.append(dict(pipe=pid, zone_a=local[u], zone_b=local[v]))
    dev = pd.DataFrame(devices, columns=["id", "device", "pipe", "upstream_node", "node", "zone", "parent_zone",
                                         "upstream_hgl_m", "hgl_m", "setting_m", "diameter_mm", "ground_m"])
    bnd = pd.DataFrame(boundary, columns=["pipe", "zone_a", "zone_b"]).drop_duplicates("pipe")
    out = lim.copy()
    out["zone_before"] = [zone_col.get(n, "") for n in out.index]
    out["hgl_before_m"] = before["hgl_m"].reindex(out.index).to_numpy()
    out["static_before_m"] = before["static_head_m"].reindex(out.index).to_numpy()
    # nodes left in their source's zone keep their label; nodes of a designed zone take its name
    out["zone"] = [zone_of[n] if zone_of.get(n) in zone_parent else (zone_col.get(n, "") or zone_of.get(n, ""))
                   for n in out.index]
    opts = dict(device=device, default_kind=default_kind, margin_m=margin, limits=dict(t),
                overridden=dict(t.overridden), zone_hgl=zone_hgl, zone_parent=zone_parent)
    geo = gpd.GeoDataFrame(out, geometry=nodes.geometry.to_numpy(), crs=nodes.crs)
    zmap = out["zone"].to_dict()
    pz = [zmap.get(a, "") if zmap.get(a, "") == zmap.get(b, "") or pid in set(dev["pipe"]) else ""
          for pid, a, b in zip(pipes["id"].astype(str), pipes["from_node"].astype(str), pipes["to_node"].astype(str))]
    pz = [zmap.get(u, "") if pid in set(dev["pipe"]) else z_ for pid, u, z_ in
          zip(pipes["id"].astype(str), dev.set_index("pipe")["upstream_node"].reindex(pipes["id"].astype(str))
              .fillna("").tolist(), pz)]
    pipe_zones = gpd.GeoDataFrame({"pipe": pipes["id"].astype(str).to_numpy(), "zone": pz},
                                  geometry=pipes.geometry.to_numpy(), crs=pipes.crs)
    plan = ZonePlan(nodes=geo, devices=dev, boundary=bnd, zones=pd.DataFrame(), options=opts, pipes=pipe_zones)
    after = static_heads(apply_zones(net, plan, polygons=False))
    plan.nodes["hgl_m"] = after["hgl_m"].reindex(out.index).to_numpy()
    plan.nodes["static_m"] = after["static_head_m"].reindex(out.index).to_numpy()
    plan.nodes["flag"] = _flags(plan.nodes)
    plan.zones = _zone_table(plan)
    return plan


def _flags(df: pd.DataFrame, col: str = "static_m") -> np.ndarray:
    s = df[col]
    flag = np.where(s.isna(), "unsupplied",
                    np.where(s > df["limit_m"] + OVER_TOL_M, "over",
                             np.where(df["tap"] & (s < df["service_m"] - 0.05), "short", "ok")))
    return flag


def _zone_table(plan: ZonePlan) -> pd.DataFrame:
    n = plan.nodes
    dev = plan.devices.set_index("zone") if len(plan.devices) else pd.DataFrame()
    rows = []
    for zn, g in n.groupby("zone", sort=True):
        taps = g[g["tap"]]
        d = dev.loc[zn] if len(dev) and zn in dev.index else None
        rows.append(dict(zone=zn, parent_zone=plan.options["zone_parent"].get(zn, ""),
                         device="" if d is None else d["device"], device_id="" if d is None else d["id"],
                         setting_m=np.nan if d is None else d["setting_m"],
                         hgl_m=plan.options["zone_hgl"].get(zn, float(g["hgl_m"].max())),
                         nodes=len(g), taps=len(taps), min_elevation_m=float(g["elevation_m"].min()),
                         max_elevation_m=float(g["elevation_m"].max()),
                         max_static_before_m=float(taps["static_before_m"].max()) if len(taps) else np.nan,
                         max_static_m=float(taps["static_m"].max()) if len(taps) else np.nan,
                         min_static_m=float(taps["static_m"].min()) if len(taps) else np.nan,
                         taps_over=int((taps["flag"] == "over").sum()), taps_short=int((taps["flag"] == "short").sum())))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- applying the plan


def _row_like(df: pd.DataFrame, values: Mapping[str, Any]) -> dict[str, Any]:
    """A new row for `df`: `values`, None for the other columns."""
    row = {c: None for c in df.columns if c != "geometry"}
    row.update(values)
    return row


def _append(df: pd.DataFrame | None, rows: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    new = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    if df is None or not len(df):
        return new
    return gpd.GeoDataFrame(pd.concat([df, new], ignore_index=True), geometry="geometry", crs=crs)


def apply_zones(net: Network, plan: ZonePlan, *, polygons: bool = True) -> Network:
    """The zoned network: the plan's devices, closed boundary pipes, zones on nodes and pipes.

    Parameters
    ----------
    net
        The network the plan was made for; not modified.
    plan
        From :func:`plan_zones`.
    polygons
        Add the ``zones`` polygon layer (:func:`zones_layer`).

    Returns
    -------
    Network
        A new network. A PRV splits its pipe :data:`DEVICE_OFFSET_M` before the zone's
        first node (a new junction ``<id>-U``; the pipe keeps its ``length_m``) and is
        a ``control_valves`` row (type PRV, setting = pressure head at the zone's first
        node in m, diameter = the pipe's). A break-pressure tank is a ``reservoir`` node
        and facility (``role`` = ``break_tank``, open to the atmosphere, overflow at the
        zone's level) fed by the cut pipe, with a short outlet pipe ``<id>-O``.

    Raises
    ------
    NetworkDataError
        The plan names pipes or nodes the network does not have.
    """
    out: Network = {k: v.copy() for k, v in net.items()}
    nodes, pipes = out["nodes"], out["pipes"]
    crs = nodes.crs
    pipe_ids = pipes["id"].astype(str)
    node_ids = set(nodes["id"].astype(str))
    for d in plan.devices.itertuples(index=False):
        if d.pipe not in set(pipe_ids) or d.node not in node_ids:
            raise NetworkDataError(f"zone plan: device {d.id!r} is on pipe {d.pipe!r} at node {d.node!r}, which the "
                                   "network does not have; make the plan from this network (plan_zones)")
        if d.id in node_ids:
            raise NetworkDataError(f"zone plan: device id {d.id!r} is already a node of the network; plan again")
    xy = dict(zip(nodes["id"].astype(str), nodes.geometry))
    elev = dict(zip(nodes["id"].astype(str), _num(nodes["elevation_m"])))
    zmap = plan.nodes["zone"].to_dict()
    new_nodes: list[dict[str, Any]] = []
    new_valves: list[dict[str, Any]] = []
    new_fac: list[dict[str, Any]] = []
    new_pipes: list[dict[str, Any]] = []
    for d in plan.devices.itertuples(index=False):
        i = int(np.flatnonzero((pipe_ids == d.pipe).to_numpy())[0])
        row = pipes.iloc[i]
        geom = row.geometry
        at_end = str(row["to_node"]) == d.node
        length = float(geom.length)
        off = min(DEVICE_OFFSET_M, 0.1 * length)
        if at_end:
            pt, cut_geom = geom.interpolate(length - off), substring(geom, 0.0, length - off)
        else:
            pt, cut_geom = geom.interpolate(off), substring(geom, off, length)
        end_col = "to_node" if at_end else "from_node"
        k_pt = xy[d.node]

        def along(frac: float, geom: Any = geom, length: float = length, off: float = off,
                  at_end: bool = at_end) -> Point:
            """A point `frac` of the offset back from the zone's first node, on the cut pipe."""
            p_ = geom.interpolate(length - off * frac) if at_end else geom.interpolate(off * frac)
            return Point(p_.x, p_.y)

        nid = f"{d.id}-U"
        new_nodes.append(_row_like(nodes, dict(id=nid, kind="junction", elevation_m=float(elev[d.node]),
                                               zone=d.parent_zone, base_demand_m3d=0.0, population=0,
                                               demand_category="none", geometry=along(1.0))))
        valves = out.get("control_valves")
        vcols = valves if valves is not None else pd.DataFrame(columns=["id", "from_node", "to_node", "type",
                                                                        "diameter_mm", "setting", "status",
                                                                        "minor_loss", "curve"])
        if d.device == "prv":
            new_valves.append(_row_like(vcols, dict(id=d.id, from_node=nid, to_node=d.node, type="PRV",
                                                    diameter_mm=float(d.diameter_mm), setting=float(d.setting_m),
                                                    status="ACTIVE", minor_loss=0.0,
                                                    geometry=Point((pt.x + k_pt.x) / 2, (pt.y + k_pt.y) / 2))))
        else:
            # U -[float valve: a PRV holding the overflow level]-> W -[inlet]-> tank B -[outlet]-> the zone
            bottom = float(d.hgl_m) - BPT_MAX_LEVEL_M
            zone_nodes = plan.nodes.index[plan.nodes["zone"] == d.zone]
            q = float(_num(nodes.set_index(nodes["id"].astype(str))["base_demand_m3d"].reindex(zone_nodes))
                      .fillna(0).sum()) / 86_400.0 if "base_demand_m3d" in nodes else 0.0
            vol = max(5.0, q * BPT_STORAGE_S * 2.0)
            diameter = max(BPT_MIN_DIAMETER_M, math.sqrt(4 * vol / (math.pi * (BPT_MAX_LEVEL_M - BPT_MIN_LEVEL_M))))
            w, b = f"{d.id}-W", d.id
            for node_id, kind, where in ((w, "junction", 0.66), (b, "reservoir", 0.33)):
                new_nodes.append(_row_like(nodes, dict(id=node_id, kind=kind, elevation_m=bottom, zone=d.zone,
                                                       base_demand_m3d=0.0, population=0, demand_category="none",
                                                       geometry=along(where))))
            new_valves.append(_row_like(vcols, dict(id=f"{d.id}-V", from_node=nid, to_node=w, type="PRV",
                                                    diameter_mm=float(d.diameter_mm), setting=BPT_MAX_LEVEL_M,
                                                    status="ACTIVE", minor_loss=0.0, geometry=along(0.83))))
            fac = out.get("facilities")
            new_fac.append(_row_like(fac if fac is not None else pd.DataFrame(), dict(
                id=b, kind="reservoir", name_zh="减压池", name_en="Break-pressure tank", node_id=b, zone=d.zone,
                bottom_elev_m=bottom, diameter_m=round(diameter, 2), min_level_m=BPT_MIN_LEVEL_M,
                max_level_m=BPT_MAX_LEVEL_M, init_level_m=BPT_MAX_LEVEL_M - 0.2, role="break_tank",
                volume_m3=round(math.pi * diameter ** 2 / 4 * BPT_MAX_LEVEL_M, 1), geometry=along(0.33))))
            base = row.drop(labels=["geometry"]).to_dict()
            for pid, a, c, ga, gc in ((f"{d.id}-I", w, b, along(0.66), along(0.33)),
                                      (f"{d.id}-O", b, d.node, along(0.33), k_pt)):
                new_pipes.append({**base, "id": pid, "from_node": a, "to_node": c, "length_m": 1.0, "zone": d.zone,
                                  "status": "OPEN", "geometry": LineString([(ga.x, ga.y), (gc.x, gc.y)])})
        pipes.at[pipes.index[i], end_col] = nid
        pipes.at[pipes.index[i], "geometry"] = cut_geom
    if len(plan.boundary):
        if "status" not in pipes:
            pipes["status"] = "OPEN"
        pipes.loc[pipe_ids.isin(set(plan.boundary["pipe"])).to_numpy(), "status"] = "CLOSED"
    if "zone" not in nodes:
        nodes["zone"] = None
    nodes["zone"] = [zmap.get(n, z_) for n, z_ in zip(nodes["id"].astype(str), nodes["zone"])]
    pzone = plan.pipes.set_index("pipe")["zone"]
    if "zone" not in pipes:
        pipes["zone"] = None
    pipes["zone"] = [pzone.get(p, z_) or z_ for p, z_ in zip(pipe_ids, pipes["zone"])]
    if new_nodes:
        nodes = _append(nodes, new_nodes, crs)
    if new_pipes:
        pipes = _append(pipes, new_pipes, crs)
    out["nodes"], out["pipes"] = nodes, pipes
    if new_valves:
        out["control_valves"] = _append(out.get("control_valves"), new_valves, crs)
    if new_fac:
        out["facilities"] = _append(out.get("facilities"), new_fac, crs)
    if polygons:
        out["zones"] = zones_layer(plan)
    return validate_network(out, source="zoned network")


def zones_layer(plan: ZonePlan, *, buffer_m: float = 30.0) -> gpd.GeoDataFrame:
    """The zones as polygons: each zone's pipes and nodes buffered by `buffer_m` (m), in the plan's CRS.

    Columns are ``id`` (the zone), those of ``plan.zones``, ``designed`` (a zone
    the plan made) and ``geometry`` (Polygon or MultiPolygon). Written as layer
    ``zones``, it is drawn by the service map (:mod:`watersupply.maps`).
    """
    from shapely import union_all

    rows = []
    zt = plan.zones.set_index("zone") if len(plan.zones) else pd.DataFrame()
    for zn in sorted(set(plan.nodes["zone"].map(_text)) - {""}):
        pts = plan.nodes.geometry[plan.nodes["zone"] == zn]
        lines = plan.pipes.geometry[plan.pipes["zone"] == zn]
        shape = union_all([*(g.buffer(buffer_m, quad_segs=4) for g in lines),
                           *(g.buffer(buffer_m, quad_segs=4) for g in pts)])
        # close the gaps between branches (morphological closing) so the zone reads as an area
        shape = shape.buffer(4 * buffer_m, quad_segs=4).buffer(-4 * buffer_m, quad_segs=4).simplify(buffer_m / 4)
        if shape.is_empty:
            continue
        if not shape.is_valid:
            from shapely import make_valid
            shape = make_valid(shape)
        row = {"id": zn, "zone": zn, "designed": zn in plan.options.get("zone_parent", {})}
        if len(zt) and zn in zt.index:
            row.update({k: v for k, v in zt.loc[zn].items()})
        row["geometry"] = shape
        rows.append(row)
    cols = ["id", "zone", "designed", *[c for c in plan.zones.columns if c != "zone"], "geometry"]
    gdf = gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=plan.crs)
    for c in ("device", "device_id", "parent_zone"):
        if c in gdf:
            gdf[c] = gdf[c].astype(str)
    return gdf


# ----------------------------------------------------------------------------- verification by EPANET


@dataclass
class ZoneCheck:
    """EPANET's verdict on a (zoned) network (from :func:`check_zones`).

    Attributes
    ----------
    taps : DataFrame
        Per tap (indexed by node id): ``zone``, ``kind``, ``elevation_m``,
        ``limit_m``, ``service_m``, ``static_m`` (EPANET, static run),
        ``static_rule_m`` (:func:`static_heads`), ``peak_pressure_m`` (EPANET, the
        peak hour), ``min_pressure_m`` (lowest of the day), ``static_ok``, ``service_ok``.
    peak_hour : float
        Hour of the day with the largest total demand.
    notes : list of str
        How the runs were made, and where the limits are not met.
    """

    taps: pd.DataFrame
    peak_hour: float
    notes: list[str]

    @property
    def passed(self) -> bool:
        return bool(self.taps["static_ok"].all() and self.taps["service_ok"].all())


def _static_network(net: Network) -> Network:
    """The network at no flow: tanks as fixed heads at their overflow level, a token demand at every junction,
    no patterns, pumps that fill tanks stopped (the rule of :func:`static_heads`)."""
    parts = _parts(net)
    out: Network = {k: v.copy() for k, v in net.items()}
    nodes = out["nodes"]
    ids = nodes["id"].astype(str)
    tank = ids.isin([n for n in parts.fixed if (nodes.loc[ids == n, "kind"] == "reservoir").any()])
    if "head_m" not in nodes:
        nodes["head_m"] = np.nan
    nodes["head_m"] = nodes["head_m"].astype(float)
    nodes.loc[tank.to_numpy(), "head_m"] = [parts.fixed[n] for n in ids[tank]]
    nodes.loc[tank.to_numpy(), "kind"] = "plant"
    nodes["base_demand_m3d"] = np.where(nodes["kind"] == "junction", 1e-3, 0.0)  # ≈ 0.01 mL/s: no friction
    nodes["pattern"] = None
    if "facilities" in out:
        fac = out["facilities"]
        out["facilities"] = fac[~((fac["kind"] == "reservoir") & fac["node_id"].astype(str).isin(set(ids[tank])))]
    pumps = out.get("pumps")
    if pumps is not None and len(pumps):
        part = parts.part
        stop = [str(b) in parts.fixed or part[str(b)] in parts.floated for b in pumps["to_node"].astype(str)]
        pumps["status"] = np.where(stop, "CLOSED", pumps.get("status", "OPEN"))
        pumps["control_node"] = None
    for table in ("controls", "rules"):
        out.pop(table, None)
    return out


def check_zones(net: Network, *, limits: Mapping[str, float] | None = None, default_kind: str = "village",
                duration_h: float = 24.0) -> ZoneCheck:
    """Verify by EPANET runs that static head at every tap is within its limit and service head is met at peak hour.

    Two runs of the network's model (:func:`watersupply.model.to_wntr`, EPANET 2.2):

    - static: tanks held at their overflow level as fixed heads, a token demand
      (0.001 m³/d) at every junction so PRVs regulate, demand-driven, pumps that fill
      tanks stopped — the zero-flow state of :func:`static_heads`, solved by EPANET;
    - peak hour: the model as it is (pressure-dependent demand) over `duration_h`
      hours; the hour with the largest total demand is the peak.

    Parameters
    ----------
    net
        A network with elevations (zoned or not); not modified.
    limits, default_kind
        As for :func:`plan_zones`.
    duration_h
        Length of the peak-hour run (h).

    Returns
    -------
    ZoneCheck
    """
    import tempfile

    from .hydraulics import expected_demand
    from .model import to_wntr
    from .simulation import _epanet

    if not (duration_h >= 1 and math.isfinite(duration_h)):
        raise ConfigError(f"duration_h must be at least 1 h, got {duration_h!r}")
    lim = tap_limits(net, default_kind=default_kind, limits=limits)
    taps = lim[lim["tap"]].copy()
    rule = static_heads(net)
    with tempfile.TemporaryDirectory(prefix="zones-") as tmp:
        wn = to_wntr(_static_network(net), duration_h=1.0)
        wn.options.time.duration = 0
        wn.options.hydraulic.demand_model = "DDA"
        wn.options.quality.parameter = "NONE"
        static = _epanet(wn, f"{tmp}/static", "static").node["pressure"].iloc[0]
        wn = to_wntr(net, duration_h=duration_h)
        wn.options.quality.parameter = "NONE"
        res = _epanet(wn, f"{tmp}/peak", "peak-hour")
    pressure = res.node["pressure"]
    hours = pressure.index.to_numpy(dtype=float) / 3600.0
    dem = expected_demand(wn, hours)
    day = hours <= 24.0 + 1e-9
    peak_i = int(np.argmax(dem.to_numpy().sum(axis=1)[day]))
    peak_h = float(hours[peak_i])
    ids = list(taps.index)
    zone = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["zone"].map(_text))) if "zone" in net["nodes"] else {}
    taps["zone"] = [zone.get(n, "") for n in ids]
    taps["static_m"] = static.reindex(ids).to_numpy(dtype=float)
    taps["static_rule_m"] = rule["static_head_m"].reindex(ids).to_numpy()
    taps["peak_pressure_m"] = pressure.iloc[peak_i].reindex(ids).to_numpy(dtype=float)
    taps["min_pressure_m"] = pressure.iloc[np.flatnonzero(day)].min().reindex(ids).to_numpy(dtype=float)
    taps["static_ok"] = taps["static_m"] <= taps["limit_m"] + 0.05
    taps["service_ok"] = taps["peak_pressure_m"] >= taps["service_m"] - 0.05
    taps = taps[["zone", "kind", "elevation_m", "limit_m", "service_m", "static_m", "static_rule_m",
                 "peak_pressure_m", "min_pressure_m", "static_ok", "service_ok"]]
    notes = [f"static run: EPANET 2.2, tanks at overflow level as fixed heads, 0.001 m³/d at every junction, "
             f"pumps that fill tanks stopped; peak hour {peak_h:g} h of a {duration_h:g} h run of the model as it is"]
    gap = (taps["static_m"] - taps["static_rule_m"]).abs()
    if len(gap) and gap.max() > 0.5:
        worst = gap.idxmax()
        notes.append(f"EPANET's static head differs from the zoning rule's by up to {gap.max():.1f} m (tap {worst}: "
                     f"{taps.at[worst, 'static_m']:.1f} vs {taps.at[worst, 'static_rule_m']:.1f} m)")
    for col, what, sign in (("static_ok", "static head above the limit", "static_m"),
                            ("service_ok", f"pressure below service head at peak hour {peak_h:g} h", "peak_pressure_m")):
        bad = taps.index[~taps[col]]
        if len(bad):
            notes.append(f"{len(bad)} tap(s) with {what}: "
                         + ", ".join(f"{n} ({taps.at[n, sign]:.1f} m, zone {taps.at[n, 'zone'] or '-'})"
                                     for n in bad[:8]) + (" and more" if len(bad) > 8 else ""))
    return ZoneCheck(taps=taps, peak_hour=peak_h, notes=notes)
