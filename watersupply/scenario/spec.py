"""Scenario files: the YAML format, its pydantic schema, loading and checking.

A scenario is a YAML file (read with ``yaml.safe_load`` only) describing
events on a network: outages, breaks, demand changes, fire flows, new sources.
It is validated on load by a pydantic v2 schema that forbids unknown fields,
with one event model per ``type`` (a discriminated union). Problems become a
:class:`~watersupply.ScenarioError` naming the file, the line, the field and
the fix.

Format
------
.. code-block:: yaml

    name: ps3_power_cut          # slug [a-z0-9_-]: the output folder's name
    title_zh: 3号泵站晚高峰停电
    title_en: PS3 power cut over the evening peak
    description: why these elements, what is expected
    network: null                # .gpkg or .inp; relative to this file; default: bundled Tonghui
    duration_h: 72               # simulated hours
    start: 0                     # hour of day at which the run starts (shifts the demand patterns)
    events:
      - type: pump_station_outage
        station: PS3
        at_h: 41                 # hours after the run's start
        for_h: 8                 # hours; omitted = until the end of the run

Times: ``at_h`` counts hours from the start of the run (the result's time index),
``for_h`` is the event's length; an event may not end after ``duration_h``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from .._errors import ScenarioError, closest
from .._resources import data_dir
from ..schema import Network
from ..io import MAX_YAML_VALUES, read_yaml_document, yaml_line_map

__all__ = [
    "SCENARIOS_DIR",
    "Scenario",
    "Event",
    "PipeBreak",
    "PumpStationOutage",
    "PlantOutage",
    "ReservoirOutOfService",
    "DemandChange",
    "FireFlow",
    "NewSource",
    "SetLink",
    "EVENT_TYPES",
    "OUTAGE_TYPES",
    "load_scenario",
    "parse_scenario",
    "check_scenario",
    "scenario_network",
    "shipped_scenarios",
    "resolve_scenario",
]

#: Folder of the scenario files shipped with the project (package data in a wheel, ``scenarios/`` in a checkout).
SCENARIOS_DIR = data_dir("scenarios")

SLUG = r"^[a-z0-9_-]{1,64}$"
ELEMENT_ID = r"^[^\s]{1,64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Timed(_Model):
    at_h: float = Field(0.0, ge=0, allow_inf_nan=False,
                        description="start, hours after the run's start")
    for_h: float | None = Field(None, gt=0, allow_inf_nan=False,
                                description="length in hours; omitted = until the end of the run")

    def window(self, duration_h: float) -> tuple[float, float]:
        """The event's (start, end) in hours; end is the run's end when ``for_h`` is omitted."""
        return float(self.at_h), float(duration_h if self.for_h is None else self.at_h + self.for_h)


class PipeBreak(_Timed):
    """A pipe breaks: its valve segment is isolated, or with ``leak_area_m2`` it leaks instead.

    Isolation closes every link of the pipe's valve segment (the stretch between
    the isolation valves of the network's ``valves`` layer; the pipe alone when the
    network has no valves). A leak is an orifice of area A with discharge
    coefficient Cd on the pipe's middle: an EPANET emitter with coefficient
    Cd·A·√(2g) (m³/s per m^0.5), so that Q = Cd·A·√(2g·p).
    """

    type: Literal["pipe_break"]
    pipe: str = Field(pattern=ELEMENT_ID)
    leak_area_m2: float | None = Field(None, gt=0, le=10, allow_inf_nan=False)
    discharge_coeff: float = Field(0.75, gt=0, le=1)


class PumpStationOutage(_Timed):
    """All pumps of a station stop (e.g. a power cut); duty pumps restart when it ends."""

    type: Literal["pump_station_outage"]
    station: str = Field(pattern=ELEMENT_ID)


class PlantOutage(_Timed):
    """The plant's output stops: its outlet pumps stop (or, without pumps, its outlet pipes close)."""

    type: Literal["plant_outage"]
    plant: str | None = Field(None, pattern=ELEMENT_ID, description="plant node id; default: every plant")


class ReservoirOutOfService(_Timed):
    """A reservoir (tank) is isolated: all its links close and the pumps it controls stop."""

    type: Literal["reservoir_out_of_service"]
    reservoir: str = Field(pattern=ELEMENT_ID)


