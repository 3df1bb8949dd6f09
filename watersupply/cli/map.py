"""``watersupply map``: the service map (offline HTML, optionally a PNG) of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..maps import LANGS, MAP_LAYERS, PIPE_COLOURINGS, TILES
from ._common import UserError, default_out, handle_errors, load_network_arg, network_options

#: Layers of a results.gpkg that are mapped.
RESULT_LAYERS = ("nodes", "pipes", "pumps", "facilities", "settlements", "zones")


def parse_layers(value: str | None) -> list[str] | None:
    """Parse ``--layers a,b,c``; None means every available layer."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise UserError(f"--layers is empty; give a comma-separated list of {','.join(MAP_LAYERS)}")
    bad = [n for n in names if n not in MAP_LAYERS]
    if bad:
        raise UserError(f"--layers: unknown layer(s) {', '.join(map(repr, bad))}; valid: {','.join(MAP_LAYERS)}")
    return names


def _check_ids(layer: Any, ref: Any, name: str, source: Path, net_name: str) -> None:
    got = set(layer["id"].astype(str))
    want = set(ref["id"].astype(str))
    extra, missing = sorted(got - want), sorted(want - got)
    if extra or missing:
        ex = f"{len(extra)} id(s) not in network {net_name!r} (e.g. {', '.join(map(repr, extra[:3]))})" if extra else ""
        mi = f"{len(missing)} of its id(s) missing (e.g. {', '.join(map(repr, missing[:3]))})" if missing else ""
        raise UserError(f"{source}: layer {name!r} does not match the network: "
                        f"{'; '.join(x for x in (ex, mi) if x)}. These results come from another network: give the "
                        "network they were computed on (--network/--inp), or rerun `watersupply run`")


def read_results(path: Path, net: dict, net_name: str) -> tuple[dict[str, Any], Any, Any]:
    """Read a run's results (folder or results.gpkg) and check they belong to `net`.

    Returns the layers, the hourly pressure table (``pressure.csv`` beside the
    GeoPackage, hours × node ids, if present) and audit verdicts (``audit.csv``
    beside it, if present).
    """
    import pandas as pd

    from ..io import list_layers, read_layer

    gpkg = path / "results.gpkg" if path.is_dir() else path
    if not gpkg.is_file():
        raise UserError(f"{path}: no results found; give the folder written by `watersupply run` or its results.gpkg")
    listed = list_layers(gpkg, fix="give a results.gpkg")
    missing = [k for k in ("nodes", "pipes") if k not in listed]
    if missing:
        raise UserError(f"{gpkg}: layer(s) {', '.join(map(repr, missing))} missing; give a results.gpkg written by "
                        "`watersupply run`")
    layers: dict[str, Any] = {}
    for name in RESULT_LAYERS:
        if name not in listed:
            continue
        df = read_layer(gpkg, name, id_columns=("from_node", "to_node", "settlement_id", "station_id", "node_id"))
        if "id" not in df.columns:
            raise UserError(f"{gpkg}: layer {name!r} has no 'id' column; give a results.gpkg written by `watersupply run`")
        if df.crs is None:
            raise UserError(f"{gpkg}: layer {name!r} has no CRS; rewrite the results with `watersupply run`")
        layers[name] = df
    for name in ("nodes", "pipes", "settlements"):
        if name in layers and name in net:
            _check_ids(layers[name], net[name], name, gpkg, net_name)
    pressure = None
    pfile = gpkg.parent / "pressure.csv"
    if pfile.is_file():
        pressure = pd.read_csv(pfile, index_col=0)
        pressure.columns = pressure.columns.astype(str)
        unknown = sorted(set(pressure.columns) - set(layers["nodes"]["id"]))
        if unknown:
            raise UserError(f"{pfile}: node id(s) {', '.join(map(repr, unknown[:3]))} are not in the results; "
                            "remove the file or rerun `watersupply run`")
    afile = gpkg.parent / "audit.csv"
    audit = read_audit_csv(afile, required=False) if afile.is_file() else None
    return layers, pressure, audit


