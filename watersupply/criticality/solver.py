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
from ..engine import EN, EN_DEMANDDEFICIT, EN_TRIALS, EN_UNBALANCED, WARNINGS, Project
from ..topology import SourceGraph

__all__: list[str] = []

#: EPANET warnings that mean the step did not balance.
UNCONVERGED = (1, 2)
#: Pseudo-code of a step EPANET could not solve at all (error 110), while the cut-off part is taken out.
FAILED = -110
#: Emitter coefficient (flow units per m^0.5) that anchors the head of a junction without water.
ANCHOR_EMITTER = 1e-4
#: Solver options of that retry: at least this many trials, and UNBALANCED CONTINUE with this many extra trials.
#: (200 and 10 left LINK-3276, LINK-3743 and LINK-3262 of Net6 unbalanced at some steps; 1,000 and 100 balance them.)
RETRY_TRIALS, RETRY_EXTRA_TRIALS = 1000, 100


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


# ----------------------------------------------------------------------------- sanity report

def _hours(hs: Sequence[float]) -> str:
    """Hours as compact ranges: ``3–5, 9 h``."""
    hs = sorted(set(round(h, 2) for h in hs))
    out: list[str] = []
    start = prev = None
    for h in hs:
        if start is None:
            start = prev = h
        elif h - prev <= 1.0 + 1e-9:
            prev = h
        else:
            out.append(f"{start:g}" if start == prev else f"{start:g}–{prev:g}")
            start = prev = h
    if start is not None:
        out.append(f"{start:g}" if start == prev else f"{start:g}–{prev:g}")
    return ", ".join(out) + " h"


def _names(by: Mapping[str, Sequence[float]], limit: int = 4) -> str:
    items = sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    txt = "; ".join(f"{k} at {_hours(v)}" for k, v in items[:limit])
    return txt + (f"; … {len(items) - limit} more" if len(items) > limit else "")


