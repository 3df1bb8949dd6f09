"""The one entry for loading a network: a GeoPackage, an EPANET INP file, or the bundled model.

Every command, scenario and notebook loads its network through
:func:`load_network`; :func:`network_name` gives the short name used for output
folders (``out/<name>/``). Reading the files themselves is done by
:func:`watersupply.io.read_network` (GeoPackage) and
:func:`watersupply.convert.read_inp` (INP).

Examples
--------
>>> net = load_network()  # the bundled Tonghui network
>>> net["nodes"].crs.to_epsg(), network_name()
(4545, 'tonghui')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyproj

from ._errors import NetworkDataError
from .io import get_path, read_network
from .schema import Network

__all__ = ["DEFAULT_NETWORK", "load_network", "network_name"]

#: The bundled network used when none is given.
DEFAULT_NETWORK = "tonghui"


def _is_inp(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".inp"


def load_network(*, network: str | os.PathLike | None = None, inp: str | os.PathLike | None = None,
                 crs: Any = None) -> Network:
    """Load the network a command was given: a GeoPackage, an INP file, or the bundled Tonghui model.

    Parameters
    ----------
    network
        A network GeoPackage in the project's layout (a path ending in ``.inp``
        is read as an INP file), or the name of a bundled network (e.g.
        ``"tonghui"``) when no such file exists.
    inp
        An EPANET INP file (converted with :func:`watersupply.convert.read_inp`).
    crs
        CRS of the INP coordinates. With a GeoPackage it must match the file's CRS
        (a GeoPackage carries its own).

    Raises
    ------
    NetworkDataError
        Both `network` and `inp` given, a file that cannot be read, or a `crs`
        that contradicts the GeoPackage.
    """
    if network is not None and inp is not None:
        raise NetworkDataError(f"give either a network GeoPackage ({network}) or an INP file ({inp}), not both")
    if inp is None and network is not None and _is_inp(network):
        network, inp = None, network
    if inp is not None:
        from .convert import read_inp

        return read_inp(inp, crs=crs)
    path = Path(network) if network is not None else get_path(DEFAULT_NETWORK)
    if network is not None and not path.exists() and not path.suffix and len(path.parts) == 1:
        path = get_path(path.name)  # a bundled network's name; the error lists the bundled names
    net = read_network(path)
    if crs is not None:
        try:
            want = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as exc:
            raise NetworkDataError(f"CRS {crs!r} is not a valid CRS ({exc}); give e.g. 'EPSG:4545'") from None
        have = net["nodes"].crs
        if have != want:
            raise NetworkDataError(f"{path}: the GeoPackage is in {have.to_string()}, but CRS {want.to_string()} was "
                                   "given; --crs only applies to INP files — drop it, or reproject the GeoPackage")
    return net


def network_name(*, network: str | os.PathLike | None = None, inp: str | os.PathLike | None = None) -> str:
    """Short name of the network :func:`load_network` loads with the same arguments: the file's stem.

    >>> network_name(inp="models/Net3.inp"), network_name(network="a/b/zone.gpkg")
    ('Net3', 'zone')
    """
    given = inp if inp is not None else network
    return Path(given).stem if given is not None else DEFAULT_NETWORK
