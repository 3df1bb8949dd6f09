"""Speed benchmark of the pipe-criticality sweep against the usual recipe (not a timed test).

Runs, in one process run, on the bundled Tonghui model (24 h, PDD):

1. the recipe (copy the model, close one pipe, WNTR ``EpanetSimulator``) on a seeded
   sample of pipes;
2. the fast path (:func:`watersupply.criticality.pipe_criticality`) on the same pipes,
   checking that the answers agree;
3. the fast path on every pipe of the model;
4. EPANET engines compared: per-solve time of WNTR's 2.2 library and owa-epanet's
   2.3 library, and how often 2.3 agrees with the recipe on the sample;

and prints recipe s/pipe, fast s/pipe, the speed-up (throughput = pipes answered per
second, topology answers included), the full-network wall time and peak memory.

Usage::

    python benchmarks/criticality.py [--sample 60] [--workers 2] [--seed 2020] [--no-engines] [--verify-all]

``--net6 [--pipes ID,ID…] [--reference CSV]`` runs the sweep on WNTR's Net6 instead (3,829
pipes, a looped city network; all pipes by default) and prints the wall time, the methods,
every answer not solved (status other than ok), peak memory and, given the criticality.csv
of an earlier run, the pipes whose people without water differ from it.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import tracemalloc


def _mb(kb: float) -> float:
    return kb / 1024.0 if sys.platform != "darwin" else kb / 1024.0 / 1024.0


def _agree(a, b, *, hours: bool = False) -> tuple[int, list[str]]:
    """Pipes whose people, node sets and settlements (and, with `hours`, person-hours) are identical."""
    bad = []
    for pid in a.index:
        ra, rb = a.loc[pid], b.loc[pid]
        same = (str(ra["nodes_without_water_ids"]) == str(rb["nodes_without_water_ids"])
                and str(ra["people_without_water"]) == str(rb["people_without_water"])
                and ra["settlements_affected"] == rb["settlements_affected"])
        if hours:
            same = same and abs(float(ra["person_hours_without_water"])
                                - float(rb["person_hours_without_water"])) < 1e-6
        if not same:
            bad.append(pid)
    return len(a) - len(bad), bad


class _MemoryWatch:
    """Peak RSS of this process and of all its descendants (workers), polled in a thread."""

    def __init__(self, every_s: float = 0.25) -> None:
        import threading

        import psutil

        self.proc = psutil.Process()
        self.peak_total = self.peak_worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(every_s,), daemon=True)

    def _poll(self, every_s: float) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                kids = self.proc.children(recursive=True)
                rss = [k.memory_info().rss for k in kids if k.is_running()]
            except psutil.Error:
                rss = []
            own = self.proc.memory_info().rss
            self.peak_total = max(self.peak_total, own + sum(rss))
            self.peak_worker = max([self.peak_worker, *rss])
            self._stop.wait(every_s)

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _engine_times(net, pipes: list[str]) -> dict[str, dict[str, float]]:
    """Mean seconds per 24 h solve of the full and reduced models, per engine (in this process)."""
    from watersupply.criticality.plan import _plan
    from watersupply.engine import ENGINES

    out = {}
    for engine in ENGINES:
        plan = _plan(net, duration_h=24.0, engine=engine, shortcuts=True)
        s = plan.solver
        t0 = time.perf_counter()
        for p in pipes:
            s.run_full((p,))
        t_full = (time.perf_counter() - t0) / len(pipes)
        t0 = time.perf_counter()
        n = 0
        for p in pipes:
            if s.red is not None and p in s.r_links:
                s.run_reduced((p,), keep=True)
                n += 1
        t_red = (time.perf_counter() - t0) / max(n, 1)
        out[engine] = {"full_s": t_full, "reduced_s": t_red}
        s.full.close()
        if s.red is not None:
            s.red.close()
    return out


def _net6(args: argparse.Namespace) -> int:
    """Net6: wall time, methods, answers not solved, peak memory, and differences from a reference run."""
    import warnings
    from pathlib import Path

    import pandas as pd
    import wntr

    from watersupply.criticality import pipe_criticality
    from watersupply.loader import load_network

    inp = Path(wntr.library.__path__[0]) / "networks" / "Net6.inp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net = load_network(inp=inp)
    timings: dict[str, float] = {}
    with _MemoryWatch() as mem:
        t0 = time.perf_counter()
        table = pipe_criticality(net, pipes=args.pipes, workers=args.workers, timings=timings)
        wall = time.perf_counter() - t0
    load = os.getloadavg()
    print(f"Net6: {len(table)} pipes in {wall:.1f} s on {args.workers} worker(s), {os.cpu_count()} cores "
          f"(load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}); target <= 180 s for all pipes")
    print("      methods: " + ", ".join(f"{k} {v}" for k, v in sorted(table["method"].value_counts().items())))
    print("      phases: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k.endswith("_s")))
    bad = table[table["status"] != "ok"]
    print(f"      not solved (status other than ok): {len(bad)}"
          + "".join(f"\n        {i} {r['method']} {r['status']}: {r['message'][:160]}" for i, r in bad.iterrows()))
    print(f"      peak memory {mem.peak_total / 2**20:.0f} MB RSS with workers, largest worker "
          f"{mem.peak_worker / 2**20:.0f} MB")
    if args.reference:
        ref = pd.read_csv(args.reference, index_col="id").reindex(table.index)
        a = table["people_without_water"].astype("Float64")
        b = ref["people_without_water"].astype("Float64")
        diff = table.index[(a.fillna(-1) != b.fillna(-1)).to_numpy()]
        print(f"      people without water differ from {args.reference} for {len(diff)} pipes"
              + (": " + ", ".join(diff[:20]) if len(diff) else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=60, help="pipes in the recipe sample (>= 50)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--no-engines", action="store_true", help="skip the EPANET 2.2 / 2.3 comparison")
    ap.add_argument("--only-all", action="store_true",
                    help="time the sweep of every pipe only (no recipe sample, no engine comparison)")
    ap.add_argument("--verify-all", action="store_true",
                    help="also solve every pipe on the full model (no shortcuts) and compare (slow)")
    ap.add_argument("--net6", action="store_true", help="sweep WNTR's Net6 instead of Tonghui")
    ap.add_argument("--pipes", default="all", help="with --net6: pipes to sweep (default all)")
    ap.add_argument("--reference", default=None, help="with --net6: criticality.csv of an earlier run to compare")
    args = ap.parse_args(argv)
    if args.net6:
        return _net6(args)

    from watersupply.criticality import pipe_criticality, reference_criticality
    from watersupply.io import get_path, read_network

    net = read_network(get_path("tonghui"))
    ids = sorted(net["pipes"]["id"].astype(str))
    sample = sorted(random.Random(args.seed).sample(ids, min(args.sample, len(ids))))
    print(f"Tonghui: {len(ids)} pipes; recipe sample of {len(sample)} (seed {args.seed}); "
          f"{args.workers} worker(s); {os.cpu_count()} cores", flush=True)

    if args.only_all:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        full = pipe_criticality(net, pipes="all", workers=args.workers, timings=timings)
        t_all = time.perf_counter() - t0
        print(f"fast (all):    {t_all:8.1f} s for {len(full)} pipes on {args.workers} worker(s); target <= 180 s")
        print("               methods: " + ", ".join(f"{k} {v}" for k, v in sorted(full["method"].value_counts().items()))
              + "; status: " + ", ".join(f"{k} {v}" for k, v in sorted(full["status"].value_counts().items())))
        print("               phases: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if k.endswith("_s")))
        return 0

    # 1. the recipe
    t0 = time.perf_counter()
    recipe = reference_criticality(net, pipes=sample)
    t_recipe = time.perf_counter() - t0
    recipe_s = t_recipe / len(sample)
    print(f"recipe:        {t_recipe:8.1f} s for {len(sample)} pipes = {recipe_s:.3f} s/pipe", flush=True)

    # 2. the fast path on the same pipes (Python allocations of this process traced here)
    tracemalloc.start()
    t0 = time.perf_counter()
    fast_sample = pipe_criticality(net, pipes=sample, workers=args.workers)
    t_fs = time.perf_counter() - t0
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_ok, bad = _agree(fast_sample.loc[sample], recipe.loc[sample], hours=True)
    print(f"fast (sample): {t_fs:8.1f} s for {len(sample)} pipes = {t_fs / len(sample):.3f} s/pipe; "
          f"people, node sets and person-hours identical to the recipe for {n_ok}/{len(sample)} pipes"
          + (f" (differ: {', '.join(bad)})" if bad else ""), flush=True)
    print("               methods on the sample: "
          + ", ".join(f"{k} {v}" for k, v in sorted(fast_sample["method"].value_counts().items())), flush=True)

    # 3. the fast path on every pipe (timed without tracemalloc; RSS polled)
    timings: dict[str, float] = {}
    with _MemoryWatch() as mem:
        t0 = time.perf_counter()
        full = pipe_criticality(net, pipes="all", workers=args.workers, timings=timings)
        t_all = time.perf_counter() - t0
    fast_s = t_all / len(full)
    n_ok2, bad2 = _agree(full.loc[sample], recipe.loc[sample])
    n_ok3, bad3 = _agree(full.loc[sample], recipe.loc[sample], hours=True)
    counts = full["method"].value_counts().to_dict()
    status = full["status"].value_counts().to_dict()
    print(f"fast (all):    {t_all:8.1f} s for {len(full)} pipes = {fast_s:.4f} s/pipe "
          f"({len(full) / t_all:.1f} pipes/s)", flush=True)
    print("               methods: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + "; status: " + ", ".join(f"{k} {v}" for k, v in sorted(status.items()))
          + f"; not solved (status other than ok): {int((full['status'] != 'ok').sum())}")
    print("               phases: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()
                                                if k.endswith("_s")))
    diff3 = ", ".join(f"{p} ({full.loc[p, 'method']}, {full.loc[p, 'status']})" for p in bad3)
    print(f"               sample pipes in the full run: people and node sets identical to the recipe for "
          f"{n_ok2}/{len(sample)}" + (f" (differ: {', '.join(bad2)})" if bad2 else "")
          + f"; person-hours too for {n_ok3}/{len(sample)}" + (f" (differ: {diff3})" if bad3 else ""))
    print(f"speed-up:      {recipe_s / fast_s:8.1f}x the recipe's throughput "
          f"({1 / recipe_s:.2f} -> {1 / fast_s:.1f} pipes/s); target >= 25x")
    print(f"full network:  {t_all:8.1f} s wall on {os.cpu_count()} cores; target <= 180 s")
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory:   this process {_mb(self_kb):.0f} MB max RSS (getrusage); during the full sweep "
          f"{mem.peak_total / 2**20:.0f} MB RSS with its workers, largest worker {mem.peak_worker / 2**20:.0f} MB; "
          f"Python allocations of the sample sweep {peak / 2**20:.0f} MB (tracemalloc)", flush=True)

    # 4. engines
    if not args.no_engines:
        probe = [p for p in sample if full.loc[p, "method"] in ("reduced", "full", "series")][:6] or sample[:4]
        times = _engine_times(net, probe)
        for eng, d in times.items():
            print(f"engine {eng}: full model {d['full_s']:.3f} s/solve, reduced model {d['reduced_s']:.3f} s/solve "
                  f"(mean of {len(probe)} closures, in this process)")
        t0 = time.perf_counter()
        e23 = pipe_criticality(net, pipes=sample, workers=args.workers, engine="epanet2.3")
        n23, bad23 = _agree(e23.loc[sample], recipe.loc[sample])
        print(f"engine epanet2.3: sample in {time.perf_counter() - t0:.1f} s; identical to the recipe (EPANET 2.2) "
              f"for {n23}/{len(sample)} pipes" + (f" (differ: {', '.join(bad23)})" if bad23 else ""))

    if args.verify_all:
        t0 = time.perf_counter()
        plain = pipe_criticality(net, pipes="all", workers=args.workers, shortcuts=False)
        n_v, bad_v = _agree(full, plain.loc[full.index])
        print(f"verify-all: every pipe on the full model in {time.perf_counter() - t0:.1f} s; shortcut answers "
              f"identical for {n_v}/{len(full)} pipes" + (f" (differ: {', '.join(bad_v[:20])})" if bad_v else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
