"""Where to measure: sensor sensitivities, logger placement and the sensors that would separate confounded groups.

:func:`sensor_sensitivities` computes, for candidate sensors (pressure at
junctions, flow in pipes), the σ-weighted sensitivity of every hourly reading to
every group factor (forward differences over in-memory EPANET solves,
hydraulics only). Two uses:

- :func:`place_loggers` picks pressure-logger sites greedily for the largest
  determinant of the information matrix JᵀJ (D-optimal design; the sensors
  already there, e.g. pump flow meters and reservoir levels, count from the
  start). It needs only the model, so a utility can do it before buying loggers;
  the Tonghui demonstration places its 20 loggers this way.
- :func:`separating_sensors` names, for groups a calibration could not identify,
  the single extra pressure logger and the single extra flow meter that would
  narrow their confidence intervals most (predicted from the sensitivities at the
  fitted values: a forecast, not a measurement).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError
from ..hydraulics import SECONDS_PER_HOUR
from ..schema import Network
from .groups import Group
from .identifiability import RANK_RTOL
from .observations import DEFAULT_SIGMA
from .solver import Evaluator

__all__ = ["sensor_sensitivities", "place_loggers", "separating_sensors", "greedy_d_optimal"]

_FLOW_SIGMA_FLOOR_M3S = 1e-4


def sensor_sensitivities(net: Network, groups: Sequence[Group], sensors: Sequence[tuple[str, str]], *,
                         hours: Sequence[float], factors: Mapping[str, float] | None = None,
                         closed: Sequence[str] = (), sigma: Mapping[str, float] | None = None,
                         diff_step: float = 0.01, jump_sigma: float = 10.0, workers: int = 1,
                         workdir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """σ-weighted sensitivities of `sensors` at `hours` to the factors of the roughness/demand `groups`.

    Parameters
    ----------
    sensors
        ``(element, quantity)`` pairs (quantity pressure, head, level, flow or demand).
    hours
        Reading times (h from the run start), ascending.
    factors, closed
        The parameter point (default: the initial model).
    sigma
        σ per quantity (:data:`~watersupply.calibration.fit.DEFAULT_SIGMA`); flows take σ as a share of
        the sensor's mean |flow| at the point (floor 0.1 L/s).
    diff_step
        Forward-difference step of the factors.
    jump_sigma
        Readings moving more than this many σ for one step (a pump or valve switching) are left out.
    workers
        Processes solving the columns in parallel.

    Returns
    -------
    jac : ndarray, shape (n_sensors, n_hours, n_groups)
        ∂(reading/σ)/∂factor.
    base : ndarray, shape (n_sensors, n_hours)
        The readings at the point (SI).
    n_evaluations : int
        EPANET evaluations made.
    """
    from ..model import to_wntr, write_inp
    from .solver import ModelSpec

    cont = [g for g in groups if g.kind in ("roughness", "demand")]
    stat = [g for g in groups if g.kind == "status"]
    hours = np.asarray(hours, dtype=float)
    if not len(sensors) or not len(hours):
        raise ConfigError("sensor sensitivities need at least one sensor and one reading time")
    if np.any(np.diff(hours) <= 0):
        raise ConfigError("reading times of the sensitivity analysis must be strictly ascending")
    ns, nt = len(sensors), len(hours)
    sig = dict(DEFAULT_SIGMA)
    sig.update(sigma or {})
    base_f = {g.name: 1.0 for g in cont}
    base_f.update(factors or {})
    with tempfile.TemporaryDirectory(prefix="watersupply-sens-", dir=workdir) as tmp:
        inp = Path(tmp) / "model.inp"
        write_inp(to_wntr(net), inp)
        spec = ModelSpec(inp=str(inp), sensors=list(sensors),
                         reading_time_s=np.repeat(np.round(hours * SECONDS_PER_HOUR), ns).astype(float),
                         reading_sensor=np.tile(np.arange(ns), nt),
                         roughness_groups={g.name: list(g.members) for g in cont if g.kind == "roughness"},
                         demand_groups={g.name: list(g.members) for g in cont if g.kind == "demand"},
                         status_groups={g.name: list(g.members) for g in stat})
        ev = Evaluator(spec, workers=max(1, int(workers)) if len(cont) > 1 else 1)
        try:
            until = float(hours[-1]) * SECONDS_PER_HOUR
            base = ev.one(base_f, tuple(closed), until).reshape(nt, ns).T
            jobs, steps = [], []
            for g in cont:
                h = diff_step * max(1.0, abs(base_f[g.name]))
                if base_f[g.name] + h > g.upper:
                    h = -h
                f = dict(base_f)
                f[g.name] = base_f[g.name] + h
                jobs.append((f, tuple(closed), until))
                steps.append(h)
            sims = ev.many(jobs) if jobs else []
            count = ev.count
        finally:
            ev.close()
    s = np.empty(ns)
    for k, (_el, q) in enumerate(sensors):
        s[k] = (sig[q] if q in ("pressure", "head", "level")
                else max(sig[q] * float(np.mean(np.abs(base[k]))), _FLOW_SIGMA_FLOOR_M3S))
    jac = np.empty((ns, nt, len(cont)))
    for j, (sim, h) in enumerate(zip(sims, steps)):
        d = (sim.reshape(nt, ns).T - base) / s[:, None]
        jac[:, :, j] = np.where(np.abs(d) > jump_sigma, 0.0, d) / h  # a jump is a switch, not a sensitivity
    jac[~np.isfinite(jac)] = 0.0
    return jac, base, count


def greedy_d_optimal(blocks: np.ndarray, *, n: int, prior: np.ndarray | None = None) -> list[int]:
    """Greedy D-optimal choice of `n` candidates: each step adds the candidate whose readings raise
    log det(prior + Σ JᵢᵀJᵢ) most (ties: the first candidate).

    Parameters
    ----------
    blocks
        Shape (n_candidates, n_readings, n_parameters): each candidate's σ-weighted sensitivities.
    prior
        Information already there (sensors installed), (n_parameters, n_parameters); a ridge of
        1e-6 × its scale keeps the determinant finite while the design is still singular.

    >>> b = np.zeros((3, 1, 2)); b[0, 0] = [1, 0]; b[1, 0] = [0.5, 0]; b[2, 0] = [0, 1]
    >>> greedy_d_optimal(b, n=2)
    [0, 2]
    """
    p = blocks.shape[2]
    gram = np.einsum("ctp,ctq->cpq", blocks, blocks)
    info = np.zeros((p, p)) if prior is None else np.array(prior, dtype=float)
    scale = max(float(np.trace(info)) / p, float(np.einsum("cpp->", gram)) / max(len(gram), 1) / p, 1e-12)
    ridge = 1e-6 * scale * np.eye(p)
    chosen: list[int] = []
    free = np.ones(len(gram), bool)
    for _ in range(min(n, len(gram))):
        _, logdet = np.linalg.slogdet(info[None] + ridge[None] + gram)
        logdet[~free] = -np.inf
        best = int(np.argmax(logdet))
        chosen.append(best)
        free[best] = False
        info = info + gram[best]
    return chosen


def place_loggers(net: Network, groups: Sequence[Group], *, n: int, hours: Sequence[float],
                  installed: Sequence[tuple[str, str]] = (), candidates: Sequence[str] | None = None,
                  sigma: Mapping[str, float] | None = None, workers: int = 1,
                  workdir: str | os.PathLike | None = None) -> list[str]:
    """`n` pressure-logger sites chosen by sensitivity: greedy D-optimal on the Jacobian at the initial model.

    Parameters
    ----------
    groups
        The roughness and demand groups to be calibrated.
    hours
        Logging times (e.g. hourly over the planned fit window).
    installed
        Sensors already there, ``(element, quantity)`` (pump flows, reservoir levels): their information
        counts from the start.
    candidates
        Junctions that may take a logger (default: every junction).

    Returns
    -------
    list of str
        Node ids, in the order chosen.
    """
    nodes = net["nodes"]
    if candidates is None:
        candidates = nodes.loc[nodes["kind"] == "junction", "id"].astype(str).tolist()
    candidates = list(dict.fromkeys(candidates))
    if n > len(candidates):
        raise ConfigError(f"{n} loggers asked for but only {len(candidates)} candidate junctions")
    sensors = [(c, "pressure") for c in candidates] + list(installed)
    jac, _, _ = sensor_sensitivities(net, groups, sensors, hours=hours, sigma=sigma, workers=workers, workdir=workdir)
    fixed = jac[len(candidates):].reshape(-1, jac.shape[2])
    picks = greedy_d_optimal(jac[:len(candidates)], n=n, prior=fixed.T @ fixed)
    return [candidates[i] for i in picks]


def _clusters(names: Sequence[str], corr: np.ndarray, members: Sequence[str], *, link: float = 0.5) -> list[list[str]]:
    """Connected sets of `members` (a subset of `names`) whose estimates correlate beyond `link`."""
    idx = {n: i for i, n in enumerate(names)}
    left = [m for m in members if m in idx]
    out = []
    while left:
        stack, comp = [left.pop(0)], []
        while stack:
            a = stack.pop()
            comp.append(a)
            for b in list(left):
                if abs(corr[idx[a], idx[b]]) > link:
                    left.remove(b)
                    stack.append(b)
        out.append(sorted(comp))
    return out


def separating_sensors(net: Network, groups: Sequence[Group], *, fit_jac: np.ndarray, fitted: Sequence[str],
                       factors: Mapping[str, float], s2: float, not_identifiable: Sequence[str],
                       hours: Sequence[float], closed: Sequence[str] = (), sigma: Mapping[str, float] | None = None,
                       tolerance: float = 0.05, max_correlation: float = 0.9, workers: int = 1,
                       workdir: str | os.PathLike | None = None) -> tuple[list[dict[str, Any]], int]:
    """The extra pressure logger and flow meter that would best separate each set of confounded groups.

    For every junction (pressure) and pipe (flow) the readings it would add over `hours` are
    simulated at the fitted `factors`; its information is added to the fit's (`fit_jac`ᵀ`fit_jac`)
    and the predicted 95 % half-widths (×√`s2`) and correlations of the confounded groups compared.
    Per set of mutually correlated groups (|r| > 0.5) the candidate of each kind is returned that
    minimises the worse of (widest half-width / `tolerance`) and (strongest correlation /
    `max_correlation`): below 1, the set would become identifiable.

    Returns
    -------
    suggestions : list of dict
        ``groups``, ``quantity``, ``element``, ``zone``, ``before`` and ``after`` (group → half-width %).
    n_evaluations : int
    """
    from scipy.stats import t as student_t

    from .identifiability import correlations

    cont = [g for g in groups if g.kind in ("roughness", "demand") and g.name in fitted]
    names = [g.name for g in cont]
    if list(fitted) != names:
        raise ConfigError("fitted groups must be given in the order of `groups`")
    bad = [g for g in not_identifiable if g in names]
    if not bad:
        return [], 0
    nodes, pipes = net["nodes"], net["pipes"]
    cand = ([(i, "pressure") for i in nodes.loc[nodes["kind"] == "junction", "id"].astype(str)]
            + [(i, "flow") for i in pipes["id"].astype(str)])
    use = cont + [g for g in groups if g.kind == "status"]
    jac, _, count = sensor_sensitivities(net, use, cand, hours=hours, factors=factors, closed=closed, sigma=sigma,
                                         workers=workers, workdir=workdir)
    info0 = fit_jac.T @ fit_jac
    tq = float(student_t.ppf(0.975, max(fit_jac.shape[0] - len(names), 1)))
    x = np.array([abs(factors[n]) for n in names])

    gram = np.einsum("ctp,ctq->cpq", jac, jac)
    scale = max(float(np.trace(info0)) / len(names), 1e-12)
    ridge = (RANK_RTOL ** 2 * scale) * np.eye(len(names))

    def predict(info: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted 95 % half-widths (% of the factor) and correlations."""
        cov = np.linalg.inv(info + ridge)
        var = np.clip(np.einsum("...pp->...p", cov), 1e-300, None)
        corr = cov / np.sqrt(var[..., :, None] * var[..., None, :])
        return 100 * tq * np.sqrt(max(s2, 1e-12) * var) / x, corr

    halves, corrs = predict(info0[None] + gram)
    before, corr0 = predict(info0)
    zone = nodes.set_index(nodes["id"].astype(str))["zone"] if "zone" in nodes else pd.Series(dtype=object)
    pzone = pipes.set_index(pipes["id"].astype(str))["zone"] if "zone" in pipes else pd.Series(dtype=object)
    diam = pipes.set_index(pipes["id"].astype(str))["diameter_mm"] if "diameter_mm" in pipes else pd.Series(dtype=float)
    out = []
    for comp in _clusters(names, correlations(fit_jac), bad):
        cols = [names.index(g) for g in comp]
        for q in ("pressure", "flow"):
            rows = np.array([k for k, (_e, qq) in enumerate(cand) if qq == q])
            if not len(rows):
                continue
            # the worse of: widest interval against the tolerance, strongest correlation against its limit
            sub = np.abs(corrs[np.ix_(rows, cols, cols)])
            sub[:, np.arange(len(cols)), np.arange(len(cols))] = 0.0
            score = np.maximum(halves[np.ix_(rows, cols)].max(axis=1) / (100 * tolerance),
                               sub.max(axis=(1, 2)) / max_correlation if len(cols) > 1 else 0.0)
            best = int(rows[int(np.argmin(score))])
            el = cand[best][0]
            z = zone.get(el) if q == "pressure" else pzone.get(el)
            out.append({"groups": comp, "quantity": q, "element": el,
                        "zone": None if z is None or (isinstance(z, float) and np.isnan(z)) else str(z),
                        "diameter_mm": float(diam.get(el, np.nan)) if q == "flow" else np.nan,
                        "before": {g: float(before[names.index(g)]) for g in comp},
                        "after": {g: float(halves[best, names.index(g)]) for g in comp},
                        "r_before": _max_r(corr0, cols), "r_after": _max_r(corrs[best], cols)})
    return out, count


