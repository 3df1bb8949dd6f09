"""Fuzzed scenario YAML: a valid scenario or a ScenarioError naming file and field, never a crash.

Every field of the shipped scenarios mutated (type, range, missing, unknown), deep nesting,
aliases/anchors (including an exponential "billion laughs" document) and very large files.
500 cases by default (``--fuzz-long`` for more), fixed seed.
"""

from __future__ import annotations

import copy
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from watersupply._errors import WatersupplyError
from watersupply.scenario import check_scenario, load_scenario, shipped_scenarios

SHIPPED = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in shipped_scenarios()]
VALUES = st.sampled_from([None, "", "x", "通惠", "💧", -1, 0, 0.5, 1e308, float("nan"), True, [], {}, [1, 2],
                          {"a": 1}, "P-001", "PS9", "R10", "M99999", "1e3", 10**30, "../../etc/passwd",
                          "<script>alert(1)</script>"])
KEYS = st.sampled_from(["name", "title_zh", "title_en", "description", "network", "duration_h", "start", "events",
                        "type", "at_h", "for_h", "pipe", "station", "plant", "reservoir", "multiplier", "node",
                        "flow_ls", "add_m3d", "settlement", "zone", "link", "status", "unknown_field", "名称"])


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _mutate(doc: dict, data: st.DataObject) -> dict:
    doc = copy.deepcopy(doc)
    paths = [p for p in _paths(doc) if p]
    kind = data.draw(st.sampled_from(["set", "delete", "unknown", "nest", "events_junk"]), label="kind")
    if kind == "set" and paths:
        _set(doc, data.draw(st.sampled_from(paths), label="path"), data.draw(VALUES, label="value"))
    elif kind == "delete" and paths:
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
    elif kind == "unknown":
        targets = [p for p in _paths(doc) if isinstance(_get(doc, p), dict)]
        path = data.draw(st.sampled_from(targets), label="path")
        _get(doc, path)[data.draw(KEYS, label="key")] = data.draw(VALUES, label="value")
    elif kind == "nest":
        deep: object = 1
        for _ in range(data.draw(st.integers(10, 200), label="depth")):
            deep = [deep]
        doc[data.draw(KEYS, label="key")] = deep
    elif kind == "events_junk":
        doc["events"] = data.draw(st.sampled_from([None, "pipe_break", [None], [[]], [{"type": "nope"}],
                                                   [{"type": "pipe_break"}], {"type": "pipe_break"}]))
    return doc


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


@given(data=st.data())
def test_fuzzed_scenarios_validate_or_raise_scenario_error(data, tmp_path_factory, tonghui_net):
    doc = _mutate(data.draw(st.sampled_from(SHIPPED), label="base"), data)
    if data.draw(st.booleans(), label="mutate twice"):
        doc = _mutate(doc, data)
    path = tmp_path_factory.mktemp("sc") / "fuzzed.yaml"
    try:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, RecursionError):
        return
    path.write_text(text, encoding="utf-8")
    try:
        sc = load_scenario(path)
        check_scenario(sc, tonghui_net)
    except WatersupplyError as exc:
        msg = str(exc)
        assert "fuzzed.yaml" in msg, msg
        return


@pytest.mark.parametrize("text", [
    # anchors and aliases are fine when they make sense
    "name: a\ntitle_zh: 甲\ntitle_en: A\nduration_h: 24\nbase: &b {type: demand_change, multiplier: 1.3, at_h: 0, "
    "for_h: 24}\nevents: [*b]\n",
    # billion laughs: must fail fast, not hang or eat memory
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, "
    "*b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nname: [*g, *g]\n",
    # a very large file
    "name: big\ntitle_zh: 大\ntitle_en: Big\nduration_h: 24\nevents:\n" + "".join(
        f"  - {{type: set_link, link: M{i:05d}, status: closed, at_h: 1, for_h: 1}}\n" for i in range(1, 20001)),
    # Python object tags are refused by the safe loader
    "name: !!python/object/apply:os.system ['echo pwned']\n",
], ids=["anchors", "billion-laughs", "large-file", "python-tag"])
def test_hostile_yaml_is_refused_quickly(tmp_path, text, tonghui_net):
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    t0 = time.perf_counter()
    try:
        check_scenario(load_scenario(path), tonghui_net)
    except WatersupplyError as exc:
        assert "hostile.yaml" in str(exc)
    assert time.perf_counter() - t0 < 10


@settings(max_examples=40)
@given(data=st.data())
def test_fuzzed_scenarios_through_the_cli_exit_0_or_2(data, tmp_path_factory):
    from click.testing import CliRunner

    from watersupply.cli.main import cli

    doc = _mutate(data.draw(st.sampled_from(SHIPPED), label="base"), data)
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "fuzzed.yaml"
    try:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    except (yaml.YAMLError, RecursionError):
        return
    res = CliRunner().invoke(cli, ["scenario", "validate", str(path)])
    assert res.exit_code in (0, 2), res.output
    assert "Traceback" not in res.output
    assert sorted(p.name for p in folder.iterdir()) == ["fuzzed.yaml"]
