"""Which main's break hurts most: a topological screen, then a hydraulic sweep over the worst candidates.

1. Every main's isolation segment (its valve segment) is closed in turn in the
   network graph and the people cut off are counted: *immediately* (no path
   from any source, plants or reservoirs) and *eventually* (no path from a
   plant: they live on reservoir storage until it runs out).
2. The `top` segments by (eventually, immediately) cut-off population are
   solved with EPANET — a ``pipe_break`` scenario of `for_h` hours from hour
   `at_h` — and ranked by person-hours without water.

This is how the main of the shipped ``main_break`` scenario was chosen.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import pandas as pd

from .. import metrics
from ..model import to_wntr
from ..schema import Network
from ..topology import isolation_segment, link_table, reachable, supply_graph, valve_segments
from .impact import baseline_for, run_scenario
from .spec import Scenario

__all__ = ["screen_main_breaks", "rank_main_breaks"]

log = logging.getLogger(__name__)


def screen_main_breaks(net: Network) -> pd.DataFrame:
    """People cut off by isolating each main's valve segment (topology only, no hydraulics).

    Returns
    -------
    DataFrame
        One row per segment (indexed by its first main): ``mains`` in it, ``links``
        closed, ``people_immediate`` (no path from any source), ``people_eventual``
        (no path from a plant), sorted by eventual then immediate population.
    """
    wn = to_wntr(net, duration_h=1)
    pipes = net["pipes"]
    mains = pipes.loc[pipes.get("class", pd.Series("main", index=pipes.index)) == "main", "id"].astype(str)
    valves = net.get("valves")
    nodes = net["nodes"].set_index("id")
    ids = metrics.demand_nodes(net)
    pop = pd.to_numeric(nodes.loc[ids, "population"], errors="coerce").fillna(0.0).to_numpy()
    ids = list(ids)
    # one directed graph (topology rules: pumps, check valves and PRV/PSV/FCV one way; closed links out);
    # a segment's edges are taken out and put back. Super-sources: all plants, all sources.
    links = link_table(wn)
    g = supply_graph(links, nodes=wn.node_name_list)
    g.add_edges_from(("__plants__", p) for p in wn.reservoir_name_list)
    g.add_edges_from(("__sources__", p) for p in list(wn.reservoir_name_list) + list(wn.tank_name_list))
    segments = valve_segments(wn, valves) if valves is not None and len(valves) else None
    seen: dict[frozenset, str] = {}
    rows = []
    by_seg: dict[str, list[str]] = defaultdict(list)
    for m in mains:
        seg_links, _ = isolation_segment(wn, m, valves, segments=segments)
        key = frozenset(seg_links)
        if key in seen:
            by_seg[seen[key]].append(m)
            continue
        seen[key] = m
        by_seg[m].append(m)
        shut = set(seg_links)
        removed = [(u, v, d) for u, v, d in g.edges(data=True) if d.get("id") in shut]
        g.remove_edges_from(removed)
        r_all = reachable(g, ["__sources__"])
        r_plant = reachable(g, ["__plants__"])
        g.add_edges_from(removed)
        rows.append(dict(segment=m, links=len(seg_links),
                         people_immediate=float(pop[[n not in r_all for n in ids]].sum()),
                         people_eventual=float(pop[[n not in r_plant for n in ids]].sum())))
    out = pd.DataFrame(rows).set_index("segment")
    out.insert(0, "mains", [",".join(by_seg[s]) for s in out.index])
    return out.sort_values(["people_eventual", "people_immediate", "links"], ascending=[False, False, True],
                           kind="stable")


def rank_main_breaks(net: Network, *, at_h: float = 41.0, for_h: float = 12.0, duration_h: float = 72.0,
                     top: int = 8, candidates: list[str] | None = None) -> pd.DataFrame:
    """Solve a break of each candidate main and rank by person-hours without water.

    Parameters
    ----------
    net
        The network (with a ``valves`` layer for realistic isolation).
    at_h, for_h, duration_h
        The break window and run length (hours); default 17:00 on day 2 for 12 h.
    top
        How many segments of :func:`screen_main_breaks` to solve (when
        `candidates` is not given): the top by eventual cut-off population and
        the top by immediate cut-off population.
    candidates
        Main ids to solve instead of the screen's choice.

    Returns
    -------
    DataFrame
        Indexed by main id: person-hours and peak people without water,
        settlements affected, sorted worst first.
    """
    if candidates is None:
        screen = screen_main_breaks(net)
        by_eventual = list(screen.index[:top])
        by_immediate = list(screen.sort_values(["people_immediate", "people_eventual"], ascending=False,
                                               kind="stable").index[:top])
        candidates = list(dict.fromkeys(by_eventual + by_immediate))
    base_sc = Scenario(name="sweep", title_zh="主管破损筛选", title_en="main break sweep", duration_h=duration_h)
    base = baseline_for(base_sc, net, age=False)
    wn = to_wntr(net, duration_h=1)
    valves = net.get("valves")
    segments = valve_segments(wn, valves) if valves is not None and len(valves) else None
    rows = []
    for m in candidates:
        sc = Scenario(name="sweep", title_zh="主管破损筛选", title_en="main break sweep", duration_h=duration_h,
                      events=[dict(type="pipe_break", pipe=m, at_h=at_h, for_h=for_h)])
        run = run_scenario(sc, net=net, baseline=base, age=False)
        h = run.headline()
        st = run.settlements
        rows.append(dict(main=m, links_closed=len(isolation_segment(wn, m, valves, segments=segments)[0]),
                         person_hours_without_water=h["person_hours_without_water"],
                         people_without_water_max=h["people_without_water_max"],
                         settlements_affected=",".join(st.index[st["person_hours_without_water"] > 0])))
        log.info("break of %s: %s", m, h)
    out = pd.DataFrame(rows).set_index("main")
    return out.sort_values(["person_hours_without_water", "people_without_water_max"], ascending=False,
                           kind="stable")