def _max_r(corr: np.ndarray, cols: Sequence[int]) -> float:
    """The strongest correlation (signed) between two of `cols`; NaN for a single group."""
    if len(cols) < 2:
        return float("nan")
    sub = corr[np.ix_(cols, cols)].copy()
    np.fill_diagonal(sub, 0.0)
    i, j = np.unravel_index(int(np.argmax(np.abs(sub))), sub.shape)
    return float(sub[i, j])


def suggestion_text(s: Mapping[str, Any]) -> str:
    """One line describing a :func:`separating_sensors` suggestion."""
    where = (f"a pressure logger at junction {s['element']}" if s["quantity"] == "pressure"
             else f"a flow meter on pipe {s['element']}"
             + (f" (DN{s['diameter_mm']:g})" if np.isfinite(s.get("diameter_mm", np.nan)) else ""))
    if s.get("zone"):
        where += f", zone {s['zone']}"
    change = "; ".join(f"{g} ±{s['before'][g]:.1f} % → ±{s['after'][g]:.1f} %" for g in s["groups"])
    if np.isfinite(s.get("r_before", np.nan)):
        change += f"; correlation {s['r_before']:+.2f} → {s['r_after']:+.2f}"
    return f"{', '.join(s['groups'])}: {where} (predicted 95 % interval {change})"
