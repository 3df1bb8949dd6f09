"""No code from data: safe YAML only, no eval/exec/pickle; scenario names cannot escape the output folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import watersupply
from watersupply._errors import ScenarioError
from watersupply.scenario import parse_scenario

SOURCE = sorted(Path(watersupply.__file__).parent.rglob("*.py"))


@pytest.mark.parametrize("pattern, why", [
    (r"\beval\s*\(", "eval of data"),
    (r"\bexec\s*\(", "exec of data"),
    (r"\bpickle\b|\bdill\b|\bmarshal\.loads", "unpickling data"),
    (r"yaml\.load\s*\((?![^)]*SafeLoader)", "yaml.load without the safe loader"),
    (r"yaml\.unsafe_load|yaml\.full_load|FullLoader|UnsafeLoader", "unsafe YAML loaders"),
    (r"subprocess|os\.system|shell=True", "shelling out"),
])
def test_no_dangerous_calls_in_the_package(pattern, why):
    hits = [f"{p.relative_to(Path(watersupply.__file__).parent)}:{i}" for p in SOURCE
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert not hits, f"{why}: {hits}"


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", "..", "C:\\x", "名字", "x" * 200, ""])
def test_scenario_names_cannot_leave_the_output_folder(name):
    doc = {"name": name, "title_zh": "甲", "title_en": "A", "duration_h": 24, "events": []}
    with pytest.raises(ScenarioError, match="name"):
        parse_scenario(doc, source="s.yaml")
