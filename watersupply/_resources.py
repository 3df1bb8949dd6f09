"""Where the bundled data lives: the networks and scenarios shipped with the package.

The single source of the data is the top-level ``networks/`` and ``scenarios/``
folders of the source tree. A built wheel carries copies of them as package
data under ``watersupply/_data/`` (see ``[tool.hatch.build.targets.wheel.force-include]``
in ``pyproject.toml``), found here through :mod:`importlib.resources`. In a source
tree (an editable install, or a checkout on ``PYTHONPATH``) there is no
``_data`` folder and the folders beside the package are used instead.

Examples
--------
>>> data_dir("networks").joinpath("tonghui", "tonghui.gpkg").is_file()
True
>>> sorted(p.name for p in data_dir("scenarios").glob("ps3*.yaml"))
['ps3_power_cut.yaml']
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DATA_KINDS", "data_dir", "source_dir"]

#: The kinds of bundled data: top-level folder names of the source tree.
DATA_KINDS = ("networks", "scenarios")


def data_dir(kind: str) -> Path:
    """The folder of bundled data of one kind (``"networks"`` or ``"scenarios"``).

    Installed from a wheel, this is ``<site-packages>/watersupply/_data/<kind>``;
    in a source tree, ``<checkout>/<kind>``. The folder may be missing (a
    source checkout without data); callers list what they find and say so.

    Raises
    ------
    ValueError
        If `kind` is not one of :data:`DATA_KINDS`.
    """
    _check(kind)
    packaged = Path(str(files("watersupply").joinpath("_data", kind)))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / kind


def source_dir(kind: str) -> Path | None:
    """The source tree's folder of one kind of data, or None when running from an installed wheel.

    Used where the project writes its own data (``watersupply generate``): an
    installed package is never written into.
    """
    _check(kind)
    if Path(str(files("watersupply").joinpath("_data"))).is_dir():
        return None
    folder = Path(__file__).resolve().parent.parent / kind
    return folder if folder.is_dir() else None


def _check(kind: str) -> None:
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown bundled data kind {kind!r}; give one of {', '.join(DATA_KINDS)}")
