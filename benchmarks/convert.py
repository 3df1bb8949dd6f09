"""Time ``watersupply convert`` and the equivalence check on WNTR's Net6 (3,892 links).

Targets (issue 13): INP -> GeoPackage under 10 s; the equivalence check (INP ->
GeoPackage -> INP, both solved by EPANET 2.2 at all 97 reporting times) under 30 s.
Wall-clock and CPU time are both printed: on a shared machine the CPU time is the
work itself, the wall-clock time includes waiting for a core.

    python benchmarks/convert.py [NETWORK ...]    # default: Net6
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import wntr

from watersupply.conversion import convert_file
from watersupply.convert import equivalence


def _timed(label: str, func, *args, **kw):
    w0, c0 = time.perf_counter(), time.process_time()
    out = func(*args, **kw)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"  {label:<44} {wall:6.2f} s wall {cpu:6.2f} s CPU")
    return out, wall, cpu


def main(names: list[str]) -> None:
    lib = Path(wntr.library.__path__[0]) / "networks"
    for name in names:
        src = lib / f"{name}.inp"
        wn = wntr.network.WaterNetworkModel(str(src))
        print(f"{name}: {wn.num_nodes} nodes, {wn.num_links} links, "
              f"{wn.options.time.duration / 3600:g} h")
        with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            gpkg, w1, c1 = _timed("convert .inp -> .gpkg", convert_file, src, Path(tmp) / f"{name}.gpkg")
            back, w2, c2 = _timed("convert .gpkg -> .inp", convert_file, gpkg, Path(tmp) / f"{name}.inp")
            diff, w3, c3 = _timed("equivalence(original, round trip) (2 solves)", equivalence, src, back)
        print(f"  equivalence check total (convert both ways + 2 solves): {w1 + w2 + w3:.2f} s wall, "
              f"{c1 + c2 + c3:.2f} s CPU; {len(diff)} reporting times, largest head difference "
              f"{diff['max_head_diff_m'].max():.2g} m, flow {diff['max_flow_diff_ls'].max():.2g} L/s, "
              f"{'equivalent' if diff['ok'].all() else 'NOT EQUIVALENT'}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["Net6"])
