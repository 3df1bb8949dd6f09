"""``watersupply audit``: the 同网·同价·同质 audit per village and community, baseline or scenario."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UserError, default_out, handle_errors, load_network_arg, network_options

_STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]",
          "not assessed": "[magenta]not assessed[/]"}


@click.command("audit")
@network_options
@click.option("--scenario", "scenario", default=None, metavar="FILE|NAME",
              help="Audit a scenario (a YAML file or a shipped scenario's name) against its baseline.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML file with a 'thresholds:' mapping overriding watersupply.standards.")
@click.option("--tariff", type=float, default=None, metavar="YUAN_M3",
              help="Uniform water tariff, ¥/m³ (threshold water_tariff_yuan_m3).")
@click.option("--electricity-tariff", "electricity_tariff", type=float, default=None, metavar="YUAN_KWH",
              help="Electricity tariff for pumping, ¥/kWh (threshold electricity_tariff_yuan_kwh).")
@click.option("--duration-h", type=float, default=None,
              help="Simulated hours of the baseline (default 72, or the network's); a scenario sets its own.")
@click.option("--trace", "trace", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True,
              help="EPANET trace runs for supply shares: only where a zone has several sources (auto), or always/never.")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/<network>, or out/<network>/<scenario>).")
@handle_errors
def command(network: Path | None, inp: Path | None, crs: str | None, scenario: str | None, config: Path | None,
            tariff: float | None, electricity_tariff: float | None, duration_h: float | None,
            trace: str, out: Path | None) -> None:
    """Audit 同网·同价·同质 (same network, same price, same quality) for every village and community.

    Writes audit.csv (one row per settlement), audit_sources.csv (traced supply
    shares), audit.md (bilingual report with reasons and fixes) and audit.gpkg
    (settlement polygons with the audit's columns); with --scenario also
    audit_changes.csv (verdicts against the baseline).
    """
    from rich.console import Console
    from rich.table import Table

    from ..audit import audit, audit_scenario, audit_thresholds, check_settlements, write_audit
    from ..model import metadata

    t = audit_thresholds(config, tariff=tariff, electricity_tariff=electricity_tariff)
    do_trace: bool | str = {"auto": "auto", "always": True, "never": False}[trace]
    if duration_h is not None and (scenario is not None or not duration_h > 0):
        raise UserError("--duration-h applies to the baseline only (a scenario sets its own duration_h)"
                        if scenario is not None else f"--duration-h must be > 0, got {duration_h}")
    base = None
    if scenario is not None:
        net = load_network_arg(network, inp, crs)[0] if (network is not None or inp is not None) else None
        if net is not None:
            check_settlements(net, t)
        aud, base, run = audit_scenario(scenario, net=net, t=t, trace=do_trace)
        net_out, name = run.net, run.network_name
        out_dir = out if out is not None else default_out(name) / run.scenario.name
    else:
        from ..simulation import run_simulation

        net_out, name = load_network_arg(network, inp, crs)
        check_settlements(net_out, t)
        result = run_simulation(net_out, duration_h=duration_h)
        aud = audit(net_out, result, t=t, trace=do_trace)
        out_dir = out if out is not None else default_out(name)
    md = metadata(net_out)
    files = write_audit(aud, out_dir, net=net_out, baseline=base,
                        title_zh=md.get("title_zh", md.get("name", name)),
                        title_en=md.get("title_en", md.get("name", name)))

    console = Console(highlight=False, width=max(Console().width, 120))
    table = Table(title=f"{name}: 同网·同价·同质 audit ({aud.label})")
    for h in ("id", "名称", "name", "同网", "同质", "压力", "同价", "score", "overall"):
        table.add_column(h, justify="right" if h == "score" else "left")
    tb = aud.table
    for sid, r in tb.iterrows():
        table.add_row(str(sid), str(r["name_zh"]), str(r["name_en"]),
                      *[_STYLE[r[f"{d}_verdict"]] for d in ("network", "quality", "pressure", "price")],
                      "–" if r["score"] != r["score"] else f"{r['score']:.0f}", _STYLE[r["verdict"]])
    console.print(table)
    for sid, r in tb.iterrows():
        if r["quality_verdict"] == "not assessed":
            console.print(f"[magenta]同质 not assessed[/] for {sid}: {r['quality_reason']}")
    for note in aud.notes:
        if "steady state" in note or "not settled" in note or "not assessed" in note:
            console.print(f"note: {note}")
    if base is not None:
        from ..audit import compare_audits

        cmp_ = compare_audits(base, aud)
        dropped = cmp_[cmp_["dropped"] != ""]
        if len(dropped):
            console.print("Verdicts dropped against the baseline: " +
                          ", ".join(f"{i} ({dropped.loc[i, 'dropped']})" for i in dropped.index))
        else:
            console.print("No verdict dropped against the baseline.")
    if t.overridden:
        console.print("Overridden thresholds: " + ", ".join(f"{k} {a:g} → {b:g}" for k, (a, b) in t.overridden.items()))
    console.print(f"Audit took {aud.seconds:.1f} s. Outputs in [bold]{out_dir}[/]:")
    for path in files.values():
        console.print(f"  {path}")
