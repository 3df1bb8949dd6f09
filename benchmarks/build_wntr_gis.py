"""Time ``watersupply build`` on WNTR's GIS layers and the round trip's EPANET check.

INP -> ``wntr.network.to_gis`` -> GeoJSON -> :func:`watersupply.gis_schema.build_from_layers`
-> INP, then both INP files solved by EPANET 2.2 at every reporting time. Wall-clock and
CPU time are both printed (on a shared machine the CPU time is the work itself).

    python benchmarks/build_wntr_gis.py [NETWORK ...]    # default: Net1 Net3 ky4
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import wntr

from watersupply.build import write_built
from watersupply.equivalence import equivalence
from watersupply.gis_schema import build_from_layers


def _timed(label: str, func, *args, **kw):
    w0, c0 = time.perf_counter(), time.process_time()
    out = func(*args, **kw)
    print(f"  {label:<36} {time.perf_counter() - w0:6.2f} s wall {time.process_time() - c0:6.2f} s CPU")
    return out


def main(names: list[str]) -> None:
    lib = Path(wntr.library.__path__[0]) / "networks"
    for name in names:
        inp = lib / f"{name}.inp"
        wn = wntr.network.WaterNetworkModel(str(inp))
        print(f"{name}: {wn.num_nodes} nodes, {wn.num_links} links")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = Path(tmp)
            g = _timed("to_gis", wntr.network.to_gis, wn)
            _timed("write GeoJSON", g.write_geojson, str(t / name))
            net, findings, _ = _timed("build_from_layers", build_from_layers, t, inp_options=inp)
            files = _timed("write_built (gpkg, inp, csv)", write_built, net, t / "out" / "net.gpkg",
                           findings=findings)
            d = _timed("EPANET equivalence check", equivalence, inp, files["inp"])
        print(f"  {len(d)} reporting times: max head diff {d['max_head_diff_m'].max():.2g} m, "
              f"max flow diff {d['max_flow_diff_ls'].max():.2g} L/s, equivalent: {bool(d['ok'].all())}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["Net1", "Net3", "ky4"])
