"""Background leakage as pressure-dependent emitters, and the unforeseen-demand allowance.

**Leakage.** CJJ 92-2016 (城镇供水管网漏损控制及评定标准) defines the leakage rate
as the water supplied but not consumed by registered users, over the water
supplied, and sets the basic target at 10 % (first grade; 12 % second grade),
adjusted for pressure and mains length. :func:`add_leakage` gives every junction
an EPANET emitter for background leakage, Q = C·p^N, with C proportional to the
length of pipe the junction stands for (half of each pipe ending at it: leakage
grows with mains length) and calibrated by EPANET runs so that leakage over the
design day is `rate` of the water supplied (leakage + consumption) —
:data:`LEAKAGE_RATE_TARGET`, the CJJ 92 basic target.

The exponent N (FAVAD: 0.5 for fixed-area holes in rigid pipes, up to 1.5 for
background leakage from flexible plastic pipes; system values 0.5–1.18 are
reported) is EPANET's single global emitter exponent, which the scenarios'
pipe-break orifices (N = 0.5) share; the model keeps N = 0.5
(:data:`LEAKAGE_EXPONENT`) so both stay right. The coefficients sit in the nodes'
``leakage_coeff`` column (m³/s per m^N); :func:`watersupply.model.to_wntr` adds
them to the junctions' emitters and :func:`watersupply.simulation.run_simulation`
reports the leakage apart from the consumption (``result.leakage``), so that
demand served and the settlement figures are the users' own.

**Unforeseen demand.** GB 50013-2018 §4.0.8 adds 8–12 % of the other demands for
unforeseen use (未预见水量). :func:`add_unforeseen_demand` raises every junction's
design demand by that share (default :data:`UNFORESEEN_SHARE`) and keeps the
added part in column ``unforeseen_m3d``, so it can be shown and removed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ._errors import NetworkDataError
from .schema import Network
from .hydraulics import node_leakage
from .standards import DesignAssumption

__all__ = ["LEAKAGE_ASSUMPTIONS", "LEAKAGE_RATE_TARGET", "LEAKAGE_EXPONENT", "UNFORESEEN_SHARE",
           "add_leakage", "add_unforeseen_demand", "leakage_summary", "node_leakage"]

_ASSUMPTIONS = [
    DesignAssumption("leakage_rate_target", 0.10, "fraction of water supplied",
                     "background leakage calibrated to this share of the water supplied on the design day",
                     "CJJ 92-2016 §4.1 basic leakage-rate target (first grade 10 %; second grade 12 %)"),
    DesignAssumption("leakage_exponent", 0.5, "-", "emitter (leakage) exponent N in Q = C·p^N",
                     "assumed: FAVAD N1 = 0.5 for fixed-area leaks (Thornton & Lambert 2005; reported system values "
                     "0.5–1.18); EPANET's emitter exponent is global and the scenario pipe-break orifices need 0.5"),
    DesignAssumption("unforeseen_share", 0.10, "fraction", "unforeseen demand added to the other demands",
                     "GB 50013-2018 §4.0.8 (8–12 %), middle value"),
]

#: The documented parameters of this module, by name.
LEAKAGE_ASSUMPTIONS: Mapping[str, DesignAssumption] = MappingProxyType({a.name: a for a in _ASSUMPTIONS})
LEAKAGE_RATE_TARGET: float = LEAKAGE_ASSUMPTIONS["leakage_rate_target"].value
LEAKAGE_EXPONENT: float = LEAKAGE_ASSUMPTIONS["leakage_exponent"].value
UNFORESEEN_SHARE: float = LEAKAGE_ASSUMPTIONS["unforeseen_share"].value


def _set_metadata(net: Network, items: Mapping[str, str]) -> pd.DataFrame:
    md = net.get("metadata")
    d = {} if md is None or not len(md) else {str(k): str(v) for k, v in zip(md["key"], md["value"])}
    d.update(items)
    return pd.DataFrame(sorted(d.items()), columns=["key", "value"])


def add_unforeseen_demand(net: Network, *, share: float = UNFORESEEN_SHARE) -> Network:
    """A copy of `net` whose junction demands carry the GB 50013 unforeseen-demand allowance.

    Applied again, it replaces the earlier allowance (it never compounds).

    Raises
    ------
    NetworkDataError
        `share` outside 0–0.2 (GB 50013 gives 0.08–0.12).
    """
    if not 0 <= share <= 0.2:
        raise NetworkDataError(f"unforeseen demand share must be within 0–0.2 (GB 50013: 0.08–0.12), got {share}")
    nodes = net["nodes"].copy()
    if "base_demand_m3d" not in nodes.columns:
        raise NetworkDataError("layer 'nodes' has no column 'base_demand_m3d'; nothing to add the allowance to")
    base = pd.to_numeric(nodes["base_demand_m3d"], errors="coerce").fillna(0.0)
    old = pd.to_numeric(nodes["unforeseen_m3d"], errors="coerce").fillna(0.0) if "unforeseen_m3d" in nodes else 0.0
    registered = base - old
    nodes["unforeseen_m3d"] = (registered * share).round(4)
    nodes["base_demand_m3d"] = registered + nodes["unforeseen_m3d"]
    out = dict(net)
    out["nodes"] = nodes
    out["metadata"] = _set_metadata(net, {"unforeseen_demand_share": f"{share:g}"})
    return out


def _weights(net: Network) -> pd.Series:
    """Metres of pipe each junction stands for: half of every pipe ending at it."""
    nodes, pipes = net["nodes"], net["pipes"]
    length = pd.to_numeric(pipes["length_m"], errors="coerce") if "length_m" in pipes.columns else pipes.length
    length = length.fillna(pd.Series(pipes.length, index=pipes.index))
    half = pd.concat([pd.Series(0.5 * length.to_numpy(), index=pipes["from_node"].astype(str)),
                      pd.Series(0.5 * length.to_numpy(), index=pipes["to_node"].astype(str))])
    w = half.groupby(level=0).sum()
    junctions = nodes.loc[nodes["kind"] == "junction", "id"].astype(str)
    return w.reindex(junctions).fillna(0.0)


def _hydraulics(net: Network, duration_h: float) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Pressure and reported demand (m³/s) of a hydraulics-only EPANET run; the emitter exponent."""
    from .model import to_wntr
    from .simulation import _epanet, _hours

    wn = to_wntr(net, duration_h=duration_h)
    wn.options.quality.parameter = "NONE"
    with tempfile.TemporaryDirectory(prefix="ws_leak_") as tmp:
        res = _epanet(wn, f"{tmp}/leak", "leakage calibration")
    return _hours(res.node["pressure"]), _hours(res.node["demand"]), float(wn.options.hydraulic.emitter_exponent)


