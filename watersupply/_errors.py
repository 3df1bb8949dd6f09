"""Error classes of watersupply.

All user-facing problems raise a subclass of :class:`WatersupplyError`, itself a
:class:`ValueError`. Messages name the file, layer, field or element concerned,
what was received and how to fix it. The CLI turns them into one line on stderr
and exit code 2, without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "WatersupplyError",
    "NetworkDataError",
    "ScenarioError",
    "ConfigError",
    "HydraulicError",
    "closest",
]


class WatersupplyError(ValueError):
    """Base class for every error watersupply raises on bad input."""


class NetworkDataError(WatersupplyError):
    """A network file, layer, column or element is missing or invalid."""


class ScenarioError(WatersupplyError):
    """A scenario file is malformed or refers to unknown elements."""


class ConfigError(WatersupplyError):
    """A configuration file or option is invalid."""


class HydraulicError(WatersupplyError):
    """EPANET could not solve the network; the message names the run and elements."""


def closest(name: str, candidates: Iterable[str], *, n: int = 5) -> str:
    """Return a short "did you mean" text listing the valid ids closest to `name`.

    Examples
    --------
    >>> closest("P-0O1", ["P-001", "P-002", "R-1"])
    "closest valid ids: 'P-001', 'P-002', 'R-1'"
    """
    cands = sorted({str(c) for c in candidates})
    near = difflib.get_close_matches(str(name), cands, n=n, cutoff=0.5)
    if not near:
        near = cands[:n]
    if not near:
        return "there are no valid ids"
    return "closest valid ids: " + ", ".join(repr(c) for c in near)
