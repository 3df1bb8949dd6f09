"""Answers from the graph alone: bridges, cut-off parts, series chains and dead-end trees."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..topology import SourceGraph
from .solver import _compact, _consequences

if TYPE_CHECKING:  # the plan imports this module
    from .plan import _Plan

__all__: list[str] = []


def _series_groups(wn: Any, links: pd.DataFrame, demand_ids: Sequence[str]) -> dict[str, str]:
    """Pipe → id of its series group (pipes joined through junctions with no demand and only two links).

    Losing any pipe of such a chain leaves the same network: the rest of the chain hangs
    dead-ended from nodes without demand and carries no flow.
    """
    demand = set(demand_ids)
    watched = set()
    for _name, ctl in wn.controls():
        for obj in ctl.requires():
            if hasattr(obj, "node_type"):
                watched.add(obj.name)
    at: dict[str, list[str]] = {}
    for name, row in links.iterrows():
        at.setdefault(row["u"], []).append(name)
        at.setdefault(row["v"], []).append(name)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    junctions = set(wn.junction_name_list)
    for node, ls in at.items():
        if len(ls) != 2 or node not in junctions or node in demand or node in watched:
            continue
        if any(links.at[x, "kind"] != "pipe" or links.at[x, "controlled"] for x in ls):
            continue
        if any(d.base_value for d in wn.get_node(node).demand_timeseries_list):
            continue
        a, b = find(ls[0]), find(ls[1])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in links.index if links.at[x, "kind"] == "pipe"}


def _tree_collapse(wn: Any, links: pd.DataFrame, sources: set[str]) -> dict[str, Any]:
    """Dead-end trees of plain pipes: their nodes, links and root junction."""
    import networkx as nx

    g = nx.MultiGraph()
    g.add_nodes_from(wn.node_name_list)
    for name, row in links[~links["closed"] | links["controlled"]].iterrows():
        g.add_edge(row["u"], row["v"], key=name)
    in_controls = set()  # nodes that controls watch must stay in the model
    for _name, ctl in wn.controls():
        for obj in ctl.requires():
            if hasattr(obj, "node_type"):
                in_controls.add(obj.name)
    core = nx.MultiGraph(g)
    while True:
        leaves = [n for n in core if core.degree(n) <= 1 and n not in sources]
        if not leaves:
            break
        core.remove_nodes_from(leaves)
    keep = set(core)
    for s in sources:
        if s in g:
            keep.update(g.neighbors(s))
    junctions = set(wn.junction_name_list)
    rest = g.subgraph([n for n in g if n not in keep])
    trees = []
    for comp in sorted(nx.connected_components(rest), key=lambda c: min(c)):
        roots = {nb for n in comp for nb in g.neighbors(n) if nb in keep}
        if len(roots) != 1:
            continue
        root = roots.pop()
        sub = g.subgraph(comp | {root})
        tlinks = [k for _u, _v, k in sub.edges(keys=True)]
        plain = all(links.at[k, "kind"] == "pipe" and not links.at[k, "switch"] for k in tlinks)
        if not plain or root not in junctions or not comp <= junctions or comp & in_controls \
                or sub.number_of_edges() != len(comp) or not nx.is_tree(nx.Graph(sub)):
            continue
        tree = nx.Graph()
        for u, v, k in sub.edges(keys=True):
            tree.add_edge(u, v, name=k)
        trees.append(dict(root=root, nodes=sorted(comp), links=sorted(tlinks), graph=tree))
    return dict(trees=trees)



def _bridges(graph: SourceGraph) -> set[str]:
    """Names of links (in the open-link graph) whose loss splits it."""
    import networkx as nx

    g = nx.MultiGraph()
    g.add_nodes_from(range(len(graph.nodes)))
    names = graph.fixed_names + graph.switch_names
    uv = np.vstack([graph.fixed_uv, graph.switch_uv]) if len(names) else np.zeros((0, 2), dtype=np.int64)
    for name, (u, v) in zip(names, uv.tolist()):
        g.add_edge(u, v, key=name)
    simple = nx.Graph(g)
    out = set()
    for u, v in nx.bridges(simple):
        if g.number_of_edges(u, v) == 1:
            out.add(next(iter(g[u][v])))
    return out


class _BridgeIndex:
    """Answers single-link bridges in O(size of the cut-off part) from a DFS tree of the open-link graph.

    Every bridge is a tree edge; the part it cuts off is the subtree below it (the DFS
    starts at a source, so the rest always keeps one). Baseline figures per demand node
    are precomputed, so an answer is the baseline with the subtree's demand nodes dry.
    """

    def __init__(self, plan: _Plan, bridges: set[str]) -> None:
        g = plan.graph
        n = len(g.nodes)
        names = g.fixed_names + g.switch_names
        uv = np.vstack([g.fixed_uv, g.switch_uv]) if names else np.zeros((0, 2), dtype=np.int64)
        adj: list[list[int]] = [[] for _ in range(n)]
        for a, b in uv.tolist():
            adj[a].append(b)
            adj[b].append(a)
        tin = np.full(n, -1, dtype=np.int64)
        tout = np.full(n, -1, dtype=np.int64)
        clock = 0
        roots = [int(i) for i in np.flatnonzero(g.sources)] + list(range(n))
        for r in roots:
            if tin[r] >= 0:
                continue
            tin[r] = clock
            clock += 1
            stack = [(r, iter(adj[r]))]
            while stack:
                node, it = stack[-1]
                nxt = next((x for x in it if tin[x] < 0), None)
                if nxt is None:
                    tout[node] = clock - 1
                    stack.pop()
                else:
                    tin[nxt] = clock
                    clock += 1
                    stack.append((nxt, iter(adj[nxt])))
        self.tin, self.tout = tin, tout
        order = np.argsort(tin)
        self.src_prefix = np.concatenate([[0], np.cumsum(g.sources[order])])
        pos = {nm: i for i, nm in enumerate(g.nodes)}
        dn_graph = np.array([pos.get(d, -1) for d in plan.demand_ids], dtype=np.int64)
        dn_tin = np.where(dn_graph >= 0, tin[np.maximum(dn_graph, 0)], -1)
        self.dn_order = np.argsort(dn_tin, kind="stable")
        self.dn_tin_sorted = dn_tin[self.dn_order]
        self.uv = {nm: (int(a), int(b)) for nm, (a, b) in zip(names, uv.tolist()) if nm in bridges}
        pl, base = plan.payload, plan.baseline
        step_h, pop = pl["step_h"], pl["pop"]
        with np.errstate(invalid="ignore"):
            dry_t = (base["p"] < pl["pmin"]) | base["cut"]
        self.base_dry = dry_t.any(axis=0)
        self.base_ph = (dry_t[:-1].astype(float) * pop).sum(axis=0) * step_h
        lost = np.where(base["cut"], pl["expected"], np.clip(base["deficit"], 0.0, None))
        self.base_lost = lost[:-1].sum(axis=0) * step_h * 3600.0
        self.exp_run = pl["expected"][:-1].sum(axis=0) * step_h * 3600.0
        self.hours = (pl["n_reports"] - 1) * step_h
        self.pop = pop
        self.status, self.message = base["status"], base["message"]

    def answer(self, link: str) -> dict[str, Any] | None:
        ab = self.uv.get(link)
        if ab is None:
            return None
        a, b = ab
        c = a if self.tin[a] > self.tin[b] else b
        lo, hi = int(self.tin[c]), int(self.tout[c])
        if self.src_prefix[hi + 1] - self.src_prefix[lo] > 0:
            return None  # a source (tank) below the cut: simulate
        i0, i1 = np.searchsorted(self.dn_tin_sorted, [lo, hi + 1])
        cut = self.dn_order[i0:i1]
        dry = self.base_dry.copy()
        dry[cut] = True
        ph = float(self.base_ph.sum() - self.base_ph[cut].sum() + self.pop[cut].sum() * self.hours)
        lost = float(self.base_lost.sum() - self.base_lost[cut].sum() + self.exp_run[cut].sum())
        return dict(dry_idx=np.flatnonzero(dry).astype(np.int32), person_hours=ph, unserved_m3=lost,
                    drop=math.nan, drop_node="", status=self.status, message=self.message, method="topology")


def _topology_answer(plan: _Plan, links: Sequence[str], base_fed: int, bridges: set[str]) -> dict[str, Any] | None:
    """Consequences from topology alone, or None when the closure must be simulated."""
    g = plan.graph
    in_graph = [x for x in links if x in g._fixed_pos or x in g.switch_names]
    if not in_graph:
        return _from_baseline(plan, np.zeros(len(g.nodes), dtype=bool), "no link of it is open in the model")
    if len(links) == 1 and links[0] not in bridges:
        return None
    all_names = g.fixed_names + g.switch_names
    uv = np.vstack([g.fixed_uv, g.switch_uv])
    lost = set(links)
    keep = np.array([n not in lost for n in all_names], dtype=bool)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = uv[keep]
    n = len(g.nodes)
    nc, lab = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)), directed=False)
    fed = np.zeros(nc, dtype=bool)
    fed[lab[g.sources]] = True
    if int(fed.sum()) != base_fed:
        return None  # the closure splits the supplied part: simulate
    dry_nodes = ~fed[lab]
    if not dry_nodes.any():
        return None
    for name in in_graph:
        u, v = uv[all_names.index(name)]
        if not dry_nodes[u] and not dry_nodes[v]:
            return None  # the lost link also joined supplied nodes
    # one-way links (pumps, check valves): the directed answer must add exactly the dry part
    every = np.ones(len(g.switch_names), dtype=bool)
    before = g.cut_off(g.base(), every)
    after = g.cut_off(g.base(lost), every & np.array([x not in lost for x in g.switch_names], dtype=bool))
    if not np.array_equal(after, before | dry_nodes):
        return None
    return _from_baseline(plan, dry_nodes, "")


def _from_baseline(plan: _Plan, dry_graph: np.ndarray, message: str) -> dict[str, Any]:
    """Baseline consequences with the demand nodes in `dry_graph` (graph order) dry all run."""
    pl, base = plan.payload, plan.baseline
    pos = {nm: i for i, nm in enumerate(plan.graph.nodes)}
    dn_dry = np.array([dry_graph[pos[d]] if d in pos else True for d in plan.demand_ids], dtype=bool)
    cut = base["cut"] | dn_dry[None, :]
    cons = _consequences(base["p"], cut, base["deficit"], pl, None)
    cons.update(status=base["status"], message=message or base["message"], method="topology")
    return _compact(cons)