def read_audit_csv(path: Path, *, required: bool = True) -> Any:
    """Audit verdicts from a CSV (``audit.csv`` of ``watersupply audit``/``run``), indexed by settlement id.

    The id is the ``id`` or ``settlement_id`` column, else the first column.
    Returns None for a file without a ``verdict`` column unless `required`.
    """
    import pandas as pd

    if not path.is_file():
        raise UserError(f"{path}: file not found; give a CSV with columns id and verdict")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV ({exc}); give a CSV with columns id and verdict") from None
    if "verdict" not in df.columns:
        if required:
            raise UserError(f"{path}: needs columns 'id' (or 'settlement_id') and 'verdict'; "
                            f"found {', '.join(map(str, df.columns))}")
        return None
    key = next((k for k in ("id", "settlement_id") if k in df.columns), df.columns[0])
    if key == "verdict":
        raise UserError(f"{path}: needs a settlement id column ('id' or 'settlement_id') besides 'verdict'")
    return df.set_index(key)


@click.command("map")
@network_options
@click.option("--results", type=click.Path(path_type=Path), default=None,
              help="A run's output folder (or its results.gpkg). Default: run the baseline now, without writing it.")
@click.option("--lang", type=click.Choice(LANGS), default="both", show_default=True,
              help="Language of labels, legends and popups.")
@click.option("--tiles", type=click.Choice(TILES), default="none", show_default=True,
              help="Basemap: none (offline), osm, or tianditu (needs --tianditu-key).")
@click.option("--tianditu-key", default=None, metavar="KEY", help="Tianditu (天地图) key for --tiles tianditu.")
@click.option("--layers", "layer_names", default=None, metavar="LIST",
              help=f"Comma-separated layers to show, of {','.join(MAP_LAYERS)} (default: all available).")
@click.option("--pipe-colour-by", type=click.Choice(PIPE_COLOURINGS), default="class", show_default=True,
              help="Initial pipe colouring (the others can be switched to in the map).")
@click.option("--audit", "audit_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of audit verdicts (columns id, verdict[, <dimension>_verdict, score, ...]).")
@click.option("--png", is_flag=True, help="Also write map.png (static map for printed reports).")
@click.option("--duration-h", type=float, default=None, help="Simulated hours when the baseline is run here.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network name>).")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, results: Path | None, lang: str, tiles: str,
            tianditu_key: str | None, layer_names: str | None, pipe_colour_by: str, audit_file: Path | None,
            png: bool, duration_h: float | None, out: Path | None) -> None:
    """Write the service map (map.html, offline, with layer control, legends, popups and a time slider)
    of a run's results, or of the baseline run here when --results is not given."""
    import os
    import warnings

    from .. import metrics
    from ..maps import bundled_district, render_service_map
    from ..model import metadata

    include = parse_layers(layer_names)
    if duration_h is not None and not duration_h > 0:
        raise UserError(f"--duration-h must be > 0, got {duration_h}")
    net, name = load_network_arg(network, inp, crs)
    md = metadata(net)
    tank_level = None
    if results is not None:
        if duration_h is not None:
            raise UserError("--duration-h applies only when the baseline is run here; drop it with --results")
        layers, pressure, audit = read_results(results, net, name)
    else:
        from ..baseline import result_layers, run_baseline

        options = {"duration_h": duration_h} if duration_h is not None else {}
        run = run_baseline(net, **options)
        layers = result_layers(run)
        pressure = run.result.pressure.reindex(columns=metrics.demand_nodes(net))
        tank_level = run.result.tank_level
        audit = None
    if audit_file is not None:
        audit = read_audit_csv(audit_file)
    district = bundled_district(md.get("name") or name)
    title = (md.get("title_zh", ""), md.get("title_en", md.get("name", name)))
    out_dir = out if out is not None else default_out(name)
    png_path = out_dir / "map.png" if png else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = render_service_map(layers, out_html=out_dir / "map.html", title=title, lang=lang, pressure=pressure,
                                  tank_level=tank_level, audit=audit, include=include, pipe_colour_by=pipe_colour_by,
                                  district=district, tiles=tiles, tianditu_key=tianditu_key, out_png=png_path)
    for message in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
        click.echo(f"Warning: {message}", err=True)
    click.echo(f"map: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    if png_path is not None:
        click.echo(f"png: {png_path} ({os.path.getsize(png_path) / 1e6:.2f} MB)")
