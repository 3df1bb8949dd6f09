"""Which links each analysed element closes: single pipes, or valve-isolation segments."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .._errors import NetworkDataError, closest
from ..schema import Network
from ..topology import valve_segments

__all__ = ["closure_sets"]


def closure_sets(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                 wn: Any = None) -> dict[str, tuple[str, ...]]:
    """The elements to analyse and the links each one closes.

    Parameters
    ----------
    net
        Network layers.
    pipes
        ``"all"``, ``"main"``, ``"branch"``, a comma-separated string of pipe ids
        or an iterable of pipe ids.
    segments
        Analyse valve-isolation segments (``wntr.metrics.valve_segments`` over the
        ``valves`` layer) instead of single pipes: the segments holding at least
        one selected pipe. A segment closes its own links and the links whose
        valve sits at one of its nodes.
    wn
        The WNTR model (built with :func:`watersupply.model.to_wntr` when not given).

    Returns
    -------
    dict
        Element id (pipe id, or ``S0001``… for segments) → closed link ids, in a stable order.

    Raises
    ------
    NetworkDataError
        An unknown pipe id (with the closest valid ids), or ``segments`` without a valves layer.
    """
    layer = net["pipes"]
    ids = layer["id"].astype(str).tolist()
    cls = layer["class"].astype(str).tolist() if "class" in layer else ["main"] * len(ids)
    if isinstance(pipes, str) and pipes.strip().lower() in ("all", "main", "branch"):
        sel = pipes.strip().lower()
        chosen = [i for i, c in zip(ids, cls) if sel == "all" or c == sel]
    else:
        wanted = [s.strip() for s in pipes.split(",")] if isinstance(pipes, str) else [str(s).strip() for s in pipes]
        wanted = [w for w in wanted if w]
        if not wanted:
            raise NetworkDataError("pipes: no pipe ids given; use all, main, branch or a comma-separated list of ids")
        known = set(ids)
        for w in wanted:
            if w not in known:
                raise NetworkDataError(f"pipes: unknown pipe id {w!r}; {closest(w, ids)}")
        chosen = list(dict.fromkeys(wanted))
    if not segments:
        return {c: (c,) for c in chosen}

    valves = net.get("valves")
    if valves is None or not len(valves):
        raise NetworkDataError("segments: the network has no 'valves' layer (columns id, link, node); "
                               "add isolation valves, or analyse single pipes without --segments")
    if wn is None:
        from ..model import to_wntr

        wn = to_wntr(net)
    chosen_set = set(chosen)
    out: dict[str, tuple[str, ...]] = {}
    for s, seg in valve_segments(wn, valves).items():
        members, own = set(seg.links), set(seg.own)
        if own & chosen_set or (members & chosen_set and not own):
            out[f"S{s:04d}"] = seg.links
    return out


def _demand_people(net: Network) -> tuple[list[str], np.ndarray, list[str | None]]:
    """Demand node ids, their population and their settlement id (None outside settlements)."""
    from ..metrics import demand_nodes

    demand_ids = [str(x) for x in demand_nodes(net)]
    nodes = net["nodes"].set_index(net["nodes"]["id"].astype(str))
    pop = pd.to_numeric(nodes["population"], errors="coerce").reindex(demand_ids).fillna(0.0).to_numpy(float) \
        if "population" in nodes else np.zeros(len(demand_ids))
    settlement = [None if (s is None or (isinstance(s, float) and math.isnan(s))) else str(s)
                  for s in (nodes["settlement_id"].reindex(demand_ids) if "settlement_id" in nodes
                            else [None] * len(demand_ids))]
    return demand_ids, pop, settlement

