"""The usual recipe, for verification: copy the model, close the element, run WNTR's EpanetSimulator."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import HydraulicError
from ..schema import Network
from ..topology import link_table, source_graph
from .closures import _demand_people, closure_sets
from .output import _table
from .solver import _compact, _consequences

__all__ = ["reference_criticality"]


def reference_criticality(net: Network, *, pipes: str | Iterable[str] = "all", segments: bool = False,
                          duration_h: float = 24, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The usual recipe, for verification: copy the model, close the element, run WNTR's EpanetSimulator.

    Same definitions and columns as :func:`pipe_criticality` (``method`` is ``recipe``); the
    worst pressure drop is computed for every element. About 1–3 s per element on Tonghui.
    """
    import copy

    from wntr.network.base import LinkStatus

    from ..model import to_wntr
    from ..engine import quiet_stdout

    wn = to_wntr(net, duration_h=duration_h)
    wn.options.quality.parameter = "NONE"
    closures = closure_sets(net, pipes=pipes, segments=segments, wn=wn)
    plan_like = _recipe_context(net, wn)
    links_info = link_table(wn)
    graph = source_graph(list(wn.node_name_list), plan_like["sources"], links_info)
    controls_of: dict[str, list[str]] = {}
    for cname, ctl in wn.controls():
        for act in ctl.actions():
            obj = act.target()[0]
            controls_of.setdefault(getattr(obj, "name", ""), []).append(cname)

    def solve(links: Sequence[str]) -> dict[str, Any]:
        w2 = copy.deepcopy(wn)
        for x in links:
            for cname in controls_of.get(x, []):
                if cname in w2.control_name_list:
                    w2.remove_control(cname)
            link = w2.get_link(x)
            if getattr(link, "check_valve", False):
                link.check_valve = False  # WNTR writes a CV pipe as CV whatever its status: close a plain pipe
            link.initial_status = LinkStatus.Closed
        with tempfile.TemporaryDirectory(prefix="watersupply-recipe-") as tmp:
            prefix = str(Path(tmp) / "run")
            try:
                with quiet_stdout():
                    res = _epanet_simulator(w2, prefix)
            except Exception as exc:  # WNTR 1.5 may raise a bare ValueError when EPANET stops
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                return dict(status="error", message=f"{type(exc).__name__}: {msg}")
            rpt = Path(prefix + ".rpt").read_text(errors="replace") if Path(prefix + ".rpt").exists() else ""
        status, message = "ok", ""
        low = rpt.lower()
        if "unbalanced" in low or "unstable" in low:
            line = next(ln.strip() for ln in rpt.splitlines() if "unbalanced" in ln.lower() or "unstable" in ln.lower())
            status, message = "unconverged", line
        ctx = plan_like
        T = ctx["n_reports"]
        pr = res.node["pressure"]
        if len(pr) < T:
            return dict(status="error", message=f"EPANET stopped after {len(pr)} of {T} report times")
        p = pr.reindex(columns=ctx["demand_ids"]).to_numpy(float)[:T]
        delivered = res.node["demand"].reindex(columns=ctx["demand_ids"]).to_numpy(float)[:T]
        st = res.link["status"]
        closed = set(links)
        cut = np.zeros_like(p, dtype=bool)
        pos = {n: i for i, n in enumerate(graph.nodes)}
        dpos = np.array([pos.get(n, -1) for n in ctx["demand_ids"]])
        base = graph.base(closed)
        for r in range(T):
            sw = np.array([(st.iloc[r][x] != 0) and x not in closed for x in graph.switch_names], dtype=bool)
            c = graph.cut_off(base, sw)
            cut[r] = np.where(dpos >= 0, c[dpos], True)
        return dict(status=status, message=message, p=p, cut=cut, deficit=ctx["expected"] - delivered)

    base = solve(())
    if base["status"] == "error":
        raise HydraulicError(f"the baseline of {wn.name!r} cannot be solved: {base['message']}")
    answers = {}
    for k, (cid, links) in enumerate(closures.items()):
        raw = solve(links)
        if raw["status"] == "error":
            answers[cid] = dict(status="error", message=raw["message"], method="recipe")
        else:
            cons = _consequences(raw["p"], raw["cut"], raw["deficit"], plan_like, base["p"])
            cons.update(status=raw["status"], message=raw["message"], method="recipe")
            answers[cid] = _compact(cons)
        if progress is not None:
            progress(k + 1, len(closures))

    @dataclass
    class _P:  # the few fields _table reads
        net: Network
        demand_ids: list[str]
        pop: np.ndarray
        settlement: list[str | None]

    return _table(_P(net, plan_like["demand_ids"], plan_like["pop"], plan_like["settlement"]),  # type: ignore[arg-type]
                  closures, answers, segments=segments)


def _epanet_simulator(wn: Any, prefix: str) -> Any:
    """WNTR's ``EpanetSimulator.run_sim`` (EPANET 2.2), on the model written with every number exact.

    ``run_sim`` writes its INP with WNTR's writer, which rounds demands and other reals
    to 11 significant digits; :func:`pipe_criticality` solves the model written by
    :func:`watersupply.model.write_inp` (exact, L/s). The rounding is 1e-12 of a demand,
    but where a closure leaves nodes near zero pressure EPANET's ACCURACY 0.001 stops the
    trials at a point that depends on it: on Tonghui the recipe's pressures moved by up
    to 0.84 m (M00320 at 19 h), enough to flip nodes across the 1 m threshold (618
    instead of 404 people). The recipe solves the same model; the steps are run_sim's:
    open, solve hydraulics, write the results, read the binary output.
    """
    import wntr.epanet.io
    import wntr.epanet.toolkit

    from ..model import write_inp

    inp = write_inp(wn, prefix + ".inp", units="LPS")
    en = wntr.epanet.toolkit.ENepanet(version=2.2)
    en.ENopen(str(inp), prefix + ".rpt", prefix + ".bin")
    try:
        en.ENsolveH()
        en.ENsolveQ()
        en.ENreport()
    finally:
        en.ENclose()
    return wntr.epanet.io.BinFile().read(prefix + ".bin", False, wn.options.hydraulic.headloss == "D-W")


def _recipe_context(net: Network, wn: Any) -> dict[str, Any]:
    import wntr

    from ..standards import thresholds

    step = int(wn.options.time.report_timestep)
    duration = int(wn.options.time.duration)
    T = duration // step + 1
    demand_ids, pop, settlement = _demand_people(net)
    exp = wntr.metrics.expected_demand(wn, start_time=0, end_time=duration, timestep=step)
    return dict(demand_ids=demand_ids, pop=pop, settlement=settlement, n_reports=T, step_h=step / 3600.0,
                pmin=float(thresholds()["pdd_minimum_pressure_m"]),
                expected=exp.reindex(columns=demand_ids).fillna(0.0).to_numpy(float)[:T],
                sources=set(wn.reservoir_name_list) | set(wn.tank_name_list))

