"""Tests of watersupply.engine: toolkit codes, checked return codes, check-valve pipes, quiet console."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import wntr

from watersupply import HydraulicError, NetworkDataError
from watersupply.engine import EN, EN_DEMANDDEFICIT, EN_UNCONDITIONAL, Project, en_message, quiet_stdout


@pytest.fixture
def cv_inp(tmp_path: Path) -> Path:
    """R feeds A and B; the CV pipe P2 runs A → B; B also has its own pipe P3 from R."""
    wn = wntr.network.WaterNetworkModel()
    wn.add_reservoir("R", base_head=50.0)
    wn.add_junction("A", base_demand=0.01, elevation=0.0)
    wn.add_junction("B", base_demand=0.02, elevation=0.0)
    wn.add_pipe("P1", "R", "A", 1000.0, 0.2, 100.0)
    wn.add_pipe("P2", "A", "B", 500.0, 0.2, 100.0, check_valve=True)
    wn.add_pipe("P3", "R", "B", 3000.0, 0.15, 100.0)
    wn.options.time.duration = 3600
    path = tmp_path / "cv.inp"
    wntr.network.write_inpfile(wn, str(path), units="LPS")
    return path


def test_codes_wntr_lacks_match_owa_epanets_enums() -> None:
    # in a child process: owa-epanet's SWIG module cannot load next to WNTR's library (same soname)
    code = ("import epanet.toolkit as t; print(t.DEMANDDEFICIT, t.UNCONDITIONAL, t.PRESSURE, t.INITSTATUS, "
            "t.STATUS, t.CVPIPE, t.PIPE, t.NODECOUNT, t.CONTROLCOUNT)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [EN_DEMANDDEFICIT, EN_UNCONDITIONAL, EN.PRESSURE, EN.INITSTATUS, EN.STATUS,
                                     EN.CVPIPE, EN.PIPE, EN.NODECOUNT, EN.CONTROLCOUNT]


def test_option_and_curve_codes_match_owa_epanets_enums() -> None:
    from watersupply.engine import EN_PUMP_HCURVE, EN_TRIALS, EN_UNBALANCED

    code = "import epanet.toolkit as t; print(t.TRIALS, t.UNBALANCED, t.PUMP_HCURVE)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [EN_TRIALS, EN_UNBALANCED, EN_PUMP_HCURVE]


def test_status_of_a_cv_pipe_is_error_207_naming_the_link(cv_inp: Path) -> None:
    with Project(cv_inp) as pr, pytest.raises(HydraulicError, match=r"link 'P2'.*EPANET error 207"):
        pr.set_link(pr.link_index("P2"), EN.INITSTATUS, 0.0)


def test_closing_a_cv_pipe_closes_it_and_restores_it(cv_inp: Path) -> None:
    with Project(cv_inp) as pr:
        p2, p1 = pr.link_index("P2"), pr.link_index("P1")
        pr.init()
        pr.run()
        q_open = pr.get_link(p2, EN.FLOW)
        assert q_open > 1.0  # A → B through the check valve (L/s)
        saved = pr.close_links([p2])
        assert pr.link_type(p2) == EN.PIPE
        pr.init()
        pr.run()
        assert pr.get_link(p2, EN.FLOW) == pytest.approx(0.0, abs=1e-6)
        assert pr.get_link(p1, EN.FLOW) == pytest.approx(10.0, rel=1e-3)  # P1 serves A alone
        pr.restore_links(saved)
        assert pr.link_type(p2) == EN.CVPIPE
        pr.init()
        pr.run()
        assert pr.get_link(p2, EN.FLOW) == pytest.approx(q_open, rel=1e-6)


def test_unknown_elements_and_bad_files_are_named(cv_inp: Path, tmp_path: Path) -> None:
    with Project(cv_inp) as pr:
        with pytest.raises(NetworkDataError, match="node 'NOPE' is not in the EPANET model"):
            pr.node_index("NOPE")
        with pytest.raises(NetworkDataError, match="link 'NOPE'"):
            pr.link_index("NOPE")
        with pytest.raises(HydraulicError, match=r"node 'A'.*EPANET error"):
            pr.get_node(pr.node_index("A"), 999)
    bad = tmp_path / "bad.inp"
    bad.write_text("[JUNCTIONS]\n J1 abc\n[END]\n")
    with quiet_stdout(), pytest.raises(HydraulicError, match=r"cannot open the model bad.inp: EPANET error 2\d\d"):
        Project(bad)


def test_messages_name_the_code() -> None:
    assert en_message(1) == "EPANET warning 1: system hydraulically unbalanced"
    assert en_message(207).startswith("EPANET error 207: attempt to control a CV")


def test_quiet_stdout_hides_descriptor_1(capfd: pytest.CaptureFixture[str]) -> None:
    with quiet_stdout():
        os.write(1, b"from C\n")
    os.write(1, b"visible\n")
    assert capfd.readouterr().out == "visible\n"