class DemandChange(_Timed):
    """Demand multiplied for a settlement, a zone, a node or everyone; or a new demand at a node."""

    type: Literal["demand_change"]
    multiplier: float | None = Field(None, gt=0, le=100, allow_inf_nan=False)
    add_m3d: float | None = Field(None, gt=0, allow_inf_nan=False)
    settlement: str | None = Field(None, pattern=ELEMENT_ID)
    zone: str | None = Field(None, pattern=ELEMENT_ID)
    node: str | None = Field(None, pattern=ELEMENT_ID)
    pattern: str | None = Field(None, pattern=ELEMENT_ID, description="time pattern of add_m3d; default constant")

    @model_validator(mode="after")
    def _one_change(self) -> DemandChange:
        if (self.multiplier is None) == (self.add_m3d is None):
            raise ValueError("give exactly one of 'multiplier' (scale existing demand) or 'add_m3d' "
                             "(a new demand at 'node')")
        targets = [k for k in ("settlement", "zone", "node") if getattr(self, k) is not None]
        if self.multiplier is not None:
            if len(targets) > 1:
                raise ValueError(f"'multiplier' applies to one of settlement, zone or node (or, with none, to "
                                 f"everyone); got {', '.join(targets)}")
            if self.pattern is not None:
                raise ValueError("'pattern' only goes with 'add_m3d'; a multiplier keeps each node's own pattern")
        else:
            if self.node is None or len(targets) != 1:
                raise ValueError("'add_m3d' needs 'node' (the junction receiving the new demand) and no "
                                 "settlement or zone")
        return self


class FireFlow(_Timed):
    """A fire flow drawn at a node for ``for_h`` hours; residual pressure checked against the hydrant head."""

    type: Literal["fire_flow"]
    node: str = Field(pattern=ELEMENT_ID)
    flow_ls: float = Field(gt=0, le=1000, allow_inf_nan=False)
    for_h: float = Field(gt=0, allow_inf_nan=False)


class NewSource(_Timed):
    """A new plant (fixed-head source) or tank joined to a node by a new main; in service from ``at_h``."""

    type: Literal["new_source"]
    id: str = Field(pattern=ELEMENT_ID)
    kind: Literal["plant", "tank"]
    name_zh: str | None = None
    name_en: str | None = None
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    crs: str | None = Field(None, description="CRS of x/y; default: the network's")
    elevation_m: float = Field(allow_inf_nan=False)
    head_m: float | None = Field(None, allow_inf_nan=False, description="plant: fixed head (m); default elevation")
    diameter_m: float | None = Field(None, gt=0, allow_inf_nan=False)
    min_level_m: float = Field(0.3, ge=0)
    max_level_m: float = Field(4.0, gt=0)
    init_level_m: float | None = Field(None, ge=0)
    connect_to: str = Field(pattern=ELEMENT_ID)
    length_m: float | None = Field(None, gt=0, allow_inf_nan=False, description="default: straight distance")
    diameter_mm: float = Field(gt=0, le=5000)
    roughness_c: float = Field(130.0, gt=0, le=200)

    @model_validator(mode="after")
    def _kind_fields(self) -> NewSource:
        if self.kind == "tank":
            if self.diameter_m is None:
                raise ValueError("a new tank needs 'diameter_m'")
            if self.head_m is not None:
                raise ValueError("'head_m' is for a plant; a tank's head follows its level")
            init = self.max_level_m if self.init_level_m is None else self.init_level_m
            if not self.min_level_m <= init <= self.max_level_m:
                raise ValueError(f"tank levels must satisfy min_level_m <= init_level_m <= max_level_m, got "
                                 f"{self.min_level_m} / {init} / {self.max_level_m}")
        elif self.diameter_m is not None or self.init_level_m is not None:
            raise ValueError("'diameter_m' and 'init_level_m' describe a tank; a plant has 'head_m'")
        return self


