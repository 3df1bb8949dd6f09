"""Fuzzed EPANET INP files: a valid network or the project's own error naming the file, never a crash.

Mutations: truncation, deleted/duplicated lines, unknown sections, bad numbers, references to
missing nodes, flow-unit variants, stray bytes and Chinese text. 500 cases by default
(``--fuzz-long`` for more), fixed seed.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import wntr
from hypothesis import given
from hypothesis import strategies as st

from watersupply._errors import WatersupplyError
from watersupply.convert import read_inp
from watersupply.simulation import run_simulation

NET1 = Path(wntr.library.__path__[0]) / "networks" / "Net1.inp"
UNITS = ["CFS", "GPM", "MGD", "IMGD", "AFD", "LPS", "LPM", "MLD", "CMH", "CMD", "XYZ", ""]
JUNK = ["abc", "1e400", "-", "nan", "-1", "0", "1,5", "１２", "💧", '"x"', ";", "1e-400", "99999999999"]


def _mutate(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    kind = data.draw(st.sampled_from(["truncate", "delete", "duplicate", "unknown_section", "bad_number",
                                      "missing_node", "units", "bytes", "chinese", "empty_section"]), label="kind")
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    if kind == "truncate":
        return text[: data.draw(st.integers(0, len(text)), label="cut")]
    if kind == "delete":
        n = data.draw(st.integers(1, 20), label="n")
        del lines[i:i + n]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "unknown_section":
        lines.insert(i, data.draw(st.sampled_from(["[FOO]", "[管网]", "[JUNCTIONS", "[]"])))
        lines.insert(i + 1, "x 1 2 3")
    elif kind == "bad_number":
        tokens = [(m.start(), m.end()) for m in re.finditer(r"-?\d+(\.\d+)?", lines[i])]
        if tokens:
            a, b = tokens[data.draw(st.integers(0, len(tokens) - 1), label="token")]
            lines[i] = lines[i][:a] + data.draw(st.sampled_from(JUNK), label="junk") + lines[i][b:]
    elif kind == "missing_node":
        start = next((k for k, ln in enumerate(lines) if ln.strip().upper().startswith("[PIPES]")), None)
        if start is not None and start + 2 < len(lines):
            k = start + 2
            parts = lines[k].split()
            if len(parts) >= 3:
                parts[data.draw(st.integers(1, 2), label="end")] = "NOPE"
                lines[k] = "  ".join(parts)
    elif kind == "units":
        lines = [re.sub(r"^(\s*Units\s+)\S+", r"\g<1>" + data.draw(st.sampled_from(UNITS), label="u"), ln,
                        flags=re.I) for ln in lines]
    elif kind == "bytes":
        lines[i] = lines[i] + "\x00\ufffd"
    elif kind == "chinese":
        lines.insert(i, ";注释 通惠街道 " + data.draw(st.sampled_from(["", "节点", "💧"])))
    elif kind == "empty_section":
        lines = [ln for ln in lines if not ln.strip() or ln.strip().startswith("[") or i % 2]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def base_text() -> str:
    return NET1.read_text(encoding="utf-8", errors="replace")


@given(data=st.data())
def test_fuzzed_inp_gives_network_or_own_error(base_text, data, tmp_path_factory):
    text = base_text
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        text = _mutate(text, data)
    path = tmp_path_factory.mktemp("inp") / "fuzzed.inp"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = read_inp(path)
            res = run_simulation(net, duration_h=2, age=False)
    except WatersupplyError as exc:
        assert str(exc)
        return
    assert len(res.pressure.columns) > 0


def test_rejected_inp_names_the_file_and_line(tmp_path, base_text):
    bad = base_text.replace(" 10              \t710", " 10              \tabc", 1)
    if bad == base_text:  # layout differs: break the first junction line instead
        lines = base_text.split("\n")
        k = next(i for i, ln in enumerate(lines) if ln.strip().upper() == "[JUNCTIONS]") + 2
        lines[k] = lines[k].split()[0] + " abc 0"
        bad = "\n".join(lines)
    path = tmp_path / "broken.inp"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(WatersupplyError, match="broken.inp"):
        read_inp(path)
