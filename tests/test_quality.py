"""Chlorine and age runs side by side (watersupply.quality.run_side_by_side)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import watersupply.quality as quality
from watersupply._errors import HydraulicError
from watersupply.model import to_wntr
from watersupply.quality import run_side_by_side
from watersupply.simulation import run_wntr

needs_fork = pytest.mark.skipif(not quality._can_fork(), reason="no fork or a single core here")


@needs_fork
def test_jobs_run_in_child_processes_and_come_back_in_order():
    me = os.getpid()
    out = run_side_by_side({"a": lambda: ("a", os.getpid()), "b": lambda: ("b", os.getpid()),
                            "c": lambda: ("c", os.getpid())})
    assert list(out) == ["a", "b", "c"]
    assert [v[0] for v in out.values()] == ["a", "b", "c"]
    assert out["a"][1] == me and out["b"][1] != me and out["c"][1] != me


def test_one_after_the_other_when_not_parallel():
    me = os.getpid()
    out = run_side_by_side({"a": os.getpid, "b": os.getpid}, parallel=False)
    assert out == {"a": me, "b": me}


@needs_fork
def test_an_error_in_a_child_is_raised_here():
    def bad():
        raise HydraulicError("EPANET quality run failed at time 0 s: error 302")

    with pytest.raises(HydraulicError, match="error 302"):
        run_side_by_side({"ok": lambda: 1, "bad": bad})


@needs_fork
def test_a_child_that_dies_has_its_job_run_here(caplog):
    me = os.getpid()

    def dies_in_a_child():
        if os.getpid() != me:
            os._exit(3)
        return "here"

    out = run_side_by_side({"ok": lambda: 1, "dies": dies_in_a_child})
    assert out == {"ok": 1, "dies": "here"}
    assert "ended without an answer" in caplog.text


@needs_fork
def test_settled_quality_is_the_same_with_and_without_child_processes(tiny_net, monkeypatch):
    side = run_wntr(to_wntr(tiny_net, duration_h=24))
    monkeypatch.setattr(quality, "_can_fork", lambda: False)
    alone = run_wntr(to_wntr(tiny_net, duration_h=24))
    assert side.quality.days == alone.quality.days
    np.testing.assert_array_equal(side.chlorine.to_numpy(), alone.chlorine.to_numpy())
    np.testing.assert_array_equal(side.age.to_numpy(), alone.age.to_numpy())


def test_settled_cycle_equals_a_long_brute_force_run(tiny_net, monkeypatch):
    """The settled daily cycle is the one a run of all the extra days ends on (no early stop)."""
    import functools

    import watersupply.simulation as simulation

    settled = run_wntr(to_wntr(tiny_net, duration_h=24))
    monkeypatch.setattr(simulation, "steady_quality", functools.partial(quality.steady_quality, stop=False))
    brute = run_wntr(to_wntr(tiny_net, duration_h=24))
    assert brute.quality.days == {"chlorine": quality.MAX_DAYS, "age": quality.MAX_DAYS}
    assert settled.quality.days["chlorine"] < quality.MAX_DAYS and settled.quality.days["age"] < quality.MAX_DAYS
    demand = ["J1", "J2", "J3", "J4", "J5", "J6"]
    assert (settled.chlorine[demand] - brute.chlorine[demand]).abs().max().max() < 2 * quality.TOL_CHLORINE_MGL
    assert (settled.age[demand] - brute.age[demand]).abs().max().max() < 2 * quality.TOL_AGE_H