class SetLink(_Timed):
    """Close or open a pipe, pump or valve."""

    type: Literal["set_link"]
    link: str = Field(pattern=ELEMENT_ID)
    status: Literal["OPEN", "CLOSED"]

    @field_validator("status", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


Event = Annotated[PipeBreak | PumpStationOutage | PlantOutage | ReservoirOutOfService | DemandChange | FireFlow
                  | NewSource | SetLink, Field(discriminator="type")]

EVENT_MODELS: dict[str, type[_Timed]] = {
    typing.get_args(m.model_fields["type"].annotation)[0]: m
    for m in (PipeBreak, PumpStationOutage, PlantOutage, ReservoirOutOfService, DemandChange, FireFlow, NewSource,
              SetLink)
}
EVENT_TYPES = tuple(EVENT_MODELS)
#: Events that cut supply; storage autonomy is measured from the earliest of them.
OUTAGE_TYPES = ("pipe_break", "pump_station_outage", "plant_outage", "reservoir_out_of_service")


class Scenario(_Model):
    """A validated scenario (see the module docstring for the file format)."""

    name: str = Field(pattern=SLUG)
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    description: str = ""
    network: str | None = None
    duration_h: float = Field(72.0, gt=0, le=24 * 366, allow_inf_nan=False)
    start: float = Field(0.0, ge=0, lt=24, allow_inf_nan=False)
    events: list[Event] = Field(default_factory=list)

    _path: Path | None = PrivateAttr(None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path | None:
        """The file the scenario was read from (None when built in memory)."""
        return self._path

    @property
    def source(self) -> str:
        return str(self._path) if self._path is not None else f"scenario {self.name!r}"

    def where(self, field: str) -> str:
        """``file:line: field`` for messages."""
        line = self._lines.get(field)
        if line is None and "." in field:
            line = self._lines.get(field.rsplit(".", 1)[0])
        return f"{self.source}{f':{line}' if line else ''}: {field}"

    def network_path(self) -> Path | None:
        """The network file, resolved against the scenario file's folder (None = bundled Tonghui)."""
        if self.network is None:
            return None
        p = Path(self.network).expanduser()
        if not p.is_absolute() and self._path is not None:
            p = self._path.parent / p
        return p

    def outage_start_h(self) -> float | None:
        """Start of the earliest outage-type event (None when there is none)."""
        starts = [e.at_h for e in self.events if e.type in OUTAGE_TYPES]
        return float(min(starts)) if starts else None

    def end_h(self) -> float | None:
        """End of the last event, or None when an event lasts to the end of the run (or there are none)."""
        if not self.events:
            return None
        ends = [e.window(self.duration_h)[1] for e in self.events]
        if any(e.for_h is None for e in self.events):
            return None
        return float(max(ends))

    def to_yaml(self) -> str:
        """The scenario as normalised YAML (all fields, defaults filled in)."""
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


# ----------------------------------------------------------------------------- YAML and error formatting

_line_map = yaml_line_map


def _duplicate_keys(node: yaml.Node, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            key = str(k.value)
            if key in seen:
                raise ScenarioError(f"{source}:{k.start_mark.line + 1}: field {key!r} is given twice (first on "
                                    f"line {seen[key]}); keep one")
            seen[key] = k.start_mark.line + 1
            _duplicate_keys(v, source)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _duplicate_keys(v, source)


def _field_path(loc: tuple) -> tuple[str, type[BaseModel]]:
    """Pydantic error location → (``events[0].for_h``, the model the last part belongs to)."""
    parts: list[str] = []
    model: type[BaseModel] = Scenario
    for i, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in EVENT_MODELS:
            model = EVENT_MODELS[part]
        else:
            parts.append(str(part))
    return ".".join(parts), model


def _describe(err: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error → (field path, readable text)."""
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    value = err.get("input")
    path, model = _field_path(loc)
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden":
        valid = [f for f in model.model_fields if f != "type"]
        return path, f"unknown field {name!r}; valid fields here: {', '.join(valid)} ({closest(name, valid)})"
    if kind == "missing":
        what = f" (a {model.__name__} event needs it)" if model is not Scenario else ""
        return path, f"required field {name!r} is missing{what}"
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", value)
        return path + ".type", (f"unknown event type {tag!r}; valid types: {', '.join(EVENT_TYPES)} "
                                f"({closest(str(tag), EVENT_TYPES)})")
    if kind == "union_tag_not_found":
        return path, f"the event has no 'type'; give one of {', '.join(EVENT_TYPES)}"
    if kind == "string_pattern_mismatch" and name == "name":
        return path, (f"must be a slug of lower-case letters, digits, '_' and '-' (it names the output folder), "
                      f"got {value!r}")
    if kind == "string_pattern_mismatch":
        return path, f"must be an element id without spaces, got {value!r}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if kind in ("model_type", "dict_type"):
        return path or "(top level)", f"must be a mapping of fields, got {type(value).__name__} {value!r}"
    if kind == "list_type":
        return path, f"must be a list of events (YAML '- type: ...' items), got {value!r}"
    if kind.startswith(("greater", "less", "float", "int", "bool", "string", "literal", "finite")):
        return path, f"{msg[0].lower() + msg[1:]}, got {value!r}"
    return path or "(top level)", msg


def _raise_validation(exc: ValidationError, source: str, lines: Mapping[str, int]) -> None:
    problems = []
    for err in exc.errors(include_url=False):
        path, text = _describe(err)
        line = lines.get(path) or lines.get(path.rsplit(".", 1)[0]) if path else None
        where = f"{source}:{line}" if line else source
        problems.append(f"{where}: {path}: {text}" if path else f"{where}: {text}")
    extra = len(problems) - 3
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra > 0 else ""
    raise ScenarioError("; ".join(problems[:3]) + more) from None


def _check_times(sc: Scenario) -> None:
    for i, ev in enumerate(sc.events):
        start, end = ev.window(sc.duration_h)
        if start >= sc.duration_h:
            raise ScenarioError(f"{sc.where(f'events[{i}].at_h')}: the event starts at hour {start:g}, at or after "
                                f"the end of the run (duration_h = {sc.duration_h:g}); start it earlier or "
                                "lengthen duration_h")
        if end > sc.duration_h + 1e-9:
            raise ScenarioError(f"{sc.where(f'events[{i}].for_h')}: the event ends at hour {end:g} "
                                f"({start:g} + {ev.for_h:g}), after the end of the run (duration_h = "
                                f"{sc.duration_h:g}); shorten for_h or lengthen duration_h")


def parse_scenario(data: Any, *, source: str = "scenario", lines: Mapping[str, int] | None = None,
                   path: Path | None = None) -> Scenario:
    """Validate a scenario given as a mapping (e.g. from ``yaml.safe_load``).

    Raises
    ------
    ScenarioError
        Naming the source (and line), the field and the fix.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping with name, title_zh, title_en, "
                            f"duration_h and events; got {type(data).__name__}")
    try:
        sc = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        _raise_validation(exc, source, lines or {})
    sc._path = path
    sc._lines = dict(lines or {})
    _check_times(sc)
    return sc


#: Largest scenario document accepted, in YAML values after expanding aliases
#: (guards against "billion laughs" documents and runaway files).
MAX_YAML_NODES = MAX_YAML_VALUES
#: Largest scenario file accepted (bytes).
MAX_SCENARIO_BYTES = 512_000


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file (``yaml.safe_load`` only).

    Parameters
    ----------
    path
        The ``.yaml`` file.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Missing file, malformed YAML (with file, line and column), unknown or
        invalid fields, events outside the run.

    Examples
    --------
    >>> sc = load_scenario(SCENARIOS_DIR / "ps3_power_cut.yaml")
    >>> sc.events[0].type, sc.events[0].station
    ('pump_station_outage', 'PS3')
    """
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: scenario file not found; give the path of a .yaml file"
                            + (f" or a shipped scenario name ({', '.join(s.stem for s in shipped_scenarios())})"
                               if shipped_scenarios() else ""))
    data, root = read_yaml_document(p, error=ScenarioError, what="a scenario", max_bytes=MAX_SCENARIO_BYTES,
                                    max_values=MAX_YAML_NODES,
                                    syntax_hint="fix the syntax (indentation, ':' after keys, quotes)",
                                    too_big_hint="a scenario is a short list of events — write the events out, "
                                                 "or split it into several scenarios")
    if root is None:
        raise ScenarioError(f"{p}: the file is empty; a scenario needs name, title_zh, title_en and events")
    _duplicate_keys(root, str(p))
    return parse_scenario(data, source=str(p), lines=_line_map(root), path=p.resolve())


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped in ``scenarios/``, sorted by file name."""
    if not SCENARIOS_DIR.is_dir():
        return []
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def resolve_scenario(arg: str | Path) -> Path:
    """A scenario file path, or the name of a shipped scenario (file stem), as a path.

    Raises
    ------
    ScenarioError
        Neither a file nor a shipped name; lists the closest shipped names.
    """
    p = Path(arg)
    if p.is_file():
        return p
    shipped = {s.stem: s for s in shipped_scenarios()}
    if str(arg) in shipped:
        return shipped[str(arg)]
    raise ScenarioError(f"{arg}: no such scenario file or shipped scenario; "
                        f"{closest(str(arg), shipped) if shipped else 'no scenarios are shipped'}")


# ----------------------------------------------------------------------------- checks against a network

def _ids(df: Any, col: str = "id") -> list[str]:
    if df is None or not len(df) or col not in df:
        return []
    return [str(v) for v in df[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]


def check_scenario(scenario: Scenario, net: Network) -> Scenario:
    """Check that every element a scenario names exists in `net`; return the scenario.

    Raises
    ------
    ScenarioError
        Naming the file, the event index, the field and the unknown id, with the
        closest valid ids.
    """
    nodes = net["nodes"]
    node_ids = _ids(nodes)
    node_set = set(node_ids)
    kind = dict(zip(nodes["id"].astype(str), nodes["kind"].astype(str)))
    junctions = [n for n in node_ids if kind.get(n) == "junction"]
    plants = [n for n in node_ids if kind.get(n) == "plant"]
    tanks = [n for n in node_ids if kind.get(n) == "reservoir"]
    pipes = _ids(net["pipes"])
    pumps = net.get("pumps")
    stations = sorted(set(_ids(pumps, "station_id"))) if pumps is not None and "station_id" in pumps else []
    links = pipes + _ids(pumps) + _ids(net.get("control_valves"))
    settlements = _ids(net.get("settlements"))
    zones = sorted(set(_ids(nodes, "zone"))) if "zone" in nodes else []
    patterns = sorted(set(_ids(net.get("patterns"), "pattern")))
    new_ids: set[str] = set()

    def need(i: int, field: str, value: str | None, valid: list[str], what: str) -> None:
        if value is not None and value not in valid:
            raise ScenarioError(f"{scenario.where(f'events[{i}].{field}')}: unknown {what} {value!r}; "
                                f"{closest(value, valid)}")

    for i, ev in enumerate(scenario.events):
        if isinstance(ev, PipeBreak):
            need(i, "pipe", ev.pipe, pipes, "pipe")
        elif isinstance(ev, PumpStationOutage):
            need(i, "station", ev.station, stations, "pump station")
        elif isinstance(ev, PlantOutage):
            if not plants:
                raise ScenarioError(f"{scenario.where(f'events[{i}].type')}: the network has no plant "
                                    "(node of kind 'plant'); use pump_station_outage or set_link instead")
            need(i, "plant", ev.plant, plants, "plant")
        elif isinstance(ev, ReservoirOutOfService):
            need(i, "reservoir", ev.reservoir, tanks, "reservoir")
        elif isinstance(ev, DemandChange):
            need(i, "settlement", ev.settlement, settlements, "settlement")
            need(i, "zone", ev.zone, zones, "zone")
            need(i, "node", ev.node, junctions, "junction")
            need(i, "pattern", ev.pattern, patterns, "pattern")
        elif isinstance(ev, FireFlow):
            need(i, "node", ev.node, junctions, "junction")
        elif isinstance(ev, NewSource):
            if ev.id in node_set or ev.id in new_ids:
                raise ScenarioError(f"{scenario.where(f'events[{i}].id')}: {ev.id!r} is already a node id; "
                                    "give the new source an unused id")
            if f"{ev.id}-M" in set(links):
                raise ScenarioError(f"{scenario.where(f'events[{i}].id')}: the new main would be named "
                                    f"{ev.id + '-M'!r}, which is already a link id; choose another id")
            need(i, "connect_to", ev.connect_to, [n for n in node_ids if kind.get(n) != "plant"], "node")
            new_ids.add(ev.id)
        elif isinstance(ev, SetLink):
            need(i, "link", ev.link, links, "link")
    return scenario


def scenario_network(scenario: Scenario, *, net: Network | None = None) -> tuple[Network, str]:
    """The network a scenario runs on, and its short name (the output folder).

    `net` (if given) wins; else the scenario's ``network`` (a .gpkg or .inp file,
    relative to the scenario file); else the bundled Tonghui model.
    """
    if net is not None:
        md = net.get("metadata")
        name = "network"
        if md is not None and len(md):
            d = dict(zip(md["key"].astype(str), md["value"].astype(str)))
            name = d.get("name", name)
        return net, name
    from ..loader import load_network, network_name

    path = scenario.network_path()
    if path is None:
        return load_network(), network_name()
    if not path.is_file():
        raise ScenarioError(f"{scenario.where('network')}: network file {str(path)!r} not found (relative paths "
                            "resolve against the scenario file's folder); fix the path or omit 'network' for the "
                            "bundled Tonghui model")
    if path.suffix.lower() in (".inp", ".gpkg"):
        return load_network(network=path), network_name(network=path)
    raise ScenarioError(f"{scenario.where('network')}: {str(path)!r} is neither a .gpkg nor an .inp file")
