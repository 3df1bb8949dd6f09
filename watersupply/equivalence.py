"""EPANET's own answers for an INP file, and whether two INP files give the same ones.

:func:`solve_inp` runs the EPANET 2.2 toolkit (the library WNTR ships) directly on
a file — no WNTR reader or writer in between — and returns heads and flows at every
reporting time of the file's own duration, with the file's own options, in SI
units (m, L/s). :func:`equivalence` compares two files element by element.
:func:`check_inp` asks EPANET whether it accepts a file at all and, when it does
not, returns EPANET's error codes and messages with the section and line.

Examples
--------
>>> import wntr
>>> net1 = wntr.library.__path__[0] + "/networks/Net1.inp"
>>> diff = equivalence(net1, net1)
>>> bool(diff["ok"].all())
True
"""

from __future__ import annotations

import contextlib

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ._errors import NetworkDataError
from .engine import quiet_stdout

__all__ = [
    "FLOW_RTOL",
    "FLOW_TOLERANCE_LS",
    "HEAD_TOLERANCE_M",
    "EpanetResults",
    "check_inp",
    "equivalence",
    "solve_inp",
]

#: The equivalence contract: heads within 1 mm, flows within 0.001 L/s or 1e-6 relative.
HEAD_TOLERANCE_M = 0.001
FLOW_TOLERANCE_LS = 0.001
FLOW_RTOL = 1e-6

_FT_TO_M = 0.3048
# EPANET flow-unit code -> L/s per unit (EN_CFS=0 ... EN_CMD=9)
_FLOW_TO_LS = {0: 28.316846592, 1: 0.0630901964, 2: 43.812636389, 3: 52.616782407, 4: 14.276410157,
               5: 1.0, 6: 1.0 / 60.0, 7: 1000.0 / 86.4, 8: 1.0 / 3.6, 9: 1.0 / 86.4}
_US_UNITS = {0, 1, 2, 3, 4}
_EN_HEAD, _EN_FLOW = 10, 8
_EN_NODECOUNT, _EN_LINKCOUNT = 0, 2
_EN_DURATION, _EN_REPORTSTEP, _EN_REPORTSTART = 0, 5, 6


class EpanetResults(dict):
    """``{"head": DataFrame (m), "flow": DataFrame (L/s)}`` indexed by time in seconds."""


def _toolkit():
    import logging

    from wntr.epanet.toolkit import ENepanet
    # the errors are reported by the caller, with EPANET's own messages; WNTR's log line is noise
    logging.getLogger("wntr.epanet.toolkit").setLevel(logging.CRITICAL)
    return ENepanet(version=2.2)


def _link_id(en, i: int) -> str:
    import ctypes
    buf = ctypes.create_string_buffer(64)
    en.errcode = en.ENlib.EN_getlinkid(en._project, i, ctypes.byref(buf))
    en._error()
    return str(buf.value, "UTF-8")


def _errors_from_report(rpt: Path, inp: str | os.PathLike | None = None) -> list[str]:
    """EPANET's error messages in a report file, each with the offending line and its number."""
    if not rpt.is_file():
        return []
    lines = rpt.read_text(encoding="utf-8", errors="replace").splitlines()
    source: list[str] = []
    if inp is not None:
        try:
            source = Path(inp).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            source = []
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*(Error \d+:.*?)\s*$", line)
        if not m or m.group(1).startswith("Error 200:"):
            continue
        msg = m.group(1).rstrip(":")
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if nxt and m.group(1).endswith(":") and not re.match(r"(Error|Warning) \d+", nxt):
            where = [k + 1 for k, src in enumerate(source) if src.strip() == nxt]
            msg += f", line {where[0]}" if len(where) == 1 else ""
            msg += f": {' '.join(nxt.split())!r}"
        out.append(msg)
    return out


def _open_errors(path: str | os.PathLike, en, rpt: Path) -> list[str]:
    with contextlib.suppress(Exception):
        en.ENclose()
    return _errors_from_report(rpt, path)


def check_inp(path: str | os.PathLike) -> list[str]:
    """EPANET 2.2's error messages for `path` (empty when EPANET accepts the file).

    Each message is EPANET's own with its code, the section, and the offending line
    with its number, e.g. ``"Error 202: illegal numeric value abc in [JUNCTIONS] section,
    line 9: '11 710 abc ;'"``.
    """
    from wntr.epanet.exceptions import EpanetException

    with tempfile.TemporaryDirectory(prefix="watersupply-check-") as tmp:
        rpt, out = Path(tmp) / "check.rpt", Path(tmp) / "check.bin"
        en = _toolkit()
        try:
            with quiet_stdout():
                en.ENopen(str(path), str(rpt), str(out))
        except EpanetException as exc:
            return _open_errors(path, en, rpt) or [str(exc).replace(" %s", "")]
        en.ENclose()
    return []