def _sanity(warned: Sequence[tuple[float, int]], taken: Sequence[tuple[float, int]],
            tank_low: Mapping[str, Sequence[float]], negative: Mapping[str, Sequence[float]], *,
            failed: Sequence[float] = ()) -> str:
    """One line of what EPANET warned about and what was done, by element and hour."""
    parts = []
    if failed:
        parts.append(f"EPANET error 110 (cannot solve the hydraulic equations) at {len(failed)} step(s): "
                     f"{_hours(failed)}, solved again with the cut-off part taken out")
    by_code: dict[int, list[float]] = {}
    for h, code in warned:
        by_code.setdefault(code, []).append(h)
    for code in sorted(by_code):
        parts.append(f"EPANET warning {code} ({WARNINGS.get(code, 'warning')}) at {len(by_code[code])} step(s): "
                     f"{_hours(by_code[code])}")
    if taken:
        most = max(k for _h, k in taken)
        parts.append(f"cut-off part taken out of the solve (up to {most} demand nodes without water by topology) "
                     f"at {_hours([h for h, _k in taken])}")
    if tank_low:
        parts.append("tank empty: " + _names(tank_low))
    if negative:
        parts.append(f"negative pressure at {len(negative)} supplied demand node(s): " + _names(negative))
    return "; ".join(parts)


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
        if getattr(self, "alt", None) is not None:
            self.alt.close()
        self.full.close()
        if self.red is not None:
            self.red.close()

    # -- full model
    def _demand_nodes(self) -> None:
        """Every node of the full model with a demand: EPANET index, graph position, base demands."""
        f, gf = self.full, self.pl["graph_full"]
        gpos = {n: i for i, n in enumerate(gf.nodes)}
        f_names = {f.node_name(i) for i in range(1, f.n_nodes + 1)}
        self.f_emit0: dict[int, float] = {}
        idx, pos, base = [], [], []
        for i in range(1, f.n_nodes + 1):
            name = f.node_name(i)
            if name not in gpos:
                continue
            d = f.base_demands(i)
            if any(d):
                idx.append(i)
                pos.append(gpos[name])
                base.append(d)
        self.f_dem = (np.array(idx, dtype=np.int64), np.array(pos, dtype=np.int64), base)
        self.f_tanks = []  # (index, name, lowest head): EN_TANKLEVEL is the initial level, so heads are compared
        for n in self.pl.get("tank_ids", ()):
            i = f.node_index(n)
            self.f_tanks.append((i, n, f.get_node(i, EN.ELEVATION) + f.get_node(i, EN.MINLEVEL)))
        self.f_tank_pos = np.array([gpos[n] for _i, n, _lo in self.f_tanks], dtype=np.int64)
        self.f_pumps = [(f.link_index(x), gpos[u]) for x, u in self.pl.get("pump_suction", ()) if u in gpos]
        self.f_pump_sw = {x: k for k, x in enumerate(gf.switch_names)}
        self.f_junc = np.array([0 if gf.sources[k] or nm not in f_names else f.node_index(nm)
                                for k, nm in enumerate(gf.nodes)], dtype=np.int64)

    def _anchor(self, anchored: np.ndarray, want: np.ndarray) -> None:
        """Give the junctions in `want` (graph order) a small emitter, and take it from the others.

        A part without water, its demand taken out, can be left with no fixed head at all
        (the outlet of its empty tank closed): EPANET then fails with error 110
        ("ill-conditioned"). An emitter ties each of its junctions to its own elevation
        and lets almost no water out where the pressure is about zero. Used only once a
        step has failed: EPANET 2.2 lets water in through an emitter at negative
        pressure, which changed how fast tanks elsewhere drained (Tonghui M00037).
        """
        f = self.full
        for k in np.flatnonzero(want & ~anchored):
            i = int(self.f_junc[k])
            self.f_emit0.setdefault(i, f.get_node(i, EN.EMITTER))
            f.set_node(i, EN.EMITTER, ANCHOR_EMITTER)
        for k in np.flatnonzero(anchored & ~want):
            i = int(self.f_junc[k])
            f.set_node(i, EN.EMITTER, self.f_emit0[i])

    def _pumps_into_dead_ends(self, links: Sequence[str], base: tuple[np.ndarray, int]) -> set[int]:
        """EPANET indices of pumps that, with `links` closed, discharge into a pocket with no demand and no source.

        Such a pump delivers nothing whatever its status (EPANET flags it as unable to
        deliver head); held closed while a cut-off part is taken out, it leaves the
        equations EPANET can solve.
        """
        gf: SourceGraph = self.pl["graph_full"]
        labels, nc = base
        _idx, dem_pos, _ = self.f_dem
        alive = np.zeros(nc, dtype=bool)
        alive[labels[dem_pos]] = True
        alive[labels[gf.sources]] = True
        closed = set(links)
        pumps = {x for x, _u in self.pl.get("pump_suction", ())}
        for name, (u, v) in zip(gf.switch_names, gf.switch_uv.tolist()):
            if name in closed:
                continue
            if name in pumps:
                alive[labels[u]] = True  # water can leave through a pump's suction side only
            else:
                alive[labels[u]] = alive[labels[v]] = True
        f = self.full
        return {f.link_index(x) for x, _u in self.pl.get("pump_suction", ()) if x not in closed
                and x in self.f_pump_sw and not alive[labels[gf.switch_uv[self.f_pump_sw[x], 1]]]}

    def _empty_tanks(self) -> np.ndarray:
        """Boolean per tank (order of ``f_tanks``): at its lowest level at the current time."""
        f = self.full
        return np.array([f.get_node(ti, EN.HEAD) <= lo + 1e-3 for ti, _n, lo in self.f_tanks], dtype=bool)

    def _take_out(self, zeroed: np.ndarray, want: np.ndarray) -> None:
        """Give the demand nodes in `want` (and only those) zero demand; restore the others."""
        f = self.full
        idx, _pos, base = self.f_dem
        for k in np.flatnonzero(want & ~zeroed):
            f.set_base_demands(int(idx[k]), [0.0] * len(base[k]))
        for k in np.flatnonzero(zeroed & ~want):
            f.set_base_demands(int(idx[k]), base[k])

    def run_full(self, links: Sequence[str], *, heads: bool = False, take_out: bool = True,
                 relax: bool = False) -> dict[str, Any]:
        """Solve a closure on the full model, step by step.

        When a step does not balance (or EPANET cannot solve it, error 110) and part of
        the network is cut off from every source with water — by the links open at that
        step, a tank at its lowest level counting as no source — the demand of that part
        is taken out of the solve, pumps drawing from it are stopped (they run dry; their
        controls are held off meanwhile) and the step is solved again; from then on every
        step does so while the part stays cut off. The nodes taken out are without water at
        that step whatever EPANET reports for them: with their demand gone, EPANET
        reopens the outlet of an empty tank and would show them at the tank's head.
        EPANET warnings are recorded by hour (``warnings``).

        With ``relax`` the run uses at least :data:`RETRY_TRIALS` trials and UNBALANCED
        CONTINUE :data:`RETRY_EXTRA_TRIALS` whatever the model says (restored afterwards):
        a model with UNBALANCED STOP makes EPANET halt at the first step that does not
        balance, before the cut-off part can be taken out.
        """
        pl, f = self.pl, self.full
        if not hasattr(self, "f_dem"):
            self._demand_nodes()
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
        dem_idx, dem_pos, _ = self.f_dem
        zeroed = np.zeros(len(dem_idx), dtype=bool)
        taking_out = False
        warned: list[tuple[float, int]] = []
        taken: list[tuple[float, int]] = []
        failed: list[float] = []
        tank_low: dict[str, list[float]] = {}
        negative: dict[str, list[float]] = {}
        closed_idx = [f.link_index(x) for x in links]
        saved = f.close_links(closed_idx)
        held: dict[int, float] = {}  # pumps stopped while they draw from a part without water
        dead_ends = self._pumps_into_dead_ends(links, base) if take_out else set()
        anchored = np.zeros(len(gf.nodes), dtype=bool)
        anchoring = False
        anchored_from: list[float] = []
        status, message, row = "ok", "", 0

        def cut_now(live: bool = False) -> np.ndarray:
            sw = f.links_open(self.f_switch) & ~sw_closed
            src = None
            if live and len(self.f_tanks):
                empty = self._empty_tanks()
                if empty.any():
                    src = gf.sources.copy()
                    src[self.f_tank_pos[empty]] = False
            key = sw.tobytes() + (src.tobytes() if src is not None else b"")
            c = cache.get(key)
            if c is None:
                c = cache[key] = gf.cut_off(base, sw, sources=src)
            return c

        def solve_step() -> tuple[int, int]:
            try:
                return f.run()
            except HydraulicError:
                if not (take_out and len(dem_idx)):
                    raise
                failed.append(f._t.value / 3600.0)
                return FAILED, int(f._t.value)  # try again with the cut-off part taken out

        opts0 = (f.get_option(EN_TRIALS), f.get_option(EN_UNBALANCED)) if relax else None
        try:
            if opts0 is not None:
                f.set_option(EN_TRIALS, max(opts0[0], RETRY_TRIALS))
                f.set_option(EN_UNBALANCED, RETRY_EXTRA_TRIALS)
            f.init()
            while True:
                code, t = solve_step()
                c = None
                if take_out and (code in UNCONVERGED or code == FAILED or taking_out) and len(dem_idx):
                    for _try in range(5):
                        dead = cut_now(live=True)
                        want = dead[dem_pos]
                        dry_pumps = {i for i, u in self.f_pumps if dead[u] and i not in closed_idx} | dead_ends
                        unchanged = np.array_equal(want, zeroed) and dry_pumps == set(held)
                        if unchanged and (code == FAILED or code in UNCONVERGED) and zeroed.any() \
                                and not anchoring:
                            anchoring = True  # only where EPANET cannot balance the step without
                            anchored_from.append(t / 3600.0)
                        if unchanged and (not anchoring or np.array_equal(dead & (self.f_junc > 0), anchored)):
                            break
                        taking_out = True
                        self._take_out(zeroed, want)
                        zeroed = want
                        anchor = dead & (self.f_junc > 0) if anchoring else anchored
                        self._anchor(anchored, anchor)
                        anchored = anchor
                        f.release([(i, held.pop(i)) for i in sorted(set(held) - dry_pumps)])
                        held.update(f.hold_closed(sorted(dry_pumps - set(held))))
                        code, t = solve_step()
                    if zeroed.any():
                        taken.append((t / 3600.0, int(zeroed.sum())))
                if code == FAILED:
                    code, t = f.run()  # raises EPANET's own error if it still cannot solve the step
                if code:
                    warned.append((t / 3600.0, code))
                if code in UNCONVERGED and status == "ok":
                    status = "unconverged"
                if t % step == 0 and row < T:
                    pr = f.node_values(EN.PRESSURE, self.f_dn)
                    p[row] = pr.astype(np.float32)  # the recipe reads single-precision results
                    if c is None:
                        c = cut_now()
                    if zeroed.any():  # taken out: without water, whatever EPANET shows there
                        c = c.copy()
                        c[dem_pos[zeroed]] = True
                    cut[row] = np.where(self.f_dn_pos >= 0, c[self.f_dn_pos], True)
                    low = np.flatnonzero(pr < pl["preq"])
                    if len(low):
                        deficit[row, low] = f.node_values(EN_DEMANDDEFICIT, self.f_dn[low]) / 1000.0
                    for k in np.flatnonzero((pr < 0) & ~cut[row]):
                        negative.setdefault(pl["demand_ids"][k], []).append(t / 3600.0)
                    for ti, name, lo in self.f_tanks:
                        if f.get_node(ti, EN.HEAD) <= lo + 1e-3:
                            tank_low.setdefault(name, []).append(t / 3600.0)
                    if heads:
                        h_all[row] = f.node_values(EN.HEAD, self.f_all)
                    row += 1
                _code, dt = f.advance()
                if dt <= 0:
                    break
        except HydraulicError as exc:
            status, message = "error", str(exc)
        finally:
            if zeroed.any():
                self._take_out(zeroed, np.zeros_like(zeroed))
            f.release(sorted(held.items()))
            if anchored.any():
                self._anchor(anchored, np.zeros_like(anchored))
            f.restore_links(saved)
            if opts0 is not None:
                f.set_option(EN_TRIALS, opts0[0])
                f.set_option(EN_UNBALANCED, opts0[1])
        if status == "error":
            return dict(status=status, message=message)
        if row < T:
            hours = [h for h, c in warned if c in UNCONVERGED]
            why = f" (did not balance at {hours[-1]:g} h)" if hours else ""
            return dict(status="error", halted=True, message=f"EPANET stopped after {row} of {T} report times{why}")
        message = _sanity(warned, taken, tank_low, negative, failed=failed)
        if anchored_from:
            message += f"; junctions without water anchored by tiny emitters from {anchored_from[0]:g} h"
        out = dict(status=status, message=message, method="full+cutoff" if taken else "full", p=p, cut=cut,
                   deficit=deficit, warnings=warned)
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

    def _relaxed(self, links: Sequence[str], first: dict[str, Any]) -> dict[str, Any]:
        """Solve again where the model's own options halted EPANET (UNBALANCED STOP): same model, same rules.

        The run is repeated with at least :data:`RETRY_TRIALS` trials and UNBALANCED CONTINUE
        :data:`RETRY_EXTRA_TRIALS`, so that a step that does not balance can have its cut-off
        part taken out (the method's name gets ``+retry``; the message says why). Steps that
        balance are solved exactly as before, so the answer is the model's wherever the
        model's options give one.
        """
        trials, unbalanced = self.full.get_option(EN_TRIALS), self.full.get_option(EN_UNBALANCED)
        raw = self.run_full(links, relax=True)
        if raw["status"] == "error":
            raw["message"] = f"{first['message']}; again with {max(trials, RETRY_TRIALS):g} trials and " \
                             f"UNBALANCED CONTINUE {RETRY_EXTRA_TRIALS}: {raw['message']}"
            return raw
        said = "STOP" if unbalanced < 0 else f"CONTINUE {unbalanced:g}"
        raw["method"] = raw["method"] + "+retry"
        raw["message"] = (f"{first['message']} with the model's options ({trials:g} trials, UNBALANCED {said}); "
                          f"solved again with {max(trials, RETRY_TRIALS):g} trials and UNBALANCED CONTINUE "
                          f"{RETRY_EXTRA_TRIALS}" + (f"; {raw['message']}" if raw["message"] else ""))
        return raw

    def _retry(self, links: Sequence[str], first: dict[str, Any]) -> dict[str, Any]:
        """Solve again with EPANET 2.3 where EPANET 2.2 did not balance (or failed): same model, same rules.

        EPANET 2.3's solver balances networks with parts cut off and tanks run dry where 2.2
        reports "unbalanced" or fails with error 110; the method is named ``full-2.3`` and the
        message keeps what 2.2 said.
        """
        if getattr(self, "alt", None) is None:
            self.alt = _Solver(dict(self.pl, engine="epanet2.3", inp_reduced=None, screen=False))
        raw = self.alt.run_full(links)
        if raw.get("halted"):  # the model's UNBALANCED STOP: as in :meth:`_relaxed`
            raw = self.alt.run_full(links, relax=True)
        if raw["status"] == "error" or (raw["status"] != "ok" and first["status"] != "error"):
            return first
        said = "; ".join(first["message"].split("; ")[:2 if first.get("method", "").endswith("+retry") else 1])
        raw["method"] = "full-2.3"
        raw["message"] = f"EPANET 2.2: {said}; solved with EPANET 2.3" + (f"; {raw['message']}" if raw["message"] else "")
        return raw

    def solve(self, cid: str, links: Sequence[str]) -> dict[str, Any]:
        """Consequences of closing `links`; never raises (errors become status 'error')."""
        try:
            if self.pl.get("screen", True):
                res = self.run_reduced(links)
                if res is not None:
                    res["id"] = cid
                    return _compact(res)
            raw = self.run_full(links)
            if raw.get("halted"):
                raw = self._relaxed(links, raw)
            if raw["status"] != "ok" and self.pl["engine"] == "epanet2.2":
                raw = self._retry(links, raw)
            if raw["status"] == "error":
                return dict(id=cid, status="error", message=raw["message"], method="full")
            cons = _consequences(raw["p"], raw["cut"], raw["deficit"], self.pl, self.pl["base_p"])
            cons.update(id=cid, status=raw["status"], message=raw["message"], method=raw["method"])
            return _compact(cons)
        except Exception as exc:  # never abort a sweep
            return dict(id=cid, status="error", message=f"{type(exc).__name__}: {exc}".strip(), method="full")


def _compact(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in res.items() if k not in ("dry", "p", "cut", "deficit", "heads")}
    if "dry" in res:
        out["dry_idx"] = np.flatnonzero(res["dry"]).astype(np.int32)
    return out
