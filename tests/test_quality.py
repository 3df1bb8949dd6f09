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


def test_quality_runs_on_epanet_2_3_and_agree_with_2_2(tiny_net, monkeypatch):
    """The quality-only runs use owa-epanet's 2.3 library; WNTR's 2.2 gives the same settled cycle."""
    assert quality.quality_engine() == quality.QUALITY_ENGINE == "epanet2.3"
    monkeypatch.setattr(quality, "_can_fork", lambda: False)
    new = run_wntr(to_wntr(tiny_net, duration_h=24))
    monkeypatch.setattr(quality, "_ENGINE_FOUND", "epanet2.2")
    old = run_wntr(to_wntr(tiny_net, duration_h=24))
    demand = ["J1", "J2", "J3", "J4", "J5", "J6"]
    assert new.quality.days and old.quality.days
    assert (new.chlorine[demand] - old.chlorine[demand]).abs().max().max() < quality.TOL_CHLORINE_MGL
    assert (new.age[demand] - old.age[demand]).abs().max().max() < quality.TOL_AGE_H


def test_settling_is_checked_every_hour_and_the_horizon_reported(tiny_net):
    """The run stops at the first hour whose last 24 h repeat the 24 h before; the cycle is laid out by hour of day."""
    res = run_wntr(to_wntr(tiny_net, duration_h=24))
    q = res.quality
    for key in ("chlorine", "age"):
        h = q.horizon_h[key]
        assert 48 <= h <= 24 * (q.days[key] + 1) and q.days[key] == -(-h // 24) - 1
    assert "horizon" in q.summary()
    # the cycle's hour 0 is the run's hour 0 of its last day, whatever hour the run stopped at
    full = run_wntr(to_wntr(tiny_net, duration_h=24), max_days=quality.MAX_DAYS)
    assert (res.chlorine["J3"] - full.chlorine["J3"]).abs().max() < 2 * quality.TOL_CHLORINE_MGL


@needs_fork
def test_meanwhile_runs_here_while_the_children_work():
    me, seen = os.getpid(), []
    out = run_side_by_side({"a": lambda: 1, "b": lambda: 2}, meanwhile=lambda: seen.append(os.getpid()))
    assert out == {"a": 1, "b": 2} and seen == [me]
    seen.clear()
    assert run_side_by_side({"a": lambda: 1, "b": lambda: 2}, parallel=False, meanwhile=lambda: seen.append(1)) \
        == {"a": 1, "b": 2} and seen == [1]