def solve_inp(path: str | os.PathLike) -> EpanetResults:
    """Heads (m) and flows (L/s) from EPANET 2.2 at every reporting time of the file.

    Raises
    ------
    NetworkDataError
        EPANET rejects the file (with its error messages) or cannot solve it.
    """
    from wntr.epanet.exceptions import EpanetException

    with tempfile.TemporaryDirectory(prefix="watersupply-solve-") as tmp:
        rpt, out = Path(tmp) / "solve.rpt", Path(tmp) / "solve.bin"
        en = _toolkit()
        try:
            with quiet_stdout():
                en.ENopen(str(path), str(rpt), str(out))
                units = en.ENgetflowunits()
                hf = _FT_TO_M if units in _US_UNITS else 1.0
                qf = _FLOW_TO_LS[units]
                nn, nl = en.ENgetcount(_EN_NODECOUNT), en.ENgetcount(_EN_LINKCOUNT)
                nodes = [en.ENgetnodeid(i) for i in range(1, nn + 1)]
                links = [_link_id(en, i) for i in range(1, nl + 1)]
                duration = en.ENgettimeparam(_EN_DURATION)
                rstep = en.ENgettimeparam(_EN_REPORTSTEP)
                rstart = en.ENgettimeparam(_EN_REPORTSTART)
                en.ENopenH()
                en.ENinitH(0)
                times, heads, flows = [], [], []
                while True:
                    t = en.ENrunH()
                    if t >= rstart and (t - rstart) % max(rstep, 1) == 0 and t <= duration:
                        times.append(t)
                        heads.append([en.ENgetnodevalue(i, _EN_HEAD) for i in range(1, nn + 1)])
                        flows.append([en.ENgetlinkvalue(i, _EN_FLOW) for i in range(1, nl + 1)])
                    if en.ENnextH() <= 0:
                        break
                en.ENcloseH()
        except EpanetException as exc:
            found = _open_errors(path, en, rpt)
            raise NetworkDataError(f"{path}: EPANET 2.2 rejects or cannot solve this file: "
                                   f"{'; '.join(found) if found else exc}") from None
        en.ENclose()
    idx = pd.Index(times, name="time_s")
    return EpanetResults(head=pd.DataFrame(np.array(heads, dtype=float).reshape(len(times), len(nodes)) * hf,
                                           index=idx, columns=nodes),
                         flow=pd.DataFrame(np.array(flows, dtype=float).reshape(len(times), len(links)) * qf,
                                           index=idx, columns=links))


def equivalence(inp_a: str | os.PathLike, inp_b: str | os.PathLike) -> pd.DataFrame:
    """Compare EPANET 2.2's heads and flows for two INP files at every reporting time.

    Both files are solved as they are (their own options, duration and units) and
    compared by element id, in SI units.

    Returns
    -------
    pandas.DataFrame
        One row per reporting time (index ``time_s``) with ``max_head_diff_m``,
        ``worst_node``, ``max_flow_diff_ls``, ``worst_link`` and ``ok`` (heads within
        :data:`HEAD_TOLERANCE_M`, flows within :data:`FLOW_TOLERANCE_LS` or
        :data:`FLOW_RTOL` relative).

    Raises
    ------
    NetworkDataError
        The files have different nodes, links or reporting times, or EPANET rejects one.
    """
    a, b = solve_inp(inp_a), solve_inp(inp_b)
    for what in ("head", "flow"):
        ca, cb = set(a[what].columns), set(b[what].columns)
        if ca != cb:
            only_a, only_b = sorted(ca - cb)[:5], sorted(cb - ca)[:5]
            kind = "nodes" if what == "head" else "links"
            raise NetworkDataError(f"{inp_a} and {inp_b} have different {kind}: only in the first "
                                   f"{only_a}, only in the second {only_b}")
    if not a["head"].index.equals(b["head"].index):
        raise NetworkDataError(f"{inp_a} and {inp_b} report at different times: "
                               f"{list(a['head'].index[:6])} vs {list(b['head'].index[:6])}")
    hb = b["head"][a["head"].columns]
    fb = b["flow"][a["flow"].columns]
    dh = (a["head"] - hb).abs()
    dq = (a["flow"] - fb).abs()
    scale = np.maximum(a["flow"].abs(), fb.abs())
    flow_bad = (dq > FLOW_TOLERANCE_LS) & (dq > FLOW_RTOL * scale)
    out = pd.DataFrame({
        "max_head_diff_m": dh.max(axis=1) if dh.shape[1] else 0.0,
        "worst_node": dh.idxmax(axis=1) if dh.shape[1] else "",
        "max_flow_diff_ls": dq.max(axis=1) if dq.shape[1] else 0.0,
        "worst_link": dq.idxmax(axis=1) if dq.shape[1] else "",
        "flow_out_of_tolerance": flow_bad.sum(axis=1),
    })
    out["ok"] = (out["max_head_diff_m"] <= HEAD_TOLERANCE_M) & (out["flow_out_of_tolerance"] == 0)
    return out
