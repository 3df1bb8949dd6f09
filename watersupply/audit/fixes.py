"""Quality fixes that are verified: booster chlorination at the village reservoir, checked by a re-run.

Where a settlement fails or warns on tap chlorine, :func:`verify_boosters`
sizes a flow-paced booster dose at the reservoir that feeds its zone (the last
reservoir of its supply chain), adds it to the model as an EPANET source, and
re-runs chlorine at periodic steady state (same hydraulics: a booster does not
change them). The dose is first estimated from the run itself — chlorine is
linear in its sources, so a dose Δ added at the reservoir reaches a tap as
Δ × (tap chlorine / reservoir chlorine) — then corrected once from the re-run if
a tap is still short. The answer is what the re-run shows: every tap of the
settlement at or above ``tap_chlorine_min_mgL`` and no tap in the network above
``plant_chlorine_max_mgL``, or not verified.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..simulation import SimulationResult, quality_window

__all__ = ["verify_boosters", "FIX_COLUMNS"]

log = logging.getLogger(__name__)

#: Columns :func:`verify_boosters` adds to the audit table.
FIX_COLUMNS = ["fix_booster_at", "fix_booster_mgL", "cl_min_after_mgL", "cl_max_after_mgL", "fix_verified"]

_MARGIN = 1.05  # aim 5 % above the limit


def _estimate(result: SimulationResult, taps: Sequence[str], tank: str, thr: float, win: pd.Index) -> float:
    cl = result.chlorine.reindex(index=win, columns=list(taps))
    c_t = result.chlorine.reindex(index=win)[tank] if tank in result.chlorine else None
    if c_t is None or not (c_t > 0).any():
        return float("nan")
    need = 0.0
    for n in cl.columns:
        ratio = (cl[n] / c_t.where(c_t > 0)).replace([np.inf, -np.inf], np.nan)
        f = float(ratio.min()) if ratio.notna().any() else float("nan")
        short = thr * _MARGIN - float(cl[n].min())
        if short <= 0:
            continue
        if not f > 1e-6:
            return float("nan")  # the tap's water never passes the reservoir with chlorine: a booster cannot help
        need = max(need, short / f)
    return need


def verify_boosters(net: Any, result: SimulationResult, table: pd.DataFrame, members: Mapping[str, Sequence[str]],
                    zone_tanks: Mapping[str, str | None], t: Mapping[str, float], *, wn: Any = None,
                    workdir: Any = None) -> pd.DataFrame:
    """Booster doses at the zone reservoirs of settlements short of chlorine, verified by a re-run.

    Parameters
    ----------
    net, result
        The audited network and its run (chlorine at steady state).
    table
        The audit table (needs ``cl_min_mgL`` and ``quality_verdict``).
    members
        Settlement id → its demand nodes.
    zone_tanks
        Settlement id → the reservoir feeding its zone (or None).
    t
        Thresholds.
    wn
        The model the result came from (built from `net` when None).

    Returns
    -------
    DataFrame
        Indexed by settlement, :data:`FIX_COLUMNS`: reservoir, dose added
        (mg/L), lowest tap chlorine of the settlement and highest tap in the
        network after the re-run (mg/L), and whether every tap of the settlement
        then meets the limit with no tap above the plant maximum.
    """
    from ..model import to_wntr
    from ..simulation import run_wntr
    from ._common import _sim_options_of

    thr, cmax = float(t["tap_chlorine_min_mgL"]), float(t["plant_chlorine_max_mgL"])
    short = [s for s in table.index if str(table.loc[s, "quality_verdict"]) in ("fail", "warn")
             and np.isfinite(float(table.loc[s, "cl_min_mgL"])) and float(table.loc[s, "cl_min_mgL"]) < thr
             and zone_tanks.get(s)]
    out = pd.DataFrame(index=pd.Index(short, name="id"), columns=FIX_COLUMNS, dtype=object)
    if not short:
        return out
    win = quality_window(result)
    dose: dict[str, float] = {}
    for s in short:
        tank = str(zone_tanks[s])
        d = _estimate(result, members[s], tank, thr, win)
        if np.isfinite(d):
            dose[tank] = max(dose.get(tank, 0.0), d)
    taps_all = [n for m in members.values() for n in m]
    after = None
    for attempt in range(2):
        if not dose:
            break
        model = to_wntr(net, **_sim_options_of(result)) if wn is None else _copy(wn)
        for tank, d in dose.items():
            model.add_source(f"BOOST_{tank}", tank, "FLOWPACED", d * 1e-3)
        after = run_wntr(model, age=False, workdir=workdir, steady=True)
        cl_after = after.chlorine.loc[quality_window(after)]
        again = False
        for s in short:
            tank = str(zone_tanks[s])
            if tank not in dose:
                continue
            low = float(cl_after.reindex(columns=list(members[s])).min().min())
            if low < thr and attempt == 0:
                # linear in the dose: scale what this reservoir adds by the shortfall
                before = float(result.chlorine.loc[win].reindex(columns=list(members[s])).min().min())
                gain = low - before
                if gain > 1e-9:
                    dose[tank] *= max(1.0, (thr * _MARGIN - before) / gain)
                    again = True
        if not again:
            break
    if after is None:
        out["fix_verified"] = False
        return out
    cl_after = after.chlorine.loc[quality_window(after)]
    top = float(cl_after.reindex(columns=taps_all).max().max())
    for s in short:
        tank = str(zone_tanks[s])
        low = float(cl_after.reindex(columns=list(members[s])).min().min())
        out.loc[s] = [tank, round(dose.get(tank, float("nan")), 3), low, top,
                      bool(tank in dose and low >= thr and top <= cmax)]
    log.info("booster fixes verified by a re-run: %s", out.to_dict("index"))
    return out


def _copy(wn: Any) -> Any:
    import copy

    return copy.deepcopy(wn)
