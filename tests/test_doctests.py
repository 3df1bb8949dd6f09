"""Every docstring example in the package runs (one test per module).

Examples are written for readers and run on the bundled data; an example that
cannot run cheaply is marked ``# doctest: +SKIP`` in its module. Each module's
examples run in an empty temporary working folder, so an example that writes
files leaves nothing behind.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import watersupply


#: Modules whose examples run full Tonghui solves (tens of seconds): marked slow.
SLOW = ("watersupply.criticality", "watersupply.generator")


def _modules() -> list[str]:
    names = [watersupply.__name__]
    names += [m.name for m in pkgutil.walk_packages(watersupply.__path__, prefix="watersupply.")]
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    return sorted((t for t in tests if t.examples), key=lambda t: t.name)


MODULES = _modules()
WITH_EXAMPLES = [n for n in MODULES if _examples(n)]


def test_every_module_is_collected():
    assert {"watersupply.io", "watersupply.standards", "watersupply.scenario.spec", "watersupply.cli.main",
            "watersupply.hydraulics"} <= set(MODULES)
    assert len(WITH_EXAMPLES) >= 15 and "watersupply.standards" in WITH_EXAMPLES


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith(SLOW) else n
                                  for n in WITH_EXAMPLES])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = _examples(name)
    out: list[str] = []
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=out.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} example(s) failed in {name}:\n" + "".join(out)
