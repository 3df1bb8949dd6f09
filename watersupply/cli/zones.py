"""``watersupply zones``: pressure zones designed from the ground — PRVs or break-pressure tanks where static head
at a tap would exceed its limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options


def _limits(values: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--limit {text!r}: give NAME=VALUE, e.g. --limit rural_max_static_head_m=35")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--limit {text!r}: {value!r} is not a number") from None
    return out


def _fmt(v: Any, digits: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v) if v not in (None, "") else "–"
    return "–" if f != f else f"{f:.{digits}f}"


def _table(rows: list[list[Any]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def report_markdown(name: str, plan: Any, check: Any | None, *, applied: bool) -> str:
    """The zoning report (markdown): limits, zones before/after, devices, boundary valves, flags, EPANET check."""
    from ..standards import STANDARDS

    o = plan.options
    taps = plan.nodes[plan.nodes["tap"]]
    lines = [f"# Pressure zones — {name}", "",
             f"Static head at every tap computed from its supply (plants, tank overflow levels, pump shut-off where "
             f"no tank floats the line; `watersupply.zones.static_heads`) and held within the limits below by "
             f"{'PRVs' if o['device'] == 'prv' else 'break-pressure tanks (减压池)'} on the pipe entering each "
             f"over-pressured part (rule: bottom-up interval greedy on the supply tree, see `watersupply.zones`). "
             f"Taps outside any settlement use the {o['default_kind']} limits; zone levels keep "
             f"{o['margin_m']:g} m above the highest tap's service head.", "", "## Limits", ""]
    keys = ["rural_max_static_head_m", "urban_max_static_head_m", "main_max_static_head_m", "zone_service_margin_m"]
    lines += _table([[k, _fmt(o["limits"][k]), STANDARDS[k].source + (" — overridden" if k in o["overridden"] else "")]
                     for k in keys], ["threshold", "m", "source"])
    lines += ["", "Service head: GB 50013-2018 §3.0.10 (communities), 村镇供水工程技术规范 (villages), by storeys.", ""]
    n_over = int((taps["static_before_m"] > taps["limit_m"] + 0.05).sum())
    designed = plan.zones[plan.zones["device_id"].astype(str) != ""] if len(plan.zones) else plan.zones
    small = int((designed["taps"] <= 2).sum()) if len(designed) else 0
    lines += ["## Result", "",
              f"- taps: {len(taps)}; over their static limit before zoning: {n_over} "
              f"(max {_fmt(taps['static_before_m'].max())} m); after: {int((taps['flag'] == 'over').sum())} "
              f"(max {_fmt(taps['static_m'].max())} m)",
              f"- devices: {len(plan.devices)}; loop pipes closed at zone boundaries: {len(plan.boundary)}",
              f"- designed zones with at most 2 taps: {small} (a household PRV, 户用减压阀, at each of those taps may "
              "cost less than a network device)",
              f"- taps short of service head even at no flow: {int((taps['flag'] == 'short').sum())}; "
              f"unsupplied: {int((taps['flag'] == 'unsupplied').sum())}",
              f"- zoned network written: {'yes (zoned.gpkg, zoned.inp)' if applied else 'no (use --apply)'}", "",
              "## Zones", ""]
    rows = [[r.zone, r.parent_zone or "–", r.taps, f"{_fmt(r.min_elevation_m)}–{_fmt(r.max_elevation_m)}",
             _fmt(r.max_static_before_m), _fmt(r.max_static_m), _fmt(r.min_static_m),
             f"{r.device} {r.device_id}".strip() or "–", _fmt(r.setting_m), _fmt(r.hgl_m)]
            for r in plan.zones.itertuples(index=False) if r.taps or r.device]
    lines += _table(rows, ["zone", "parent", "taps", "ground m", "max static before m", "max static after m",
                           "min static after m", "device", "setting m", "static HGL m"])
    if len(plan.devices):
        lines += ["", "## Devices", ""]
        lines += _table([[d.id, d.device, d.pipe, d.upstream_node, d.node, d.zone, _fmt(d.upstream_hgl_m),
                          _fmt(d.hgl_m), _fmt(d.setting_m), _fmt(d.diameter_mm, 0)]
                         for d in plan.devices.itertuples(index=False)],
                        ["id", "device", "pipe", "from node", "zone's first node", "zone", "upstream HGL m",
                         "zone HGL m", "setting m", "DN mm"])
        lines += ["", "PRV setting: pressure head (m) at the zone's first node; break tank: water depth at overflow."]
    if len(plan.boundary):
        lines += ["", "## Zone boundary valves (closed loop pipes)", ""]
        lines += _table([[b.pipe, b.zone_a, b.zone_b] for b in plan.boundary.itertuples(index=False)],
                        ["pipe", "zone", "zone"])
    flagged = plan.nodes[plan.nodes["tap"] & (plan.nodes["flag"] != "ok")]
    if len(flagged):
        lines += ["", "## Flagged taps", ""]
        lines += _table([[n, r.flag, r.zone, _fmt(r.elevation_m), _fmt(r.static_m), _fmt(r.limit_m), _fmt(r.service_m)]
                         for n, r in flagged.head(50).iterrows()],
                        ["node", "flag", "zone", "ground m", "static m", "limit m", "service m"])
    lines += ["", "## EPANET verification", ""]
    if check is None:
        lines += ["Not run (--no-check): the static heads above are the zoning rule's, not EPANET's."]
    else:
        t = check.taps
        lines += [f"- static run: max static head at a tap {_fmt(t['static_m'].max())} m; taps over their limit: "
                  f"{int((~t['static_ok']).sum())}",
                  f"- peak hour {check.peak_hour:g} h: lowest tap pressure {_fmt(t['peak_pressure_m'].min())} m; taps "
                  f"below service head: {int((~t['service_ok']).sum())}",
                  f"- verdict: {'PASSED' if check.passed else 'NOT MET — see below'}"]
        lines += [f"- {n}" for n in check.notes]
    return "\n".join(lines) + "\n"


@click.command("zones")
@network_options
@click.option("--device", type=click.Choice(["prv", "break_tank"]), default="prv", show_default=True,
              help="What holds a zone: a pressure-reducing valve, or a break-pressure tank (减压池).")
@click.option("--kind", "default_kind", type=click.Choice(["village", "community"]), default="village",
              show_default=True, help="Limits for taps outside any settlement (village: rural 40 m; community: "
                                      "urban 45 m).")
@click.option("--margin", "margin_m", type=click.FloatRange(min=0), default=None,
              help="Head kept above the highest tap's service head in a zone, m (default: standards.py).")
@click.option("--limit", "limit", multiple=True, metavar="NAME=VALUE",
              help="Override a standards.py threshold, e.g. --limit rural_max_static_head_m=35 (repeatable).")
@click.option("--apply", "apply", is_flag=True, help="Also write the zoned network (zoned.gpkg and zoned.inp).")
@click.option("--no-check", is_flag=True, help="Skip the EPANET verification of the zoned network.")
@click.option("--duration-h", type=click.FloatRange(min=1), default=24.0, show_default=True,
              help="Length of the peak-hour verification run (h).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network>/zones).")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, device: str, default_kind: str,
            margin_m: float | None, limit: tuple[str, ...], apply: bool, no_check: bool, duration_h: float,
            out: Path | None) -> None:
    """Design pressure zones from the ground: static head at every tap against the limits, PRVs or break tanks.

    Writes zones.gpkg (layers zones, zone_devices, zone_nodes), zones.csv, zone_devices.csv, zone_nodes.csv,
    zones_report.md and, unless --no-check, zone_check.csv from EPANET runs of the zoned network (static run
    with tanks full; peak hour). With --apply also zoned.gpkg and zoned.inp.
    """
    import geopandas as gpd

    from ..io import write_csv, write_layers, write_network, write_text
    from ..model import to_wntr, write_inp
    from ..zones import apply_zones, check_zones, plan_zones, zones_layer

    limits = _limits(limit)
    net, name = load_network_arg(network, inp, crs)
    plan = plan_zones(net, limits=limits or None, device=device, default_kind=default_kind, margin_m=margin_m)
    zoned = apply_zones(net, plan)
    check = None if no_check else check_zones(zoned, limits=limits or None, default_kind=default_kind,
                                              duration_h=duration_h)
    out_dir = out if out is not None else default_out(name) / "zones"
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes = plan.nodes.reset_index()
    xy = dict(zip(nodes["node"], nodes.geometry))
    dev = gpd.GeoDataFrame(plan.devices.copy(), geometry=[xy[n] for n in plan.devices["node"]], crs=plan.crs)
    files = {"zones.gpkg": write_layers({"zones": zones_layer(plan), "zone_devices": dev, "zone_nodes": nodes},
                                        out_dir / "zones.gpkg"),
             "zones.csv": write_csv(plan.zones, out_dir / "zones.csv", index=False),
             "zone_devices.csv": write_csv(plan.devices, out_dir / "zone_devices.csv", index=False),
             "zone_nodes.csv": write_csv(nodes.drop(columns="geometry"), out_dir / "zone_nodes.csv", index=False)}
    if check is not None:
        files["zone_check.csv"] = write_csv(check.taps, out_dir / "zone_check.csv")
    if apply:
        files["zoned.gpkg"] = write_network(zoned, out_dir / "zoned.gpkg")
        files["zoned.inp"] = write_inp(to_wntr(zoned), out_dir / "zoned.inp")
    files["zones_report.md"] = write_text(report_markdown(name, plan, check, applied=apply),
                                          out_dir / "zones_report.md")
    taps = plan.nodes[plan.nodes["tap"]]
    click.echo(f"{name}: {len(taps)} taps, static head max {taps['static_before_m'].max():.1f} m before, "
               f"{taps['static_m'].max():.1f} m after; {len(plan.devices)} {device} device(s), "
               f"{len(plan.boundary)} boundary pipe(s) closed, {int((taps['flag'] == 'short').sum())} tap(s) short "
               "of service head")
    for d in plan.devices.itertuples(index=False):
        click.echo(f"  {d.id}: pipe {d.pipe} into zone {d.zone} (ground {d.ground_m:.1f} m), static HGL "
                   f"{d.upstream_hgl_m:.1f} → {d.hgl_m:.1f} m, setting {d.setting_m:.1f} m, DN {d.diameter_mm:.0f}")
    if check is not None:
        click.echo("EPANET check: " + ("passed" if check.passed else "NOT MET"))
        for note in check.notes[1:]:
            click.echo(f"  {note}")
    click.echo(f"Outputs in {out_dir}:")
    for path in files.values():
        click.echo(f"  {path}")
