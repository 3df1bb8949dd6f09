"""Search for the least-cost feasible design: pymoo's GA on integer options, then local-search polishing.

1. **Genetic algorithm** (:class:`pymoo.algorithms.soo.nonconvex.ga.GA`) over the
   option positions (integers, simulated binary crossover and polynomial
   mutation with rounding repair), minimising capital cost subject to one
   constraint, the total violation of :class:`~watersupply.design.problem.Evaluation`
   (pressure deficit summed over nodes, velocity excess, tank shortfall);
   pymoo ranks feasible designs first. The initial population holds random
   designs plus the uniform ones (every pipe at the same option) and the
   largest design.
2. **Polishing** (:func:`polish`): greedy downsizing (the largest saving first)
   while the design stays feasible, then pair moves (one pipe one size down,
   another one size up, cheaper overall) until none helps.
3. For a cost–resilience front, NSGA-II (:class:`pymoo.algorithms.moo.nsga2.NSGA2`)
   on cost and −Todini's index (:func:`pareto_front`).

Everything is seeded (`seed`) and deterministic for a given number of
generations; the optional time limit stops the GA early (then reproducibility
holds only up to that point).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from .problem import Evaluator

__all__ = ["run_ga", "polish", "perturb", "pareto_front", "best_design"]

log = logging.getLogger(__name__)


def _problem(ev: Evaluator, *, n_obj: int, penalty: float | None = None):
    from pymoo.core.problem import Problem

    sp = ev.space

    class _Design(Problem):  # pymoo's interface is a class
        def __init__(self) -> None:
            super().__init__(n_var=sp.n_var, n_obj=n_obj, n_ieq_constr=0 if penalty else 1,
                             xl=np.zeros(sp.n_var),
                             xu=sp.upper.astype(float), vtype=int)

        def _evaluate(self, X, out, *args, **kwargs):  # noqa: N803 - pymoo's names
            evs = [ev.evaluate(np.rint(x).astype(int)) for x in X]
            if n_obj == 1 and penalty:
                out["F"] = np.array([[e.cost + penalty * e.violation] for e in evs])
                return
            if n_obj == 1:
                out["F"] = np.array([[e.cost] for e in evs])
            else:
                out["F"] = np.array([[e.cost, -(e.resilience if np.isfinite(e.resilience) else -1.0)] for e in evs])
            out["G"] = np.array([[e.violation] for e in evs])

    return _Design()


def _seeds(ev: Evaluator, pop_size: int, rng: np.random.Generator) -> np.ndarray:
    up = ev.space.upper
    rows = [np.minimum(np.full(len(up), k), up) for k in range(int(up.max()) + 1)]
    rows.append(up.copy())
    while len(rows) < pop_size:
        rows.append(rng.integers(0, up + 1))
    return np.unique(np.array(rows[:max(pop_size, len(rows))], dtype=int), axis=0)[:pop_size]


def _operators(eta: float = 3.0):
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair

    return (SBX(prob=0.9, eta=eta, vtype=float, repair=RoundingRepair()),
            PM(prob=1.0, eta=eta, vtype=float, repair=RoundingRepair()))


class _Clock:
    """pymoo callback: stops the run after `limit_s` seconds and reports progress (stateful)."""

    def __init__(self, limit_s: float | None, progress: Callable[[str, int, float], None] | None,
                 ev: Evaluator) -> None:
        self.t0 = time.perf_counter()
        self.limit_s, self.progress, self.ev = limit_s, progress, ev

    def __call__(self, algorithm) -> None:
        if self.progress is not None:
            opt = algorithm.opt
            best = float(opt[0].F[0]) if len(opt) and opt[0].feasible else float("nan")
            self.progress("ga", int(algorithm.n_gen), best)
        if (self.limit_s is not None and time.perf_counter() - self.t0 > self.limit_s) or self.ev.expired():
            algorithm.termination.force_termination = True


def run_ga(ev: Evaluator, *, seed: int = 1, pop_size: int = 100, generations: int = 300,
           time_limit_s: float | None = None, penalty: float | None = None, eta: float = 3.0,
           start: np.ndarray | None = None,
           progress: Callable[[str, int, float], None] | None = None) -> np.ndarray:
    """Run pymoo's GA and return the best design found (option positions).

    The best is the cheapest feasible design, or the least-violating one when none
    is feasible. `start` (one design a row) replaces the default initial population
    (uniform designs, the largest one and random ones).
    """
    from pymoo.algorithms.soo.nonconvex.ga import GA
    from pymoo.optimize import minimize

    rng = np.random.default_rng(seed)
    cx, mut = _operators(eta)
    sampling = _seeds(ev, pop_size, rng) if start is None else np.asarray(start, dtype=int)
    algo = GA(pop_size=pop_size, sampling=sampling.astype(float), crossover=cx, mutation=mut,
              eliminate_duplicates=True)
    minimize(_problem(ev, n_obj=1, penalty=penalty), algo, ("n_gen", generations), seed=seed, verbose=False,
             callback=_Clock(time_limit_s, progress, ev))
    return best_design(ev)


def best_design(ev: Evaluator) -> np.ndarray:
    """The cheapest feasible design evaluated so far, or the least-violating one when none is feasible."""
    items = list(ev.cache.items())
    feas = [(e.cost, k) for k, e in items if e.feasible]
    if feas:
        return np.array(min(feas)[1], dtype=int)
    return np.array(min((e.violation, e.cost, k) for k, e in items)[2], dtype=int)


def polish(ev: Evaluator, x: np.ndarray, *, max_rounds: int = 50,
           progress: Callable[[str, int, float], None] | None = None) -> np.ndarray:
    """Local search from a feasible design: greedy one-size-down moves, then down/up pair moves.

    Each accepted move keeps the design feasible and lowers its cost, so the result
    is feasible and no dearer than `x`. Deterministic (moves tried in order of
    saving, ties by pipe order).
    """
    x = np.asarray(x, dtype=int).copy()
    if not ev.evaluate(x).feasible:
        return x
    sp = ev.space
    n = len(x)
    pipe_cost = sp.option_cost  # a pipe's or an extra's (pump, storage) option cost

    for rnd in range(max_rounds):
        improved = False
        # 1. greedy downsizing, largest saving first, repeated until nothing gives
        changed = True
        while changed:
            changed = False
            moves = sorted(((pipe_cost(i, x[i]) - pipe_cost(i, x[i] - 1), i) for i in range(n) if x[i] > 0),
                           key=lambda m: (-m[0], m[1]))
            for saving, i in moves:
                if saving <= 0 or ev.expired():
                    continue
                y = x.copy()
                y[i] -= 1
                if ev.evaluate(y).feasible:
                    x, changed, improved = y, True, True
        # 2. pair moves: i one size down, j one size up, best saving first
        pairs = []
        for i in range(n):
            if x[i] == 0:
                continue
            down = pipe_cost(i, x[i]) - pipe_cost(i, x[i] - 1)
            for j in range(n):
                if j == i or x[j] >= sp.upper[j]:
                    continue
                up = pipe_cost(j, x[j] + 1) - pipe_cost(j, x[j])
                if down - up > 1e-9:
                    pairs.append((down - up, i, j))
        pairs.sort(key=lambda m: (-m[0], m[1], m[2]))
        for _saving, i, j in pairs:
            if ev.expired():
                break
            y = x.copy()
            y[i] -= 1
            y[j] += 1
            if ev.evaluate(y).feasible:
                x, improved = y, True
                break
        # 3. drop and repair: one size down on i, then the most effective one-size-up moves until
        #    feasible again; kept when the result is cheaper
        if not improved and not ev.expired():
            y = _drop_repair(ev, x, pipe_cost)
            if y is not None:
                x, improved = y, True
        if progress is not None:
            progress("polish", rnd + 1, ev.space.cost(x))
        if not improved or ev.expired():
            break
    return x


def perturb(ev: Evaluator, x: np.ndarray, *, seed: int = 1, kicks: int = 30, size: int = 4,
            time_limit_s: float | None = None,
            progress: Callable[[str, int, float], None] | None = None) -> np.ndarray:
    """Iterated local search: kick the best design (a few random pipes one or two sizes up, so it stays
    feasible), polish it, keep it when cheaper; `kicks` times (seeded)."""
    rng = np.random.default_rng(seed)
    best = np.asarray(x, dtype=int).copy()
    if not ev.evaluate(best).feasible:
        return best
    up = ev.space.upper
    n = len(best)
    t0 = time.perf_counter()
    for k in range(kicks):
        y = best.copy()
        if k % 2 == 0:  # up-kick: stays feasible
            for i in rng.choice(n, size=min(size, n), replace=False):
                y[i] = min(int(up[i]), int(y[i]) + int(rng.integers(1, 3)))
        else:  # destroy and repair: a few pipes down, then the most effective upsizing until feasible
            for i in rng.choice(n, size=min(max(size // 2, 1), n), replace=False):
                y[i] = max(0, int(y[i]) - int(rng.integers(1, 3)))
            y = _repair(ev, y)
        if y is not None and ev.evaluate(y).feasible:
            y = polish(ev, y)
            if ev.space.cost(y) < ev.space.cost(best) - 1e-9:
                best = y
        if progress is not None:
            progress("kick", k + 1, ev.space.cost(best))
        if (time_limit_s is not None and time.perf_counter() - t0 > time_limit_s) or ev.expired():
            break
    return best


def _repair(ev: Evaluator, y: np.ndarray, *, max_steps: int = 200) -> np.ndarray | None:
    """Greedy repair: repeatedly take the one-size-up move with the best violation reduction per cost."""
    sp = ev.space
    e = ev.evaluate(y)
    for _ in range(max_steps):
        if e.feasible or ev.expired():
            return y if e.feasible else None
        best = None
        for j in range(len(y)):
            if y[j] >= sp.upper[j]:
                continue
            z = y.copy()
            z[j] += 1
            ez = ev.evaluate(z)
            dc = max(sp.option_cost(j, int(z[j])) - sp.option_cost(j, int(y[j])), 1e-9)
            key = (not ez.feasible, -(e.violation - ez.violation) / dc, j)
            if best is None or key < best[0]:
                best = (key, z, ez)
        if best is None or best[2].violation >= e.violation:
            return None
        _k, y, e = best
    return y if e.feasible else None


def _drop_repair(ev: Evaluator, x: np.ndarray, pipe_cost: Callable[[int, int], float]) -> np.ndarray | None:
    sp = ev.space
    n = len(x)
    base = sp.cost(x)
    order = sorted((i for i in range(n) if x[i] > 0),
                   key=lambda i: (-(pipe_cost(i, x[i]) - pipe_cost(i, x[i] - 1)), i))
    for i in order:
        if ev.expired():
            return None
        y = x.copy()
        y[i] -= 1
        e = ev.evaluate(y)
        while not e.feasible and not ev.expired():
            best = None
            for j in range(n):
                if j == i or y[j] >= sp.upper[j]:
                    continue
                z = y.copy()
                z[j] += 1
                if sp.cost(z) >= base - 1e-9:
                    continue
                ez = ev.evaluate(z)
                gain = (e.violation - ez.violation) / max(pipe_cost(j, z[j]) - pipe_cost(j, y[j]), 1e-9)
                key = (not ez.feasible, -gain, j)
                if best is None or key < best[0]:
                    best = (key, z, ez)
            if best is None or best[2].violation >= e.violation:
                break
            _k, y, e = best
        if e.feasible and sp.cost(y) < base - 1e-9:
            return y
    return None


#: Most points of a cost–resilience front kept (each is verified by a full EPANET run).
MAX_FRONT_POINTS = 25


def pareto_front(ev: Evaluator, *, seed: int = 1, pop_size: int = 60, generations: int = 100,
                 seeds: list[np.ndarray] | None = None, time_limit_s: float | None = None,
                 progress: Callable[[str, int, float], None] | None = None) -> pd.DataFrame:
    """Feasible cost–resilience trade-offs by NSGA-II (needs ``Evaluator(resilience=True)``).

    Returns
    -------
    DataFrame
        One row per non-dominated feasible design (at most :data:`MAX_FRONT_POINTS`, evenly
        thinned), cheapest first: ``cost``,
        ``resilience`` (Todini, lowest over the report times) and ``x`` (option positions).
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    rng = np.random.default_rng(seed)
    start = _seeds(ev, pop_size, rng)
    if seeds:
        start = np.unique(np.vstack([np.array(seeds, dtype=int), start]), axis=0)[:pop_size]
    cx, mut = _operators()
    algo = NSGA2(pop_size=pop_size, sampling=start.astype(float), crossover=cx, mutation=mut,
                 eliminate_duplicates=True)
    minimize(_problem(ev, n_obj=2), algo, ("n_gen", generations), seed=seed, verbose=False,
             callback=_Clock(time_limit_s, progress, ev))
    # the front over every design evaluated (the cache), feasible only
    rows = [(e.cost, e.resilience, k) for k, e in ev.cache.items() if e.feasible and np.isfinite(e.resilience)]
    rows.sort(key=lambda r: (r[0], -r[1], r[2]))
    front, best = [], -np.inf
    for cost, res, k in rows:
        if res > best + 1e-12:
            front.append({"cost": cost, "resilience": res, "x": np.array(k, dtype=int)})
            best = res
    if len(front) > MAX_FRONT_POINTS:  # evenly thinned along the front, both ends kept
        keep = np.unique(np.rint(np.linspace(0, len(front) - 1, MAX_FRONT_POINTS)).astype(int))
        front = [front[i] for i in keep]
    return pd.DataFrame(front)