def leakage_summary(net: Network, result: Any) -> dict[str, float]:
    """Leakage and consumption volumes over a run (m³, trapezoid-free: each step's rate × step) and the share.

    Returns
    -------
    dict
        leakage_m3, consumption_m3, supplied_m3, leakage_share (of supplied),
        target_share (the network's ``leakage_rate`` metadata or :data:`LEAKAGE_RATE_TARGET`).
    """
    hours = np.asarray(result.hours, dtype=float)
    step = float(np.median(np.diff(hours))) if len(hours) > 1 else 1.0
    leak = getattr(result, "leakage", None)
    if leak is None:
        leak = node_leakage(net, result.pressure, exponent=LEAKAGE_EXPONENT)
    lv = float(leak.to_numpy()[:-1].sum() * step * 3600.0) if leak.shape[1] else 0.0
    junctions = net["nodes"].loc[net["nodes"]["kind"] == "junction", "id"].astype(str)
    dem = result.demand.reindex(columns=junctions).fillna(0.0).clip(lower=0.0)
    cv = float(dem.to_numpy()[:-1].sum() * step * 3600.0)
    md = net.get("metadata")
    d = {} if md is None or not len(md) else dict(zip(md["key"].astype(str), md["value"].astype(str)))
    target = float(d.get("leakage_rate", LEAKAGE_RATE_TARGET))
    return dict(leakage_m3=lv, consumption_m3=cv, supplied_m3=lv + cv,
                leakage_share=lv / (lv + cv) if lv + cv > 0 else float("nan"), target_share=target)


