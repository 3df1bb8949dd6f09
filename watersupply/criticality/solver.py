"""The worker side of the sweep: EPANET projects of one worker and the consequences of one closure."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import HydraulicError
from ..engine import EN, EN_DEMANDDEFICIT, WARNINGS, Project
from ..topology import SourceGraph

__all__: list[str] = []

#: EPANET warnings that mean the step did not balance.
UNCONVERGED = (1, 2)


def _consequences(p: np.ndarray, cut: np.ndarray, deficit: np.ndarray, ctx: Mapping[str, Any],
                  base_p: np.ndarray | None) -> dict[str, Any]:
    """Consequences of one closure from report-time arrays (hours × demand nodes).

    p: pressure (m); cut: cut off from every source; deficit: expected − delivered (m³/s).
    """
    pmin, step_h, pop, expected = ctx["pmin"], ctx["step_h"], ctx["pop"], ctx["expected"]
    with np.errstate(invalid="ignore"):
        dry_t = (p < pmin) | cut
    dry = dry_t.any(axis=0)
    ph = float((dry_t[:-1].astype(float) @ pop).sum() * step_h)
    lost = np.where(cut, expected, np.clip(deficit, 0.0, None))
    unserved = float(lost[:-1].sum() * step_h * 3600.0)
    drop, node = math.nan, ""
    if base_p is not None:
        served = ~dry
        if served.any():
            d = (base_p - p)[:, served].max(axis=0)
            k = int(np.argmax(d))
            drop, node = float(d[k]), ctx["demand_ids"][int(np.flatnonzero(served)[k])]
    return dict(dry=dry, person_hours=ph, unserved_m3=unserved, drop=drop, drop_node=node)


# ----------------------------------------------------------------------------- worker side

class _Solver:
    """The EPANET projects of one worker (full model, and the reduced model if any)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.pl = payload
        tmp = tempfile.mkdtemp(prefix="watersupply-crit-")
        try:
            path = Path(tmp) / "full.inp"
            path.write_bytes(payload["inp_full"])
            self.full = Project(path, engine=payload["engine"])
            self.red = None
            if payload.get("inp_reduced"):
                rpath = Path(tmp) / "reduced.inp"
                rpath.write_bytes(payload["inp_reduced"])
                self.red = Project(rpath, engine=payload["engine"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        f = self.full
        self.f_dn = np.array([f.node_index(n) for n in payload["demand_ids"]], dtype=np.int64)
        self.f_all = np.arange(1, f.n_nodes + 1, dtype=np.int64)
        gf: SourceGraph = payload["graph_full"]
        self.f_switch = [f.link_index(n) for n in gf.switch_names]
        gpos = {n: i for i, n in enumerate(gf.nodes)}
        self.f_dn_pos = np.array([gpos.get(n, -1) for n in payload["demand_ids"]], dtype=np.int64)
        if self.red is not None:
            r = self.red
            gr: SourceGraph = payload["graph_reduced"]
            self.r_watch = np.array([r.node_index(n) for n in payload["watch_ids"]], dtype=np.int64)
            self.r_switch = [r.link_index(n) for n in gr.switch_names]
            gpos = {n: i for i, n in enumerate(gr.nodes)}
            self.r_watch_g = np.array([gpos[n] for n in payload["watch_ids"]], dtype=np.int64)
            self.r_links = set(payload["reduced_links"])

    def close(self) -> None:
        """Close the EPANET projects."""
        self.full.close()
        if self.red is not None:
            self.red.close()

    # -- full model
    def run_full(self, links: Sequence[str], *, heads: bool = False) -> dict[str, Any]:
        pl, f = self.pl, self.full
        T, step = pl["n_reports"], pl["report_step_s"]
        n = len(self.f_dn)
        p = np.full((T, n), np.nan)
        cut = np.zeros((T, n), dtype=bool)
        deficit = np.zeros((T, n))
        h_all = np.full((T, f.n_nodes), np.nan) if heads else None
        gf: SourceGraph = pl["graph_full"]
        closed = set(links)
        base = gf.base(closed)
        sw_closed = np.array([s in closed for s in gf.switch_names], dtype=bool)
        cache: dict[bytes, np.ndarray] = {}
        saved = f.close_links([f.link_index(x) for x in links])
        status, message, row = "ok", "", 0
        try:
            f.init()
            while True:
                code, t = f.run()
                if code in UNCONVERGED and status == "ok":
                    status, message = "unconverged", f"{WARNINGS[code]} at {t / 3600:g} h"
                if t % step == 0 and row < T:
                    pr = f.node_values(EN.PRESSURE, self.f_dn)
                    p[row] = pr.astype(np.float32)  # the recipe reads single-precision results
                    sw = f.links_open(self.f_switch) & ~sw_closed
                    key = sw.tobytes()
                    c = cache.get(key)
                    if c is None:
                        c = cache[key] = gf.cut_off(base, sw)
                    cut[row] = np.where(self.f_dn_pos >= 0, c[self.f_dn_pos], True)
                    low = np.flatnonzero(pr < pl["preq"])
                    if len(low):
                        deficit[row, low] = f.node_values(EN_DEMANDDEFICIT, self.f_dn[low]) / 1000.0
                    if heads:
                        h_all[row] = f.node_values(EN.HEAD, self.f_all)
                    row += 1
                _code, dt = f.advance()
                if dt <= 0:
                    break
        except HydraulicError as exc:
            status, message = "error", str(exc)
        finally:
            f.restore_links(saved)
        if status == "error":
            return dict(status=status, message=message)
        if row < T:
            return dict(status="error", message=f"EPANET stopped after {row} of {T} report times")
        out = dict(status=status, message=message, method="full", p=p, cut=cut, deficit=deficit)
        if heads:
            out["heads"] = h_all
        return out

    # -- reduced model with the screen
    def run_reduced(self, links: Sequence[str], *, keep: bool = False) -> dict[str, Any] | None:
        """Run the reduced model; None as soon as the screen fails (full demand and supply everywhere)."""
        pl, r = self.pl, self.red
        if r is None or not set(links) <= self.r_links:
            return None
        gr: SourceGraph = pl["graph_reduced"]
        closed = set(links)
        base = gr.base(closed)
        sw_closed = np.array([s in closed for s in gr.switch_names], dtype=bool)
        hcrit, pstep = pl["hcrit"], pl["pattern_step_s"]
        T, step = pl["n_reports"], pl["report_step_s"]
        heads = np.full((T, len(self.r_watch)), np.nan)
        cache: dict[bytes, bool] = {}
        saved = r.close_links([r.link_index(x) for x in links])
        ok, row = True, 0
        try:
            r.init()
            while True:
                code, t = r.run()
                if code in UNCONVERGED:
                    ok = False
                    break
                h = r.node_values(EN.HEAD, self.r_watch)
                k = min(t // pstep, len(hcrit) - 1)
                if np.any(h < hcrit[k]):
                    ok = False
                    break
                sw = r.links_open(self.r_switch) & ~sw_closed
                key = sw.tobytes()
                bad = cache.get(key)
                if bad is None:
                    bad = cache[key] = bool(gr.cut_off(base, sw)[self.r_watch_g].any())
                if bad:
                    ok = False
                    break
                if t % step == 0 and row < T:
                    heads[row] = h
                    row += 1
                _code, dt = r.advance()
                if dt <= 0:
                    break
        except HydraulicError:
            ok = False  # the screen cannot tell: solve on the full model
        finally:
            r.restore_links(saved)
        if not ok or row < T:
            return None
        out: dict[str, Any] = dict(status="ok", message="", method="reduced", heads=heads)
        if keep:
            return out
        base_h = pl["base_heads_reduced"]
        d = base_h - heads                        # head drop = pressure drop at the same node
        dn = d[:, pl["demand_watch"]].max(axis=0)  # tree nodes share their root's drop
        k = int(np.argmax(dn)) if len(dn) else 0
        n = len(pl["demand_ids"])
        return dict(status="ok", message="", method="reduced", dry=np.zeros(n, dtype=bool), person_hours=0.0,
                    unserved_m3=0.0, drop=float(dn[k]) if len(dn) else math.nan,
                    drop_node=pl["demand_ids"][k] if len(dn) else "")

    def solve(self, cid: str, links: Sequence[str]) -> dict[str, Any]:
        """Consequences of closing `links`; never raises (errors become status 'error')."""
        try:
            if self.pl.get("screen", True):
                res = self.run_reduced(links)
                if res is not None:
                    res["id"] = cid
                    return _compact(res)
            raw = self.run_full(links)
            if raw["status"] == "error":
                return dict(id=cid, status="error", message=raw["message"], method="full")
            cons = _consequences(raw["p"], raw["cut"], raw["deficit"], self.pl, self.pl["base_p"])
            cons.update(id=cid, status=raw["status"], message=raw["message"], method="full")
            return _compact(cons)
        except Exception as exc:  # never abort a sweep
            return dict(id=cid, status="error", message=f"{type(exc).__name__}: {exc}".strip(), method="full")


def _compact(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in res.items() if k not in ("dry", "p", "cut", "deficit", "heads")}
    if "dry" in res:
        out["dry_idx"] = np.flatnonzero(res["dry"]).astype(np.int32)
    return out
