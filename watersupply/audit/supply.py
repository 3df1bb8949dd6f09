"""Where a settlement's water comes from: the directed supply graph, the unified network's plants and
stand-alone sources, supply chains (plant → pump station → reservoir …), and EPANET trace shares."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from .._errors import ConfigError, HydraulicError, NetworkDataError
from .. import topology
from ..schema import Network
from ..simulation import SimulationResult, quality_window
from ..topology import DIRECTIONAL_VALVES as _DIRECTIONAL_VALVES
from ._common import _s, _members, _weights, _sim_options_of

__all__ = ["supply_graph", "network_sources", "supply_chains", "trace_shares"]


def supply_graph(net: Network) -> nx.DiGraph:
    """Directed graph of the network by the rules of :mod:`watersupply.topology`: open pipes both
    ways (CV pipes one way), pumps and PRV/PSV/FCV from → to, other control valves both ways.

    Node attribute ``kind`` (layer kind); edge attributes ``id`` and ``kind``
    (pipe|pump|valve) and, for pumps, ``station``.
    """
    nodes = net["nodes"]
    kinds = dict(zip(nodes["id"].astype(str), nodes["kind"].astype(str)))
    return topology.supply_graph(topology.layer_link_table(net), nodes=kinds)


def network_sources(net: Network, *, graph: nx.DiGraph | None = None) -> tuple[list[str], list[str]]:
    """Split the network's sources into the unified network's plants and stand-alone sources.

    The main plant is the plant node of largest ``capacity_m3d`` (facilities),
    or, lacking capacities, the one whose connected part of the network holds
    the most demand. The unified network's plants are the plant nodes connected
    to it. A stand-alone source is a plant node not connected to it, or a
    reservoir that no unified-network plant can reach (an own well or spring).

    Returns
    -------
    (network_plants, standalone)
        Node ids, in layer order.
    """
    g = graph if graph is not None else supply_graph(net)
    nodes = net["nodes"]
    plants = nodes.loc[nodes["kind"] == "plant", "id"].astype(str).tolist()
    tanks = nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str).tolist()
    if not plants:
        return [], tanks
    und = g.to_undirected(as_view=True)
    dem = pd.to_numeric(nodes.get("base_demand_m3d", pd.Series(0.0, index=nodes.index)), errors="coerce").fillna(0.0)
    demand = dict(zip(nodes["id"].astype(str), dem))
    cap: dict[str, float] = {}
    fac = net.get("facilities")
    if fac is not None and len(fac) and "capacity_m3d" in fac:
        for nid, c in zip(fac["node_id"].astype(str), pd.to_numeric(fac["capacity_m3d"], errors="coerce")):
            if nid in plants and pd.notna(c):
                cap[nid] = float(c)

    def key(p: str) -> tuple[float, float, int]:
        comp = nx.node_connected_component(und, p)
        return (cap.get(p, 0.0), sum(demand.get(n, 0.0) for n in comp), -plants.index(p))

    main = max(plants, key=key)
    comp = nx.node_connected_component(und, main)
    net_plants = [p for p in plants if p in comp]
    reach: set[str] = set(net_plants)
    for p in net_plants:
        reach |= nx.descendants(g, p)
    standalone = [p for p in plants if p not in comp] + [t for t in tanks if t not in reach]
    return net_plants, standalone


def _pipe_adjacency(net: Network) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = {str(n): set() for n in net["nodes"]["id"]}
    pipes = net["pipes"]
    status = pipes["status"].map(lambda v: (_s(v) or "OPEN").upper()) if "status" in pipes \
        else pd.Series("OPEN", index=pipes.index)
    for a, b, st in zip(pipes["from_node"].astype(str), pipes["to_node"].astype(str), status):
        if st == "CLOSED":
            continue
        adj[a].add(b)
        adj[b].add(a)
    valves = net.get("control_valves")
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            if (_s(getattr(row, "type", None)) or "").upper() not in _DIRECTIONAL_VALVES + ("PBV",):
                adj[str(row.from_node)].add(str(row.to_node))
                adj[str(row.to_node)].add(str(row.from_node))
    return adj


def _feeders(net: Network) -> dict[str, list[tuple[str, str, str, str]]]:
    """to_node → [(kind pump|valve, link id, label (station id or valve type), from_node)]."""
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    pumps = net.get("pumps")
    if pumps is not None and len(pumps):
        for row in pumps.itertuples(index=False):
            out.setdefault(str(row.to_node), []).append(
                ("pump", str(row.id), _s(getattr(row, "station_id", None)) or str(row.id), str(row.from_node)))
    valves = net.get("control_valves")
    if valves is not None and len(valves):
        for row in valves.itertuples(index=False):
            vt = (_s(getattr(row, "type", None)) or "").upper()
            if vt in _DIRECTIONAL_VALVES + ("PBV",):
                out.setdefault(str(row.to_node), []).append(("valve", str(row.id), vt, str(row.from_node)))
    return out


def _chain_levels(start: Iterable[str], kinds: Mapping[str, str], adj: Mapping[str, set[str]],
                  feeders: Mapping[str, list[tuple[str, str, str, str]]],
                  tank_links: Mapping[str, tuple[set[str], set[str]]] | None = None) -> list[dict[str, list[str]]]:
    """Walk upstream from `start`, one pressure zone (pipe-connected region) per level.

    Each level lists the pump stations (and pumps) and valves feeding the
    region, the reservoirs feeding it and the plants reached; the next level
    starts at the suction side of those pumps/valves and the inflow side of
    those reservoirs. With `tank_links` (from the run's flow directions) a
    reservoir counts only if it delivers into the region and is crossed only
    towards the pipes that fill it; without, every reservoir met counts and is
    crossed in every direction.
    """
    visited: set[str] = set()
    frontier = list(dict.fromkeys(start))
    levels: list[dict[str, list[str]]] = []
    while frontier:
        region: list[str] = []
        lv: dict[str, list[str]] = {"stations": [], "pumps": [], "valves": [], "tanks": [], "plants": []}
        met: list[str] = []
        stack = [n for n in frontier if n not in visited]
        while stack:
            n = stack.pop()
            if n in visited:
                continue
            kind = kinds.get(n, "junction")
            if kind == "reservoir":
                if n not in met:
                    met.append(n)
                continue
            visited.add(n)
            if kind == "plant":
                lv["plants"].append(n)
                continue
            region.append(n)
            stack.extend(sorted(m for m in adj.get(n, ()) if m not in visited))
        rset = set(region) | set(frontier)
        for tk in met:
            if tank_links is None or tk in frontier or tank_links.get(tk, (set(), set()))[0] & rset:
                lv["tanks"].append(tk)
                visited.add(tk)
        nxt: list[str] = []
        for n in region + lv["tanks"]:
            for kind, link, label, frm in feeders.get(n, []):
                if kind == "pump":
                    if label not in lv["stations"]:
                        lv["stations"].append(label)
                    lv["pumps"].append(link)
                else:
                    lv["valves"].append(link)
                nxt.append(frm)
        for tk in lv["tanks"]:
            ins = tank_links[tk][1] if tank_links is not None and tk in tank_links else adj.get(tk, set())
            nxt.extend(sorted(m for m in ins if m not in visited))
        if any(lv.values()):
            levels.append(lv)
        frontier = [n for n in dict.fromkeys(nxt) if n not in visited]
    return levels


def supply_chains(net: Network, members: Mapping[str, Sequence[str]] | None = None, *,
                  result: SimulationResult | None = None) -> dict[str, list[str]]:
    """The supply chain of each settlement, from the source to the settlement.

    Walks upstream from the settlement's demand nodes one pressure zone at a
    time: the zone's reservoir, the pump station filling it, that station's
    source reservoir, … up to the plant. Elements are plant node ids, pump
    station ids, control-valve ids and reservoir ids; pressure-reducing valves
    (a zoned network's PRVs) only split a zone below its reservoir and are left
    out.

    Parameters
    ----------
    members
        Settlement id → its demand node ids (default: nodes by ``settlement_id``).
    result
        A run whose flow directions tell which pipes fill a reservoir and which
        it feeds; without it every reservoir met counts and is crossed both ways.

    Examples
    --------
    For the Tonghui model, 思南村 (V2) is fed ``['WTP-RAW', 'WTP-FCV', 'WTP', 'PS1', 'R1', 'PS3', 'R4']``
    (the treatment works, its flow-control valve and the clear well, then the lifts).
    """
    if members is None:
        members = _members(net, include_industrial=False)
    kinds = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["kind"].astype(str)))
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    tl = _tank_links(net, result)
    cv = net.get("control_valves")
    prv = set() if cv is None or not len(cv) else set(cv.loc[cv["type"].astype(str).str.upper() == "PRV", "id"].astype(str))
    out: dict[str, list[str]] = {}
    for sid, nodes in members.items():
        levels = _chain_levels(nodes, kinds, adj, feeders, tl)
        chain: list[str] = []
        for lv in reversed(levels):
            for item in lv["plants"] + lv["stations"] + lv["valves"] + lv["tanks"]:
                if item not in chain and item not in prv:
                    chain.append(item)
        out[sid] = chain
    return out


def _tank_links(net: Network, result: SimulationResult | None) -> dict[str, tuple[set[str], set[str]]] | None:
    """tank → (neighbours it feeds, neighbours feeding it), by pipe, from the run's flow directions."""
    if result is None:
        return None
    nodes = net["nodes"]
    tanks = set(nodes.loc[nodes["kind"] == "reservoir", "id"].astype(str))
    out: dict[str, tuple[set[str], set[str]]] = {tk: (set(), set()) for tk in tanks}
    pipes = net["pipes"]
    eps = 1e-6
    for pid, a, b in zip(pipes["id"].astype(str), pipes["from_node"].astype(str), pipes["to_node"].astype(str)):
        if (a not in tanks and b not in tanks) or pid not in result.flow:
            continue
        q = result.flow[pid]
        fwd, rev = bool((q > eps).any()), bool((q < -eps).any())
        if a in tanks:   # a → b positive: tank a feeds b
            if fwd:
                out[a][0].add(b)
            if rev:
                out[a][1].add(b)
        if b in tanks:
            if fwd:
                out[b][1].add(a)
            if rev:
                out[b][0].add(a)
    # a reservoir that never filled (or never delivered) in the run — e.g. its pump was out all
    # along — keeps its structural links on that side
    for tk, (feeds, fed_by) in out.items():
        nbrs: set[str] = set()
        for a, b in zip(pipes["from_node"].astype(str), pipes["to_node"].astype(str)):
            if a == tk:
                nbrs.add(b)
            elif b == tk:
                nbrs.add(a)
        if not fed_by:
            fed_by |= nbrs
        if not feeds:
            feeds |= nbrs
    return out


def _chain_initial(net: Network, result: SimulationResult, sources: Sequence[str]) -> dict[str, set[str]]:
    """node → the traced sources its initial water is taken to have come through (its supply chain)."""
    kinds = dict(zip(net["nodes"]["id"].astype(str), net["nodes"]["kind"].astype(str)))
    adj, feeders = _pipe_adjacency(net), _feeders(net)
    tl = _tank_links(net, result)
    pump_to = {link: to for to, lst in feeders.items() for kind, link, _, _ in lst if kind == "pump"}
    src = set(sources)
    out: dict[str, set[str]] = {}
    seen: set[str] = set()
    for n in kinds:
        if n in seen or kinds[n] in ("reservoir", "plant"):
            continue
        # the pipe-connected region of n (a pressure zone without its reservoirs)
        region, stack = [], [n]
        while stack:
            x = stack.pop()
            if x in seen or kinds.get(x) in ("reservoir", "plant"):
                continue
            seen.add(x)
            region.append(x)
            stack.extend(adj.get(x, ()))
        levels = _chain_levels([n], kinds, adj, feeders, tl)
        elems = set()
        for lv in levels:
            elems |= set(lv["plants"]) | set(lv["tanks"]) | set(lv["valves"]) | {pump_to[p] for p in lv["pumps"]}
        elems &= src
        for x in region:
            out[x] = elems
    for tk in (k for k, v in kinds.items() if v == "reservoir"):
        ins = tl[tk][1] if tl is not None else adj.get(tk, set())
        elems = set()
        for nb in ins:
            elems |= out.get(nb, set())
        for kind, link, _, frm in feeders.get(tk, []):
            elems |= out.get(frm, set()) | ({pump_to[link]} if link in pump_to else set())
        out[tk] = elems & src
    return out


def trace_shares(net: Network, result: SimulationResult, sources: Sequence[str], *,
                 members: Mapping[str, Sequence[str]] | None = None, wn: Any = None, initial: str = "chain",
                 qstep_s: float = 600.0,
                 workdir: str | os.PathLike | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Share of each settlement's delivered water that came from (or passed) each source.

    The hydraulics are solved once with EPANET; then, on those saved
    hydraulics, one quality-only run per source tracks a conservative
    constituent held at 100 % where the water leaves the source (a set-point
    source: EPANET's TRACE). The share is the demand-weighted mean
    concentration / 100 over the settlement's demand nodes and the
    :func:`~watersupply.simulation.quality_window`.

    EPANET's own TRACE mode starts every node at 0 %. In a cascade of storage
    reservoirs (each ~10 h of demand) the initial water is not washed out in a
    72 h run, so the deepest villages would look as if only part of their water
    came through their own chain (Tonghui's 村七 V7: 46 % from the plant). With
    ``initial="chain"`` the initial water is instead taken to have come the way
    the supply chain runs (100 % at nodes and reservoirs whose chain contains
    the source, as :func:`supply_chains` walks it with the run's flow
    directions); ``initial="zero"`` reproduces EPANET's TRACE.

    Parameters
    ----------
    sources
        Node ids to trace (plants, reservoirs, pump discharge nodes, ...).
    members
        Settlement id → demand node ids (default: by ``settlement_id``, no industry).
    wn
        The model `result` was computed with (e.g. a scenario's); built from `net`
        with ``result.options`` when not given. It is not modified.
    initial
        ``"chain"`` or ``"zero"`` (see above).
    qstep_s
        Water-quality time step of the trace runs (s), at least the model's own
        and at most its hydraulic step; shares need less time resolution than
        chlorine, and the step sets the run time.

    Returns
    -------
    (shares, notes)
        Settlement × source DataFrame of shares in 0–1 (NaN for a settlement
        that received no water over the window), and caveats (e.g. when the
        re-solved hydraulics differ from the result's).
    """
    import wntr

    from ..engine import EN, Project, quiet_stdout
    from ..model import to_wntr

    if initial not in ("chain", "zero"):
        raise ConfigError(f"initial must be 'chain' or 'zero', got {initial!r}")
    members = members if members is not None else _members(net, include_industrial=False)
    base_wn = wn if wn is not None else to_wntr(net, **_sim_options_of(result))
    missing = [s for s in sources if s not in base_wn.node_name_list]
    if missing:
        raise NetworkDataError(f"trace source(s) {', '.join(map(repr, missing))} are not nodes of the model")
    w = base_wn  # switched to a conservative constituent for the INP, restored below
    q, r = w.options.quality, w.options.reaction
    saved = dict(parameter=q.parameter, chemical_name=q.chemical_name, inpfile_units=q.inpfile_units,
                 tolerance=q.tolerance, bulk=r.bulk_coeff, wall=r.wall_coeff,
                 pipes=[(p.bulk_coeff, p.wall_coeff) for _, p in w.pipes()],
                 tanks=[tk.bulk_coeff for _, tk in w.tanks()],
                 init=[nd.initial_quality for _, nd in w.nodes()])
    win = quality_window(result)
    want = {float(h) for h in win}
    notes: list[str] = []
    shares = pd.DataFrame(0.0, index=pd.Index(list(members), name="settlement"),
                          columns=pd.Index(list(sources), name="source"))
    weights = {s: _weights(result, m, win) for s, m in members.items() if len(m)}
    delivered = {s: float(result.demand.reindex(index=win, columns=list(m)).clip(lower=0.0).to_numpy().sum())
                 for s, m in members.items() if len(m)}
    read = sorted({n for m in members.values() for n in m})
    init = _chain_initial(net, result, sources) if initial == "chain" else {}
    in_model = set(w.node_name_list)
    check = [c for c in result.pressure.columns if c in in_model]
    check = check[:: max(1, len(check) // 300)]
    with tempfile.TemporaryDirectory(prefix="watersupply-audit-", dir=workdir) as tmp:
        inp = str(Path(tmp) / "trace.inp")
        try:
            q.parameter, q.chemical_name, q.inpfile_units = "CHEMICAL", "Share", "pct"  # not "Trace": a keyword
            q.tolerance = 0.5  # percentage points: segments closer than this merge (speed)
            saved["qstep"] = w.options.time.quality_timestep
            w.options.time.quality_timestep = int(max(saved["qstep"], min(qstep_s, w.options.time.hydraulic_timestep)))
            r.bulk_coeff = r.wall_coeff = 0.0
            for _, pipe in w.pipes():
                pipe.bulk_coeff = pipe.wall_coeff = 0.0
            for _, tank in w.tanks():
                tank.bulk_coeff = 0.0
            for _, node in w.nodes():
                node.initial_quality = 0.0
            wntr.network.write_inpfile(w, inp, units="LPS", version=2.2)
        finally:
            q.parameter, q.chemical_name, q.inpfile_units = saved["parameter"], saved["chemical_name"], saved["inpfile_units"]
            q.tolerance, r.bulk_coeff, r.wall_coeff = saved["tolerance"], saved["bulk"], saved["wall"]
            w.options.time.quality_timestep = saved.get("qstep", w.options.time.quality_timestep)
            for (_, pipe), (kb, kw) in zip(w.pipes(), saved["pipes"]):
                pipe.bulk_coeff, pipe.wall_coeff = kb, kw
            for (_, tank), kb in zip(w.tanks(), saved["tanks"]):
                tank.bulk_coeff = kb
            for (_, node), c0 in zip(w.nodes(), saved["init"]):
                node.initial_quality = c0
        try:
            with quiet_stdout(), Project(inp, report=Path(tmp) / "trace.rpt", hydraulics=False) as en:
                idx = {n: en.node_index(n) for n in w.node_name_list}
                read_idx = np.array([idx[n] for n in read], dtype=np.int64)
                check_idx = np.array([idx[c] for c in check], dtype=np.int64)
                hours = set(result.pressure.index)
                # hydraulics once, saved for the quality runs; sample pressures to check them
                en.open_hydraulics()
                en.init(EN.SAVE)
                p_rows: dict[float, list[float]] = {}
                while True:
                    _code, t_s = en.run()
                    h = round(t_s / 3600.0, 6)
                    if t_s % 3600 == 0 and h in hours:
                        p_rows[h] = en.node_values(EN.PRESSURE, check_idx).tolist()
                    if en.advance()[1] <= 0:
                        break
                en.close_hydraulics()
                conc: dict[str, pd.DataFrame] = {}
                for src in sources:
                    for n, i in idx.items():
                        en.set_node(i, EN.INITQUAL, 100.0 if (n == src or src in init.get(n, ())) else 0.0)
                        en.set_node(i, EN.SOURCEQUAL, 0.0)
                    en.set_node(idx[src], EN.SOURCETYPE, EN.SETPOINT)
                    en.set_node(idx[src], EN.SOURCEQUAL, 100.0)
                    en.open_quality()
                    rows: dict[float, list[float]] = {}
                    while True:
                        t_s = en.run_quality()
                        h = round(t_s / 3600.0, 6)
                        if t_s % 3600 == 0 and h in want:
                            rows[h] = en.node_values(EN.QUALITY, read_idx).tolist()
                        if en.advance_quality() <= 0:
                            break
                    en.close_quality()
                    hrs = sorted(rows)
                    conc[src] = pd.DataFrame(np.array([rows[h] for h in hrs], dtype=float).reshape(len(hrs), len(read))
                                             / 100.0, index=pd.Index(hrs, name="time_h"), columns=read)
        except HydraulicError as exc:
            raise HydraulicError(f"EPANET could not run the audit's trace analyses of {base_wn.name!r}: {exc}") from None
    ph = sorted(p_rows)
    p_new = pd.DataFrame(np.array([p_rows[h] for h in ph], dtype=float).reshape(len(ph), len(check)),
                         index=pd.Index(ph), columns=check)
    rows_ = p_new.index.intersection(result.pressure.index)
    diff = float((p_new.loc[rows_] - result.pressure.loc[rows_, check]).abs().max().max()) if len(rows_) else np.inf
    if not diff <= 0.5 or len(rows_) < len(result.pressure.index):
        msg = (f"the hydraulics re-solved for the trace runs differ from the result's (max |Δp| {diff:.2f} m over "
               f"{len(rows_)} of {len(result.pressure.index)} hours): traced shares may be off — pass the model "
               "the result was computed with as wn=")
        warnings.warn(msg, stacklevel=2)
        notes.append(msg)
    for src, c in conc.items():
        for sid, wt in weights.items():
            cc = c.reindex(index=wt.index, columns=wt.columns).fillna(0.0)
            shares.loc[sid, src] = float((cc * wt).to_numpy().sum() / wt.to_numpy().sum()) \
                if delivered.get(sid, 0.0) > 0 else np.nan
    return shares.clip(lower=0.0, upper=1.0), notes