def add_leakage(net: Network, *, rate: float = LEAKAGE_RATE_TARGET, duration_h: float = 24.0,
                iterations: int = 4, tolerance: float = 0.002) -> Network:
    """A copy of `net` with background-leakage emitters calibrated to `rate` of the water supplied.

    Parameters
    ----------
    net
        A project network (layers; not a file's own EPANET model, whose emitters are its own).
    rate
        Leakage / (leakage + consumption) over the calibration run (CJJ 92-2016: 0.10).
    duration_h
        Length of the calibration runs (the design day).
    iterations
        EPANET runs at most, each rescaling the coefficients by target / achieved leakage.
    tolerance
        Stop when the achieved share is this close to `rate`.

    Returns
    -------
    Network
        Nodes get ``leakage_coeff`` (m³/s per m^0.5) ∝ pipe length per junction;
        metadata ``leakage_rate`` (the target), ``leakage_rate_achieved`` (the last
        run's share) and ``leakage_exponent``.

    Raises
    ------
    NetworkDataError
        A rate outside (0, 0.5), a network with no pressure at the junctions, or
        a calibration that does not reach the target within `iterations`.
    """
    if not 0 < rate < 0.5:
        raise NetworkDataError(f"leakage rate must be a share in (0, 0.5), got {rate}")
    from .model import is_epanet_model
    if is_epanet_model(net):
        raise NetworkDataError("add_leakage works on project networks; a file's own EPANET model keeps its emitters "
                               "(edit its emitter_coeff column instead)")
    w = _weights(net)
    base = dict(net)
    nodes = net["nodes"].copy()
    nodes["leakage_coeff"] = 0.0
    base["nodes"] = nodes
    pressure, demand, n_exp = _hydraulics(base, duration_h)
    ids = [i for i in w.index if i in pressure.columns]
    w = w[ids]
    junctions = list(nodes.loc[nodes["kind"] == "junction", "id"].astype(str))
    consumption = float(demand[junctions].clip(lower=0).to_numpy()[:-1].sum())
    drive = float((pressure[ids].clip(lower=0).pow(n_exp).to_numpy()[:-1] * w.to_numpy()).sum())
    if not drive > 0 or not consumption > 0:
        raise NetworkDataError("add_leakage: no pressure or no consumption at the junctions in the calibration run; "
                               "check the network solves")
    k = rate / (1.0 - rate) * consumption / drive
    share = float("nan")
    out = dict(net)
    for _ in range(max(1, iterations)):
        nodes["leakage_coeff"] = nodes["id"].astype(str).map((w * k).to_dict()).fillna(0.0)
        out["nodes"] = nodes.copy()
        pressure, demand, _ = _hydraulics(out, duration_h)
        leak = node_leakage(out, pressure, exponent=n_exp)
        lv = float(leak.to_numpy()[:-1].sum())
        cv = float((demand[junctions].clip(lower=0).sub(leak.reindex(columns=junctions).fillna(0.0))
                    ).clip(lower=0).to_numpy()[:-1].sum())
        share = lv / (lv + cv)
        if abs(share - rate) <= tolerance:
            break
        k *= (rate / (1.0 - rate)) / (share / (1.0 - share))
    else:
        raise NetworkDataError(f"add_leakage: the calibration reached {share:.3f} against {rate:.3f} after "
                               f"{iterations} runs; raise iterations or check the network's pressures")
    out["metadata"] = _set_metadata(net, {"leakage_rate": f"{rate:g}", "leakage_rate_achieved": f"{share:.4f}",
                                          "leakage_exponent": f"{n_exp:g}"})
    return out
