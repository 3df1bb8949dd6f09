"""The EPANET engine: the one place that talks to the EPANET toolkit.

Console output of the C library is silenced here (:func:`quiet_stdout`); the
in-memory toolkit project used by the audit trace and criticality lives here too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["quiet_stdout"]


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence what the EPANET C library prints on the process's stdout (file descriptor 1).

    Works on the descriptor itself, so it also holds where ``sys.stdout`` is
    replaced (Jupyter kernels, pytest capture).

    >>> with quiet_stdout():
    ...     _ = os.write(1, b"hidden")
    """
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
