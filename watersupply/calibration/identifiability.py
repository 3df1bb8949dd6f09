"""Identifiability of calibration groups from the sensitivity (Jacobian) matrix.

Two checks, both on the σ-weighted Jacobian ``J`` (rows: readings, columns: group factors):

- :func:`identifiability` screens the groups *before* the fit, at the initial values:
  rank, condition number, and the groups whose relative standard error
  √[(JᵀJ)⁻¹]ᵢᵢ would exceed `max_se` (e.g. no reading sees them, or their effect
  is the same as another group's). Those are held at their initial values and named,
  with the group(s) they are confounded with.
- :func:`confidence` judges the groups *at the fit*: the covariance
  s²·(JᵀJ)⁻¹ with s² the residual variance (weighted sum of squares / (m − n)),
  95 % confidence intervals (Student t), parameter correlations, and a verdict per
  group. A group is identifiable when its 95 % interval is within ±`tolerance` of
  the fitted factor and no correlation with another group exceeds `max_correlation`
  in magnitude; otherwise it is "not identifiable from these data (confounded with
  <partner>)": its value is used by the calibrated model but is not a finding.

A third check, :func:`misfit`, asks whether the calibrated model reproduces the readings at all:
the intervals above assume it does (residuals are noise). A sensor whose typical residual at the
fit is several σ (median |residual| / σ above `MAX_MEDIAN_Z`; pure noise gives 0.67) shows a
difference the groups do not cover — a group held at its initial value, a wrong status, a demand
or a control the model lacks — and the fitted values compensate for it: none is then a finding.

Partners are named from the parameter correlations; for groups in the numerical null
space the correlations are those of a slightly regularised (ridge) information matrix,
so an exactly confounded pair shows a correlation of ±1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["RANK_RTOL", "MAX_CORRELATION", "MAX_MEDIAN_Z", "TOLERANCE", "identifiability", "confidence",
           "correlations", "misfit", "standard_errors"]

#: Relative rank tolerance of the sensitivity matrix (singular values below rtol × the largest are null).
RANK_RTOL = 1e-3
#: Groups correlated beyond this (in magnitude) with another are not separately identifiable.
MAX_CORRELATION = 0.9
#: Largest relative half-width of a 95 % confidence interval of an identifiable group (±5 %).
TOLERANCE = 0.05
#: Largest median |residual| / σ of a sensor at the fit for the model to count as reproducing it
#: (Gaussian noise: 0.67; the Tonghui demonstration's worst sensor: 0.93).
MAX_MEDIAN_Z = 2.0


def standard_errors(jac: np.ndarray) -> np.ndarray:
    """√diag((JᵀJ)⁻¹) by SVD; infinite for columns in the numerical null space (rtol :data:`RANK_RTOL`).

    >>> standard_errors(np.array([[2.0, 0.0], [0.0, 4.0]])).tolist()
    [0.5, 0.25]
    """
    if jac.shape[1] == 0:
        return np.zeros(0)
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    if not len(s) or s[0] <= 0:
        return np.full(jac.shape[1], np.inf)
    null = s <= s[0] * RANK_RTOL
    v = vt.T
    se = np.sqrt((v[:, ~null] ** 2 / s[~null] ** 2).sum(axis=1))
    if null.any():
        se[(np.abs(v[:, null]) > 1e-3).any(axis=1)] = np.inf
    return se


def correlations(jac: np.ndarray) -> np.ndarray:
    """Parameter correlation matrix of a least-squares fit with sensitivity `jac`.

    Columns are normalised first (correlations do not depend on the units); where the
    information matrix is singular, a ridge of (:data:`RANK_RTOL` × largest singular value)²
    keeps it invertible, so exactly confounded columns come out at ±1 and a column no
    reading sees at 0.

    >>> a = np.arange(1.0, 6.0)
    >>> np.round(correlations(np.column_stack([a, a, a ** 2])), 2)[0, 1]
    np.float64(-1.0)
    """
    n = jac.shape[1]
    if n == 0:
        return np.zeros((0, 0))
    norm = np.sqrt((jac ** 2).sum(axis=0))
    seen = norm > 0
    corr = np.eye(n)
    if seen.sum() < 2:
        return corr
    jn = jac[:, seen] / norm[seen]
    s = np.linalg.svd(jn, compute_uv=False)
    info = jn.T @ jn
    if s[-1] <= s[0] * RANK_RTOL:
        info = info + (RANK_RTOL * s[0]) ** 2 * np.eye(len(info))
    cov = np.linalg.inv(info)
    d = np.sqrt(np.diag(cov))
    sub = cov / np.outer(d, d)
    idx = np.flatnonzero(seen)
    corr[np.ix_(idx, idx)] = np.clip(sub, -1.0, 1.0)
    return corr


def _partners(corr: np.ndarray, names: Sequence[str], i: int, *, at_least: float = 0.5,
              most: int = 2) -> list[tuple[str, float]]:
    """The groups most correlated with group `i` (|r| ≥ `at_least`, strongest first, at most `most`)."""
    r = corr[i].copy()
    r[i] = 0.0
    order = np.argsort(-np.abs(r), kind="stable")
    out = [(names[j], float(r[j])) for j in order[:most] if abs(r[j]) >= at_least]
    return out or ([(names[order[0]], float(r[order[0]]))] if len(names) > 1 and abs(r[order[0]]) > 0 else [])


def _partner_text(partners: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{n} (r = {r:+.2f})" for n, r in partners)


def identifiability(jac: np.ndarray, names: Sequence[str], *, max_se: float,
                    max_correlation: float = MAX_CORRELATION) -> dict[str, Any]:
    """Rank, condition and identifiable groups of a σ-weighted sensitivity matrix (columns = groups).

    A group is unidentifiable when, with the groups still in, its standard error
    √[(JᵀJ)⁻¹]ᵢᵢ exceeds `max_se` (relative); the worst is removed and the rest
    re-checked until every remaining one passes. Each removed group is named with
    the group(s) it is confounded with (from :func:`correlations` of all groups);
    a kept group correlated beyond `max_correlation` with a removed one is listed
    in ``absorbs`` (its fitted value carries the removed group's effect too).

    >>> J = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 100.0]]) * 100
    >>> out = identifiability(J, ["a", "b", "c"], max_se=0.05)
    >>> out["unidentifiable"], out["confounded_with"]["a"]
    (['a'], 'b (r = -1.00)')
    """
    names = list(names)
    out: dict[str, Any] = {"n_groups": len(names), "n_readings": int(jac.shape[0])}
    sens = np.sqrt((jac ** 2).sum(axis=0))
    out["sensitivity"] = dict(zip(names, sens.tolist()))
    if not names:
        out.update(rank=0, condition=float("nan"), singular_values=[], unidentifiable=[], identifiable=[], se={},
                   confounded_with={}, absorbs={}, correlation_initial=np.zeros((0, 0)))
        return out
    s = np.linalg.svd(jac, compute_uv=False)
    out["singular_values"] = s.tolist()
    out["rank"] = int((s > s[0] * RANK_RTOL).sum()) if s[0] > 0 else 0
    out["condition"] = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    corr = correlations(jac)
    out["correlation_initial"] = corr
    keep = list(range(len(names)))
    dropped: list[int] = []
    se_all: dict[str, float] = {}
    while keep:
        se = standard_errors(jac[:, keep])
        se[sens[keep] <= 1e-12] = np.inf
        for k, v in zip(keep, se):
            se_all[names[k]] = float(v)
        # the worst: largest standard error, ties (infinite) broken by the smallest sensitivity
        worst = max(range(len(keep)), key=lambda i: (se[i], -sens[keep[i]]))
        if se[worst] <= max_se:
            break
        dropped.append(keep.pop(worst))
    out["se"] = se_all
    out["identifiable"] = [names[k] for k in keep]
    out["unidentifiable"] = [names[k] for k in sorted(dropped)]
    confounded: dict[str, str] = {}
    absorbs: dict[str, list[str]] = {}
    for k in sorted(dropped):
        if sens[k] <= 1e-12:
            confounded[names[k]] = "no reading is sensitive to it"
            continue
        partners = _partners(corr, names, k)
        confounded[names[k]] = _partner_text(partners) or "a combination of the other groups"
        for j in keep:
            if abs(corr[k, j]) > max_correlation:
                absorbs.setdefault(names[j], []).append(names[k])
    out["confounded_with"] = confounded
    out["absorbs"] = absorbs
    if keep:
        s2 = np.linalg.svd(jac[:, keep], compute_uv=False)
        out["condition_identifiable"] = float(s2[0] / s2[-1]) if s2[-1] > 0 else float("inf")
    return out


def confidence(jac: np.ndarray, names: Sequence[str], factors: Sequence[float], *, cost: float,
               tolerance: float = TOLERANCE, max_correlation: float = MAX_CORRELATION,
               level: float = 0.95) -> dict[str, Any]:
    """Confidence intervals, correlations and the identifiability verdict of fitted groups.

    Parameters
    ----------
    jac
        σ-weighted Jacobian at the fitted factors (rows: fit readings).
    names, factors
        The fitted groups and their factors.
    cost
        Weighted sum of squared residuals at the fit; s² = cost / (m − n) scales (JᵀJ)⁻¹.
    tolerance
        Largest relative half-width of the interval of an identifiable group.
    max_correlation
        Largest |correlation| with another group of an identifiable group.
    level
        Confidence level of the intervals.

    Returns
    -------
    dict
        ``rank``, ``condition``, ``s2``, ``dof``, ``se`` and ``half_width`` (factor units, per group),
        ``relative_half_width``, ``correlation`` (matrix, in `names` order), ``identifiable``
        (names), ``not_identifiable`` (name → reason naming the partner).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = rng.normal(size=(3, 400)) * 40
    >>> out = confidence(np.column_stack([a, a + 0.01 * b, c]), ["x", "y", "z"], [1.0, 1.0, 1.0], cost=397.0)
    >>> out["identifiable"], sorted(out["not_identifiable"])
    (['z'], ['x', 'y'])
    >>> out["not_identifiable"]["x"].startswith("not identifiable from these data (confounded with y")
    True
    """
    from scipy.stats import t as student_t

    names = list(names)
    x = np.asarray(factors, dtype=float)
    m, n = jac.shape
    dof = max(m - n, 1)
    s2 = float(cost) / dof
    out: dict[str, Any] = {"n_readings": int(m), "dof": int(dof), "s2": s2, "level": level,
                           "tolerance": tolerance, "max_correlation": max_correlation}
    if n == 0:
        out.update(rank=0, condition=float("nan"), se={}, half_width={}, relative_half_width={},
                   correlation=np.zeros((0, 0)), identifiable=[], not_identifiable={})
        return out
    s = np.linalg.svd(jac, compute_uv=False)
    out["rank"] = int((s > s[0] * RANK_RTOL).sum()) if s[0] > 0 else 0
    out["condition"] = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    se = np.sqrt(s2) * standard_errors(jac)
    half = float(student_t.ppf(0.5 + level / 2, dof)) * se
    rel = half / np.maximum(np.abs(x), 1e-12)
    corr = correlations(jac)
    out["se"] = dict(zip(names, se.tolist()))
    out["half_width"] = dict(zip(names, half.tolist()))
    out["relative_half_width"] = dict(zip(names, rel.tolist()))
    out["correlation"] = corr
    ok, bad = [], {}
    for i, name in enumerate(names):
        r = np.abs(corr[i]).copy()
        r[i] = 0.0
        too_wide = not np.isfinite(rel[i]) or rel[i] > tolerance
        too_correlated = bool(n > 1 and r.max() > max_correlation)
        if not (too_wide or too_correlated):
            ok.append(name)
            continue
        partners = _partners(corr, names, i, at_least=min(0.5, max_correlation))
        why = []
        if too_wide:
            why.append(f"{100 * level:g} % interval ±{100 * rel[i]:.1f} % wider than ±{100 * tolerance:g} %"
                       if np.isfinite(rel[i]) else "no finite interval")
        if too_correlated:
            why.append(f"|r| > {max_correlation:g}")
        with_ = _partner_text(partners) or "a combination of the other groups"
        bad[name] = f"not identifiable from these data (confounded with {with_}; {', '.join(why)})"
    out["identifiable"] = ok
    out["not_identifiable"] = bad
    return out


def misfit(readings: Any, *, max_median_z: float = MAX_MEDIAN_Z) -> list[tuple[str, str, float]]:
    """Sensors the calibrated model does not reproduce within their noise.

    Parameters
    ----------
    readings
        DataFrame with ``element``, ``quantity``, ``sigma`` and the residual column
        ``residual_after`` (simulated − observed), the fit window's rows only.
    max_median_z
        Largest median |residual| / σ of a sensor.

    Returns
    -------
    list of (quantity, element, median |z|)
        Worst first; empty when every sensor is reproduced.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"element": ["P1"] * 3 + ["F1"] * 3, "quantity": ["pressure"] * 3 + ["flow"] * 3,
    ...                   "sigma": [0.2] * 3 + [0.001] * 3,
    ...                   "residual_after": [0.1, -0.2, 0.05, 0.004, 0.005, 0.003]})
    >>> misfit(r)
    [('flow', 'F1', 4.0)]
    """
    if not len(readings):
        return []
    z = (readings["residual_after"] / readings["sigma"]).abs()
    med = z.groupby([readings["quantity"], readings["element"]]).median()
    bad = med[med > max_median_z].sort_values(ascending=False, kind="stable")
    return [(str(q), str(e), round(float(v), 2)) for (q, e), v in bad.items()]
