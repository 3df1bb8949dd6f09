"""Reading and writing files: networks (GeoPackage, INP), tables and text, all atomic.

Every writer goes through :func:`atomic_path`: the file is written under a
temporary name in the target folder and renamed into place only when complete,
so a crash never leaves a truncated file that looks whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from ._errors import NetworkDataError
from ._resources import data_dir
from .schema import LAYERS, Network, validate_network

__all__ = [
    "NETWORKS_DIR",
    "ID_COLUMNS",
    "get_path",
    "list_layers",
    "read_layer",
    "atomic_path",
    "read_network",
    "read_yaml_document",
    "yaml_line_map",
    "yaml_expanded_size",
    "MAX_YAML_VALUES",
    "write_network",
    "write_layers",
    "write_text",
    "read_yaml",
    "write_csv",
]

log = logging.getLogger(__name__)

#: Folder of the bundled networks (package data in a wheel, ``networks/`` in a checkout).
NETWORKS_DIR = data_dir("networks")


def get_path(name: str = "tonghui", *, kind: str = "gpkg") -> Path:
    """Path of a bundled network file.

    Parameters
    ----------
    name
        Bundled network name, e.g. ``"tonghui"``.
    kind
        ``"gpkg"`` or ``"inp"``.

    Raises
    ------
    NetworkDataError
        If the name is unknown; the message lists the bundled names.
    """
    available = sorted(p.name for p in NETWORKS_DIR.iterdir() if p.is_dir()) if NETWORKS_DIR.is_dir() else []
    path = NETWORKS_DIR / name / f"{name}.{kind}"
    if name not in available or not path.is_file():
        raise NetworkDataError(f"no bundled network {name!r} ({kind}); available: {', '.join(available) or 'none'}"
                               f" (looked in {NETWORKS_DIR}); give a network file instead")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds.

    On error the temporary file is removed and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as GDAL want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise RuntimeError(f"nothing was written to {target}")
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        for leftover in (tmp_path, Path(str(tmp_path) + "-journal"), Path(str(tmp_path) + "-wal"),
                         Path(str(tmp_path) + "-shm")):
            if leftover.exists():
                leftover.unlink()


def read_yaml(path: str | os.PathLike, *, missing: str, invalid: str) -> Any:
    """Read a small YAML file with the safe loader.

    Parameters
    ----------
    missing, invalid
        The fix to suggest when the file is absent, or is not YAML (``{error}``
        in `invalid` is replaced by the parser's first message line).

    Raises
    ------
    ConfigError
        Naming the file.
    """
    import yaml

    from ._errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {missing}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{p}: {invalid.format(error=first)}") from None


#: Largest YAML document accepted, in values after expanding aliases (guards against
#: "billion laughs" documents and runaway files).
MAX_YAML_VALUES = 50_000


def yaml_line_map(node: Any, prefix: str = "", out: dict[str, int] | None = None) -> dict[str, int]:
    """Field path (``events[0].for_h``) → 1-based line, from a composed YAML tree."""
    import yaml

    out = {} if out is None else out
    if prefix:
        out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            path = f"{prefix}.{key}" if prefix else key
            out[path] = k.start_mark.line + 1
            yaml_line_map(v, path, out)
            out[path] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            yaml_line_map(v, f"{prefix}[{i}]", out)
    return out


def yaml_expanded_size(root: Any, *, limit: int = MAX_YAML_VALUES) -> int:
    """Number of YAML values the document expands to, aliases counted each time they are used.

    Memoised on the composed node graph, so it costs one pass even when aliases
    would expand exponentially; stops counting past `limit`.
    """
    import yaml

    memo: dict[int, int] = {}

    def size(node: Any, depth: int = 0) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if depth > 500:
            return limit + 1
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child, depth + 1)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
                if total > limit:
                    break
        memo[key] = total
        return total

    return size(root)


def read_yaml_document(path: str | os.PathLike, *, error: type[Exception], what: str, max_bytes: int,
                       syntax_hint: str, too_big_hint: str, max_values: int = MAX_YAML_VALUES) -> tuple[Any, Any]:
    """Read a small, user-written YAML file safely: size cap, UTF-8, safe loader, alias-expansion cap.

    Returns the data and the composed node tree (``None`` for an empty file), whose
    marks give line numbers (:func:`yaml_line_map`). Every problem raises `error`
    naming the file (and line and column for a syntax error) with the fix.
    """
    import yaml

    p = Path(path)
    nbytes = p.stat().st_size
    if nbytes > max_bytes:
        raise error(f"{p}: the file is {nbytes:,} bytes, too large for {what} (at most {max_bytes:,}); {too_big_hint}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte {exc.start}); save the {what} as UTF-8") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None and yaml_expanded_size(root, limit=max_values) > max_values:
            raise error(f"{p}: the YAML expands to more than {max_values:,} values (aliases/anchors multiplying a "
                        f"structure, or a very large file); {too_big_hint}")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{p}{where}: malformed YAML: {problem}; {syntax_hint}") from None
    return data, root


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv(df: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a DataFrame as UTF-8 CSV atomically (floats with 10 significant digits: stable across runs,
    and exact to the millimetre for projected coordinates)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index, encoding="utf-8", float_format="%.10g", lineterminator="\n")
    return Path(path)


#: GeoPackages record a "last change" timestamp; a fixed one makes outputs byte-identical.
GPKG_TIMESTAMP = "2020-01-01T00:00:00.000Z"


def write_layers(layers: Mapping[str, pd.DataFrame], path: str | os.PathLike) -> Path:
    """Write (Geo)DataFrames as layers of one GeoPackage, atomically.

    Tables without geometry are written as attribute tables. The layer order is
    the mapping's order and the GeoPackage timestamp is fixed, so the same
    layers give a byte-identical file.
    """
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    with atomic_path(path) as tmp:
        for name, df in layers.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                if isinstance(df, gpd.GeoDataFrame):
                    pyogrio.write_dataframe(df, tmp, layer=name, driver="GPKG", promote_to_multi=False,
                                            layer_options={"SPATIAL_INDEX": "YES"})
                else:
                    pyogrio.write_dataframe(pd.DataFrame(df), tmp, layer=name, driver="GPKG")
    return Path(path)


def write_network(net: Network, path: str | os.PathLike) -> Path:
    """Write a network's layers to a GeoPackage, in the order of :data:`watersupply.schema.LAYERS`."""
    ordered = {k: net[k] for k in LAYERS if k in net}
    ordered.update({k: v for k, v in net.items() if k not in ordered})
    return write_layers(ordered, path)


#: Columns that hold element ids: read as text (``None`` where empty), never as numbers.
ID_COLUMNS = ("from_node", "to_node", "node_id", "settlement_id", "station_id", "link", "node", "control_node",
              "zone", "pattern", "curve", "rule", "control", "vol_curve", "head_pattern", "speed_pattern",
              "price_pattern", "efficiency_curve", "category", "demand_name")


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def list_layers(path: str | os.PathLike, *, fix: str) -> list[str]:
    """Names of the layers of a GIS file (GeoPackage, GeoJSON, Shapefile...).

    Parameters
    ----------
    fix
        What to tell the user to give instead, should the file be missing or unreadable.

    Raises
    ------
    NetworkDataError
        ``<path>: file not found; <fix>`` or ``<path>: not readable as GIS data (<reason>); <fix>``.
    """
    p = Path(path)
    if not p.exists():
        raise NetworkDataError(f"{p}: file not found; {fix}")
    try:
        return [str(name) for name, _geom in pyogrio.list_layers(p)]
    except Exception as exc:  # pyogrio raises DataSourceError, OSError, ...
        raise NetworkDataError(f"{p}: not readable as GIS data ({_reason(exc)}); {fix}") from None


def read_layer(path: str | os.PathLike, layer: str | None = None, *,
               id_columns: tuple[str, ...] = ID_COLUMNS, text_id: bool = True) -> pd.DataFrame:
    """One layer of a GIS file, with ids as text: ``id`` as str (if `text_id`), `id_columns` as str or None.

    Returns a GeoDataFrame for a layer with geometry, else a DataFrame. Raw user
    layers (``watersupply build``) are read with ``id_columns=(), text_id=False``
    and checked column by column afterwards.

    Raises
    ------
    NetworkDataError
        ``<path>: layer '<layer>' cannot be read (<reason>)``.
    """
    p = Path(path)
    try:
        df = pyogrio.read_dataframe(p, layer=layer)
    except Exception as exc:
        what = f"layer {layer!r}" if layer is not None else "the file"
        raise NetworkDataError(f"{p}: {what} cannot be read ({_reason(exc)})") from None
    if text_id and "id" in df.columns:
        df["id"] = df["id"].astype(str)
    for col in id_columns:
        if col in df.columns:
            df[col] = df[col].astype("string").astype(object).where(df[col].notna(), None)
    return df


def read_network(path: str | os.PathLike) -> Network:
    """Read a network GeoPackage written in the project's layout and validate it.

    Raises
    ------
    NetworkDataError
        The file is missing or not a GeoPackage, or a layer/column/element is invalid.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkDataError(f"{p}: file not found; give the path of a network GeoPackage "
                               "(or --inp for an EPANET file)")
    names = list_layers(p, fix="give a GeoPackage (.gpkg)")
    net: Network = {}
    for name in names:
        if name not in LAYERS and name not in ("zones",):
            continue
        net[name] = read_layer(p, name)
    validate_network(net, source=str(p))
    log.debug("read %s: %s", p, {k: len(v) for k, v in net.items()})
    return net
